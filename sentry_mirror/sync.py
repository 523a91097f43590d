"""One sync of one source (a Sentry server and organization) into the store.

Guarantees, and how they are kept:
- Nothing lost or doubled: pages are written in batches (`WriteBuffer`), each batch in one
  transaction together with the cursors and watermarks that cover it, and rows are upserted by
  primary key, so a sync killed at any instant resumes from the last committed batch and
  re-reading a page changes nothing.
- Incremental: issues are asked for with `lastSeen:>` the high-water mark minus an overlap (the
  boundary is re-read and de-duplicated); events are walked only for issues whose `count` or
  `lastSeen` moved since their events were last walked. Status changes that move no watermark
  (an issue resolved with no new event) are caught by re-reading the known issues in batches of
  100 ids with `group=`.
- Exact time: windows are computed on the server's clock (its `Date` header), not ours.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

from . import endpoints as ep
from . import redact
from .client import IDLE_STEP, Page, SentryClient
from .rawpage import RawPage
from .spool import PageSpool, spool_directory
from .errors import ApiError, AuthError, BindingError, ConfigError, Interrupted, MirrorError, NotFoundError, StoreError
from .store import ENTITY_KEYS, PRUNE_KEYS, Store, utcnow

log = logging.getLogger(__name__)

RETENTION = timedelta(days=90)
GROUP_BATCH = 100
PROJECT_WALKS = 2  # project event walks at once
MASS_DELETION_MIN = 10  # issues gone in one sync below which no share is questioned (see _mark_gone)
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

    def add(self, entity: str, n: int) -> None:
        self.rows[entity] = self.rows.get(entity, 0) + n


@dataclass
class EventWalk:
    """One issue's event walk: what marks it done, where it starts, and what it has seen."""
    issue_id: str
    seen_as: dict[str, str]  # the issue's count and lastSeen when the walk was planned
    watermark: datetime | None
    sample: int | None
    cursor: str | None = None  # a committed cursor of an interrupted walk
    saved_params: dict | None = None
    newest: datetime | None = None
    project: str = ""  # its project's slug, for progress lines
    recent: bool = False  # first seen within retention: Sentry should still serve all its events
    listed_at: datetime | None = None  # when the issue (and so its count) was stored, on our clock

    def __post_init__(self) -> None:
        self.newest = self.watermark


@dataclass
class ProjectWalk:
    """One project's event walk: its window (`params`), a committed cursor to resume at, and the
    newest event seen (the watermark it leaves)."""
    project_id: str
    slug: str
    params: dict
    cursor: str | None
    newest: datetime | None
    failure: BaseException | None = None


class _Skipped(Exception):
    """A project walk not tried: this server does not serve the route."""


class WriteBuffer:
    """Pages waiting to be written, with the cursor and watermark updates that cover them.

    A flush writes all of it in one transaction: rows never commit without the state that covers
    them, nor state without its rows. Batching pages (many issues have a few events each) cuts
    the per-statement cost; a kill loses at most the unflushed pages, which are fetched again.
    """

    def __init__(self, store: Store, source: str, *, max_rows: int = 500, max_page_rows: int = 1000,
                 max_bytes: int = 8 << 20, max_seconds: float = 2.0,
                 on_written: Callable[[str, int], None] | None = None):
        self.store, self.source = store, source
        self.on_written = on_written  # told how many objects of raw pages were new or changed
        # A batch of 1,000 full events (about 5 MB of JSON) is where DuckDB's per-statement cost is
        # spread thin; the store parses it in slices that fit its memory limit.
        self.max_rows, self.max_page_rows, self.max_bytes = max_rows, max_page_rows, max_bytes
        self.max_seconds = max_seconds
        self.rows: dict[str, list[tuple[Any, dict | None]]] = {}
        self.pages: dict[str, list[tuple[str, dict | None]]] = {}  # raw pages (Store.upsert_pages)
        self._page_rows = self._page_bytes = 0
        self.states: list[tuple[str, str, str, dict]] = []  # (kind, stream, scope, fields)
        self.prunes: list[tuple[str, dict | None, set[str]]] = []  # (entity, context, keys to keep)
        self.updates: list[tuple[str, dict]] = []  # (sql/updates file, its parameters), after the rows
        self.observed_at: datetime | None = None
        self._since = 0.0
        self.written: dict[str, int] = {}

    def add(self, entity: str, items: list, context: dict | None = None, observed_at: datetime | None = None) -> None:
        self._start_clock()
        self.rows.setdefault(entity, []).extend((item, context) for item in items)
        self.observed_at = observed_at or self.observed_at

    def add_page(self, entity: str, page: RawPage, context: dict | None = None) -> None:
        if not page.count:
            return
        self._start_clock()
        for text in page.texts():
            self.pages.setdefault(entity, []).append((text, context))
            self._page_bytes += len(text)
        self._page_rows += page.count

    def _start_clock(self) -> None:
        """The batch's age counts from what entered an empty buffer first."""
        if not self.rows and not self.states and not self.pages:
            self._since = time.monotonic()

    def state(self, kind: str, stream: str, scope: str, **fields: Any) -> None:
        self._start_clock()
        self.states.append((kind, stream, scope, fields))

    def prune(self, entity: str, context: dict | None, keep: set[str]) -> None:
        self.prunes.append((entity, context, keep))

    def update(self, name: str, **params: Any) -> None:
        """Run `sql/updates/<name>.sql` in the batch's transaction (with `source` given)."""
        self.updates.append((name, params))

    def maybe_flush(self) -> None:
        """Flush a full or old batch; and when a reader waits, flush now and let go of the file."""
        pending = sum(len(v) for v in self.rows.values())
        if pending >= self.max_rows or self._page_rows >= self.max_page_rows or self._page_bytes >= self.max_bytes or \
                (self.states and time.monotonic() - self._since >= self.max_seconds):
            self.flush()
        elif self.store.readers_waiting():
            self.flush()  # its commit lets go of the file
            self.store.maybe_release()  # in case there was nothing to commit

    def flush(self) -> None:
        if not self.rows and not self.states and not self.prunes and not self.pages and not self.updates:
            return
        while True:
            try:
                written = self._write()
                break
            except StoreError as exc:
                # Rolled back whole; the same batch again, parsed in smaller slices.
                if not exc.out_of_memory or not self.store.narrow_slices():
                    raise
                log.info("DuckDB ran out of memory on a batch; parsing it in slices of %d characters",
                         self.store.slice_bytes)
        for entity, n, raw in written:
            self.written[entity] = self.written.get(entity, 0) + n
            if raw and self.on_written:
                self.on_written(entity, n)
        self.rows, self.states, self.prunes, self.updates, self.observed_at = {}, [], [], [], None
        self.pages, self._page_rows, self._page_bytes = {}, 0, 0

    def _write(self) -> list[tuple[str, int, bool]]:
        """Everything in hand in one transaction; (entity, objects written, from raw pages)."""
        written = []
        with self.store.transaction():
            for entity, pairs in self.rows.items():
                n = self.store.upsert(entity, [p[0] for p in pairs], source=self.source,
                                      contexts=[p[1] for p in pairs], observed_at=self.observed_at)
                written.append((entity, n, False))
            for entity, pages in self.pages.items():
                n = self.store.upsert_pages(entity, pages, source=self.source, observed_at=self.observed_at)
                written.append((entity, n, True))
            for entity, context, keep in self.prunes:
                self.store.prune(entity, source=self.source, context=context, keep=keep)
            for name, params in self.updates:
                self.store.run_statements("updates", name, source=self.source, **params)
            self.store.apply_states(self.source, self.states)
        return written


class Syncer:
    def __init__(self, store: Store, client: SentryClient, org: str, *, source: str | None = None,
                 options: SyncOptions | None = None, stop: threading.Event | None = None,
                 progress: Callable[[str], None] | None = None, observer: Any = None):
        self.store = store
        self.client = client
        self.org = org
        self.source = source or org
        self.options = options or SyncOptions()
        self.stop = stop or threading.Event()
        self.progress = progress or (lambda message: None)
        # Told of every page (`page(label, items, hits)`) and of expected totals (`expect(label, n)`):
        # the terminal progress display; None when nobody watches.
        self.observer = observer
        self.result = SyncResult(self.source)
        self._configured_url = client.base_url  # before any move to the organization's region
        # Raw pages (events) count what was new or changed: re-reading the overlap adds nothing.
        self.buffer = WriteBuffer(store, self.source, on_written=self.result.add)
        self._abort = threading.Event()
        self._missing: set[str] = set()  # optional streams this server does not serve
        self._known_missing: set[str] | None = None  # optional streams lacking at the last sync (optional)
        self._probe = False  # the next request of an optional stream probes its route (optional)
        self._route: dict[str, int] = {}  # endpoint name -> index of the path that works here
        # The newest time the server's own data showed in this sync (an issue's lastSeen, an event's
        # dateCreated): Sentry's clock is at least there, whatever a proxy's Date header says (see
        # _server_now). Not the store's: a server restored from a backup is behind what was stored.
        self._data_floor: datetime | None = None
        self._gone: list[str] = []  # known issues the server no longer lists, this sync (see _mark_gone)
        self._counted: dict[str, set] = {}  # entity -> keys of the objects counted in this sync's rows

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> SyncResult:
        started = time.monotonic()
        run_id = self.store.start_run(self.source, self.options.full)
        self.store.create_views()  # so that reports work from the first committed page of a first sync
        status, error = "failed", None
        # While this thread waits on the network it still owes readers the file, and a stop asked
        # for should not wait out a Retry-After of a minute.
        self.client.on_idle(self._while_waiting)
        self.client.stop_when(lambda: self.stop.is_set() or self._abort.is_set())  # the fetchers' waits too
        try:
            self._stream("organization", self.sync_organization, fatal=True)
            self._stream("projects", self.sync_list, ep.PROJECTS)
            for endpoint in ep.RELEASES:
                self._stream(endpoint.name, self.sync_list, endpoint)
            for endpoint in ep.ORG_LISTS:
                self._stream(endpoint.name, self.optional, endpoint.name, self.sync_list, endpoint)
            self._stream("deploys", self.sync_deploys)
            seen: set[str] = set()
            self._stream("issues", lambda: seen.update(self.sync_issues()))
            self._stream("issue_status", self.refresh_known_issues, seen)
            self._stream("events", self.sync_events)
            self._stream("project_stats", self.sync_project_stats)
            self._stream("org_stats", self.optional, "org_stats", self.sync_org_stats)
            self._stream("project_details", self.sync_project_details)
            self._check_clock()
            self.buffer.flush()
            self.store.create_views()
            status = "partial" if self.result.errors else "ok"
            error = "; ".join(self.result.errors) or None
        except Interrupted:
            self.buffer.flush()  # keep the pages already fetched; the next sync resumes after them
            status = "interrupted"
            raise
        except MirrorError as exc:
            error = str(exc)
            raise
        finally:
            self.client.on_idle(None)
            self.client.stop_when(None)
            self.result.status = status
            self.result.requests = self.client.stats.requests
            self.result.retries = self.client.stats.retries
            self.result.rate_limited = self.client.stats.rate_limited
            self.result.seconds = time.monotonic() - started
            try:
                if status != "interrupted":  # a stop should be quick; the next sync merges
                    self.store.merge_if_due()  # after the run's last row, below
                self.store.finish_run(run_id, status, requests=self.result.requests, retries=self.result.retries,
                                      rows=self.result.rows, error=redact.scrub(error) if error else None,
                                      rate_limited=self.result.rate_limited, seconds=self.result.seconds,
                                      streams=self.result.streams)
            except MirrorError as exc:  # never hide the error that ended the sync
                log.warning("could not record the end of this sync: %s", exc)
            try:
                self.store.release()
            except MirrorError as exc:
                if status not in ("ok", "partial"):  # an error is on its way out: that one is the news
                    log.warning("could not let go of the store: %s", exc)
                else:
                    raise
        return self.result

    # -- streams -----------------------------------------------------------------------------

    def _stream(self, name: str, step: Callable, *args: Any, fatal: bool = False) -> None:
        """Run one stream and keep its figures. A stream that fails after its retries (an outage, a
        server answering garbage) is recorded and the next one runs: the pages it had fetched are
        stored with their cursors, so nothing is lost and the next sync resumes it. So does a 403
        (the token lacks this read's scope: GlitchTip's releases need `project:releases`). A refused
        token (401), a store problem, an interruption, or a failed `fatal` stream end the sync."""
        stats, rows_before, errors_before = self.client.stats, dict(self.result.rows), len(self.result.errors)
        before = (stats.requests, stats.retries, stats.rate_limited)
        started = time.monotonic()
        error = None
        self.client.share_budget()  # one outage budget for the whole stream
        try:
            step(*args)
        except (Interrupted, StoreError, ConfigError):
            raise
        except MirrorError as exc:
            if fatal or (isinstance(exc, AuthError) and exc.status != 403):
                raise
            self.buffer.flush()
            error = redact.scrub(str(exc))
            self.result.errors.append(f"{name}: {error}")
            log.warning("%s failed; the other streams go on: %s", name, error)
        finally:
            if error is None and len(self.result.errors) > errors_before:  # reads skipped by `optional`
                error = "; ".join(self.result.errors[errors_before:])[:500]
            self.result.streams[name] = {
                "rows": {k: n - rows_before.get(k, 0) for k, n in self.result.rows.items() if n != rows_before.get(k, 0)},
                "requests": stats.requests - before[0], "retries": stats.retries - before[1],
                "rate_limited": stats.rate_limited - before[2], "seconds": round(time.monotonic() - started, 3),
                "error": error,
            }

    def sync_organization(self) -> None:
        try:
            org, _ = self.client.get(ep.ORGANIZATION.path.format(org=self.org))
        except NotFoundError as exc:
            if not exc.json_body:  # Sentry says 404 in JSON; a web server that is not Sentry does not
                raise ApiError(0, f"{_where(self.client.base_url)} does not look like a Sentry API: its organization "
                                  f"route answered 404 with a web page, where Sentry answers JSON",
                               hint="check --url: the address of your Sentry server, e.g. https://sentry.example.com",
                               json_body=False) from None
            raise NotFoundError(404, f"organization '{self.org}' not found at {self.client.base_url}",
                                hint="check --org (the slug in your Sentry URL) and --url") from None
        if not isinstance(org, dict) or "slug" not in org:
            raise ApiError(200, "the organization endpoint did not answer with an organization",
                           self.client.base_url, hint="is --url a Sentry server?")
        binding = self._check_binding(str(org.get("id") or ""), org.get("slug"))
        with self.store.transaction():
            self.result.add("organizations", self.store.upsert("organizations", [org], source=self.source))
            self.store.set_state(self.source, "_binding", "", extra=binding)
        region = (org.get("links") or {}).get("regionUrl")
        if region and self.client.use_region(region):
            self.progress(f"organization lives on {region}; reading from there")

    def _check_binding(self, org_id: str, slug: str | None) -> dict:
        """A source is bound to its server and organization id at its first sync. Another server or
        organization under a known source name (the same slug elsewhere) would have marked the
        stored issues deleted and mixed two organizations' rows: refused before anything is
        written. A server that moved keeps its organization id: `--rebind` accepts its new URL."""
        url = _where(self._configured_url)
        bound = (self.store.get_state(self.source, "_binding", "") or {}).get("extra") or {}
        known_id = bound.get("org_id") or next(iter(r[0] for r in self.store.con.execute(
            "SELECT id FROM organizations WHERE source = ?", [self.source]).fetchall()), None)  # a store from before
        if known_id and org_id and known_id != org_id:
            raise BindingError(
                f"source '{self.source}' mirrors organization id {known_id}"
                f"{' at ' + bound['url'] if bound.get('url') else ''}, but {url} answers '{slug}' with id {org_id}",
                hint="check --url and --org, or sync that organization into another store (--db) or source")
        if bound.get("url") and bound["url"] != url and not self.options.rebind:
            raise BindingError(f"source '{self.source}' was synced from {bound['url']}, not {url} "
                              f"(the same organization id {org_id})",
                              hint="if the server moved to this address, sync once with --rebind")
        return {"url": url, "org_id": org_id or known_id}

    def optional(self, name: str, step: Callable, *args: Any, **kwargs: Any) -> bool:
        """Run a read a Sentry-compatible server may not serve, or whose object may be gone.

        A missing route (an HTML 404/500, 405, 501: GlitchTip lacks some) skips the stream for the
        rest of this sync, noted once. A JSON 404 means this project, release or tag key is gone:
        only this read is skipped. A 403 skips it too, noted. True when the read is settled.
        """
        if name in self._missing:
            return False
        # The first request of a stream probes its route. A stream the server lacked at the last
        # sync: a missing route's HTML 500 is not retried (GlitchTip's unknown paths: six retries
        # cost 45 s a sync). Any other: retried twice, not six times (a GlitchTip first sync spent
        # 22 s on each of deploys and stats); a proxy's 500 that outlasts that skips the stream for
        # this sync only, said so in the notes: the next sync asks again (and one answer in JSON
        # forgets it was missing); snapshots and stats lose nothing meanwhile.
        if self._known_missing is None:
            self._known_missing = set(self._capabilities().get("missing_streams") or [])
        self._probe = True if name in self._known_missing else PROBE_RETRIES
        try:
            step(*args, **kwargs)
            if name in self._known_missing:
                self._remember_missing(name, False)
            return True
        except ApiError as exc:
            if exc.status == 401:
                raise
            if _route_missing(exc):
                self.buffer.flush()
                self._missing.add(name)
                if name not in self._known_missing and name != ep.PROJECT_EVENTS.name:  # its walks never probe
                    self._remember_missing(name, True)
                again = "" if name in self._known_missing else "; asked again next sync"
                note = f"{name}: not available from this server ({exc.status or 'no answer'}: {exc.message[:80]}){again}"
                log.info(note)
                self.result.notes.append(note)
                return False
            if exc.status == 404:
                log.info("%s: %s is gone (%s)", name, exc.url, exc.message[:80])
                return True
            if exc.status == 403 or exc.status >= 500:
                # No access, or an outage that outlasted the retries: skip this read, count it as a
                # failure (the sync is a partial success), and leave it unsettled for the next sync.
                text = exc.message[:120] if exc.status == 403 else exc.message[:60]  # a 403 names the scope first
                self.result.errors.append(f"{name}: skipped {exc.url} ({exc.status}: {text})")
                return False
            raise
        finally:
            self._probe = False

    def sync_list(self, endpoint: ep.Endpoint, scope: str = "", *, context: dict | None = None, **path_args: str) -> None:
        """Walk a whole list endpoint, checkpointing the cursor with every page."""
        if not scope:
            self.progress(f"{endpoint.name}…")
        path = endpoint.path.format(org=self.org, **path_args)
        params = dict(endpoint.params)
        if endpoint.snapshot:
            # Walk it whole, then drop what it no longer lists; the prune commits with the walk's end.
            _, key_fields, _ = PRUNE_KEYS[endpoint.entity]
            keep: set[str] = set()
            for page in self._pages(path, params, None, probe=self._probe):
                keep.update(str(k) for k in (next((i.get(f) for f in key_fields if i.get(f) is not None), None)
                                             for i in page.items if isinstance(i, dict)) if k is not None)
                page.next_cursor = None  # no mid-walk checkpoint: a cut walk starts over
                self._save_page(endpoint.name, endpoint.entity, scope, page, params, context=context)
            self.buffer.prune(endpoint.entity, context, keep)
        else:
            for page in self._walk(endpoint.name, scope, path, params):
                self._save_page(endpoint.name, endpoint.entity, scope, page, params, context=context)
        self._finish_walk(endpoint.name, scope, watermark=None)
        if not scope:
            self.buffer.flush()

    def sync_deploys(self) -> None:
        """Deploys of each release whose deployCount moved since its deploys were last read."""
        rows = self.store.con.execute(
            """SELECT r.version, CAST(r.deploy_count AS VARCHAR) FROM releases r
               LEFT JOIN _sync_state s ON s.source = r.source AND s.stream = 'deploys' AND s.scope = r.version
               WHERE r.source = ? AND coalesce(r.deploy_count, 0) > 0
                 AND (s.scope IS NULL OR s.cursor IS NOT NULL OR coalesce(s.extra->>'deploy_count', '') <> CAST(r.deploy_count AS VARCHAR))
               ORDER BY r.date_created DESC NULLS LAST, r.version""", [self.source]).fetchall()
        if rows:
            self.progress(f"deploys of {len(rows)} releases…")
        for version, count in rows:
            self._check_stop()
            if self.optional("deploys", self.sync_list, ep.DEPLOYS, version, context={"release": version},
                             release=quote(version, safe="")):
                self.buffer.state("state", "deploys", version, watermark=None, cursor=None, params=None,
                                  extra={"deploy_count": count})
        self.buffer.flush()

    def sync_project_stats(self) -> None:
        """Stat buckets per project, stat and resolution, from the last stored bucket (re-read: it may
        have been partial) or 90 days back."""
        now = self._server_now()
        # From the last stored bucket; or, where a bucket was stored before it began on our clock (a
        # skewed Date header stored zeros for hours still to come), from the first such bucket; or,
        # where the stored buckets begin later than 90 days back (that first sync's window began
        # late), from 90 days back.
        horizon = now - RETENTION + timedelta(days=1)
        last = {(p, s, r): ts if first <= horizon else None for p, s, r, ts, first in self.store.con.execute(
            "SELECT project_id, stat, resolution, least(max(ts), min(ts) FILTER (WHERE ts > synced_at + "
            "CASE resolution WHEN '1d' THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END)), min(ts) "
            "FROM project_stats WHERE source = ? GROUP BY ALL", [self.source]).fetchall()}
        projects = self.store.con.execute("SELECT id, slug FROM projects WHERE source = ? ORDER BY id",
                                          [self.source]).fetchall()
        self.progress(f"project stats ({len(projects)} projects)…")
        until = now.replace(tzinfo=timezone.utc).timestamp()
        def read(project_id: str, slug: str) -> None:
            for resolution in ep.STAT_RESOLUTIONS:
                for stat in ep.STATS:
                    self._check_stop()
                    step = timedelta(days=1) if resolution == "1d" else timedelta(hours=1)
                    # never a window that ends before it starts (Sentry answers 400)
                    since_dt = min(last.get((project_id, stat, resolution)) or now - RETENTION, now - step)
                    params = {"stat": stat, "resolution": resolution,
                              "since": int(since_dt.replace(tzinfo=timezone.utc).timestamp()), "until": int(until)}
                    points, _ = self.client.get(ep.PROJECT_STATS.path.format(org=self.org, project=slug), params,
                                                probe=self._probe)
                    self._probe = False
                    if not isinstance(points, list):
                        raise ApiError(200, "project stats were not a list", self.client.base_url)
                    points = [p for p in points if not _after(p, until)]  # no bucket from the future
                    context = {"project_id": project_id, "stat": stat, "resolution": resolution}
                    self.buffer.add(ep.PROJECT_STATS.entity, points, context)
                    self.buffer.update("project_stats_future", **context, until=now)  # an earlier skew's
                    self.result.add("project_stats", len(points))

        for project_id, slug in projects:
            self.optional("project_stats", read, project_id, slug)
            self.buffer.maybe_flush()
        self.buffer.flush()

    def sync_org_stats(self) -> None:
        """stats_v2 outcomes by category, from the last stored interval (re-read: it may have been
        partial) or as far back as the interval allows."""
        now = self._server_now()
        caps = self._capabilities()
        self.progress("organization stats…")
        for interval, days in ep.ORG_STAT_INTERVALS:
            self._check_stop()
            step = timedelta(hours=1) if interval == "1h" else timedelta(days=1)
            last = self.store.con.execute("SELECT max(ts) FROM org_stats WHERE source = ? AND interval = ?",
                                          [self.source, interval]).fetchone()[0]
            start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
            if last is not None:
                start = max(start, min(last, now - step))  # never start == end
            params = {**ep.ORG_STATS.params, "interval": interval, "start": _fmt_ts(start), "end": _fmt_ts(now)}
            if caps.get("stats_v2_category"):
                params["category"] = "error"
            try:
                data, _ = self.client.get(ep.ORG_STATS.path.format(org=self.org), params)
            except ApiError as exc:
                if exc.status not in (400, 422) or "category" in params:
                    raise
                caps["stats_v2_category"] = True  # GlitchTip requires a category
                self.store.set_state(self.source, "_capabilities", "", extra=caps)
                params["category"] = "error"
                data, _ = self.client.get(ep.ORG_STATS.path.format(org=self.org), params)
            points = [p for p in _unfold_stats_v2(data, params["field"], params.get("category"))
                      if not (_parse_ts(p["ts"]) and _parse_ts(p["ts"]) > now)]  # no interval from the future
            self.buffer.add(ep.ORG_STATS.entity, points, {"interval": interval})
            self.buffer.update("org_stats_future", interval=interval, until=now)
            self.result.add("org_stats", len(points))
        self.buffer.flush()

    def _tag_values(self, project_id: str, slug: str, key: str) -> None:
        """One tag key's values; Sentry answers a JSON 404 for a key the project has no values of."""
        context = {"project_id": project_id, "key": key}
        try:
            self.sync_list(ep.TAG_VALUES, f"{project_id}:{key}", context=context, project=slug, key=key)
        except NotFoundError as exc:
            if not exc.json_body:
                raise
            self.buffer.prune(ep.TAG_VALUES.entity, context, set())  # none now: drop what was there

    def sync_project_details(self) -> None:
        """Tag values and users of each project whose issues moved (count or lastSeen) since last read."""
        rows = self.store.con.execute(
            """WITH p AS (
                   SELECT p.id, p.slug, coalesce(CAST(sum(i.times_seen) AS VARCHAR), '') || '|' ||
                          coalesce(strftime(max(i.last_seen), '%Y-%m-%dT%H:%M:%S'), '') AS mark
                   FROM projects p LEFT JOIN issues i ON i.source = p.source AND i.project_id = p.id AND i.deleted_at IS NULL
                   WHERE p.source = ? GROUP BY p.id, p.slug)
               SELECT p.id, p.slug, p.mark FROM p
               LEFT JOIN _sync_state s ON s.source = ? AND s.stream = 'project_details' AND s.scope = p.id
               WHERE s.scope IS NULL OR coalesce(s.extra->>'mark', '') <> p.mark
               ORDER BY p.id""", [self.source, self.source]).fetchall()
        if rows:
            self.progress(f"tag values and users of {len(rows)} projects…")
        for project_id, slug, mark in rows:
            settled = True
            for key in ep.TAG_KEYS:
                self._check_stop()
                settled &= self.optional("tag_values", self._tag_values, project_id, slug, key)
            settled &= self.optional("project_users", self.sync_list, ep.PROJECT_USERS, project_id,
                                     context={"project_id": project_id}, project=slug)
            if settled:  # otherwise the next sync tries this project again
                self.buffer.state("state", "project_details", project_id, watermark=None, cursor=None, params=None,
                                  extra={"mark": mark})
        self.buffer.flush()

    def sync_issues(self) -> set[str]:
        """Issues seen since the watermark (all statuses), newest `lastSeen` first.

        Sentry filters on the server (`lastSeen:>`). GlitchTip refuses Sentry's sort name (422) and
        does not know the filter: it is then asked by its own sort name, without the filter, and
        the walk stops early on the known order. What was learnt is kept only once it worked.
        """
        self.progress("issues…")
        name, scope = ep.ISSUES.name, ""
        state = self.store.get_state(self.source, name, scope) or {}
        caps = self._capabilities()
        learnt = dict(caps)
        watermark = None if self.options.full else _parse_ts(state.get("watermark"))
        since = watermark - self.options.overlap if watermark else None
        walk_max = _parse_ts((state.get("extra") or {}).get("walk_max")) if state.get("cursor") else None
        if self.options.full and state.get("cursor"):
            self.store.set_state(self.source, name, scope, watermark=state.get("watermark"))  # --full starts over
        seen: set[str] = set()
        path = ep.ISSUES.path.format(org=self.org)
        while True:
            params = {**ep.ISSUES.params, "sort": learnt.get("issue_sort", "date")}
            if since is not None and learnt.get("last_seen_query", True):
                params["query"] = f"lastSeen:>{since.strftime('%Y-%m-%dT%H:%M:%S')}"
            pages = 0
            try:
                for page in self._walk(name, scope, path, params):
                    pages += 1
                    if learnt != caps:
                        self.store.set_state(self.source, "_capabilities", "", extra=learnt)
                        caps = dict(learnt)
                    oldest = None
                    for issue in page.items:
                        seen.add(str(issue.get("id")))
                        last = _parse_ts(issue.get("lastSeen") or issue.get("last_seen"))
                        if last and (walk_max is None or last > walk_max):
                            walk_max = last
                        oldest = last if oldest is None or (last and last < oldest) else oldest
                    extra = {"walk_max": _fmt_ts(walk_max)} if walk_max else None
                    self._save_page(name, ep.ISSUES.entity, scope, page, params, extra=extra,
                                    observed_at=self._server_now())
                    if since is not None and oldest is not None and oldest < since:
                        break  # sorted by lastSeen, newest first: the rest is older still
                break
            except ApiError as exc:
                if pages or not _adapt_issue_query(learnt, params, exc):
                    raise
                log.info("server refused the issue query (%s); asking again with %s", exc.message[:80], learnt)
                self.store.set_state(self.source, name, scope, watermark=state.get("watermark"))  # drop a saved cursor
        self._raise_floor(walk_max)
        new_mark = max(filter(None, [_parse_ts(state.get("watermark")), walk_max]), default=None)
        self._finish_walk(name, scope, watermark=_fmt_ts(new_mark) if new_mark else None)
        self.buffer.flush()
        return seen

    def _remember_missing(self, name: str, missing: bool) -> None:
        """Keep across syncs which optional streams the server lacks (see optional)."""
        caps = self._capabilities()
        streams = set(caps.get("missing_streams") or [])
        caps["missing_streams"] = sorted(streams | {name} if missing else streams - {name})
        self.store.set_state(self.source, "_capabilities", "", extra=caps)
        if not missing:
            self._known_missing.discard(name)

    def _capabilities(self) -> dict:
        return dict((self.store.get_state(self.source, "_capabilities", "") or {}).get("extra") or {})

    def refresh_known_issues(self, seen: set[str]) -> None:
        """Re-read stored issues the walk did not return: catches status changes with no new event,
        and issues deleted in Sentry (asked for by id, not returned)."""
        now = self._server_now()
        known = [r[0] for r in self.store.con.execute(
            "SELECT id FROM issues WHERE source = ? AND deleted_at IS NULL AND (last_seen IS NULL OR last_seen >= ?) "
            "ORDER BY id", [self.source, now - RETENTION]).fetchall()]
        stale = [i for i in known if i not in seen]
        if not stale:
            return
        stale, share_ends = self._refresh_share(stale)
        self.progress(f"issue status ({len(stale)} known)…")
        self._gone = []
        path = ep.ISSUES.path.format(org=self.org)
        # Near the edge of retention an issue may drop out of the window rather than be deleted.
        safe_horizon = now - RETENTION + timedelta(days=1)
        caps = self._capabilities()
        if caps.get("group_filter", True):
            for start in range(0, len(stale), GROUP_BATCH):
                self._check_stop()
                batch = stale[start:start + GROUP_BATCH]
                params = {**ep.ISSUES.params, "sort": caps.get("issue_sort", "date"), "group": batch}
                items: list[dict] = []
                for page in self.client.paginate(path, self._with_page_size(params)):
                    items.extend(page.items)
                    if {str(i.get("id")) for i in page.items} - set(batch):
                        break  # answered with issues it was not asked for: it ignores group=
                returned = {str(i.get("id")) for i in items}
                if returned - set(batch):
                    caps["group_filter"] = False
                    self.store.set_state(self.source, "_capabilities", "", extra=caps)
                    log.info("server ignores group=; refreshing known issues with one full walk")
                    break
                self._store_refresh(items, [i for i in batch if i not in returned], now, safe_horizon)
        if not caps.get("group_filter", True):
            params = {**ep.ISSUES.params, "sort": caps.get("issue_sort", "date")}
            returned: set[str] = set()
            for page in self.client.paginate(path, self._with_page_size(params)):
                self._check_stop()
                returned.update(str(i.get("id")) for i in page.items)
                self._store_refresh(page.items, [], now, safe_horizon)
            # the walk was whole: what it did not list is gone
            self._store_refresh([], [i for i in stale if i not in returned], now, safe_horizon)
        self._mark_gone(now)
        if share_ends:  # the next sync reads the next share; not before this one is settled
            self.buffer.state("state", "issue_status", "", watermark=None, cursor=None, params=None,
                              extra={"after": share_ends})

    def _refresh_share(self, stale: list[str]) -> tuple[list[str], str | None]:
        """This sync's share of the known issues to re-read, so that a sync with nothing new costs
        the same few requests per project however many issues the store holds: at most
        `refresh_per_project` per project, taken in id order from where the last sync stopped and
        wrapping round; with the id it ends at. With fewer stale issues than that, all of them,
        every sync."""
        per_project = self.options.refresh_per_project
        if not per_project:
            return stale, None
        projects = self.store.con.execute("SELECT count(*) FROM projects WHERE source = ?", [self.source]).fetchone()[0]
        budget = per_project * max(1, projects)
        if len(stale) <= budget:
            return stale, None
        after = ((self.store.get_state(self.source, "issue_status", "") or {}).get("extra") or {}).get("after")
        start = bisect.bisect_right(stale, after) if after else 0
        share = (stale[start:] + stale[:start])[:budget]
        log.info("re-reading %d of %d known issues this sync (refresh_per_project = %d)", len(share), len(stale),
                 per_project)
        return sorted(share), share[-1]

    def _store_refresh(self, items: list[dict], missing: list[str], now: datetime, safe_horizon: datetime) -> None:
        with self.store.transaction():
            self.result.add("issues", self.store.upsert("issues", items, source=self.source, observed_at=now))
        if missing:
            self._gone.extend(r[0] for r in self.store.con.execute(
                "SELECT id FROM issues WHERE source = ? AND id IN (SELECT unnest(?::VARCHAR[])) AND last_seen >= ?",
                [self.source, missing, safe_horizon]).fetchall())

    def _mark_gone(self, now: datetime) -> None:
        """Mark the issues the server no longer knows deleted; unless they are so many that a fault
        is likelier than deletions (a server answering for another organization, a search gone
        wrong): then nothing is marked and the stream fails, saying so, unless --full asked."""
        gone, self._gone = self._gone, []
        if not gone:
            return
        live = self.store.con.execute("SELECT count(*) FROM issues WHERE source = ? AND deleted_at IS NULL",
                                      [self.source]).fetchone()[0]
        # The issues of a project the server no longer lists went with it: that explains them.
        listed = {key for _, key in self._counted.get("projects", ())}
        if (self.result.streams.get("projects") or {}).get("error"):
            listed = set()  # a walk cut short lists too few: nothing is explained by it
        unexplained = len(gone) if not listed else self.store.con.execute(
            "SELECT count(*) FROM issues WHERE source = ? AND id IN (SELECT unnest(?::VARCHAR[])) "
            "AND list_contains(?::VARCHAR[], project_id)", [self.source, gone, sorted(listed)]).fetchone()[0]
        if unexplained > MASS_DELETION_MIN and unexplained > self.options.max_deleted_share * live \
                and not self.options.full:
            raise ApiError(0, f"{unexplained:,} of {live:,} stored issues are no longer listed by the server; "
                                f"not marking them deleted",
                           hint="if they were deleted in Sentry, run 'sentry-mirror sync --full' to accept it")
        with self.store.transaction():
            self.store.run_statements("updates", "issues_deleted", source=self.source, ids=gone, observed_at=now)
        self.result.add("issues_deleted", len(gone))

    def sync_events(self) -> None:
        """Read the events of every issue whose event count or last-seen time moved.

        Projects whose policy is `all` are read whole, one walk per project from its newest stored
        event (the fewest requests the data allows); an issue of such a project is then settled
        from what the store holds, and walked on its own only when the store holds fewer of its
        events than Sentry counts while all of them are within retention (events that arrived
        late, or a server that limits the project list to recent days). Projects with the `sample`
        policy, and servers without the project list, are read issue by issue: up to
        `concurrency` issues at once; only this thread writes to the store.
        """
        horizon = self._server_now() - RETENTION
        rows = self.store.con.execute(
            """
            WITH i AS (
                SELECT i.id, p.id AS project_id, p.slug, coalesce(CAST(i.times_seen AS VARCHAR), '') AS times_seen,
                       coalesce(strftime(i.last_seen, '%Y-%m-%dT%H:%M:%S.%fZ'), '') AS last_seen, i.last_seen AS ts,
                       i.first_seen, i.synced_at
                FROM issues i LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
                WHERE i.source = ? AND i.deleted_at IS NULL AND (i.last_seen IS NULL OR i.last_seen >= ?))
            SELECT i.id, i.slug, i.times_seen, i.last_seen, s.watermark, s.cursor, s.params, i.project_id,
                   coalesce(i.first_seen >= ?, false), i.synced_at
            FROM i LEFT JOIN _sync_state s ON s.source = ? AND s.stream = 'events' AND s.scope = i.id
            WHERE ? OR s.scope IS NULL OR s.cursor IS NOT NULL
               OR coalesce(s.extra->>'times_seen', '') <> i.times_seen
               OR coalesce(s.extra->>'last_seen', '') <> i.last_seen
            ORDER BY i.ts DESC NULLS LAST, i.id
            """, [self.source, horizon, horizon, self.source, self.options.full]).fetchall()
        jobs, by_project = [], {}
        for issue_id, slug, times_seen, last_seen, watermark, cursor, saved, project_id, recent, listed_at in rows:
            policy = self.options.project_events.get(slug or "", self.options.events)
            if policy == "none":
                continue
            resume = cursor and saved and not self.options.full  # --full starts every walk over
            walk = EventWalk(issue_id, {"times_seen": times_seen, "last_seen": last_seen}, _parse_ts(watermark),
                             self.options.events_sample if policy == "sample" else None,
                             cursor if resume else None, json.loads(saved) if resume else None,
                             project=slug or "?", recent=recent, listed_at=listed_at)
            jobs.append(walk)
            if policy == "all" and project_id is not None and not resume:
                by_project.setdefault((project_id, slug), []).append(walk)
        if self.observer:
            expected: dict[str, int] = {}
            for walk in jobs:  # a first walk reads the issue's events; later ones fewer (unknown)
                n = int(walk.seen_as["times_seen"] or 0) if walk.watermark is None else 0
                expected[walk.project] = expected.get(walk.project, 0) + min(n, walk.sample or n)
            for project, n in sorted(expected.items()):
                self.observer.expect(f"events {project}", n or None)

        # Whole projects first; their issues are then settled from the store, or left to walk.
        projects = [(pid, slug) for pid, slug in self.store.con.execute(
            "SELECT id, slug FROM projects WHERE source = ? ORDER BY slug", [self.source]).fetchall()
            if self.options.project_events.get(slug, self.options.events) == "all"]
        if projects:
            self.progress(f"events of {len(projects)} projects…")
        walks = [self._plan_project_walk(project_id, slug) for project_id, slug in projects]
        starts: dict[str, datetime | None] = {}  # the earliest window start each project was read from
        while walks:
            for walk in walks:  # None: the whole 90 days, the earliest of all
                start = _parse_ts(walk.params.get("start"))
                if walk.project_id not in starts:
                    starts[walk.project_id] = start
                elif starts[walk.project_id] is not None:
                    starts[walk.project_id] = None if start is None else min(start, starts[walk.project_id])
            resumed = []
            for walk, failure in self._project_walks(walks):
                if failure is not None:
                    self._project_walk_failed(walk, failure)
                    by_project.pop((walk.project_id, walk.slug), None)  # not read whole: its issues are walked
                elif walk.cursor is not None:
                    resumed.append(walk)
            # A resumed walk kept the window of the sync it was cut from; what came since is read
            # now, from its newest event, before issues are settled against the store.
            if resumed:
                self.buffer.flush()  # their end is committed: the new plan starts from it
            walks = [w for w in (self._plan_project_walk(r.project_id, r.slug) for r in resumed) if w.cursor is None]
        settled = self._settle_from_store([w for walks in by_project.values() for w in walks],
                                          {slug: starts.get(pid) for pid, slug in by_project})
        jobs = [walk for walk in jobs if walk.issue_id not in settled]

        self._followups: list[EventWalk] = []
        issue_walk = (self._event_pages, self._store_event_page, self._finish_event_walk)
        for n, (walk, message) in enumerate(self._run_walks(jobs, *issue_walk), 1):
            if message == "gone":
                log.info("issue %s is gone from Sentry; its stored events are kept", walk.issue_id)
                self.result.notes.append(f"issue {walk.issue_id} not found while reading its events")
                self._finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=_fmt_ts(walk.watermark)
                                  if walk.watermark else None)
            if n == 1 or n % 50 == 0 or n == len(jobs):
                self.progress(f"events: issue {n}/{len(jobs)}…")
        # A resumed walk asked for its old window; what came since is read now, from its newest event.
        for walk, message in self._run_walks(self._followups, *issue_walk):
            if message == "gone":
                self._finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=_fmt_ts(walk.watermark)
                                  if walk.watermark else None)
        self.buffer.flush()

    def _project_walks(self, walks: list["ProjectWalk"]) -> Iterator[tuple["ProjectWalk", BaseException | None]]:
        """Project walks, up to PROJECT_WALKS at once (Sentry lets a token list a project's events
        at most two at a time per organization); each yielded with the error that stopped it."""
        for walk, _ in self._run_walks(walks, self._project_pages, self._store_project_page,
                                       self._finish_project_walk, workers=PROJECT_WALKS):
            yield walk, walk.failure

    def _plan_project_walk(self, project_id: str, slug: str) -> "ProjectWalk":
        """One project's events since its newest stored one (less an overlap), or 90 days back.

        The window's end is fixed when the walk starts, so offsets stay put while events arrive;
        an interrupted walk resumes at its committed cursor with the same window. The watermark is
        the newest dateCreated seen, whatever order the server lists events in.
        """
        state = self.store.get_state(self.source, ep.PROJECT_EVENTS.name, project_id) or {}
        watermark = None if self.options.full else _parse_ts(state.get("watermark"))
        if state.get("cursor") and state.get("params") is not None and not self.options.full:
            newest = _parse_ts((state.get("extra") or {}).get("newest")) or watermark
            return ProjectWalk(project_id, slug, dict(state["params"]), state["cursor"], newest)
        params = dict(ep.PROJECT_EVENTS.params)
        if watermark is not None:
            params["start"] = _fmt_ts(watermark - self.options.overlap)
            params["end"] = _fmt_ts(max(self._server_now(), watermark) + timedelta(minutes=5))
        else:
            params["statsPeriod"] = "90d"
        return ProjectWalk(project_id, slug, params, None, watermark)

    def _project_pages(self, walk: "ProjectWalk") -> Iterator[tuple[Page, dict]]:
        """The walk's pages; an error that need not end the sync ends only this walk (kept in
        `walk.failure`; the pages before it are stored with their cursor)."""
        if ep.PROJECT_EVENTS.name in self._missing:
            walk.failure = _Skipped()
            return
        try:
            for page in self._route_pages(ep.PROJECT_EVENTS, walk.params, walk.cursor, None, raw=True,
                                          project=walk.slug):
                yield page, walk.params
        except (Interrupted, AuthError, StoreError, ConfigError):
            raise
        except MirrorError as exc:
            walk.failure = exc

    def _store_project_page(self, walk: "ProjectWalk", page: Page, params: dict) -> None:
        if page.raw.newest and (walk.newest is None or page.raw.newest > walk.newest):
            walk.newest = page.raw.newest
            self._raise_floor(walk.newest)
        self._save_page(ep.PROJECT_EVENTS.name, ep.PROJECT_EVENTS.entity, walk.project_id, page, params,
                        label=f"events {walk.slug}", extra={"newest": _fmt_ts(walk.newest)} if walk.newest else None)

    def _finish_project_walk(self, walk: "ProjectWalk") -> None:
        if walk.failure is None:  # a walk cut short keeps its cursor and its old watermark
            self._finish_walk(ep.PROJECT_EVENTS.name, walk.project_id,
                              watermark=_fmt_ts(walk.newest) if walk.newest else None)

    def _project_walk_failed(self, walk: "ProjectWalk", exc: BaseException) -> None:
        """A project walk that could not finish: its issues are walked one by one instead. Raises
        what must end the sync; otherwise notes it as `optional` would."""
        if isinstance(exc, _Skipped):
            return
        def fail() -> None:
            raise exc
        self.optional(ep.PROJECT_EVENTS.name, fail)

    def _settle_from_store(self, walks: list["EventWalk"], starts: dict[str, datetime | None]) -> set[str]:
        """Issues of projects read whole whose events the store now holds: marked read as of the
        count Sentry gave, with no request. An issue is left to walk on its own when the store
        holds fewer of its events than Sentry counts.

        Sentry's `count` covers the list's 90-day window, so the store's events are counted in that
        window too (up to the lastSeen the count came with): the mirror keeps older events, and
        counting those hid events a project walk had skipped. A walk skips some when an issue is
        deleted or merged while it pages (the events after it move up past the offset), and
        `starts[project]`, the window the walk read, is where they can be: a long-lived issue is
        read from there, one first seen within retention whole."""
        if not walks:
            return set()
        self.buffer.flush()  # the project walks' last pages count too
        # Each count covers the 90 days before the list answered with it: from when the issue was
        # stored (a moment after, so never more than Sentry counted), on the server's clock. The
        # time of the settling itself came minutes later at scale, and events that had crossed the
        # 90-day edge meanwhile made issues look short.
        skew = self._server_now() - utcnow()
        horizons = [(w.listed_at or utcnow()) + skew - RETENTION for w in walks]
        held = {issue_id: (n, newest) for issue_id, n, newest in self.store.con.execute(
            # lastSeen may come cut to the second, event times with their milliseconds
            "SELECT e.issue_id, count(*) FILTER (WHERE e.date_created >= w.horizon "
            "AND e.date_created < w.last_seen + INTERVAL 1 SECOND), max(e.date_created) "
            "FROM events e JOIN (SELECT unnest(?::VARCHAR[]) AS issue_id, unnest(?::TIMESTAMP[]) AS last_seen, "
            "unnest(?::TIMESTAMP[]) AS horizon) w ON w.issue_id = e.issue_id WHERE e.source = ? GROUP BY e.issue_id",
            [[w.issue_id for w in walks], [_parse_ts(w.seen_as["last_seen"]) for w in walks], horizons,
             self.source]).fetchall()}
        settled = set()
        for walk in walks:
            n, newest = held.get(walk.issue_id, (0, None))
            expected = int(walk.seen_as["times_seen"] or 0)
            if n < expected:
                # read all it has (what is missing may be anywhere in the window), or, for an issue
                # older than retention, what came since its project's walk began
                start = starts.get(walk.project)
                walk.watermark = None if walk.recent or start is None else min(start, walk.watermark or start)
                walk.newest = walk.watermark
                continue
            settled.add(walk.issue_id)
            self._finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=_fmt_ts(newest) if newest else None,
                              extra=walk.seen_as)
        self.buffer.flush()
        if len(settled) < len(walks):
            log.info("%d issues hold fewer events than Sentry counts; reading them one by one",
                     len(walks) - len(settled))
        return settled

    def _run_walks(self, jobs: list, pages: Callable, store: Callable, finish: Callable,
                   workers: int | None = None) -> Iterator[tuple[Any, str]]:
        """Fetch walks on worker threads, store their pages here in order; yield each finished walk
        with "done", or "gone" when its issue is gone (NotFoundError). A walk is read with
        `pages(walk)` (HTTP only: runs on a worker), each page kept with `store(walk, page, params)`
        and a finished walk marked with `finish(walk)`, both on this thread."""
        limit = workers or self.options.concurrency
        workers = max(1, min(limit, len(jobs)))  # the client keeps an endpoint's concurrency limit
        if workers == 1:
            for walk in jobs:
                self._check_stop()
                yield walk, self._consume(walk, pages(walk), store, finish)
            return
        # Pages the writer has not taken yet wait in memory (a few) or, once the server makes us
        # wait, on disk: the fetchers go on while the writer merges or checkpoints, and memory
        # stays flat (see spool.py). Unpaced, the writer is the bound and disk would only cost.
        spool = PageSpool(spool_directory(self.store.path), in_memory=workers * 4, wanted=self.client.paced)
        results: queue.Queue = queue.Queue()  # bounded by the spool
        pending = iter(jobs)

        def fetch(walk) -> None:
            try:
                for page, params in pages(walk):
                    results.put((walk, "page", spool.hold(page, params)))
                results.put((walk, "done", None))
            except BaseException as exc:  # handed to the writing thread, which decides
                results.put((walk, "error", exc))

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="events") as pool:
            running = 0
            for walk in itertools.islice(pending, workers * 2):
                pool.submit(fetch, walk)
                running += 1
            try:
                while running:
                    walk, kind, item = self._next_result(results)
                    if kind == "page":
                        store(walk, *spool.take(item))
                        continue
                    running -= 1
                    if kind == "error":
                        if not isinstance(item, NotFoundError):
                            raise item
                        yield walk, "gone"
                    else:
                        finish(walk)
                        yield walk, "done"
                    self._check_stop()
                    nxt = next(pending, None)
                    if nxt is not None:
                        pool.submit(fetch, nxt)
                        running += 1
            finally:
                if running:
                    self._abort.set()  # workers still fetching give up at their next page
                while running:
                    _, kind, item = self._next_result(results, draining=True)
                    if kind == "page":
                        spool.release(item)  # a fetcher may be waiting for its place
                    running -= kind != "page"
                self._abort.clear()
                spool.close()
                if spool.spooled:
                    log.debug("%d pages waited on disk for the writer", spool.spooled)

    def _while_waiting(self) -> None:
        self.store.maybe_release()
        if self.stop.is_set():
            raise Interrupted.stopped()

    def _next_result(self, results: queue.Queue, draining: bool = False) -> tuple:
        """The next thing the fetchers hand over; while there is none, readers may have the file
        (and a stop is heard, unless the walks are being wound down already)."""
        while True:
            try:
                return results.get(timeout=IDLE_STEP)
            except queue.Empty:
                if draining:
                    self.store.maybe_release()
                else:
                    self._while_waiting()

    @staticmethod
    def _consume(walk, pages: Iterator[tuple[Page, dict]], store: Callable, finish: Callable) -> str:
        try:
            for item in pages:
                store(walk, *item)
        except NotFoundError:
            return "gone"
        finish(walk)
        return "done"

    def _event_pages(self, walk: "EventWalk") -> Iterator[tuple[Page, dict]]:
        """The pages of one issue's event walk (HTTP only: safe on a worker thread).

        With `sample`, an issue's first walk reads only its latest `sample` events (newest first);
        later walks read every event since then.
        """
        first_sample = walk.sample is not None and (walk.watermark is None or self.options.full)
        params = dict(ep.ISSUE_EVENTS.params)
        if walk.saved_params is not None:
            params = dict(walk.saved_params)  # resume with exactly the query that produced the cursor
        elif walk.watermark is not None and not self.options.full:
            params["start"] = _fmt_ts(walk.watermark - self.options.overlap)
            params["end"] = _fmt_ts(max(self._server_now(), walk.watermark) + timedelta(minutes=5))
        else:
            params["statsPeriod"] = "90d"
        page_size = min(walk.sample, self.client.page_size) if first_sample else None
        sampled = 0
        for page in self._route_pages(ep.ISSUE_EVENTS, params, walk.cursor, page_size, raw=True, issue=walk.issue_id):
            sampled += page.count
            if first_sample:
                page.next_cursor = None  # the sample is the newest events: no checkpoint within it
            yield page, params
            if first_sample and sampled >= walk.sample:
                return  # a short or empty page that says more follow does not end the sample

    def _store_event_page(self, walk: "EventWalk", page: Page, params: dict) -> None:
        if page.raw.newest and (walk.newest is None or page.raw.newest > walk.newest):
            walk.newest = page.raw.newest
        self._save_page(ep.ISSUE_EVENTS.name, ep.ISSUE_EVENTS.entity, walk.issue_id, page, params,
                        context={"issue_id": walk.issue_id}, label=f"events {walk.project}")

    def _finish_event_walk(self, walk: "EventWalk") -> None:
        """Mark the issue's events read as of `seen_as`, unless the walk was a resumed one: its window
        was fixed before the interruption, so a fresh walk from its newest event follows first."""
        resumed = walk.cursor is not None
        self._finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=_fmt_ts(walk.newest) if walk.newest else None,
                          extra=None if resumed else walk.seen_as)
        if resumed:
            self._followups.append(EventWalk(walk.issue_id, walk.seen_as, walk.newest, None))

    # -- the generic checkpointed walk ---------------------------------------------------------

    def _walk(self, stream: str, scope: str, path: str, params: dict) -> Iterator[Page]:
        """Pages of one walk, resuming from a committed cursor when the same walk was cut short."""
        state = self.store.get_state(self.source, stream, scope) or {}
        cursor = None
        if state.get("cursor") and state.get("params") is not None:
            params.clear()
            params.update(state["params"])  # resume with exactly the query that produced the cursor
            cursor = state["cursor"]
            log.info("resuming %s %s at cursor %s", stream, scope, cursor)
        yield from self._pages(path, params, cursor, probe=self._probe)

    def _route_pages(self, endpoint: ep.Endpoint, params: dict, cursor: str | None, page_size: int | None,
                     raw: bool = False, **scope_args: str) -> Iterator[Page]:
        """Pages from the first of an endpoint's paths this server serves (remembered once found)."""
        paths = endpoint.paths(org=self.org, **scope_args)
        start = self._route.get(endpoint.name, 0)
        for index in range(start, len(paths)):
            probing = endpoint.name not in self._route and index + 1 < len(paths)
            yielded = False
            try:
                for page in self._pages(paths[index], params, cursor, probe=probing,
                                        page_size=page_size, raw=raw):
                    yielded = True
                    self._route[endpoint.name] = index
                    yield page
                return
            except ApiError as exc:
                if yielded or not probing or not _route_missing(exc):
                    raise
                log.info("%s not served at %s (%s); trying %s", endpoint.name, paths[index], exc.status, paths[index + 1])

    def _pages(self, path: str, params: dict, cursor: str | None, probe: bool | int = False,
               page_size: int | None = None, raw: bool = False) -> Iterator[Page]:
        for page in self.client.paginate(path, self._with_page_size(params, page_size), cursor=cursor,
                                         probe=probe, raw=raw):
            self._check_stop()
            yield page

    def _save_page(self, stream: str, entity: str, scope: str, page: Page, params: dict,
                   extra: dict | None = None, context: dict | None = None, observed_at: datetime | None = None,
                   label: str | None = None) -> None:
        """Rows of a page and the cursor after it; they reach the store in the same transaction."""
        if self.observer:
            hits = page.headers.get("X-Hits") if page.headers is not None else None
            self.observer.page(label or stream, page.count, int(hits) if hits and hits.isdigit() else None)
        if page.raw is not None:
            self.buffer.add_page(entity, page.raw, context)  # counted in the result when written
        else:
            self.buffer.add(entity, page.items, context, observed_at)
            self.result.add(entity, self._count_new(entity, page.items, context))
        self.buffer.state("cursor", stream, scope, cursor=page.next_cursor,
                          params=dict(params) if page.next_cursor else None, extra=extra)
        self.buffer.maybe_flush()

    def _count_new(self, entity: str, items: list, context: dict | None) -> int:
        """How many of these objects this sync has not counted yet: a row is counted once however
        often it is listed (GlitchTip answers `status=archived` with the open releases again); one
        without its key is not stored (store._dedupe), so not counted."""
        seen = self._counted.setdefault(entity, set())
        before = len(seen)
        where = json.dumps(context, sort_keys=True) if context else None
        for item in items:
            if isinstance(item, dict):
                key = next((item[f] for f in ENTITY_KEYS.get(entity, ()) if item.get(f) not in (None, "")), None)
                if key is not None:
                    seen.add((where, str(key)))
        return len(seen) - before

    def _finish_walk(self, stream: str, scope: str, *, watermark: str | None, extra: dict | None = None) -> None:
        self.buffer.state("state", stream, scope, watermark=watermark, cursor=None, params=None, extra=extra)
        self.buffer.maybe_flush()

    # -- helpers -----------------------------------------------------------------------------

    def _with_page_size(self, params: dict, size: int | None = None) -> dict:
        # Sentry reads `per_page` (issues read `limit`); GlitchTip reads `limit`. Both are harmless.
        size = size or self.client.page_size
        return {**params, "per_page": size, "limit": size}

    def _server_now(self) -> datetime:
        """Sentry's clock: the Date header, less what it is seen to run ahead of the rate-limit
        Reset, and never before the newest time the server's data showed. A proxy in front of
        Sentry sets Date from its own clock: behind, it made windows that end before they start;
        ahead, it stored stat buckets for hours still to come."""
        now = self.client.sentry_now() or time.time()
        now = datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)
        return max(now, self._data_floor) if self._data_floor else now

    def _raise_floor(self, seen: datetime | None) -> None:
        if seen is not None and (self._data_floor is None or seen > self._data_floor):
            self._data_floor = seen

    def _check_clock(self) -> None:
        """Say when the Date header and Sentry's clock disagree by more than a minute (kept for
        `status` too); the windows above followed Sentry's."""
        if self.client.server_now is None:
            return
        date = datetime.fromtimestamp(self.client.server_now, timezone.utc).replace(tzinfo=None)
        apart = (date - self._server_now()).total_seconds()
        note = None
        if abs(apart) > 60:
            note = (f"the server's Date header is {_span(abs(apart))} {'ahead of' if apart > 0 else 'behind'} "
                    f"Sentry's own clock (a proxy's clock?); windows followed Sentry's")
            self.result.notes.append(note)
            log.info(note)  # the summary says it
        known = (self.store.get_state(self.source, "_clock", "") or {}).get("extra") or {}
        if note or known:
            self.buffer.state("state", "_clock", "", watermark=None, cursor=None, params=None,
                              extra={"note": note, "seconds": round(apart)} if note else None)

    def _check_stop(self) -> None:
        if self.stop.is_set() or self._abort.is_set():
            raise Interrupted.stopped()


def _adapt_issue_query(learnt: dict, params: dict, exc: ApiError) -> bool:
    """Learn from a refused first page of the issues search; False when it was not about that.

    GlitchTip answers 422 to `sort=date` (it names the sort `-last_seen`) and treats `lastSeen:>`
    as a tag filter, so both go together. A 400 that names the search or lastSeen drops the filter.
    """
    text = exc.message.lower()
    if params.get("sort") == "date" and (exc.status == 422 or "sort" in text):
        learnt.update(issue_sort="-last_seen", last_seen_query=False)
        return True
    if params.get("query") and exc.status in (400, 422) and any(w in text for w in ("lastseen", "search", "query")):
        learnt["last_seen_query"] = False
        return True
    return False


def _unfold_stats_v2(data: Any, field: str, category: str | None) -> list[dict]:
    """stats_v2's `groups[].series[field]` aligned with `intervals`, as one point per interval and group."""
    if not isinstance(data, dict) or not isinstance(data.get("intervals"), list):
        raise ApiError(200, "stats_v2 answered an unexpected shape", "stats_v2")
    points = []
    for group in data.get("groups") or []:
        by = group.get("by") or {}
        series = (group.get("series") or {}).get(field) or []
        cat, outcome = by.get("category", category or "all"), by.get("outcome", "all")
        for ts, quantity in zip(data["intervals"], series):
            points.append({"key": f"{ts}|{cat}|{outcome}", "ts": ts, "category": cat, "outcome": outcome,
                           "quantity": quantity})
    return points


def _route_missing(exc: ApiError) -> bool:
    """A route this server does not serve: 405/501, or a 404/500 answered with a page rather than
    Sentry's JSON (GlitchTip answers unknown paths with Django's HTML error page), or a 200 web
    page. A 200 of broken JSON is not: that is a server answering garbage, a stream that failed."""
    if exc.status in (405, 501):
        return True
    if exc.status in (404, 500, 200):
        return not exc.json_body
    return False


def _parse_ts(value: Any) -> datetime | None:
    """Sentry's ISO-8601 strings (with `Z`, an offset, or none) as naive UTC datetimes."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _where(base_url: str) -> str:
    """A base URL fit to store and show: scheme, host, port and path; never credentials."""
    parts = urlsplit(base_url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port and parts.port != default else "")
    return f"{parts.scheme}://{host}{parts.path}"


def _after(point: Any, until: float) -> bool:
    """A stat point `[unix_seconds, count]` later than `until`."""
    return isinstance(point, list) and bool(point) and isinstance(point[0], (int, float)) and point[0] > until


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{int(seconds)}s"


def _fmt_ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None
