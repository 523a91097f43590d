"""Reports and views checked against the emulator's ground truth, computed here independently
from the facts of every event and every status change the emulator made (`/_emulator/truth/...`),
never from the mirror."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import requests
from click.testing import CliRunner
from helpers import sync

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "a1" * 32


@dataclass
class Synced:
    path: Path
    truth: dict
    rows: pd.DataFrame  # one row per served event
    history: dict
    first_sync_at: datetime
    cutoff: datetime  # the emulator's retention edge now: events before it are gone from truth
    release_created: dict[str, datetime]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Synced:
    """A store synced from the emulator, then three days of its clock with a sync after each."""
    path = tmp_path_factory.mktemp("analytics") / "store.duckdb"
    with Emulator(seed=11, scale="small", token=TOKEN) as emu:
        store = Store(str(path))
        sync(store, emu)
        first_sync_at = ts(requests.get(f"{emu.url}/_emulator/truth", timeout=60).json()["now"])
        for _ in range(3):
            emu.advance(24)
            sync(store, emu)
        store.close()
        get = lambda route: requests.get(f"{emu.url}/_emulator/{route}", timeout=120).json()  # noqa: E731
        truth, raw_rows, history = get("truth"), get("truth/event_rows"), get("truth/history")
        release_created = {r.version: datetime.utcfromtimestamp(r.created_ms / 1000) for r in emu.world.releases}
    rows = pd.DataFrame(raw_rows["rows"], columns=raw_rows["columns"])
    rows["date_created"] = pd.to_datetime(rows["date_created"], format="ISO8601").dt.tz_localize(None)
    now = ts(truth["now"])
    return Synced(path, truth, rows, history, first_sync_at, now - timedelta(days=90), release_created)


def query(s: Synced, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(s.path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def report(s: Synced, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["report", *args, "--db", str(s.path), "--format", "json", "--limit", "1000000"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def whole_days(s: Synced) -> pd.Series:
    """Days the emulator still serves whole (after the retention edge's day)."""
    return s.rows["date_created"].dt.normalize() > pd.Timestamp(s.cutoff).normalize()


# ----- error_trends and `report trends` -------------------------------------------------------

def truth_per_day(s: Synced, **match) -> dict[tuple[str, str], int]:
    rows = s.rows[whole_days(s)]
    for column, value in match.items():
        rows = rows[rows[column] == value]
    counts = rows.groupby([rows["project_id"], rows["date_created"].dt.strftime("%Y-%m-%d")]).size()
    return {key: int(n) for key, n in counts.items()}


def test_error_trends_counts_events_per_day_on_both_bases(synced):
    want = truth_per_day(synced)
    assert len(want) > 50
    horizon = (synced.cutoff + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for basis in ("events", "stats"):
        got = {(p, str(d)): int(n) for p, d, n in query(synced, """
            SELECT project_id, CAST(bucket AS DATE), sum(events) FROM error_trends
            WHERE period = 'day' AND basis = ? AND bucket >= ? GROUP BY ALL HAVING sum(events) > 0""",
            [basis, horizon])}
        assert got == want, basis


def test_error_trends_hours_add_up_to_days_and_break_down_by_environment(synced):
    hours = dict(query(synced, "SELECT basis, sum(events) FROM error_trends WHERE period = 'hour' GROUP BY 1"))
    days = dict(query(synced, "SELECT basis, sum(events) FROM error_trends WHERE period = 'day' GROUP BY 1"))
    assert hours == days
    want = truth_per_day(synced, environment="staging")
    horizon = (synced.cutoff + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    got = {(p, str(d)): int(n) for p, d, n in query(synced, """
        SELECT project_id, CAST(bucket AS DATE), sum(events) FROM error_trends
        WHERE period = 'day' AND basis = 'events' AND environment = 'staging' AND bucket >= ? GROUP BY ALL""",
        [horizon])}
    assert want and got == want


def test_error_trends_week_over_week(synced):
    for project_id, bucket, events, before, change in query(synced, """
            SELECT project_id, bucket, events, events_week_before, change_week_over_week FROM error_trends
            WHERE period = 'day' AND basis = 'stats' AND bucket >= now()::TIMESTAMP - INTERVAL 400 DAY"""):
        earlier = query(synced, "SELECT events FROM error_trends WHERE period = 'day' AND basis = 'stats' "
                                "AND project_id = ? AND bucket = ?", [project_id, bucket - timedelta(days=7)])
        assert before == (earlier[0][0] if earlier else None)
        assert change == events - (before or 0)


@pytest.mark.parametrize("by", ["day", "week"])
def test_report_trends_matches_truth(synced, by):
    since = (synced.cutoff + timedelta(days=1)).strftime("%Y-%m-%d")
    got = defaultdict(int)
    for row in report(synced, "trends", "--by", by, "--since", since):
        assert row["basis"] == "stats"
        got[(row["project"], row["bucket"][:10])] += row["events"]
    slugs = dict(query(synced, "SELECT id, slug FROM projects"))
    want = defaultdict(int)
    for (project_id, day), n in truth_per_day(synced).items():
        d = datetime.fromisoformat(day)
        if by == "week":
            if d < datetime.fromisoformat(since) + timedelta(days=7 - datetime.fromisoformat(since).weekday()):
                continue  # a week cut by --since is not comparable
            d -= timedelta(days=d.weekday())
        want[(slugs[project_id], d.strftime("%Y-%m-%d"))] += n
    got = {k: v for k, v in got.items() if v}  # truth lists only buckets with events
    if by == "week":
        got = {k: v for k, v in got.items() if datetime.fromisoformat(k[1]) >= datetime.fromisoformat(since)}
    assert got == dict(want)


def test_report_trends_by_environment_uses_events(synced):
    rows = report(synced, "trends", "--environment", "production", "--project", "backend", "--by", "day")
    assert {r["basis"] for r in rows} == {"events"} and {r["project"] for r in rows} == {"backend"}
    backend = query(synced, "SELECT id FROM projects WHERE slug = 'backend'")[0][0]
    want = {day: n for (p, day), n in truth_per_day(synced, environment="production").items() if p == backend}
    got = {r["bucket"][:10]: r["events"] for r in rows if r["bucket"][:10] in want}
    assert got == want


def test_report_trends_fills_quiet_buckets_with_zero(synced):
    """A day without events was a missing row: the plot drew a line straight over it."""
    rows = report(synced, "trends", "--environment", "staging", "--by", "day")
    by_project = defaultdict(dict)
    for r in rows:
        by_project[r["project"]][r["bucket"][:10]] = r["events"]
    slugs = dict(query(synced, "SELECT id, slug FROM projects"))
    want = defaultdict(dict)
    for (project_id, day), n in truth_per_day(synced, environment="staging").items():
        want[slugs[project_id]][day] = n
    last = max(day for days in by_project.values() for day in days)
    quiet = 0
    for project, days in by_project.items():
        first = min(days)
        expected = pd.date_range(first, last, freq="D").strftime("%Y-%m-%d")
        assert sorted(days) == list(expected), project  # every day, none missing
        for day in expected:
            if datetime.fromisoformat(day) > synced.cutoff:
                assert days[day] == want[project].get(day, 0), (project, day)
                quiet += want[project].get(day, 0) == 0
    assert quiet > 0  # the store has quiet days, so the zeros were checked


def test_report_trends_limit_counts_buckets_with_every_project(synced):
    rows = report(synced, "trends", "--by", "day")
    projects = {r["project"] for r in rows}
    result = CliRunner().invoke(cli, ["report", "trends", "--db", str(synced.path), "--format", "json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    latest = json.loads(result.stdout)
    assert len({r["bucket"] for r in latest}) == 3 and len(latest) == 3 * len(projects)
    assert {r["bucket"] for r in latest} == set(sorted({r["bucket"] for r in rows})[-3:])


def test_report_trends_reads_events_for_a_project_without_stats(synced, tmp_path):
    """The counters basis was chosen for the whole store: a project without stats (a GlitchTip
    source, a stats stream that failed) vanished from the report."""
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(synced.path, copy)
    con = duckdb.connect(str(copy))
    backend = con.execute("SELECT id FROM projects WHERE slug = 'backend'").fetchone()[0]
    con.execute("DELETE FROM project_stats WHERE project_id = ?", [backend])
    con.close()
    since = (synced.cutoff + timedelta(days=1)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(cli, ["report", "trends", "--db", str(copy), "--format", "json", "--limit", "1000",
                                      "--since", since])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["basis"] for r in rows if r["project"] == "backend"} == {"events"}
    assert {r["basis"] for r in rows if r["project"] != "backend"} == {"stats"}
    want = {day: n for (p, day), n in truth_per_day(synced).items() if p == backend}
    got = {r["bucket"][:10]: r["events"] for r in rows if r["project"] == "backend" and r["events"]}
    assert got == want


def test_report_trends_counts_the_bucket_holding_until_whole_on_both_bases(synced):
    """Found in review: counters kept the day holding --until whole, stored events cut it at the
    instant, so one report mixed whole and cut days."""
    slugs = dict(query(synced, "SELECT id, slug FROM projects"))
    backend = next(i for i, slug in slugs.items() if slug == "backend")
    day = sorted(d for (p, d) in truth_per_day(synced) if p == backend)[-2]  # a whole day, not today
    until = f"{day}T12:00:00"
    whole = truth_per_day(synced)[(backend, day)]
    whole_staging = truth_per_day(synced, environment="staging").get((backend, day), 0)
    counters = report(synced, "trends", "--project", "backend", "--until", until)
    events = report(synced, "trends", "--project", "backend", "--until", until, "--environment", "staging")
    assert [r["events"] for r in counters if r["bucket"].startswith(day)] == [whole]
    assert [r["events"] for r in events if r["bucket"].startswith(day)] == [whole_staging]
    assert {r["basis"] for r in counters} == {"stats"} and {r["basis"] for r in events} == {"events"}


def test_report_trends_reads_events_before_a_projects_first_counter(synced, tmp_path):
    """Found in review: a project with counters for part of the range showed 0 (and -100%) before
    them, or nothing, where its stored events were."""
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(synced.path, copy)
    con = duckdb.connect(str(copy))
    backend = con.execute("SELECT id FROM projects WHERE slug = 'backend'").fetchone()[0]
    cut = (synced.cutoff + timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    con.execute("DELETE FROM project_stats WHERE project_id = ? AND ts < ?", [backend, cut])
    con.close()
    since = (synced.cutoff + timedelta(days=1)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(cli, ["report", "trends", "--db", str(copy), "--format", "json", "--limit", "1000",
                                      "--project", "backend", "--since", since])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    want = {d: n for (p, d), n in truth_per_day(synced).items() if p == backend and d >= since}
    got = {r["bucket"][:10]: r["events"] for r in rows if r["events"]}
    assert got == want
    assert {r["basis"] for r in rows} == {"events+stats"}


# ----- release_regressions and `report regressions` ---------------------------------------------

def test_new_issues_per_release_match_truth(synced):
    first = synced.rows.sort_values("date_created").groupby("issue_id").first()
    first = first[first["date_created"] > synced.cutoff + timedelta(days=1)]
    want = Counter(first["release"].dropna())
    recent = {v for v, created in synced.release_created.items() if created > synced.cutoff + timedelta(days=1)}
    want = {v: n for v, n in want.items() if v in recent}
    assert sum(want.values()) >= 5
    got = {release: n for release, n in query(synced, "SELECT release, new_issues FROM release_regressions "
                                                       "WHERE new_issues > 0") if release in recent}
    assert got == want
    # Sentry's own count, the cross-check beside ours, agrees where the emulator keeps every event.
    for release, ours, sentry in query(synced, "SELECT release, new_issues, sentry_new_groups FROM release_regressions"):
        if release in recent:
            assert ours == sentry, release


def test_regressed_issues_per_release_match_truth(synced):
    regressed = defaultdict(set)
    for issue_id, changes in synced.history.items():
        for change in changes:
            if change["type"] == "set_regression" and ts(change["at"]) >= synced.first_sync_at:
                regressed[change["details"]["version"]].add(issue_id)
    want = {version: len(ids) for version, ids in regressed.items()}
    assert sum(want.values()) >= 2, "the emulator made few regressions after the first sync: pick another seed"
    got = dict(query(synced, "SELECT release, regressed_issues FROM release_regressions WHERE regressed_issues > 0"))
    assert got == want
    by_report = {r["release"]: r["regressed_issues"] for r in report(synced, "regressions") if r["regressed_issues"]}
    assert by_report == want


def test_top_counts_the_regressions_the_mirror_saw_like_truth(synced):
    """An issue already resolved when first mirrored, then regressed, showed 0 regressions in
    `top` while `report regressions` counted it."""
    want = Counter()
    for issue_id, changes in synced.history.items():
        for change in changes:
            if change["type"] == "set_regression" and ts(change["at"]) >= synced.first_sync_at:
                want[issue_id] += 1
    assert want, "the emulator made no regressions after the first sync: pick another seed"
    got = {issue_id: n for issue_id, n in query(synced, "SELECT issue_id, regressions FROM top_issues") if n}
    assert got == dict(want)
    rows = report(synced, "top")
    assert {r["issue_id"]: r["regressions"] for r in rows if r["regressions"]} == \
        {i: n for i, n in want.items() if i in {r["issue_id"] for r in rows}}


def test_release_regressions_compares_with_the_previous_release(synced):
    rows = query(synced, """SELECT project_id, release, previous_release, events, previous_events, events_change
                            FROM release_regressions ORDER BY project_id, date_created""")
    by_key = {(p, r): e for p, r, _, e, _, _ in rows}
    per_project = defaultdict(list)
    for p, release, previous, events, previous_events, change in rows:
        if per_project[p]:
            assert previous == per_project[p][-1]
            assert previous_events == by_key[(p, previous)] and change == events - previous_events
        else:
            assert previous is None
        per_project[p].append(release)
    # Events per release against truth, for releases wholly inside retention.
    events = Counter(synced.rows["release"].dropna())
    for p, release, _, n, _, _ in rows:
        if synced.release_created[release] > synced.cutoff + timedelta(days=1):
            assert n == events.get(release, 0), release


REGRESSIONS_COLUMNS = ("project, release, date_created AS created, new_issues, sentry_new_groups, regressed_issues, "
                       "events, affected_users, previous_release, previous_new_issues, previous_regressed_issues, "
                       "previous_events, events_change, affected_users_change")


def test_report_regressions_lists_the_view_rows(synced):
    """The report counts only the releases it lists (and those before them): the same rows as the
    release_regressions view filtered, ordered and cut by hand."""
    from sentry_mirror.reading.reports import Filters, run_report

    con = duckdb.connect(str(synced.path), read_only=True)
    try:
        releases = [r for r, in con.execute("SELECT release FROM release_regressions "
                                            "ORDER BY date_created, release").fetchall()]
        project = con.execute("SELECT project FROM release_regressions "
                              "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
        middle = synced.cutoff + timedelta(days=30)
        cases = [Filters(limit=1_000_000), Filters(limit=3), Filters(limit=1), Filters(project=project, limit=2),
                 Filters(project=project, limit=1_000_000), Filters(release=releases[len(releases) // 2]),
                 Filters(release=releases[0]), Filters(since=synced.cutoff, until=middle, limit=4),
                 Filters(project=project, since=middle, limit=1_000_000),
                 Filters(until=synced.cutoff - timedelta(days=400))]  # none
        compared = 0
        for f in cases:
            got = run_report(con, "regressions", f)
            want = con.execute(f"""
                SELECT {REGRESSIONS_COLUMNS} FROM release_regressions
                WHERE (?::VARCHAR IS NULL OR project = ?) AND (?::VARCHAR IS NULL OR release = ?)
                  AND (?::TIMESTAMP IS NULL OR date_created >= ?) AND (?::TIMESTAMP IS NULL OR date_created < ?)
                ORDER BY date_created DESC NULLS LAST, project, release LIMIT ?""",
                [f.project, f.project, f.release, f.release, f.since, f.since, f.until, f.until, f.limit]).df()
            pd.testing.assert_frame_equal(got, want, check_exact=True)
            compared += len(got)
            if f == Filters(limit=1_000_000):
                assert len(got) == len(releases)
        # The comparison meant something: users counted, previous releases compared.
        whole = run_report(con, "regressions", Filters(limit=3))
        assert compared > len(releases) and whole["affected_users"].sum() > 0
        assert whole["previous_release"].notna().all() and whole["affected_users_change"].ne(0).any()
    finally:
        con.close()


# ----- affected_users and `report users` --------------------------------------------------------

def test_report_users_counts_distinct_users_per_issue(synced):
    since = synced.cutoff + timedelta(days=1)
    rows = synced.rows[synced.rows["date_created"] >= since]
    want = {i: int(n) for i, n in rows.groupby("issue_id")["user_id"].nunique().items() if n}
    got = {r["issue_id"]: r["users"] for r in report(synced, "users", "--since", since.isoformat()) if r["users"]}
    assert len(want) > 20 and got == want
    # A short list takes a shortcut (users are counted only where they can reach the top): same answer.
    events = rows.groupby("issue_id").size()
    ranked = sorted(want, key=lambda i: (-want[i], -events[i], i))[:5]
    short = CliRunner().invoke(cli, ["report", "users", "--since", since.isoformat(), "--limit", "5",
                                     "--db", str(synced.path), "--format", "json"])
    assert [r["issue_id"] for r in json.loads(short.stdout)] == ranked


@pytest.mark.parametrize("args", [[], ["--environment", "production"], ["--project", "backend"],
                                  ["--environment", "staging", "--since", "30d"]])
def test_report_users_short_list_is_the_head_of_the_long_one(synced, args):
    """A short list counts distinct users for few issues (a first pick, then those that can still
    reach the list): it must be the head of the full ranking, row for row."""
    full = report(synced, "users", *args)  # every issue: no shortcut can matter
    assert len(full) > 10
    for limit in (1, 3, 10):
        result = CliRunner().invoke(cli, ["report", "users", *args, "--limit", str(limit), "--db", str(synced.path),
                                          "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == full[:limit]


def test_report_users_counts_issues_left_out_of_the_first_pick(tmp_path):
    """Users are counted first for the issues with the most events; an issue with fewer events but
    more users than the bound that gives must still be counted, and win."""
    from sentry_mirror.reading.reports import Filters, run_report

    path = tmp_path / "few.duckdb"
    store = Store(str(path))
    with store.transaction() as con:
        con.execute("INSERT INTO projects SELECT 's', '1', 'app', 'App', 'python', TIMESTAMP '2025-01-01', "
                    "TIMESTAMP '2025-01-01', '{}', now()::TIMESTAMP")
        # A has 10 events of one user, B 9 of one user, C 8 events of 8 users, D 1 event.
        shape = {"A": (10, 1), "B": (9, 1), "C": (8, 8), "D": (1, 1)}
        for issue, (events, users) in shape.items():
            con.execute("""INSERT INTO events (source, event_id, issue_id, project_id, date_created, date_received,
                                               release, environment, level, platform, title, user_id, raw, synced_at,
                                               user_key)
                           SELECT 's', ? || n, ?, '1', TIMESTAMP '2025-01-02' + INTERVAL (n) MINUTE,
                                  TIMESTAMP '2025-01-02', 'app@1', 'production', 'error', 'python', 'Error ' || ?,
                                  'u' || (n % ?), '{}', now()::TIMESTAMP, 'id:u' || (n % ?) FROM range(?) t(n)""",
                        [issue, issue, issue, users, users, events])
        con.execute("""INSERT INTO issues (source, id, short_id, project_id, title, culprit, level, status, substatus,
                                           type, platform, first_seen, last_seen, times_seen, user_count, raw,
                                           synced_at)
                       SELECT source, issue_id, 'APP-' || issue_id, '1', any_value(title), 'main', 'error',
                              'unresolved', NULL, 'error', 'python', min(date_created), max(date_created), count(*),
                              count(DISTINCT user_id), '{}', now()::TIMESTAMP FROM events GROUP BY ALL""")
        con.execute("UPDATE issues SET times_seen = times_seen + 1 WHERE id = 'A'")  # one event not stored
    store.create_views()
    store.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        full = run_report(con, "users", Filters(limit=1_000_000))
        assert list(full["issue_id"]) == ["C", "A", "B", "D"] and list(full["users"]) == [8, 1, 1, 1]
        for limit in (1, 2, 3):
            pd.testing.assert_frame_equal(run_report(con, "users", Filters(limit=limit)), full.head(limit))
        # events_missing compares all of an issue's stored events with Sentry's count, filtered or not.
        assert dict(zip(full["issue_id"], full["events_missing"])) == {"A": True, "B": False, "C": False, "D": False}
        later = run_report(con, "users", Filters(since=datetime(2025, 1, 2, 0, 5), limit=10))
        assert dict(zip(later["issue_id"], later["events"])) == {"A": 5, "B": 4, "C": 3}
        assert dict(zip(later["issue_id"], later["events_missing"])) == {"A": True, "B": False, "C": False}
    finally:
        con.close()


def test_affected_users_view_against_truth_and_sentry(synced):
    first = synced.rows.groupby("issue_id")["date_created"].min()
    whole = set(first[first > synced.cutoff + timedelta(days=1)].index)  # every event still served
    users = synced.rows.groupby("issue_id")["user_id"].nunique()
    per_day = synced.rows.groupby(["issue_id", synced.rows["date_created"].dt.strftime("%Y-%m-%d")])["user_id"].nunique()
    checked = 0
    for issue_id, day, n, issue_users, sentry, missing, flagged in query(synced, """
            SELECT issue_id, CAST(day AS VARCHAR), sum(users), any_value(issue_users), any_value(sentry_user_count),
                   bool_or(events_missing), bool_or(differs_for_missing_events)
            FROM affected_users GROUP BY issue_id, day"""):
        if issue_id not in whole:
            continue
        checked += 1
        assert issue_users == users[issue_id] == synced.truth["issues"][issue_id]["userCount"] == sentry
        if day in per_day[issue_id]:
            # one release per day and issue in the emulator's data? not always: sum of per-release
            # distinct counts is at least the day's distinct count
            assert n >= per_day[issue_id][day]
        assert not missing and not flagged
    assert checked > 50


def test_affected_users_flags_issues_whose_events_were_not_all_stored(tmp_path):
    with Emulator(seed=4, scale="tiny", token=TOKEN) as emu:
        store = Store(str(tmp_path / "s.duckdb"))
        sync(store, emu, events="sample", events_sample=2)
        truth = emu.truth()
        rows = store.con.execute("""SELECT issue_id, bool_or(events_missing), bool_or(differs_for_missing_events),
                                           any_value(issue_users), any_value(sentry_user_count)
                                    FROM affected_users GROUP BY issue_id""").fetchall()
        store.close()
    sampled = [r for r in rows if truth["issues"][r[0]]["count"] > 2]
    assert sampled and all(missing for _, missing, _, _, _ in sampled)
    for issue_id, missing, flagged, ours, sentry in rows:
        assert flagged == (missing and ours != sentry)
    assert any(flagged for _, _, flagged, _, _ in rows)


# ----- top_issues and `report top` ---------------------------------------------------------------

def test_report_top_orders_issues_by_events_like_truth(synced):
    since = synced.cutoff + timedelta(days=1)
    counts = synced.rows[synced.rows["date_created"] >= since].groupby("issue_id").size()
    got = report(synced, "top", "--since", since.isoformat(), "--limit", "10")[:10]
    assert [r["events"] for r in got] == sorted(counts.values, reverse=True)[:10]
    assert all(counts[r["issue_id"]] == r["events"] for r in got)
    statuses = {i: v["status"] for i, v in synced.truth["issues"].items()}
    assert all(r["status"] == statuses[r["issue_id"]] for r in got)


def test_csv_and_json_keep_whole_titles_and_tables_shorten_them(synced):
    """Titles were cut to 60-70 characters in every format; only a table on a terminal needs that."""
    titles = dict(query(synced, "SELECT id, title FROM issues"))
    long = {i for i, t in titles.items() if len(t) > 60}
    assert long, "the emulator's data has long titles"
    top = report(synced, "top")
    assert {r["issue_id"]: r["title"] for r in top} == {r["issue_id"]: titles[r["issue_id"]] for r in top}
    listed = CliRunner().invoke(cli, ["issues", "--db", str(synced.path), "--format", "json", "--limit", "100000"])
    by_short = dict(query(synced, "SELECT short_id, title FROM issues"))
    assert {r["short_id"]: r["title"] for r in json.loads(listed.stdout)} == by_short
    table = CliRunner().invoke(cli, ["issues", "--db", str(synced.path), "--limit", "100000"], env={"COLUMNS": "100"}).stdout
    assert all(len(line) <= 100 for line in table.splitlines()[:-1]) and "…" in table
    assert not any(t in table for t in by_short.values() if len(t) > 60)
    piped = CliRunner().invoke(cli, ["issues", "--db", str(synced.path), "--limit", "100000"], env={"COLUMNS": ""}).stdout
    assert all(t in piped for t in by_short.values())  # not a terminal: nothing to fit


def test_top_issues_view_has_time_to_resolve_from_history(synced):
    rows = query(synced, "SELECT issue_id, resolutions, last_time_to_resolve FROM top_issues WHERE resolutions > 0")
    assert rows and all(t is not None and t >= timedelta(0) for _, _, t in rows)
    resolved_after_first_sync = {i for i, changes in synced.history.items()
                                 if any(c["type"].startswith("set_resolved") and ts(c["at"]) >= synced.first_sync_at
                                        for c in changes)}
    assert resolved_after_first_sync <= {r[0] for r in rows}


# ----- errors, plots ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["trends", "--project", "nope"], "no project 'nope' in the store"),
    (["users", "--release", "nope@0"], "no release 'nope@0' in the store"),
    (["top", "--since", "yesterday-ish"], "bad date for --since"),
    (["regressions", "--environment", "production"], "has no --environment filter"),
    (["trends", "--since", "2020-01-02", "--until", "2020-01-01"], "--since must be before --until"),
    (["top", "--by", "hour"], "the top report has no --by"),
    (["trends", "--plot", "trends.txt"], "--plot writes a PNG"),
    (["top", "--source", "nope"], "no source 'nope' in the store"),
])
def test_report_bad_input_is_one_line(synced, args, message):
    result = CliRunner().invoke(cli, ["report", *args, "--db", str(synced.path)])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_report_on_an_empty_store_says_so(tmp_path):
    Store(str(tmp_path / "empty.duckdb")).close()
    result = CliRunner().invoke(cli, ["report", "trends", "--db", str(tmp_path / "empty.duckdb")])
    assert result.exit_code != 0 and "no issues or events yet" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["trends", "regressions", "users", "top"])
def test_plot_writes_a_png_with_labelled_axes(synced, tmp_path, name):
    from matplotlib import image

    from sentry_mirror.reading.reports import Filters, plot_report, run_report

    png = tmp_path / f"{name}.png"
    result = CliRunner().invoke(cli, ["report", name, "--db", str(synced.path), "--plot", str(png), "--limit", "20"])
    assert result.exit_code == 0, result.output
    pixels = image.imread(png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert pixels.std() > 0.01  # not a blank canvas
    con = duckdb.connect(str(synced.path), read_only=True)
    frame = run_report(con, name, Filters(limit=20))
    con.close()
    ax = plot_report(name, frame, str(tmp_path / "again.png"), Filters(limit=20)).axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


# ----- export parquet -----------------------------------------------------------------------------

def test_export_parquet_reads_back_equal_to_the_store_table_by_table(synced, tmp_path):
    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["export", "parquet", str(out), "--db", str(synced.path)])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{synced.path}' AS store (READ_ONLY)")
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'").fetchall()]
    assert {"events", "event_frames", "issues", "_sync_state"} <= set(tables)
    for table in tables:
        columns = ", ".join(f'"{c}"' for c, in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'store' AND table_name = ? "
            "ORDER BY column_index", [table]).fetchall())
        files = f"'{out}/{table}/**/*.parquet'"
        back = f"SELECT {columns} FROM read_parquet({files}, hive_partitioning = false)"
        n = con.execute(f"SELECT count(*) FROM store.{table}").fetchone()[0]
        if n == 0:
            continue
        assert con.execute(f"SELECT count(*) FROM ({back})").fetchone()[0] == n, table
        for a, b in ((f"SELECT {columns} FROM store.{table}", back), (back, f"SELECT {columns} FROM store.{table}")):
            assert con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0] == 0, table
    # Partitioned by source, project and month, readable with the folder names too.
    months = con.execute(f"SELECT count(DISTINCT month), count(DISTINCT project_id) FROM read_parquet("
                         f"'{out}/event_tags/**/*.parquet', hive_partitioning = true, hive_types_autocast = false)").fetchone()
    assert months[0] >= 3 and months[1] >= 4
    assert list((out / "events").glob("source=acme/project_id=*/month=*/*.parquet"))


def test_export_rerun_replaces_and_refuses_a_foreign_folder(synced, tmp_path):
    out = tmp_path / "export"
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "parquet", str(out), "--db", str(synced.path)]).exit_code == 0
    stray = out / "events" / "stray.parquet"
    stray.write_bytes(b"left from an older export")
    since = (synced.cutoff + timedelta(days=60)).strftime("%Y-%m-%d")
    result = runner.invoke(cli, ["export", "parquet", str(out), "--db", str(synced.path), "--since", since])
    assert result.exit_code == 0, result.output
    assert not stray.exists()  # replaced whole, not merged
    con = duckdb.connect()
    oldest = con.execute(f"SELECT min(date_created) FROM read_parquet('{out}/events/**/*.parquet')").fetchone()[0]
    assert oldest >= datetime.fromisoformat(since)
    assert not list(tmp_path.glob(".export.*"))  # no staging or old copies left behind
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    result = runner.invoke(cli, ["export", "parquet", str(foreign), "--db", str(synced.path)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert (foreign / "cat.jpg").read_bytes() == b"meow"


def test_export_makes_the_folders_it_is_given(synced, tmp_path):
    """README's `export parquet exports/acme` failed when exports/ did not exist yet."""
    out = tmp_path / "exports" / "acme"
    result = CliRunner().invoke(cli, ["export", "parquet", str(out), "--db", str(synced.path)])
    assert result.exit_code == 0, result.output
    assert (out / "issues").exists() and (out / "_sentry_mirror_export").exists()


def test_export_through_a_link_replaces_the_folder_it_points_at(synced, tmp_path):
    """Renaming the link itself replaced it with a folder and left the old export where it pointed."""
    real = tmp_path / "real"
    link = tmp_path / "latest"
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "parquet", str(real), "--db", str(synced.path)]).exit_code == 0
    link.symlink_to(real, target_is_directory=True)
    (real / "events" / "stray.parquet").write_bytes(b"old")
    result = runner.invoke(cli, ["export", "parquet", str(link), "--db", str(synced.path)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert (real / "_sentry_mirror_export").exists() and not (real / "events" / "stray.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "real"]


def test_export_removes_what_killed_exports_left_behind(synced, tmp_path):
    dead = 2**22 + 12345  # above any pid this machine hands out (pid_max is at most 2**22)
    for leftover in (f".acme.partial-{dead}", f".acme.old-{dead}"):
        (tmp_path / leftover / "events").mkdir(parents=True)
    alive = tmp_path / f".acme.partial-{os.getpid()}x"  # not a pid: left alone
    alive.mkdir()
    result = CliRunner().invoke(cli, ["export", "parquet", str(tmp_path / "acme"), "--db", str(synced.path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["acme", alive.name])


def test_export_into_a_folder_it_cannot_write_is_one_line(synced):
    result = CliRunner().invoke(cli, ["export", "parquet", "/proc/sentry-mirror-export", "--db", str(synced.path)])
    assert result.exit_code == 2, result.output
    assert "cannot write in the folder /proc" in result.output and "Traceback" not in result.output


def test_issues_shows_sentrys_counts_beside_what_the_mirror_holds(tmp_path):
    """`issues` put Sentry's event count beside the users of the stored events, and named a later
    release as first when the first event was not stored: 3445 events, 5 users, where Sentry had
    297 users."""
    with Emulator(seed=4, scale="tiny", token=TOKEN) as emu:
        store = Store(str(tmp_path / "s.duckdb"))
        sync(store, emu, events="sample", events_sample=2)
        store.close()
        truth = emu.truth()["issues"]
        raw = requests.get(f"{emu.url}/_emulator/truth/event_rows", timeout=60).json()
    rows = pd.DataFrame(raw["rows"], columns=raw["columns"]).sort_values("date_created")
    first_release = rows.groupby("issue_id")["release"].first().to_dict()  # the release of each issue's first event
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    try:
        ids = dict(con.execute("SELECT short_id, id FROM issues").fetchall())
        first_stored = dict(con.execute("SELECT issue_id, min(date_created) FROM events GROUP BY 1").fetchall())
    finally:
        con.close()
    result = CliRunner().invoke(cli, ["issues", "--db", str(tmp_path / "s.duckdb"), "--format", "json",
                                      "--limit", "100000", "--sort", "users"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert len(listed) == len(truth)
    named = 0
    for row in listed:
        issue_id = ids[row["short_id"]]
        assert (row["events"], row["users"]) == (truth[issue_id]["count"], truth[issue_id]["userCount"])
        assert row["stored"] <= min(row["events"], 2)
        has_first = first_stored.get(issue_id) is not None and \
            first_stored[issue_id] < ts(truth[issue_id]["firstSeen"]) + timedelta(seconds=1)
        assert row["first_release"] == (first_release[issue_id] if has_first else None), row["short_id"]
        named += row["first_release"] is not None
    assert 0 < named < len(listed)  # both cases met
    assert [r["users"] for r in listed] == sorted((r["users"] for r in listed), reverse=True)
