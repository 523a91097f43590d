"""What a world serves: per-event attributes derived from a seeded hash, aggregates over retained
events, and lookups. Read-only, so the JSON shapes and aggregates build on this class alone."""

from __future__ import annotations

import threading
from bisect import bisect_left

from .clock import Clock
from .codec import EventCodec, mix64
from .model import SEQ_BITS, Agg, Issue, Member, Project, Release, Scale, Team


class Served(Clock):
    """The state of one emulated organization and the read-only questions asked of it."""

    # Set up by World.__init__ and generate.py; changed by mutations.py and advance.py.
    seed: int
    scale: Scale
    lock: threading.RLock
    codec: EventCodec
    org_slug: str
    projects: list[Project]
    releases: list[Release]
    issues: list[Issue]  # every issue ever made, by idx, also deleted and merged ones
    issue_by_id: dict[int, Issue]
    teams: list[Team]
    members: list[Member]
    deleted: list[Issue]
    merged: list[Issue]  # issues merged into another (their `merged_into`)
    edits: int  # number of changes made through the API; also invalidates cached search results
    cache: dict  # derived aggregates, dropped whenever the world changes
    _hash_key: int

    @staticmethod
    def _origin_ref(issue: Issue, seq: int) -> int:
        """What the event at (issue, seq) was born as: (issue idx << 32 | seq), kept when it moves."""
        return issue.origin[seq] if issue.origin is not None else (issue.idx << SEQ_BITS) | seq

    def event_hash(self, issue_idx: int, seq: int) -> int:
        return mix64(self._origin_ref(self.issues[issue_idx], seq) ^ self._hash_key)

    def event_id(self, issue: Issue, seq: int) -> str:
        ref = self._origin_ref(issue, seq)
        return self.codec.encode(ref >> SEQ_BITS, ref & ((1 << SEQ_BITS) - 1))

    def event_source(self, issue: Issue, seq: int) -> Issue:
        """The issue an event was born in: its level and environment mix stay with the event."""
        return issue if issue.origin is None else self.issues[issue.origin[seq] >> SEQ_BITS]

    def environment(self, issue: Issue, seq: int) -> str:
        h = self.event_hash(issue.idx, seq) & 0xFFFF
        return "staging" if h < self.event_source(issue, seq).staging_share * 65536 else "production"

    def event_level(self, issue: Issue, seq: int) -> str:
        return self.event_source(issue, seq).level

    def locate_event(self, event_id: str) -> tuple[Issue, int] | None:
        """Find a served event by id (None if unknown or out of retention), wherever merges moved it."""
        decoded = self.codec.decode(event_id.lower())
        if decoded is None:
            return None
        idx, seq = decoded
        if idx >= len(self.issues):
            return None
        issue = self.issues[idx]
        while issue.merged_into is not None:
            issue = issue.merged_into
        if issue.origin is not None:
            seq = self._origin_positions(issue).get((idx << SEQ_BITS) | seq, len(issue.times))
        if seq >= len(issue.times):
            return None
        return (issue, seq) if issue.times[seq] >= self.retention_ms and issue.deleted_ms is None else None

    @staticmethod
    def _origin_positions(issue: Issue) -> dict[int, int]:
        """origin ref -> seq of a merged-into issue, rebuilt when its events changed."""
        pos = issue._origin_pos
        if pos is None or len(pos) != len(issue.origin):
            pos = issue._origin_pos = {ref: s for s, ref in enumerate(issue.origin)}
        return pos

    def agg(self, issue: Issue) -> Agg | None:
        """Aggregates over retained events, cached until the issue changes or events expire."""
        times = issue.times
        lo = bisect_left(times, self.retention_ms)
        if lo == len(times) or issue.deleted_ms is not None:
            return None
        key = (lo, len(times))
        if issue._agg_key != key:
            users = set(issue.users[lo:])
            users.discard(-1)
            issue._agg = Agg(lo, len(times) - lo, len(users), times[lo], times[-1])
            issue._agg_key = key
        return issue._agg

    def served_issues(self) -> list[Issue]:
        """Issues with at least one event inside retention (and not deleted), in creation order."""
        ret = self.retention_ms
        return [i for i in self.issues if i.times[-1] >= ret and i.deleted_ms is None]

    def event_range(self, issue: Issue, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Seq range [lo, hi) of the issue's retained events with start <= t < end."""
        start_ms = max(start_ms, self.retention_ms)
        return bisect_left(issue.times, start_ms), bisect_left(issue.times, end_ms)

    def find_issue(self, ident: str) -> Issue | None:
        """Issue by numeric id or short id, if it is still served."""
        issue = None
        if ident.isdigit():
            issue = self.issue_by_id.get(int(ident))
        else:
            issue = next((i for i in self.issues if i.short_id == ident.upper()), None)
        return issue if issue is not None and self.agg(issue) is not None else None

    def find_project(self, ident: str) -> Project | None:
        return next((p for p in self.projects if ident in (p.slug, str(p.id))), None)

    def find_release(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)
