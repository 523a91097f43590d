"""Changes to issues as a user makes them through the API (status, assignee, deletion, merge);
advance() deletes and merges through the same methods."""

from __future__ import annotations

from array import array

from .model import INDEX_SHIFT, SEQ_BITS, Issue, Project, iso
from .served import Served


class Mutations(Served):
    """Each change bumps `edits` so cached search results and aggregates are not reused."""

    def set_issue_status(self, issue: Issue, status: str, details: dict, substatus: str | None = None) -> None:
        """A status change a user made: recorded in the issue's activity like the world's own."""
        t = self.now_ms
        if status == "resolved":
            if details.get("inNextRelease"):
                issue.set_status("resolved", None, t, "set_resolved_in_release", {"inNextRelease": True})
            elif details.get("inRelease"):
                issue.set_status("resolved", None, t, "set_resolved_in_release",
                                 {"inRelease": details["inRelease"]})
            elif isinstance(details.get("inCommit"), dict):
                commit = details["inCommit"]
                issue.set_status("resolved", None, t, "set_resolved_in_commit",
                                 {"inCommit": {"commit": commit.get("commit"), "repository": commit.get("repository")}})
            else:
                issue.set_status("resolved", None, t, "set_resolved", {})
        elif status == "ignored":
            kept = {k: v for k, v in details.items() if k in (
                "ignoreCount", "ignoreWindow", "ignoreUserCount", "ignoreUserWindow") and v}
            if details.get("ignoreDuration"):
                kept["ignoreUntil"] = iso(t + int(details["ignoreDuration"]) * 60_000)
            sub = substatus or ("archived_until_condition_met" if kept else "archived_forever")
            issue.set_status("ignored", sub, t, "set_ignored", kept)
        else:
            issue.set_status("unresolved", substatus or "ongoing", t, "set_unresolved", {})
        self.edits += 1

    def assign(self, issue: Issue, actor: tuple | None) -> None:
        issue.assigned = actor
        issue.activity.append(("assigned" if actor else "unassigned", self.now_ms, {}))
        self.edits += 1

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
