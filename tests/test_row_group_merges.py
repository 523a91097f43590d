"""The writer leaves DuckDB's row-group merges for later and merges in one go (Store.merge_if_due).

Each checkpoint puts the rows appended since the last one in a new row group; DuckDB's vacuum
merges small row groups at every checkpoint, which rewrote the stored events again and again
(170 of 445 s of a million-event first sync). These tests check that merges wait, happen once a
row group's worth of events sits in small row groups (within a sync and across syncs) or when
there are too many small row groups, and that no row is lost or written twice by them.
"""

import json

import duckdb
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.fetching import rawpage
from sentry_mirror.storage import store as store_module
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.buffer import WriteBuffer

TOKEN = "merge-test-token"


def row_groups(con, table: str) -> list[int]:
    """Rows per row group of `table`, in order."""
    return [r[1] for r in con.execute(
        f"SELECT row_group_id, max(count) FROM pragma_storage_info('{table}') GROUP BY 1 ORDER BY 1").fetchall()]


def vacuum_tasks(con) -> int:
    return con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()[0]


def event(i: int) -> dict:
    return {"eventID": f"{i:032x}", "groupID": str(1000 + i % 7), "projectID": "1",
            "dateCreated": "2026-01-02T03:04:05Z", "title": f"Error {i}", "message": "x" * 200,
            "tags": [{"key": "level", "value": "error"}],
            "entries": [{"type": "exception", "data": {"values": [
                {"type": "ValueError", "value": str(i),
                 "stacktrace": {"frames": [{"function": "f", "lineNo": i}, {"function": "g", "lineNo": 2}]}}]}}],
            "contexts": {"os": {"type": "os", "name": "Linux"}}}


def write_batches(store: Store, batches: int, per_batch: int = 100, start: int = 0) -> None:
    """`batches` commits of `per_batch` events each; with lease_seconds=0 each commit is followed
    by a close, whose checkpoint starts a row group of its own."""
    buffer = WriteBuffer(store, "s1")
    for b in range(batches):
        events = [event(start + b * per_batch + i) for i in range(per_batch)]
        buffer.add_page("events", rawpage.inspect(json.dumps(events).encode()), {"project_id": "1"})
        buffer.flush()


def test_merges_wait_until_a_row_group_of_events_is_appended(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MERGE_EVERY_ROWS", 500)
    store = Store(tmp_path / "m.duckdb", lease_seconds=0)
    write_batches(store, 4)  # 400 events: four checkpoints, four row groups, none merged
    assert row_groups(store.con, "events") == [100] * 4
    assert vacuum_tasks(store.con) == 0
    write_batches(store, 2, start=400)  # the commit that passed 500 was followed by a merge
    assert row_groups(store.con, "events") == [500, 100]
    assert row_groups(store.con, "event_frames") == [1000, 200]
    assert vacuum_tasks(store.con) == 0
    con = store.con
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (600, 600)
    assert con.execute("SELECT count(*) FROM event_tags").fetchone()[0] == 600
    assert con.execute("SELECT count(*) FROM event_contexts").fetchone()[0] == 600
    store.close()


def test_duckdb_itself_merges_at_every_checkpoint(tmp_path):
    """The behaviour the writer turns off: with the vacuum on, each checkpoint merges the new rows
    into the last row group (rewriting it); with it off, each checkpoint leaves a row group."""
    for tasks, expected in ((100, [400]), (0, [100] * 4)):
        con = duckdb.connect(str(tmp_path / f"raw{tasks}.duckdb"))
        con.execute(f"SET max_vacuum_tasks = {tasks}")
        con.execute("CREATE TABLE t (s VARCHAR)")
        for _ in range(4):
            con.execute("INSERT INTO t SELECT repeat('x', 100) FROM range(100)")
            con.execute("CHECKPOINT")
        assert row_groups(con, "t") == expected
        con.close()


def test_small_row_groups_left_by_earlier_syncs_count_toward_the_merge(tmp_path, monkeypatch):
    """A store smaller than a row group stays in small row groups (merging it would write it twice
    over); the next sync counts what they hold, and merges once they hold a row group's worth."""
    monkeypatch.setattr(store_module, "MERGE_EVERY_ROWS", 500)
    store = Store(tmp_path / "m.duckdb", lease_seconds=0)
    write_batches(store, 3)
    assert not store.merge_if_due()  # 300 events in small row groups: left as they are
    store.set_state("s1", "events", "x", cursor="c")
    assert row_groups(store.con, "events") == [100] * 3
    store.close()
    store = Store(tmp_path / "m.duckdb", lease_seconds=0)  # the next sync
    write_batches(store, 3, start=300)  # 300 appended by this one: not a row group's worth alone
    assert row_groups(store.con, "events") == [100] * 6
    assert store.merge_if_due()  # 600 in small row groups
    store.set_state("s1", "events", "x", cursor="d")  # the next commit merges
    assert row_groups(store.con, "events") == [600]
    assert store.con.execute("SELECT count(DISTINCT event_id), count(*) FROM events").fetchone() == (600, 600)
    store.close()


def test_many_small_row_groups_are_merged_whatever_they_hold(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_SMALL_ROW_GROUPS", 12)
    store = Store(tmp_path / "m.duckdb", lease_seconds=0)
    write_batches(store, 3)  # 3 checkpoints x 5 event tables: 15 small row groups
    assert store.merge_if_due()
    store.set_state("s1", "events", "x", cursor="c")
    assert row_groups(store.con, "events") == [300]
    store.close()


def test_a_sync_of_the_emulator_merges_at_its_end_when_due(tmp_path, monkeypatch):
    """A first sync of the emulator, its leases closing after every commit (a row group each):
    with merging due at its end, every event table ends in one row group; every served event is
    stored once either way."""
    monkeypatch.setattr(store_module, "MAX_SMALL_ROW_GROUPS", 1)
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(tmp_path / "s.duckdb", lease_seconds=0)
        assert sync(store, emu).status == "ok"
        con = store.con
        for table in ("events", "event_frames", "event_tags", "event_contexts", "issues"):
            assert len(row_groups(con, table)) == 1, table
        assert vacuum_tasks(con) == 0
        stored = [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()]
        assert sorted(stored) == sorted(set(emu.world.event_ids()))
        store.close()
