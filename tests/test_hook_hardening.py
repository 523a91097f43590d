"""The webhook receiver under a review's probes (issue 22 §2): requests that once got no answer,
header lines with CR/LF/NUL inside, too many idle connections, a writer that must never die, the
store file let go during network refreshes, shutdown with deliveries in flight, one bad delivery
among good ones, and replayed integration `issue` webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from sentry_mirror.emulator import Emulator
from sentry_mirror.running.hooks import receiver
from sentry_mirror.storage import sidefiles
from sentry_mirror.storage.store import Store

from test_hook_http import answers, bodies, closed, connect, signed
from test_hooks import SECRET, an_event, service, wait_for, with_secret


@pytest.fixture
def emu():
    with Emulator(seed=5, scale="tiny") as e:
        yield e


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "m.duckdb")
    Store(path).close()
    with_secret(path)
    return path


@pytest.fixture
def svc(db, emu):
    with service(db, emu) as s:
        yield s


def integration(body: bytes, signature: str, resource: str = "issue") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Sentry-Hook-Resource: {resource}\r\nSentry-Hook-Timestamp: {int(time.time())}\r\n"
            f"Sentry-Hook-Signature: {signature}\r\n\r\n").encode("latin-1") + body


# -- 3. every request gets an answer ---------------------------------------------------------------

def test_a_non_ascii_or_non_hex_signature_is_401_not_a_dropped_connection(svc, emu):
    body = bodies(emu, 1)[0]
    good = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for request in (signed(body).replace(good.encode(), b"\xff" + good[1:].encode()),
                    signed(body).replace(good.encode(), good[:-1].encode() + b"g"),
                    integration(b"{}", "\u00e9")):
        with connect(svc) as sock:
            sock.sendall(request)
            assert answers(sock, 1)[0][0] == 401
    assert svc.spool.pending() == []


def test_a_signed_deeply_nested_body_is_400(svc):
    for deep in (b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000 + b"1" + b"}" * 50000):
        with connect(svc) as sock:
            sock.sendall(signed(deep))
            assert answers(sock, 1)[0][0] == 400
    assert svc.spool.pending() == []


def test_a_malformed_secrets_file_is_503_and_logged(svc, emu, db, caplog):
    with open(sidefiles.hook_secrets(db), "w") as fh:
        fh.write("{not json")
    with connect(svc) as sock:
        sock.sendall(signed(bodies(emu, 1)[0]))
        assert answers(sock, 1)[0][0] == 503
    assert "secrets file" in caplog.text and svc.spool.pending() == []


# -- 6. head lines with CR, LF or NUL inside; empty lines before a request line ----------------------

@pytest.mark.parametrize("replace", [(b"Host: x\r\n", b"Host: x\nX-A: b\r\n"), (b"Host: x\r\n", b"Host: x\rX-A: b\r\n"),
                                     (b"Host: x\r\n", b"Host: x\0y\r\n"), (b"\r\n", b"\n")])
def test_cr_lf_or_nul_inside_a_head_line_is_400(svc, emu, replace):
    request = signed(bodies(emu, 1)[0])
    head, _, body = request.partition(b"\r\n\r\n")
    head = head.replace(*replace)
    with connect(svc) as sock:
        sock.sendall(head + (b"\n\n" if replace[1] == b"\n" else b"\r\n\r\n") + body)
        status, headers = answers(sock, 1)[0]
        assert status == 400 and headers.get("connection") == "close"
    assert svc.spool.pending() == []


def test_empty_lines_before_a_request_line_are_skipped(svc, emu):
    one, two = bodies(emu, 2)
    with connect(svc) as sock:
        sock.sendall(b"\r\n" + signed(one) + b"\r\n\r\n" + signed(two))
        assert [s for s, _ in answers(sock, 2)] == [202, 202]
    wait_for(lambda: svc.drainer.stored == 2)


# -- 1. idle connections are capped and closed; the writer never dies --------------------------------

def test_over_the_cap_the_oldest_idle_connection_is_closed_else_503(db, emu, monkeypatch):
    monkeypatch.setattr(receiver, "MAX_CONNECTIONS", 3, raising=False)
    one, two = bodies(emu, 2)
    with service(db, emu) as svc:
        idle = [connect(svc) for _ in range(3)]
        with connect(svc) as fourth:
            fourth.sendall(signed(one))
            assert answers(fourth, 1)[0][0] == 202
            assert closed(idle[0])  # the oldest idle one made room
            for sock in idle[1:] + [fourth]:
                sock.sendall(signed(two)[:50])  # mid-request: not idle
            wait_for(lambda: len(svc.receiver.connections) == 3
                     and not any(c.idle() for c in list(svc.receiver.connections)))
            with connect(svc) as fifth:  # no idle one left to close
                status, headers = answers(fifth, 1)[0]
                assert status == 503 and headers.get("connection") == "close"
        for sock in idle:
            sock.close()
        wait_for(lambda: svc.drainer.stored == 1)


def test_an_idle_keep_alive_connection_is_closed_sooner_than_a_slow_request(svc, emu, monkeypatch):
    monkeypatch.setattr(receiver, "IDLE_TIMEOUT", 0.3, raising=False)
    with connect(svc) as sock:
        sock.sendall(signed(bodies(emu, 1)[0]))
        assert answers(sock, 1)[0][0] == 202
        started = time.monotonic()
        assert closed(sock)
    assert time.monotonic() - started < receiver.CLIENT_TIMEOUT / 2


def test_the_writer_survives_any_error_logs_it_once_and_goes_on(svc, emu, caplog):
    """`os.listdir` failing (EMFILE when connections held every descriptor) once killed the writer
    for good, and later deliveries got 202 and were never stored."""
    import threading

    real, failures, failing = svc.spool.pending, [], threading.Event()
    failing.set()

    def pending(limit=None):
        if failing.is_set() and threading.current_thread().name == "hooks-writer":
            failures.append(1)
            raise OSError(24, "Too many open files")
        return real(limit)

    svc.spool.pending = pending
    from test_hooks import post

    assert post(svc, bodies(emu, 1)[0]).status_code == 202
    wait_for(lambda: len(failures) >= 3)
    failing.clear()
    wait_for(lambda: svc.drainer.stored == 1)
    assert svc.drainer._thread.is_alive()
    assert len([r for r in caplog.records if "Too many open files" in r.getMessage()]) == 1


# -- 5. one bad delivery does not hold up the others -------------------------------------------------

@pytest.fixture
def synced(tmp_path, emu):
    from helpers import sync

    path = str(tmp_path / "synced.duckdb")
    store = Store(path)
    sync(store, emu)
    store.close()
    return path


def spooled(db):
    from sentry_mirror.running.hooks.spool import HookSpool

    return HookSpool(sidefiles.hook_spool(db))


def issue_delivery(spool, source, issue, action="resolved", stamp=None):
    body = json.dumps({"action": action, "installation": {"uuid": "i-1"}, "data": {"issue": issue},
                       "actor": {"type": "user", "id": 1, "name": "Ann"}}).encode()
    spool.put({"kind": "integration", "resource": "issue", "source": source,
               "received_at": time.time() if stamp is None else stamp}, body)
    return body


def test_a_delivery_the_store_refuses_is_quarantined_and_the_others_stored(synced, emu):
    from sentry_mirror.running.hooks.drain import Drainer, Refresher

    event, gid = an_event(emu)
    spool = spooled(synced)
    for k in range(2):
        event["event"]["eventID"] = event["event"]["id"] = f"{k + 1:032x}"
        spool.put({"kind": "service", "source": emu.org_slug, "received_at": time.time()}, json.dumps(event).encode())
        if k == 0:
            issue_delivery(spool, emu.org_slug, {"id": gid, "status": {"x": 1}})  # updates/webhook_issues fails
    drainer = Drainer(synced, spool, Refresher({}), default_source=emu.org_slug)
    assert drainer.cycle() == 3 and spool.pending() == []
    drainer._let_go()
    assert drainer.quarantined == 1
    kept = spool.quarantined()
    assert len(kept) == 1 and b'"x": 1' in spool.read_quarantined(kept[0])[0].body
    from test_hooks import stored_events

    assert stored_events(synced, f"{1:032x}", f"{2:032x}") == 2


# -- 2. the store file is not held while Sentry is asked for issues -----------------------------------

def test_a_reader_does_not_wait_behind_a_slow_issue_refresh(synced, emu):
    import subprocess
    import sys
    import threading

    from sentry_mirror.running.hooks.drain import Drainer, Refresher

    started, release = threading.Event(), threading.Event()

    class SlowRefresher(Refresher):
        def fetch(self):  # a rate-limited issue list (429, Retry-After) or a slow Sentry
            self.waiting = {}
            started.set()
            release.wait(15)
            return {}

    event, gid = an_event(emu)
    spool = spooled(synced)
    for k in range(2):
        event["event"]["eventID"] = event["event"]["id"] = f"{k + 1:032x}"
        spool.put({"kind": "service", "source": emu.org_slug, "received_at": time.time()}, json.dumps(event).encode())
    refresher = SlowRefresher({emu.org_slug: (None, emu.org_slug)}, refresh_after=0)
    drainer = Drainer(synced, spool, refresher, default_source=emu.org_slug, batch_size=1)
    try:
        assert drainer.cycle() == 1 and drainer._store._con is not None  # mid-burst: the file is open
        refresher.queue({emu.org_slug: {gid}})
        writer = threading.Thread(target=drainer.cycle)
        writer.start()
        assert started.wait(10)
        began = time.monotonic()
        opened = subprocess.run([sys.executable, "-c", "import sys; from sentry_mirror.storage.store import "
                                 "open_readonly; open_readonly(sys.argv[1]).close()", synced],
                                capture_output=True, text=True, timeout=60)
        waited = time.monotonic() - began
    finally:
        release.set()
    writer.join(20)
    drainer._let_go()
    assert opened.returncode == 0, opened.stderr[-300:]
    assert waited < 4.0, f"the reader waited {waited:.1f}s behind the refresh"


# -- 4. shutdown: deliveries in flight are answered and stored, idle connections closed ---------------

def test_stop_answers_and_stores_a_delivery_in_flight_and_closes_idle_connections(db, emu, monkeypatch):
    import threading

    from sentry_mirror.running.hooks.spool import HookSpool

    closing = threading.Event()
    real_write = HookSpool._write
    died: list = []  # exceptions that ended a thread
    monkeypatch.setattr(threading, "excepthook", died.append)
    svc = service(db, emu).start()

    def slow_write(self, records, *more):  # a slow disk: the group commit ends only once stop() has begun
        closing.wait(10)
        svc.receiver._thread.join(2)  # ...and, before the fix, once the event loop was gone
        return real_write(self, records, *more)

    monkeypatch.setattr(HookSpool, "_write", slow_write)
    real_stop = svc.receiver.stop

    def stop():
        closing.set()
        real_stop()

    svc.receiver.stop = stop
    body = bodies(emu, 1)[0]
    idle = connect(svc)
    with connect(svc) as sock:
        sock.sendall(signed(body))
        wait_for(lambda: any(c.waiting for c in list(svc.receiver.connections)))  # waiting for the spool
        svc.close()
        status, headers = answers(sock, 1)[0]
    assert status == 202 and headers.get("connection") == "close"
    assert closed(idle)
    idle.close()
    assert svc.spool.pending() == [] and svc.drainer.stored == 1  # stored by the last pass, not at the next start
    from test_hooks import stored_events

    assert stored_events(db, json.loads(body)["event"]["eventID"]) == 1
    assert not died  # the spool's thread did not die on a closed event loop...
    assert not svc.spool._writer.is_alive()  # ...it ended with the service (none left behind)


# -- 7. a replayed or late integration `issue` webhook does not turn the store back -------------------

def test_an_older_or_replayed_issue_webhook_does_not_revert_a_newer_status(synced, emu):
    from sentry_mirror.running.hooks.drain import Drainer, Refresher
    from test_hooks import reader

    con = reader(synced)
    issue_id, raw = con.execute("SELECT id, raw FROM issues WHERE status = 'unresolved' LIMIT 1").fetchone()
    con.close()
    issue = json.loads(raw)
    spool = spooled(synced)
    drainer = Drainer(synced, spool, Refresher({}), default_source=emu.org_slug)

    def deliver(status, last_seen, action):
        issue_delivery(spool, emu.org_slug, {**issue, "status": status, "substatus": None, "lastSeen": last_seen},
                       action=action)
        assert drainer.cycle() == 1
        drainer._let_go()

    def state():
        c = reader(synced)
        try:
            return (c.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0],
                    c.execute("SELECT count(*) FROM issue_status_history WHERE issue_id = ? AND via = 'webhook'",
                              [issue_id]).fetchone()[0])
        finally:
            c.close()

    old, new = issue["lastSeen"], "2099-01-01T00:00:00Z"
    deliver("resolved", old, "resolved")
    assert state() == ("resolved", 1)
    deliver("unresolved", new, "unresolved")  # a new event reopened it
    assert state() == ("unresolved", 2)
    deliver("resolved", old, "resolved")  # the first delivery, late (or replayed with a fresh timestamp)
    assert state() == ("unresolved", 2)
    deliver("resolved", new, "resolved")
    assert state() == ("resolved", 3)
    deliver("ignored", new, "ignored")  # same lastSeen: no newer event, its order unknown: applied
    assert state() == ("ignored", 4)
    deliver("resolved", new, "resolved")  # a body applied before, replayed: not applied again
    assert state() == ("ignored", 4)
