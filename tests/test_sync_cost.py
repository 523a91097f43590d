"""What a sync costs when little or nothing changed (issue 22 §1), counted by the emulator's request
log (exact), and that the cheap path still finds every change: the store level with the emulator's
ground truth after each sync."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

from helpers import TOKEN, assert_level, run, sync

NO_CHANGE = {"GET /api/0/organizations/{org}/issues/": 1, "GET /api/0/organizations/{org}/releases/": 2,
             "GET /api/0/organizations/{org}/stats_v2/": 1}


def requests_besides_refresh(emu, result) -> dict:
    """The sync's requests by endpoint, less the known-issue refresh (its own stream, counted apart)."""
    counts = dict(emu.request_counts()["by_endpoint"])
    refresh = result.streams["issue_status"]["requests"]
    issues = "GET /api/0/organizations/{org}/issues/"
    counts[issues] = counts.get(issues, 0) - refresh
    return {k: v for k, v in counts.items() if v}


@pytest.mark.parametrize("scale, projects", [("small", 4), ("eight", 8), ("wide", 50)])
def test_a_no_change_sync_costs_four_requests_whatever_the_number_of_projects(scale, projects):
    with Emulator(seed=5, scale=scale, token=TOKEN) as emu:
        assert len(emu.truth()["projects"]) == projects
        store = Store(":memory:")
        sync(store, emu)
        emu.requests.reset()
        result = sync(store, emu)
        assert requests_besides_refresh(emu, result) == NO_CHANGE
        assert result.streams["issue_status"]["requests"] <= -(-len(emu.truth()["issues"]) // 100)
        assert_level(store, emu)


def test_a_sync_after_one_new_event_costs_at_most_eight_requests():
    with Emulator(seed=5, scale="small", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        before = emu.truth()
        while True:  # the smallest step of the clock that brings an event
            emu.advance(0.02)
            moved = {i for i, v in emu.truth()["issues"].items() if before["issues"].get(i, {}).get("count") != v["count"]}
            if moved:
                break
        assert len({emu.truth()["issues"][i]["project_id"] for i in moved}) == 1
        emu.requests.reset()
        result = sync(store, emu)
        counts = requests_besides_refresh(emu, result)
        assert sum(counts.values()) <= 8, counts
        assert counts.get("GET /api/0/projects/{org}/{project}/events/") == 1  # that project's walk only
        assert_level(store, emu)


def test_an_archived_release_is_found_next_sync_on_the_first_pages_and_at_the_cadence_deeper():
    """Release lists are read newest first until an unchanged page. A release on the open list's
    first page that is archived is found by the next sync (the open list no longer lists it: the
    archived list is read on until it does); an old one deeper down at the latest when the whole
    lists are read (their cadence, or --refresh)."""
    with Emulator(seed=5, scale="wide", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        world = emu.world
        by_date = sorted((r for r in world.releases if r.status == "open"), key=lambda r: (r.created_ms, r.id),
                         reverse=True)
        assert len(by_date) > 100
        recent, old = by_date[5], by_date[-1]
        with world.lock:
            recent.status = old.status = "archived"
        status = "SELECT status FROM releases WHERE version = ?"
        sync(store, emu)
        assert store.con.execute(status, [recent.version]).fetchone() == ("archived",)
        sync(store, emu, refresh=frozenset({"releases", "releases_archived"}))  # the whole lists
        assert store.con.execute(status, [old.version]).fetchone() == ("archived",)
        assert_level(store, emu)


def test_a_new_release_is_found_by_the_next_sync_and_a_new_deploy_on_the_first_page_too():
    with Emulator(seed=5, scale="small", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        versions = set(emu.truth()["releases"])
        for _ in range(40):  # until the organization cuts a release
            emu.advance(6)
            if set(emu.truth()["releases"]) - versions:
                break
        new = set(emu.truth()["releases"]) - versions
        assert new
        sync(store, emu)
        stored = {r[0] for r in store.con.execute("SELECT version FROM releases").fetchall()}
        assert new <= stored
        assert_level(store, emu)


def test_an_archived_release_behind_a_full_page_of_unchanged_archived_ones_is_still_found():
    """The archived list is read on past an unchanged page while an open release the open list no
    longer lists has not been found there. Here 110 newer releases were archived (and stored) first,
    so the one archived next sits on the archived list's second page, behind 100 unchanged ones."""
    with Emulator(seed=5, scale="eight", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        world = emu.world
        by_date = sorted((r for r in world.releases if r.status == "open"), key=lambda r: (r.created_ms, r.id),
                         reverse=True)
        assert len(by_date) > 120
        with world.lock:
            for release in by_date[:110]:
                release.status = "archived"
        sync(store, emu)
        status = "SELECT count(*) FROM releases WHERE status = 'archived' AND version IN (SELECT unnest(?))"
        assert store.con.execute(status, [[r.version for r in by_date[:110]]]).fetchone() == (110,)
        late = by_date[110]
        with world.lock:
            late.status = "archived"
        emu.requests.reset()
        sync(store, emu)
        assert store.con.execute(status, [[late.version]]).fetchone() == (1,)
        assert emu.request_counts()["by_endpoint"]["GET /api/0/organizations/{org}/releases/"] == 3
        assert_level(store, emu)


def test_status_shows_each_slowly_changing_streams_cadence_and_when_it_is_next_due(tmp_path, clean_sentry_env):
    db = str(tmp_path / "m.duckdb")
    with Emulator(seed=5, scale="tiny", token=TOKEN) as emu:
        store = Store(db)
        sync(store, emu, cadence={"members": timedelta(hours=6)})
        store.close()
        server_now = emu.world.now.replace(tzinfo=None)
    info = json.loads(run("status", "--db", db, "--json").stdout)
    cadences = {c["stream"]: c for c in info["sources"][emu.org_slug]["cadences"]}
    assert set(cadences) == {"organization", "projects", "teams", "members", "environments", "project_details",
                             "releases", "releases_archived"}
    members = cadences["members"]
    assert members["every_hours"] == 6 and cadences["teams"]["every_hours"] == 24
    last, due = (datetime.fromisoformat(members[k]) for k in ("last_read", "next_due"))
    assert due - last == timedelta(hours=6)
    for stream, c in cadences.items():  # every stream timed by Sentry's clock (the Date header), none by ours
        assert abs(datetime.fromisoformat(c["last_read"]) - server_now) < timedelta(minutes=1), stream
    text = run("status", "--db", db).stdout
    assert f"members            every 6 h, last read {last:%Y-%m-%d %H:%M:%S} UTC, next due {due:%Y-%m-%d %H:%M:%S} UTC" \
        in text, text


def test_while_issue_webhooks_arrive_the_known_issue_refresh_reads_fewer():
    """Issue 22: a source whose integration issue webhooks arrive hears of status changes as they
    happen, so its syncs re-read `refresh_with_hooks` known issues a project instead of
    `refresh_per_project`; once they stop for a day, the whole share again."""
    from sentry_mirror.storage.store import ISSUE_HOOKS, utcnow
    from sentry_mirror.timestamps import fmt_ts

    with Emulator(seed=5, scale="small", token=TOKEN) as emu:  # 200 issues in 4 projects
        store = Store(":memory:")
        sync(store, emu)
        whole = sync(store, emu).streams["issue_status"]["requests"]
        assert whole == 2  # all 200 known issues, 100 ids a request
        store.set_state(emu.org_slug, *ISSUE_HOOKS, extra={"at": fmt_ts(utcnow())})  # as the hook writer notes it
        shares = [sync(store, emu, refresh_with_hooks=10).streams["issue_status"]["requests"] for _ in range(5)]
        assert shares == [1] * 5  # 40 ids a sync: one request
        assert sync(store, emu, refresh_with_hooks=0).streams["issue_status"]["requests"] == whole  # 0: as before
        store.set_state(emu.org_slug, *ISSUE_HOOKS, extra={"at": fmt_ts(utcnow() - timedelta(days=2))})
        assert sync(store, emu, refresh_with_hooks=10).streams["issue_status"]["requests"] == whole
        assert_level(store, emu)
