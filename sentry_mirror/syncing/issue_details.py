"""Per-issue details read for the issues that changed: their grouping hashes, and for projects whose
events the store does not hold whole (`events = "sample"` or `"none"`), Sentry's tag breakdown.

Which issues: those whose count or lastSeen moved since their details were last read (a mark per
issue and detail in `_sync_state`, as the event walks keep theirs), so a first sync reads every
issue, a sync with nothing new reads none, and an issue that grew by a merge (found by the
known-issue refresh, not by the issue walk) is read too. An issue's rows, the removal of what it no
longer lists, and its mark go into the buffer together, after the issue was read whole: they commit
in one transaction, and a sync killed half-way reads the issues it did not settle next time.

A server without a route (GlitchTip has no `/issues/{id}/tags/{key}/`) answers a web page; that is
remembered in the source's capabilities and the route is not asked again (`--full` asks again).
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ApiError, NotFoundError
from ..fetching import endpoints as ep
from .walker import RETENTION, Walker, route_missing

log = logging.getLogger(__name__)


class _Lacking(Exception):
    """The server does not serve this detail's route."""


class IssueDetails:
    """The `issue_details` stream of one sync, on the walker's gear (store, buffer, client, clock)."""

    def __init__(self, walker: Walker):
        self.walker = walker
        self.store, self.client, self.buffer = walker.store, walker.client, walker.buffer
        self.options, self.source, self.result = walker.options, walker.source, walker.result
        self._tag_route_answered = False  # until then a web page is not retried (a missing route)

    def run(self) -> None:
        self.buffer.update("issue_hashes_deleted")  # merged or deleted issues hold no hash
        caps = self.walker.capabilities()
        serves = {name: self.options.full or caps.get(name, True) for name in (ep.ISSUE_HASHES.name, ep.ISSUE_TAG.name)}
        serves[ep.ISSUE_HASHES.name] &= self.options.issue_hashes  # the source's setting: none read
        if not any(serves.values()):
            return
        rows = self.store.select("issue_details_to_read", source=self.source, full=self.options.full,
                                 since=self.walker.server_now() - RETENTION)
        due = [(i, slug, mark, h, t and self._sampled(slug)) for i, slug, mark, h, t in rows if self.options.covers(slug)]
        due = [row for row in due if row[3] or row[4]]
        if due:
            self.walker.progress(f"hashes and tags of {len(due)} issues…")
        answered: set[str] = set()
        for issue_id, _, mark, hashes_due, tags_due in due:
            for name, wanted, read in ((ep.ISSUE_HASHES.name, hashes_due, self._hashes),
                                       (ep.ISSUE_TAG.name, tags_due, self._tags)):
                if not wanted or not serves[name]:
                    continue
                self.walker.check_stop()
                try:
                    read(issue_id, mark)
                    if caps.get(name) is False and name not in answered:  # --full found the route back
                        answered.add(name)
                        self._forget_lacking(name)
                except _Lacking as exc:
                    serves[name] = False
                    self._remember_lacking(name, str(exc))
            if not any(serves.values()):
                break
            self.buffer.maybe_flush()
        self.buffer.flush()

    def _sampled(self, slug: str | None) -> bool:
        """The store does not hold every event of this project's issues: their tags come from Sentry."""
        return self.options.project_events.get(slug or "", self.options.events) != "all"

    def _hashes(self, issue_id: str, mark: str) -> None:
        """One issue's hashes, read whole, then stored with its mark; a JSON 404 (the issue gone)
        leaves it for the known-issue refresh to mark deleted."""
        items: list[dict] = []
        try:
            for page in self.walker.route_pages(ep.ISSUE_HASHES, dict(ep.ISSUE_HASHES.params), None, None,
                                                issue=issue_id):
                items.extend(i for i in page.items if isinstance(i, dict))
        except ApiError as exc:
            self._settle_error(exc)
            return
        context = {"issue_id": issue_id}
        self.buffer.add(ep.ISSUE_HASHES.entity, items, context)
        self.result.add(ep.ISSUE_HASHES.entity, self.walker.count_new(ep.ISSUE_HASHES.entity, items, context))
        self.buffer.update("issue_hashes_kept", issue_id=issue_id, keep=sorted(str(i.get("id")) for i in items))
        self._mark(ep.ISSUE_HASHES.name, issue_id, mark)

    def _tags(self, issue_id: str, mark: str) -> None:
        """One issue's breakdown of each key the issue page shows; a key the issue has no value of
        is a JSON 404 (none: what was stored of it goes)."""
        found: list[tuple[dict, list[dict]]] = []
        for key in ep.ISSUE_TAG_KEYS:
            path = ep.ISSUE_TAG.path.format(org=self.walker.org, issue=issue_id, key=key)
            try:
                data, _ = self.client.get(path, probe=None if self._tag_route_answered else 0)
                self._tag_route_answered = True
            except NotFoundError as exc:
                if exc.json_body:
                    self._tag_route_answered = True
                    found.append(({"issue_id": issue_id, "key": key}, []))
                    continue
                self._settle_error(exc)
                return
            except ApiError as exc:
                self._settle_error(exc)
                return
            found.append(_breakdown(issue_id, key, data))
        for context, values in found:
            self.buffer.add(ep.ISSUE_TAG.entity, values, context)
            self.result.add(ep.ISSUE_TAG.entity, self.walker.count_new(ep.ISSUE_TAG.entity, values, context))
            self.buffer.update("issue_tag_values_kept", issue_id=issue_id, key=context["key"],
                               keep=sorted(str(v.get("value")) for v in values))
        self._mark(ep.ISSUE_TAG.name, issue_id, mark)

    def _settle_error(self, exc: ApiError) -> None:
        """A missing route stops this detail (remembered); a JSON 404 skips this issue (gone); the
        rest (403, an outage past its retries) fail the stream, the settled issues kept."""
        if route_missing(exc) or (exc.status == 404 and not exc.json_body):
            raise _Lacking(f"{exc.status or 'no answer'}: {exc.message[:80]}")
        if exc.status == 404:
            log.info("%s is gone (%s); the known-issue refresh marks it", exc.url, exc.message[:80])
            return
        raise exc

    def _mark(self, stream: str, issue_id: str, mark: str) -> None:
        self.buffer.state("state", stream, issue_id, watermark=None, cursor=None, params=None, extra={"mark": mark})

    def _forget_lacking(self, name: str) -> None:
        """The route answered (asked again by --full): the next syncs ask it again too."""
        caps = self.walker.capabilities()
        caps.pop(name, None)
        self.walker.remember(caps)

    def _remember_lacking(self, name: str, why: str) -> None:
        """Kept in the capabilities: the route is not asked again at the next syncs."""
        caps = self.walker.capabilities()
        caps[name] = False
        self.walker.remember(caps)
        note = f"{name}: not available from this server ({why}); not asked again (sync --full asks)"
        log.info(note)
        self.result.notes.append(note)


def _breakdown(issue_id: str, key: str, data: Any) -> tuple[dict, list[dict]]:
    """(context, top values) of one `/issues/{id}/tags/{key}/` answer."""
    if not isinstance(data, dict):
        raise ApiError(200, f"the tag breakdown of issue {issue_id} was not an object")
    context = {"issue_id": issue_id, "key": key, "key_events": data.get("totalValues"),
               "key_values": data.get("uniqueValues")}
    return context, [v for v in data.get("topValues") or [] if isinstance(v, dict) and v.get("value") is not None]
