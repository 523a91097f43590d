"""The write buffer: a batch of rows, raw pages, states and updates commits in one transaction or
not at all; maybe_flush writes a full or old batch and leaves a small young one waiting.

No emulator, no HTTP: objects shaped like Sentry's (tests/fixtures) go straight to the buffer.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

import pytest
from conftest import load_fixture

from sentry_mirror.errors import StoreError
from sentry_mirror.fetching import rawpage
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.buffer import WriteBuffer

SOURCE = "sentry"


def issues(n: int, first: int = 1) -> list[dict]:
    """`n` issues shaped like Sentry's organization issue list, ids `first`…"""
    base = load_fixture("org_issues.json")[0]
    out = []
    for i in range(first, first + n):
        issue = copy.deepcopy(base)
        issue.update(id=str(1000 + i), shortId=f"PUMP-STATION-{i}", title=f"Error {i}",
                     lastSeen=f"2018-12-06T21:{i % 60:02d}:00Z")
        out.append(issue)
    return out


def count(store: Store, table: str) -> int:
    return store.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def failing(*_args, **_kwargs):
    raise StoreError("disk full (injected)")


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def test_rows_and_their_cursor_commit_together_or_not_at_all(store, monkeypatch):
    buf = WriteBuffer(store, SOURCE)
    buf.add("issues", issues(3))
    buf.state("cursor", "issues", "", cursor="0:3:0", params={"query": ""}, extra=None)
    monkeypatch.setattr(store, "apply_states", failing)  # the state is written last in the batch
    with pytest.raises(StoreError):
        buf.flush()
    assert count(store, "issues") == 0  # the rows written before the failure were rolled back
    assert store.get_state(SOURCE, "issues", "") is None

    monkeypatch.undo()
    buf.flush()  # the batch was kept: the same rows and cursor, now committed
    assert count(store, "issues") == 3
    assert store.get_state(SOURCE, "issues", "")["cursor"] == "0:3:0"
    assert not buf.rows and not buf.states


def test_an_upsert_failing_mid_batch_rolls_back_the_entities_before_it(store, monkeypatch):
    buf = WriteBuffer(store, SOURCE)
    buf.add("issues", issues(2))
    buf.add("releases", load_fixture("org_releases.json"))
    buf.state("cursor", "releases", "", cursor="0:1:0", params={"status": "open"}, extra=None)
    real = store.upsert

    def upsert(entity, *args, **kwargs):
        if entity == "releases":
            raise StoreError("could not store 1 releases (injected)")
        return real(entity, *args, **kwargs)

    monkeypatch.setattr(store, "upsert", upsert)
    with pytest.raises(StoreError):
        buf.flush()
    assert count(store, "issues") == 0
    assert count(store, "releases") == 0
    assert store.get_state(SOURCE, "releases", "") is None


def test_raw_pages_and_their_state_commit_together(store, monkeypatch):
    events = load_fixture("issue_events.json")
    page = rawpage.inspect(json.dumps(events).encode())
    written = []
    buf = WriteBuffer(store, SOURCE, on_written=lambda entity, n: written.append((entity, n)))
    buf.add_page("events", page, {"issue_id": events[0]["groupID"]})
    buf.state("cursor", "events", events[0]["groupID"], cursor="0:100:0", params={"full": "true"}, extra=None)
    monkeypatch.setattr(store, "apply_states", failing)
    with pytest.raises(StoreError):
        buf.flush()
    assert count(store, "events") == 0 and written == []
    monkeypatch.undo()
    buf.flush()
    assert [r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall()] == [events[0]["eventID"]]
    assert store.get_state(SOURCE, "events", events[0]["groupID"])["cursor"] == "0:100:0"
    assert written == [("events", 1)]


def test_a_batch_out_of_memory_is_written_again_in_narrower_slices(store, monkeypatch):
    real = store.upsert
    calls = []

    def upsert(*args, **kwargs):
        calls.append(store.object_slice_bytes)
        if len(calls) == 1:
            error = StoreError("could not store 3 issues: Out of Memory Error (injected)")
            error.out_of_memory = True
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "upsert", upsert)
    buf = WriteBuffer(store, SOURCE)
    buf.add("issues", issues(3))
    buf.state("cursor", "issues", "", cursor="0:3:0", params={}, extra=None)
    buf.flush()
    assert calls[1] == calls[0] // 4
    assert count(store, "issues") == 3 and buf.written == {"issues": 3}


def test_maybe_flush_writes_a_full_batch_and_leaves_a_smaller_one_waiting(store):
    buf = WriteBuffer(store, SOURCE, max_rows=3, max_seconds=3600)
    buf.add("issues", issues(2))
    buf.state("cursor", "issues", "", cursor="0:2:0", params={}, extra=None)
    buf.maybe_flush()
    assert count(store, "issues") == 0 and store.get_state(SOURCE, "issues", "") is None

    buf.add("issues", issues(1, first=3))
    buf.state("cursor", "issues", "", cursor="0:3:0", params={}, extra=None)
    buf.maybe_flush()  # 3 rows: full
    assert count(store, "issues") == 3
    assert store.get_state(SOURCE, "issues", "")["cursor"] == "0:3:0"

    buf.add("issues", issues(1, first=4))
    buf.state("cursor", "issues", "", cursor="0:4:0", params={}, extra=None)
    buf.maybe_flush()
    assert count(store, "issues") == 3  # one row waits for more
    assert store.get_state(SOURCE, "issues", "")["cursor"] == "0:3:0"
    assert len(buf.rows["issues"]) == 1


def test_maybe_flush_writes_an_old_batch_of_states(store):
    buf = WriteBuffer(store, SOURCE, max_rows=1000, max_seconds=0)
    buf.state("state", "issues", "", watermark="2018-12-06T21:19:55Z", cursor=None, params=None, extra=None)
    buf.maybe_flush()
    assert store.get_state(SOURCE, "issues", "")["watermark"] == "2018-12-06T21:19:55Z"


NOW = datetime(2024, 5, 1, 12, 0, 0)


def stats_points(hours: range) -> list[list]:
    """Sentry's project stats: [unix seconds, count] per hour from NOW (negative: the past)."""
    epoch = datetime(1970, 1, 1)
    return [[int((NOW + timedelta(hours=h) - epoch).total_seconds()), 10 + h] for h in hours]


def stored_stats(store: Store) -> list[tuple]:
    return store.con.execute("SELECT project_id, ts, count FROM project_stats ORDER BY project_id, ts").fetchall()


def test_update_runs_after_the_rows_in_the_same_transaction(store, monkeypatch):
    ours = {"project_id": "2", "stat": "received", "resolution": "1h"}
    other = {**ours, "project_id": "3"}
    buf = WriteBuffer(store, SOURCE)
    # an earlier sync, whose Date header ran ahead, stored buckets for hours still to come
    buf.add("project_stats", stats_points(range(-2, 3)), ours)
    buf.add("project_stats", stats_points(range(-1, 2)), other)
    buf.flush()
    assert len(stored_stats(store)) == 8

    buf.add("project_stats", stats_points(range(-1, 0)), ours)
    buf.update("project_stats_future", **ours, until=NOW)
    buf.state("state", "project_stats", "2", watermark=None, cursor=None, params=None, extra=None)
    monkeypatch.setattr(store, "apply_states", failing)
    with pytest.raises(StoreError):
        buf.flush()
    assert len(stored_stats(store)) == 8  # the update was rolled back with the batch

    monkeypatch.undo()
    buf.flush()
    kept = stored_stats(store)
    assert [(p, ts) for p, ts, _ in kept] == [
        ("2", NOW - timedelta(hours=2)), ("2", NOW - timedelta(hours=1)), ("2", NOW),
        ("3", NOW - timedelta(hours=1)), ("3", NOW), ("3", NOW + timedelta(hours=1))]  # other projects untouched


def test_update_in_the_batch_sees_the_rows_added_before_it(store):
    """Updates run after the batch's rows: a future bucket added in the same batch is dropped too."""
    ours = {"project_id": "2", "stat": "received", "resolution": "1h"}
    buf = WriteBuffer(store, SOURCE)
    buf.add("project_stats", stats_points(range(0, 2)), ours)
    buf.update("project_stats_future", **ours, until=NOW)
    buf.flush()
    assert [ts for _, ts, _ in stored_stats(store)] == [NOW]
