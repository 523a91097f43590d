"""The checkpointed walk: pages of one list, each saved with the cursor after it, resumed where a
cut walk stopped; and what every stream of a sync shares while it walks: the buffer it writes
through, the server's clock, the routes this server serves, a stop asked for.

Streams (syncer.py) and event walks (event_walks.py) sit on top of this; it knows neither.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from ..errors import ApiError, Interrupted
from ..fetching import endpoints as ep
from ..fetching.endpoints import CADENCES
from ..fetching.client import Page, SentryClient
from ..storage.store import ENTITY_KEYS, Store
from .buffer import WriteBuffer

log = logging.getLogger(__name__)

RETENTION = timedelta(days=90)
PROBE_RETRIES = 2  # retries of an optional stream's HTML 500 before it is taken for a route the server lacks


@dataclass
class SyncOptions:
    full: bool = False
    overlap: timedelta = timedelta(minutes=10)  # re-read this much before a watermark (ingest lag)
    events: str = "all"  # all | sample (latest `events_sample` per issue, then every new one) | none
    events_sample: int = 10
    project_events: dict[str, str] = field(default_factory=dict)  # project slug -> policy
    concurrency: int = 4  # issues whose events are read at once
    # Known issues re-read per project and sync for status changes without a new event (0: all).
    refresh_per_project: int = 500
    rebind: bool = False  # accept a new URL for the server this source mirrors (same organization id)
    # More of the stored issues than this share (and than MASS_DELETION_MIN) gone from the server in
    # one sync is taken for a fault, not deletions, unless `full` asked for it.
    max_deleted_share: float = 0.25
    # Slowly changing streams, each re-read when its cadence has passed since it was last read
    # (CADENCES: the default); `refresh` names those to read this sync regardless (`full`: all).
    cadence: dict[str, timedelta] = field(default_factory=dict)
    refresh: frozenset[str] = frozenset()
    projects: tuple[str, ...] = ()  # the project slugs mirrored; none: every project of the organization
    # `org = "*"`: `projects` names projects in any of the organizations; one that has none of them is skipped
    projects_anywhere: bool = False
    # known issues re-read per project while the source's issue webhooks arrive (0: refresh_per_project)
    refresh_with_hooks: int = 50
    issue_hashes: bool = True  # each changed issue's hashes (`issue_hashes = false`: none, and no request)
    tag_keys: tuple[str, ...] | None = None  # the tag keys whose values are read; None: every key a project has

    def cadence_of(self, stream: str) -> timedelta:
        return self.cadence.get(stream, CADENCES[stream])

    def covers(self, slug: str | None) -> bool:
        """Whether a project is mirrored (the source names none, or names it)."""
        return not self.projects or slug in self.projects




@dataclass
class SyncResult:
    source: str
    status: str = "ok"
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    rate_limited: int = 0
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # streams that failed while the others were stored
    streams: dict[str, dict] = field(default_factory=dict)  # per stream: rows, requests, retries, 429s, seconds
    missing_projects: list[str] = field(default_factory=list)  # with org = "*": named projects this org lacks

    def add(self, entity: str, n: int) -> None:
        self.rows[entity] = self.rows.get(entity, 0) + n


class Walker:
    """One sync's walking gear. Only the thread that runs the sync writes (through `buffer`);
    `pages` and `route_pages` are HTTP only and run on fetch threads too."""

    def __init__(self, store: Store, client: SentryClient, org: str, source: str, options: SyncOptions,
                 stop: threading.Event, result: SyncResult, progress: Callable[[str], None], observer: Any):
        self.store, self.client, self.org, self.source = store, client, org, source
        self.options, self.stop, self.result, self.progress = options, stop, result, progress
        # Told of every page (`page(label, items, hits)`) and of expected totals (`expect(label, n)`):
        # the terminal progress display; None when nobody watches.
        self.observer = observer
        # Raw pages (events) count what was new or changed: re-reading the overlap adds nothing.
        self.buffer = WriteBuffer(store, source, on_written=result.add)
        self.abort = threading.Event()  # set while fetch threads must give up (see event_walks)
        self.missing: set[str] = set()  # optional streams this server does not serve, this sync
        self.known_missing: set[str] | None = None  # optional streams lacking at the last sync (read once)
        # Retries allowed to a missing route's answer on the next request of an optional stream (see
        # `optional`); None: the next request is no probe.
        self.probe: int | None = None
        self.routes: dict[str, int] = {}  # endpoint name -> index of the path that works here
        # The newest time the server's own data showed in this sync (an issue's lastSeen, an event's
        # dateCreated): Sentry's clock is at least there, whatever a proxy's Date header says (see
        # server_now). Not the store's: a server restored from a backup is behind what was stored.
        self.data_floor: datetime | None = None
        self.counted: dict[str, set] = {}  # entity -> keys of the objects counted in this sync's rows

    # -- pages ---------------------------------------------------------------------------------

    def walk(self, stream: str, scope: str, path: str, params: dict) -> Iterator[Page]:
        """Pages of one walk, resuming from a committed cursor when the same walk was cut short."""
        state = self.store.get_state(self.source, stream, scope) or {}
        cursor = None
        if state.get("cursor") and state.get("params") is not None:
            params.clear()
            params.update(state["params"])  # resume with exactly the query that produced the cursor
            cursor = state["cursor"]
            log.info("resuming %s %s at cursor %s", stream, scope, cursor)
        yield from self.pages(path, params, cursor, probe=self.probe)

    def route_pages(self, endpoint: ep.Endpoint, params: dict, cursor: str | None, page_size: int | None,
                    raw: bool = False, **scope_args: str) -> Iterator[Page]:
        """Pages from the first of an endpoint's paths this server serves (remembered once found)."""
        paths = endpoint.paths(org=self.org, **scope_args)
        start = self.routes.get(endpoint.name, 0)
        for index in range(start, len(paths)):
            probing = endpoint.name not in self.routes and index + 1 < len(paths)
            yielded = False
            try:
                for page in self.pages(paths[index], params, cursor, probe=0 if probing else None,
                                       page_size=page_size, raw=raw):
                    yielded = True
                    self.routes[endpoint.name] = index
                    yield page
                return
            except ApiError as exc:
                if yielded or not probing or not route_missing(exc):
                    raise
                log.info("%s not served at %s (%s); trying %s", endpoint.name, paths[index], exc.status, paths[index + 1])

    def pages(self, path: str, params: dict, cursor: str | None, probe: int | None = None,
              page_size: int | None = None, raw: bool = False) -> Iterator[Page]:
        for page in self.client.paginate(path, self.with_page_size(params, page_size), cursor=cursor,
                                         probe=probe, raw=raw):
            self.check_stop()
            yield page

    def with_page_size(self, params: dict, size: int | None = None) -> dict:
        # Sentry reads `per_page` (issues read `limit`); GlitchTip reads `limit`. Both are harmless.
        size = size or self.client.page_size
        return {**params, "per_page": size, "limit": size}

    # -- checkpoints ---------------------------------------------------------------------------

    def save_page(self, stream: str, entity: str, scope: str, page: Page, params: dict, *,
                  checkpoint: bool = True, extra: dict | None = None, context: dict | None = None,
                  observed_at: datetime | None = None, label: str | None = None) -> None:
        """Rows of a page and the cursor after it; they reach the store in the same transaction.
        Without `checkpoint` (a walk that starts over when cut: a snapshot, a sample), no cursor."""
        self._add_rows(entity, page, context, observed_at, label or stream, walk=f"{stream}/{scope}")
        cursor = page.next_cursor if checkpoint else None
        self.buffer.state("cursor", stream, scope, cursor=cursor, params=dict(params) if cursor else None, extra=extra)
        self.buffer.maybe_flush()

    def save_rows(self, entity: str, page: Page, *, context: dict | None = None, observed_at: datetime | None = None,
                  label: str | None = None) -> None:
        """A page's rows, without a cursor: for reads that keep none (the known issues re-read).
        Shown as progress under `label`, when given."""
        self._add_rows(entity, page, context, observed_at, label)
        self.buffer.maybe_flush()

    def _add_rows(self, entity: str, page: Page, context: dict | None, observed_at: datetime | None,
                  label: str | None, walk: str | None = None) -> None:
        """Into the buffer, not flushed: a page's cursor must join its rows before any flush."""
        if self.observer and label:
            self.observer.page(label or entity, page.count, _hits(page), walk=walk)
        if page.raw is not None:
            self.buffer.add_page(entity, page.raw, context)  # counted in the result when written
        else:
            self.buffer.add(entity, page.items, context, observed_at)
            self.result.add(entity, self.count_new(entity, page.items, context))

    def count_new(self, entity: str, items: list, context: dict | None) -> int:
        """How many of these objects this sync has not counted yet: a row is counted once however
        often it is listed (GlitchTip answers `status=archived` with the open releases again); one
        without its key is not stored (store._dedupe), so not counted."""
        seen = self.counted.setdefault(entity, set())
        before = len(seen)
        where = json.dumps(context, sort_keys=True) if context else None
        for item in items:
            if isinstance(item, dict):
                key = next((item[f] for f in ENTITY_KEYS.get(entity, ()) if item.get(f) not in (None, "")), None)
                if key is not None:
                    seen.add((where, str(key)))
        return len(seen) - before

    def finish_walk(self, stream: str, scope: str, *, watermark: str | None, extra: dict | None = None) -> None:
        self.buffer.state("state", stream, scope, watermark=watermark, cursor=None, params=None, extra=extra)
        self.buffer.maybe_flush()

    # -- optional streams ----------------------------------------------------------------------

    def optional(self, name: str, step: Callable, *args: Any, **kwargs: Any) -> bool:
        """Run a read a Sentry-compatible server may not serve, or whose object may be gone.

        A missing route (an HTML 404/500, 405, 501: GlitchTip lacks some) skips the stream for the
        rest of this sync, noted once. A JSON 404 means this project, release or tag key is gone:
        only this read is skipped. A 403 skips it too, noted. True when the read is settled.
        """
        if name in self.missing:
            return False
        # The first request of a stream probes its route. A stream the server lacked at the last
        # sync: a missing route's HTML 500 is not retried (GlitchTip's unknown paths: six retries
        # cost 45 s a sync). Any other: retried twice, not six times (a GlitchTip first sync spent
        # 22 s on each of deploys and stats); a proxy's 500 that outlasts that skips the stream for
        # this sync only, said so in the notes: the next sync asks again (and one answer in JSON
        # forgets it was missing); snapshots and stats lose nothing meanwhile.
        if self.known_missing is None:
            self.known_missing = set(self.capabilities().get("missing_streams") or [])
        self.probe = 0 if name in self.known_missing else PROBE_RETRIES
        try:
            step(*args, **kwargs)
            if name in self.known_missing:
                self._remember_missing(name, False)
            return True
        except ApiError as exc:
            if exc.status == 401:
                raise
            if route_missing(exc):
                self.buffer.flush()
                self.missing.add(name)
                if name not in self.known_missing and name != ep.PROJECT_EVENTS.name:  # its walks never probe
                    self._remember_missing(name, True)
                again = "" if name in self.known_missing else "; asked again next sync"
                note = f"{name}: not available from this server ({exc.status or 'no answer'}: {exc.message[:80]}){again}"
                log.info(note)
                self.result.notes.append(note)
                return False
            if exc.status == 404:
                log.info("%s: %s is gone (%s)", name, exc.url, exc.message[:80])
                if name in self.known_missing:  # the route answered, in JSON: it is there
                    self._remember_missing(name, False)
                return True
            if exc.status == 403 or exc.status >= 500:
                # No access, or an outage that outlasted the retries: skip this read, count it as a
                # failure (the sync is a partial success), and leave it unsettled for the next sync.
                text = exc.message[:120] if exc.status == 403 else exc.message[:60]  # a 403 names the scope first
                self.result.errors.append(f"{name}: skipped {exc.url} ({exc.status}: {text})")
                return False
            raise
        finally:
            self.probe = None

    def capabilities(self) -> dict:
        """What was learnt of this server at earlier syncs (its issue sort, filters it ignores, the
        optional streams it lacks)."""
        return dict((self.store.get_state(self.source, "_capabilities", "") or {}).get("extra") or {})

    def remember(self, capabilities: dict) -> None:
        """Keep what was learnt of this server; committed with the batch in hand, at once."""
        self.buffer.state("state", "_capabilities", "", watermark=None, cursor=None, params=None, extra=capabilities)
        self.buffer.flush()

    def _remember_missing(self, name: str, missing: bool) -> None:
        """Keep across syncs which optional streams the server lacks (see optional)."""
        caps = self.capabilities()
        streams = set(caps.get("missing_streams") or [])
        caps["missing_streams"] = sorted(streams | {name} if missing else streams - {name})
        self.remember(caps)
        if not missing:
            self.known_missing.discard(name)

    # -- the server's clock --------------------------------------------------------------------

    def server_now(self) -> datetime:
        """Sentry's clock: the Date header, less what it is seen to run ahead of the rate-limit
        Reset, and never before the newest time the server's data showed. A proxy in front of
        Sentry sets Date from its own clock: behind, it made windows that end before they start;
        ahead, it stored stat buckets for hours still to come."""
        now = self.client.sentry_now() or time.time()
        now = datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)
        return max(now, self.data_floor) if self.data_floor else now

    def raise_floor(self, seen: datetime | None) -> None:
        if seen is not None and (self.data_floor is None or seen > self.data_floor):
            self.data_floor = seen

    # -- stop and wait -------------------------------------------------------------------------

    def check_stop(self) -> None:
        if self.stop.is_set() or self.abort.is_set():
            raise Interrupted.stopped()

    def while_waiting(self) -> None:
        """While this thread waits on the network it still owes readers the file, and a stop asked
        for should not wait out a Retry-After of a minute."""
        self.store.maybe_release()
        if self.stop.is_set():
            raise Interrupted.stopped()


def route_missing(exc: ApiError) -> bool:
    """A route this server does not serve: 405/501, or a 404/500 answered with a page rather than
    Sentry's JSON (GlitchTip answers unknown paths with Django's HTML error page), or a 200 web
    page. A 200 of broken JSON is not: that is a server answering garbage, a stream that failed."""
    if exc.status in (405, 501):
        return True
    if exc.status in (404, 500, 200):
        return not exc.json_body
    return False


def _hits(page: Page) -> int | None:
    """The walk's total as the server counted it (`X-Hits`), or None: absent, or capped at
    `X-Max-Hits` (Sentry and GlitchTip count up to 1000), which is a floor, not a total."""
    headers = page.headers if page.headers is not None else {}
    hits, cap = headers.get("X-Hits"), headers.get("X-Max-Hits")
    if not hits or not hits.isdigit():
        return None
    return None if cap and cap.isdigit() and int(hits) >= int(cap) else int(hits)
