"""What a real GlitchTip server does that Sentry does not (GLITCHTIP.md, "Seen later, on the same
build"): releases whose projects carry no id, `status=archived` ignored, a `project:releases` scope
for releases, events without a level, users with only id and email, userCount 0. The emulator's
GlitchTip flavour shows each; the mirror's figures must come out as they do from Sentry."""

from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner
from helpers import sync

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator
from sentry_mirror.reading.reports import Filters, run_report
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "6b" * 32
SEED = 21
RELEASE_FIGURES = ("project, project_id, release, previous_release, new_issues, regressed_issues, events, "
                   "affected_users, previous_events, events_change, affected_users_change")


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


@pytest.fixture(scope="module")
def both():
    """The same world synced once from its Sentry flavour and once from its GlitchTip flavour."""
    stores, truths, results = {}, {}, {}
    for flavor in ("sentry", "glitchtip"):
        with Emulator(seed=SEED, scale="tiny", token=TOKEN, flavor=flavor) as emu:
            store = Store(":memory:")
            results[flavor] = sync(store, emu)
            rows = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=60).json()
            truths[flavor] = {**emu.truth(), "event_rows": rows}
            stores[flavor] = store
    yield stores, truths, results
    for store in stores.values():
        store.close()


def rows(store, sql, *params):
    return sorted(store.con.execute(sql, list(params)).fetchall(), key=repr)


# ----- the emulator shows each deviation ---------------------------------------------------------------
def test_glitchtip_flavour_shows_the_deviations_seen_later():
    with Emulator(seed=SEED, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        base = f"{emu.url}/api/0/organizations/{emu.org_slug}"
        open_list = s.get(f"{base}/releases/", params={"status": "open", "limit": 100}).json()
        archived = s.get(f"{base}/releases/", params={"status": "archived", "limit": 100}).json()
        assert archived == open_list  # status=archived is ignored
        assert {r["version"] for r in open_list} == set(emu.truth()["releases_by_status"]["open"])
        projects = [p for r in open_list for p in r["projects"]]
        assert projects and all("id" not in p and p["slug"] and p["name"] for p in projects)
        issues = s.get(f"{base}/issues/", params={"query": "", "limit": 100}).json()
        assert issues and {i["userCount"] for i in issues} == {0} and all(i["level"] for i in issues)
        issue = issues[0]
        listed = s.get(f"{emu.url}/api/0/issues/{issue['id']}/events/", params={"full": "true"}).json()
        latest = s.get(f"{emu.url}/api/0/issues/{issue['id']}/events/latest/").json()
        project = s.get(f"{emu.url}/api/0/projects/{emu.org_slug}/{issue['project']['slug']}/events/",
                        params={"full": "true"}).json()
        for event in [*listed, latest, *project]:
            assert "level" not in event and "level" not in {t["key"] for t in event["tags"]}
            assert event["user"] is None or set(event["user"]) <= {"id", "email"}
        assert any(e["user"] for e in listed + project)
        emu.faults.add(kind="forbidden", route="/api/0/organizations/{org}/releases/")
        refused = s.get(f"{base}/releases/")
        assert (refused.status_code, refused.json()) == (403, {"detail": "Permission denied"})
        assert s.get(f"{base}/issues/", params={"query": ""}).status_code == 200


# ----- the mirror copes ------------------------------------------------------------------------------------
def test_release_projects_are_matched_by_slug_and_figures_equal_sentry(both):
    """GlitchTip's releases name their projects by slug only: the store kept project_ids = [NULL],
    and every per-release figure was empty. Compared over the releases GlitchTip lists (the open ones)."""
    stores, truths, _ = both
    stores["sentry"].con.execute("DELETE FROM releases WHERE status = 'archived'")
    sql = "SELECT version, list_sort(project_ids) FROM releases"
    assert rows(stores["glitchtip"], sql) == rows(stores["sentry"], sql)
    assert rows(stores["glitchtip"], "SELECT count(*) FROM releases, unnest(project_ids) AS u(p) WHERE p IS NULL") \
        == [(0,)]
    figures = f"SELECT {RELEASE_FIGURES} FROM release_regressions"
    gt = rows(stores["glitchtip"], figures)
    assert gt == rows(stores["sentry"], figures)
    open_releases = set(truths["glitchtip"]["releases_by_status"]["open"])
    in_open = sum(1 for r in truths["glitchtip"]["event_rows"]["rows"] if r[4] in open_releases)
    assert sum(r[6] for r in gt) == in_open > 0  # every event of a listed release, counted once
    for store in stores.values():
        store.create_views()
    report = {f: run_report(stores[f].con.cursor(), "regressions", Filters(limit=10_000)).drop(
        columns=["sentry_new_groups"], errors="ignore").to_dict("records") for f in stores}
    assert report["glitchtip"] == report["sentry"] and report["glitchtip"]


def test_a_release_listed_twice_counts_once(both):
    """GlitchTip answers `status=archived` with the open list: the summary said 22 releases for 11 stored."""
    stores, truths, results = both
    stored = stores["glitchtip"].con.execute("SELECT count(*) FROM releases").fetchone()[0]
    assert results["glitchtip"].rows["releases"] == stored == len(truths["glitchtip"]["releases_by_status"]["open"])
    assert results["sentry"].rows["releases"] == len(truths["sentry"]["releases"])  # open and archived, once each


def test_events_without_a_level_take_their_issues(both):
    stores, truths, _ = both
    want = {r[0]: r[6] for r in truths["glitchtip"]["event_rows"]["rows"]}
    got = dict(stores["glitchtip"].con.execute("SELECT event_id, level FROM events").fetchall())
    assert got == want
    sql = "SELECT event_id, level, user_key, user_id, release FROM events"
    assert rows(stores["glitchtip"], sql) == rows(stores["sentry"], sql)


@pytest.mark.parametrize("issue_first", [True, False])
def test_an_event_without_a_level_takes_its_issues_whichever_comes_first(issue_first):
    store = Store(":memory:")
    issue = {"id": "7", "shortId": "GT-7", "project": {"id": "3"}, "title": "boom", "level": "warning",
             "status": "unresolved", "count": "2", "firstSeen": "2025-10-01T10:00:00Z",
             "lastSeen": "2025-10-01T11:00:00Z"}
    events = [{"event_id": c * 32, "group_id": "7", "project_id": "3", "date_created": "2025-10-01T10:00:00Z",
               "tags": [{"key": "environment", "value": "prod"}], "user": {"id": "u1", "email": "u@x.io"}}
              for c in "ab"]
    events[1]["tags"].append({"key": "level", "value": "fatal"})  # an event's own level wins
    if issue_first:
        store.upsert("issues", [issue], source="gt")
    store.upsert("events", events, source="gt", contexts=[{"issue_id": "7"}] * 2)
    if not issue_first:
        assert rows(store, "SELECT event_id, level FROM events") == [("a" * 32, None), ("b" * 32, "fatal")]
        store.upsert("issues", [issue], source="gt")
    store.upsert("issues", [{**issue, "id": "8", "level": "error"}], source="other")  # another source's issue
    assert rows(store, "SELECT event_id, level FROM events") == [("a" * 32, "warning"), ("b" * 32, "fatal")]
    store.close()


def test_releases_forbidden_is_a_failed_stream_and_the_rest_is_stored():
    """A token without `project:releases` gets 403 on releases alone; that ended the whole sync as
    'token refused' (exit 5) with nothing of the rest stored."""
    with Emulator(seed=SEED, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        emu.faults.add(kind="forbidden", route="/api/0/organizations/{org}/releases/")
        store = Store(":memory:")
        result = sync(store, emu)
        truth = emu.truth()
        assert result.status == "partial"
        failed = [e for e in result.errors if e.startswith("releases")]
        assert failed and all("project:releases" in e and "403" in e for e in failed), result.errors
        assert result.streams["releases"]["error"] and not result.streams["issues"]["error"]
        con = store.con
        assert {r[0] for r in con.execute("SELECT id FROM projects").fetchall()} == set(truth["projects"])
        assert dict(con.execute("SELECT id, times_seen FROM issues").fetchall()) == \
            {i: v["count"] for i, v in truth["issues"].items()}
        served = set(requests.get(emu.url + "/_emulator/truth/events", timeout=30).json()["event_ids"])
        assert {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()} == served
        assert {r[0] for r in con.execute("SELECT id FROM teams").fetchall()} == set(truth["teams"])
        assert {r[0] for r in con.execute("SELECT id FROM members").fetchall()} == set(truth["members"])
        assert con.execute("SELECT count(*) FROM releases").fetchone()[0] == 0
        store.close()


def cli_sync(emu, db):
    result = CliRunner().invoke(cli, ["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q"],
                                env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert TOKEN not in result.output + result.stderr
    return result


def test_cli_a_forbidden_stream_exits_6_naming_the_scope_a_forbidden_org_exits_5(tmp_path, monkeypatch):
    from sentry_mirror.fetching.client import SentryClient
    from sentry_mirror.running import runner

    monkeypatch.setattr(runner, "client_for", lambda s: SentryClient(s.url, s.token, backoff_base=0.01))
    with Emulator(seed=SEED, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        rule = emu.faults.add(kind="forbidden", route="/api/0/organizations/{org}/releases/")
        result = cli_sync(emu, tmp_path / "a.duckdb")
        assert result.exit_code == 6, result.output
        failed = [line.strip() for line in result.stdout.splitlines() if "FAILED" in line]
        assert failed and all("lacks the scope project:read (project:releases on GlitchTip)" in line
                              for line in failed), result.stdout
        assert rule.fired >= 1
        emu.faults.clear()
        emu.faults.add(kind="forbidden", route="/api/0/organizations/{org}/")
        refused = cli_sync(emu, tmp_path / "b.duckdb")
        assert refused.exit_code == 5, refused.output
        assert "403" in refused.stderr and len([x for x in refused.stderr.splitlines() if x.strip()]) == 1
