"""Big payloads within the syncer's memory limits: pages of big events, full batches of objects.

Sentry events carry breadcrumbs, frame variables and request bodies: 100 of them at 50 KB or more
make a page of many megabytes. DuckDB's parser needs several times a text's size at once, so such
pages used to fail with an out-of-memory error reported as "not valid JSON"; and a batch of 500
issues shaped like Sentry's example failed in the store the same way.
"""

import copy
import json
from datetime import datetime

import pytest

from sentry_mirror.fetching import rawpage
from sentry_mirror.storage import store as store_module
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.buffer import WriteBuffer


def big_events(fixture, n: int, kb: int, start: int = 0) -> list[dict]:
    """`n` copies of Sentry's full-event example, each with its own id and `kb` KB of breadcrumbs."""
    base = fixture("project_event.json")
    events = []
    for i in range(start, start + n):
        event = copy.deepcopy(base)
        event["eventID"] = event["id"] = f"{i:032x}"
        event["dateCreated"] = f"2026-01-{1 + i % 28:02d}T10:00:00.{i % 1000:03d}000Z"
        crumb = {"category": "http", "message": "x" * 1000}
        event["entries"].append({"type": "breadcrumbs", "data": {"values": [crumb] * kb}})
        events.append(event)
    return events


def frames_per_event(fixture) -> int:
    entries = fixture("project_event.json")["entries"]
    return sum(len(v["stacktrace"]["frames"]) for e in entries if e["type"] == "exception" for v in e["data"]["values"])


def test_a_big_page_is_split_into_parts_holding_each_object_unchanged(fixture):
    events = big_events(fixture, 100, 50)
    body = json.dumps(events, indent=1).encode()  # whitespace between objects, as some servers send
    assert len(body) > rawpage.WHOLE_BYTES
    page = rawpage.inspect(body)
    assert page.count == 100
    assert page.newest == max(datetime.fromisoformat(e["dateCreated"][:-1]) for e in events)
    parts = page.texts()
    assert len(parts) > 1
    assert all(len(p) <= rawpage.PART_BYTES for p in parts)
    assert [obj for p in parts for obj in json.loads(p)] == events


def test_both_checks_agree_on_a_page(monkeypatch, fixture):
    """The same page through DuckDB's check and through the object-by-object walk of big pages."""
    events = big_events(fixture, 3, 1)
    events[1]["dateCreated"] = "2026-03-01T12:00:00+02:00"  # 10:00 UTC: the newest
    events.append({"event_id": "b" * 32, "date_created": "2026-02-01T00:00:00Z"})  # GlitchTip's spelling
    events.append({"eventID": "c" * 32, "dateCreated": "not a time"})
    events.append({"eventID": "d" * 32, "dateCreated": None, "date_created": "2026-03-01T09:59:59"})  # no offset: UTC
    events.append(["not an object"])
    body = json.dumps(events).encode()
    whole = rawpage.inspect(body)
    monkeypatch.setattr(rawpage, "WHOLE_BYTES", 0)
    walked = rawpage.inspect(body)
    assert walked.parts is not None and whole.parts is None
    assert (walked.count, walked.newest) == (whole.count, whole.newest) == (7, datetime(2026, 3, 1, 10, 0))
    assert json.loads(walked.texts()[0]) == json.loads(whole.texts()[0]) == events
    # with the newest event gone, the one whose time has no offset is newest: read as UTC by both
    del events[1]
    body = json.dumps(events).encode()
    assert rawpage.inspect(body).newest == datetime(2026, 3, 1, 9, 59, 59)
    monkeypatch.setattr(rawpage, "WHOLE_BYTES", 10**9)
    assert rawpage.inspect(body).newest == datetime(2026, 3, 1, 9, 59, 59)


@pytest.mark.parametrize("body", [
    b"[1,]", b"[", b"[1 2]", b"[1] x", b'[{"a": }]', b"[1]]",
    b'["\\ud800"]',  # a lone surrogate: Python's parser takes it, DuckDB's (the store's) does not
    b"[" * 5000 + b"]" * 5000,  # deeper than Python's parser goes
    b"\x0c[[1],2]]",  # form feed is not JSON whitespace
])
def test_the_walk_of_a_big_page_refuses_what_the_store_would_refuse(monkeypatch, body):
    monkeypatch.setattr(rawpage, "WHOLE_BYTES", 0)
    with pytest.raises(ValueError, match="not"):
        rawpage.inspect(body)


@pytest.mark.parametrize("body", [b"[]", b" [ ] ", b"[\n]"])
def test_the_walk_of_a_big_page_takes_an_empty_array(monkeypatch, body):
    monkeypatch.setattr(rawpage, "WHOLE_BYTES", 0)
    page = rawpage.inspect(body)
    assert (page.count, page.newest, page.texts()) == (0, None, ())


def test_pages_of_big_events_are_stored_whole(tmp_path, fixture):
    """Two pages of 100 events of about 50 KB each (10 MB): every event, its payload and its frames
    stored, through the store's memory limit. This batch used to fail with DuckDB's
    out-of-memory error."""
    store = Store(str(tmp_path / "big.duckdb"))
    buffer = WriteBuffer(store, "s1")
    sent = []
    for start in (0, 100):
        events = big_events(fixture, 100, 50, start)
        sent += events
        buffer.add_page("events", rawpage.inspect(json.dumps(events).encode()), {"project_id": "5236886"})
        buffer.maybe_flush()
    buffer.flush()
    con = store.con
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (200, 200)
    assert con.execute("SELECT count(*) FROM event_frames").fetchone()[0] == 200 * frames_per_event(fixture)
    assert con.execute("SELECT count(DISTINCT event_id) FROM event_contexts").fetchone()[0] == 200
    last = sent[-1]
    assert json.loads(con.execute("SELECT raw FROM events WHERE event_id = ?", [last["eventID"]]).fetchone()[0]) == last
    store.close()


def test_slicing_a_batch_stores_what_one_slice_stores(monkeypatch, fixture):
    """Parsing a batch a slice at a time (here: every page and every event its own slice) writes
    the same rows as parsing it whole; an event listed twice keeps its last copy either way."""
    pages = [(json.dumps(big_events(fixture, 20, 1, start)), {"project_id": "5236886"}) for start in (0, 20, 40)]
    again = big_events(fixture, 10, 1, 30)
    for event in again:
        event["title"] = "listed again"
    pages.append((json.dumps(again), {"project_id": "5236886"}))

    def tables(slice_bytes):
        monkeypatch.setattr(store_module, "SLICE_BYTES", slice_bytes)
        s = Store(":memory:")
        changed = s.upsert_pages("events", pages, source="s1")
        out = {t: sorted(s.con.execute(f"SELECT * EXCLUDE (synced_at) FROM {t}" if t == "events" else
                                       f"SELECT * FROM {t}").fetchall(), key=repr)
               for t in ("events", "event_tags", "event_exceptions", "event_frames", "event_contexts")}
        s.close()
        return changed, out

    whole = tables(10**9)
    sliced = tables(1)
    assert whole[0] == sliced[0] == 60
    assert len(whole[1]["events"]) == 60 and len(whole[1]["event_frames"]) == 60 * frames_per_event(fixture)
    assert whole[1] == sliced[1]
    titles = {r[1]: r[10] for r in whole[1]["events"]}  # event_id -> title
    assert {titles[e["eventID"]] for e in again} == {"listed again"}


def test_a_batch_too_dense_for_the_memory_limit_is_parsed_in_smaller_slices(monkeypatch, tmp_path, fixture):
    """Parser memory follows how many values a text holds, not only its size: a batch DuckDB
    cannot parse within the limit is rolled back and written again in slices a quarter as big,
    each event once, its cursor with it. (At a 32 MB limit, 4 MB of small numbers at once fails.)"""
    monkeypatch.setattr(store_module, "MEMORY_LIMIT", "32MB")
    store = Store(str(tmp_path / "dense.duckdb"))
    buffer = WriteBuffer(store, "s1")
    events = big_events(fixture, 20, 0)
    for event in events:
        event["extra"] = {"samples": list(range(60_000))}  # 400 KB of small numbers
    for start in (0, 10):
        buffer.add_page("events", rawpage.inspect(json.dumps(events[start:start + 10]).encode()), {"project_id": "1"})
    buffer.state("cursor", "events", "project:1", cursor="next-page")
    buffer.flush()
    assert store.slice_bytes < store_module.SLICE_BYTES
    assert store.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (20, 20)
    assert store.con.execute("SELECT count(*) FROM event_frames").fetchone()[0] == 20 * frames_per_event(fixture)
    assert buffer.written == {"events": 20}
    assert store.get_state("s1", "events", "project:1")["cursor"] == "next-page"
    store.close()


@pytest.mark.parametrize("entity, fixture_file, key", [
    ("issues", "org_issues.json", "id"),
    ("releases", "org_releases.json", "version"),
    ("projects", "org_projects.json", "id"),
])
def test_a_full_batch_of_real_shaped_objects_is_stored(tmp_path, fixture, entity, fixture_file, key):
    """A batch as big as the WriteBuffer makes (500 objects) shaped like Sentry's own examples, in a
    store with the syncer's memory limit. 500 issues (1.2 MB) failed with DuckDB's out-of-memory
    error while every field was parsed from all of them at once."""
    base = fixture(fixture_file)[0]
    items = []
    for i in range(500):
        item = copy.deepcopy(base)
        item[key] = f"{base[key]}-{i}" if key == "version" else str(10_000 + i)
        items.append(item)
    store = Store(str(tmp_path / "batch.duckdb"))
    store.upsert(entity, items, source="s1")
    stored = {r[0] for r in store.con.execute(f"SELECT {'version' if key == 'version' else 'id'} FROM {entity}").fetchall()}
    assert stored == {str(item[key]) for item in items}
    store.close()
