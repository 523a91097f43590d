"""One sync of one source (a Sentry server and organization) into the store.

Guarantees, and how they are kept:
- Nothing lost or doubled: every page is stored in one transaction together with the cursor that
  follows it, and rows are upserted by primary key, so a sync killed at any instant resumes from
  the last committed page and re-reading a page changes nothing.
- Incremental: issues are asked for with `lastSeen:>` the high-water mark minus an overlap (the
  boundary is re-read and de-duplicated); events are walked only for issues whose `count` or
  `lastSeen` moved since their events were last walked. Status changes that move no watermark
  (an issue resolved with no new event) are caught by re-reading the known issues in batches of
  100 ids with `group=`.
- Exact time: windows are computed on the server's clock (its `Date` header), not ours.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from . import endpoints as ep
from .client import Page, SentryClient
from .errors import ApiError, Interrupted, MirrorError, NotFoundError
from .store import Store

log = logging.getLogger(__name__)

RETENTION = timedelta(days=90)
GROUP_BATCH = 100


@dataclass
class SyncOptions:
    full: bool = False
    overlap: timedelta = timedelta(minutes=10)  # re-read this much before a watermark (ingest lag)
    events: str = "all"  # all | sample (latest `events_sample` per issue, then every new one) | none
    events_sample: int = 10
    project_events: dict[str, str] = field(default_factory=dict)  # project slug -> policy


@dataclass
class SyncResult:
    source: str
    status: str = "ok"
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, entity: str, n: int) -> None:
        self.rows[entity] = self.rows.get(entity, 0) + n


class WriteBuffer:
    """Pages waiting to be written, with the cursor and watermark updates that cover them.

    A flush writes all of it in one transaction: rows never commit without the state that covers
    them, nor state without its rows. Batching pages (many issues have a few events each) cuts
    the per-statement cost; a kill loses at most the unflushed pages, which are fetched again.
    """

    def __init__(self, store: Store, source: str, *, max_rows: int = 2000, max_seconds: float = 2.0):
        self.store, self.source = store, source
        self.max_rows, self.max_seconds = max_rows, max_seconds
        self.rows: dict[str, list[tuple[dict, str | None]]] = {}
        self.states: list[tuple[str, str, str, dict]] = []  # (kind, stream, scope, fields)
        self.observed_at: datetime | None = None
        self._since = 0.0
        self.written: dict[str, int] = {}

    def add(self, entity: str, items: list[dict], issue_id: str | None = None, observed_at: datetime | None = None) -> None:
        if not self.rows and not self.states:
            self._since = time.monotonic()
        self.rows.setdefault(entity, []).extend((item, issue_id) for item in items)
        self.observed_at = observed_at or self.observed_at

    def state(self, kind: str, stream: str, scope: str, **fields: Any) -> None:
        if not self.rows and not self.states:
            self._since = time.monotonic()
        self.states.append((kind, stream, scope, fields))

    def maybe_flush(self) -> None:
        pending = sum(len(v) for v in self.rows.values())
        if pending >= self.max_rows or (self.states and time.monotonic() - self._since >= self.max_seconds):
            self.flush()

    def flush(self) -> None:
        if not self.rows and not self.states:
            return
        with self.store.transaction():
            for entity, pairs in self.rows.items():
                n = self.store.upsert(entity, [p[0] for p in pairs], source=self.source,
                                      issue_ids=[p[1] for p in pairs], observed_at=self.observed_at)
                self.written[entity] = self.written.get(entity, 0) + n
            self.store.apply_states(self.source, self.states)
        self.rows, self.states, self.observed_at = {}, [], None


class Syncer:
    def __init__(self, store: Store, client: SentryClient, org: str, *, source: str | None = None,
                 options: SyncOptions | None = None, stop: threading.Event | None = None,
                 progress: Callable[[str], None] | None = None):
        self.store = store
        self.client = client
        self.org = org
        self.source = source or org
        self.options = options or SyncOptions()
        self.stop = stop or threading.Event()
        self.progress = progress or (lambda message: None)
        self.result = SyncResult(self.source)
        self.buffer = WriteBuffer(store, self.source)
        self._route: dict[str, int] = {}  # endpoint name -> index of the path that works here

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> SyncResult:
        started = time.monotonic()
        run_id = self.store.start_run(self.source, self.options.full)
        status, error = "failed", None
        try:
            self.sync_organization()
            self.sync_list(ep.PROJECTS)
            for endpoint in ep.RELEASES:
                self.sync_list(endpoint)
            seen = self.sync_issues()
            self.refresh_known_issues(seen)
            self.sync_events()
            self.store.create_views()
            status = "ok"
        except Interrupted:
            self.buffer.flush()  # keep the pages already fetched; the next sync resumes after them
            status = "interrupted"
            raise
        except MirrorError as exc:
            error = str(exc)
            raise
        finally:
            self.result.status = status
            self.result.requests = self.client.stats.requests
            self.result.retries = self.client.stats.retries
            self.result.seconds = time.monotonic() - started
            self.store.finish_run(run_id, status, requests=self.result.requests, retries=self.result.retries,
                                  rows=self.result.rows, error=error)
            self.store.release()
        return self.result

    # -- streams -----------------------------------------------------------------------------

    def sync_organization(self) -> None:
        try:
            org, _ = self.client.get(ep.ORGANIZATION.path.format(org=self.org))
        except NotFoundError:
            raise NotFoundError(404, f"organization '{self.org}' not found at {self.client.base_url}",
                                hint="check --org (the slug in your Sentry URL) and --url") from None
        if not isinstance(org, dict) or "slug" not in org:
            raise ApiError(200, "the organization endpoint did not answer with an organization",
                           self.client.base_url, hint="is --url a Sentry server?")
        self.result.add("organizations", self.store.upsert("organizations", [org], source=self.source))
        region = (org.get("links") or {}).get("regionUrl")
        if region and self.client.use_region(region):
            self.progress(f"organization lives on {region}; reading from there")

    def sync_list(self, endpoint: ep.Endpoint, scope: str = "") -> None:
        """Walk a whole list endpoint, checkpointing the cursor with every page."""
        self.progress(f"{endpoint.name}…")
        path = endpoint.path.format(org=self.org)
        params = dict(endpoint.params)
        for page in self._walk(endpoint.name, scope, path, params):
            self._save_page(endpoint.name, endpoint.entity, scope, page, params)
        self._finish_walk(endpoint.name, scope, watermark=None)
        self.buffer.flush()

    def sync_issues(self) -> set[str]:
        """Issues seen since the watermark (all statuses), newest `lastSeen` first.

        Sentry filters on the server (`lastSeen:>`); a server that rejects the filter or the sort
        name (GlitchTip) is asked again without it, and the walk stops early on the known order.
        """
        self.progress("issues…")
        name, scope = ep.ISSUES.name, ""
        state = self.store.get_state(self.source, name, scope) or {}
        caps = self._capabilities()
        watermark = None if self.options.full else _parse_ts(state.get("watermark"))
        since = watermark - self.options.overlap if watermark else None
        walk_max = _parse_ts((state.get("extra") or {}).get("walk_max")) if state.get("cursor") else None
        seen: set[str] = set()
        path = ep.ISSUES.path.format(org=self.org)
        while True:
            params = {**ep.ISSUES.params, "sort": caps.get("issue_sort", "date")}
            if since is not None and caps.get("last_seen_query", True):
                params["query"] = f"lastSeen:>{since.strftime('%Y-%m-%dT%H:%M:%S')}"
            pages = 0
            try:
                for page in self._walk(name, scope, path, params):
                    pages += 1
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
                if pages or exc.status not in (400, 422) or not self._adapt_issue_query(caps, params):
                    raise
        new_mark = max(filter(None, [_parse_ts(state.get("watermark")), walk_max]), default=None)
        self._finish_walk(name, scope, watermark=_fmt_ts(new_mark) if new_mark else None)
        self.buffer.flush()
        return seen

    def _adapt_issue_query(self, caps: dict, params: dict) -> bool:
        """After a 400/422: drop what the server refused (sort name first, then the filter)."""
        if params.get("sort") == "date":
            caps["issue_sort"] = "-last_seen"  # GlitchTip's name for Sentry's sort=date
        elif params.get("query"):
            caps["last_seen_query"] = False
        else:
            return False
        self.store.set_state(self.source, "_capabilities", "", extra=caps)
        log.info("server refused the issue query; adapting: %s", caps)
        return True

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
        self.progress(f"issue status ({len(stale)} known)…")
        path = ep.ISSUES.path.format(org=self.org)
        # Near the edge of retention an issue may drop out of the window rather than be deleted.
        safe_horizon = now - RETENTION + timedelta(days=1)
        for start in range(0, len(stale), GROUP_BATCH):
            self._check_stop()
            batch = stale[start:start + GROUP_BATCH]
            params = {**ep.ISSUES.params, "sort": self._capabilities().get("issue_sort", "date"), "group": batch}
            items: list[dict] = []
            for page in self.client.paginate(path, self._with_page_size(params)):
                items.extend(page.items)
            returned = {str(i.get("id")) for i in items}
            missing = [i for i in batch if i not in returned]
            with self.store.transaction():
                self.result.add("issues", self.store.upsert("issues", items, source=self.source, observed_at=now))
                if missing:
                    gone = [r[0] for r in self.store.con.execute(
                        "SELECT id FROM issues WHERE source = ? AND id IN (SELECT unnest(?::VARCHAR[])) AND last_seen >= ?",
                        [self.source, missing, safe_horizon]).fetchall()]
                    if gone:
                        self.store.run_statements("updates", "issues_deleted", source=self.source, ids=gone, observed_at=now)
                        self.result.add("issues_deleted", len(gone))

    def sync_events(self) -> None:
        """Walk the events of every issue whose event count or last-seen time moved."""
        horizon = self._server_now() - RETENTION
        rows = self.store.con.execute(
            """
            WITH i AS (
                SELECT i.id, p.slug, coalesce(CAST(i.times_seen AS VARCHAR), '') AS times_seen,
                       coalesce(strftime(i.last_seen, '%Y-%m-%dT%H:%M:%S.%fZ'), '') AS last_seen, i.last_seen AS ts
                FROM issues i LEFT JOIN projects p ON p.source = i.source AND p.id = i.project_id
                WHERE i.source = ? AND i.deleted_at IS NULL AND (i.last_seen IS NULL OR i.last_seen >= ?))
            SELECT i.id, i.slug, i.times_seen, i.last_seen, s.watermark
            FROM i LEFT JOIN _sync_state s ON s.source = ? AND s.stream = 'events' AND s.scope = i.id
            WHERE ? OR s.scope IS NULL OR s.cursor IS NOT NULL
               OR coalesce(s.extra->>'times_seen', '') <> i.times_seen
               OR coalesce(s.extra->>'last_seen', '') <> i.last_seen
            ORDER BY i.ts DESC NULLS LAST, i.id
            """, [self.source, horizon, self.source, self.options.full]).fetchall()
        todo = [(r[0], self.options.project_events.get(r[1] or "", self.options.events), r[2:]) for r in rows]
        todo = [t for t in todo if t[1] != "none"]
        for n, (issue_id, policy, (times_seen, last_seen, watermark)) in enumerate(todo, 1):
            self._check_stop()
            if n == 1 or n % 50 == 0 or n == len(todo):
                self.progress(f"events: issue {n}/{len(todo)}…")
            self._sync_issue_events(issue_id, {"times_seen": times_seen, "last_seen": last_seen},
                                    _parse_ts(watermark), sample=self.options.events_sample if policy == "sample" else None)
            self.buffer.maybe_flush()
        self.buffer.flush()

    def _sync_issue_events(self, issue_id: str, seen_as: dict[str, str], watermark: datetime | None,
                           sample: int | None = None) -> None:
        """Walk one issue's events; `seen_as` (the issue's count and lastSeen now) marks it done.

        With `sample`, an issue's first walk reads only its latest `sample` events (newest first);
        later walks read every event since then.
        """
        name = ep.ISSUE_EVENTS.name
        params = dict(ep.ISSUE_EVENTS.params)
        first_sample = sample is not None and (watermark is None or self.options.full)
        if watermark is not None and not self.options.full:
            params["start"] = _fmt_ts(watermark - self.options.overlap)
            params["end"] = _fmt_ts(self._server_now() + timedelta(minutes=5))
        else:
            params["statsPeriod"] = "90d"
        newest = watermark
        try:
            for page in self._walk(name, issue_id, None, params, endpoint=ep.ISSUE_EVENTS, scope_args={"issue": issue_id},
                                   page_size=min(sample, self.client.page_size) if first_sample else None):
                for event in page.items:
                    created = _parse_ts(event.get("dateCreated") or event.get("date_created"))
                    if created and (newest is None or created > newest):
                        newest = created
                if first_sample:
                    page.next_cursor = None  # the sample is the newest page; the walk ends here
                self._save_page(name, ep.ISSUE_EVENTS.entity, issue_id, page, params, issue_id=issue_id)
                self.buffer.maybe_flush()
                if first_sample:
                    break
        except NotFoundError:
            log.info("issue %s is gone from Sentry; its stored events are kept", issue_id)
            self.result.notes.append(f"issue {issue_id} not found while reading its events")
            return
        self._finish_walk(name, issue_id, watermark=_fmt_ts(newest) if newest else None, extra=seen_as)

    # -- the generic checkpointed walk ---------------------------------------------------------

    def _walk(self, stream: str, scope: str, path: str | None, params: dict, *,
              endpoint: ep.Endpoint | None = None, scope_args: dict | None = None,
              page_size: int | None = None) -> Iterator[Page]:
        """Pages of one walk, resuming from a committed cursor when the same walk was cut short."""
        state = self.store.get_state(self.source, stream, scope) or {}
        cursor = None
        if state.get("cursor") and state.get("params") is not None:
            params.clear()
            params.update(state["params"])  # resume with exactly the query that produced the cursor
            cursor = state["cursor"]
            log.info("resuming %s %s at cursor %s", stream, scope, cursor)
        if endpoint is None:
            yield from self._pages(path, params, cursor, page_size=page_size)
            return
        paths = endpoint.paths(org=self.org, **(scope_args or {}))
        start = self._route.get(endpoint.name, 0)
        for index in range(start, len(paths)):
            probing = endpoint.name not in self._route and index + 1 < len(paths)
            yielded = False
            try:
                for page in self._pages(paths[index], params, cursor, first_page_retries=1 if probing else None,
                                        page_size=page_size):
                    yielded = True
                    self._route[endpoint.name] = index
                    yield page
                return
            except ApiError as exc:
                if yielded or not probing or not _route_missing(exc):
                    raise
                log.info("%s not served at %s (%s); trying %s", endpoint.name, paths[index], exc.status, paths[index + 1])

    def _pages(self, path: str, params: dict, cursor: str | None, first_page_retries: int | None = None,
               page_size: int | None = None) -> Iterator[Page]:
        for page in self.client.paginate(path, self._with_page_size(params, page_size), cursor=cursor,
                                         first_page_retries=first_page_retries):
            self._check_stop()
            yield page

    def _save_page(self, stream: str, entity: str, scope: str, page: Page, params: dict,
                   extra: dict | None = None, issue_id: str | None = None, observed_at: datetime | None = None) -> None:
        """Rows of a page and the cursor after it; they reach the store in the same transaction."""
        self.buffer.add(entity, page.items, issue_id, observed_at)
        self.buffer.state("cursor", stream, scope, cursor=page.next_cursor,
                          params=dict(params) if page.next_cursor else None, extra=extra)
        self.result.add(entity, len(page.items))

    def _finish_walk(self, stream: str, scope: str, *, watermark: str | None, extra: dict | None = None) -> None:
        self.buffer.state("state", stream, scope, watermark=watermark, cursor=None, params=None, extra=extra)

    # -- helpers -----------------------------------------------------------------------------

    def _with_page_size(self, params: dict, size: int | None = None) -> dict:
        # Sentry reads `per_page` (issues read `limit`); GlitchTip reads `limit`. Both are harmless.
        size = size or self.client.page_size
        return {**params, "per_page": size, "limit": size}

    def _server_now(self) -> datetime:
        now = self.client.server_now or time.time()
        return datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("sync interrupted; the last page was stored and the next sync resumes from it")


def _route_missing(exc: ApiError) -> bool:
    """A missing route: 404, 405, or a server (GlitchTip) answering 500/HTML for unknown paths."""
    return exc.status in (404, 405, 500, 501) or (exc.status == 200 and "not JSON" in exc.message)


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


def _fmt_ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None
