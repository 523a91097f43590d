"""Savers: real-shaped JSON (Sentry's own schema examples) into an in-memory store, whole rows checked."""

import copy
import json
import os
import stat
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from sentry_mirror.errors import StoreError
from sentry_mirror.storage.store import Store, open_readonly


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def row(store, sql, *params):
    cur = store.con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    found = cur.fetchall()
    assert len(found) == 1, found
    return dict(zip(names, found[0]))


def test_migrations_recorded_once(store):
    names = [r[0] for r in store.con.execute("SELECT name FROM _migrations").fetchall()]
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "sql" / "migrations").glob("*.sql"))
    assert len(shipped) >= 3 and names == shipped
    assert store.migrate() == []  # nothing pending the second time


def test_issue_row_from_schema_example(store, fixture):
    issue = fixture("org_issues.json")[0]
    store.upsert("issues", [issue], source="s1")
    r = row(store, "SELECT * EXCLUDE (raw, synced_at) FROM issues")
    assert r == {
        "source": "s1", "id": "1", "short_id": "PUMP-STATION-1", "project_id": "2",
        "title": "This is an example Python exception", "culprit": "raven.scripts.runner in main",
        "level": "error", "status": "ignored", "substatus": "archived_until_condition_met", "type": "default", "platform": "python",
        "first_seen": datetime(2018, 11, 6, 21, 19, 55), "last_seen": datetime(2018, 12, 6, 21, 19, 55),
        "times_seen": 150, "user_count": 0, "is_unhandled": False, "priority": "medium",
        "assigned_to": "user:john.doe@example.com",
        "permalink": "https://sentry.io/the-interstellar-jurisdiction/pump-station/issues/1/",
        "deleted_at": None,
    }
    raw = json.loads(store.con.execute("SELECT raw FROM issues").fetchone()[0])
    assert raw == issue  # the object is kept exactly as Sentry sent it


def test_count_as_number_is_accepted(store, fixture):
    issue = fixture("org_issues.json")[0]
    issue["count"] = 151  # schema drift: a number instead of a string
    store.upsert("issues", [issue], source="s1")
    assert store.con.execute("SELECT times_seen FROM issues").fetchone()[0] == 151


def test_event_row_from_full_event(store, fixture):
    event = fixture("project_event.json")
    store.upsert("events", [event], source="s1")
    r = row(store, "SELECT * EXCLUDE (raw, synced_at) FROM events")
    assert r["event_id"] == "9999aaaaca8b46d797c23c6077c6ff01"
    assert r["issue_id"] == "1341191803"
    assert r["project_id"] == "5236886"
    assert r["date_created"] == datetime(2020, 6, 17, 22, 26, 56, 98086)
    assert r["date_received"] == datetime(2020, 6, 17, 22, 26, 56, 428721)
    assert r["environment"] == "prod"
    assert r["release"] == event["release"]["version"]
    assert (r["user_id"], r["user_email"], r["user_ip"]) == ("550747", "hell@boy.cat", "192.168.1.1")


def test_event_list_item_takes_release_and_environment_from_tags(store, fixture):
    item = fixture("issue_events.json")[0]
    store.upsert("events", [item], source="s1", contexts=[{"issue_id": "1889724436"}])
    r = row(store, "SELECT event_id, issue_id, release, environment, level, user_id FROM events")
    assert r == {"event_id": "9fac2ceed9344f2bbfdd1fdacb0ed9b1", "issue_id": "1889724436",
                 "release": "17642328ead24b51867165985996d04b29310337", "environment": "production",
                 "level": "fatal", "user_id": None}


def test_glitchtip_snake_case_event(store):
    item = {"event_id": "a" * 32, "group_id": "7", "project_id": "3", "date_created": "2025-10-01T10:00:00.5+02:00",
            "tags": [{"key": "release", "value": "web@1.2.3"}], "user": {"id": "u", "ip_address": "10.0.0.1"}}
    store.upsert("events", [item], source="gt", contexts=[{"issue_id": "7"}])
    r = row(store, "SELECT event_id, issue_id, project_id, date_created, release, user_ip FROM events")
    assert r == {"event_id": "a" * 32, "issue_id": "7", "project_id": "3",
                 "date_created": datetime(2025, 10, 1, 8, 0, 0, 500000), "release": "web@1.2.3", "user_ip": "10.0.0.1"}


def test_release_row(store, fixture):
    release = fixture("org_releases.json")[0]
    store.upsert("releases", [release], source="s1")
    r = row(store, "SELECT version, id, status, date_created, project_ids FROM releases")
    assert r == {"version": "frontend@1.0.0", "id": 1, "status": "open",
                 "date_created": datetime(2024, 1, 1), "project_ids": ["1"]}


def test_a_release_found_by_slug_when_the_slug_stands_twice(store):
    """Stored projects are never dropped: a project deleted in Sentry and a new one with its slug
    both stay. Matching GlitchTip's releases by slug failed every sync on them ("Map keys must be
    unique"); the project synced last, the one the server lists now, is the one meant."""
    store.upsert("projects", [{"id": "1", "slug": "web", "name": "old web"}], source="s1")
    store.upsert("projects", [{"id": "2", "slug": "web", "name": "new web"}], source="s1")
    store.upsert("releases", [{"version": "web@2", "projects": [{"name": "web", "slug": "web"}]}], source="s1")
    assert row(store, "SELECT project_ids FROM releases") == {"project_ids": ["2"]}


def test_upsert_is_idempotent_and_untouched_rows_keep_their_time(store, fixture):
    issues = fixture("org_issues.json")
    store.upsert("issues", issues, source="s1")
    first = store.con.execute("SELECT synced_at FROM issues").fetchone()[0]
    store.upsert("issues", copy.deepcopy(issues), source="s1")
    assert store.con.execute("SELECT count(*), max(synced_at) FROM issues").fetchone() == (1, first)
    changed = copy.deepcopy(issues)
    changed[0]["status"] = "resolved"
    store.upsert("issues", changed, source="s1")
    status, synced = store.con.execute("SELECT status, synced_at FROM issues").fetchone()
    assert status == "resolved" and synced >= first


def test_duplicate_keys_in_one_batch_keep_the_last(store, fixture):
    a = fixture("org_issues.json")[0]
    b = copy.deepcopy(a)
    b["status"] = "ignored"
    assert store.upsert("issues", [a, b], source="s1") == 1
    assert store.con.execute("SELECT count(*), min(status) FROM issues").fetchone() == (1, "ignored")


def test_same_ids_from_two_sources_do_not_collide(store, fixture):
    issue = fixture("org_issues.json")[0]
    store.upsert("issues", [issue], source="sentry-io")
    store.upsert("issues", [issue], source="self-hosted")
    assert store.con.execute("SELECT count(*) FROM issues").fetchone()[0] == 2


def test_failed_transaction_stores_neither_rows_nor_cursor(store, fixture):
    issue = fixture("org_issues.json")[0]
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert("issues", [issue], source="s1")
            store.set_state("s1", "issues", "", cursor="0:100:0")
            raise RuntimeError("killed between the rows and the commit")
    assert store.con.execute("SELECT count(*) FROM issues").fetchone()[0] == 0
    assert store.get_state("s1", "issues", "") is None


def test_views_created(store, fixture):
    store.upsert("issues", fixture("org_issues.json"), source="s1")
    store.upsert("events", fixture("issue_events.json"), source="s1")
    created = store.create_views()
    assert {"daily_events", "issue_summary", "release_health", "issue_regressions"} <= set(created)
    assert store.con.execute("SELECT events FROM daily_events").fetchall() == [(1,)]


def test_not_a_duckdb_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("my precious notes")
    with pytest.raises(StoreError, match="not a DuckDB file"):
        Store(str(path))
    assert path.read_text() == "my precious notes"


def test_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "s.duckdb")
    Store(path).close()
    con = duckdb.connect(path)
    con.execute("INSERT INTO _migrations VALUES ('999_from_the_future', now()::TIMESTAMP)")
    con.close()
    with pytest.raises(StoreError, match="newer sentry-mirror"):
        Store(path)


def test_new_store_is_private_to_its_owner(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(str(path)).close()
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def test_reader_gets_in_between_leases(tmp_path, fixture):
    path = str(tmp_path / "s.duckdb")
    writer = Store(path, lease_seconds=0)
    writer.upsert("issues", fixture("org_issues.json"), source="s1")  # commits, then releases the file
    reader = open_readonly(path, wait=2)
    assert reader.execute("SELECT count(*) FROM issues").fetchone()[0] == 1
    reader.close()
    writer.close()


def test_event_normalized_tables(store, fixture):
    event = fixture("project_event.json")
    store.upsert("events", [event], source="s1")
    eid = "9999aaaaca8b46d797c23c6077c6ff01"
    assert store.con.execute("SELECT sdk_name, sdk_version FROM events").fetchone() == ("sentry.javascript.browser", "5.17.0")
    assert store.con.execute("SELECT count(*) FROM event_tags WHERE event_id = ?", [eid]).fetchone()[0] == 6
    assert store.con.execute("SELECT value FROM event_tags WHERE key = 'environment'").fetchone()[0] == "prod"
    assert store.con.execute("SELECT idx, type, value, mechanism_type, handled FROM event_exceptions").fetchall() == [
        (0, "ForbiddenError", "GET /organizations/hellboy-meowmeow/users/ 403", "generic", True)]
    frames = store.con.execute(
        "SELECT idx, function, filename, line_no, col_no, in_app FROM event_frames ORDER BY idx").fetchall()
    assert frames == [
        (0, "ignoreOnError", "/usr/src/getsentry/src/sentry/node_modules/@sentry/browser/esm/helpers.js", 71, 23, False),
        (1, "apply", "/usr/src/getsentry/src/sentry/node_modules/reflux-core/lib/PublisherMethods.js", 74, 24, False)]
    contexts = dict(store.con.execute("SELECT name, type FROM event_contexts").fetchall())
    assert contexts == {"ForbiddenError": "default", "browser": "browser", "os": "os", "trace": "trace",
                        "organization": "default"}
    # re-storing the same event replaces its details rather than doubling them
    store.upsert("events", [event], source="s1")
    assert store.con.execute("SELECT count(*) FROM event_frames").fetchone()[0] == 2
    assert store.con.execute("SELECT count(*) FROM event_tags").fetchone()[0] == 6


def test_status_history_records_changes_only(store, fixture):
    issue = fixture("org_issues.json")[0]  # ignored / archived_until_condition_met
    store.upsert("issues", [issue], source="s1", observed_at=datetime(2025, 1, 1))
    store.upsert("issues", [copy.deepcopy(issue)], source="s1", observed_at=datetime(2025, 1, 2))  # no change
    resolved = copy.deepcopy(issue)
    resolved.update(status="resolved", substatus=None, statusDetails={"inRelease": "backend@2.0.0"})
    store.upsert("issues", [resolved], source="s1", observed_at=datetime(2025, 1, 3))
    history = store.con.execute(
        "SELECT from_status, to_status, to_substatus, observed_at, release FROM issue_status_history ORDER BY id").fetchall()
    assert history == [
        (None, "ignored", "archived_until_condition_met", datetime(2025, 1, 1), None),
        ("ignored", "resolved", None, datetime(2025, 1, 3), "backend@2.0.0"),
    ]


def test_issue_the_event_was_listed_under_fills_a_missing_group_id(store, fixture):
    item = fixture("issue_events.json")[0]
    del item["groupID"]
    store.upsert("events", [item], source="s1", contexts=[{"issue_id": "4242"}])
    assert store.con.execute("SELECT issue_id FROM events").fetchone()[0] == "4242"


def test_state_updates_collapse_to_their_net_effect(store):
    store.set_state("s1", "events", "9", watermark="2025-01-01T00:00:00Z", extra={"times_seen": "3"})
    store.apply_states("s1", [
        ("cursor", "events", "9", {"cursor": "0:100:0", "params": {"full": "true"}, "extra": None}),  # keeps watermark
        ("cursor", "events", "10", {"cursor": "0:100:0", "params": {"full": "true"}, "extra": None}),
        ("state", "events", "10", {"watermark": "2025-02-02T00:00:00Z", "cursor": None, "params": None,
                                   "extra": {"times_seen": "7"}}),
    ])
    assert store.get_state("s1", "events", "9") == {
        "watermark": "2025-01-01T00:00:00Z", "cursor": "0:100:0", "params": {"full": "true"}, "extra": {}}
    assert store.get_state("s1", "events", "10") == {
        "watermark": "2025-02-02T00:00:00Z", "cursor": None, "params": None, "extra": {"times_seen": "7"}}


def test_user_key_is_who_sentry_counts_as_the_user(store, fixture):
    """Sentry counts users by the event's `user` tag (id:…, email:…, ip:…); counting ids alone left
    out everyone an SDK knew only by IP address or email."""
    base = fixture("project_event.json")

    def event(n, user, tags=()):
        e = copy.deepcopy(base)
        e["eventID"] = e["id"] = f"{n:032x}"
        e["user"] = user
        e["tags"] = [t for t in e.get("tags", []) if t["key"] != "user"] + [{"key": k, "value": v} for k, v in tags]
        return e

    events = [event(1, {"id": "7", "email": "a@x.io"}, [("user", "id:7")]),
              event(2, {"id": "7"}),  # no tag: the id
              event(3, {"ip_address": "10.0.0.1"}),
              event(4, {"ip_address": "10.0.0.1"}),  # the same user again
              event(5, {"email": "b@x.io", "ip_address": "10.0.0.2"}),
              event(6, {"username": "cat", "email": "c@x.io"}),
              event(7, None),  # no user: not counted
              event(8, {"ip_address": "10.0.0.9"}, [("user", "ip:10.0.0.9")])]
    store.upsert("events", events, source="s1")
    keys = dict(store.con.execute("SELECT event_id, user_key FROM events").fetchall())
    assert [keys[f"{n:032x}"] for n in range(1, 9)] == ["id:7", "id:7", "ip:10.0.0.1", "ip:10.0.0.1",
                                                       "email:b@x.io", "username:cat", None, "ip:10.0.0.9"]
    store.create_views()
    assert store.con.execute("SELECT count(DISTINCT user_key) FROM matching_events(NULL, NULL, NULL, NULL, NULL)"
                             ).fetchone()[0] == 5


def test_migration_fills_user_key_for_events_stored_before_it(tmp_path, fixture):
    from sentry_mirror.storage.sqlfiles import migrations

    path = str(tmp_path / "old.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE TABLE _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
    for name, sql in migrations():
        if name.startswith("006"):
            break
        con.execute(sql)
        con.execute("INSERT INTO _migrations VALUES (?, now()::TIMESTAMP)", [name])
    rows = [("7", None, None, None), (None, "cat", "a@x.io", "10.0.0.1"), (None, None, "a@x.io", "10.0.0.1"),
            (None, None, None, "10.0.0.2"), (None, None, None, None)]
    for n, (user_id, username, email, ip) in enumerate(rows):
        con.execute("INSERT INTO events (source, event_id, user_id, user_username, user_email, user_ip, raw, synced_at) "
                    "VALUES ('s', ?, ?, ?, ?, ?, '{}', now()::TIMESTAMP)", [f"e{n}", user_id, username, email, ip])
    con.close()
    store = Store(path)
    got = dict(store.con.execute("SELECT event_id, user_key FROM events").fetchall())
    store.close()
    assert got == {"e0": "id:7", "e1": "username:cat", "e2": "email:a@x.io", "e3": "ip:10.0.0.2", "e4": None}
