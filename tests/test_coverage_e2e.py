"""Every entity, kept level through changes that move no watermark, from Sentry and from GlitchTip."""

import json
from datetime import datetime, timedelta, timezone

import requests
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "9" * 64


def column(store, sql, *params):
    return {r[0] for r in store.con.execute(sql, list(params)).fetchall()}


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
        from sentry_mirror.reading.browse import list_issues
        from sentry_mirror.reading.reports import Filters, run_report

        top = run_report(store.con.cursor(), "top", Filters(limit=1000))
        assert deleted & set(top.issue_id), "no deleted issue among the top"
        assert set(top.loc[top.status == "deleted", "issue_id"]) == deleted & set(top.issue_id)
        listed = list_issues(store.con.cursor(), status="deleted", limit=1000)
        assert set(listed.short_id) == column(store, "SELECT short_id FROM issues WHERE deleted_at IS NOT NULL")
        assert set(listed.status) == {"deleted"}


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


def test_glitchtip_quirks():
    with Emulator(seed=10, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        store = Store(":memory:")
        result = sync(store, emu)
        assert result.status == "ok"
        truth = emu.truth()
        live = {r[0]: (r[1], r[2]) for r in store.con.execute("SELECT id, status, times_seen FROM issues").fetchall()}
        assert live == {i: (v["status"], v["count"]) for i, v in truth["issues"].items()}
        served = set(requests.get(emu.url + "/_emulator/truth/events", timeout=30).json()["event_ids"])
        assert column(store, "SELECT event_id FROM events") == served
        # snake_case event lists still fill the typed columns
        assert store.con.execute("SELECT count(*) FROM events WHERE date_created IS NULL OR issue_id IS NULL").fetchone()[0] == 0
        # GlitchTip answers `status=archived` with the open releases: those are all it lists
        assert column(store, "SELECT version FROM releases") == set(truth["releases_by_status"]["open"])
        notes = " ".join(result.notes)
        assert "deploys" in notes and "project_stats" in notes  # missing endpoints said once, not fatal
        assert sum("deploys" in n for n in result.notes) == 1
        # The first sync cannot tell a missing route from an outage: each such page is retried twice
        # (it was six times, 22 s each)
        assert result.retries == 4
        emu.advance(24)
        again = sync(store, emu)
        live = {r[0]: (r[1], r[2]) for r in store.con.execute("SELECT id, status, times_seen FROM issues").fetchall()}
        assert live == {i: (v["status"], v["count"]) for i, v in emu.truth()["issues"].items()}
        assert again.requests < result.requests
        # then it knows: each missing route costs one request a sync, not six retries (45 s a sync)
        assert again.retries == 0 and sum("not available" in n for n in again.notes) == 2


def test_an_html_500_on_sentry_is_retried_not_taken_for_a_missing_route():
    """Only a route the server lacked at the last sync probes; on Sentry an HTML 500 (a proxy's)
    is retried and the stream stored."""
    with Emulator(seed=10, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="500", route="*/deploys/*", times=1)
        store = Store(":memory:")
        result = sync(store, emu)
        assert result.status == "ok" and not [n for n in result.notes if "deploys" in n]
        assert result.retries == 1
        assert store.con.execute("SELECT count(*) FROM deploys").fetchone()[0] == sum(
            len(ids) for ids in emu.truth()["deploys"].values())


def test_status_history_gives_time_to_resolve():
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        before = {i: v["status"] for i, v in emu.truth()["issues"].items()}
        resolved_now = set()
        for _ in range(4):
            emu.advance(12)
            sync(store, emu)
            now = {i: v["status"] for i, v in emu.truth()["issues"].items()}
            resolved_now |= {i for i, s in now.items() if s == "resolved" and before.get(i) == "unresolved"}
            before = now
        assert resolved_now, "no issue was resolved across four steps; pick another seed"
        rows = store.con.execute("SELECT issue_id, time_to_resolve FROM issue_resolutions").fetchall()
        seen = {r[0] for r in rows if r[1] is not None and r[1].total_seconds() > 0}
        assert resolved_now <= seen


def test_server_ignoring_group_filter_is_refreshed_by_one_full_walk(monkeypatch):
    """Real GlitchTip ignores `group=`: the refresh notices and walks the list once instead."""
    from sentry_mirror.syncing.walker import Walker as W

    real = W.with_page_size
    monkeypatch.setattr(W, "with_page_size", lambda self, params, size=None: real(
        self, {k: v for k, v in params.items() if k != "group"}, size))
    with Emulator(seed=8, scale="tiny", token=TOKEN, deletions=True) as emu:
        store = Store(":memory:")
        sync(store, emu)
        for _ in range(2):
            emu.advance(24)
            sync(store, emu)
        live = {r[0]: r[1] for r in store.con.execute("SELECT id, status FROM issues WHERE deleted_at IS NULL").fetchall()}
        assert live == {i: v["status"] for i, v in emu.truth()["issues"].items()}
        assert column(store, "SELECT id FROM issues WHERE deleted_at IS NOT NULL") == set(emu.truth()["deleted_issues"])
        caps = store.get_state(emu.org_slug, "_capabilities", "")["extra"]
        assert caps["group_filter"] is False


def test_two_sources_share_one_store(tmp_path, monkeypatch):
    """Two servers (a Sentry and a GlitchTip) into one store through a config file, rows tagged."""
    from sentry_mirror.running.config import resolve
    from sentry_mirror.running.runner import sync_all

    with Emulator(seed=13, scale="tiny", token=TOKEN) as a, \
            Emulator(seed=14, scale="tiny", token="sntryu_" + "7" * 64, flavor="glitchtip") as b:
        monkeypatch.setenv("A_TOKEN", a.token)
        monkeypatch.setenv("B_TOKEN", b.token)
        config_path = tmp_path / "c.toml"
        config_path.write_text(f'db = "{tmp_path / "two.duckdb"}"\n'
                               f'[[sources]]\nname = "saas"\nurl = "{a.url}"\norg = "{a.org_slug}"\ntoken_env = "A_TOKEN"\n'
                               f'[[sources]]\nname = "gt"\nurl = "{b.url}"\norg = "{b.org_slug}"\ntoken_env = "B_TOKEN"\n')
        results = sync_all(resolve(config_path=str(config_path), url=None, org=None, token=None, db=None))
        assert [r.source for r in results] == ["saas", "gt"] and all(r.status == "ok" for r in results)
        store = Store(str(tmp_path / "two.duckdb"))
        for name, emu in (("saas", a), ("gt", b)):
            issues = column(store, "SELECT id FROM issues WHERE source = ?", name)
            assert issues == set(emu.truth()["issues"])
            assert store.con.execute("SELECT count(*) FROM events WHERE source = ?", [name]).fetchone()[0] \
                == emu.truth()["counts"]["events"]
        store.close()
        # --source keeps each organization to itself in the reports and the issue list (both
        # emulators name their projects alike: without it, one project's figures were two orgs')
        from click.testing import CliRunner

        from sentry_mirror.cli import cli

        def cli_json(*args):
            result = CliRunner().invoke(cli, [*args, "--db", str(tmp_path / "two.duckdb"), "--format", "json",
                                              "--limit", "100000"])
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        for name, emu in (("saas", a), ("gt", b)):
            truth = emu.truth()
            listed = cli_json("issues", "--source", name)
            assert len(listed) == len(truth["issues"])
            top = cli_json("report", "top", "--source", name)
            assert {r["issue_id"] for r in top} <= set(truth["issues"])
            assert sum(r["events"] for r in top) == truth["counts"]["events"]
            users = cli_json("report", "users", "--source", name)
            assert {r["issue_id"] for r in users} <= set(truth["issues"])
            trends = cli_json("report", "trends", "--source", name, "--by", "week")
            if name == "gt":  # GlitchTip has no project stats: counted from its own events alone
                assert {r["basis"] for r in trends} == {"events"}
                assert sum(r["events"] for r in trends) == truth["counts"]["events"]
            else:
                assert {r["basis"] for r in trends} == {"stats"}
            regressions = cli_json("report", "regressions", "--source", name)
            assert {r["release"] for r in regressions} <= set(truth["releases"])
        assert len(cli_json("issues")) == len(a.truth()["issues"]) + len(b.truth()["issues"])
        # Without --source a project of one slug in both adds up, one row per bucket and project
        # (each counted on its own basis); it came out as four rows, week_before crossed between bases
        per_source = {}
        for name in ("saas", "gt"):
            for r in cli_json("report", "trends", "--source", name, "--by", "day"):
                per_source[(r["bucket"], r["project"])] = per_source.get((r["bucket"], r["project"]), 0) + r["events"]
        both = cli_json("report", "trends", "--by", "day")
        keys = [(r["bucket"], r["project"]) for r in both]
        assert len(keys) == len(set(keys)) == len(per_source)
        assert {(r["bucket"], r["project"]): r["events"] for r in both} == per_source
        shared = {r["project"] for r in both if r["basis"] == "events+stats"}
        assert shared, "the two emulators share no project slug: pick other seeds"
        missing = CliRunner().invoke(cli, ["issues", "--source", "nope", "--db", str(tmp_path / "two.duckdb")])
        assert missing.exit_code == 2 and "known: gt, saas" in missing.stderr


def test_figures_leave_out_the_events_of_issues_deleted_in_sentry(tmp_path):
    """Sentry's figures drop a deleted issue's events; the mirror's daily counts, trends and release
    figures kept counting them (33 events a day where Sentry had 30). The events stay stored, and
    the per-issue reports list the issue as deleted."""
    from collections import Counter

    from sentry_mirror.reading.reports import Filters, run_report

    with Emulator(seed=8, scale="tiny", token=TOKEN, deletions=True) as emu:
        store = Store(str(tmp_path / "s.duckdb"))
        sync(store, emu)
        deleted = 0
        for hours in (24, 48, 24):
            deleted += emu.advance(hours).get("deleted_issues", 0)
            sync(store, emu)
        assert deleted, "no issue was deleted: pick another seed"
        raw = requests.get(f"{emu.url}/_emulator/truth/event_rows", timeout=60).json()
        now = datetime.fromisoformat(emu.truth()["now"].replace("Z", "+00:00")).replace(tzinfo=None)
    cutoff = (now - timedelta(days=89)).date()  # whole days the emulator still serves
    want = Counter()
    for row in raw["rows"]:
        fact = dict(zip(raw["columns"], row))
        day = datetime.fromisoformat(fact["date_created"].replace("Z", "+00:00")).date()
        if day > cutoff:
            want[(fact["project_id"], str(day))] += 1
    con = store.con
    daily = Counter({(p, str(d)): int(n) for p, d, n in con.execute(
        "SELECT p.id, d.day, sum(d.events) FROM daily_events d JOIN projects p ON p.slug = d.project "
        "GROUP BY ALL").fetchall() if d > cutoff})
    assert daily == want
    trends = Counter({(p, str(b.date())): int(n) for p, b, n in con.execute(
        "SELECT project_id, bucket, sum(events) FROM error_trends WHERE period = 'day' AND basis = 'events' "
        "GROUP BY ALL").fetchall() if b.date() > cutoff})
    assert trends == want
    gone = {r[0] for r in con.execute("SELECT id FROM issues WHERE deleted_at IS NOT NULL").fetchall()}
    kept = con.execute("SELECT count(*) FROM events WHERE issue_id IN (SELECT unnest(?::VARCHAR[]))",
                       [sorted(gone)]).fetchone()[0]
    assert gone and kept > 0  # still stored
    users = run_report(con.cursor(), "users", Filters(limit=100000))
    assert set(users.loc[users.status == "deleted", "issue_id"]) == gone & set(users.issue_id) and gone & set(users.issue_id)
    store.close()


def test_a_burst_of_proxy_500s_on_sentry_skips_only_that_stream_for_this_sync():
    """Found in review: after one stream's HTML 500s every later optional stream gave up at its
    first HTML 500, so a short burst dropped deploys and stats for the sync. Now only the stream
    whose page outlasted its retries is skipped, the summary says it is asked again, and the next
    sync stores it."""
    with Emulator(seed=10, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="html500", route="*/deploys/*", times=3)
        emu.faults.add(kind="html500", route="*/stats/*", times=1)
        store = Store(":memory:")
        result = sync(store, emu)
        notes = [n for n in result.notes if "deploys" in n]
        assert len(notes) == 1 and "asked again next sync" in notes[0]
        assert not [n for n in result.notes if "stats" in n]  # one 500 is retried, as any
        assert store.con.execute("SELECT count(*) FROM project_stats").fetchone()[0] > 0
        assert sync(store, emu).status == "ok"
        assert store.con.execute("SELECT count(*) FROM deploys").fetchone()[0] == sum(
            len(ids) for ids in emu.truth()["deploys"].values())
