"""Sentry's webhooks into the store: signatures, limits, the spool, the writer lock, and the whole
loop with the emulator POSTing to the hooks created through its API."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import ApiError
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.running.config import Config, Source
from sentry_mirror.running.hooks.install import install, list_hooks, remove
from sentry_mirror.running.hooks.receiver import Limits
from sentry_mirror.running.hooks.secrets import HookSecrets
from sentry_mirror.running.hooks.service import HookService, ServeOptions
from sentry_mirror.storage import sidefiles
from sentry_mirror.storage.locking import writer_lock
from sentry_mirror.errors import StoreError
from sentry_mirror.storage.store import ISSUE_HOOKS, Store, open_readonly

from helpers import sync

GUID = "4f9d73e63b7144ecb8944c41620a090b"
SECRET = "8fcac28aaa4c4f5fa572b61d40a8e084364db25fd37449c299e5a41c0504cbc2"


@pytest.fixture
def emu():
    with Emulator(seed=5, scale="tiny") as e:
        yield e


@pytest.fixture
def synced(tmp_path, emu):
    db = str(tmp_path / "mirror.duckdb")
    store = Store(db)
    sync(store, emu)
    store.close()
    return db


def config_for(db, emu) -> Config:
    return Config(db=db, sources=[Source(name=emu.org_slug, url=emu.url, org=emu.org_slug, token=emu.token)])


def service(db, emu, **limits) -> HookService:
    client = SentryClient(emu.url, emu.token, backoff_base=0.01)
    options = ServeOptions(port=0, limits=Limits(**limits), refresh_after=0.2)
    return HookService(config_for(db, emu), options, clients={emu.org_slug: (client, emu.org_slug)})


def an_event(emu) -> tuple[dict, str]:
    """A service hook's payload for an event of the world (as the emulator's deliverer builds it)."""
    from sentry_mirror.emulator.hooks import payload

    world = emu.world
    with world.lock:
        issue = next(i for i in world.served_issues() if len(i.times) > 1)
        return payload(world, issue, len(issue.times) - 1, emu.url), str(issue.id)


def post(svc: HookService, body: bytes, *, guid=GUID, secret=SECRET, stamp=None, sig=None, headers=None):
    h = {"Content-Type": "application/json", "X-ServiceHook-GUID": guid,
         "X-ServiceHook-Timestamp": str(int(time.time() if stamp is None else stamp))}
    signed = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if sig is None else sig
    if signed:
        h["X-ServiceHook-Signature"] = signed
    h.update(headers or {})
    return requests.post(f"http://127.0.0.1:{svc.port}/", data=body, headers=h, timeout=10)


def reader(db):
    """A read-only connection; in this process the writer thread may have the file open with
    another configuration, which DuckDB refuses at once rather than as a lock: wait it out."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return open_readonly(db)
        except StoreError as exc:
            if "different configuration" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def stored_events(db, *ids) -> int:
    con = reader(db)
    try:
        return con.execute("SELECT count(*) FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                           [list(ids)]).fetchone()[0]
    finally:
        con.close()


def wait_for(check, timeout=10.0):
    """Wait on the store (or any condition) with a generous deadline; never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def with_secret(db):
    HookSecrets(sidefiles.hook_secrets(db)).add_hook(GUID, SECRET, source=None, project="p", url="http://x/")


def test_signature_good_bad_missing_and_stale(synced, emu):
    with_secret(synced)
    event, _ = an_event(emu)
    body = json.dumps(event).encode()
    with service(synced, emu, replay_seconds=300) as svc:
        assert post(svc, body, sig="0" * 64).status_code == 401
        assert post(svc, body, sig="").status_code == 401  # no signature header at all
        assert post(svc, body, guid="0" * 32).status_code == 401  # unknown hook
        assert post(svc, body, secret="not-the-secret").status_code == 401
        assert post(svc, body, stamp=time.time() - 301).status_code == 401  # replayed later
        assert post(svc, body + b" ", sig=hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()).status_code == 401
        assert svc.spool.pending() == [] and stored_events(synced, event["event"]["eventID"]) in (0, 1)
        before = stored_events(synced, event["event"]["eventID"])
        assert post(svc, body).status_code == 202
        assert post(svc, body).status_code == 202  # delivered twice (Sentry retries)
        wait_for(lambda: svc.drainer.stored == 2)
    assert stored_events(synced, event["event"]["eventID"]) == 1 == max(before, 1)


def test_a_hook_removed_while_serving_is_refused(synced, emu):
    """The receiver keeps the secrets file read, and reads it again when it changes."""
    with_secret(synced)
    body = json.dumps(an_event(emu)[0]).encode()
    with service(synced, emu) as svc:
        assert post(svc, body).status_code == 202
        assert HookSecrets(sidefiles.hook_secrets(synced)).remove_hook(GUID)
        assert post(svc, body).status_code == 401
        with_secret(synced)
        assert post(svc, body).status_code == 202
        wait_for(lambda: svc.drainer.stored == 2)


def test_size_method_type_and_malformed(synced, emu):
    with_secret(synced)
    with service(synced, emu, max_bytes=1000) as svc:
        url = f"http://127.0.0.1:{svc.port}/"
        assert requests.get(url, timeout=5).status_code == 405
        assert requests.post(url, data=b"{}", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 415
        assert post(svc, b"{" + b" " * 2000 + b"}").status_code == 413
        assert post(svc, b"{not json").status_code == 400
        assert post(svc, b"[1, 2]").status_code == 400
        assert svc.spool.pending() == []


def test_an_event_received_then_synced_is_stored_once(tmp_path, emu):
    db = str(tmp_path / "m.duckdb")
    Store(db).close()
    with_secret(db)
    event, issue_id = an_event(emu)
    with service(db, emu) as svc:
        assert post(svc, json.dumps(event).encode()).status_code == 202
        # the issue it belongs to is refreshed from Sentry's issue list, without a sync
        wait_for(lambda: svc.drainer.stored == 1 and svc.refresher.requests == 1 and not svc.drainer.busy())
    assert stored_events(db, event["event"]["eventID"]) == 1 and _issue_count(db, issue_id) == 1
    store = Store(db)
    sync(store, emu)
    n = store.con.execute("SELECT count(*), any_value(issue_id) FROM events WHERE event_id = ?",
                          [event["event"]["eventID"]]).fetchone()
    store.close()
    assert n == (1, issue_id)


def _issue_count(db, issue_id) -> int:
    con = reader(db)
    try:
        return con.execute("SELECT count(*) FROM issues WHERE id = ?", [issue_id]).fetchone()[0]
    finally:
        con.close()


def test_a_delivery_while_a_sync_holds_the_lock_is_stored_after_it(synced, emu):
    with_secret(synced)
    event, _ = an_event(emu)
    eid = event["event"]["eventID"]
    con = Store(synced)
    con.con.execute("DELETE FROM events WHERE event_id = ?", [eid])
    con.close()
    with service(synced, emu) as svc:
        with writer_lock(synced):  # as a running sync holds it
            assert post(svc, json.dumps(event).encode()).status_code == 202  # still answering
            wait_for(lambda: svc.drainer._busy_since is not None)  # the writer tried, and waits
            assert len(svc.spool.pending()) == 1 and svc.drainer.stored == 0
        wait_for(lambda: svc.drainer.stored == 1)
    assert svc.spool.pending() == [] and stored_events(synced, eid) == 1


def test_advancing_the_emulator_with_hooks_stores_new_events_within_two_seconds(synced, emu, tmp_path):
    secrets = HookSecrets(sidefiles.hook_secrets(synced))
    with service(synced, emu) as svc:
        client = SentryClient(emu.url, emu.token)
        projects = [p["slug"] for p in client.get(f"organizations/{emu.org_slug}/projects/")[0]]
        for slug in projects:
            install(client, emu.org_slug, slug, f"http://127.0.0.1:{svc.port}/", ["event.created"], secrets,
                    source=emu.org_slug)
        before = set(emu.world.event_ids())
        emu.requests.reset()
        summary = emu.advance(24)  # makes a day of events, then POSTs them from a thread of its own
        started = time.monotonic()  # the clock runs from here: the world's making is not the receiver's time
        new = sorted(set(emu.world.event_ids()) - before)
        assert new and summary["hook_deliveries"] >= len(new)
        # the writer's count moves after each commit: no reader competes with it for the file here
        wait_for(lambda: svc.drainer.stored >= len(new), timeout=5)
        took = time.monotonic() - started
        wait_for(lambda: svc.refresher.requests and not svc.drainer.busy())
        client.close()
    assert took < 2.0, f"the new events took {took:.2f}s"
    assert stored_events(synced, *new) == len(new)
    counts = emu.request_counts()["by_endpoint"]
    # no sync ran: only the targeted refresh of their issues, 100 ids a request
    assert set(counts) == {"GET /api/0/organizations/{org}/issues/"}
    assert counts["GET /api/0/organizations/{org}/issues/"] <= 1 + len(new) // 100


def test_install_list_remove_and_the_secret_stays_out_of_store_and_logs(synced, emu, tmp_path, caplog):
    caplog.set_level("DEBUG")
    secrets = HookSecrets(str(tmp_path / "secrets.json"))
    client = SentryClient(emu.url, emu.token)
    slug = client.get(f"organizations/{emu.org_slug}/projects/")[0][0]["slug"]
    hook = install(client, emu.org_slug, slug, "https://mirror.example.com/hooks", ["event.created"], secrets,
                   source=emu.org_slug)
    assert "secret" not in hook
    assert oct(os.stat(secrets.path).st_mode & 0o777) == "0o600"
    secret = secrets.hook(hook["id"]).value
    real = [h for h in emu.world.hooks[next(p.idx for p in emu.world.projects if p.slug == slug)]]
    assert real[0]["secret"] == secret and real[0]["id"] == hook["id"]
    listed = list_hooks(client, emu.org_slug, [slug])
    assert hook["id"] in {h["id"] for h in listed} and all("secret" not in h for h in listed)
    assert remove(client, emu.org_slug, slug, hook["id"], secrets)
    assert hook["id"] not in {h["id"] for h in list_hooks(client, emu.org_slug, [slug])}
    assert secrets.hook(hook["id"]) is None
    client.close()
    store_bytes = Path(synced).read_bytes()
    assert secret.encode() not in store_bytes and secret not in caplog.text


def test_the_cli_never_shows_the_secret(synced, emu, tmp_path):
    from helpers import invoke

    secrets = tmp_path / "s.json"
    env = {"SENTRY_AUTH_TOKEN": emu.token}
    common = ["--org", emu.org_slug, "--db", synced, "--secrets", str(secrets)]
    args = ["--url", emu.url, *common]
    slug = emu.world.projects[0].slug
    install_args = ["--sentry-url", emu.url, *common]
    refused = invoke("hooks", "install", "--project", slug, "--url", "https://m.example.com/h", *install_args, env=env)
    assert refused.exit_code != 0 and "--yes" in refused.output and not secrets.exists()
    done = invoke("hooks", "install", "--project", slug, "--url", "https://m.example.com/h", "--yes", "-v",
                  *install_args, env=env)
    assert done.exit_code == 0, done.output
    guid, entry = next(iter(json.loads(secrets.read_text())["hooks"].items()))
    listed = invoke("hooks", "list", "--project", slug, "--json", *args, env=env)
    assert guid in listed.output
    gone = invoke("hooks", "remove", guid, "--yes", *args, env=env)
    assert gone.exit_code == 0, gone.output
    for result in (done, listed, gone):
        assert entry["secret"] not in result.output
    assert entry["secret"].encode() not in Path(synced).read_bytes()


def test_install_refuses_a_second_hook_to_the_same_url_and_a_bad_variable_name(synced, emu, tmp_path):
    from helpers import one_line_error, run

    secrets = tmp_path / "s.json"
    slug = emu.world.projects[1].slug
    args = ["--project", slug, "--sentry-url", emu.url, "--org", emu.org_slug, "--db", synced,
            "--secrets", str(secrets), "--yes"]
    env = {"SENTRY_AUTH_TOKEN": emu.token, "HOOK_SEC": None}
    line = one_line_error(run("hooks", "install", "--url", "https://m.example.com/a", "--secret-env", "bad name",
                              *args, env=env), code=2)
    assert "--secret-env must be" in line and not secrets.exists()
    first = run("hooks", "install", "--url", "https://m.example.com/a", "--secret-env", "HOOK_SEC", *args, env=env)
    assert first.exit_code == 0, first.output + first.stderr
    assert f"the name of the variable holding its secret, HOOK_SEC, is kept in {secrets}" in first.output
    [guid] = json.loads(secrets.read_text())["hooks"]
    kept = secrets.read_text()
    hooks_before = list(emu.world.hooks[emu.world.projects[1].idx])
    again = run("hooks", "install", "--url", "https://m.example.com/a", *args, env=env)
    line = one_line_error(again, code=2)
    assert f"already has service hook {guid} sending to https://m.example.com/a" in line
    assert f"hooks remove {guid}" in line
    assert emu.world.hooks[emu.world.projects[1].idx] == hooks_before and secrets.read_text() == kept
    other = run("hooks", "install", "--url", "https://m.example.com/b", *args, env=env)  # another URL is fine
    assert other.exit_code == 0, other.stderr
    # the list says which hooks this receiver can check: the secret kept, or a variable (set or not)
    common = ["--project", slug, "--url", emu.url, "--org", emu.org_slug, "--db", synced, "--secrets", str(secrets)]
    listed = run("hooks", "list", *common, "--json", env=env)
    here = {h["url"]: h["secret_here"] for h in json.loads(listed.output)}
    assert here["https://m.example.com/a"] == "$HOOK_SEC (unset)" and here["https://m.example.com/b"] == "yes"
    assert set(here.values()) - {"yes", "$HOOK_SEC (unset)"} <= {"no"}  # the world's own hooks: no secret here
    table = run("hooks", "list", *common, env={**env, "HOOK_SEC": "s"})
    assert table.output.startswith("PROJECT") and "$HOOK_SEC " in table.output
    # a hook Sentry does not have: one line that points at `hooks list`, not at --org
    line = one_line_error(run("hooks", "remove", "deadbeef", *common, "--yes", env=env), code=4)
    assert f"Sentry has no service hook deadbeef on {emu.org_slug}/{slug}" in line and "hooks list" in line


def test_a_crash_after_2xx_before_the_write_loses_nothing(synced, emu, tmp_path):
    """The receiver is killed (SIGKILL) after answering 202 while a sync holds the store; the next
    start writes what the spool kept."""
    with_secret(synced)
    event, _ = an_event(emu)
    eid = event["event"]["eventID"]
    s = Store(synced)
    s.con.execute("DELETE FROM events WHERE event_id = ?", [eid])
    s.close()
    log = tmp_path / "serve.log"

    def start():
        fh = open(log, "ab")
        proc = subprocess.Popen([sys.executable, "-m", "sentry_mirror", "hooks", "serve", "-v", "--port", "0",
                                 "--url", emu.url, "--org", emu.org_slug, "--db", synced, "--refresh-after", "0.1",
                                 "--port-file", str(tmp_path / "port")],
                                stdout=fh, stderr=fh, env={**os.environ, "SENTRY_AUTH_TOKEN": emu.token})
        wait_for(lambda: (tmp_path / "port").exists() and (tmp_path / "port").read_text().strip())
        return proc, int((tmp_path / "port").read_text())

    with writer_lock(synced):
        proc, port = start()
        body = json.dumps(event).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        r = requests.post(f"http://127.0.0.1:{port}/", data=body, timeout=10, headers={
            "Content-Type": "application/json", "X-ServiceHook-GUID": GUID, "X-ServiceHook-Signature": sig,
            "X-ServiceHook-Timestamp": str(int(time.time()))})
        assert r.status_code == 202
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert stored_events(synced, eid) == 0
    (tmp_path / "port").unlink()
    proc, _ = start()
    try:
        wait_for(lambda: stored_events(synced, eid) == 1, timeout=20)
    finally:
        proc.terminate()
        proc.wait(20)
    assert SECRET not in log.read_text()


def test_integration_issue_webhook_changes_status_at_once(synced, emu, monkeypatch):
    monkeypatch.setenv("MY_INTEGRATION_SECRET", "client-secret-1")
    con = open_readonly(synced)
    issue_id, raw = con.execute("SELECT id, raw FROM issues WHERE status = 'unresolved' LIMIT 1").fetchone()
    con.close()
    issue = {**json.loads(raw), "status": "resolved", "substatus": None}
    body = json.dumps({"action": "resolved", "installation": {"uuid": "i-1"}, "data": {"issue": issue},
                       "actor": {"type": "user", "id": 1, "name": "Ann"}}).encode()
    client = SentryClient(emu.url, emu.token)
    options = ServeOptions(port=0, integration_secret_envs=("MY_INTEGRATION_SECRET",))
    with HookService(config_for(synced, emu), options, clients={emu.org_slug: (client, emu.org_slug)}) as svc:
        url = f"http://127.0.0.1:{svc.port}/"

        def send(secret, stamp):
            sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            return requests.post(url, data=body, timeout=10, headers={
                "Content-Type": "application/json", "Sentry-Hook-Resource": "issue",
                "Sentry-Hook-Timestamp": str(int(stamp)), "Sentry-Hook-Signature": sig, "Request-ID": "r1"})

        assert send("wrong", time.time()).status_code == 401
        assert send("client-secret-1", time.time() - 3600).status_code == 401
        assert send("client-secret-1", time.time()).status_code == 202
        wait_for(lambda: svc.drainer.stored == 1)
    con = open_readonly(synced)
    status = con.execute("SELECT status FROM issues WHERE id = ?", [issue_id]).fetchone()[0]
    via = con.execute("SELECT via FROM issue_status_history WHERE issue_id = ? AND to_status = 'resolved'",
                      [issue_id]).fetchall()
    noted = con.execute("SELECT source FROM _sync_state WHERE stream = ? AND scope = ?", list(ISSUE_HOOKS)).fetchall()
    con.close()
    assert status == "resolved" and via == [("webhook",)]
    assert noted == [(emu.org_slug,)]  # its syncs may re-read fewer known issues now (test_sync_cost.py)


def test_a_hook_is_never_created_twice_by_a_retry(synced, emu, tmp_path):
    """A POST that meets a 5xx may have been done: it is not sent again (a 429 is: Sentry did not act)."""
    secrets = HookSecrets(str(tmp_path / "secrets.json"))
    client = SentryClient(emu.url, emu.token)
    client._delay = lambda attempt, response: 0.01  # the paths, not the waits, are under test
    slug = emu.world.projects[0].slug
    project = next(p.idx for p in emu.world.projects if p.slug == slug)
    before = len(emu.world.hooks.get(project, []))
    route = "*/hooks/"

    def posts():
        return emu.request_counts()["by_endpoint"].get("POST /api/0/projects/{org}/{project}/hooks/", 0)

    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "503", "route": route, "times": 1}, timeout=10)
    sent = posts()
    with pytest.raises(ApiError):
        install(client, emu.org_slug, slug, "https://mirror.example.com/hooks", ["event.created"], secrets,
                source=emu.org_slug)
    assert posts() - sent == 1 and len(emu.world.hooks.get(project, [])) == before
    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "429", "route": route, "times": 1}, timeout=10)
    sent = posts()
    install(client, emu.org_slug, slug, "https://mirror.example.com/hooks", ["event.created"], secrets,
            source=emu.org_slug)
    assert posts() - sent == 2 and len(emu.world.hooks.get(project, [])) == before + 1
    client.close()


def test_a_sync_that_takes_the_lock_mid_burst_gets_the_store(synced, emu):
    """The writer keeps the store open between the batches of a burst, but lets go of the writer
    lock after each: a sync that takes the lock then must still get the file."""
    from sentry_mirror.running.hooks.drain import Drainer, Refresher
    from sentry_mirror.running.hooks.spool import HookSpool

    event, _ = an_event(emu)
    spool = HookSpool(sidefiles.hook_spool(synced))
    for k in range(2):
        event["event"]["eventID"] = event["event"]["id"] = f"{k:032x}"
        spool.put({"kind": "service", "source": emu.org_slug, "received_at": time.time()}, json.dumps(event).encode())
    drainer = Drainer(synced, spool, Refresher({}), default_source=emu.org_slug, batch_size=1)
    assert drainer.cycle() == 1 and len(spool.pending()) == 1  # mid-burst: one batch stored, one waits
    with writer_lock(synced):  # a sync starts between the two batches
        assert drainer.cycle() == 0  # the writer cannot take the lock...
        # ...and has let go of the file: a sync in another process opens it (within its patience)
        opened = subprocess.run([sys.executable, "-c", "import sys; from sentry_mirror.storage.store import Store; "
                                 "Store(sys.argv[1], reader_wait=5.0).close()", synced], capture_output=True, text=True)
        assert opened.returncode == 0, opened.stderr[-300:]
    assert drainer.cycle() == 1 and not spool.pending()
    drainer._let_go()
    assert stored_events(synced, f"{0:032x}", f"{1:032x}") == 2



def serve_process(db, emu, *flags):
    """`hooks serve` in a process of its own; its stderr lines are handed over (a queue) as they come,
    and None once it closed stderr."""
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "sentry_mirror", "hooks", "serve", "--port", "0", "--url", emu.url,
                             "--org", emu.org_slug, "--db", db, *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "SENTRY_AUTH_TOKEN": emu.token})
    lines: queue.Queue = queue.Queue()

    def read():
        for line in proc.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_serve_says_where_it_listens_without_v_and_not_with_q(synced, emu, tmp_path):
    proc, lines = serve_process(synced, emu)
    try:
        line = lines.get(timeout=30)  # its first line, at the default log level
        assert line and line.startswith("receiving Sentry webhooks on http://127.0.0.1:"), line
        assert requests.get(line.split()[4], timeout=10).status_code == 405  # the receiver's own address
    finally:
        proc.terminate()
        proc.wait(20)
    port_file = tmp_path / "port"
    proc, lines = serve_process(synced, emu, "-q", "--port-file", str(port_file))
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30)
    finally:
        proc.terminate()
        proc.wait(20)
    said = list(iter(lambda: lines.get(timeout=20), None))  # to the end of its stderr
    assert not any("receiving" in line for line in said), said


def warnings_with(caplog, *words) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and all(w in r.getMessage() for w in words)]


def test_a_hook_whose_secret_variable_is_unset_is_named_at_start_and_its_refusals_warned(synced, emu, caplog,
                                                                                          monkeypatch):
    monkeypatch.delenv("HOOK_SEC_T", raising=False)
    HookSecrets(sidefiles.hook_secrets(synced)).add_hook_env(GUID, "HOOK_SEC_T", source=None, project="backend",
                                                              url="http://x/")
    body = json.dumps(an_event(emu)[0]).encode()
    with service(synced, emu) as svc:
        assert warnings_with(caplog, GUID, "backend", "HOOK_SEC_T", "not set")  # at start
        caplog.clear()
        for _ in range(3):  # a flood: one warning a minute per hook
            assert post(svc, body).status_code == 401
        assert len(warnings_with(caplog, GUID, "HOOK_SEC_T", "refused")) == 1
        assert post(svc, body, guid="0" * 32).status_code == 401  # a hook nobody installed: no such warning
        assert len(warnings_with(caplog, "HOOK_SEC_T")) == 1
        monkeypatch.setenv("HOOK_SEC_T", SECRET)
        assert post(svc, body).status_code == 202


def test_other_refusals_are_summed_up_in_one_warning_a_minute(synced, emu, caplog):
    with_secret(synced)
    body = json.dumps(an_event(emu)[0]).encode()
    with service(synced, emu) as svc:
        for _ in range(3):
            assert post(svc, body, secret="not-the-secret").status_code == 401
        assert post(svc, body, guid="0" * 32).status_code == 401
    said = warnings_with(caplog, "refused")
    assert len(said) == 1 and "401 missing or wrong signature" in said[0], said
