"""The writer thread: drains the spool into the store under the writer lock, and refreshes the
issues new events belong to.

It takes the writer lock for one batch at a time and lets go of it after each, so a sync started
meanwhile gets in within its half second of patience; it keeps the store file open through a
burst and closes it when the spool is empty, a reader waits, or a sync holds the lock. While a
sync holds the lock, deliveries wait in the spool. Events are stored as the sync stores them
(`Store.upsert_pages("events")`: sql/upserts/events.sql, keyed by event id, rewritten only when the
payload differs), so one received twice, or received and then synced, is one row. Their JSON is
read by DuckDB (sql/queries/hook_events.sql), never decoded in Python.

Each event's issue is queued for a targeted refresh: the sync's known-issue refresh request
(the organization's issue list with up to 100 `group` ids), sent once the oldest queued id has
waited `refresh_after` seconds, so a burst of events costs a request per 100 issues.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ...errors import MirrorError, StoreError
from ...fetching import endpoints as ep
from ...storage.locking import writer_lock
from ...storage.sqlfiles import load_sql
from ...syncing.syncer import GROUP_BATCH  # ids per issue-list request, as the sync's refresh
from ...storage.store import ISSUE_HOOKS, Store, assignee_text, utcnow
from ...timestamps import fmt_ts
from .spool import Delivery, HookSpool

log = logging.getLogger(__name__)



@dataclass
class Batch:
    """What a batch of deliveries becomes, per source."""

    events: dict[str, list[tuple[str, dict | None]]] = field(default_factory=dict)  # (JSON text, context)
    issues: dict[str, list[tuple[dict, str]]] = field(default_factory=dict)  # integration `issue` webhooks: (issue, body digest)
    refresh: dict[str, set[str]] = field(default_factory=dict)
    skipped: int = 0  # deliveries that become no row (set aside, or for no source the store knows)
    set_aside: list[tuple[Delivery, str]] = field(default_factory=list)  # (delivery, why): no usable event

    def count(self) -> tuple[int, int]:
        return sum(map(len, self.events.values())), sum(map(len, self.issues.values()))


def read_batch(deliveries: list[Delivery], default_source: str | None) -> Batch:
    batch = Batch()
    carried = []  # (source, kind, delivery) of the deliveries that carry an event: parsed by DuckDB
    for d in deliveries:
        source = d.meta.get("source") or default_source
        kind = "service" if d.meta.get("kind") == "service" else d.meta.get("resource")
        if not source or kind not in ("service", "error", "issue"):
            batch.skipped += 1
        elif kind == "issue":
            _add_issue(batch, source, d.body)
        else:
            carried.append((source, kind, d))
    for (source, _, d), (event, issue_id, why) in zip(carried, _events([(k, d.body) for _, k, d in carried])):
        if event is None:  # never half a row: kept in quarantine/ for a look, with why
            batch.skipped += 1
            batch.set_aside.append((d, why or "no event object"))
            continue
        batch.events.setdefault(source, []).append((event, {"issue_id": issue_id} if issue_id else None))
        if issue_id:
            batch.refresh.setdefault(source, set()).add(issue_id)
    return batch


def _add_issue(batch: Batch, source: str, body: bytes) -> None:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    data = payload.get("data") if isinstance(payload, dict) else None
    issue = data.get("issue") if isinstance(data, dict) else None
    if isinstance(issue, dict) and issue.get("id") is not None:
        batch.issues.setdefault(source, []).append((issue, hashlib.sha256(body).hexdigest()))
    else:
        batch.skipped += 1


_parser = threading.local()  # a small in-memory DuckDB per thread, to parse deliveries with


SPLIT_FROM = 200  # deliveries in a batch from which its parse is split in two halves, on two threads
_helper: ThreadPoolExecutor | None = None


def _events(carried: list[tuple[str, bytes]]) -> list[tuple[str | None, str | None, str | None]]:
    """(event JSON text, issue id, None) of each (kind, body); (None, None, why) for a delivery without
    a usable event (sql/queries/hook_events.sql: no event object, or one without what its row needs). A big batch is parsed in two halves at once (DuckDB lets go of the GIL; the parse is a
    third of the writer's time, and the writer, not the CPU, was what the burst waited for)."""
    global _helper
    if len(carried) < SPLIT_FROM:
        return _events_one(carried)
    if _helper is None:
        _helper = ThreadPoolExecutor(1, thread_name_prefix="hooks-parse")
    half = len(carried) // 2
    second = _helper.submit(_events_one, carried[half:])
    return _events_one(carried[:half]) + second.result()


def _events_one(carried: list[tuple[str, bytes]]) -> list[tuple[str | None, str | None, str | None]]:
    """As `_events`, in one DuckDB query (sql/queries/hook_events.sql) on this thread's connection."""
    texts, kinds, out = [], [], [(None, None, "not UTF-8")] * len(carried)
    for kind, body in carried:
        try:
            texts.append(body.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append("")  # not JSON as DuckDB reads it: no event
        kinds.append(kind)
    if not carried:
        return out
    con = getattr(_parser, "con", None)
    if con is None:
        con = _parser.con = duckdb.connect(":memory:", config={"threads": 1})
    for n, event, issue_id, why in con.execute(load_sql("queries", "hook_events"),
                                               {"bodies": texts, "kinds": kinds}).fetchall():
        out[n] = (event, issue_id, why)
    return out


def store_batch(store: Store, batch: Batch, refreshed: dict[str, list[dict]]) -> None:
    """Everything in one transaction: the spool's files are removed only after it commits."""
    now = utcnow()
    with store.transaction() as con:
        for source, pairs in batch.events.items():
            store.upsert_pages("events", pages(pairs), source=source, observed_at=now)
        if batch.issues:
            store.run_statements("updates", "webhook_digests_forget", observed_at=now)
        for source, issues in batch.issues.items():
            if issues:  # this source's integration issue webhooks arrive: its syncs may re-read fewer known issues
                store.set_state(source, ISSUE_HOOKS[0], ISSUE_HOOKS[1], extra={"at": fmt_ts(now)})
            for issue, digest in issues:
                if store.select("webhook_digest_seen", digest=digest)[0][0]:
                    log.info("an issue webhook for %s was applied before (a replay): skipped", issue["id"])
                    continue
                store_issue_change(store, con, source, issue, now)
                store.run_statements("updates", "webhook_digest", digest=digest, observed_at=now)
        for source, issues in refreshed.items():
            if issues:
                store.upsert("issues", issues, source=source, observed_at=now)


def pages(pairs: list[tuple[str, dict | None]]) -> list[tuple[str, dict | None]]:
    """Events as `Store.upsert_pages` takes them: a JSON array per issue they were received for."""
    groups: dict[str | None, tuple[list[str], dict | None]] = {}
    for text, ctx in pairs:
        groups.setdefault(ctx and ctx["issue_id"], ([], ctx))[0].append(text)
    return [("[" + ",".join(texts) + "]", ctx) for texts, ctx in groups.values()]


def store_issue_change(store: Store, con, source: str, issue: dict, now: datetime) -> None:
    known = con.execute("SELECT count(*) FROM issues WHERE source = ? AND id = ? AND deleted_at IS NULL",
                        [source, str(issue["id"])]).fetchone()[0]
    if not known:  # a new issue (action `created`), or one the store has not seen yet
        store.upsert("issues", [issue], source=source, observed_at=now)
        return
    details = issue.get("statusDetails") if isinstance(issue.get("statusDetails"), dict) else {}
    store.run_statements("updates", "webhook_issues", source=source, id=str(issue["id"]), observed_at=now,
                         status=issue.get("status"), substatus=issue.get("substatus"),
                         release=details.get("inRelease"), set_assignee="assignedTo" in issue,
                         last_seen=issue.get("lastSeen") if isinstance(issue.get("lastSeen"), str) else None,
                         assigned_to=assignee_text(issue.get("assignedTo")), patch=json.dumps(issue))


class Refresher:
    """Issue ids waiting for their targeted refresh, per source. The requests run on a thread of
    their own (`start`), never on the writer's: a slow Sentry or a 429's Retry-After must not keep
    the store file from readers and syncs; the writer stores what came back (`take`) with its next
    batch."""

    def __init__(self, clients: dict, refresh_after: float = 1.0):
        self.clients = clients  # source name -> (SentryClient, org slug)
        self.refresh_after = refresh_after
        self.on_ready = lambda: None  # the Drainer wakes its writer here
        self.waiting: dict[str, dict[str, float]] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self._ready: dict[str, list[dict]] = {}  # fetched, not yet stored
        self._fetching: threading.Thread | None = None

    def queue(self, ids: dict[str, set[str]]) -> None:
        now = time.monotonic()
        with self._lock:
            for source, found in ids.items():
                if source not in self.clients:
                    continue
                queued = self.waiting.setdefault(source, {})
                for i in found:
                    queued.setdefault(i, now)

    def due_in(self) -> float | None:
        """Seconds until the next refresh is due (0: now); None with nothing queued."""
        with self._lock:
            firsts = [min(q.values()) for q in self.waiting.values() if q]
            full = any(len(q) >= GROUP_BATCH for q in self.waiting.values())
        if not firsts:
            return None
        if full:
            return 0.0
        return max(0.0, min(firsts) + self.refresh_after - time.monotonic())

    def fetching(self) -> bool:
        return self._fetching is not None and self._fetching.is_alive()

    def busy(self) -> bool:
        """Ids queued, a fetch under way, or issues fetched and not yet stored."""
        return self.due_in() is not None or self.fetching() or bool(self._ready)

    def start(self) -> None:
        """Fetch the queued issues on the refresh thread (one fetch at a time)."""
        if self.fetching():
            return
        self._fetching = threading.Thread(target=self._fetch_ready, name="hooks-refresh", daemon=True)
        self._fetching.start()

    def _fetch_ready(self) -> None:
        try:
            got = self.fetch()
        except Exception:  # noqa: BLE001 - the next sync's refresh of known issues catches up
            log.exception("could not refresh issues")
            got = {}
        self.give_back(got)
        self.on_ready()

    def wait(self, timeout: float) -> None:
        if self._fetching is not None:
            self._fetching.join(timeout)

    def take(self) -> dict[str, list[dict]]:
        """The issues fetched so far, for the writer to store."""
        with self._lock:
            out, self._ready = self._ready, {}
        return out

    def give_back(self, issues: dict[str, list[dict]]) -> None:
        """Issues fetched (or taken and not stored: a sync held the lock), to be stored later."""
        with self._lock:
            for source, found in issues.items():
                if found:
                    self._ready.setdefault(source, []).extend(found)

    def fetch(self) -> dict[str, list[dict]]:
        """The queued issues as the issue list answers them now (no lock held meanwhile)."""
        out: dict[str, list[dict]] = {}
        with self._lock:
            taken = {source: sorted(queued) for source, queued in self.waiting.items()}
            self.waiting = {}
        for source, ids in taken.items():
            client, org = self.clients[source]
            for start in range(0, len(ids), GROUP_BATCH):
                batch = ids[start:start + GROUP_BATCH]
                params = {**ep.ISSUES.params, "group": batch}
                try:
                    data, _ = client.get(ep.ISSUES.path.format(org=org), params)
                    self.requests += 1
                except MirrorError as exc:  # the next sync's refresh of known issues catches up
                    log.warning("could not refresh %d issues of %s: %s", len(batch), source, exc)
                    continue
                wanted = set(batch)
                out.setdefault(source, []).extend(
                    i for i in (data if isinstance(data, list) else []) if str(i.get("id")) in wanted)
        return out


# A store error that is the store's (its disk, its memory, its lock), not a delivery's data: the
# batch waits and is tried again rather than any delivery being quarantined.
_STORE_TROUBLE = ("IO Error", "Out of Memory", "could not commit", "cannot open", "lock", "disk", "FATAL",
                  "database has been invalidated", "Connection Error")


def _refused_data(exc: Exception, db: str) -> bool:
    """Whether the store refused what a delivery holds (a conversion, a constraint...)."""
    if isinstance(exc, OSError) or not isinstance(exc, (StoreError, duckdb.Error, ValueError, TypeError, KeyError)):
        return False
    text = str(exc).replace(db, "").lower()  # the store's own path says nothing of the error
    return not any(t.lower() in text for t in _STORE_TROUBLE)


LEASE_SECONDS = 5.0  # each reopening of the file costs ~0.2 s (a checkpoint and an open)
FINAL_SECONDS = 20.0  # the last passes at shutdown, at most
FINAL_REFRESH_WAIT = 10.0  # seconds the last pass at shutdown waits for a refresh under way
GATHER = 0.25  # seconds a first delivery waits for others, so a burst is one transaction, not hundreds


class Drainer:
    """The one thread that writes what the receiver accepted."""

    def __init__(self, db: str, spool: HookSpool, refresher: Refresher, *, default_source: str | None = None,
                 batch_size: int = 500, stop: threading.Event | None = None):
        self.db, self.spool, self.refresher = db, spool, refresher
        self.default_source = default_source
        self.batch_size = batch_size
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        refresher.on_ready = self.wake.set  # issues fetched: store them
        self.stored = 0  # deliveries written so far
        self._busy_since: float | None = None
        self._store: Store | None = None  # open during a burst, closed when the spool is empty
        self._thread: threading.Thread | None = None
        self._failing: str | None = None  # the error the writer keeps meeting, logged once
        self.quarantined = 0  # deliveries the store refused, set aside in the spool's quarantine folder
        self._failures = 0
        self._views_checked = False  # once a process, after its first write: the views a sync makes

    def start(self) -> "Drainer":
        self._thread = threading.Thread(target=self.run, name="hooks-writer", daemon=True)
        self._thread.start()
        return self

    def busy(self) -> bool:
        """Deliveries or refreshes still waiting (tests and the benchmark wait for the end)."""
        return bool(self.spool.pending(1)) or self.refresher.busy()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                stored = self.cycle()
            except Exception as exc:  # noqa: BLE001 - the writer never dies: the spool waits for it
                self.stop.wait(self._failed(exc))
                continue
            if self._failing is not None:
                log.info("writing deliveries to %s again", self.db)
                self._failing, self._failures = None, 0
            if self._busy_since is not None:  # a sync holds the store: try again soon
                self.stop.wait(0.5)
                continue
            if stored and self.spool.pending(1):
                if len(self.spool.pending(self.batch_size)) < self.batch_size:
                    self.stop.wait(GATHER)  # a transaction costs ~70 ms whatever its size: let more come
                continue
            due = None if self.refresher.fetching() else self.refresher.due_in()  # a fetch's end wakes it
            self.wake.wait(0.5 if due is None else min(0.5, due))
            if self.wake.is_set():  # a delivery came: let the burst it may open gather first
                self.stop.wait(GATHER)
            self.wake.clear()
        try:
            self._last_passes()
        finally:
            if self._store is not None:
                with contextlib.suppress(MirrorError):
                    self._store.close()
                self._store = None
            self.spool.settle()

    def _last_passes(self) -> None:
        """At stop: batches until the spool is empty, a sync holds the lock, or FINAL_SECONDS pass
        (what is left waits for the next start)."""
        deadline = time.monotonic() + FINAL_SECONDS
        while time.monotonic() < deadline:
            try:
                stored = self.cycle(final=True)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
                return
            if not stored or not self.spool.pending(1):
                return

    def _failed(self, exc: Exception) -> float:
        """Log an error once (again only when it changes), let go of the store file, and say how
        long to back off: 0.2 s, doubling, at most 5 s."""
        text = f"{exc.__class__.__name__}: {exc}"
        if text != self._failing:
            if isinstance(exc, MirrorError):
                log.error("could not write deliveries to %s: %s", self.db, exc)
            else:
                log.exception("could not write deliveries to %s: %s; retrying until it can", self.db, text)
        self._failing = text
        self._failures += 1
        self._let_go()
        return min(5.0, 0.2 * 2 ** (self._failures - 1))

    def _let_go(self) -> None:
        """Close the store file (the Store stays, migrated). Between the batches of a burst the
        file stays open: opening it, migrating and the closing checkpoint cost ~150 ms a batch. The
        writer lock is still let go after every batch; a sync that takes it meanwhile finds the
        file held, waits for it (as for a reader), and gets it at this writer's next try."""
        if self._store is not None:
            try:
                self._store.release()
            except MirrorError as exc:
                log.warning("could not close %s: %s", self.db, exc)

    def _store_each(self, deliveries: list[Delivery], batch: Batch, refreshed: dict[str, list[dict]]) -> None:
        """The batch in one transaction; if the store refuses it, each delivery on its own, and one
        it still refuses (its data, not the store, at fault) is quarantined: the deliveries after it
        go on rather than waiting behind it forever."""
        try:
            return store_batch(self._store, batch, refreshed)
        except Exception as exc:  # noqa: BLE001
            if not _refused_data(exc, self.db):
                raise
        store_batch(self._store, Batch(), refreshed)
        for d in deliveries:
            try:
                store_batch(self._store, read_batch([d], self.default_source), {})
            except Exception as exc:  # noqa: BLE001
                if not _refused_data(exc, self.db):
                    raise
                path = self.spool.quarantine(d)
                self.quarantined += 1
                log.warning("the store refused a delivery (%s); it is kept in %s and not retried", exc, path)

    def _make_views(self) -> None:
        """The views and macros readers and reports use, made (as a sync does after it ends) if the
        store lacks any: a store no sync has written yet has none. Once a process, not per batch."""
        missing = self._store.missing_views()
        if missing:
            self._store.create_views()
            log.info("made the store's views (%s were missing)", ", ".join(missing))
        self._views_checked = True

    def cycle(self, final: bool = False) -> int:
        """One batch from the spool, with the refreshes that are due; returns deliveries stored."""
        names = self.spool.pending(self.batch_size)
        due = self.refresher.due_in()
        if due is not None and (due == 0 or final):
            self.refresher.start()  # on its own thread: the file is not held while Sentry answers
        if final:
            self.refresher.wait(FINAL_REFRESH_WAIT)
        refreshed = self.refresher.take()
        if not names and not refreshed:
            return 0
        deliveries = [d for n in names for d in self.spool.read(n)]
        batch = read_batch(deliveries, self.default_source)
        try:
            lock = writer_lock(self.db)
            lock.__enter__()
        except StoreError:
            self._let_go()  # a sync took the lock between two batches: it opens the file next
            if self._busy_since is None:
                self._busy_since = time.monotonic()
                log.info("a sync is writing %s; %d deliveries wait in the spool", self.db, len(self.spool.pending()))
            self.refresher.give_back(refreshed)
            return 0
        try:
            if self._busy_since is not None:
                log.info("the sync let go of %s; writing the spool", self.db)
                self._busy_since = None
            if self._store is None:
                # migrated once, not per batch; a reader that waits still gets the file at the next
                # commit (the readers' signal), the lease only bounds how long it stays open else
                self._store = Store(self.db, lease_seconds=LEASE_SECONDS)
            try:
                self._store_each(deliveries, batch, refreshed)
                if not self._views_checked:
                    self._make_views()
            except BaseException:
                self._let_go()
                raise
        finally:
            lock.__exit__(None, None, None)
        for d, why in batch.set_aside:  # kept before their files go: a crash between keeps them twice, not never
            path = self.spool.quarantine(d)
            self.quarantined += 1
            log.warning("a delivery carries no event the store can take (%s); it is kept in %s and not retried",
                        why, path)
        self.spool.remove(names)
        if not self.spool.pending(1):
            self._let_go()  # idle: the file is free for readers and a sync
        self.refresher.queue(batch.refresh)
        self.stored += len(deliveries)
        events, issues = batch.count()
        if names:
            log.info("stored %d deliveries: %d events, %d issue changes%s", len(deliveries), events, issues,
                     f" ({batch.skipped} unusable)" if batch.skipped else "")
        if refreshed:
            log.info("refreshed %d issues", sum(map(len, refreshed.values())))
        return len(deliveries)
