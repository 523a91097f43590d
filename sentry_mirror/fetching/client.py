"""HTTP client for Sentry's Web API: one session, retries, rate-limit pacing, cursor pagination.

Built from how the real server behaves (see the project's notes on the API):
- Sentry always sends a `rel="next"` link, even on the last page; only `results="false"` ends a walk.
- Cursors are opaque (`0:100:0`, `100:1:0`, a score, or GlitchTip's base64): we never parse them,
  and we build the next request from the cursor on the configured base URL, never from the URL
  inside the Link header, so a token is never sent to a host it was not configured for.
- 429 bodies are a JSON string, not an object; `Retry-After` may be absent, in which case
  `X-Sentry-Rate-Limit-Reset` (unix seconds) says when the window opens again.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import requests

from .. import __version__, redact
from ..errors import ApiError, AuthError, Interrupted, NotFoundError
from . import rawpage
from .endpoints import route_of, scope_of
from .rawpage import RawPage
from .urls import display_url, may_follow_region, normalise_base_url

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
# Retried until a request has waited RETRY_BUDGET seconds, not a number of times: a storm of them
# outlasts any count on a slow machine, and the server says (or means) "later", not "never".
BUDGETED_STATUSES = {429, 502, 503, 504}
RETRY_BUDGET = 600.0
MAX_PAGE_SIZE = 100
# A page of 100 events of 1 MB is 100 MB of text, held several times over while it is read,
# checked and split: a raw page bigger than this makes the next request of its walk ask for
# proportionally fewer items. Pages of typical events (5-50 KB) never come near it.
PAGE_TEXT_BYTES = 16 << 20
# How often a thread that waits (for an answer, a window, a backoff) calls its idle hook.
IDLE_STEP = 0.1
# Empty pages in a row, each promising more (results="true"), before a walk is taken as broken: Sentry's
# paginators may answer a short or empty page while more follow, but not without end.
EMPTY_PAGES = 20
_SIZE_KEYS = ("per_page", "limit")  # Sentry reads per_page, GlitchTip limit (see Syncer._with_page_size)

# One link: <url>; key="value"; key="value"   (tolerant of GlitchTip's `{'…'}` wrapping)
_LINK_RE = re.compile(r"<([^>]*)>((?:\s*;\s*[A-Za-z_-]+\s*=\s*\"[^\"]*\")*)")
_ATTR_RE = re.compile(r"([A-Za-z_-]+)\s*=\s*\"([^\"]*)\"")


@dataclass
class Link:
    url: str
    rel: str
    results: bool | None
    cursor: str | None


def parse_link_header(value: str | None) -> dict[str, Link]:
    """Parse Sentry's Link header into {rel: Link}, tolerating GlitchTip's malformed wrapping.

    A link with no `cursor` attribute takes it from its URL's query string; `results` is None when
    the server did not say (then a present cursor means "there may be more").
    """
    links: dict[str, Link] = {}
    if not value:
        return links
    for url, attr_text in _LINK_RE.findall(value):
        attrs = {k.lower(): v for k, v in _ATTR_RE.findall(attr_text)}
        rel = attrs.get("rel")
        if not rel:
            continue
        cursor = attrs.get("cursor")
        if cursor is None:
            cursor = (parse_qs(urlsplit(url).query).get("cursor") or [None])[0]
        results = attrs.get("results")
        links[rel] = Link(url, rel, None if results is None else results.lower() == "true", cursor or None)
    return links


def next_cursor(links: dict[str, Link]) -> str | None:
    """The cursor to ask for next, or None when the server says there is nothing more."""
    nxt = links.get("next")
    if nxt is None or not nxt.cursor:
        return None
    if nxt.results is False:
        return None
    return nxt.cursor


@dataclass
class Page:
    items: list[dict]  # empty for a raw page
    cursor: str | None  # the cursor that produced this page (None for the first)
    next_cursor: str | None
    headers: Any  # the response's headers (not the response: its body would stay in memory too)
    raw: RawPage | None = None  # the page as text, when asked for with raw=True

    @property
    def count(self) -> int:
        return self.raw.count if self.raw is not None else len(self.items)


@dataclass
class _Window:
    """What the answers told of one endpoint's fixed rate-limit window. Sentry keeps one per
    endpoint and caller (FACTS §2), so one endpoint running out holds back only its own requests."""

    reset: float = 0.0  # the window's X-Sentry-Rate-Limit-Reset (server epoch seconds); 0: none seen
    ends: float = 0.0  # when that window ends on our monotonic clock, margin included
    left: int | None = None  # requests we may still send in it; None: no limit known
    limit: int | None = None  # X-Sentry-Rate-Limit-Limit: what the next window allows
    sent: int = 0  # at most this many of our requests are counted in it
    in_flight: int = 0  # our requests to this endpoint sent and not yet answered
    heard: bool = False  # an answer came: until then, one request at a time
    concurrent: int | None = None  # X-Sentry-Rate-Limit-ConcurrentLimit

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)


class SentryClient:
    """A thin, careful wrapper over one `requests.Session` bound to one Sentry base URL."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        auth_scheme: str = "bearer",
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        retry_budget: float = RETRY_BUDGET,
        verify: bool | str = True,
        extra_headers: dict[str, str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = normalise_base_url(base_url)
        self._origin = urlsplit(self.base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_budget = retry_budget  # seconds one request may wait out BUDGETED_STATUSES
        # Seconds of waiting on 502/503/504 left to the requests of the current stream (None: each
        # request has the whole budget): an outage of one route should cost a stream the budget
        # once, not once for each of its hundreds of reads (see share_budget).
        self._outage_left: float | None = None
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self._sleep = sleep
        self._lock = threading.Condition()  # also signalled when a request of a capped endpoint ends
        self._windows: dict[str, _Window] = {}  # per endpoint template (endpoints.route_of)
        self._shared = False  # the server (or a proxy) counts all endpoints in one window
        self.stats = ClientStats()
        self.server_now: float | None = None  # server's clock (Date header), epoch seconds
        # How far the Date header runs ahead (+) of Sentry's own clock, as its rate-limit Reset shows
        # it: a reverse proxy sets Date from its own clock (nginx does). 0 while they agree.
        self.date_skew = 0.0
        # The server's clock less ours, to better than the Date header's whole second: Date is the
        # server time rounded down, so each response bounds the offset from below, and the largest
        # such bound (a response just after the server's second ticked) is within a request's latency.
        # Trusted only once the server's clock is seen to run with ours (a test server's may stand still).
        self._clock_offset: float | None = None
        self._clock_anchor: tuple[float, float] | None = None  # (Date, our time) it is checked against
        self._clock_runs = False
        self._reached = False  # until a first response, a refused connection is likely a wrong URL
        self._fitted: dict[str, int] = {}  # path -> a smaller page size its big pages led to (paginate)

        # One session per thread (requests.Session is not documented as thread-safe), all alike.
        self._verify = verify
        self._headers = {"User-Agent": f"sentry-mirror/{__version__}", "Accept": "application/json"}
        self._auth: tuple[str, str] | None = None
        for name, value in (extra_headers or {}).items():
            if len(value) >= 8:  # proxy and access headers carry secrets under any name
                redact.register(value)
            self._headers[name] = value
        if token:
            redact.register_token(token)
            if auth_scheme == "bearer":
                self._headers["Authorization"] = f"Bearer {token}"
            elif auth_scheme == "dsn":
                self._headers["Authorization"] = f"DSN {token}"
            elif auth_scheme == "basic":  # legacy API key: username = key, empty password
                self._auth = (token, "")
            else:
                raise ValueError(f"unknown auth scheme {auth_scheme!r}")
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self.token_origin = "--token or SENTRY_AUTH_TOKEN"  # where the token came from, for a 401's hint
        self._idle: Callable[[], None] | None = None
        self._idle_thread: int | None = None
        self._stopped: Callable[[], bool] | None = None  # see stop_when

    def on_idle(self, hook: Callable[[], None] | None) -> None:
        """Call `hook` every IDLE_STEP while this thread waits for an answer, a rate-limit window or
        a retry. The syncer's thread owns the store: a Retry-After of 45 s, or a slow answer, kept
        the file from every reader that long (and a reader gives up after 30 s)."""
        self._idle, self._idle_thread = hook, threading.get_ident() if hook else None

    def _idling(self) -> bool:
        return self._idle is not None and threading.get_ident() == self._idle_thread

    def stop_when(self, stopped: Callable[[], bool] | None) -> None:
        """Every thread's wait (a backoff, a Retry-After, a rate-limit window) ends with Interrupted
        once `stopped()` is true: a stop should not wait out a Retry-After of a minute."""
        self._stopped = stopped

    def _wait(self, seconds: float) -> None:
        idling = self._idling()
        if not idling and self._stopped is None:
            self._sleep(seconds)
            return
        while seconds > 0:
            if idling:
                self._idle()
            if self._stopped is not None and self._stopped():
                raise Interrupted.stopped()
            step = min(IDLE_STEP, seconds)
            self._sleep(step)
            seconds -= step

    def _send(self, url: str, params, method: str = "GET", body: Any = None) -> requests.Response:
        session = self.session
        if not self._idling():
            return _ask(session, method, url, params, body, self.timeout)
        # On a thread of its own, a daemon: a request given up (a stop) must not keep the process
        # alive until its answer comes.
        answer: dict[str, Any] = {}
        done = threading.Event()

        def send() -> None:
            try:
                answer["response"] = _ask(session, method, url, params, body, self.timeout)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                answer["error"] = exc
            done.set()

        threading.Thread(target=send, name="request", daemon=True).start()
        while not done.wait(IDLE_STEP):
            self._idle()
        if "error" in answer:
            raise answer["error"]
        return answer["response"]

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = self._verify
            session.headers.update(self._headers)
            session.auth = self._auth
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def use_region(self, region_url: str) -> bool:
        """Move to the organization's region host (`links.regionUrl`), on sentry.io only.

        sentry.io serves every organization, but data lives on us.sentry.io or de.sentry.io. The
        token may follow only between https hosts of sentry.io; a self-hosted server stays put.
        """
        try:
            target = urlsplit(normalise_base_url(region_url))
        except Exception:
            return False
        here_host, there_host = self._origin.hostname or "", target.hostname or ""
        if there_host == here_host and target.port == self._origin.port:
            return False
        if not may_follow_region(self._origin, target):
            log.info("not following regionUrl %s: only https hosts of sentry.io are followed", region_url)
            return False
        self.base_url = f"https://{there_host}/api/0"
        self._origin = urlsplit(self.base_url)
        return True

    # -- requests ---------------------------------------------------------------------------

    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            raise ValueError("paths are relative to the configured base URL")
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
            *, probe: int | None = None, raw: bool = False) -> tuple[Any, requests.Response]:
        """GET a path under /api/0/, retrying transient failures; return (decoded JSON, response).

        `raw`: the answer must be a JSON array, returned undecoded as a `RawPage` (see rawpage.py).

        `probe`: this path may not exist on a Sentry-compatible server (GlitchTip answers 500 or an
        HTML page for unknown routes), so those answers are retried only that many times (None: not
        a probe); 502/503/504/429 still are, and so is broken JSON unless `probe` is 0.

        429/502/503/504 are retried until the request has waited `retry_budget` seconds in all;
        other failures (500, broken JSON, connection errors) `max_retries` times.
        """
        return self._call("GET", path, params, None, probe=probe, raw=raw)

    def request(self, method: str, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
                json_body: Any = None, *, scope: str | None = None) -> tuple[Any, requests.Response]:
        """A write. PUT and DELETE are retried as reads are (429 and 5xx), since a bulk status change
        is idempotent and a repeated DELETE of gone issues changes nothing; a POST creates something,
        so only a 429 (Sentry did not act) is retried: after a 5xx or a broken connection it may
        exist, and the error says so. An answer with no body (204) gives None. `scope` is what a 403
        names as missing (the write scope, not a read's)."""
        return self._call(method, path, params, json_body, scope=scope, once=method == "POST")

    def _call(self, method: str, path: str, params, body: Any, *, probe: int | None = None, raw: bool = False,
              scope: str | None = None, once: bool = False) -> tuple[Any, requests.Response]:
        url = self.url_for(path)
        retries = self.max_retries
        page_retries = retries if probe is None else min(probe, retries)
        attempt = 0
        waited = 0.0  # backoff this request has spent on BUDGETED_STATUSES
        while True:
            attempt += 1
            window = self._pace(path)
            try:
                response = self._send(url, params, method, body)
            except (requests.exceptions.InvalidHeader, UnicodeError):
                from ..errors import ConfigError

                raise ConfigError("a header (the token or a configured header) is not valid in HTTP",
                                  hint="check for pasted newlines or non-ASCII characters") from None
            except requests.exceptions.SSLError as exc:
                if not _TLS_CUT_SHORT.search(str(exc)):  # the same answer every time: no retry
                    raise ApiError(0, f"TLS failed: {_tls_reason(exc)}", display_url(url),
                                   hint="check that --url says https only for a TLS server; for a private CA "
                                        "pass --ca-bundle") from None
                if attempt > (retries if self._reached else min(retries, 1)):  # a handshake cut short: retried
                    raise ApiError(0, f"TLS failed after {attempt} attempts: {_tls_reason(exc)}", display_url(url),
                                   hint="check --url and the network") from None
                self._backoff(attempt, None, "SSLError")
                continue
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                cut = _CUT_SHORT.search(str(exc)) is not None  # it answered, then the body broke off
                self._reached = self._reached or cut
                if once:
                    raise ApiError(0, f"the {method} may or may not have been done: {_short(exc)}", display_url(url),
                                   hint="look before trying again (it is not retried, not to do it twice)") from None
                if attempt > (retries if self._reached else min(retries, 1)):
                    if cut:
                        how = re.search(r"IncompleteRead\([^)]*\)", str(exc))
                        raise ApiError(0, f"the answer was cut short {attempt} times"
                                          f"{f' ({how.group(0)})' if how else ''}", display_url(url),
                                       hint="a proxy or the server drops long answers; try again later") from None
                    raise ApiError(0, f"could not reach Sentry after {attempt} attempts: {_short(exc)}", display_url(url),
                                   hint="check --url and the network") from None
                self._backoff(attempt, None, f"{type(exc).__name__}")
                continue
            finally:
                with self._lock:
                    window.in_flight -= 1
                    self._lock.notify_all()
                self._count(path)
            self._reached = True
            log.debug("%s %s -> %s in %.2fs", method, path, response.status_code, response.elapsed.total_seconds())
            self._observe(response, window)
            if once and response.status_code != 429 and (response.status_code in BUDGETED_STATUSES
                                                         or response.status_code in RETRY_STATUSES):
                raise self._error(response, url, scope)  # it may have been done: not sent again
            if response.status_code in BUDGETED_STATUSES:
                delay = self._delay(attempt, response)
                if waited + delay > self.retry_budget or not self._spend(response.status_code, delay):
                    raise self._out_of_budget(response, url, attempt, waited)
                waited += delay
                self._backoff(attempt, response, str(response.status_code), delay)
                continue
            if response.status_code in RETRY_STATUSES:
                if attempt > retries or (response.status_code == 500 and attempt > page_retries
                                         and not _is_json(response)):
                    raise self._error(response, url, scope)
                self._backoff(attempt, response, str(response.status_code))
                continue
            if 300 <= response.status_code < 400:
                raise ApiError(response.status_code, f"redirected to {response.headers.get('Location', '?')}",
                               display_url(url), hint="set --url to the final address of the Sentry server")
            if response.status_code >= 400:
                raise self._error(response, url, scope)
            if method != "GET" and not response.content.strip():
                return None, response  # 204: done, nothing to say
            try:
                return (rawpage.inspect(response.content) if raw else response.json()), response
            except ValueError:
                # A 200 whose body is not JSON is usually a cut connection or a proxy page: retry.
                if once or attempt > retries or probe == 0 or (_is_page(response) and attempt > page_retries):
                    # json_body=False only for a web page (a route the server does not have, answered
                    # by its web app); broken JSON is a broken answer, never taken for a missing route
                    snippet = _snippet(response)
                    raise ApiError(response.status_code, f"answered something that is not JSON ({response.status_code}, "
                                                         f"{_body_kind(response)}){': ' if snippet else ''}{snippet}",
                                   display_url(url), hint="is --url a Sentry server?",
                                   json_body=not _is_page(response)) from None
                self._backoff(attempt, None, "invalid JSON")

    def paginate(self, path: str, params: dict[str, Any] | None = None, cursor: str | None = None,
                 *, probe: int | None = None, raw: bool = False) -> Iterator[Page]:
        """Yield pages of a list endpoint, starting at `cursor`, until the server says no more results.

        `probe` marks the first request as probing a route the server may not serve (see `get`).
        """
        base = _as_pairs(params)
        asked = _page_size_of(base)  # the caller's page size: fitted pages never grow past it
        size = min(asked, self._fitted.get(path, asked)) if asked else None
        seen: set[str] = set()
        restarts = empties = 0
        while True:
            pairs = (base if size == asked else _with_size(base, size)) + ([("cursor", cursor)] if cursor else [])
            try:
                data, response = self.get(path, pairs, probe=probe, raw=raw)
            except ApiError as exc:
                # A cursor can expire or be refused mid-walk: start the walk over (a few times at
                # most). Pages already stored are upserted again, which changes nothing.
                if cursor is None or restarts >= 3 or exc.status != 400 or "cursor" not in exc.message.lower():
                    raise
                log.warning("server refused cursor %s on %s (%s); restarting this walk", cursor, path, exc.message)
                cursor, restarts = None, restarts + 1
                seen.clear()
                continue
            probe = None
            if not raw and not isinstance(data, list):
                raise ApiError(response.status_code, f"expected a JSON list, got {type(data).__name__}",
                               display_url(self.url_for(path)), hint="is this a Sentry-compatible server?")
            page = Page([], cursor, None, response.headers, data) if raw else Page(data, cursor, None, response.headers)
            links = parse_link_header(response.headers.get("Link"))
            nxt = next_cursor(links)
            if nxt is not None and not page.count and links["next"].results is not True:
                nxt = None  # an empty page from a server that does not say `results`: the end
            # Only results="false" ends a walk: an empty page that says more follow is followed.
            # Guarded both ways, as a failed stream (never a walk that ends as if it were done):
            # empty pages without end, and a page of items whose next cursor was seen before.
            empties = empties + 1 if nxt is not None and not page.count else 0
            if empties > EMPTY_PAGES:
                raise ApiError(response.status_code, f"{empties} empty pages in a row, each saying more "
                               f"results follow (last cursor {nxt})", display_url(self.url_for(path)),
                               hint="the server's pagination is stuck; try again later")
            if nxt is not None and page.count and (nxt in seen or nxt == cursor):
                raise ApiError(response.status_code, f"the server repeated cursor {nxt} after a page of items",
                               display_url(self.url_for(path)), hint="the server's pagination loops; try again later")
            if nxt is not None:
                seen.add(nxt)
            page.next_cursor = nxt
            if asked and page.raw is not None:
                size = _fitted_size(page, asked)
                if size < asked:  # kept for the path's next walk; typical pages keep nothing
                    self._fitted[path] = size
                else:
                    self._fitted.pop(path, None)
            yield page
            if nxt is None:
                return
            cursor = nxt

    # -- pacing and retries ------------------------------------------------------------------

    def _count(self, path: str) -> None:
        with self._lock:
            self.stats.requests += 1
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1

    def paced(self) -> bool:
        """Whether the server has made us wait (a rate-limit window, a 429, a retry): requests, not
        our own work, are then what bounds a sync."""
        return self.stats.waited_seconds > 0

    def _pace(self, path: str) -> _Window:
        """Wait until the endpoint's window has a request left and a concurrency slot is free, then
        take both, in one step: a thread that found room must be counted before another decides."""
        with self._lock:
            while True:
                route = "*" if self._shared else route_of(path)
                window = self._windows.setdefault(route, _Window())
                now = time.monotonic()
                if window.spent and now >= window.ends:
                    self._new_window(window)  # that window is over
                if window.spent:
                    wait, ends = window.ends - now, window.ends
                    self.stats.waited_seconds += wait
                    self._lock.release()
                    try:
                        self._wait(wait)
                    finally:
                        self._lock.acquire()
                    if window.ends == ends and window.spent:
                        self._new_window(window)  # nothing newer was heard: the wait ended it
                    continue
                cap = window.concurrent or (None if window.heard else 1)
                if cap is not None and window.in_flight >= cap:
                    self._lock.wait(IDLE_STEP if self._idling() else 1.0)  # until one of ours is answered
                    if self._stopped is not None and self._stopped():
                        raise Interrupted.stopped()
                    if self._idling():
                        self._lock.release()
                        try:
                            self._idle()
                        finally:
                            self._lock.acquire()
                    continue
                if window.left is not None:
                    window.left -= 1
                window.sent += 1
                window.in_flight += 1
                return window

    @staticmethod
    def _new_window(window: _Window) -> None:
        """Our clock says the window is over: the next allows Limit, less what is still in flight.
        Answers still to come from the old window (its Reset or earlier) are then ignored."""
        window.left = None if window.limit is None else window.limit - window.in_flight
        window.sent = window.in_flight
        window.reset += 0.001

    def _observe(self, response: requests.Response, window: _Window) -> None:
        """Track the server clock and the endpoint's rate-limit window from X-Sentry-Rate-Limit-*."""
        server = _date_header(response)
        if server is not None:
            self.server_now = server
            local = time.time()
            with self._lock:
                self._track_clock(server, local)
        limit = _int_header(response, "X-Sentry-Rate-Limit-Limit")
        concurrent = _int_header(response, "X-Sentry-Rate-Limit-ConcurrentLimit")
        remaining = _int_header(response, "X-Sentry-Rate-Limit-Remaining")
        reset = _float_header(response, "X-Sentry-Rate-Limit-Reset")
        if server is not None and reset is not None:
            self._check_date(server, reset)
        # ConcurrentRemaining counts this request itself: 0 says none may run beside it, and its
        # slot is free again now that it is answered. The limit is what pacing keeps to.
        delay = self._reset_delay(response) if remaining is not None else None
        with self._lock:
            window.heard = True
            if concurrent is not None and concurrent > 0:
                window.concurrent = concurrent
            if limit is not None and limit > 0:
                window.limit = limit
            if remaining is None or (reset is not None and reset < window.reset):
                return  # no limit said, or an answer from a window already over
            now = time.monotonic()
            ends = now + (1.0 if delay is None else delay)
            # Our requests still in flight spend this window too, whether or not the server had
            # counted them when it answered: counting them again errs on the safe side.
            left = remaining - window.in_flight
            if (reset is not None and reset > window.reset) or window.left is None or \
                    (reset is None and now >= window.ends):
                window.reset, window.ends, window.left = reset or 0.0, ends, left
                window.sent = 1 + window.in_flight  # this request, and perhaps those in flight
            else:
                window.left = min(window.left, left)
                if now >= window.ends:  # a window longer than our wait was capped at
                    window.ends = ends
            if reset is not None and window.limit and not self._shared and remaining < window.limit - window.sent:
                # Fewer left than our own requests explain: the window is shared by the endpoints
                # (a proxy's limit, or the emulator's --rate-limit), or with another client.
                log.info("the server's rate limit is spent faster than by our requests to one endpoint: "
                         "pacing all endpoints in one window")
                self._shared = True
                self._windows["*"] = window

    def _check_date(self, date: float, reset: float) -> None:
        """Compare the Date header with Sentry's clock, which Reset shows: the end of the window the
        request was counted in, so Sentry's now lies within a window before it (a second for most
        routes, a minute for a few). Beyond a minute either way (two for a Date behind, for those
        long windows), Date is taken to come from another clock."""
        ahead = date - reset
        self.date_skew = ahead if ahead > 60 or ahead < -120 else 0.0

    def sentry_now(self) -> float | None:
        """Sentry's clock, epoch seconds: the last Date header, less what it is known to run ahead."""
        return None if self.server_now is None else self.server_now - self.date_skew

    def _track_clock(self, server: float, local: float) -> None:
        bound = server - local
        anchor = self._clock_anchor
        if anchor is None or abs((server - anchor[0]) - (local - anchor[1])) > 1.5:
            # first look, or a clock that stands still or jumped: start over, trust nothing yet
            self._clock_anchor, self._clock_offset, self._clock_runs = (server, local), bound, False
            return
        self._clock_offset = max(self._clock_offset, bound)
        if local - anchor[1] >= 2.0:
            self._clock_runs = True

    def _reset_delay(self, response: requests.Response) -> float | None:
        """Seconds until the rate-limit window resets, on the server's own clock: the Reset header
        minus the same response's Date header, so a skewed local clock cannot stretch the wait."""
        reset = _float_header(response, "X-Sentry-Rate-Limit-Reset")
        if reset is None:
            return None
        now_on_server = _date_header(response)
        if now_on_server is None:
            now_on_server = time.time()
        elif self._clock_runs and self._clock_offset is not None:
            # the same server clock, read finer: not before this response's Date, nor a second past it
            now_on_server = max(now_on_server, min(time.time() + self._clock_offset, now_on_server + 1.0))
        now_on_server -= self.date_skew  # a proxy's Date: the window runs on Sentry's clock
        return max(0.0, min(reset - now_on_server, self.backoff_cap)) + 0.05

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        """Retry-After, else a 429's X-Sentry-Rate-Limit-Reset, else exponential backoff with jitter."""
        delay = None
        if response is not None:
            retry_after = response.headers.get("Retry-After")
            if retry_after:
                delay = _parse_retry_after(retry_after)
            if delay is None and response.status_code == 429:
                delay = self._reset_delay(response)
        if delay is None:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** min(attempt - 1, 60))
            delay = delay / 2 + random.uniform(0, delay / 2)  # jitter, so parallel syncs spread out
        return min(delay, self.backoff_cap)

    def _backoff(self, attempt: int, response: requests.Response | None, why: str,
                 delay: float | None = None) -> None:
        if delay is None:
            delay = self._delay(attempt, response)
        with self._lock:
            self.stats.retries += 1
            self.stats.waited_seconds += delay
            if response is not None and response.status_code == 429:
                self.stats.rate_limited += 1
        log.info("retrying after %s in %.2fs (attempt %d)", why, delay, attempt)
        self._wait(delay)

    def share_budget(self) -> None:
        """From now on the requests that follow (a stream's, on any thread) share one retry budget
        for 502/503/504: a backend that is down fails the stream in minutes, not hours. 429s keep
        a budget per request: a rate limit always opens again."""
        with self._lock:
            self._outage_left = self.retry_budget

    def _spend(self, status: int, delay: float) -> bool:
        if status == 429:
            return True
        with self._lock:
            if self._outage_left is None:
                return True
            if delay > self._outage_left:
                return False
            self._outage_left -= delay
            return True

    def _out_of_budget(self, response: requests.Response, url: str, attempt: int, waited: float) -> ApiError:
        status = response.status_code
        what = "rate limited" if status == 429 else "unavailable"
        return ApiError(status, f"still {what} after {attempt} attempts and {waited:.1f}s of waiting, past the "
                                f"retry budget of {self.retry_budget:g}s: {server_message(response)}", display_url(url),
                        hint="the server's rate limit held for too long; try again later" if status == 429 else
                        "try again later", json_body=_is_json(response))

    def _error(self, response: requests.Response, url: str, scope: str | None = None) -> ApiError:
        message = server_message(response)
        status = response.status_code
        is_json = _is_json(response)
        if status == 401:
            return AuthError(status, message, display_url(url), json_body=is_json,
                             hint=f"check the token in {self.token_origin} and that it has the read scopes")
        if status == 403:  # a token that may read the rest: name what this read needs
            scope = scope or scope_of(urlsplit(url).path.split("/api/0/", 1)[-1])
            lacks = f"the scope {scope}" if scope else "a scope this read needs"
            # said first: a status line or a stream's error shows only the start of a message
            return AuthError(status, f"the token lacks {lacks}: {message}", display_url(url), json_body=is_json,
                             hint=f"give the token in {self.token_origin} that scope")
        if status == 404:
            return NotFoundError(status, message, display_url(url), hint="check --org and the base URL", json_body=is_json)
        return ApiError(status, message, display_url(url), json_body=is_json)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


def _ask(session: requests.Session, method: str, url: str, params, body: Any, timeout: float) -> requests.Response:
    """A read through `Session.get` (as ever), a write through `Session.request` with its JSON body."""
    if method == "GET":
        return session.get(url, params=params, timeout=timeout, allow_redirects=False)
    return session.request(method, url, params=params, json=body, timeout=timeout, allow_redirects=False)


def server_message(response: requests.Response) -> str:
    """The server's own words: `detail` of a JSON object, a JSON string body, or a text snippet,
    with emails, addresses and tokens masked (redact.mask_personal)."""
    try:
        body = response.json()
    except ValueError:
        snippet = _snippet(response)
        if snippet:
            return f"{snippet} ({_body_kind(response)})"
        return redact.mask_personal(response.reason or "") or f"no message ({_body_kind(response)})"
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                return redact.mask_personal(str(body[key]))[:300]
        return redact.mask_personal(json.dumps(body))[:300]
    return redact.mask_personal(str(body))[:300]


def _body_kind(response: requests.Response) -> str:
    """A body told by its type and length, for messages that must not quote it."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    return f"{kind}, {len(response.content):,} bytes"


def _snippet(response: requests.Response) -> str:
    """The start of a text body (an error page) as words, masked; nothing of a body that looks
    like JSON: broken JSON is data cut short, a member's email or an event's."""
    text = (response.text or "")[:20_000]
    if text.lstrip()[:1] in ("[", "{"):
        return ""
    # Masked before it is cut: a token or an email cut in two would no longer be found.
    text = " ".join(redact.mask_personal(_TAG.sub(" ", text)).split())
    return text[:80] + ("…" if len(text) > 80 else "")


_TAG = re.compile(r"<[^>]*>")


# A body that broke off after the server answered (requests' wording for urllib3's IncompleteRead
# and ProtocolError): the server was reached, so a wrong URL is not the likely cause.
_CUT_SHORT = re.compile(r"IncompleteRead|Connection broken|Response ended prematurely", re.I)

# A TLS handshake cut short (the connection dropped or reset) is worth another attempt; any other
# TLS failure (a certificate, a protocol, plain HTTP on the port) answers the same every time.
_TLS_CUT_SHORT = re.compile(r"EOF occurred|UNEXPECTED_EOF|unexpected eof|Connection reset|ECONNRESET|"
                            r"timed out|Broken pipe", re.I)


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"certificate verify failed: [^'\")(]+|\[SSL: [A-Z_]+\] [^'\")(]+", text)
    return (match.group(0) if match else redact.scrub(text)[:160]).strip()


def _short(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\)\"]+)|(Connection refused|timed out|Read timed out)", text)
    if match:
        return (match.group(1) or match.group(2)).strip()
    return redact.scrub(text)[:160]


def _parse_retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - time.time())


def _is_page(response: requests.Response) -> bool:
    """An HTML page rather than an API answer."""
    kind = response.headers.get("Content-Type", "").lower()
    return "html" in kind or response.content.lstrip()[:1] == b"<"


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
        return True
    except ValueError:
        return False


def _date_header(response: requests.Response) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _int_header(response: requests.Response, name: str) -> int | None:
    value = _float_header(response, name)
    return None if value is None else int(value)


def _float_header(response: requests.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _page_size_of(pairs: list[tuple[str, Any]]) -> int | None:
    for key, value in pairs:
        if key in _SIZE_KEYS and str(value).isdigit() and int(value) > 0:
            return int(value)
    return None


def _with_size(pairs: list[tuple[str, Any]], size: int) -> list[tuple[str, Any]]:
    return [(k, size if k in _SIZE_KEYS else v) for k, v in pairs]


def _fitted_size(page: Page, asked: int) -> int:
    """The page size that would bring a raw page like this one near PAGE_TEXT_BYTES of text, at most
    the size asked for. Sentry's event cursors (an absolute offset) and GlitchTip's (a position)
    both stay valid when the page size changes between requests."""
    length = sum(map(len, page.raw.texts()))
    if page.count < 1 or length < 1:
        return asked
    return max(1, min(asked, page.count * PAGE_TEXT_BYTES // length))


def _as_pairs(params: dict[str, Any] | list[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    """Flatten params so repeatable keys (`group`, `project`, `environment`) can be lists."""
    if params is None:
        return []
    items = params.items() if isinstance(params, dict) else params
    pairs: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, (list, tuple)):
            pairs.extend((key, v) for v in value)
        elif value is not None:
            pairs.append((key, value))
    return pairs
