"""The emulated organization: deterministic generation, compact event storage, and the clock.

Events are stored per issue as two parallel arrays (timestamp ms, user index) in chronological
order, so an event is identified by (issue index, sequence number) and everything else about it
(id, environment, browser, payload) is derived on demand from a seeded hash. This keeps the
`large` scale (~1M events) small in memory and quick to build.
"""

from __future__ import annotations

import math
import random
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import catalog

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION_MS = 90 * DAY_MS
HISTORY_MS = 60 * DAY_MS
AUTO_ONGOING_MS = 7 * DAY_MS  # Sentry moves new/regressed/escalating issues to ongoing after 7 days
ACTIVE_MS = 3 * DAY_MS
M64 = (1 << 64) - 1
M128 = (1 << 128) - 1
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
}


def iso(ms: int) -> str:
    """Sentry-style UTC timestamp: whole seconds, microseconds when non-zero, and a `Z`."""
    secs, rem = divmod(ms, 1000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{rem * 1000:06d}Z" if rem else f"{base}Z"


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class EventCodec:
    """Bijective (issue index, seq) <-> 32-hex event id, so ids look random yet need no index."""

    _M1 = 0x9E3779B97F4A7C15F39CC0605CEDC835
    _M2 = 0xD6E8FEB86659FD93C13A9BB4D5F3C1E1

    def __init__(self, seed: int):
        self._key = (mix64(seed) << 64) | mix64(seed ^ 0x5EED)
        self._inv1 = pow(self._M1, -1, 1 << 128)
        self._inv2 = pow(self._M2, -1, 1 << 128)

    def encode(self, issue_idx: int, seq: int) -> str:
        x = ((issue_idx << SEQ_BITS) | seq) ^ self._key
        x = (x * self._M1) & M128
        x ^= x >> 64
        x = (x * self._M2) & M128
        x ^= x >> 64
        x = (x * self._M1) & M128
        return f"{x:032x}"

    def decode(self, event_id: str) -> tuple[int, int] | None:
        if len(event_id) != 32:
            return None
        try:
            x = int(event_id, 16)
        except ValueError:
            return None
        x = (x * self._inv1) & M128
        x ^= x >> 64
        x = (x * self._inv2) & M128
        x ^= x >> 64
        x = ((x * self._inv1) & M128) ^ self._key
        return x >> SEQ_BITS, x & ((1 << SEQ_BITS) - 1)


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


@dataclass(frozen=True)
class Agg:
    """Aggregates over an issue's retained events."""

    lo: int
    count: int
    user_count: int
    first_ms: int
    last_ms: int


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw; normal approximation for large means keeps advance() fast."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def zipf_counts(rng: random.Random, n: int, total: int, s: float = 1.2) -> list[int]:
    """Heavy-tailed per-issue event counts summing to roughly `total`, in random rank order."""
    norm = sum(r ** -s for r in range(1, n + 1))
    top = total / norm
    counts = [max(1, round(top * r ** -s * rng.lognormvariate(0, 0.35))) for r in range(1, n + 1)]
    rng.shuffle(counts)
    return counts


class World:
    """Ground truth of one emulated Sentry organization, advanced by a virtual clock."""

    def __init__(self, seed: int = 1, scale: str = "tiny", now: datetime | None = None,
                 deletions: bool = False, merges: bool = False):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
        self.seed = seed
        self.seen_in_seconds = False  # render issues' firstSeen/lastSeen cut to the second (Emulator)
        self.scale_name = scale
        self.scale = SCALES[scale]
        now = now or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        self.anchor_ms = int(now.timestamp() * 1000)
        self.now_ms = self.anchor_ms
        self.step = 0  # number of advance() calls; also invalidates cached search results
        self.edits = 0  # number of changes made through the API (PUT/DELETE/POST); also invalidates them
        self.hooks: dict[int, list[dict]] = {}  # project idx -> service hooks created through the API
        self.lock = threading.RLock()
        self.codec = EventCodec(seed)
        self._hash_key = mix64(seed * 7919 + 17)
        rng = random.Random(seed)
        self.org_id = str(4_500_000 + rng.randrange(100_000))
        self.org_slug = "acme"
        self.org_name = "Acme Corp"
        self.org_created_ms = self.anchor_ms - 500 * DAY_MS
        self.projects = self._build_projects(rng)
        self.releases: list[Release] = []
        self._build_releases(rng)
        self.issues: list[Issue] = []
        self.issue_by_id: dict[int, Issue] = {}
        self._build_issues(rng)
        self._index_events([(issue, 0) for issue in self.issues])
        # Everything below draws no number from `rng`, so the world above stays as it always was.
        self.deletions = deletions  # off by default: advance() then never deletes issues
        self.deleted: list[Issue] = []
        self.merges = merges  # off by default: advance() then never merges issues
        self.merged: list[Issue] = []  # issues merged into another (their `merged_into`)
        self.teams = self._build_teams()
        self.members = self._build_members()
        self.invites = 1
        self.cache: dict = {}  # derived aggregates, dropped whenever the world changes

    # ----- time -----------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, timezone.utc)

    @property
    def retention_ms(self) -> int:
        return self.now_ms - RETENTION_MS

    # ----- generation -----------------------------------------------------------------------
    def _build_projects(self, rng: random.Random) -> list[Project]:
        projects = []
        for i, (slug, name, platform, package, team) in enumerate(catalog.PROJECTS[: self.scale.projects]):
            projects.append(Project(
                idx=i, id=4_500_100 + i * 13 + rng.randrange(10), slug=slug, name=name,
                platform=platform, package=package, team=team,
                created_ms=self.anchor_ms - (400 - 10 * i) * DAY_MS,
                user_offset=rng.randrange(self.scale.users),
            ))
        return projects

    def _build_releases(self, rng: random.Random) -> None:
        pending = []
        for p in self.projects:
            t = self.anchor_ms - 75 * DAY_MS - int(rng.random() * 5 * DAY_MS)
            ver = (rng.randint(1, 3), rng.randint(0, 9), 0)
            while t < self.anchor_ms:
                pending.append((t, p, ver))
                ver = self._bump(rng, ver)
                t += int(rng.uniform(1.5, 6) * DAY_MS)
        pending.sort(key=lambda x: (x[0], x[1].idx))
        for t, p, ver in pending:
            rel = self._new_release(rng, p, t, ver)
            if t < self.anchor_ms - 45 * DAY_MS and rng.random() < 0.25:
                rel.status = "archived"

    @staticmethod
    def _bump(rng: random.Random, ver: tuple[int, int, int]) -> tuple[int, int, int]:
        r = rng.random()
        if r < 0.05:
            return ver[0] + 1, 0, 0
        if r < 0.4:
            return ver[0], ver[1] + 1, 0
        return ver[0], ver[1], ver[2] + 1

    def _new_release(self, rng: random.Random, p: Project, t: int, ver: tuple[int, int, int]) -> Release:
        released = t + rng.randint(5, 60) * 60_000 if rng.random() < 0.9 else None
        rel = Release(
            id=180_000_000 + len(self.releases) * 7 + rng.randrange(7),
            version=f"{p.package}@{ver[0]}.{ver[1]}.{ver[2]}", project=p, created_ms=t,
            released_ms=released, semver=ver, commit_count=rng.randint(1, 30),
            deploy_count=rng.choice((0, 1, 1, 2)),
        )
        rel.deploys = self._initial_deploys(rel)
        self.releases.append(rel)
        p.add_release(rel)
        return rel

    @staticmethod
    def _initial_deploys(rel: Release) -> list[Deploy]:
        """Staging deploys, then the production deploy when the release went out (no RNG draw)."""
        out, last = [], rel.released_ms or rel.created_ms
        gap = max(1000, min(40 * 60_000, (last - rel.created_ms) // max(1, rel.deploy_count)))
        for k in range(1, rel.deploy_count + 1):
            env = "production" if k == rel.deploy_count else "staging"
            finished = last - (rel.deploy_count - k) * gap
            out.append(Deploy(str(rel.id * 10 + k), env, None if env == "production" else finished - 6 * 60_000,
                              finished, f"{rel.version} to {env}", None))
        return out

    def _build_teams(self) -> list[Team]:
        return [Team(str(10 + k), slug, name, self.org_created_ms + (k + 1) * 3 * DAY_MS)
                for k, (slug, name) in enumerate(catalog.TEAMS)]

    def _build_members(self) -> list[Member]:
        """One member per possible user assignee (user id 100 + k), then one pending invite."""
        roles = ("owner", "manager", "manager", "admin", "admin")
        slugs = [t.slug for t in self.teams]
        members = []
        for k, key in enumerate(catalog.FIRST_NAMES):
            teams = [slugs[k % 3]] + ([slugs[(k + 1) % 3]] if k % 5 == 0 else [])
            members.append(Member(str(800_100 + 7 * k), key, str(100 + k), roles[k] if k < len(roles) else "member",
                                  teams, self.org_created_ms + (k + 2) * 5 * DAY_MS))
        members.append(self._invite(0, self.anchor_ms - 3 * DAY_MS))
        return members

    def _invite(self, j: int, t: int) -> Member:
        """The j-th invite (pending until accepted); its user id will be 100 + its member index."""
        k = len(catalog.FIRST_NAMES) + j
        key = catalog.LAST_NAMES[j % len(catalog.LAST_NAMES)] + (str(j) if j >= len(catalog.LAST_NAMES) else "")
        return Member(str(800_100 + 7 * k), key, None, "member", [self.teams[j % len(self.teams)].slug], t)

    def _build_issues(self, rng: random.Random) -> None:
        sc = self.scale
        weights = [1.0 / (i + 1) ** 0.6 for i in range(len(self.projects))]
        owners = rng.choices(self.projects, weights=weights, k=sc.issues)
        counts = zipf_counts(rng, sc.issues, sc.events)
        start = self.anchor_ms - HISTORY_MS
        specs = []
        for project, n in zip(owners, counts):
            u = rng.random() * (0.5 if n > 200 else 1.0)
            t0 = start + int(u * (HISTORY_MS - HOUR_MS))
            if n == 1:
                t1 = t0
            elif rng.random() < 0.55:
                t1 = max(t0, self.anchor_ms - 1 - int(rng.random() * 2 * DAY_MS))
            else:
                t1 = min(self.anchor_ms - 1, t0 + int(rng.expovariate(1 / 5) * DAY_MS) + n * 1000)
            specs.append((t0, t1, project, n))
        specs.sort(key=lambda s: (s[0], s[2].idx))
        for t0, t1, project, n in specs:
            issue = self._new_issue(rng, project, t0, t1, n)
            self._initial_status(rng, issue)

    def _new_issue(self, rng: random.Random, project: Project, t0: int, t1: int, n: int) -> Issue:
        """Create an issue with n events spread over [t0, t1] (both ends included)."""
        fam = catalog.platform_family(project.platform)
        exc_type, value_tpl = rng.choice(fam.errors)
        idx = len(self.issues)
        project.short_counter += 1
        rnd = rng.random
        span = t1 - t0
        mids = sorted(t0 + int(span * rnd()) for _ in range(max(0, n - 2)))
        times = array("q", [t0] + mids + [t1] if n >= 2 else [t0])
        has_users = rnd() < (0.95 if fam.web or fam.event_platform == "cocoa" else 0.35)
        users = self._draw_users(rng, project, n) if has_users else array("l", [-1]) * n
        level = rng.choices(("error", "warning", "fatal", "info"), weights=(80, 10, 5, 5))[0]
        issue = Issue(
            idx=idx, id=5_100_000_000 + idx * 3 + rng.randrange(3), project=project,
            short_id=f"{project.slug.upper()}-{catalog.base32(project.short_counter)}",
            exc_type=exc_type, exc_value=value_tpl.format(n=rng.randrange(1, 9999)),
            module=rng.choice(fam.modules), function=rng.choice(fam.functions),
            lineno=rng.randint(12, 480), level=level, handled=rnd() < 0.6,
            status="unresolved", substatus="new", status_details={}, status_changed_ms=t0,
            created_ms=t0, first_release=project.release_at(t0), times=times, users=users,
            staging_share=rng.choice((0.0, 0.0, 0.0, 0.1, 0.1, 0.5)),
            rate=n / max(24.0, span / HOUR_MS), assigned=self._draw_assignee(rng),
            bookmarked=rnd() < 0.05, subscribed=rnd() < 0.3, has_seen=rnd() < 0.5,
            activity=[("first_seen", t0, {})],
        )
        if issue.first_release:
            issue.first_release.new_groups += 1
        self.issues.append(issue)
        self.issue_by_id[issue.id] = issue
        return issue

    def _draw_users(self, rng: random.Random, project: Project, n: int) -> array:
        """Heavy-tailed user choice: a few users hit most events."""
        pool, off, rnd = self.scale.users, project.user_offset, rng.random
        return array("l", [(off + int(pool * rnd() ** 3)) % pool for _ in range(n)])

    def _draw_assignee(self, rng: random.Random) -> tuple | None:
        r = rng.random()
        if r < 0.2:
            k = rng.randrange(len(catalog.FIRST_NAMES))
            return ("user", str(100 + k), catalog.FIRST_NAMES[k])
        if r < 0.3:
            k = rng.randrange(len(catalog.TEAMS))
            return ("team", str(10 + k), catalog.TEAMS[k][0])
        return None

    def _initial_status(self, rng: random.Random, issue: Issue) -> None:
        """Give a freshly generated historical issue a plausible status and history."""
        last, now = issue.times[-1], self.anchor_ms
        recent = last > now - ACTIVE_MS
        young = issue.created_ms > now - AUTO_ONGOING_MS
        r = rng.random()
        if not young and r < 0.15 and self._make_regressed(rng, issue):
            return
        if recent and not young and r < 0.2:
            self._set_status(issue, "unresolved", "escalating", last, "set_escalating", {})
        elif (recent and r > 0.92) or (not recent and 0.5 <= r < 0.65):
            sub = rng.choice(("archived_forever", "archived_until_escalating", "archived_until_condition_met"))
            details = {"ignoreCount": 100} if sub == "archived_until_condition_met" else {}
            self._set_status(issue, "ignored", sub, min(now - 1, last + HOUR_MS), "set_ignored", details)
        elif not recent and r < 0.5:
            self._resolve(issue, min(now - 1, last + int(rng.random() * DAY_MS)))
        else:
            self._set_status(issue, "unresolved", "new" if young else "ongoing", issue.created_ms, None, {})

    def _make_regressed(self, rng: random.Random, issue: Issue) -> bool:
        """Resolve in release N (its events stop), regress in a later release (events resume)."""
        times, releases = issue.times, issue.project.releases
        fixes = [k for k, r in enumerate(releases[:-1]) if times[0] < r.created_ms < times[-1]]
        if not fixes:
            return False
        k = rng.choice(fixes)
        lo = bisect_left(times, releases[k].created_ms)
        hi = bisect_left(times, releases[k + 1].created_ms)
        if hi == len(times):
            return False
        issue.times = times[:lo] + times[hi:]
        issue.users = issue.users[:lo] + issue.users[hi:]
        self._resolve(issue, releases[k].created_ms)
        t_regress = issue.times[lo]
        rel = issue.project.release_at(t_regress)
        self._set_status(issue, "unresolved", "regressed", t_regress, "set_regression", {"version": rel.version})
        if t_regress < self.anchor_ms - AUTO_ONGOING_MS:
            self._set_status(issue, "unresolved", "ongoing", t_regress + AUTO_ONGOING_MS, "auto_set_ongoing", {})
        return True

    def _resolve(self, issue: Issue, t: int) -> None:
        rel = issue.project.release_at(t)
        details = {"inRelease": rel.version} if rel else {}
        self._set_status(issue, "resolved", None, t, "set_resolved_in_release" if rel else "set_resolved", details)

    @staticmethod
    def _set_status(issue: Issue, status: str, substatus: str | None, t: int, activity: str | None,
                    details: dict) -> None:
        issue.status, issue.substatus, issue.status_changed_ms = status, substatus, t
        issue.status_details = details if status != "unresolved" else {}
        if activity:
            issue.activity.append((activity, t, details))

    # ----- derived per-event attributes -------------------------------------------------------
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

    # ----- aggregates ------------------------------------------------------------------------
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

    # ----- truth ------------------------------------------------------------------------------
    def truth(self) -> dict:
        with self.lock:
            issues, by_status, events = {}, {}, 0
            for issue in self.served_issues():
                a = self.agg(issue)
                events += a.count
                by_status[issue.status] = by_status.get(issue.status, 0) + 1
                issues[str(issue.id)] = {
                    "status": issue.status, "substatus": issue.substatus, "count": a.count,
                    "userCount": a.user_count, "firstSeen": iso(a.first_ms), "lastSeen": iso(a.last_ms),
                    "project_id": str(issue.project.id),
                }
            from .aggregates import truth_extras  # it builds on this module

            extras, extra_counts = truth_extras(self)
            return {
                "now": iso(self.now_ms),
                "organization": self.org_slug,
                "counts": {
                    "projects": len(self.projects), "issues": len(issues),
                    "issues_by_status": dict(sorted(by_status.items())), "events": events,
                    "releases": len(self.releases), **extra_counts,
                },
                "projects": [str(p.id) for p in self.projects],
                "issues": issues,
                "releases": [r.version for r in self.releases],
                **extras,
                "merged_issues": {str(i.id): str(self._survivor(i).id) for i in self.merged},
            }

    @staticmethod
    def _survivor(issue: Issue) -> Issue:
        while issue.merged_into is not None:
            issue = issue.merged_into
        return issue

    def event_ids(self) -> list[str]:
        with self.lock:
            out = []
            for issue in self.served_issues():
                lo = self.agg(issue).lo
                out.extend(self.event_id(issue, s) for s in range(lo, len(issue.times)))
            return out

    def truth_event_rows(self) -> dict:
        """Every served event's facts, straight from the data model (not from rendered JSON), so
        reports on a mirror can be checked against an independent computation."""
        columns = ["event_id", "issue_id", "project_id", "date_created", "release", "environment", "level", "user_id"]
        rows = []
        with self.lock:
            for issue in self.served_issues():
                p = issue.project
                for seq in range(self.agg(issue).lo, len(issue.times)):
                    t = issue.times[seq]
                    rel = p.release_at(t)
                    u = issue.users[seq]
                    rows.append([self.event_id(issue, seq), str(issue.id), str(p.id), iso(t),
                                 rel.version if rel else None, self.environment(issue, seq),
                                 self.event_level(issue, seq),
                                 str(10_000 + u) if u >= 0 else None])
        return {"columns": columns, "rows": rows}

    def truth_history(self) -> dict:
        """Each served issue's status changes as the world made them: (type, time, details)."""
        with self.lock:
            return {str(i.id): [{"type": kind, "at": iso(t), "details": details} for kind, t, details in i.activity]
                    for i in self.served_issues()}

    # ----- advance ----------------------------------------------------------------------------
    def advance(self, hours: float) -> dict:
        """Move the clock forward and let the organization live through those hours."""
        if not hours > 0:
            raise ValueError("hours must be a positive number")
        with self.lock:
            step = self.step
            deploys = sum(r.deploy_count for r in self.releases)
            rng = random.Random(self.seed * 1_000_003 + step)
            self.step += 1
            old, new = self.now_ms, self.now_ms + int(hours * HOUR_MS)
            new_releases = self._advance_releases(rng, old, new, hours)
            added: list[tuple[Issue, int]] = []  # (issue, first new seq)
            changes = self._advance_existing(rng, old, new, hours, added)
            new_issues = self._advance_new_issues(rng, old, new, hours, added)
            touched = {issue.idx for issue, _ in added}
            self.now_ms = new
            quiet = self._auto_transitions(touched) + self._manual_changes(rng, touched, hours)
            self._index_events(added)
            summary = {
                "now": iso(self.now_ms),
                "new_events": sum(len(i.times) - s for i, s in added),
                "new_issues": new_issues, "new_releases": new_releases,
                "status_changes": changes + quiet, "status_changes_without_event": quiet,
            }
            # A separate RNG, so the changes above are exactly what they were before these existed.
            summary.update(self._advance_org(random.Random(f"org:{self.seed}:{step}"), old, new, hours, touched))
            summary["new_deploys"] = sum(r.deploy_count for r in self.releases) - deploys  # new releases' too
            self.cache.clear()
            return summary

    def _advance_org(self, rng: random.Random, old: int, new: int, hours: float, touched: set[int]) -> dict:
        """Changes no event shows: deletions, reassignments, archived releases, deploys, members."""
        deleted, deleted_events = self._delete_issues(rng, hours, touched) if self.deletions else (0, 0)
        # Its own RNG, so the draws below are the same with merges on or off.
        merged = self._merge_some(random.Random(f"merge:{self.seed}:{self.step}"), hours) if self.merges else 0
        return {
            "deleted_issues": deleted, "deleted_events": deleted_events, "merged_issues": merged,
            "assignment_changes": self._reassign(rng, hours, touched),
            "archived_releases": self._archive_releases(rng, hours),
            "new_deploys": self._add_deploys(rng, old, new, hours),
            "new_members": self._accept_invite(rng, hours),
        }

    @staticmethod
    def _how_many(n: int, per_day: float, hours: float, cap: int) -> int:
        """At least one (when there are candidates), about `per_day` of them a day, at most n // cap."""
        return max(1, min(n // cap, round(n * per_day * hours / 24))) if n else 0

    def _delete_issues(self, rng: random.Random, hours: float, touched: set[int]) -> tuple[int, int]:
        """Delete quiet issues: they and their events vanish from every endpoint and from truth."""
        candidates = [i for i in self.served_issues() if i.idx not in touched]
        chosen = rng.sample(candidates, self._how_many(len(candidates), 0.005, hours, 10))
        events = 0
        for issue in sorted(chosen, key=lambda i: i.idx):
            events += self.agg(issue).count
        self.delete_issues(chosen)
        return len(chosen), events

    def delete_issues(self, chosen: list[Issue]) -> None:
        """They and their events vanish from every endpoint and from truth."""
        for issue in sorted(chosen, key=lambda i: i.idx):
            issue.deleted_ms = self.now_ms
            self.deleted.append(issue)
        gone = {i.idx for i in chosen}
        for p in {i.project.idx: i.project for i in chosen}.values():
            keep = [(t, r) for t, r in zip(p.ev_times, p.ev_refs) if (r >> SEQ_BITS) not in gone]
            p.ev_times = array("q", [t for t, _ in keep])
            p.ev_refs = array("q", [r for _, r in keep])
        self.edits += 1  # cached search results and aggregates no longer hold
        self.cache.clear()

    def _merge_some(self, rng: random.Random, hours: float) -> int:
        """Merge a few issues into another issue of their project, as a user does in Sentry."""
        by_project: dict[int, list[Issue]] = {}
        for issue in self.served_issues():
            by_project.setdefault(issue.project.idx, []).append(issue)
        groups = [g for g in by_project.values() if len(g) >= 2]
        n = self._how_many(sum(len(g) for g in groups), 0.004, hours, 20)
        merged = 0
        for _ in range(n):
            groups = [g for g in groups if len(g) >= 2]
            if not groups:
                break
            group = rng.choice(groups)
            chosen = rng.sample(group, min(len(group), rng.choice((2, 2, 3))))
            for issue in chosen[1:]:
                group.remove(issue)
            merged += self.merge_issues(chosen[0], chosen[1:])
        return merged

    def merge_issues(self, primary: Issue, others: list[Issue]) -> int:
        """Merge `others` into `primary`, as Sentry does: their events move to the primary (ids
        unchanged), whose count, users, firstSeen and lastSeen then cover them all; the others'
        ids answer 404 and leave every list and the truth. Returns how many were merged."""
        with self.lock:
            others = [o for o in others if o is not primary]
            for issue in [primary, *others]:
                if issue.deleted_ms is not None:
                    raise ValueError(f"issue {issue.id} is deleted or merged already")
                if issue.project is not primary.project:
                    raise ValueError("only issues of one project can be merged")
            if not others:
                return 0
            rows = sorted((t, self._origin_ref(issue, s), issue.users[s])
                          for issue in [primary, *others] for s, t in enumerate(issue.times))
            primary.times = array("q", [r[0] for r in rows])
            primary.origin = array("q", [r[1] for r in rows])
            primary.users = array("l", [r[2] for r in rows])
            primary.rate = (primary.rate or 0) + sum(o.rate or 0 for o in others)
            primary._agg_key = primary._origin_pos = None
            for issue in others:
                issue.deleted_ms, issue.merged_into = self.now_ms, primary
                self.merged.append(issue)
            self._reindex(primary.project, {i.idx for i in [primary, *others]}, primary)
            self.edits += 1
            self.cache.clear()
            return len(others)

    def _reindex(self, p: Project, dropped: set[int], primary: Issue) -> None:
        """Replace the project index entries of the merged issues with the primary's new ones."""
        keys = [(t << INDEX_SHIFT) | r for t, r in zip(p.ev_times, p.ev_refs) if (r >> SEQ_BITS) not in dropped]
        base = primary.idx << SEQ_BITS
        keys.extend((t << INDEX_SHIFT) | (base + s) for s, t in enumerate(primary.times))
        keys.sort()
        mask = (1 << INDEX_SHIFT) - 1
        p.ev_times = array("q", [k >> INDEX_SHIFT for k in keys])
        p.ev_refs = array("q", [k & mask for k in keys])

    # ----- changes made through the API (the issue PUT routes) -------------------------------------
    def set_issue_status(self, issue: Issue, status: str, details: dict, substatus: str | None = None) -> None:
        """A status change a user made: recorded in the issue's activity like the world's own."""
        t = self.now_ms
        if status == "resolved":
            if details.get("inNextRelease"):
                self._set_status(issue, "resolved", None, t, "set_resolved_in_release", {"inNextRelease": True})
            elif details.get("inRelease"):
                self._set_status(issue, "resolved", None, t, "set_resolved_in_release",
                                 {"inRelease": details["inRelease"]})
            else:
                self._set_status(issue, "resolved", None, t, "set_resolved", {})
        elif status == "ignored":
            kept = {k: v for k, v in details.items() if k in (
                "ignoreCount", "ignoreWindow", "ignoreUserCount", "ignoreUserWindow") and v}
            if details.get("ignoreDuration"):
                kept["ignoreUntil"] = iso(t + int(details["ignoreDuration"]) * 60_000)
            sub = substatus or ("archived_until_condition_met" if kept else "archived_forever")
            self._set_status(issue, "ignored", sub, t, "set_ignored", kept)
        else:
            self._set_status(issue, "unresolved", substatus or "ongoing", t, "set_unresolved", {})
        self.edits += 1

    def assign(self, issue: Issue, actor: tuple | None) -> None:
        issue.assigned = actor
        issue.activity.append(("assigned" if actor else "unassigned", self.now_ms, {}))
        self.edits += 1

    def _reassign(self, rng: random.Random, hours: float, touched: set[int]) -> int:
        """Assign, reassign or unassign quiet issues (no new event shows the change)."""
        candidates = [i for i in self.served_issues() if i.idx not in touched]
        users = [m for m in self.members if not m.pending]
        chosen = rng.sample(candidates, self._how_many(len(candidates), 0.02, hours, 4))
        for issue in chosen:
            r = rng.random()
            if r < 0.6:
                m = rng.choice(users)
                target = ("user", m.user_id, m.key)
            elif r < 0.85:
                t = rng.choice(self.teams)
                target = ("team", t.id, t.slug)
            else:
                target = None
            if target == issue.assigned:
                target = None if target else ("team", self.teams[0].id, self.teams[0].slug)
            issue.assigned = target
            if target is None:
                issue.activity.append(("unassigned", self.now_ms - 1, {}))
            else:
                email = f"{target[2]}@acme.example" if target[0] == "user" else None
                issue.activity.append(("assigned", self.now_ms - 1,
                                       {"assignee": target[1], "assigneeEmail": email, "assigneeType": target[0]}))
        return len(chosen)

    def _archive_releases(self, rng: random.Random, hours: float) -> int:
        """Archive some open releases older than two weeks (never a project's latest)."""
        candidates = [r for r in self.releases if r.status == "open" and r is not r.project.releases[-1]
                      and r.created_ms < self.now_ms - 14 * DAY_MS]
        chosen = rng.sample(candidates, self._how_many(len(candidates), 0.03, hours, 3))
        for r in chosen:
            r.status = "archived"
        return len(chosen)

    def _add_deploys(self, rng: random.Random, old: int, new: int, hours: float) -> int:
        """Deploy recent releases (again) inside the step; at least the newest one gets a deploy."""
        recent = [r for r in self.releases if r.created_ms >= new - 7 * DAY_MS and r.deploy_count < 9]
        if not recent:
            return 0
        chosen = [r for r in recent if rng.random() < min(1.0, 0.3 * hours / 24)]
        for r in chosen or [max(recent, key=lambda r: (r.created_ms, r.id))]:
            lo = max(old, r.created_ms)
            finished = lo + int(rng.random() * (new - lo))
            env = rng.choice(("production", "production", "staging"))
            r.deploy_count += 1
            r.deploys.append(Deploy(str(r.id * 10 + r.deploy_count), env, finished - rng.randint(2, 15) * 60_000,
                                    finished, f"{r.version} to {env}", None))
        return len(chosen) or 1

    def _accept_invite(self, rng: random.Random, hours: float) -> int:
        """About once a week the pending invite is accepted and a new one sent."""
        if rng.random() >= min(1.0, hours / (24 * 7)):
            return 0
        for m in self.members:
            if m.pending:
                m.user_id = str(100 + (int(m.id) - 800_100) // 7)
        self.members.append(self._invite(self.invites, self.now_ms - 1))
        self.invites += 1
        return 1

    def _advance_releases(self, rng: random.Random, old: int, new: int, hours: float) -> int:
        made = []
        for p in self.projects:
            for _ in range(poisson(rng, hours / (24 * 3.75))):
                made.append((old + int(rng.random() * (new - old)), p))
        made.sort(key=lambda x: (x[0], x[1].idx))
        for t, p in made:
            self._new_release(rng, p, t, self._bump(rng, p.releases[-1].semver))
        return len(made)

    def _append_events(self, rng: random.Random, issue: Issue, old: int, new: int, k: int) -> int:
        """Append k events in [old, new) to an issue; returns the first new seq."""
        first = len(issue.times)
        issue.times.extend(sorted(old + int(rng.random() * (new - old)) for _ in range(k)))
        if issue.users[0] >= 0:
            issue.users.extend(self._draw_users(rng, issue.project, k))
        else:
            issue.users.extend(array("l", [-1]) * k)
        if issue.origin is not None:  # born here: ids from seqs no moved event came with
            issue.origin.extend((issue.idx << SEQ_BITS) | s for s in range(first, first + k))
        return first

    def _advance_existing(self, rng, old, new, hours, added) -> int:
        """New events on existing issues; regressions and escalations they cause."""
        changes = 0
        for issue in list(self.issues):
            if issue.deleted_ms is not None:
                continue
            active = issue.times[-1] > old - ACTIVE_MS and issue.status != "resolved"
            lam = issue.rate * hours * 0.5 if active else 0.02 * hours / 24
            k = poisson(rng, lam)
            if k == 0:
                continue
            first = self._append_events(rng, issue, old, new, k)
            added.append((issue, first))
            t = issue.times[first]
            if issue.status == "resolved":
                rel = issue.project.release_at(t)
                self._set_status(issue, "unresolved", "regressed", t, "set_regression",
                                 {"version": rel.version} if rel else {})
                changes += 1
            elif issue.substatus == "archived_until_escalating" and k >= 5:
                self._set_status(issue, "unresolved", "escalating", t, "set_escalating", {})
                changes += 1
        return changes

    def _advance_new_issues(self, rng, old, new, hours, added) -> int:
        n = poisson(rng, self.scale.issues / (60 * 24) * 0.8 * hours)
        weights = [1.0 / (i + 1) ** 0.6 for i in range(len(self.projects))]
        starts = sorted(old + int(rng.random() * (new - old)) for _ in range(n))
        for t0 in starts:
            project = rng.choices(self.projects, weights=weights)[0]
            k = min(500, int(rng.paretovariate(1.3)))
            t1 = t0 if k == 1 else t0 + int(rng.random() * (new - 1 - t0))
            issue = self._new_issue(rng, project, t0, t1, k)
            issue.rate = k / max(24.0, hours)
            added.append((issue, 0))
        return n

    def _auto_transitions(self, touched: set[int]) -> int:
        """new/regressed/escalating -> ongoing after 7 days, as Sentry's scheduled task does."""
        changed = 0
        for issue in self.served_issues():
            if (issue.substatus in ("new", "regressed", "escalating") and issue.idx not in touched
                    and issue.status_changed_ms < self.now_ms - AUTO_ONGOING_MS):
                self._set_status(issue, "unresolved", "ongoing", self.now_ms, "auto_set_ongoing", {})
                changed += 1
        return changed

    def _manual_changes(self, rng: random.Random, touched: set[int], hours: float) -> int:
        """Resolve and ignore some quiet unresolved issues: status changes with no new event."""
        candidates = [i for i in self.served_issues() if i.status == "unresolved" and i.idx not in touched]
        if not candidates:
            return 0
        n_resolve = max(1, min(len(candidates) // 2, round(len(candidates) * 0.03 * hours / 24)))
        n_ignore = min(len(candidates) - n_resolve, round(len(candidates) * 0.01 * hours / 24))
        chosen = rng.sample(candidates, n_resolve + n_ignore)
        for issue in chosen[:n_resolve]:
            self._resolve(issue, self.now_ms - 1)
        for issue in chosen[n_resolve:]:
            self._set_status(issue, "ignored", "archived_until_escalating", self.now_ms - 1, "set_ignored", {})
        return len(chosen)

    def _index_events(self, added: list[tuple[Issue, int]]) -> None:
        """Append events (issue, from seq on) to the project indexes in time order.

        Correct as an append because every batch is later than what is already indexed.
        Sort keys pack (time, issue, seq) into one int so a plain sort orders them.
        """
        per_project: dict[int, list[int]] = {}
        for issue, first in added:
            base = issue.idx << SEQ_BITS
            bucket = per_project.setdefault(issue.project.idx, [])
            bucket.extend((t << INDEX_SHIFT) | (base + s) for s, t in enumerate(issue.times[first:], first))
        mask = (1 << INDEX_SHIFT) - 1
        for pidx in sorted(per_project):
            keys = sorted(per_project[pidx])
            p = self.projects[pidx]
            p.ev_times.extend(k >> INDEX_SHIFT for k in keys)
            p.ev_refs.extend(k & mask for k in keys)
