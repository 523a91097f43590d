"""The organization's life while the clock advances: new releases, events and issues, regressions,
status changes, and (on their own RNGs) deletions, merges, reassignments, archived releases,
deploys and accepted invites. Each step's RNGs are seeded from the world's seed and step number."""

from __future__ import annotations

import math
import random
from array import array

from .generate import Generation
from .model import ACTIVE_MS, AUTO_ONGOING_MS, DAY_MS, HOUR_MS, SEQ_BITS, Deploy, Issue, iso
from .mutations import Mutations


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


class Advance(Generation, Mutations):
    """advance(hours): move the clock and let the organization live through those hours."""

    deletions: bool  # whether advance() deletes issues
    merges: bool  # whether advance() merges issues

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
            self.last_added = added  # the service hooks' deliveries (emulator/hooks.py)
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
                issue.set_status("unresolved", "regressed", t, "set_regression",
                                 {"version": rel.version} if rel else {})
                changes += 1
            elif issue.substatus == "archived_until_escalating" and k >= 5:
                issue.set_status("unresolved", "escalating", t, "set_escalating", {})
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
                issue.set_status("unresolved", "ongoing", self.now_ms, "auto_set_ongoing", {})
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
            issue.resolve(self.now_ms - 1)
        for issue in chosen[n_resolve:]:
            issue.set_status("ignored", "archived_until_escalating", self.now_ms - 1, "set_ignored", {})
        return len(chosen)
