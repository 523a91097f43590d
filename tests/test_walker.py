"""The walker on recorded pages: resuming a walk at its committed cursor, checkpoints, optional
streams a server may lack, route fallbacks, and a stop asked for.

No emulator, no HTTP: a fake client answers scripted pages of Sentry-shaped objects and records
what it was asked.
"""

from __future__ import annotations

import copy
import threading

import pytest
from conftest import load_fixture

from sentry_mirror.errors import ApiError, Interrupted
from sentry_mirror.fetching import endpoints as ep
from sentry_mirror.fetching.client import Page
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.walker import PROBE_RETRIES, SyncOptions, SyncResult, Walker

SOURCE, ORG = "sentry", "acme"
ISSUES_PATH = ep.ISSUES.path.format(org=ORG)


def issues(n: int) -> list[dict]:
    """`n` issues shaped like Sentry's organization issue list."""
    base = load_fixture("org_issues.json")[0]
    out = []
    for i in range(1, n + 1):
        issue = copy.deepcopy(base)
        issue.update(id=str(1000 + i), shortId=f"PUMP-STATION-{i}", title=f"Error {i}",
                     lastSeen=f"2018-12-06T21:{i:02d}:00Z", count=str(100 + i))
        out.append(issue)
    return out


class FakeClient:
    """Answers `paginate` from scripts: path -> a list of pages (lists of objects), or an ApiError
    raised at the first request. Cursors are "0:<page index>:0"."""

    page_size = 100
    base_url = "https://sentry.example.com/api/0"

    def __init__(self, scripts: dict, now: float | None = 1_700_000_000.0):
        self.scripts = scripts
        self.calls: list[dict] = []
        self.now = now

    def paginate(self, path, params=None, cursor=None, probe=None, raw=False):
        self.calls.append({"path": path, "params": dict(params or {}), "cursor": cursor, "probe": probe})
        script = self.scripts[path]
        if isinstance(script, ApiError):
            raise script
        index = int(cursor.split(":")[1]) if cursor else 0
        for i in range(index, len(script)):
            nxt = f"0:{i + 1}:0" if i + 1 < len(script) else None
            yield Page(script[i], f"0:{i}:0" if i else cursor, nxt, {"X-Hits": str(sum(map(len, script)))})

    def sentry_now(self):
        return self.now


def make_walker(store: Store, client: FakeClient, stop: threading.Event | None = None) -> Walker:
    walker = Walker(store, client, ORG, SOURCE, SyncOptions(), stop or threading.Event(), SyncResult(SOURCE),
                    progress=lambda _: None, observer=None)
    walker.buffer.max_seconds = 3600  # only what a test asks for is flushed
    return walker


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


def issue_ids(store: Store) -> list[str]:
    return [r[0] for r in store.con.execute("SELECT id FROM issues ORDER BY id").fetchall()]


# -- walk: where a walk starts -------------------------------------------------------------------

def test_walk_without_a_committed_cursor_starts_at_the_first_page(store):
    rows = issues(4)
    client = FakeClient({ISSUES_PATH: [rows[:2], rows[2:]]})
    walker = make_walker(store, client)
    pages = list(walker.walk("issues", "", ISSUES_PATH, {"query": "", "sort": "date"}))
    assert [p.items for p in pages] == [rows[:2], rows[2:]]
    assert client.calls == [{"path": ISSUES_PATH, "cursor": None, "probe": None,
                             "params": {"query": "", "sort": "date", "per_page": 100, "limit": 100}}]


def test_walk_resumes_at_the_committed_cursor_with_the_params_that_produced_it(store):
    rows = issues(6)
    client = FakeClient({ISSUES_PATH: [rows[:2], rows[2:4], rows[4:]]})
    saved = {"query": "lastSeen:>2018-12-06T20:00:00", "sort": "date"}
    store.set_state(SOURCE, "issues", "", watermark="2018-12-06T20:10:00", cursor="0:2:0", params=saved)
    walker = make_walker(store, client)
    params = {"query": "lastSeen:>2018-12-07T00:00:00", "sort": "date"}  # a later sync's own query
    pages = list(walker.walk("issues", "", ISSUES_PATH, params))
    assert [p.items for p in pages] == [rows[4:]]
    assert client.calls[0]["cursor"] == "0:2:0"
    assert client.calls[0]["params"] == {**saved, "per_page": 100, "limit": 100}
    assert params == saved  # what save_page checkpoints with the next cursor


def test_walk_with_a_cursor_but_no_params_starts_over(store):
    store.set_state(SOURCE, "issues", "", cursor="0:1:0", params=None)
    client = FakeClient({ISSUES_PATH: [issues(1), issues(2)[1:]]})
    pages = list(make_walker(store, client).walk("issues", "", ISSUES_PATH, {"query": ""}))
    assert len(pages) == 2 and client.calls[0]["cursor"] is None


# -- checkpoints ---------------------------------------------------------------------------------

def test_save_page_commits_rows_with_the_cursor_after_them_and_keeps_the_watermark(store):
    store.set_state(SOURCE, "issues", "", watermark="2018-12-01T00:00:00")
    rows = issues(4)
    walker = make_walker(store, FakeClient({ISSUES_PATH: [rows[:2], rows[2:]]}))
    params = {"query": ""}
    page = next(walker.walk("issues", "", ISSUES_PATH, params))
    walker.save_page("issues", "issues", "", page, params)
    walker.buffer.flush()
    assert issue_ids(store) == ["1001", "1002"]
    state = store.get_state(SOURCE, "issues", "")
    assert (state["cursor"], state["params"], state["watermark"]) == ("0:1:0", {"query": ""}, "2018-12-01T00:00:00")
    assert walker.result.rows == {"issues": 2}


def test_save_page_without_checkpoint_stores_rows_but_no_cursor(store):
    rows = issues(4)
    walker = make_walker(store, FakeClient({ISSUES_PATH: [rows[:2], rows[2:]]}))
    page = next(walker.pages(ISSUES_PATH, {}, None))
    assert page.next_cursor == "0:1:0"
    walker.save_page("issues", "issues", "", page, {"query": ""}, checkpoint=False)
    walker.buffer.flush()
    assert issue_ids(store) == ["1001", "1002"]
    state = store.get_state(SOURCE, "issues", "")
    assert state["cursor"] is None and state["params"] is None


def test_finish_walk_clears_the_cursor_and_sets_the_watermark(store):
    store.set_state(SOURCE, "issues", "", watermark="2018-12-01T00:00:00", cursor="0:3:0", params={"query": ""},
                    extra={"walk_max": "2018-12-06T21:04:00"})
    walker = make_walker(store, FakeClient({}))
    walker.finish_walk("issues", "", watermark="2018-12-06T21:04:00")
    walker.buffer.flush()
    assert store.get_state(SOURCE, "issues", "") == {"watermark": "2018-12-06T21:04:00", "cursor": None,
                                                     "params": None, "extra": {}}


def test_rows_are_counted_once_however_often_they_are_listed(store):
    rows = issues(3)
    walker = make_walker(store, FakeClient({ISSUES_PATH: [rows[:2], rows[1:]]}))
    for page in walker.pages(ISSUES_PATH, {}, None):
        walker.save_rows("issues", page)
    assert walker.result.rows == {"issues": 3}


# -- a walk cut short, then resumed ---------------------------------------------------------------

PAGES = 4


def whole_walk(walker: Walker, stop_after: int | None = None) -> None:
    """Walk the issues as sync_list does; set the stop after page `stop_after` is saved."""
    params = {"query": "", "sort": "date"}
    for n, page in enumerate(walker.walk("issues", "", ISSUES_PATH, params), 1):
        walker.save_page("issues", "issues", "", page, params)
        if n == stop_after:
            walker.stop.set()
    walker.finish_walk("issues", "", watermark="2018-12-06T21:08:00")
    walker.buffer.flush()


def stored_issues(store: Store) -> list[tuple]:
    cols = [r[0] for r in store.con.execute("DESCRIBE issues").fetchall() if r[0] != "synced_at"]
    return store.con.execute(f"SELECT {', '.join(cols)} FROM issues ORDER BY id").fetchall()


@pytest.mark.parametrize("flushed", [False, True], ids=["killed", "stopped-and-flushed"])
def test_walk_cut_between_pages_then_resumed_stores_what_an_uninterrupted_walk_does(flushed):
    rows = issues(2 * PAGES)
    script = {ISSUES_PATH: [rows[i:i + 2] for i in range(0, len(rows), 2)]}
    whole = Store(":memory:")
    whole_walk(make_walker(whole, FakeClient(script)))

    cut = Store(":memory:")
    first = make_walker(cut, FakeClient(script), stop=threading.Event())
    with pytest.raises(Interrupted):
        whole_walk(first, stop_after=2)
    if flushed:
        first.buffer.flush()  # a stop commits the pages in hand; a kill loses them
    assert issue_ids(cut) == (["1001", "1002", "1003", "1004"] if flushed else [])

    client = FakeClient(script)
    whole_walk(make_walker(cut, client))
    assert client.calls[0]["cursor"] == ("0:2:0" if flushed else None)
    assert len(stored_issues(whole)) == 2 * PAGES
    assert stored_issues(cut) == stored_issues(whole)
    assert cut.get_state(SOURCE, "issues", "") == whole.get_state(SOURCE, "issues", "")


# -- optional streams ------------------------------------------------------------------------------

def raising(exc: Exception):
    def step():
        raise exc
    return step


@pytest.mark.parametrize("exc", [
    ApiError(405, "Method Not Allowed", "https://glitchtip.example/api/0/organizations/acme/stats_v2/"),
    ApiError(404, "<!doctype html><title>Not Found</title>", "https://glitchtip.example/api/0/x/", json_body=False),
    ApiError(500, "<h1>Server Error (500)</h1>", "https://glitchtip.example/api/0/x/", json_body=False),
], ids=["405", "html-404", "html-500"])
def test_optional_stream_the_server_lacks_is_skipped_for_the_sync_and_noted(store, exc):
    walker = make_walker(store, FakeClient({}))
    probes = []

    def step():
        probes.append(walker.probe)
        raise exc

    assert walker.optional("org_stats", step) is False
    assert walker.optional("org_stats", step) is False  # not asked again in this sync
    assert probes == [PROBE_RETRIES] and walker.probe is None
    assert walker.missing == {"org_stats"}
    assert len(walker.result.notes) == 1 and walker.result.notes[0].startswith("org_stats: not available")
    assert str(exc.status) in walker.result.notes[0]
    assert walker.result.errors == []
    assert walker.capabilities()["missing_streams"] == ["org_stats"]  # committed at once

    # the next sync probes it without retries, and one answer forgets it was missing
    later = make_walker(store, FakeClient({}))
    seen = []
    assert later.optional("org_stats", lambda: seen.append(later.probe)) is True
    assert seen == [0]
    assert later.capabilities()["missing_streams"] == []


def test_optional_json_404_settles_the_read_without_a_note(store):
    walker = make_walker(store, FakeClient({}))
    gone = ApiError(404, "The requested resource does not exist", "https://sentry.example.com/api/0/projects/acme/x/")
    assert walker.optional("project_stats", raising(gone)) is True
    assert walker.missing == set() and walker.result.notes == [] and walker.result.errors == []
    assert walker.optional("project_stats", lambda: None) is True


def test_optional_403_is_an_error_naming_the_url(store):
    walker = make_walker(store, FakeClient({}))
    url = "https://sentry.example.com/api/0/organizations/acme/members/"
    denied = ApiError(403, "member:read: You do not have permission to perform this action.", url)
    assert walker.optional("members", raising(denied)) is False
    assert walker.missing == set() and walker.result.notes == []
    assert len(walker.result.errors) == 1
    assert url in walker.result.errors[0] and "403" in walker.result.errors[0]
    assert "member:read" in walker.result.errors[0]


def test_optional_json_500_after_retries_is_an_error_not_a_missing_route(store):
    walker = make_walker(store, FakeClient({}))
    url = "https://sentry.example.com/api/0/organizations/acme/stats_v2/"
    assert walker.optional("org_stats", raising(ApiError(502, "Bad Gateway", url))) is False
    assert walker.missing == set() and url in walker.result.errors[0]


def test_optional_401_is_raised(store):
    walker = make_walker(store, FakeClient({}))
    with pytest.raises(ApiError) as info:
        walker.optional("members", raising(ApiError(401, "Invalid token", "https://sentry.example.com/api/0/x/")))
    assert info.value.status == 401
    assert walker.probe is None and walker.missing == set()


def test_optional_commits_the_batch_in_hand_before_noting_a_missing_stream(store):
    walker = make_walker(store, FakeClient({}))
    walker.buffer.add("issues", issues(2))
    walker.optional("deploys", raising(ApiError(405, "Method Not Allowed", "https://x.example/api/0/d/")))
    assert issue_ids(store) == ["1001", "1002"]


# -- route fallbacks -------------------------------------------------------------------------------

def test_route_pages_falls_back_to_the_next_path_and_remembers_it(store):
    events = load_fixture("issue_events.json")
    first, second = ep.ISSUE_EVENTS.paths(org=ORG, issue="1")
    html_404 = ApiError(404, "<html>Not Found</html>", "https://glitchtip.example/api/0/" + first, json_body=False)
    client = FakeClient({first: html_404, second: [events, events]})
    walker = make_walker(store, client)
    pages = list(walker.route_pages(ep.ISSUE_EVENTS, {"full": "true"}, None, 50, issue="1"))
    assert [p.items for p in pages] == [events, events]
    assert walker.routes == {"events": 1}
    assert [(c["path"], c["probe"]) for c in client.calls] == [(first, 0), (second, None)]
    assert client.calls[1]["params"]["per_page"] == 50

    # the next issue goes straight to the path that works
    client.calls.clear()
    client.scripts[ep.ISSUE_EVENTS.paths(org=ORG, issue="2")[1]] = [events]
    assert len(list(walker.route_pages(ep.ISSUE_EVENTS, {"full": "true"}, None, 50, issue="2"))) == 1
    assert [c["path"] for c in client.calls] == [ep.ISSUE_EVENTS.paths(org=ORG, issue="2")[1]]


def test_route_pages_raises_a_json_404(store):
    first, second = ep.ISSUE_EVENTS.paths(org=ORG, issue="1")
    gone = ApiError(404, "The requested resource does not exist", first)
    client = FakeClient({first: gone, second: [load_fixture("issue_events.json")]})
    walker = make_walker(store, client)
    with pytest.raises(ApiError):
        list(walker.route_pages(ep.ISSUE_EVENTS, {}, None, None, issue="1"))
    assert [c["path"] for c in client.calls] == [first] and walker.routes == {}


# -- the clock -----------------------------------------------------------------------------------

def test_server_now_is_never_before_the_data_floor(store):
    from datetime import datetime, timedelta

    walker = make_walker(store, FakeClient({}, now=1_700_000_000.0))
    date_header = datetime(2023, 11, 14, 22, 13, 20)
    assert walker.server_now() == date_header
    walker.raise_floor(date_header + timedelta(hours=2))
    walker.raise_floor(date_header + timedelta(hours=1))  # lower: ignored
    walker.raise_floor(None)
    assert walker.server_now() == date_header + timedelta(hours=2)


# -- stop ------------------------------------------------------------------------------------------

def test_check_stop_raises_once_the_stop_is_set(store):
    stop = threading.Event()
    walker = make_walker(store, FakeClient({}), stop=stop)
    walker.check_stop()
    stop.set()
    with pytest.raises(Interrupted):
        walker.check_stop()


def test_a_stop_ends_a_walk_before_the_next_page(store):
    rows = issues(6)
    stop = threading.Event()
    walker = make_walker(store, FakeClient({ISSUES_PATH: [rows[:2], rows[2:4], rows[4:]]}), stop=stop)
    got = []
    with pytest.raises(Interrupted):
        for page in walker.pages(ISSUES_PATH, {}, None):
            got.append(page.items)
            stop.set()
    assert got == [rows[:2]]


def test_abort_of_the_fetch_threads_stops_too(store):
    walker = make_walker(store, FakeClient({}))
    walker.abort.set()
    with pytest.raises(Interrupted):
        walker.check_stop()


def test_a_json_404_from_a_stream_missing_at_the_last_sync_forgets_it_was_missing(store):
    make_walker(store, FakeClient({})).remember({"missing_streams": ["project_stats"]})
    walker = make_walker(store, FakeClient({}))
    gone = ApiError(404, "The requested resource does not exist", "https://sentry.example.com/api/0/projects/acme/x/")
    assert walker.optional("project_stats", raising(gone)) is True
    assert walker.capabilities()["missing_streams"] == []


def test_a_flush_never_commits_a_page_without_its_cursor(store):
    """Rows of a page joined the buffer and could be flushed (a full batch) before its cursor did:
    the batch committed page 2's rows with page 1's cursor."""
    rows = issues(60)
    walker = make_walker(store, FakeClient({}))
    walker.buffer.max_rows = 40
    for n in range(3):
        page = Page(rows[n * 20:(n + 1) * 20], f"0:{n}:0" if n else None, f"0:{n + 1}:0", {})
        walker.save_page("issues", "issues", "", page, {"query": "x"})
        stored = store.con.execute("SELECT count(*) FROM issues").fetchone()[0]
        if stored:  # what is committed is covered by its own cursor: pages 1..k with the cursor after page k
            assert (store.get_state(SOURCE, "issues", "") or {}).get("cursor") == f"0:{stored // 20}:0", stored
