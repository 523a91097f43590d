"""Several organizations in several regions, as sentry.io serves them.

The emulator's main URL is the control silo: `GET /api/0/organizations/` there lists every
organization, each with `links.regionUrl` naming where its data is served. A region is served under
a path prefix of the same server, `/_region/<name>/api/0/...` (so one listener is enough); an
organization asked at a region that is not its own answers a plain 404, as Sentry's endpoints do in
the wrong silo (FACTS §5). The first organization (`acme`) is also served at the main URL, as
sentry.io serves its US organizations: with one organization the emulator answers exactly as before.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .api import NOT_FOUND, Api, Request, Response, paginated
from .pagination import ApiError, page_number_page
from .world import World

REGION_PATH = re.compile(r"^/_region/([a-z0-9-]+)(/api/0(?:/.*)?)$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
DEFAULT_REGIONS = ("us", "de")  # the first organization in us, the others in de (the schema's regions)


@dataclass
class Site:
    """One organization the emulator serves: its world, its endpoints, and its region (None: the
    main URL only, as the one organization of a default emulator)."""

    world: World
    api: Api
    region: str | None


class Regions:
    """The organizations by slug, where each is served, and the control silo's organization list."""

    def __init__(self, primary: World, api: Api, make_api):
        self.primary = primary
        self.sites: dict[str, Site] = {primary.org_slug: Site(primary, api, None)}
        self._make_api = make_api  # World -> Api, with the emulator's options
        self._lock = threading.Lock()
        self._added = 0

    def add(self, slug: str, region: str = "de", seed: int | None = None, scale: str | None = None) -> dict:
        """Another organization, generated from its own seed, with ids of its own, in `region`."""
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise ValueError("slug must be lowercase letters, digits and -")
        if not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]+", region):
            raise ValueError("region must be lowercase letters, digits and -")
        with self._lock:
            if slug in self.sites:
                raise ValueError(f"organization {slug!r} exists already")
            self._added += 1
            index = self._added
            world = World(seed=self.primary.seed + 1000 * index if seed is None else seed,
                          scale=scale or self.primary.scale_name, now=self.primary.now, slug=slug, index=index,
                          deletions=self.primary.deletions, merges=self.primary.merges)
            world.seen_in_seconds = self.primary.seen_in_seconds
            self.sites[slug] = Site(world, self._make_api(world), region)
        return {"slug": slug, "id": world.org_id, "region": region}

    def place_primary(self, region: str) -> None:
        """Serve the first organization at a region too (it stays at the main URL)."""
        self.sites[self.primary.org_slug].region = region

    def drop(self, slug: str) -> dict:
        """Take an organization away (the token no longer sees it); never the first one."""
        with self._lock:
            if slug == self.primary.org_slug or slug not in self.sites:
                raise ValueError(f"no organization {slug!r} to drop (the first one stays)")
            del self.sites[slug]
        return {"dropped": slug}

    def listing(self) -> list[dict]:
        return [{"slug": s, "id": site.world.org_id, "region": site.region} for s, site in self.sites.items()]

    def world(self, slug: str | None) -> World:
        """The world of an organization named by a control request (the first one when unnamed)."""
        site = self.sites.get(slug or self.primary.org_slug)
        if site is None:
            raise ValueError(f"no organization {slug!r}")
        return site.world

    @property
    def several(self) -> bool:
        return len(self.sites) > 1

    # ----- serving -------------------------------------------------------------------------------
    def api_for(self, params: dict[str, str], region: str | None) -> Api:
        """The endpoints of the organization a request names, if it is served where it was asked."""
        if not self.several and region is None:
            return self.sites[self.primary.org_slug].api  # one organization: exactly as ever
        here = [s for s in self.sites.values() if s.region == region or (region is None and s.world is self.primary)]
        org = params.get("org")
        if org is not None:
            site = next((s for s in here if org in (s.world.org_slug, s.world.org_id)), None)
        else:  # a route without the organization (an issue by id): the one of this region holding it
            issue = params.get("issue_id")
            site = next((s for s in here if issue is None or s.world.find_issue(issue) is not None), None)
        if site is None:
            raise ApiError(404, NOT_FOUND)
        return site.api

    def org_list(self, req: Request, region: str | None, url: str) -> Response:
        """The control silo's list (main URL): every organization; a region's: only its own."""
        sites = [s for s in self.sites.values() if region is None or s.region == region]
        page = page_number_page(sites, req.page_size(), req.cursor())
        return paginated(req, page, [self.linked(s.api._organization(req, False), url) for s in page.rows])

    def linked(self, org: object, url: str) -> object:
        """An organization's links as sentry.io gives them: where its data is (`regionUrl`)."""
        site = self.sites.get(org.get("slug")) if isinstance(org, dict) else None
        if site is not None and site.region is not None and isinstance(org.get("links"), dict):
            org["links"] = {"organizationUrl": f"{url}/organizations/{site.world.org_slug}/",
                            "regionUrl": f"{url}/_region/{site.region}"}
        return org
