"""Every entity (projects, issues, releases, teams, members, environments, deploys, assignees, tags,
users, project stats) kept level with Sentry through changes that move no watermark, deletions
included and read back as 'deleted'; and a sync with nothing new costs no more requests as the
store grows."""

import json
from datetime import datetime, timedelta, timezone

import requests
from helpers import column, sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store


TOKEN = "sntryu_" + "9" * 64


def assert_everything_level(store, emu):
    truth = emu.truth()
    served_events = set(requests.get(emu.url + "/_emulator/truth/events", timeout=30).json()["event_ids"])
    con = store.con
    assert column(store, "SELECT id FROM projects") == set(truth["projects"])
    live = {r[0]: (r[1], r[2]) for r in con.execute(
        "SELECT id, status, times_seen FROM issues WHERE deleted_at IS NULL").fetchall()}
    assert live == {i: (v["status"], v["count"]) for i, v in truth["issues"].items()}
    assert column(store, "SELECT id FROM issues WHERE deleted_at IS NOT NULL") == set(truth["deleted_issues"])
    # the mirror keeps events of deleted issues (history); the live ones equal what Sentry serves
    assert column(store, "SELECT e.event_id FROM events e JOIN issues i ON i.id = e.issue_id "
                         "WHERE i.deleted_at IS NULL") == served_events
    assert {s: column(store, "SELECT version FROM releases WHERE status = ?", s)
            for s in ("open", "archived")} == {s: set(v) for s, v in truth["releases_by_status"].items()}
    assert column(store, "SELECT id FROM teams") == set(truth["teams"])
    assert column(store, "SELECT id FROM members") == set(truth["members"])
    assert column(store, "SELECT name FROM environments") == set(truth["environments"])
    deploys = {}
    for release, deploy_id in con.execute("SELECT release, id FROM deploys").fetchall():
        deploys.setdefault(release, set()).add(deploy_id)
    assert deploys == {v: set(ids) for v, ids in truth["deploys"].items()}
    assigned = {r[0]: json.loads(r[1]) if r[1] else None for r in con.execute(
        "SELECT id, CASE WHEN json_type(raw->'assignedTo') = 'OBJECT' THEN CAST(raw->'assignedTo' AS VARCHAR) END "
        "FROM issues WHERE deleted_at IS NULL").fetchall()}
    assert {i: a for i, a in assigned.items() if a} == {i: a for i, a in truth["issues_assigned"].items() if a}
    tags = {}
    for project_id, key, value, count in con.execute("SELECT project_id, key, value, count FROM tag_values").fetchall():
        if count:
            tags.setdefault(project_id, {}).setdefault(key, {})[value] = count
    want_tags = {p: {k: v for k, v in keys.items() if v} for p, keys in truth["tag_values"].items()}
    want_tags = {p: k for p, k in want_tags.items() if k}
    for p in set(tags) | set(want_tags):
        for k in set(tags.get(p, {})) | set(want_tags.get(p, {})):
            assert tags.get(p, {}).get(k) == want_tags.get(p, {}).get(k), (p, k)
    users = {}
    for project_id, tag_value in con.execute("SELECT project_id, tag_value FROM project_users").fetchall():
        users.setdefault(project_id, set()).add(tag_value)
    assert users == {p: set(v) for p, v in truth["users"].items() if v}
    now = datetime.fromisoformat(truth["now"].replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
    received = dict(con.execute(
        "SELECT project_id, sum(count) FROM project_stats WHERE stat = 'generated' AND resolution = '1d' "
        "AND ts >= ? GROUP BY 1", [now - timedelta(days=90)]).fetchall())
    for project_id, stats in truth["project_stats"].items():
        assert received.get(project_id, 0) >= stats["accepted_total_90d"]


def test_every_entity_level_through_several_advances():
    with Emulator(seed=8, scale="tiny", token=TOKEN, deletions=True) as emu:
        store = Store(":memory:")
        first = sync(store, emu)
        assert_everything_level(store, emu)
        seen = {"deleted_issues": 0, "archived_releases": 0, "new_deploys": 0, "assignment_changes": 0,
                "status_changes_without_event": 0}
        for hours in (24, 48, 24):
            changes = emu.advance(hours)
            for key in seen:
                seen[key] += changes.get(key, 0)
            result = sync(store, emu)
            assert result.status == "ok"
            assert_everything_level(store, emu)
            assert result.requests < first.requests
        assert all(seen.values()), seen  # each kind of change happened at least once
        # the status history holds every observed change, deletions included
        deleted = column(store, "SELECT issue_id FROM issue_status_history WHERE to_status = 'deleted'")
        assert deleted == set(emu.truth()["deleted_issues"])
        # what users read says 'deleted', not the last status Sentry showed (it used to say unresolved)
        assert column(store, "SELECT issue_id FROM issue_summary WHERE status = 'deleted'") == deleted
        assert column(store, "SELECT issue_id FROM top_issues WHERE status = 'deleted'") == deleted
        from sentry_mirror.reading.browse import issue_rows
        from sentry_mirror.reading.reports import Filters, run_report

        top = run_report(store.con.cursor(), "top", Filters(limit=1000))
        assert deleted & set(top.issue_id), "no deleted issue among the top"
        assert set(top.loc[top.status == "deleted", "issue_id"]) == deleted & set(top.issue_id)
        listed = issue_rows(store.con.cursor(), status="deleted", limit=1000).records()
        assert {r["short_id"] for r in listed} == column(store, "SELECT short_id FROM issues WHERE deleted_at IS NOT NULL")
        assert {r["status"] for r in listed} == {"deleted"}


def test_no_change_sync_cost_does_not_grow_with_the_store():
    costs = {}
    for scale in ("tiny", "small"):
        with Emulator(seed=9, scale=scale, token=TOKEN) as emu:
            store = Store(":memory:")
            sync(store, emu)
            again = sync(store, emu)
            n_projects = len(emu.truth()["projects"])
            n_issues = len(emu.truth()["issues"])
            costs[scale] = (again.requests - -(-n_issues // 100)) / n_projects  # per project, besides the status refresh
    assert costs["small"] <= costs["tiny"] + 1, costs
