"""The fault suite: sync under each fault the emulator can inject and compare the store with the
emulator's ground truth. Either the sync completes level (nothing lost, nothing doubled), or it
fails cleanly with a resumable checkpoint and the next sync completes level."""

import threading
import time

import pytest
import requests
from helpers import assert_level

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import ApiError, AuthError
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.syncer import Syncer, SyncOptions

TOKEN = "sntryu_" + "f" * 64


@pytest.fixture
def emu():
    with Emulator(seed=21, scale="tiny", token=TOKEN) as e:
        yield e


def sync(store, emu, *, timeout=5.0, **options):
    # 25 per page: the tiny org's lists span several pages, so faults land between pages too
    client = SentryClient(emu.url, emu.token, backoff_base=0.01, backoff_cap=0.2, timeout=timeout, max_retries=8,
                          page_size=25)
    try:
        return Syncer(store, client, emu.org_slug, options=SyncOptions(**options)).run()
    finally:
        client.close()


def fired(emu):
    return sum(rule.get("fired", 0) for rule in requests.get(emu.url + "/_emulator/faults", timeout=10).json())


RETRIED_FAULTS = [
    "kind=429,rate=0.3",  # a 429 storm, no Retry-After: the client waits for X-Sentry-Rate-Limit-Reset
    "kind=429,retry_after=1,times=3",
    "kind=500,rate=0.2",
    "kind=502,rate=0.2",
    "kind=503,rate=0.2",
    "kind=reset,rate=0.15",  # connection reset mid-body
    "kind=truncate,rate=0.15",  # body cut short
    "kind=badjson,rate=0.15",  # 200 with invalid JSON
    "kind=slow,delay=1.5,rate=0.1",  # slower than the client's timeout
    "kind=badcursor,after=2,times=2",  # a refused cursor mid-walk: the walk starts over
    "kind=drift,rate=0.5",  # unknown fields, missing optional fields, nulls, count as a number
    "kind=hostile,rate=0.5",  # NUL, escapes, SQL, RTL marks, emoji, 20k-character strings
    "kind=huge,route=*/events/*,times=3",  # events of ~4 MB
    "kind=emptypage,rate=0.15",  # an empty page whose Link says results="true": more follow
    "kind=shortpage,rate=0.3",  # fewer items than asked for, more to come
]


@pytest.mark.parametrize("spec", RETRIED_FAULTS)
def test_sync_under_fault_is_level(emu, spec):
    requests.post(emu.url + "/_emulator/faults", json={"spec": spec}, timeout=10).raise_for_status()
    store = Store(":memory:")
    result = sync(store, emu, timeout=1.0)
    assert fired(emu) > 0, "the fault never fired: this test would prove nothing"
    assert result.status == "ok"
    if "drift" in spec or "hostile" in spec:
        # These change the JSON the mirror keeps: check it was kept as sent, then re-read it clean.
        if "hostile" in spec:
            titles = {r[0] for r in store.con.execute("SELECT title FROM events UNION SELECT title FROM issues").fetchall()}
            from sentry_mirror.emulator.faults import HOSTILE
            assert set(HOSTILE) & titles, "no hostile title was stored as sent"
        requests.delete(emu.url + "/_emulator/faults", timeout=10)
        sync(store, emu)
    assert_level(store, emu)
    if "huge" in spec:
        largest = store.con.execute("SELECT max(strlen(CAST(raw AS VARCHAR))) FROM events").fetchone()[0]
        assert largest > 3_000_000


def test_revoked_token_fails_cleanly_and_resumes(emu):
    requests.post(emu.url + "/_emulator/faults", json={"spec": "kind=revoke,route=*/events/*,after=5,times=1"}, timeout=10)
    store = Store(":memory:")
    with pytest.raises(AuthError) as info:
        sync(store, emu)
    assert info.value.status == 401 and TOKEN not in str(info.value)
    run = store.con.execute("SELECT status, error FROM _sync_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert run[0] == "failed" and "401" in run[1]
    kept = store.con.execute("SELECT count(*) FROM issues").fetchone()[0]
    assert kept > 0  # what was stored before the revocation stays

    # A new token is issued; the next sync picks up from the checkpoints and ends level.
    emu.faults.clear()
    emu._revoked.clear()
    sync(store, emu)
    assert_level(store, emu)


def test_data_moving_while_the_sync_pages(emu):
    """Events and issues arrive while a sync walks: the next sync ends level, without duplicates."""
    requests.post(emu.url + "/_emulator/faults", json={"spec": "kind=slow,delay=0.05,rate=1"}, timeout=10)
    store = Store(":memory:")
    mover = threading.Thread(target=lambda: (time.sleep(0.5), emu.advance(6)))
    mover.start()
    sync(store, emu, concurrency=2)
    mover.join()
    emu.faults.clear()
    sync(store, emu)
    assert_level(store, emu)


def test_429_without_retry_after_honours_the_reset_header(emu):
    """Rate limited by the emulator itself (no Retry-After): the sync slows down, never fails."""
    with Emulator(seed=22, scale="tiny", token=TOKEN, rate_limit=25) as limited:
        store = Store(":memory:")
        client = SentryClient(limited.url, limited.token, backoff_base=0.01)
        result = Syncer(store, client, limited.org_slug, options=SyncOptions(concurrency=4)).run()
        assert result.status == "ok"
        assert_level(store, limited)
        assert client.stats.requests > 50  # several one-second windows' worth
        assert client.stats.waited_seconds > 0  # the client paced itself or waited out a 429


def test_threads_sharing_an_endpoint_pace_themselves_within_its_window():
    """Four threads read one endpoint under a limit of 10 a second. Each request takes its slot of
    the window as it is sent, so none finds out by a 429 (a thread that had read the window as open
    could otherwise send unseen by an answer that had just closed it; test_client stages that
    case exactly)."""
    with Emulator(seed=22, scale="tiny", token=TOKEN, rate_limit=10) as limited:
        client = SentryClient(limited.url, limited.token)
        slugs = [p.slug for p in limited.world.projects]
        errors = []

        def read(n):
            try:
                for i in range(8):
                    client.get(f"projects/{limited.org_slug}/{slugs[(n + i) % len(slugs)]}/events/", {"per_page": 1})
                    time.sleep(0.005 * ((n * 7 + i * 3) % 5))  # storing the page: not in flight meanwhile
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        served = limited.request_counts()["by_endpoint"]["GET /api/0/projects/{org}/{project}/events/"]
        assert served == client.stats.requests == 32
        assert client.stats.rate_limited == 0
        assert client.stats.waited_seconds > 0  # 32 requests at 10 a second: it had to wait


def test_sentrys_per_endpoint_limits_cost_no_wait_below_them():
    """With Sentry's own limits (project events 60 a minute, one at a time), a sync reading fewer
    pages than that never waits: ConcurrentRemaining 0 on an answer counts the answered request
    (read as 'wait for the window', it cost this sync three minutes)."""
    with Emulator(seed=22, scale="tiny", token=TOKEN, strict_limits=True) as limited:
        store = Store(":memory:")
        client = SentryClient(limited.url, limited.token)
        result = Syncer(store, client, limited.org_slug).run()
        assert result.status == "ok"
        assert_level(store, limited)
        served = limited.request_counts()["by_endpoint"]["GET /api/0/projects/{org}/{project}/events/"]
        assert 0 < served < 60
        assert client.stats.rate_limited == 0 and client.stats.waited_seconds == 0


def test_server_answering_garbage_everywhere_is_one_clear_error(emu):
    requests.post(emu.url + "/_emulator/faults", json={"spec": "kind=badjson,rate=1"}, timeout=10)
    store = Store(":memory:")
    with pytest.raises(ApiError) as info:
        sync(store, emu)
    assert "not JSON" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("route", ["*/members/*", "*/stats_v2/*"])
def test_garbage_from_an_optional_endpoint_is_a_failed_stream_not_a_missing_route(emu, route):
    """Broken JSON from the members (or stats) route was taken for 'this server has no such route':
    exit 0, status ok, and the route remembered as missing, so later syncs barely asked again."""
    requests.post(emu.url + "/_emulator/faults", json={"spec": f"kind=badjson,route={route},rate=1"}, timeout=10)
    store = Store(":memory:")
    result = sync(store, emu)
    stream = "members" if "members" in route else "project_stats"
    assert result.status == "partial", result.notes
    assert any(stream in e for e in result.errors), result.errors
    caps = store.get_state(result.source, "_capabilities", "") or {}
    assert stream not in ((caps.get("extra") or {}).get("missing_streams") or [])
    error = store.con.execute("SELECT error FROM _sync_runs ORDER BY run_id DESC LIMIT 1").fetchone()[0]
    assert "not JSON (200, application/json, " in error, error
    if stream == "members":  # the half page it quoted held the first member's email
        assert "@" not in error and not any(m.email in error for m in emu.world.members), error
    requests.delete(emu.url + "/_emulator/faults", timeout=10)
    assert sync(store, emu).status == "ok"  # asked again, with retries, and stored
    assert_level(store, emu)


@pytest.mark.parametrize("flavor", ["sentry", "glitchtip"])
def test_empty_pages_that_promise_more_are_followed(flavor):
    """An empty page with results="true" ended the walk as if the data were done: with 15% of pages
    served empty once, a sync exited 0 with 2,828 of 6,580 events missing, and the next sync never
    read them. Now the walk goes on to the cursor the empty page names."""
    with Emulator(seed=23, scale="tiny", token=TOKEN, flavor=flavor) as e:
        e.faults.add(kind="emptypage", route="*/issues/*", rate=0.3)
        e.faults.add(kind="emptypage", route="*/events/*", rate=0.3)
        store = Store(":memory:")
        result = sync(store, e)
        assert len(e._deferred) >= 3  # pages actually served empty
        assert result.status == "ok", result.errors
        if flavor == "sentry":
            assert_level(store, e)
        else:  # GlitchTip lacks some routes; its issues and events are what the fault cut
            truth = e.truth()
            assert {r[0] for r in store.con.execute("SELECT id FROM issues").fetchall()} == set(truth["issues"])
            events = requests.get(e.url + "/_emulator/truth/events", timeout=30).json()["event_ids"]
            assert sorted(r[0] for r in store.con.execute("SELECT event_id FROM events").fetchall()) == sorted(events)


def test_a_walk_of_empty_pages_without_end_is_a_failed_stream(emu):
    """A server that answers empty pages for ever, each saying more follow, fails the stream (the
    sync is partial, the summary names it); it never ends as if the data were done."""
    emu.faults.add(kind="emptypage", route="*/organizations/*/issues/", rate=1)
    store = Store(":memory:")
    result = sync(store, emu)
    assert result.status == "partial"
    assert any("issues" in e and "empty pages in a row" in e for e in result.errors), result.errors
    emu.faults.clear()
    assert sync(store, emu).status == "ok"
    assert_level(store, emu)


def test_a_sample_is_whole_when_its_first_page_comes_short(emu):
    """With events = sample, an issue's first walk reads its latest N events from one page; a page
    that comes short (or empty) while more follow used to leave the sample short for good."""
    def counts(store):
        return dict(store.con.execute("SELECT issue_id, count(*) FROM events GROUP BY ALL").fetchall())

    reference = Store(":memory:")
    sync(reference, emu, events="sample", events_sample=4)
    emu.faults.add(kind="shortpage", route="*/issues/*/events/", rate=0.5)
    emu.faults.add(kind="emptypage", route="*/issues/*/events/", rate=0.2)
    store = Store(":memory:")
    assert sync(store, emu, events="sample", events_sample=4).status == "ok"
    assert len(emu._deferred) >= 3
    assert counts(store) == counts(reference) and max(counts(store).values()) == 4


def test_an_outage_of_one_route_costs_its_stream_one_retry_budget(emu):
    """503s retry until a request has waited the retry budget; an outage of the stats backend then
    cost every project's read that long (hours at a few hundred projects). The requests of a
    stream share one budget for 502/503/504: the stream fails once it is spent."""
    emu.faults.add(kind="503", route="*/stats_v2/*", rate=1)
    store = Store(":memory:")
    client = SentryClient(emu.url, emu.token, backoff_base=0.2, backoff_cap=0.4, retry_budget=2.0)
    try:
        result = Syncer(store, client, emu.org_slug).run()
    finally:
        client.close()
    assert len(emu.world.projects) >= 3
    assert result.status == "partial" and any("project_stats" in e for e in result.errors), result.errors
    assert client.stats.waited_seconds <= 2.0  # one budget, not one per project
    emu.faults.clear()
    assert sync(store, emu).status == "ok"
    assert_level(store, emu)
