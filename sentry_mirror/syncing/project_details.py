"""The gear of the per-project details (syncer.sync_project_details): whole lists read as
snapshots and handed back, hooks without their secrets, which tag keys to read, and the reads a
server or project refuses for good, remembered so that they cost no request at every sync.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..fetching import endpoints as ep
from ..storage.store import PRUNE_KEYS
from .walker import Walker

log = logging.getLogger(__name__)

UNAVAILABLE = "details_unavailable"  # the capability: read (or read:project id) -> why it is not asked
SECRET_FIELDS = ("secret",)  # Sentry answers each service hook with the secret that signs its posts


def without_secrets(items: list) -> list:
    """Hooks as stored: every field but the secret, dropped before anything is buffered."""
    return [{k: v for k, v in item.items() if k not in SECRET_FIELDS} if isinstance(item, dict) else item
            for item in items]


def read_whole(walker: Walker, endpoint: ep.Endpoint, project_id: str, slug: str, clean=None) -> list[dict]:
    """A project's list read whole (a snapshot: what it no longer lists is dropped); its items,
    `clean`ed before they are buffered."""
    context = {"project_id": project_id}
    _, key_fields, _ = PRUNE_KEYS[endpoint.entity]
    path = endpoint.path.format(org=walker.org, project=slug)
    params = dict(endpoint.params)
    items: list[dict] = []
    for page in walker.pages(path, params, None, probe=walker.probe):
        walker.probe = None  # the route answered: the rest are no probes
        page = replace(page, items=clean(page.items) if clean else page.items)
        items.extend(i for i in page.items if isinstance(i, dict))
        walker.save_page(endpoint.name, endpoint.entity, project_id, page, params, checkpoint=False, context=context)
    keep = {str(k) for k in (next((i.get(f) for f in key_fields if i.get(f) is not None), None) for i in items)
            if k is not None}
    walker.buffer.prune(endpoint.entity, context, keep)
    walker.finish_walk(endpoint.name, project_id, watermark=None)
    return items


def keys_to_read(listed: list[str] | None, setting: tuple[str, ...] | None) -> list[str]:
    """The tag keys whose values are read: those the project lists (or, with no list from this
    server, the fixed six), narrowed to the `tag_keys` setting when it names some."""
    if listed is None:
        return list(setting if setting is not None else ep.TAG_KEYS)
    return [k for k in listed if setting is None or k in setting]


class Unavailable:
    """Reads this server (or one project) refused for good: a route it lacks, a feature that is
    off (403), a project it does not know (404). Kept in the source's capabilities, said once in
    the notes of the sync that learnt it, and asked again only by `--full` or `--refresh
    project_details`."""

    def __init__(self, walker: Walker, ask_again: bool):
        self.walker = walker
        caps = walker.capabilities()
        self.known: dict[str, str] = {} if ask_again else dict(caps.get(UNAVAILABLE) or {})
        if ask_again and caps.get(UNAVAILABLE):
            self._save()

    def has(self, read: str, project_id: str | None = None) -> bool:
        return read in self.known or (project_id is not None and f"{read}:{project_id}" in self.known)

    def remember(self, read: str, project_id: str | None, why: str) -> None:
        self.known[read if project_id is None else f"{read}:{project_id}"] = why
        self._save()
        where = "this server" if project_id is None else f"project {project_id}"
        note = f"{read}: not available from {where} ({why}); not asked again until --refresh project_details"
        log.info(note)
        self.walker.result.notes.append(note)

    def _save(self) -> None:
        caps = self.walker.capabilities()
        caps[UNAVAILABLE] = dict(self.known)
        self.walker.remember(caps)
