"""One sync of one source (a Sentry server and organization) into the store: the streams, in
order, each on the walker's gear (walker.py), events by the event walks (event_walks.py).

Guarantees, and how they are kept:
- Nothing lost or doubled: pages are written in batches (`WriteBuffer`, buffer.py), each batch in
  one transaction together with the cursors and watermarks that cover it, and rows are upserted by
  primary key, so a sync killed at any instant resumes from the last committed batch and
  re-reading a page changes nothing.
- Incremental: issues are asked for with `lastSeen:>` the high-water mark minus an overlap (the
  boundary is re-read and de-duplicated); events are walked only for issues whose `count` or
  `lastSeen` moved since their events were last walked. Status changes that move no watermark
  (an issue resolved with no new event) are caught by re-reading the known issues in batches of
  100 ids with `group=`.
- Exact time: windows are computed on Sentry's clock (walker.server_now), not ours.
- Bound: a source keeps the server and organization it mirrors; another is refused.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import quote

from .. import redact
from ..errors import ApiError, AuthError, BindingError, ConfigError, Interrupted, MirrorError, NotFoundError, NothingToMirror, StoreError
from ..fetching import endpoints as ep
from ..fetching.client import Page, SentryClient
from ..fetching.urls import display_url
from ..storage.store import ISSUE_HOOKS, PRUNE_KEYS, Store, utcnow
from ..timestamps import fmt_ts, parse_ts
from . import project_details as details
from . import usage
from .event_walks import EventWalks
from .issue_details import IssueDetails
from .walker import PROBE_RETRIES, RETENTION, SyncOptions, SyncResult, Walker, route_missing

log = logging.getLogger(__name__)

GROUP_BATCH = 100
MASS_DELETION_MIN = 10  # issues gone in one sync below which no share is questioned (see _mark_gone)

__all__ = ["Syncer", "SyncOptions", "SyncResult"]


HOOKS_FRESH = timedelta(days=1)  # issue webhooks this recent count as arriving (see _refresh_share)

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
        self.result = SyncResult(self.source)
        self.walker = Walker(store, client, org, self.source, self.options, self.stop, self.result, self.progress,
                             observer)
        self.buffer = self.walker.buffer  # every write of the sync goes through it
        self.events = EventWalks(self.walker)
        self.issue_details = IssueDetails(self.walker)
        self._configured_url = client.base_url  # before any move to the organization's region
        self._gone: list[str] = []  # known issues the server no longer lists, this sync (see _mark_gone)
        self._stats_by_project = False  # this sync read every project's counters in one stats_v2 request
        self._oldest_listed: datetime | None = None  # the open release list's walk reached back to here
        self._vanished: set[str] = set()  # open releases it should have listed and did not: archived
        self._listed_slugs: set[str] = set()  # every project the project list named, this sync
        self._forced: set[str] = set()  # slowly changing streams this sync found it must read now

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> SyncResult:
        started = time.monotonic()
        run_id = self.store.start_run(self.source, self.options.full)
        self.store.create_views()  # so that reports work from the first committed page of a first sync
        status, error = "failed", None
        # While this thread waits on the network it still owes readers the file, and a stop asked
        # for should not wait out a Retry-After of a minute.
        self.client.on_idle(self.walker.while_waiting)
        self.client.stop_when(lambda: self.stop.is_set() or self.walker.abort.is_set())  # the fetchers' waits too
        try:
            self._stream("organization", self.sync_organization, fatal=True)
            self._stream("projects", self._cadenced, "projects", self.sync_list, ep.PROJECTS)
            if self.options.projects_anywhere:
                self._some_project_here()
            for endpoint in ep.RELEASES:
                self._stream(endpoint.name, self.sync_releases, endpoint)
            for endpoint in ep.ORG_LISTS:
                self._stream(endpoint.name, self._cadenced, endpoint.name, self.walker.optional, endpoint.name,
                             self.sync_list, endpoint)
            self._stream("deploys", self.sync_deploys)
            seen: set[str] = set()
            self._stream("issues", lambda: seen.update(self.sync_issues()))
            self._stream("issue_status", self.refresh_known_issues, seen)
            self._stream("events", self.events.run)
            self._stream("issue_details", self.issue_details.run)
            self._stream("project_stats", self.sync_stats)
            if not self._stats_by_project:  # otherwise that answer (or its failure) held the organization's too
                self._stream("org_stats", self.walker.optional, "org_stats", self.sync_org_stats)
            self._stream("project_details", self._cadenced, "project_details", self.sync_project_details)
            self._check_clock()
            self.buffer.flush()
            self.store.create_views()
            status = "partial" if self.result.errors else "ok"
            error = "; ".join(self.result.errors) or None
        except Interrupted:
            self.buffer.flush()  # keep the pages already fetched; the next sync resumes after them
            status = "interrupted"
            raise
        except NothingToMirror as exc:  # the organization was read, and holds none of what is asked
            self.buffer.flush()
            status, error = "skipped", str(exc)
            self.result.notes.append(str(exc))
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
        except (Interrupted, StoreError, ConfigError, NothingToMirror):
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

    def _due(self, name: str) -> bool:
        """Whether a slowly changing stream is read this sync: its cadence has passed since it was
        last read whole (or it never was), or `--full` or `--refresh NAME` asked for it."""
        if self.options.full or name in self.options.refresh or name in self._forced:
            return True
        at = parse_ts(((self.store.get_state(self.source, "_cadence", name) or {}).get("extra") or {}).get("at"))
        return at is None or self.walker.server_now() - at >= self.options.cadence_of(name)

    def _cadenced(self, name: str, step: Callable, *args: Any) -> None:
        """Run a slowly changing stream when it is due; when it ran without error, note when."""
        if not self._due(name):
            return
        errors = len(self.result.errors)
        started = self.walker.server_now()
        step(*args)
        if len(self.result.errors) == errors and name not in self.walker.missing:
            self._note_read(name, started)

    def _note_read(self, name: str, started: datetime) -> None:
        """When a slowly changing stream was last read whole, with its cadence (`status` shows both)."""
        hours = self.options.cadence_of(name).total_seconds() / 3600
        self.buffer.state("state", "_cadence", name, watermark=None, cursor=None, params=None,
                          extra={"at": fmt_ts(started), "hours": round(hours, 3)})
        self.buffer.flush()

    def _projects_known(self, project_ids: set[str]) -> None:
        """A project the store does not know (named by an issue or a stat) was created since the
        project list was last read: read it now rather than at its cadence."""
        known = {pid for pid, _ in self.store.select("projects", source=self.source)}
        if project_ids - known:
            log.info("%d projects not known yet; reading the project list", len(project_ids - known))
            self._read_projects_now()

    def _read_projects_now(self) -> None:
        """Read the project list now, whatever its cadence, unless this sync already read it."""
        if self._projects_read():
            return
        self._forced.add("projects")
        self._cadenced("projects", self.sync_list, ep.PROJECTS)

    def _projects_read(self) -> bool:
        return bool((self.result.streams.get("projects") or {}).get("requests")) or "projects" in self.walker.counted

    def sync_organization(self) -> None:
        """The organization's detail, at its cadence; between, when the source is bound to this very
        URL and organization id, its region is kept from then. Any other URL, a store without the
        binding, or --rebind reads it now: the binding is checked against what the server answers."""
        bound = (self.store.get_state(self.source, "_binding", "") or {}).get("extra") or {}
        here = bound.get("org_id") and bound.get("url") == display_url(self._configured_url)
        if here and not self.options.rebind and not self._due("organization"):
            if bound.get("region"):
                self.client.use_region(bound["region"])
            return
        self._read_organization()
        # one request, and the sync's first: Sentry's clock is known only from its answer (before
        # it, server_now is this machine's clock, and the cadence would be timed by two clocks)
        self._note_read("organization", self.walker.server_now())

    def _read_organization(self) -> None:
        try:
            org, _ = self.client.get(ep.ORGANIZATION.path.format(org=self.org))
        except NotFoundError as exc:
            if not exc.json_body:  # Sentry says 404 in JSON; a web server that is not Sentry does not
                raise ApiError(0, f"{display_url(self.client.base_url)} does not look like a Sentry API: its organization "
                                  f"route answered 404 with a web page, where Sentry answers JSON",
                               hint="check --url: the address of your Sentry server, e.g. https://sentry.example.com",
                               json_body=False) from None
            raise NotFoundError(404, f"organization '{self.org}' not found at {self.client.base_url}",
                                hint="check --org (the slug in your Sentry URL) and --url") from None
        if not isinstance(org, dict) or "slug" not in org:
            raise ApiError(200, "the organization endpoint did not answer with an organization",
                           self.client.base_url, hint="is --url a Sentry server?")
        binding = self._check_binding(str(org.get("id") or ""), org.get("slug"))
        region = (org.get("links") or {}).get("regionUrl")
        if region:
            binding["region"] = region  # used between reads of the organization
        self.buffer.add("organizations", [org])
        self.result.add("organizations", 1)
        self.buffer.state("state", "_binding", "", watermark=None, cursor=None, params=None, extra=binding)
        self.buffer.flush()
        if region and self.client.use_region(region):
            self.progress(f"organization lives on {region}; reading from there")

    def _check_binding(self, org_id: str, slug: str | None) -> dict:
        """A source is bound to its server and organization id at its first sync. Another server or
        organization under a known source name (the same slug elsewhere) would have marked the
        stored issues deleted and mixed two organizations' rows: refused before anything is
        written. A server that moved keeps its organization id: `--rebind` accepts its new URL."""
        url = display_url(self._configured_url)
        bound = (self.store.get_state(self.source, "_binding", "") or {}).get("extra") or {}
        stored = self.store.select("organization_ids", source=self.source)  # a store from before the binding
        known_id = bound.get("org_id") or (stored[0][0] if stored else None)
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
            for page in self.walker.pages(path, params, None, probe=self.walker.probe):
                page = self._mirrored_only(endpoint, page)
                keep.update(str(k) for k in (next((i.get(f) for f in key_fields if i.get(f) is not None), None)
                                             for i in page.items if isinstance(i, dict)) if k is not None)
                # no mid-walk checkpoint: a cut walk starts over
                self.walker.save_page(endpoint.name, endpoint.entity, scope, page, params, checkpoint=False,
                                      context=context)
            self.buffer.prune(endpoint.entity, context, keep)
        else:
            for page in self.walker.walk(endpoint.name, scope, path, params):
                page = self._mirrored_only(endpoint, page)
                self.walker.save_page(endpoint.name, endpoint.entity, scope, page, params, context=context)
        if endpoint is ep.PROJECTS:
            self._check_projects_named()
        self.walker.finish_walk(endpoint.name, scope, watermark=None)
        if not scope:
            self.buffer.flush()

    def _mirrored_only(self, endpoint: ep.Endpoint, page: Page) -> Page:
        """A page of the project list without the projects the source does not name (noting them all)."""
        if endpoint is not ep.PROJECTS or not self.options.projects:
            return page
        self._listed_slugs.update(str(i.get("slug")) for i in page.items if isinstance(i, dict))
        return replace(page, items=[i for i in page.items if isinstance(i, dict) and self.options.covers(i.get("slug"))])

    def _check_projects_named(self) -> None:
        """A slug the organization does not have is a mistake in the config: one error naming the
        known ones (a project walk resumed mid-way has the earlier pages' in the store)."""
        known = self._listed_slugs | {slug for _, slug in self._mirrored_projects()}
        unknown = [slug for slug in self.options.projects if slug not in known]
        if unknown and self.options.projects_anywhere:  # named for every organization: those it has
            self.result.missing_projects = unknown
            if len(unknown) == len(set(self.options.projects)):
                raise NothingToMirror(f"organization {self.org} has none of the projects {', '.join(unknown)}")
            self.result.notes.append(f"organization {self.org} has no project {', '.join(unknown)}")
        elif unknown:
            raise ConfigError(f"source {self.source}: organization {self.org} has no project {', '.join(unknown)}",
                              hint=f"its projects: {', '.join(sorted(self._listed_slugs)) or '(none listed)'}")

    def _some_project_here(self) -> None:
        """With `org = "*"`, an organization that has none of the projects named is skipped before
        anything else of it is read (the project list is read now if the store knows none)."""
        if not self._mirrored_projects():
            self._read_projects_now()
        if not self._mirrored_projects():
            self.result.missing_projects = list(self.options.projects)
            raise NothingToMirror(f"organization {self.org} has none of the projects "
                                  f"{', '.join(self.options.projects)}")

    def _mirrored_projects(self) -> list[tuple[str, str]]:
        """The stored projects this source mirrors (id, slug): all, or those its `projects` names."""
        return [(pid, slug) for pid, slug in self.store.select("projects", source=self.source)
                if self.options.covers(slug)]

    def _project_filter(self) -> dict:
        """`project=ID` params for the organization's issue list and stats_v2, when the source names
        its projects (each must be known first: a project the store lacks sends for the list now)."""
        if not self.options.projects:
            return {}
        ids = [pid for pid, _ in self._mirrored_projects()]
        if len(ids) < len(set(self.options.projects)):
            self._read_projects_now()
            ids = [pid for pid, _ in self._mirrored_projects()]
        if not ids:  # never the whole organization's instead
            raise ApiError(0, f"none of the projects {', '.join(self.options.projects)} is known yet: the project "
                              f"list could not be read", hint="the next sync tries again")
        return {"project": ids}

    def sync_releases(self, endpoint: ep.Endpoint) -> None:
        """A release list (open or archived), newest first: whole at its cadence; between, until a
        page whose releases are all stored unchanged (new releases come first). Open releases the
        walk should have listed and did not were archived: the archived list is then walked on
        until it has listed them all."""
        if self._due(endpoint.name):
            listed: set[str] = set()
            self._cadenced(endpoint.name, self._walk_releases, endpoint, listed, None)
        else:
            listed = set()
            self._walk_releases(endpoint, listed, self._vanished if endpoint.status == "archived" else set())
        if endpoint.status == "open" and self._oldest_listed is not None:
            self._vanished = {v for (v,) in self.store.select("open_releases_since", source=self.source,
                                                              since=self._oldest_listed)} - listed

    def _walk_releases(self, endpoint: ep.Endpoint, listed: set[str], wanted: set[str] | None) -> None:
        """Walk the list; with `wanted` (not None), stop after an unchanged page once every wanted
        release was listed; without it (the whole walk), never stop early."""
        self.progress(f"{endpoint.name}…")
        path, params = endpoint.path.format(org=self.org), dict(endpoint.params)
        oldest = None
        for page in self.walker.walk(endpoint.name, "", path, params):
            items = [i for i in page.items if isinstance(i, dict) and i.get("version")]
            unchanged = wanted is not None and self._releases_unchanged(items)
            self.walker.save_page(endpoint.name, endpoint.entity, "", page, params)
            listed.update(str(i["version"]) for i in items)
            created = [t for t in (parse_ts(i.get("dateCreated")) for i in items) if t]
            oldest = min(created + ([oldest] if oldest else []), default=oldest)
            if unchanged and not (wanted - listed):
                break
        self._oldest_listed = oldest if endpoint.status == "open" else self._oldest_listed
        self.walker.finish_walk(endpoint.name, "", watermark=None)
        self.buffer.flush()

    def _releases_unchanged(self, items: list[dict]) -> bool:
        """Every release of the page stored, with its status and counters as the page gives them."""
        marks = {r[0]: r[1:] for r in self.store.select("release_marks", source=self.source,
                                                        versions=[str(i["version"]) for i in items])}
        text = lambda v: None if v is None else str(v)  # noqa: E731
        return all(marks.get(str(i["version"])) == (i.get("status"), text(i.get("deployCount")),
                                                      text(i.get("newGroups")), text(i.get("commitCount")),
                                                      parse_ts(i.get("dateReleased")))
                   for i in items)

    def sync_deploys(self) -> None:
        """Deploys of each release whose deployCount moved since its deploys were last read."""
        rows = self.store.select("deploys_to_read", source=self.source)
        if rows:
            self.progress(f"deploys of {len(rows)} releases…")
        for version, count in rows:
            self.walker.check_stop()
            if self.walker.optional("deploys", self.sync_list, ep.DEPLOYS, version, context={"release": version},
                             release=quote(version, safe="")):
                self.buffer.state("state", "deploys", version, watermark=None, cursor=None, params=None,
                                  extra={"deploy_count": count})
        self.buffer.flush()

    def sync_stats(self) -> None:
        """Every project's counters and the organization's in one stats_v2 request (grouped by project,
        outcome and category, hourly; days summed from hours); a server that cannot group by project
        is asked the deprecated per-project route, 8 requests a project (remembered)."""
        caps = self.walker.capabilities()
        if caps.get("stats_v2_by_project", True):
            self._stats_by_project = True  # until it says no: a failure fails both (the same route)
            if self._stats_by_project_v2(caps):
                return
            self._stats_by_project = False
        self.sync_project_stats()

    def _stats_by_project_v2(self, caps: dict) -> bool:
        """One stats_v2 read from the start of the earliest day still to complete; False when the
        server refuses `groupBy=project` or ignores it (then nothing is stored)."""
        now = self.walker.server_now()
        projects = self._mirrored_projects()
        day = lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0)  # noqa: E731
        horizon = day(now - RETENTION) + timedelta(days=1)
        lasts = {(p, r): ts if first <= horizon else None
                 for p, s, r, ts, first in self.store.select("stats_starts", source=self.source) if s == "generated"}
        marks = [lasts.get((pid, r)) for pid, _ in projects for r in ep.STAT_RESOLUTIONS]
        org_last = self.store.select("last_org_stat", source=self.source, interval="1d")[0][0]
        start = min([day(m) if m else horizon for m in marks] + [day(org_last) if org_last else horizon], default=horizon)
        start = max(horizon, min(start, day(now)))
        self.progress(f"stats of {len(projects)} projects…")
        params = {**ep.ORG_STATS.params, "groupBy": ["project", "outcome", "category"], "interval": "1h",
                  "start": fmt_ts(start), "end": fmt_ts(now), **self._project_filter()}
        try:
            data, _ = self.client.get(ep.ORG_STATS.path.format(org=self.org), params, probe=self.walker.probe)
        except ApiError as exc:
            if exc.status not in (400, 404, 422):
                raise
            data = None
        if not usage.grouped_by_project(data):
            log.info("stats_v2 does not group by project here; reading the per-project stats route")
            self.walker.remember({**caps, "stats_v2_by_project": False})
            return False
        starts, series = usage.hourly(data, params["field"], now)
        ids = [pid for pid, _ in projects]
        for (project_id, stat, resolution), points in usage.project_points(starts, series, ids, start).items():
            context = {"project_id": project_id, "stat": stat, "resolution": resolution}
            self.buffer.add(ep.PROJECT_STATS.entity, points, context)
            self.buffer.update("project_stats_future", **context, until=now)
            self.result.add("project_stats", len(points))
        hour_from = day(now - usage.ORG_HOURS) + timedelta(days=1)
        for interval, points in usage.org_points(starts, series, start, hour_from).items():
            self.buffer.add(ep.ORG_STATS.entity, points, {"interval": interval})
            self.buffer.update("org_stats_future", interval=interval, until=now)
            self.result.add("org_stats", len(points))
        self.buffer.flush()
        return True

    def sync_project_stats(self) -> None:
        """Stat buckets per project, stat and resolution, from the last stored bucket (re-read: it may
        have been partial) or 90 days back."""
        now = self.walker.server_now()
        # From the last stored bucket; or, where a bucket was stored before it began on our clock (a
        # skewed Date header stored zeros for hours still to come), from the first such bucket; or,
        # where the stored buckets begin later than 90 days back (that first sync's window began
        # late), from 90 days back.
        horizon = now - RETENTION + timedelta(days=1)
        last = {(p, s, r): ts if first <= horizon else None
                for p, s, r, ts, first in self.store.select("stats_starts", source=self.source)}
        projects = self._mirrored_projects()
        self.progress(f"project stats ({len(projects)} projects)…")
        until = now.replace(tzinfo=timezone.utc).timestamp()
        def read(project_id: str, slug: str) -> None:
            for resolution in ep.STAT_RESOLUTIONS:
                for stat in ep.STATS:
                    self.walker.check_stop()
                    step = timedelta(days=1) if resolution == "1d" else timedelta(hours=1)
                    # never a window that ends before it starts (Sentry answers 400)
                    since_dt = min(last.get((project_id, stat, resolution)) or now - RETENTION, now - step)
                    params = {"stat": stat, "resolution": resolution,
                              "since": int(since_dt.replace(tzinfo=timezone.utc).timestamp()), "until": int(until)}
                    points, _ = self.client.get(ep.PROJECT_STATS.path.format(org=self.org, project=slug), params,
                                                probe=self.walker.probe)
                    self.walker.probe = None  # the route answered: the rest are no probes
                    if not isinstance(points, list):
                        raise ApiError(200, "project stats were not a list", self.client.base_url)
                    points = [p for p in points if not _after(p, until)]  # no bucket from the future
                    context = {"project_id": project_id, "stat": stat, "resolution": resolution}
                    self.buffer.add(ep.PROJECT_STATS.entity, points, context)
                    self.buffer.update("project_stats_future", **context, until=now)  # an earlier skew's
                    self.result.add("project_stats", len(points))

        for project_id, slug in projects:
            self.walker.optional("project_stats", read, project_id, slug)
            self.buffer.maybe_flush()
        self.buffer.flush()

    def sync_org_stats(self) -> None:
        """stats_v2 outcomes by category, from the last stored interval (re-read: it may have been
        partial) or as far back as the interval allows."""
        now = self.walker.server_now()
        caps = self.walker.capabilities()
        self.progress("organization stats…")
        for interval, days in ep.ORG_STAT_INTERVALS:
            self.walker.check_stop()
            step = timedelta(hours=1) if interval == "1h" else timedelta(days=1)
            last = self.store.select("last_org_stat", source=self.source, interval=interval)[0][0]
            start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
            if last is not None:
                start = max(start, min(last, now - step))  # never start == end
            params = {**ep.ORG_STATS.params, "interval": interval, "start": fmt_ts(start), "end": fmt_ts(now),
                      **self._project_filter()}
            if caps.get("stats_v2_category"):
                params["category"] = "error"
            try:
                data, _ = self.client.get(ep.ORG_STATS.path.format(org=self.org), params)
            except ApiError as exc:
                if exc.status not in (400, 422) or "category" in params:
                    raise
                caps["stats_v2_category"] = True  # GlitchTip requires a category
                self.walker.remember(caps)
                params["category"] = "error"
                data, _ = self.client.get(ep.ORG_STATS.path.format(org=self.org), params)
            points = [p for p in _unfold_stats_v2(data, params["field"], params.get("category"))
                      if not (parse_ts(p["ts"]) and parse_ts(p["ts"]) > now)]  # no interval from the future
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
        """Tag keys and their values, users and service hooks of each project whose issues moved
        (count or lastSeen) since last read."""
        rows = [r for r in self.store.select("projects_to_detail", source=self.source) if self.options.covers(r[1])]
        if rows:
            self.progress(f"tag values, users and hooks of {len(rows)} projects…")
        unavailable = details.Unavailable(self.walker, self.options.full or "project_details" in self.options.refresh)
        for project_id, slug, mark in rows:
            settled = self._project_tags(project_id, slug, unavailable)
            settled &= self.walker.optional("project_users", self.sync_list, ep.PROJECT_USERS, project_id,
                                     context={"project_id": project_id}, project=slug)
            settled &= self._project_hooks(project_id, slug, unavailable)
            if settled:  # otherwise the next sync tries this project again
                self.buffer.state("state", "project_details", project_id, watermark=None, cursor=None, params=None,
                                  extra={"mark": mark})
        self.buffer.flush()

    def _project_tags(self, project_id: str, slug: str, unavailable: details.Unavailable) -> bool:
        """The project's tag keys, then each key's values (the `tag_keys` setting may narrow them);
        values of keys it no longer has are dropped. A server without the key list (GlitchTip) has
        the six fixed keys read. True when every read settled."""
        listed: list[str] | None = None
        read = ep.PROJECT_TAG_KEYS.name
        if not unavailable.has(read):
            answer: dict[str, list] = {}
            def keys() -> None:
                try:
                    answer["keys"] = details.read_whole(self.walker, ep.PROJECT_TAG_KEYS, project_id, slug)
                except ApiError as exc:
                    if exc.status == 401 or not route_missing(exc):
                        raise
                    unavailable.remember(read, None, f"{exc.status or 'no answer'}: {exc.message[:60]}")
            if not self.walker.optional(read, keys):
                return False
            if "keys" in answer:
                listed = [str(k["key"]) for k in answer["keys"] if k.get("key")]
        settled = True
        wanted = details.keys_to_read(listed, self.options.tag_keys)
        for key in wanted:
            self.walker.check_stop()
            settled &= self.walker.optional("tag_values", self._tag_values, project_id, slug, key)
        if "tag_values" not in self.walker.missing:
            self.buffer.update("tag_values_keys_gone", project_id=project_id, keys=wanted)
        return settled

    def _project_hooks(self, project_id: str, slug: str, unavailable: details.Unavailable) -> bool:
        """The project's service hooks, stored without their secrets. A route the server lacks, a
        403 (the servicehooks feature off) or a 404 is remembered, not asked again each sync."""
        read = ep.PROJECT_HOOKS.name
        if unavailable.has(read, project_id):
            return True
        self.walker.check_stop()
        self.walker.probe = PROBE_RETRIES
        try:
            details.read_whole(self.walker, ep.PROJECT_HOOKS, project_id, slug, clean=details.without_secrets)
            return True
        except ApiError as exc:
            if exc.status == 401:
                raise
            why = f"{exc.status or 'no answer'}: {exc.message[:80]}"
            if route_missing(exc):
                unavailable.remember(read, None, why)
                return True
            if exc.status in (403, 404):
                unavailable.remember(read, project_id, why)
                return True
            if exc.status >= 500:
                self.result.errors.append(f"{read}: skipped {exc.url} ({exc.status}: {exc.message[:60]})")
                return False
            raise
        finally:
            self.walker.probe = None

    def sync_issues(self) -> set[str]:
        """Issues seen since the watermark (all statuses), newest `lastSeen` first.

        Sentry filters on the server (`lastSeen:>`). GlitchTip refuses Sentry's sort name (422) and
        does not know the filter: it is then asked by its own sort name, without the filter, and
        the walk stops early on the known order. What was learnt is kept only once it worked.
        """
        self.progress("issues…")
        name, scope = ep.ISSUES.name, ""
        state = self.store.get_state(self.source, name, scope) or {}
        caps = self.walker.capabilities()
        learnt = dict(caps)
        watermark = None if self.options.full else parse_ts(state.get("watermark"))
        since = watermark - self.options.overlap if watermark else None
        walk_max = parse_ts((state.get("extra") or {}).get("walk_max")) if state.get("cursor") else None
        if self.options.full and state.get("cursor"):
            self._drop_cursor(name, scope, state)  # --full starts over
        seen: set[str] = set()
        named: set[str] = set()  # the projects of the issues listed
        path = ep.ISSUES.path.format(org=self.org)
        only = self._project_filter()
        while True:
            params = {**ep.ISSUES.params, "sort": learnt.get("issue_sort", "date"), **only}
            if since is not None and learnt.get("last_seen_query", True):
                params["query"] = f"lastSeen:>{since.strftime('%Y-%m-%dT%H:%M:%S')}"
            pages = 0
            try:
                for page in self.walker.walk(name, scope, path, params):
                    pages += 1
                    if learnt != caps:
                        self.walker.remember(learnt)
                        caps = dict(learnt)
                    oldest = None
                    if only:  # a server that ignores `project` lists the others too: not stored
                        page = replace(page, items=[i for i in page.items if self._issue_mirrored(i)])
                    for issue in page.items:
                        seen.add(str(issue.get("id")))
                        project = issue.get("project")
                        named.add(str(project.get("id") or "") if isinstance(project, dict) else "")
                        last = parse_ts(issue.get("lastSeen") or issue.get("last_seen"))
                        if last and (walk_max is None or last > walk_max):
                            walk_max = last
                        oldest = last if oldest is None or (last and last < oldest) else oldest
                    extra = {"walk_max": fmt_ts(walk_max)} if walk_max else None
                    self.walker.save_page(name, ep.ISSUES.entity, scope, page, params, extra=extra,
                                    observed_at=self.walker.server_now())
                    if since is not None and oldest is not None and oldest < since:
                        break  # sorted by lastSeen, newest first: the rest is older still
                break
            except ApiError as exc:
                if pages or not _adapt_issue_query(learnt, params, exc):
                    raise
                log.info("server refused the issue query (%s); asking again with %s", exc.message[:80], learnt)
                self._drop_cursor(name, scope, state)
        self.walker.raise_floor(walk_max)
        new_mark = max(filter(None, [parse_ts(state.get("watermark")), walk_max]), default=None)
        self.walker.finish_walk(name, scope, watermark=fmt_ts(new_mark) if new_mark else None)
        self.buffer.flush()
        self._projects_known(named - {""})
        return seen

    def _issue_mirrored(self, issue: Any) -> bool:
        project = issue.get("project") if isinstance(issue, dict) else None
        return isinstance(project, dict) and self.options.covers(project.get("slug"))

    def _drop_cursor(self, stream: str, scope: str, state: dict) -> None:
        """Forget a walk's saved cursor (its query changed), keeping its watermark."""
        self.buffer.state("state", stream, scope, watermark=state.get("watermark"), cursor=None, params=None,
                          extra=None)
        self.buffer.flush()

    def refresh_known_issues(self, seen: set[str]) -> None:
        """Re-read stored issues the walk did not return: catches status changes with no new event,
        and issues deleted in Sentry (asked for by id, not returned)."""
        now = self.walker.server_now()
        known = [r[0] for r in self.store.select("known_issues", source=self.source, since=now - RETENTION)]
        stale = [i for i in known if i not in seen]
        if not stale:
            return
        stale, share_ends = self._refresh_share(stale)
        self.progress(f"issue status ({len(stale)} known)…")
        self._gone = []
        path = ep.ISSUES.path.format(org=self.org)
        # Near the edge of retention an issue may drop out of the window rather than be deleted.
        safe_horizon = now - RETENTION + timedelta(days=1)
        caps = self.walker.capabilities()
        if caps.get("group_filter", True):
            for start in range(0, len(stale), GROUP_BATCH):
                self.walker.check_stop()
                batch = stale[start:start + GROUP_BATCH]
                params = {**ep.ISSUES.params, "sort": caps.get("issue_sort", "date"), "group": batch}
                pages: list[Page] = []
                for page in self.walker.pages(path, params, None):
                    pages.append(page)
                    if {str(i.get("id")) for i in page.items} - set(batch):
                        break  # answered with issues it was not asked for: it ignores group=
                returned = {str(i.get("id")) for page in pages for i in page.items}
                if returned - set(batch):
                    caps["group_filter"] = False
                    self.walker.remember(caps)
                    log.info("server ignores group=; refreshing known issues with one full walk")
                    break
                for page in pages:
                    self.walker.save_rows(ep.ISSUES.entity, page, observed_at=now)
                self._note_gone([i for i in batch if i not in returned], safe_horizon)
        if not caps.get("group_filter", True):
            params = {**ep.ISSUES.params, "sort": caps.get("issue_sort", "date")}
            returned: set[str] = set()
            for page in self.walker.pages(path, params, None):
                returned.update(str(i.get("id")) for i in page.items)
                self.walker.save_rows(ep.ISSUES.entity, page, observed_at=now)
            # the walk was whole: what it did not list is gone
            self._note_gone([i for i in stale if i not in returned], safe_horizon)
        self._mark_gone(now)
        if share_ends:  # the next sync reads the next share; not before this one is settled
            self.buffer.state("state", "issue_status", "", watermark=None, cursor=None, params=None,
                              extra={"after": share_ends})
        self.buffer.flush()  # the event walks plan from these counts

    def _refresh_share(self, stale: list[str]) -> tuple[list[str], str | None]:
        """This sync's share of the known issues to re-read, so that a sync with nothing new costs
        the same few requests per project however many issues the store holds: at most
        `refresh_per_project` per project, taken in id order from where the last sync stopped and
        wrapping round; with the id it ends at. With fewer stale issues than that, all of them,
        every sync."""
        per_project = self.options.refresh_per_project
        if self._issue_hooks_arrive() and self.options.refresh_with_hooks:
            per_project = min(per_project or self.options.refresh_with_hooks, self.options.refresh_with_hooks)
        if not per_project:
            return stale, None
        budget = per_project * max(1, len(self.store.select("projects", source=self.source)))
        if len(stale) <= budget:
            return stale, None
        after = ((self.store.get_state(self.source, "issue_status", "") or {}).get("extra") or {}).get("after")
        start = bisect.bisect_right(stale, after) if after else 0
        share = (stale[start:] + stale[:start])[:budget]
        log.info("re-reading %d of %d known issues this sync (refresh_per_project = %d)", len(share), len(stale),
                 per_project)
        return sorted(share), share[-1]

    def _issue_hooks_arrive(self) -> bool:
        """The source's integration issue webhooks reached the receiver within a day: status changes
        come as they happen, and the re-read of known issues is only the net for missed ones."""
        at = ((self.store.get_state(self.source, *ISSUE_HOOKS) or {}).get("extra") or {}).get("at")
        return bool(at) and utcnow() - parse_ts(at) < HOOKS_FRESH

    def _note_gone(self, missing: list[str], safe_horizon: datetime) -> None:
        """Known issues the server did not return, but for those that may have left its window."""
        if missing:
            self._gone.extend(r[0] for r in self.store.select("issues_still_in_window", source=self.source,
                                                                ids=missing, since=safe_horizon))

    def _mark_gone(self, now: datetime) -> None:
        """Mark the issues the server no longer knows deleted; unless they are so many that a fault
        is likelier than deletions (a server answering for another organization, a search gone
        wrong): then nothing is marked and the stream fails, saying so, unless --full asked."""
        gone, self._gone = self._gone, []
        if not gone:
            return
        live = self.store.select("live_issue_count", source=self.source)[0][0]
        unexplained = self._unexplained(gone)
        if self._too_many(unexplained, live) and not self._projects_read():
            # The project list was not read this sync (its cadence): a deleted project may explain them.
            self._read_projects_now()
            unexplained = self._unexplained(gone)
        if self._too_many(unexplained, live):
            raise ApiError(0, f"{unexplained:,} of {live:,} stored issues are no longer listed by the server; "
                                f"not marking them deleted",
                           hint="if they were deleted in Sentry, run 'sentry-mirror sync --full' to accept it")
        self.buffer.update("issues_deleted", ids=gone, observed_at=now)
        self.buffer.flush()
        self.result.add("issues_deleted", len(gone))

    def _unexplained(self, gone: list[str]) -> int:
        """How many of the issues gone are not explained by their project's being gone with them."""
        listed = {key for _, key in self.walker.counted.get("projects", ())}
        if (self.result.streams.get("projects") or {}).get("error"):
            listed = set()  # a walk cut short lists too few: nothing is explained by it
        return len(gone) if not listed else self.store.select(
            "issues_in_projects", source=self.source, ids=gone, projects=sorted(listed))[0][0]

    def _too_many(self, unexplained: int, live: int) -> bool:
        return unexplained > MASS_DELETION_MIN and unexplained > self.options.max_deleted_share * live \
            and not self.options.full

    def _check_clock(self) -> None:
        """Say when the Date header and Sentry's clock disagree by more than a minute (kept for
        `status` too); the windows above followed Sentry's."""
        if self.client.server_now is None:
            return
        date = datetime.fromtimestamp(self.client.server_now, timezone.utc).replace(tzinfo=None)
        apart = (date - self.walker.server_now()).total_seconds()
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


def _after(point: Any, until: float) -> bool:
    """A stat point `[unix_seconds, count]` later than `until`."""
    return isinstance(point, list) and bool(point) and isinstance(point[0], (int, float)) and point[0] > until


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{int(seconds)}s"
