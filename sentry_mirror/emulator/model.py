"""The emulated organization's data model: time constants, scales and the records a World holds.

Issues store their events as two parallel arrays (timestamp ms, user index) in chronological order,
so an event is identified by (issue index, sequence number) and everything else about it is derived
on demand (served.py); this keeps the `large` scale (~1M events) small in memory.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

from . import catalog

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION_MS = 90 * DAY_MS
HISTORY_MS = 60 * DAY_MS
AUTO_ONGOING_MS = 7 * DAY_MS  # Sentry moves new/regressed/escalating issues to ongoing after 7 days
ACTIVE_MS = 3 * DAY_MS
SEQ_BITS = 32
INDEX_SHIFT = 52  # project index sort key: time << 52 | issue_idx << 32 | seq


@dataclass(frozen=True)
class Scale:
    projects: int
    issues: int
    events: int
    users: int


SCALES = {
    "tiny": Scale(3, 20, 300, 40),
    "small": Scale(4, 200, 5_000, 300),
    "medium": Scale(8, 1_500, 75_000, 2_000),
    "large": Scale(12, 10_000, 1_000_000, 20_000),
    "eight": Scale(8, 240, 4_000, 300),  # as many projects as medium, as little data as small
    "wide": Scale(50, 300, 6_000, 300),  # many projects, little in each: what a sync costs per project
}


def iso(ms: int) -> str:
    """Sentry-style UTC timestamp: whole seconds, microseconds when non-zero, and a `Z`."""
    secs, rem = divmod(ms, 1000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{rem * 1000:06d}Z" if rem else f"{base}Z"


@dataclass(frozen=True)
class Deploy:
    id: str
    environment: str
    started_ms: int | None
    finished_ms: int
    name: str | None
    url: str | None


@dataclass
class Release:
    id: int
    version: str
    project: "Project"
    created_ms: int
    released_ms: int | None
    semver: tuple[int, int, int]
    commit_count: int
    deploy_count: int
    status: str = "open"
    new_groups: int = 0
    deploys: list[Deploy] = field(default_factory=list)  # oldest first; deploy_count == len(deploys)

    @property
    def last_deploy(self) -> Deploy | None:
        return max(self.deploys, key=lambda d: (d.finished_ms, d.id)) if self.deploys else None


@dataclass
class Team:
    id: str
    slug: str
    name: str
    created_ms: int


@dataclass
class Member:
    """An organization member; `user_id` is None while the invite is pending."""

    id: str
    key: str  # lowercase name: the email's local part and what an assignee tuple carries
    user_id: str | None
    role: str
    teams: list[str]
    created_ms: int

    @property
    def pending(self) -> bool:
        return self.user_id is None

    @property
    def email(self) -> str:
        return f"{self.key}@acme.example"


@dataclass
class Project:
    idx: int
    id: int
    slug: str
    name: str
    platform: str
    package: str
    team: str
    created_ms: int
    user_offset: int
    releases: list[Release] = field(default_factory=list)
    release_times: list[int] = field(default_factory=list)
    short_counter: int = 0
    # Project-wide chronological event index: timestamps and (issue_idx << 32 | seq) refs.
    ev_times: array = field(default_factory=lambda: array("q"))
    ev_refs: array = field(default_factory=lambda: array("q"))

    def release_at(self, t_ms: int) -> Release | None:
        """The release that was current for this project at time t (latest created <= t)."""
        i = bisect_right(self.release_times, t_ms) - 1
        return self.releases[i] if i >= 0 else None

    def release_window(self, release: Release) -> tuple[int, int]:
        """[start, end) in which events of this project carry `release`."""
        i = self.releases.index(release)
        end = self.release_times[i + 1] if i + 1 < len(self.releases) else 1 << 62
        return release.created_ms, end

    def add_release(self, release: Release) -> None:
        self.releases.append(release)
        self.release_times.append(release.created_ms)


class Issue:
    """One group. Mutable status; events are append-only chronological arrays.

    `origin` is None until other issues are merged into this one; then it holds, per seq, the
    (issue idx << 32 | seq) an event was born as, from which its id and hash derive: a moved
    event keeps its id. A merged issue keeps its arrays, `deleted_ms` and `merged_into` set.
    """

    __slots__ = (
        "idx", "id", "project", "short_id", "exc_type", "exc_value", "module", "function",
        "lineno", "level", "handled", "status", "substatus", "status_details", "status_changed_ms",
        "created_ms", "first_release", "times", "users", "staging_share", "rate", "assigned",
        "bookmarked", "subscribed", "has_seen", "activity", "deleted_ms", "_agg_key", "_agg",
        "priority", "is_public", "origin", "merged_into", "_origin_pos",
    )

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))
        self.activity = kw.get("activity") or []

    @property
    def title(self) -> str:
        return f"{self.exc_type}: {self.exc_value}"

    @property
    def filename(self) -> str:
        ext = catalog.platform_family(self.project.platform).file_ext
        if ext == ".py":
            return self.module.replace(".", "/") + ext
        if ext in (".java", ".kt"):
            return self.module.rsplit(".", 1)[-1] + ext
        if ext == ".go":
            return self.module.rsplit("/", 1)[-1] + ext
        return self.module + ext

    @property
    def culprit(self) -> str:
        fam = catalog.platform_family(self.project.platform)
        if fam.event_platform == "javascript":
            return f"{self.function}({self.module})"
        return f"{self.module} in {self.function}"

    def set_status(self, status: str, substatus: str | None, t: int, activity: str | None, details: dict) -> None:
        """Change the status at time t, recorded in the activity (when `activity` names it)."""
        self.status, self.substatus, self.status_changed_ms = status, substatus, t
        self.status_details = details if status != "unresolved" else {}
        if activity:
            self.activity.append((activity, t, details))

    def resolve(self, t: int) -> None:
        """Resolve at time t, in the release current then when there is one."""
        rel = self.project.release_at(t)
        details = {"inRelease": rel.version} if rel else {}
        self.set_status("resolved", None, t, "set_resolved_in_release" if rel else "set_resolved", details)


@dataclass(frozen=True)
class Agg:
    """Aggregates over an issue's retained events."""

    lo: int
    count: int
    user_count: int
    first_ms: int
    last_ms: int
