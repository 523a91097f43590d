"""Generation of a world from its seed: projects, releases, issues with their history, teams and
members. Every draw comes from one seeded RNG in a fixed order, so a seed always makes the same
world; advance() reuses the pieces that make new releases, issues and invites."""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left

from . import catalog
from .model import (
    ACTIVE_MS,
    AUTO_ONGOING_MS,
    DAY_MS,
    HISTORY_MS,
    HOUR_MS,
    INDEX_SHIFT,
    SEQ_BITS,
    Deploy,
    Issue,
    Member,
    Project,
    Release,
    Team,
)
from .served import Served


def zipf_counts(rng: random.Random, n: int, total: int, s: float = 1.2) -> list[int]:
    """Heavy-tailed per-issue event counts summing to roughly `total`, in random rank order."""
    norm = sum(r ** -s for r in range(1, n + 1))
    top = total / norm
    counts = [max(1, round(top * r ** -s * rng.lognormvariate(0, 0.35))) for r in range(1, n + 1)]
    rng.shuffle(counts)
    return counts


class Generation(Served):
    """Builds the world's history up to its anchor time."""

    def _generate(self, rng: random.Random) -> None:
        """The organization, its projects, releases and issues (in this order of draws), then the
        teams and members, which draw nothing."""
        self.org_id = str(4_500_000 + rng.randrange(100_000) + self.index * 100_000)
        self.org_slug = self.slug
        self.org_name = "Acme Corp" if not self.index else f"{self.slug.title()} Inc"
        self.org_created_ms = self.anchor_ms - 500 * DAY_MS
        self.projects = self._build_projects(rng)
        self.releases = []
        self._build_releases(rng)
        self.issues = []
        self.issue_by_id = {}
        self._build_issues(rng)
        self._index_events([(issue, 0) for issue in self.issues])
        self.teams = self._build_teams()
        self.members = self._build_members()
        self.invites = 1  # invites sent so far: the next one is the `invites`-th

    def _build_projects(self, rng: random.Random) -> list[Project]:
        projects = []
        for i, (slug, name, platform, package, team) in enumerate(catalog.projects(self.scale.projects)):
            projects.append(Project(
                idx=i, id=4_500_100 + i * 13 + rng.randrange(10), slug=slug, name=name,
                platform=platform, package=package, team=team,
                created_ms=self.anchor_ms - max(400 - 10 * i, 160 - i) * DAY_MS,  # copies: still in the past
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
            idx=idx, id=5_100_000_000 + self.index * 100_000_000 + idx * 3 + rng.randrange(3), project=project,
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
            issue.set_status("unresolved", "escalating", last, "set_escalating", {})
        elif (recent and r > 0.92) or (not recent and 0.5 <= r < 0.65):
            sub = rng.choice(("archived_forever", "archived_until_escalating", "archived_until_condition_met"))
            details = {"ignoreCount": 100} if sub == "archived_until_condition_met" else {}
            issue.set_status("ignored", sub, min(now - 1, last + HOUR_MS), "set_ignored", details)
        elif not recent and r < 0.5:
            issue.resolve(min(now - 1, last + int(rng.random() * DAY_MS)))
        else:
            issue.set_status("unresolved", "new" if young else "ongoing", issue.created_ms, None, {})

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
        issue.resolve(releases[k].created_ms)
        t_regress = issue.times[lo]
        rel = issue.project.release_at(t_regress)
        issue.set_status("unresolved", "regressed", t_regress, "set_regression", {"version": rel.version})
        if t_regress < self.anchor_ms - AUTO_ONGOING_MS:
            issue.set_status("unresolved", "ongoing", t_regress + AUTO_ONGOING_MS, "auto_set_ongoing", {})
        return True

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
