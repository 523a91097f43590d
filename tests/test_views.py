"""Views over a hand-built store: cases the emulator does not generate (two sources whose project
ids collide, an issue whose first event has no release)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
from click.testing import CliRunner

from sentry_mirror.cli import cli
from sentry_mirror.storage.store import Store

T0 = datetime(2026, 11, 1, 12, 0, 0)


def build(path, events, projects, issues):
    store = Store(str(path))
    con = store.con
    for source, pid, slug in projects:
        con.execute("INSERT INTO projects BY NAME SELECT ? AS source, ? AS id, ? AS slug, '{}' AS raw, "
                    "now()::TIMESTAMP AS synced_at", [source, pid, slug])
    for source, iid, pid, first_seen in issues:
        con.execute("INSERT INTO issues BY NAME SELECT ? AS source, ? AS id, ? AS short_id, ? AS project_id, "
                    "'unresolved' AS status, ? AS first_seen, ? AS last_seen, 1 AS times_seen, 1 AS user_count, "
                    "'{}' AS raw, now()::TIMESTAMP AS synced_at", [source, iid, f"S-{iid}", pid, first_seen, first_seen])
    for n, (source, iid, pid, at, release, user) in enumerate(events):
        con.execute("INSERT INTO events BY NAME SELECT ? AS source, ? AS event_id, ? AS issue_id, ? AS project_id, "
                    "? AS date_created, ? AS release, ? AS user_id, 'id:' || ? AS user_key, 'production' AS environment, "
                    "'{}' AS raw, now()::TIMESTAMP AS synced_at", [source, f"e{n}", iid, pid, at, release, user, user])
    store.create_views()
    store.close()


def report(path, *args):
    result = CliRunner().invoke(cli, ["report", *args, "--db", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_project_filter_keeps_to_the_projects_own_source(tmp_path):
    """Two self-hosted servers both have a project 1: `--project backend` counted the other
    server's project 1 (slug web) as backend too."""
    path = tmp_path / "two.duckdb"
    events = [("a", "A1", "1", T0 + timedelta(minutes=n), None, f"u{n}") for n in range(3)]
    events += [("b", "B1", "1", T0 + timedelta(minutes=n), None, f"v{n}") for n in range(5)]
    build(path, events, [("a", "1", "backend"), ("b", "1", "web")], [("a", "A1", "1", T0), ("b", "B1", "1", T0)])
    top = report(path, "top", "--project", "backend")
    assert [(r["short_id"], r["events"]) for r in top] == [("S-A1", 3)]
    users = report(path, "users", "--project", "web")
    assert [(r["short_id"], r["users"]) for r in users] == [("S-B1", 5)]


def test_an_issue_whose_first_event_has_no_release_is_not_new_in_a_later_one(tmp_path):
    path = tmp_path / "rel.duckdb"
    events = [("a", "A1", "1", T0, None, "u1"), ("a", "A1", "1", T0 + timedelta(days=1), "app@2", "u2")]
    build(path, events, [("a", "1", "backend")], [("a", "A1", "1", T0)])
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT first_release, last_release FROM issue_summary").fetchall() == [(None, "app@2")]
        assert con.execute("SELECT count(*) FROM release_health WHERE new_issues > 0").fetchone()[0] == 0
    finally:
        con.close()


def test_query_prints_sums_dates_and_uuids_as_duckdb_typed_them(tmp_path):
    """`sum` is a HUGEINT, which pandas made a float (the README's example printed 147.0); a DATE
    printed as a midnight timestamp in JSON; a UUID column broke --format json with a traceback."""
    path = tmp_path / "q.duckdb"
    events = [("a", "A1", "1", T0 + timedelta(hours=n), None, f"u{n}") for n in range(3)]
    build(path, events, [("a", "1", "backend")], [("a", "A1", "1", T0)])
    sql = ("SELECT day, sum(events) AS events, '6f1e1d2c-0000-4000-8000-000000000001'::UUID AS u "
           "FROM daily_events GROUP BY day")
    outputs = {}
    for fmt in ("table", "csv", "json"):
        result = CliRunner().invoke(cli, ["query", "--db", str(path), "--format", fmt, sql])
        assert result.exit_code == 0, result.output
        outputs[fmt] = result.stdout
    assert json.loads(outputs["json"]) == [{"day": "2026-11-01", "events": 3, "u": "6f1e1d2c-0000-4000-8000-000000000001"}]
    assert outputs["csv"].splitlines()[1] == "2026-11-01,3,6f1e1d2c-0000-4000-8000-000000000001"
    assert "3.0" not in outputs["table"] and "2026-11-01 " in outputs["table"]
