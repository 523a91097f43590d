"""Event walks: which issues' events to read, read whole projects where the data allows, settle
issues from what the store then holds, and walk the rest issue by issue on fetch threads.

The fetch threads only speak HTTP; every page is handed to the syncer's thread, which writes it
(through the walker's buffer) in order. Pages waiting for the writer are held by a spool
(spool.py) so memory stays flat.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from ..errors import AuthError, ConfigError, Interrupted, MirrorError, NotFoundError, StoreError
from ..fetching import endpoints as ep
from ..fetching.client import IDLE_STEP, Page
from ..storage.sidefiles import spool_directory
from ..storage.store import utcnow
from ..timestamps import fmt_ts, parse_ts
from .spool import PageSpool
from .walker import RETENTION, Walker

log = logging.getLogger(__name__)

PROJECT_WALKS = 2  # project event walks at once


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


class EventWalks:
    """The events stream of one sync, on the walker's gear (its store, buffer, client and clock)."""

    def __init__(self, walker: Walker):
        self.walker = walker
        self.store, self.client, self.buffer = walker.store, walker.client, walker.buffer
        self.options, self.source, self.result = walker.options, walker.source, walker.result
        self.observer, self.progress = walker.observer, walker.progress
        # Issues whose walk resumed a cut one (its old window): walked again from their newest event.
        self.followups: list[EventWalk] = []

    def run(self) -> None:
        """Read the events of every issue whose event count or last-seen time moved.

        Projects whose policy is `all` are read whole, one walk per project from its newest stored
        event (the fewest requests the data allows); an issue of such a project is then settled
        from what the store holds, and walked on its own only when the store holds fewer of its
        events than Sentry counts while all of them are within retention (events that arrived
        late, or a server that limits the project list to recent days). Projects with the `sample`
        policy, and servers without the project list, are read issue by issue: up to
        `concurrency` issues at once; only this thread writes to the store.
        """
        horizon = self.walker.server_now() - RETENTION
        rows = self.store.select("event_walks_to_plan", source=self.source, horizon=horizon, full=self.options.full)
        jobs, by_project = [], {}
        for issue_id, slug, times_seen, last_seen, watermark, cursor, saved, project_id, recent, listed_at in rows:
            if not self.options.covers(slug):  # a project the source no longer names
                continue
            policy = self.options.project_events.get(slug or "", self.options.events)
            if policy == "none":
                continue
            resume = cursor and saved and not self.options.full  # --full starts every walk over
            walk = EventWalk(issue_id, {"times_seen": times_seen, "last_seen": last_seen}, parse_ts(watermark),
                             self.options.events_sample if policy == "sample" else None,
                             cursor if resume else None, json.loads(saved) if resume else None,
                             project=slug or "?", recent=recent, listed_at=listed_at)
            jobs.append(walk)
            if policy == "all" and project_id is not None and not resume:
                by_project.setdefault((project_id, slug), []).append(walk)
        if self.observer:
            expected: dict[str, int | None] = {}
            for walk in jobs:  # a first walk reads the issue's events; a later one an unknown part of them,
                n = int(walk.seen_as["times_seen"] or 0)  # so its project's total is unknown
                known = expected.get(walk.project, 0)
                expected[walk.project] = None if walk.watermark is not None or known is None \
                    else known + min(n, walk.sample or n)
            for project, n in sorted(expected.items()):
                self.observer.expect(f"events {project}", n or None)

        # Whole projects first; their issues are then settled from the store, or left to walk.
        projects = sorted(((pid, slug) for pid, slug in self.store.select("projects", source=self.source)
                           if self.options.covers(slug)
                           and self.options.project_events.get(slug, self.options.events) == "all"
                           and self._project_due(pid, slug, by_project)), key=lambda p: p[1])
        if projects:
            self.progress(f"events of {len(projects)} projects…")
        walks = [self._plan_project_walk(project_id, slug) for project_id, slug in projects]
        starts: dict[str, datetime | None] = {}  # the earliest window start each project was read from
        while walks:
            for walk in walks:  # None: the whole 90 days, the earliest of all
                start = parse_ts(walk.params.get("start"))
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

        self.followups = []
        issue_walk = (self._event_pages, self._store_event_page, self._finish_event_walk)
        for n, (walk, message) in enumerate(self._run_walks(jobs, *issue_walk), 1):
            if message == "gone":
                log.info("issue %s is gone from Sentry; its stored events are kept", walk.issue_id)
                self.result.notes.append(f"issue {walk.issue_id} not found while reading its events")
                self.walker.finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=fmt_ts(walk.watermark)
                                  if walk.watermark else None)
            if n == 1 or n % 50 == 0 or n == len(jobs):
                self.progress(f"events: issue {n}/{len(jobs)}…")
        # A resumed walk asked for its old window; what came since is read now, from its newest event.
        for walk, message in self._run_walks(self.followups, *issue_walk):
            if message == "gone":
                self.walker.finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=fmt_ts(walk.watermark)
                                  if walk.watermark else None)
        self.buffer.flush()

    def _project_due(self, project_id: str, slug: str, by_project: dict) -> bool:
        """A project is walked when one of its issues moved (count or lastSeen), when its last walk
        was cut short, or when it was never walked; a project none of whose issues moved has no
        new event (a late event moves its issue's count, which the known-issue refresh sees)."""
        if (project_id, slug) in by_project or self.options.full:
            return True
        state = self.store.get_state(self.source, ep.PROJECT_EVENTS.name, project_id)
        return state is None or bool(state.get("cursor"))

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
        watermark = None if self.options.full else parse_ts(state.get("watermark"))
        if state.get("cursor") and state.get("params") is not None and not self.options.full:
            newest = parse_ts((state.get("extra") or {}).get("newest")) or watermark
            return ProjectWalk(project_id, slug, dict(state["params"]), state["cursor"], newest)
        params = dict(ep.PROJECT_EVENTS.params)
        if watermark is not None:
            params["start"] = fmt_ts(watermark - self.options.overlap)
            params["end"] = fmt_ts(max(self.walker.server_now(), watermark) + timedelta(minutes=5))
        else:
            params["statsPeriod"] = "90d"
        return ProjectWalk(project_id, slug, params, None, watermark)

    def _project_pages(self, walk: "ProjectWalk") -> Iterator[tuple[Page, dict]]:
        """The walk's pages; an error that need not end the sync ends only this walk (kept in
        `walk.failure`; the pages before it are stored with their cursor)."""
        if ep.PROJECT_EVENTS.name in self.walker.missing:
            walk.failure = _Skipped()
            return
        try:
            for page in self.walker.route_pages(ep.PROJECT_EVENTS, walk.params, walk.cursor, None, raw=True,
                                          project=walk.slug):
                yield page, walk.params
        except (Interrupted, AuthError, StoreError, ConfigError):
            raise
        except MirrorError as exc:
            walk.failure = exc

    def _store_project_page(self, walk: "ProjectWalk", page: Page, params: dict) -> None:
        if page.raw.newest and (walk.newest is None or page.raw.newest > walk.newest):
            walk.newest = page.raw.newest
            self.walker.raise_floor(walk.newest)
        self.walker.save_page(ep.PROJECT_EVENTS.name, ep.PROJECT_EVENTS.entity, walk.project_id, page, params,
                        label=f"events {walk.slug}", extra={"newest": fmt_ts(walk.newest)} if walk.newest else None)

    def _finish_project_walk(self, walk: "ProjectWalk") -> None:
        if walk.failure is None:  # a walk cut short keeps its cursor and its old watermark
            self.walker.finish_walk(ep.PROJECT_EVENTS.name, walk.project_id,
                              watermark=fmt_ts(walk.newest) if walk.newest else None)

    def _project_walk_failed(self, walk: "ProjectWalk", exc: BaseException) -> None:
        """A project walk that could not finish: its issues are walked one by one instead. Raises
        what must end the sync; otherwise notes it as `optional` would."""
        if isinstance(exc, _Skipped):
            return
        def fail() -> None:
            raise exc
        self.walker.optional(ep.PROJECT_EVENTS.name, fail)

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
        skew = self.walker.server_now() - utcnow()
        horizons = [(w.listed_at or utcnow()) + skew - RETENTION for w in walks]
        held = {issue_id: (n, newest) for issue_id, n, newest in self.store.select(
            "held_events", source=self.source, ids=[w.issue_id for w in walks],
            last_seen=[parse_ts(w.seen_as["last_seen"]) for w in walks], horizons=horizons)}
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
            self.walker.finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=fmt_ts(newest) if newest else None,
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
                self.walker.check_stop()
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
                    self.walker.check_stop()
                    nxt = next(pending, None)
                    if nxt is not None:
                        pool.submit(fetch, nxt)
                        running += 1
            finally:
                if running:
                    self.walker.abort.set()  # workers still fetching give up at their next page
                while running:
                    _, kind, item = self._next_result(results, draining=True)
                    if kind == "page":
                        spool.release(item)  # a fetcher may be waiting for its place
                    running -= kind != "page"
                self.walker.abort.clear()
                spool.close()
                if spool.spooled:
                    log.debug("%d pages waited on disk for the writer", spool.spooled)

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
                    self.walker.while_waiting()

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
        first_sample = self._first_sample(walk)
        params = dict(ep.ISSUE_EVENTS.params)
        if walk.saved_params is not None:
            params = dict(walk.saved_params)  # resume with exactly the query that produced the cursor
        elif walk.watermark is not None and not self.options.full:
            params["start"] = fmt_ts(walk.watermark - self.options.overlap)
            params["end"] = fmt_ts(max(self.walker.server_now(), walk.watermark) + timedelta(minutes=5))
        else:
            params["statsPeriod"] = "90d"
        page_size = min(walk.sample, self.client.page_size) if first_sample else None
        sampled = 0
        for page in self.walker.route_pages(ep.ISSUE_EVENTS, params, walk.cursor, page_size, raw=True, issue=walk.issue_id):
            sampled += page.count
            yield page, params
            if first_sample and sampled >= walk.sample:
                return  # a short or empty page that says more follow does not end the sample

    def _first_sample(self, walk: "EventWalk") -> bool:
        """An issue's first walk under `sample`: its latest N events, no more."""
        return walk.sample is not None and (walk.watermark is None or self.options.full)

    def _store_event_page(self, walk: "EventWalk", page: Page, params: dict) -> None:
        if page.raw.newest and (walk.newest is None or page.raw.newest > walk.newest):
            walk.newest = page.raw.newest
        # a sample is the newest events, read again whole when cut: no checkpoint within it
        self.walker.save_page(ep.ISSUE_EVENTS.name, ep.ISSUE_EVENTS.entity, walk.issue_id, page, params,
                              checkpoint=not self._first_sample(walk), context={"issue_id": walk.issue_id},
                              label=f"events {walk.project}")

    def _finish_event_walk(self, walk: "EventWalk") -> None:
        """Mark the issue's events read as of `seen_as`, unless the walk was a resumed one: its window
        was fixed before the interruption, so a fresh walk from its newest event follows first."""
        resumed = walk.cursor is not None
        self.walker.finish_walk(ep.ISSUE_EVENTS.name, walk.issue_id, watermark=fmt_ts(walk.newest) if walk.newest else None,
                          extra=None if resumed else walk.seen_as)
        if resumed:
            self.followups.append(EventWalk(walk.issue_id, walk.seen_as, walk.newest, None))
