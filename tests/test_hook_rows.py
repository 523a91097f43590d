"""What the hook writer stores, row for row: a hooked event is the row a sync makes of it, and a body
the store cannot read is set aside rather than holding up the deliveries after it."""

from __future__ import annotations

import json

import pytest

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

from helpers import sync
from test_hooks import an_event, post, reader, service, stored_events, wait_for, with_secret

CHILD_TABLES = ("event_tags", "event_exceptions", "event_contexts")


@pytest.fixture
def emu():
    with Emulator(seed=5, scale="tiny") as e:
        yield e


def rows(db: str, event_id: str, payload: bool = True) -> dict:
    """The event's row (but for when it was written, and without its payload unless asked) and its
    rows in the tables derived from it."""
    skip = {"synced_at"} if payload else {"synced_at", "raw", "raw_hash"}
    con = reader(db)
    try:
        cols = [c[0] for c in con.execute("DESCRIBE events").fetchall() if c[0] not in skip]
        out = {"events": con.execute(f"SELECT {', '.join(cols)} FROM events WHERE event_id = ?", [event_id]).fetchall()}
        for table in CHILD_TABLES:
            cols = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] != "synced_at"]
            out[table] = sorted(con.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE event_id = ?",
                                            [event_id]).fetchall(), key=repr)
        return out
    finally:
        con.close()


def test_a_hooked_event_is_the_row_a_sync_makes_of_it(tmp_path, emu):
    event, _ = an_event(emu)
    event_id = event["event"]["eventID"]
    synced_db, hooked_db = str(tmp_path / "synced.duckdb"), str(tmp_path / "hooked.duckdb")
    store = Store(synced_db)
    sync(store, emu)
    store.close()
    Store(hooked_db).close()
    with_secret(hooked_db)
    with service(hooked_db, emu) as svc:
        assert post(svc, json.dumps(event).encode()).status_code == 202
        wait_for(lambda: svc.drainer.stored == 1 and not svc.drainer.busy())
    # the webhook carries the event's detail (nextEventID and the like), the sync its list entry:
    # the payloads differ, every column read from them is the same
    hooked, synced = rows(hooked_db, event_id, payload=False), rows(synced_db, event_id, payload=False)
    assert len(synced["events"]) == 1 and synced["event_tags"] and synced["event_exceptions"]
    assert hooked == synced
    store = Store(hooked_db)  # and a sync after it makes it the synced row, payload and all
    sync(store, emu)
    store.close()
    assert rows(hooked_db, event_id) == rows(synced_db, event_id)


def test_a_body_the_store_cannot_read_does_not_hold_up_the_rest(tmp_path, emu):
    db = str(tmp_path / "m.duckdb")
    Store(db).close()
    with_secret(db)
    event, _ = an_event(emu)
    with service(db, emu) as svc:
        # Python's parser takes a lone surrogate, DuckDB's (the store's) does not
        assert post(svc, b'{"event": {"eventID": "' + b"e" * 32 + b'", "title": "\\ud800"}}').status_code == 202
        assert post(svc, json.dumps(event).encode()).status_code == 202
        wait_for(lambda: stored_events(db, event["event"]["eventID"]) == 1 and not svc.spool.pending())
    assert stored_events(db, "e" * 32) == 0


def test_a_big_batch_parsed_in_halves_keeps_each_event_with_its_issue(emu):
    """Batches of SPLIT_FROM deliveries or more are parsed on two threads: each event keeps its own
    issue, and the one body DuckDB cannot read is the one set aside."""
    from sentry_mirror.running.hooks import drain
    from sentry_mirror.running.hooks.spool import Delivery

    event, _ = an_event(emu)
    deliveries = []
    for k in range(drain.SPLIT_FROM + 51):
        event["event"]["eventID"] = event["event"]["id"] = f"{k:032x}"
        event["group"]["id"] = str(1000 + k)
        body = json.dumps(event).encode()
        if k == drain.SPLIT_FROM - 10:  # in the second half
            body = b'{"event": {"eventID": "' + b"e" * 32 + b'", "title": "\\ud800"}}'
        deliveries.append(Delivery("f", {"kind": "service", "source": "s"}, body))
    batch = drain.read_batch(deliveries, None)
    pairs = [(json.loads(text)["eventID"], ctx["issue_id"]) for text, ctx in batch.events["s"]]
    bad = drain.SPLIT_FROM - 10
    assert batch.skipped == 1 and len(pairs) == len(deliveries) - 1
    assert pairs == [(f"{k:032x}", str(1000 + k)) for k in range(len(deliveries)) if k != bad]


def test_a_store_written_only_by_hooks_has_its_views_and_readers_see_it(tmp_path, emu):
    """No sync ever ran: the writer makes the views (reports read them), `issues` lists what the
    refreshes stored, and `status` says what the webhooks stored."""
    from helpers import invoke

    db = str(tmp_path / "hooked.duckdb")
    with_secret(db)
    event, issue_id = an_event(emu)
    with service(db, emu) as svc:
        assert post(svc, json.dumps(event).encode()).status_code == 202
        wait_for(lambda: svc.drainer.stored == 1 and svc.refresher.requests and not svc.drainer.busy())
    listed = invoke("issues", "--db", db, "--format", "csv")
    assert listed.exit_code == 0, listed.output
    assert len(listed.stdout.strip().splitlines()) == 2  # its header and the one issue
    top = invoke("report", "top", "--db", db)
    assert top.exit_code == 0, top.output
    status = invoke("status", "--db", db)
    assert status.exit_code == 1  # no sync yet, as it says
    assert "never synced; webhooks stored 1 event and 1 issue" in status.stdout, status.output


@pytest.mark.parametrize("broken", [
    {"event": {"event_id": 5}},  # the trial's: a number for an id, and no issue, project or time
    "event id",  # each field an event row needs, taken out of a good delivery in turn
    "issue", "project", "time",
])
def test_a_signed_event_missing_what_a_row_needs_is_quarantined_not_stored(tmp_path, emu, broken):
    db = str(tmp_path / "m.duckdb")
    Store(db).close()
    with_secret(db)
    event, _ = an_event(emu)
    bad = json.loads(json.dumps(event))
    if isinstance(broken, dict):
        bad = broken
    else:
        bad["event"]["eventID"] = bad["event"]["id"] = bad["event"]["event_id"] = "f" * 32
        field = {"event id": ("eventID", "id"), "issue": ("groupID",), "project": ("projectID",),
                 "time": ("dateCreated",)}[broken]
        for name in field:
            bad["event"][name] = 7 if broken == "event id" else None
        if broken == "issue":
            bad["group"]["id"] = None
    with service(db, emu) as svc:
        assert post(svc, json.dumps(bad).encode()).status_code == 202
        assert post(svc, json.dumps(event).encode()).status_code == 202
        # waits on the writer, not the store: a reader in this process would keep the writer out
        wait_for(lambda: svc.drainer.stored == 2 and not svc.drainer.busy())
        assert len(svc.spool.quarantined()) == 1
        kept = svc.spool.read_quarantined(svc.spool.quarantined()[0])
        assert [d.body for d in kept] == [json.dumps(bad).encode()]
    con = reader(db)
    try:  # the good one only
        assert con.execute("SELECT event_id FROM events").fetchall() == [(event["event"]["eventID"],)]
    finally:
        con.close()


def test_an_integration_error_webhook_is_a_whole_row(emu):
    """Sentry's `error` resource names the project `project` (a number) and the time `datetime`:
    the row gets them as a synced event's projectID and dateCreated."""
    from sentry_mirror.running.hooks import drain
    from sentry_mirror.running.hooks.spool import Delivery

    error = {"event_id": "a" * 32, "project": 42, "datetime": "2019-08-19T20:58:37.391000Z", "issue_id": "117",
             "url": "u", "web_url": "w", "issue_url": "i", "title": "boom"}
    body = json.dumps({"action": "created", "data": {"error": error}}).encode()
    batch = drain.read_batch([Delivery("f", {"kind": "integration", "resource": "error", "source": "s"}, body)], None)
    [(text, ctx)] = batch.events["s"]
    assert ctx == {"issue_id": "117"} and not batch.set_aside
    assert json.loads(text) == {"event_id": "a" * 32, "project": 42, "projectID": "42", "title": "boom",
                                "datetime": "2019-08-19T20:58:37.391000Z", "dateCreated": "2019-08-19T20:58:37.391000Z"}
