"""The writer thread: drains the spool into the store under the writer lock, and refreshes the
issues new events belong to.

It takes the writer lock for one batch at a time and lets go of it (and of the store file) after
each, so a sync started meanwhile gets in within its half second of patience; while a sync holds
the lock, deliveries wait in the spool. Events are stored as the sync stores them
(`Store.upsert("events")`: sql/upserts/events.sql, keyed by event id, rewritten only when the
payload differs), so one received twice, or received and then synced, is one row.

Each event's issue is queued for a targeted refresh: the sync's known-issue refresh request
(the organization's issue list with up to 100 `group` ids), sent once the oldest queued id has
waited `refresh_after` seconds, so a burst of events costs a request per 100 issues.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ...errors import MirrorError, StoreError
from ...fetching import endpoints as ep
from ...storage.locking import writer_lock
from ...storage.store import Store
from .spool import Delivery, HookSpool

log = logging.getLogger(__name__)

GROUP_BATCH = 100  # ids per issue-list request, as the sync's known-issue refresh
# Fields Sentry adds to a webhook's event that its API's event does not have: dropped, so the
# stored payload is the API's.
LINK_FIELDS = ("url", "web_url", "issue_url")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class Batch:
    """What a batch of deliveries becomes, per source."""

    events: dict[str, list[tuple[dict, dict | None]]] = field(default_factory=dict)
    issues: dict[str, list[dict]] = field(default_factory=dict)  # from integration `issue` webhooks
    refresh: dict[str, set[str]] = field(default_factory=dict)
    skipped: int = 0

    def count(self) -> tuple[int, int]:
        return sum(map(len, self.events.values())), sum(map(len, self.issues.values()))


def read_batch(deliveries: list[Delivery], default_source: str | None) -> Batch:
    batch = Batch()
    for d in deliveries:
        source = d.meta.get("source") or default_source
        try:
            payload = json.loads(d.body)
        except ValueError:
            payload = None
        if not source or not isinstance(payload, dict):
            batch.skipped += 1
            continue
        if d.meta.get("kind") == "service":
            event, group = payload.get("event"), payload.get("group") or {}
            _add_event(batch, source, event, group.get("id") if isinstance(group, dict) else None)
        elif d.meta.get("resource") == "error":
            error = (payload.get("data") or {}).get("error")
            _add_event(batch, source, error, (error or {}).get("issue_id") if isinstance(error, dict) else None)
        elif d.meta.get("resource") == "issue":
            issue = (payload.get("data") or {}).get("issue")
            if isinstance(issue, dict) and issue.get("id") is not None:
                batch.issues.setdefault(source, []).append(issue)
            else:
                batch.skipped += 1
        else:
            batch.skipped += 1
    return batch


def _add_event(batch: Batch, source: str, event, issue_id) -> None:
    if not isinstance(event, dict):
        batch.skipped += 1
        return
    issue_id = str(issue_id or event.get("groupID") or "") or None
    event = {k: v for k, v in event.items() if k not in LINK_FIELDS and k != "issue_id"}
    batch.events.setdefault(source, []).append((event, {"issue_id": issue_id} if issue_id else None))
    if issue_id:
        batch.refresh.setdefault(source, set()).add(issue_id)


def assignee(value) -> str | None:
    """As sql/upserts/issues.sql writes `assigned_to`: type:email|name|id."""
    if not isinstance(value, dict):
        return None
    return f"{value.get('type')}:{value.get('email') or value.get('name') or value.get('id')}"


def store_batch(store: Store, batch: Batch, refreshed: dict[str, list[dict]]) -> None:
    """Everything in one transaction: the spool's files are removed only after it commits."""
    now = utcnow()
    with store.transaction() as con:
        for source, pairs in batch.events.items():
            store.upsert("events", [e for e, _ in pairs], source=source, contexts=[c for _, c in pairs], observed_at=now)
        for source, issues in batch.issues.items():
            for issue in issues:
                store_issue_change(store, con, source, issue, now)
        for source, issues in refreshed.items():
            if issues:
                store.upsert("issues", issues, source=source, observed_at=now)


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
                         assigned_to=assignee(issue.get("assignedTo")), patch=json.dumps(issue))


class Refresher:
    """Issue ids waiting for their targeted refresh, per source."""

    def __init__(self, clients: dict, refresh_after: float = 1.0):
        self.clients = clients  # source name -> (SentryClient, org slug)
        self.refresh_after = refresh_after
        self.waiting: dict[str, dict[str, float]] = {}
        self.requests = 0

    def queue(self, ids: dict[str, set[str]]) -> None:
        now = time.monotonic()
        for source, found in ids.items():
            if source not in self.clients:
                continue
            queued = self.waiting.setdefault(source, {})
            for i in found:
                queued.setdefault(i, now)

    def due_in(self) -> float | None:
        """Seconds until the next refresh is due (0: now); None with nothing queued."""
        firsts = [min(q.values()) for q in self.waiting.values() if q]
        if not firsts:
            return None
        if any(len(q) >= GROUP_BATCH for q in self.waiting.values()):
            return 0.0
        return max(0.0, min(firsts) + self.refresh_after - time.monotonic())

    def fetch(self) -> dict[str, list[dict]]:
        """The queued issues as the issue list answers them now (no lock held meanwhile)."""
        out: dict[str, list[dict]] = {}
        for source, queued in list(self.waiting.items()):
            ids = sorted(queued)
            self.waiting[source] = {}
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
        self.stored = 0  # deliveries written so far
        self._busy_since: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Drainer":
        self._thread = threading.Thread(target=self.run, name="hooks-writer", daemon=True)
        self._thread.start()
        return self

    def busy(self) -> bool:
        """Deliveries or refreshes still waiting (tests and the benchmark wait for the end)."""
        return bool(self.spool.pending(1)) or self.refresher.due_in() is not None

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                stored = self.cycle()
            except MirrorError as exc:
                log.error("could not write deliveries to %s: %s", self.db, exc)
                self.stop.wait(1.0)
                continue
            if self._busy_since is not None:  # a sync holds the store: try again soon
                self.stop.wait(0.5)
                continue
            if stored and self.spool.pending(1):
                continue  # more waiting: the next batch at once
            due = self.refresher.due_in()
            self.wake.wait(0.5 if due is None else min(0.5, due))
            if self.wake.is_set():  # a delivery came: let the burst it may open gather first
                self.stop.wait(GATHER)
            self.wake.clear()
        with contextlib.suppress(MirrorError):
            self.cycle(final=True)

    def cycle(self, final: bool = False) -> int:
        """One batch from the spool, with the refreshes that are due; returns deliveries stored."""
        names = self.spool.pending(self.batch_size)
        due = self.refresher.due_in()
        refreshed = self.refresher.fetch() if due is not None and (due == 0 or final) else {}
        if not names and not refreshed:
            return 0
        deliveries = [d for n in names for d in self.spool.read(n)]
        batch = read_batch(deliveries, self.default_source)
        try:
            lock = writer_lock(self.db)
            lock.__enter__()
        except StoreError:
            if self._busy_since is None:
                self._busy_since = time.monotonic()
                log.info("a sync is writing %s; %d deliveries wait in the spool", self.db, len(self.spool.pending()))
            self.refresher.queue({s: {str(i["id"]) for i in issues} for s, issues in refreshed.items()})
            return 0
        try:
            if self._busy_since is not None:
                log.info("the sync let go of %s; writing the spool", self.db)
                self._busy_since = None
            store = Store(self.db)
            try:
                store_batch(store, batch, refreshed)
            finally:
                store.close()
        finally:
            lock.__exit__(None, None, None)
        self.spool.remove(names)
        self.refresher.queue(batch.refresh)
        self.stored += len(deliveries)
        events, issues = batch.count()
        if names:
            log.info("stored %d deliveries: %d events, %d issue changes%s", len(deliveries), events, issues,
                     f" ({batch.skipped} unusable)" if batch.skipped else "")
        if refreshed:
            log.info("refreshed %d issues", sum(map(len, refreshed.values())))
        return len(deliveries)
