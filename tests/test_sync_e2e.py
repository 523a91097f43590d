"""The sync against the emulator over HTTP, compared with the emulator's ground truth."""

import hashlib

import pytest
import requests
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import AuthError, NotFoundError, StoreError
from sentry_mirror.fetching.client import SentryClient, next_cursor, parse_link_header
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.syncer import Syncer

TOKEN = "sntryu_" + "e" * 64


@pytest.fixture
def emu():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as e:
        yield e


def stored(store):
    con = store.con
    return {
        "projects": {r[0] for r in con.execute("SELECT id FROM projects").fetchall()},
        "issues": {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, status, times_seen FROM issues").fetchall()},
        "events": {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()},
        "releases": {r[0] for r in con.execute("SELECT version FROM releases").fetchall()},
    }


def truth_of(emu):
    truth = emu.truth()
    events = requests.get(emu.url + "/_emulator/truth/events", timeout=30).json()["event_ids"]
    return {
        "projects": set(truth["projects"]),
        "issues": {i: (v["status"], v["count"]) for i, v in truth["issues"].items()},
        "events": set(events),
        "releases": set(truth["releases"]),
        "n_events": len(events),
    }


def assert_level(store, emu):
    got, want = stored(store), truth_of(emu)
    assert got["projects"] == want["projects"]
    assert got["issues"] == want["issues"]
    assert got["releases"] == want["releases"]
    assert got["events"] == want["events"]
    n = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert n == want["n_events"]  # no duplicates


def content_digest(store, with_write_times=True):
    """A digest of every entity row, every column: equal digests mean identical content.

    Two stores written at different moments differ in `synced_at`; compare them without it."""
    digest = hashlib.sha256()
    def columns(table):
        has_time = table not in ("event_frames",)
        return "*" if with_write_times or not has_time else "* EXCLUDE (synced_at)"

    for table, key in (("organizations", "id"), ("projects", "id"), ("releases", "version"),
                       ("issues", "id"), ("events", "event_id"), ("event_frames", "event_id, exception_idx, idx"),
                       ("teams", "id"), ("members", "id"), ("deploys", "id"), ("tag_values", "project_id, key, value"),
                       ("project_stats", "project_id, stat, resolution, ts")):
        for row in store.con.execute(f"SELECT {columns(table)} FROM {table} ORDER BY source, {key}").fetchall():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def test_first_sync_equals_ground_truth(emu):
    store = Store(":memory:")
    result = sync(store, emu)
    assert result.status == "ok"
    assert_level(store, emu)
    statuses = {s for s, _ in stored(store)["issues"].values()}
    assert "resolved" in statuses  # the `query=` trap: resolved issues are mirrored too


def test_independent_crawl_finds_nothing_the_mirror_lacks(emu):
    """Walk the API with plain requests, following Link headers, and compare."""
    store = Store(":memory:")
    sync(store, emu)
    headers = {"Authorization": f"Bearer {emu.token}"}
    url = f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/?query=&statsPeriod=90d"
    crawled = set()
    while url:
        response = requests.get(url, headers=headers, timeout=30)
        response.raise_for_status()
        crawled.update(i["id"] for i in response.json())
        links = parse_link_header(response.headers["Link"])
        url = links["next"].url if next_cursor(links) else None
    assert crawled and crawled == set(stored(store)["issues"])


def test_incremental_sync_after_advance_is_level_and_cheap(emu):
    store = Store(":memory:")
    first = sync(store, emu)
    changes = emu.advance(24)
    assert changes["new_events"] > 0 and changes["status_changes_without_event"] > 0
    second = sync(store, emu)
    assert_level(store, emu)
    assert second.requests < first.requests / 2, (first.requests, second.requests)


def test_status_change_without_new_event_is_seen(emu):
    store = Store(":memory:")
    sync(store, emu)
    before = stored(store)["issues"]
    emu.advance(6)
    truth = emu.truth()["issues"]
    changed_quietly = [i for i, v in truth.items() if i in before and before[i][1] == v["count"] and before[i][0] != v["status"]]
    assert changed_quietly, "the emulator should have changed a status without an event"
    sync(store, emu)
    after = stored(store)["issues"]
    for issue_id in changed_quietly:
        assert after[issue_id][0] == truth[issue_id]["status"]


def test_no_change_sync_leaves_content_identical_and_costs_little(emu):
    store = Store(":memory:")
    sync(store, emu)
    digest = content_digest(store)
    before = emu.request_counts()["by_endpoint"]
    second = sync(store, emu)
    assert content_digest(store) == digest
    n_projects = len(emu.truth()["projects"])
    n_issues = len(emu.truth()["issues"])
    # org, projects, 2 release lists, teams, members, environments, issues, 2 stats_v2 intervals,
    # status refresh in batches of 100, 4 stats x 2 resolutions and one empty page of new events
    # per project; no issue event walks, deploys, tag values or users when nothing moved
    assert second.requests <= 10 + -(-n_issues // 100) + 9 * n_projects
    assert "events" not in second.rows or second.rows["events"] == 0
    after = emu.request_counts()["by_endpoint"]
    walks = {k: after[k] - before.get(k, 0) for k in after if "{issue_id}/events/" in k and after[k] != before.get(k, 0)}
    assert not walks, walks


@pytest.mark.parametrize("crash_at", [0.0, 0.3, 0.6, 0.95])
def test_crash_between_writes_resumes_to_the_same_store(emu, monkeypatch, crash_at):
    from sentry_mirror.syncing.buffer import WriteBuffer

    monkeypatch.setattr(WriteBuffer, "__init__", _small_buffer(WriteBuffer.__init__))
    real_upsert = Store.upsert
    calls = {"n": 0, "crash": None}

    def counting_upsert(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["crash"]:
            raise KeyboardInterrupt("killed mid-sync")
        return real_upsert(self, *args, **kwargs)

    monkeypatch.setattr(Store, "upsert", counting_upsert)
    reference = Store(":memory:")
    sync(reference, emu)
    total, calls["n"] = calls["n"], 0
    assert total > 10
    calls["crash"] = max(1, int(total * crash_at))

    store = Store(":memory:")
    with pytest.raises(KeyboardInterrupt):
        sync(store, emu)
    calls["crash"] = None
    sync(store, emu)
    assert_level(store, emu)
    assert stored(store) == stored(reference)


def _small_buffer(init):
    def small(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.max_rows = 20
    return small


def test_full_resync_changes_nothing_when_level(emu):
    store = Store(":memory:")
    sync(store, emu)
    digest = content_digest(store)
    result = sync(store, emu, full=True)
    assert result.status == "ok"
    assert content_digest(store) == digest


def test_wrong_token(emu):
    client = SentryClient(emu.url, "sntryu_" + "0" * 64)
    with pytest.raises(AuthError) as info:
        Syncer(Store(":memory:"), client, emu.org_slug).run()
    assert info.value.status == 401
    assert "0" * 64 not in str(info.value)


def test_unknown_org(emu):
    client = SentryClient(emu.url, emu.token)
    with pytest.raises(NotFoundError, match="organization 'no-such-org' not found"):
        Syncer(Store(":memory:"), client, "no-such-org").run()


def test_events_are_full_payloads(emu):
    store = Store(":memory:")
    sync(store, emu)
    with_entries = store.con.execute(
        "SELECT count(*) FROM events WHERE json_type(raw->'entries') = 'ARRAY'").fetchone()[0]
    total = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert total > 0 and with_entries == total


def test_second_syncer_is_refused_while_one_writes(tmp_path, emu):
    from sentry_mirror.storage.locking import writer_lock

    path = str(tmp_path / "s.duckdb")
    with writer_lock(path):
        with pytest.raises(StoreError, match="another sync"):
            with writer_lock(path):
                pass


def test_concurrency_does_not_change_the_store(emu):
    one, four = Store(":memory:"), Store(":memory:")
    sync(one, emu, concurrency=1)
    sync(four, emu, concurrency=4)
    assert content_digest(one, False) == content_digest(four, False)


def test_events_policy_sample_then_every_new_event(emu):
    store = Store(":memory:")
    sync(store, emu, events="sample", events_sample=3)
    truth = emu.truth()["issues"]
    per_issue = dict(store.con.execute("SELECT issue_id, count(*) FROM events GROUP BY 1").fetchall())
    assert per_issue == {i: min(3, v["count"]) for i, v in truth.items() if v["count"] > 0}
    before = {r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall()}
    all_before = set(truth_of(emu)["events"])
    emu.advance(12)
    sync(store, emu, events="sample", events_sample=3)
    after = {r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall()}
    new_in_sentry = set(truth_of(emu)["events"]) - all_before
    assert new_in_sentry and new_in_sentry <= after  # every new event, not just a sample of them
    assert before <= after


def test_events_policy_none_for_one_project(emu):
    store = Store(":memory:")
    client = SentryClient(emu.url, emu.token)
    first = client.get(f"organizations/{emu.org_slug}/projects/")[0][0]
    client.close()
    sync(store, emu, project_events={first["slug"]: "none"})
    counts = dict(store.con.execute(
        "SELECT i.project_id, count(e.event_id) FROM issues i LEFT JOIN events e ON e.issue_id = i.id GROUP BY 1").fetchall())
    assert counts[first["id"]] == 0
    assert sum(n for p, n in counts.items() if p != first["id"]) > 0
