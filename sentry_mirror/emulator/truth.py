"""Ground truth: what a faithful mirror of the world must hold, computed from the data model (not
from rendered JSON) so tests can check a mirror against an independent computation."""

from __future__ import annotations

from .aggregates import ENVIRONMENTS, summary
from .model import Issue, iso
from .render import assignee, event_grouping_hash
from .served import Served


class Truth(Served):
    """truth(), the served event ids and rows, and each issue's status history."""

    def truth(self) -> dict:
        """Served issues with their status and aggregates, counts, and the org's other entities."""
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

    def truth_hashes(self) -> dict:
        """Each served issue's grouping hashes: those its served events were grouped by, from the
        model (the issue each event was born in), so a merge shows as hashes that moved."""
        with self.lock:
            return {str(i.id): sorted({event_grouping_hash(self, i, s) for s in range(self.agg(i).lo, len(i.times))})
                    for i in self.served_issues()}

    def truth_history(self) -> dict:
        """Each served issue's status changes as the world made them: (type, time, details)."""
        with self.lock:
            return {str(i.id): [{"type": kind, "at": iso(t), "details": details} for kind, t, details in i.activity]
                    for i in self.served_issues()}


def truth_extras(world: Truth) -> tuple[dict, dict]:
    """The truth keys about teams, members, deploys, stats, tags and users, and their counts."""
    served = world.served_issues()
    deploys = {r.version: [d.id for d in r.deploys] for r in world.releases if r.deploys}
    by_status = {"open": [r.version for r in world.releases if r.status == "open"],
                 "archived": [r.version for r in world.releases if r.status == "archived"]}
    sums = {str(p.id): summary(world, p) for p in world.projects}
    tag_values = {pid: {k: {v: e[0] for v, e in vals.items()} for k, vals in s.tags.items()}
                  for pid, s in sums.items()}
    users = {pid: sorted(f"id:{10_000 + u}" for u in s.users) for pid, s in sums.items()}
    extras = {
        "teams": [t.id for t in world.teams],
        "members": [m.id for m in world.members],
        "environments": list(ENVIRONMENTS),
        "deploys": deploys,
        "releases_by_status": by_status,
        "issues_assigned": {str(i.id): assignee(i) for i in served},
        "deleted_issues": [str(i.id) for i in world.deleted],
        "project_stats": {pid: {"accepted_total_90d": len(s.received)} for pid, s in sums.items()},
        "tag_values": tag_values,
        "users": users,
    }
    counts = {
        "teams": len(world.teams), "members": len(world.members), "environments": len(ENVIRONMENTS),
        "deploys": sum(len(v) for v in deploys.values()),
        "releases_open": len(by_status["open"]), "releases_archived": len(by_status["archived"]),
        "issues_assigned": sum(1 for i in served if i.assigned is not None),
        "deleted_issues": len(world.deleted),
        "accepted_total_90d": sum(len(s.received) for s in sums.values()),
        "tag_values": sum(len(vals) for t in tag_values.values() for vals in t.values()),
        "users": sum(len(v) for v in users.values()),
    }
    return extras, counts
