"""Every organization a token sees (`org = "*"` in a source, `sync --all-orgs`): the source lists
`GET /api/0/organizations/` and each organization is synced as a source of its own, named
`<source>/<slug>`, read at its region (`links.regionUrl`), with the source's other settings.

On sentry.io the list is the control silo's (sentry.io itself), and each organization's data lives
on a region host (us.sentry.io, de.sentry.io). An organization no longer listed keeps its rows and
is marked gone (`organizations.gone_at`), never deleted.
"""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import urlsplit

from ..errors import ApiError, ConfigError
from ..fetching.client import SentryClient
from ..fetching.urls import display_url, may_follow_region, normalise_base_url
from ..storage.store import Store, utcnow
from .config import ALL_ORGS, Source

log = logging.getLogger(__name__)


def list_organizations(client: SentryClient) -> list[dict]:
    """Every organization the token sees, walking the list's pages."""
    orgs = []
    for page in client.paginate("organizations/"):
        orgs.extend(o for o in page.items if isinstance(o, dict) and o.get("slug") and o.get("id") is not None)
    return orgs


def region_url(source_url: str, region: str | None) -> str:
    """Where an organization's data is read: its `regionUrl` when the token may go there (the same
    server, or from one https host of sentry.io to another), else the source's own URL (GlitchTip
    and self-hosted Sentry give no regions; a token never follows a server's answer elsewhere)."""
    if not region:
        return source_url
    try:
        here, there = urlsplit(normalise_base_url(source_url)), urlsplit(normalise_base_url(region))
    except Exception:
        return source_url
    if may_follow_region(here, there):
        return display_url(region).rstrip("/")
    log.info("not following regionUrl %s: only the source's own server or sentry.io's hosts are followed", region)
    return source_url


def org_sources(source: Source, orgs: list[dict]) -> list[Source]:
    """One source per organization: `<source>/<slug>`, at its region, with every other setting."""
    out = []
    for org in orgs:
        url = region_url(source.url, (org.get("links") or {}).get("regionUrl"))
        origins = {**source.origins, "org": f"listed by {source.name}",
                   "url": "links.regionUrl" if url != source.url else source.origins.get("url", "default")}
        out.append(dataclasses.replace(source, name=f"{source.name}/{org['slug']}", org=org["slug"], url=url,
                                       origins=origins, listed=True))
    return out


def expand(source: Source, store: Store, client: SentryClient) -> list[Source]:
    """List the token's organizations, mark those no longer listed gone (and those back not), and
    return a source for each."""
    assert source.org == ALL_ORGS
    orgs = list_organizations(client)
    store.run_statements("updates", "orgs_listed", parent=source.name, ids=[str(o["id"]) for o in orgs],
                         observed_at=utcnow())
    if not orgs:
        log.warning("%s: the token sees no organizations", source.name)
    return org_sources(source, picked(source, orgs))


def picked(source: Source, orgs: list[dict]) -> list[dict]:
    """`--source NAME/SLUG`: those alone (the whole list is still what marks organizations gone)."""
    if not source.only_orgs:
        return orgs
    unknown = source.only_orgs - {o["slug"] for o in orgs}
    if unknown:
        raise ConfigError(f"{source.name}: the token sees no organization {', '.join(sorted(unknown))}",
                          hint="known: " + (", ".join(o["slug"] for o in orgs) or "none"))
    return [o for o in orgs if o["slug"] in source.only_orgs]


def each_organization(sources: list[Source], client_for, listed=None, on_error=None) -> list[Source]:
    """The sources with `org = "*"` replaced by one per organization: `listed(source, client)` makes
    them (by default without a store, for commands that act on Sentry such as `hooks`; the sync's
    also marks the gone); `on_error(source, client, exc)`, when given, takes a list that failed."""
    listed = listed or (lambda source, client: org_sources(source, picked(source, list_organizations(client))))
    out = []
    for source in sources:
        if source.org != ALL_ORGS:
            out.append(source)
            continue
        client = client_for(source)
        try:
            out.extend(listed(source, client))
        except ApiError as exc:
            if on_error is None:
                raise
            on_error(source, client, exc)
        finally:
            client.close()
    return out
