"""The /api/0/ endpoints: routing, parameter handling and pagination over the World.

Handlers are plain functions of a parsed Request returning a Response; HTTP, auth, rate limits
and faults live in server.py.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from urllib.parse import unquote

from . import aggregates, glitchtip, hooks, render, stats
from .model import Issue, Project
from .pagination import (
    MAX_HITS,
    ApiError,
    Cursor,
    Page,
    bad_request,
    keyset_page,
    link_base,
    link_header,
    offset_page,
    page_number_page,
    parse_cursor,
    parse_per_page,
)
from .search import SORTS, date_window, first, parse_issue_query
from .world import World

NOT_FOUND = "The requested resource does not exist"
STATS_PERIODS = {None: "24h", "": None, "24h": "24h", "14d": "14d", "auto": "24h"}
COLLAPSIBLE = {"stats", "lifetime", "filtered", "unhandled"}
NOT_SEARCH_PARAMS = {"cursor", "limit", "per_page", "groupStatsPeriod", "collapse", "expand"}
SEARCH_CACHE_SIZE = 16
MAX_TAG_VALUES = 1000  # "When paginated can return at most 1000 values"
VISIBILITY = ("all", "hidden", "visible")
PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1}
GLITCHTIP_SORTS = {"last_seen": lambda a, i: a.last_ms, "first_seen": lambda a, i: a.first_ms,
                   "count": lambda a, i: a.count, "priority": lambda a, i: PRIORITY_RANK[render.priority(i)]}


@dataclass
class Request:
    method: str
    raw_path: str
    pairs: list[tuple[str, str]]
    host: str
    base_url: str
    authed: bool = False
    flavor: str = "sentry"
    body: object = None  # the parsed JSON body of a PUT/POST
    params: dict[str, list[str]] = field(init=False)

    def __post_init__(self):
        self.params = {}
        for key, value in self.pairs:
            self.params.setdefault(key, []).append(value)

    def get(self, key: str) -> str | None:
        return first(self.params, key)

    @property
    def glitchtip(self) -> bool:
        return self.flavor == glitchtip.FLAVOR

    def page_size(self, issue_search: bool = False) -> int:
        """Sentry: `per_page` (issue search: `limit` first); GlitchTip: `limit` only, default 50."""
        if self.glitchtip:
            return glitchtip.page_size(self.get("limit"))
        if issue_search and self.get("limit") is not None:
            return parse_per_page(self.get("limit"))
        return parse_per_page(self.get("per_page"))

    def cursor(self) -> Cursor | None:
        raw = self.get("cursor")
        if self.glitchtip and raw:
            return glitchtip.decode_cursor(raw)
        return parse_cursor(raw)


@dataclass
class Response:
    """A JSON payload, or `raw` bytes of `content_type` (e.g. a proxy's HTML error page)."""

    status: int
    payload: object = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes | None = None
    content_type: str = "application/json"


ROUTES = [
    ("/api/0/", "root"),
    ("/api/0/organizations/", "org_list"),
    ("/api/0/organizations/{org}/", "org_detail"),
    ("/api/0/organizations/{org}/projects/", "org_projects"),
    ("/api/0/organizations/{org}/issues/", "org_issues"),
    ("/api/0/organizations/{org}/issues/{issue_id}/", "issue_detail"),
    ("/api/0/organizations/{org}/issues/{issue_id}/events/", "issue_events"),
    ("/api/0/organizations/{org}/issues/{issue_id}/events/{event_id}/", "issue_event"),
    ("/api/0/issues/{issue_id}/", "issue_detail"),
    ("/api/0/issues/{issue_id}/events/", "issue_events"),
    ("/api/0/issues/{issue_id}/events/{event_id}/", "issue_event"),
    ("/api/0/projects/{org}/{project}/events/", "project_events"),
    ("/api/0/projects/{org}/{project}/events/{event_id}/", "project_event"),
    ("/api/0/organizations/{org}/releases/", "releases"),
    ("/api/0/organizations/{org}/releases/{version}/", "release_detail"),
    ("/api/0/organizations/{org}/releases/{version}/deploys/", "deploys"),
    ("/api/0/organizations/{org}/teams/", "org_teams"),
    ("/api/0/organizations/{org}/members/", "org_members"),
    ("/api/0/organizations/{org}/environments/", "org_environments"),
    ("/api/0/projects/{org}/{project}/environments/", "project_environments"),
    ("/api/0/projects/{org}/{project}/stats/", "project_stats"),
    ("/api/0/organizations/{org}/stats_v2/", "stats_v2"),
    ("/api/0/projects/{org}/{project}/tags/{key}/values/", "tag_values"),
    ("/api/0/projects/{org}/{project}/tags/", "project_tags"),
    ("/api/0/projects/{org}/{project}/users/", "project_users"),
    ("/api/0/organizations/{org}/issues/{issue_id}/hashes/", "issue_hashes"),
    ("/api/0/issues/{issue_id}/hashes/", "issue_hashes"),
    ("/api/0/projects/", "all_projects"),
    ("/api/0/projects/{org}/{project}/", "project_detail"),
    ("/api/0/projects/{org}/{project}/issues/", "project_issues"),
    ("/api/0/projects/{org}/{project}/releases/", "project_releases"),
    ("/api/0/organizations/{org}/issues/{issue_id}/tags/{key}/", "issue_tag"),
    ("/api/0/organizations/{org}/issues/{issue_id}/tags/{key}/values/", "issue_tag_values"),
    ("/api/0/issues/{issue_id}/tags/{key}/values/", "issue_tag_values"),
    ("/api/0/teams/{org}/{team}/", "team_detail"),
    ("/api/0/teams/{org}/{team}/projects/", "team_projects"),
    ("/api/0/projects/{org}/{project}/teams/", "project_teams"),
    ("/api/0/organizations/{org}/members/{member_id}/", "member_detail"),
    ("/api/0/projects/{org}/{project}/members/", "project_members"),
    ("/api/0/projects/{org}/{project}/hooks/", "project_hooks"),
    ("/api/0/projects/{org}/{project}/hooks/{hook_id}/", "project_hook"),
    ("/api/0/organizations/{org}/shortids/{short_id}/", "short_id_lookup"),
    ("/api/0/organizations/{org}/eventids/{event_id}/", "event_id_lookup"),
    ("/api/0/organizations/{org}/tags/", "org_tags"),
]
# Routes that change the world, by (method, template); every other method answers 405.
MUTATIONS = {
    ("PUT", "/api/0/organizations/{org}/issues/"): "update_issues",
    ("PUT", "/api/0/projects/{org}/{project}/issues/"): "update_issues",
    ("DELETE", "/api/0/organizations/{org}/issues/"): "delete_issues",
    ("DELETE", "/api/0/projects/{org}/{project}/issues/"): "delete_issues",
    ("PUT", "/api/0/organizations/{org}/issues/{issue_id}/"): "update_issue",
    ("DELETE", "/api/0/organizations/{org}/issues/{issue_id}/"): "delete_issue",
    ("PUT", "/api/0/issues/{issue_id}/"): "update_issue",  # the legacy route, as its GET
    ("DELETE", "/api/0/issues/{issue_id}/"): "delete_issue",
    ("POST", "/api/0/projects/{org}/{project}/hooks/"): "create_hook",
    ("DELETE", "/api/0/projects/{org}/{project}/hooks/{hook_id}/"): "delete_hook",
}
STATUS_ONLY = {"status", "statusDetails", "substatus"}
STATUSES = {"resolved": "resolved", "resolvedInNextRelease": "resolved", "unresolved": "unresolved",
            "ignored": "ignored", "muted": "ignored"}
FLAGS = {"hasSeen": "has_seen", "isBookmarked": "bookmarked", "isSubscribed": "subscribed", "isPublic": "is_public"}

_COMPILED = [
    (re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", tpl) + "$"), tpl, name) for tpl, name in ROUTES
]


def resolve(raw_path: str, flavor: str = "sentry") -> tuple[str, str, dict[str, str]] | None:
    """(route template, handler name, unquoted path params) for a raw request path."""
    for regex, template, name in _COMPILED:
        if flavor == glitchtip.FLAVOR and template in glitchtip.MISSING_ROUTES:
            continue
        m = regex.match(raw_path)
        if m:
            return template, name, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


def paginated(req: Request, page: Page, payload: list) -> Response:
    if req.glitchtip:
        headers = [("Link", glitchtip.link_header(req.host, req.raw_path, req.pairs, page))]
        return Response(200, payload, headers + glitchtip.hits_headers(page))
    headers = [("Link", link_header(link_base(req.host, req.raw_path, req.pairs), page))]
    if page.hits is not None:
        headers += [("X-Hits", str(page.hits)), ("X-Max-Hits", str(MAX_HITS))]
    return Response(200, payload, headers)


class Api:
    """Endpoint handlers bound to one World; call `handle(name, req, **path_params)`."""

    def __init__(self, world: World, project_event_days: int | None = None):
        # Sentry's `organizations:project-event-date-limit` feature lists only this many recent
        # days of a project's events (FACTS: project events); None serves the whole window.
        self.project_event_days = project_event_days
        self.world = world
        self._search_cache: dict[tuple, list] = {}

    def handle(self, name: str, req: Request, **kwargs) -> Response:
        with self.world.lock:
            resp = getattr(self, name)(req, **kwargs)
        if req.glitchtip:
            glitchtip.reshape(name, resp.payload)
        return resp

    # ----- lookups -------------------------------------------------------------------------
    def _org(self, ident: str) -> None:
        if ident not in (self.world.org_slug, self.world.org_id):
            raise ApiError(404, NOT_FOUND)

    def _issue(self, ident: str, org: str | None) -> Issue:
        if org is not None:
            self._org(org)
        issue = self.world.find_issue(ident)
        if issue is None:
            raise ApiError(404, NOT_FOUND)
        return issue

    def _project(self, org: str, ident: str) -> Project:
        self._org(org)
        project = self.world.find_project(ident)
        if project is None:
            raise ApiError(404, NOT_FOUND)
        return project

    def _project_filter(self, req: Request) -> set[int] | None:
        """`project` params (ids or slugs; -1 = all) to project indexes; None means all."""
        values = req.params.get("project") or []
        if not values or "-1" in values:
            return None
        found = [self.world.find_project(v) for v in values]
        if any(p is None for p in found):
            raise ApiError(403, "You do not have permission to perform this action.")
        return {p.idx for p in found}

    # ----- root & organizations ---------------------------------------------------------------
    def root(self, req: Request) -> Response:
        if not req.authed:
            return Response(200, {"version": "0", "auth": None, "user": None})
        return Response(200, {
            "version": "0",
            "auth": {"scopes": ["org:read", "project:read", "project:releases", "event:read", "team:read",
                                "member:read"]},
            "user": {"id": "1", "name": "Emulator User", "username": "emulator", "email": "emulator@acme.example",
                     "isActive": True, "isSuperuser": False, "isStaff": False},
        })

    def _organization(self, req: Request, detailed: bool) -> dict:
        out = render.organization(self.world, req.base_url, detailed=detailed)
        return glitchtip.organization(out) if req.glitchtip else out

    def org_list(self, req: Request) -> Response:
        page = page_number_page([self.world], req.page_size(), req.cursor())
        return paginated(req, page, [self._organization(req, False) for _ in page.rows])

    def org_detail(self, req: Request, org: str) -> Response:
        self._org(org)
        return Response(200, self._organization(req, req.get("detailed") != "0"))

    def org_projects(self, req: Request, org: str) -> Response:
        self._org(org)
        needle = (req.get("query") or "").lower()
        rows = sorted((p for p in self.world.projects if needle in p.slug or needle in p.name.lower()),
                      key=lambda p: p.slug)
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.project(self.world, p) for p in page.rows])

    # ----- issues -------------------------------------------------------------------------------
    def org_issues(self, req: Request, org: str) -> Response:
        self._org(org)
        if req.get("groupStatsPeriod") not in STATS_PERIODS:
            raise bad_request("Invalid stats_period. Valid choices are '', '24h', and '14d'")
        stats = STATS_PERIODS[req.get("groupStatsPeriod")]
        collapse = set(req.params.get("collapse", [])) & COLLAPSIBLE
        if "group" in req.params:
            issues = self._issues_by_group(req.params["group"])
            return Response(200, [self._render_issue(req, i, stats, collapse) for i in issues])
        score = self._sort_score(req)
        limit = req.page_size(issue_search=True)
        cursor = req.cursor()
        rows = self._cached_search(req, score)
        page = keyset_page(rows, [-score for score, _, _ in rows], limit, cursor, hits=len(rows))
        return paginated(req, page, [self._render_issue(req, i, stats, collapse) for _, _, i in page.rows])

    def _issues_by_group(self, values: list[str]) -> list[Issue]:
        if len(values) > 100:
            raise bad_request("Too many groups requested.")
        if not all(v.isdigit() for v in values):
            raise bad_request("Invalid group parameter. Values must be numbers.")
        found = (self.world.find_issue(v) for v in dict.fromkeys(values))
        return [i for i in found if i is not None]

    @staticmethod
    def _sort_score(req: Request):
        """Score (of Agg, Issue) that rows sort by, descending. GlitchTip sorts ascend without `-`."""
        if req.glitchtip:
            name, descending = glitchtip.issue_sort(req.get("sort"))
            key = GLITCHTIP_SORTS[name]
            return key if descending else (lambda a, i: -key(a, i))
        sort = req.get("sort") or "date"
        if sort not in SORTS:
            raise bad_request(f"Invalid sort: {sort!r}. Supported sorts are {sorted(SORTS)}")
        return lambda a, i, f=SORTS[sort]: f(a)

    def _cached_search(self, req: Request, score) -> list[tuple[int, int, Issue]]:
        """Search once per distinct query and world state, so walking pages stays cheap."""
        key = (self.world.step, self.world.edits, req.flavor, tuple(sorted((k, tuple(v)) for k, v in req.params.items()
                                                         if k not in NOT_SEARCH_PARAMS)))
        if key not in self._search_cache:
            if len(self._search_cache) >= SEARCH_CACHE_SIZE:
                self._search_cache.clear()
            self._search_cache[key] = self._search(req, score)
        return self._search_cache[key]

    def _search(self, req: Request, score) -> list[tuple[int, int, Issue]]:
        """Issues matching window, projects, environments and query, sorted by (score, id) desc."""
        world = self.world
        start, end = date_window(req.params, world.now_ms)
        query = req.get("query") if "query" in req.params else "is:unresolved"
        preds = parse_issue_query(query, world, dates=not req.glitchtip)
        projects = self._project_filter(req)
        envs = set(req.params.get("environment", []))
        rows = []
        for issue in world.served_issues():
            if projects is not None and issue.project.idx not in projects:
                continue
            lo, hi = world.event_range(issue, start, end)
            if lo >= hi or (envs and not self._has_env(issue, lo, hi, envs)):
                continue
            agg = world.agg(issue)
            if all(p(issue, agg) for p in preds):
                rows.append((score(agg, issue), issue.id, issue))
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        return rows

    def _has_env(self, issue: Issue, lo: int, hi: int, envs: set[str]) -> bool:
        if issue.staging_share == 0 and issue.origin is None:  # merged events keep their environment
            return "production" in envs
        return any(self.world.environment(issue, s) in envs for s in range(hi - 1, lo - 1, -1))

    def _render_issue(self, req: Request, issue: Issue, stats: str | None, collapse: set[str]) -> dict:
        out = render.issue(self.world, issue, req.base_url, stats)
        expand = set(req.params.get("expand", [])) & set(render.EXPANSIONS)
        if expand:
            out.update(render.issue_expansions(self.world, issue, expand))
        for key in collapse:
            out.pop("isUnhandled" if key == "unhandled" else key, None)
        return out

    def issue_detail(self, req: Request, issue_id: str, org: str | None = None) -> Response:
        return Response(200, render.issue_detail(self.world, self._issue(issue_id, org), req.base_url))

    # ----- events -------------------------------------------------------------------------------
    def issue_events(self, req: Request, issue_id: str, org: str | None = None) -> Response:
        issue = self._issue(issue_id, org)
        start, end = date_window(req.params, self.world.now_ms)
        limit = req.page_size()
        cursor = req.cursor()
        full = req.get("full") in ("1", "true")
        seqs = self._issue_seqs(issue, start, end, set(req.params.get("environment", [])))
        needle = (req.get("query") or "").lower()
        if needle and needle not in issue.title.lower():
            seqs = []
        page = offset_page(seqs, limit, cursor)
        draw = render.event_full if full else render.event_simple
        rows = [draw(self.world, issue, s) for s in page.rows]
        if req.glitchtip:
            rows = [glitchtip.snake_event(ev, render.iso(render.date_received_ms(
                issue.times[s], self.world.event_hash(issue.idx, s)))) for ev, s in zip(rows, page.rows)]
        return paginated(req, page, rows)

    def _issue_seqs(self, issue: Issue, start: int, end: int, envs: set[str]):
        """The issue's event seqs in the window, newest first (a cheap range when unfiltered)."""
        lo, hi = self.world.event_range(issue, start, end)
        seqs = range(hi - 1, lo - 1, -1)
        if envs:
            return [s for s in seqs if self.world.environment(issue, s) in envs]
        return seqs

    def issue_event(self, req: Request, issue_id: str, event_id: str,
                    org: str | None = None) -> Response:
        issue = self._issue(issue_id, org)
        seqs = self._issue_seqs(issue, 0, 1 << 62, set(req.params.get("environment", [])))
        if event_id in ("latest", "recommended"):
            seq = seqs[0] if seqs else None
        elif event_id == "oldest":
            seq = seqs[-1] if seqs else None
        else:
            found = self.world.locate_event(event_id)
            seq = found[1] if found and found[0] is issue else None
        if seq is None:
            raise ApiError(404, "Event not found")
        return Response(200, render.event_detail(self.world, issue, seq, self._neighbours(seqs, seq)))

    @staticmethod
    def _neighbours(seqs, seq: int) -> tuple[int | None, int | None]:
        """(previous = older, next = newer) among newest-first seqs (a range or a filtered list)."""
        if isinstance(seqs, range):
            return (seq - 1 if seq - 1 in seqs else None), (seq + 1 if seq + 1 in seqs else None)
        older = next((s for s in seqs if s < seq), None)
        newer = next((s for s in reversed(seqs) if s > seq), None)
        return older, newer

    def project_events(self, req: Request, org: str, project: str) -> Response:
        p = self._project(org, project)
        world = self.world
        start, end = date_window(req.params, world.now_ms)
        if self.project_event_days is not None:
            start = max(start, world.now_ms - self.project_event_days * 86_400_000)
        limit = req.page_size()
        cursor = req.cursor()
        full = bool(req.get("full"))  # any non-empty value is truthy here, as in Sentry
        lo = bisect_left(p.ev_times, max(start, world.retention_ms))
        hi = bisect_left(p.ev_times, end)
        positions = range(hi - 1, lo - 1, -1)
        needle = (req.get("query") or "").lower()
        if needle:
            positions = [k for k in positions if needle in self._ref(p, k)[0].title.lower()]
        page = offset_page(positions, limit, cursor)
        draw = render.event_full if full else render.event_simple
        return paginated(req, page, [draw(world, *self._ref(p, k)) for k in page.rows])

    def _ref(self, p: Project, position: int) -> tuple[Issue, int]:
        ref = p.ev_refs[position]
        return self.world.issues[ref >> 32], ref & 0xFFFFFFFF

    def project_event(self, req: Request, org: str, project: str, event_id: str) -> Response:
        p = self._project(org, project)
        found = self.world.locate_event(event_id)
        if found is None or found[0].project is not p:
            raise ApiError(404, "Event not found")
        issue, seq = found
        seqs = self._issue_seqs(issue, 0, 1 << 62, set(req.params.get("environment", [])))
        return Response(200, render.event_detail(self.world, issue, seq, self._neighbours(seqs, seq)))

    # ----- releases -----------------------------------------------------------------------------
    def releases(self, req: Request, org: str) -> Response:
        self._org(org)
        status = "open" if req.glitchtip else req.get("status") or "open"  # GlitchTip ignores `status`
        if status not in ("open", "archived"):
            raise bad_request("invalid value for status")
        projects = self._project_filter(req)
        needle = (req.get("query") or "").lower()
        rows = [r for r in self.world.releases
                if r.status == status and needle in r.version.lower()
                and (projects is None or r.project.idx in projects)]
        rows.sort(key=lambda r: (r.created_ms, r.id), reverse=True)
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [self._release(req, r) for r in page.rows])

    def _release(self, req: Request, rel) -> dict:
        out = render.release(self.world, rel)
        return glitchtip.release(out) if req.glitchtip else out

    def _find_release(self, org: str, version: str):
        self._org(org)
        rel = self.world.find_release(version)
        if rel is None:
            raise ApiError(404, NOT_FOUND)
        return rel

    def release_detail(self, req: Request, org: str, version: str) -> Response:
        return Response(200, self._release(req, self._find_release(org, version)))

    def deploys(self, req: Request, org: str, version: str) -> Response:
        """OffsetPaginator over the release's deploys, newest `dateFinished` first."""
        rel = self._find_release(org, version)
        rows = sorted(rel.deploys, key=lambda d: (d.finished_ms, d.id), reverse=True)
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.deploy(d) for d in page.rows])

    # ----- teams, members, environments --------------------------------------------------------------
    def org_teams(self, req: Request, org: str) -> Response:
        self._org(org)
        needle = (req.get("query") or "").lower()
        rows = sorted((t for t in self.world.teams if needle in t.slug or needle in t.name.lower()),
                      key=lambda t: t.slug)
        page = page_number_page(rows, req.page_size(), req.cursor())
        detailed = req.get("detailed") != "0"
        return paginated(req, page, [render.team_detail(self.world, t, detailed) for t in page.rows])

    def org_members(self, req: Request, org: str) -> Response:
        """Members and pending invites, by email."""
        self._org(org)
        rows = sorted(self.world.members, key=lambda m: (m.email, m.id))
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.member(self.world, m) for m in page.rows])

    def _environments(self, req: Request, with_hidden: bool) -> Response:
        visibility = req.get("visibility") or "visible"
        if visibility not in VISIBILITY:
            raise bad_request(f"Invalid value for 'visibility', valid values are: {list(VISIBILITY)!r}")
        rows = [] if visibility == "hidden" else aggregates.ENVIRONMENTS
        return Response(200, [render.environment(name, k, with_hidden) for k, name in enumerate(rows)])

    def org_environments(self, req: Request, org: str) -> Response:
        """Not paginated: a plain list."""
        self._org(org)
        return self._environments(req, with_hidden=False)

    def project_environments(self, req: Request, org: str, project: str) -> Response:
        self._project(org, project)
        return self._environments(req, with_hidden=True)

    # ----- stats ----------------------------------------------------------------------------------------
    def project_stats(self, req: Request, org: str, project: str) -> Response:
        p = self._project(org, project)
        return Response(200, stats.project_stats(self.world, p, req.params))

    def stats_v2(self, req: Request, org: str) -> Response:
        self._org(org)
        if req.glitchtip:
            return Response(200, stats.stats_v2_glitchtip(self.world, req.params))
        projects = self._project_filter(req)
        chosen = [p for p in self.world.projects if projects is None or p.idx in projects]
        return Response(200, stats.stats_v2(self.world, req.params, chosen))

    # ----- tag values, users, hashes --------------------------------------------------------------------
    def project_tags(self, req: Request, org: str, project: str) -> Response:
        """The tag keys the project's served events carry, by key (not paginated), as Sentry's
        ProjectTagsEndpoint answers: key, name, canDelete, and uniqueValues unless
        `includeValuesSeen=0`."""
        p = self._project(org, project)
        rows = []
        for key, values in sorted(aggregates.summary(self.world, p).tags.items()):
            row = {"key": key, "name": key.replace(".", " ").replace("_", " ").title(),
                   "canDelete": key not in ("environment", "release")}
            if req.get("includeValuesSeen") != "0":
                row["uniqueValues"] = len(values)
            rows.append(row)
        return Response(200, rows)

    def tag_values(self, req: Request, org: str, project: str, key: str) -> Response:
        """Values of one tag over the project's served events, most recently seen first (max 1000).

        Keys no generated event can carry are a 404. A known key no event of this project carries
        (browser on a backend project) is an empty list here; real Sentry's tagstore may answer 404.
        """
        p = self._project(org, project)
        if key not in aggregates.TAG_KEYS + aggregates.OTHER_TAG_KEYS:
            raise ApiError(404, NOT_FOUND)
        values = aggregates.summary(self.world, p).tags.get(key, {})
        needle = req.get("query") or ""
        rows = sorted(((v, e) for v, e in values.items() if needle in v), key=lambda r: (r[1][2], r[0]),
                      reverse=True)[:MAX_TAG_VALUES]
        page = offset_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.tag_value(key, v, e, self._tag_label(key, v)) for v, e in page.rows])

    @staticmethod
    def _tag_label(key: str, value: str) -> str | None:
        """A user tag value is labelled with the user's email, as Sentry's EventUser label does."""
        if key == "user" and value.startswith("id:"):
            return render.user_fields(int(value[3:]) - 10_000)["email"]
        return None

    def project_users(self, req: Request, org: str, project: str) -> Response:
        """Users seen in served events, newest first seen first; `query` is `field:exact` (else empty)."""
        p = self._project(org, project)
        users = aggregates.summary(self.world, p).users
        rows = sorted(users.items(), key=lambda r: (r[1][1], r[0]), reverse=True)
        query = (req.get("query") or "").strip()
        if query:
            prefix, sep, ident = query.partition(":")
            fields = {"id": "id", "email": "email", "username": "username", "ip": "ip_address"}
            if not sep or prefix not in fields:
                rows = []
            else:
                rows = [r for r in rows if render.user_fields(r[0])[fields[prefix]] == ident]
        page = offset_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.project_user(p, u, e) for u, e in page.rows])

    def issue_hashes(self, req: Request, issue_id: str, org: str | None = None) -> Response:
        """The issue's grouping hashes with each one's latest served event (`full` defaults to true)."""
        issue = self._issue(issue_id, org)
        hashes = render.absorbed_hashes(self.world, issue)  # a merged issue's moved here with its events
        lo = self.world.agg(issue).lo
        latest: dict[str, int] = {}
        for seq in range(len(issue.times) - 1, lo - 1, -1):
            latest.setdefault(render.event_grouping_hash(self.world, issue, seq), seq)
            if len(latest) == len(hashes):
                break
        rows = [(h, latest[h]) for h in hashes if h in latest]
        page = offset_page(rows, req.page_size(), req.cursor())
        draw = render.event_simple if req.get("full") in ("0", "false") else render.event_full
        return paginated(req, page, [{"id": h, "latestEvent": draw(self.world, issue, seq), "mergedBySeer": False,
                                      "seerMatchDistance": None} for h, seq in page.rows])

    # ----- routes other Sentry clients use (issue 10) ------------------------------------------------
    def all_projects(self, req: Request) -> Response:
        """Legacy `List Your Projects`: every project the token sees, with its organization."""
        rows = sorted(self.world.projects, key=lambda p: p.slug)
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.project_listed(self.world, p, req.base_url) for p in page.rows])

    def project_detail(self, req: Request, org: str, project: str) -> Response:
        return Response(200, render.project_detail(self.world, self._project(org, project), req.base_url))

    def project_issues(self, req: Request, org: str, project: str) -> Response:
        """Deprecated project issue list: here `statsPeriod` picks the stats timeline ('24h' default,
        '14d', '' none), not a window; the window is Sentry's 90 days; `query` defaults to is:unresolved."""
        p = self._project(org, project)
        period = req.get("statsPeriod")
        if period not in STATS_PERIODS or period == "auto":
            raise bad_request("Invalid stats_period. Valid choices are '', '24h', and '14d'")
        stats = STATS_PERIODS[period]
        if req.get("shortIdLookup") in ("1", "true") and req.get("query"):
            issue = self.world.find_issue(req.get("query").strip())
            if issue is not None and issue.project is p and self.world.agg(issue) is not None:
                resp = Response(200, [self._render_issue(req, issue, stats, set())])
                resp.headers.append(("X-Sentry-Direct-Hit", "1"))
                return resp
        pairs = [(k, v) for k, v in req.pairs if k not in ("statsPeriod", "start", "end", "project")]
        pairs.append(("project", str(p.id)))
        scoped = Request(req.method, req.raw_path, pairs, req.host, req.base_url, req.authed, req.flavor)
        score = self._sort_score(scoped)
        rows = self._cached_search(scoped, score)
        page = keyset_page(rows, [-sc for sc, _, _ in rows], req.page_size(issue_search=True), req.cursor(),
                           hits=len(rows))
        return paginated(req, page, [self._render_issue(req, i, stats, set()) for _, _, i in page.rows])

    def project_releases(self, req: Request, org: str, project: str) -> Response:
        p = self._project(org, project)
        needle = (req.get("query") or "").lower()
        rows = [r for r in p.releases if needle in r.version.lower()]
        rows.sort(key=lambda r: (r.created_ms, r.id), reverse=True)
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [self._release(req, r) for r in page.rows])

    def _issue_tag_counts(self, issue: Issue, key: str) -> dict[str, list[int]]:
        """value -> [count, first_ms, last_ms] over the issue's served events."""
        out: dict[str, list[int]] = {}
        for seq in range(self.world.agg(issue).lo, len(issue.times)):
            t = issue.times[seq]
            for tag in render.event_tags(self.world, issue, seq):
                if tag["key"] == key:
                    entry = out.setdefault(tag["value"], [0, t, t])
                    entry[0] += 1
                    entry[2] = t
        return out

    def issue_tag(self, req: Request, org: str, issue_id: str, key: str) -> Response:
        issue = self._issue(issue_id, org)
        values = self._issue_tag_counts(issue, key)
        if not values:
            raise ApiError(404, NOT_FOUND)
        top = sorted(values.items(), key=lambda r: (-r[1][0], r[0]))[:9]
        return Response(200, {
            "key": key, "name": key.replace(".", " ").replace("_", " ").title(),
            "totalValues": sum(e[0] for e in values.values()), "uniqueValues": len(values),
            "topValues": [render.tag_value(key, v, e, self._tag_label(key, v)) for v, e in top],
        })

    def issue_tag_values(self, req: Request, issue_id: str, key: str, org: str | None = None) -> Response:
        """Values of one tag over the issue's events; `sort` is -id (default), count, date, age, id."""
        issue = self._issue(issue_id, org)
        values = self._issue_tag_counts(issue, key)
        sort = req.get("sort") or "-id"
        field = sort.lstrip("-")
        keys = {"id": lambda r: r[0], "count": lambda r: r[1][0], "date": lambda r: r[1][2], "age": lambda r: r[1][1]}
        if field not in keys:
            raise bad_request(f"Invalid sort: {sort!r}")
        rows = sorted(values.items(), key=keys[field], reverse=sort.startswith("-"))[:MAX_TAG_VALUES]
        page = offset_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.tag_value(key, v, e, self._tag_label(key, v)) for v, e in page.rows])

    def _team(self, org: str, ident: str):
        self._org(org)
        team = next((t for t in self.world.teams if ident in (t.slug, t.id)), None)
        if team is None:
            raise ApiError(404, NOT_FOUND)
        return team

    def team_detail(self, req: Request, org: str, team: str) -> Response:
        out = render.team_detail(self.world, self._team(org, team), detailed=True)
        return Response(200, {**out, "organization": self._organization(req, False)})

    def team_projects(self, req: Request, org: str, team: str) -> Response:
        t = self._team(org, team)
        rows = [p for p in sorted(self.world.projects, key=lambda p: p.slug) if p.team == t.slug]
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.project(self.world, p) for p in page.rows])

    def project_teams(self, req: Request, org: str, project: str) -> Response:
        p = self._project(org, project)
        rows = [t for t in self.world.teams if t.slug == p.team]
        page = page_number_page(rows, req.page_size(), req.cursor())
        return paginated(req, page, [render.team_detail(self.world, t, detailed=False) for t in page.rows])

    def member_detail(self, req: Request, org: str, member_id: str) -> Response:
        self._org(org)
        m = next((m for m in self.world.members if m.id == member_id), None)
        if m is None:
            raise ApiError(404, NOT_FOUND)
        return Response(200, render.member_detail(self.world, m))

    def project_members(self, req: Request, org: str, project: str) -> Response:
        """Members of the project's teams (pending invites have no access yet)."""
        p = self._project(org, project)
        rows = sorted((m for m in self.world.members if p.team in m.teams and not m.pending), key=lambda m: m.email)
        return Response(200, [render.member(self.world, m) for m in rows])

    def project_hooks(self, req: Request, org: str, project: str) -> Response:
        p = self._project(org, project)
        page = page_number_page(hooks.project_hooks(self.world, p), req.page_size(), req.cursor())
        return paginated(req, page, page.rows)

    def project_hook(self, req: Request, org: str, project: str, hook_id: str) -> Response:
        hook = next((h for h in hooks.project_hooks(self.world, self._project(org, project)) if h["id"] == hook_id), None)
        if hook is None:
            raise ApiError(404, NOT_FOUND)
        return Response(200, hook)

    def create_hook(self, req: Request, org: str, project: str) -> Response:
        return Response(201, hooks.create(self.world, self._project(org, project), req.body))

    def delete_hook(self, req: Request, org: str, project: str, hook_id: str) -> Response:
        hooks.delete(self.world, self._project(org, project), hook_id)
        return Response(204)

    def short_id_lookup(self, req: Request, org: str, short_id: str) -> Response:
        self._org(org)
        issue = next((i for i in self.world.served_issues() if i.short_id == short_id.upper()), None)
        if issue is None:
            raise ApiError(404, "Short ID not found")
        return Response(200, {"organizationSlug": self.world.org_slug, "projectSlug": issue.project.slug,
                              "groupId": str(issue.id), "shortId": issue.short_id,
                              "group": render.issue(self.world, issue, req.base_url)})

    def event_id_lookup(self, req: Request, org: str, event_id: str) -> Response:
        self._org(org)
        found = self.world.locate_event(event_id)
        if found is None:
            raise ApiError(404, "Event not found")
        issue, seq = found
        seqs = self._issue_seqs(issue, 0, 1 << 62, set())
        return Response(200, {"organizationSlug": self.world.org_slug, "projectSlug": issue.project.slug,
                              "groupId": str(issue.id), "eventId": self.world.event_id(issue, seq),
                              "event": render.event_detail(self.world, issue, seq, self._neighbours(seqs, seq))})

    def org_tags(self, req: Request, org: str) -> Response:
        """Tag keys over the organization's served events (not paginated)."""
        self._org(org)
        projects = self._project_filter(req)
        totals: dict[str, int] = {}
        for p in self.world.projects:
            if projects is not None and p.idx not in projects:
                continue
            for key, values in aggregates.summary(self.world, p).tags.items():
                totals[key] = totals.get(key, 0) + sum(e[0] for e in values.values())
        return Response(200, [{"key": k, "name": k.replace(".", " ").title(), "totalValues": n}
                              for k, n in sorted(totals.items())])

    # ----- issue mutations (PUT/DELETE), changing the world so later reads and truth show them -------
    def _mutation_targets(self, req: Request, org: str, project: str | None, status_only: bool) -> list[Issue]:
        """Issues named by `id=`, or (status changes and deletes only) those the query matches, max 100."""
        self._org(org)
        scope = self._project(org, project) if project else None
        ids = req.params.get("id")
        if ids:
            if len(ids) > 1000 or not all(i.isdigit() for i in ids):
                raise bad_request("Invalid id parameter: at most 1000 issue ids.")
            found = [self.world.find_issue(i) for i in dict.fromkeys(ids)]
            if any(i is None or self.world.agg(i) is None or (scope and i.project is not scope) for i in found):
                return []  # any id out of scope: nothing is changed
            return found
        if not status_only:
            raise bad_request("You must specify a list of IDs for this operation")
        pairs = [(k, v) for k, v in req.pairs if k not in ("id", "cursor", "statsPeriod", "start", "end")
                 and not (scope and k == "project")]
        if scope:
            pairs.append(("project", str(scope.id)))
        scoped = Request("GET", req.raw_path, pairs, req.host, req.base_url, req.authed, req.flavor)
        limit = min(int(req.get("limit") or 100), 100)
        return [i for _, _, i in self._search(scoped, self._sort_score(scoped))[:limit]]

    def _parse_changes(self, body) -> dict:
        if not isinstance(body, dict) or not body:
            raise bad_request("Invalid request body: a JSON object of the attributes to change is required.")
        changes = dict(body)
        if "status" in changes:
            if changes["status"] not in STATUSES:
                raise ApiError(400, {"status": [f'"{changes["status"]}" is not a valid choice.']}, bare=True)
            details = dict(changes.get("statusDetails") or {})
            if changes["status"] == "resolvedInNextRelease":
                details["inNextRelease"] = True
            changes["statusDetails"] = details
        if "priority" in changes and changes["priority"] not in ("low", "medium", "high"):
            raise ApiError(400, {"priority": [f'"{changes["priority"]}" is not a valid choice.']}, bare=True)
        if "assignedTo" in changes:
            changes["_actor"] = self._actor(changes["assignedTo"])
        return changes

    def _actor(self, value) -> tuple | None:
        """`user:ID`, `team:ID`, a username or email, `#team-slug`; empty or null unassigns."""
        if not value:
            return None
        text = str(value)
        kind, _, ident = text.partition(":")
        for m in self.world.members:
            if not m.pending and ((kind == "user" and ident == m.user_id) or text in (m.key, m.email)):
                return ("user", m.user_id, m.key)
        for t in self.world.teams:
            if (kind == "team" and ident == t.id) or text == f"#{t.slug}":
                return ("team", t.id, t.slug)
        raise ApiError(400, {"assignedTo": ["Unknown actor input"]}, bare=True)

    def _apply(self, issue: Issue, changes: dict) -> None:
        if "status" in changes:
            details = changes["statusDetails"]
            if details.get("inRelease") == "latest" and issue.project.releases:
                details = {**details, "inRelease": issue.project.releases[-1].version}
            self.world.set_issue_status(issue, STATUSES[changes["status"]], details, changes.get("substatus"))
        for key, attr in FLAGS.items():
            if key in changes:
                setattr(issue, attr, bool(changes[key]))
        if "priority" in changes:
            issue.priority = changes["priority"]
        if "assignedTo" in changes:
            self.world.assign(issue, changes["_actor"])
        self.world.edits += 1

    def _applied(self, issue: Issue, changes: dict, base_url: str) -> dict:
        """The bulk PUT's answer: the changed attributes as they now stand, and the status."""
        shown = render.issue(self.world, issue, base_url)
        keys = ["status", "statusDetails", "isPublic", *(k for k in changes if not k.startswith("_"))]
        if "status" in changes:
            keys.append("substatus")  # Sentry's answer carries the substatus it set
        return {k: shown[k] for k in keys if k in shown}

    def update_issues(self, req: Request, org: str, project: str | None = None) -> Response:
        changes = self._parse_changes(req.body)
        issues = self._mutation_targets(req, org, project, status_only=set(changes) <= STATUS_ONLY)
        if not issues:
            return Response(204)
        if changes.get("merge") and len(issues) > 1:
            return Response(200, self._merge(issues))
        for issue in issues:
            self._apply(issue, changes)
        return Response(200, self._applied(issues[0], changes, req.base_url))

    def _merge(self, issues: list[Issue]) -> dict:
        """`{"merge": 1}`: as Sentry's handle_merge, the issue with the most events is the parent,
        issues of one project only; the answer names the parent and the children."""
        if len({i.project.idx for i in issues}) > 1:
            raise bad_request("Merging across multiple projects is not supported")
        parent = sorted(issues, key=lambda i: -self.world.agg(i).count)[0]
        children = [i for i in issues if i is not parent]
        try:
            self.world.merge_issues(parent, children)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return {"merge": {"parent": str(parent.id), "children": [str(i.id) for i in children]}}

    def update_issue(self, req: Request, issue_id: str, org: str | None = None) -> Response:
        issue = self._issue(issue_id, org)
        self._apply(issue, self._parse_changes(req.body))
        return Response(200, render.issue_detail(self.world, issue, req.base_url))

    def delete_issues(self, req: Request, org: str, project: str | None = None) -> Response:
        issues = self._mutation_targets(req, org, project, status_only=True)
        if issues:
            self.world.delete_issues(issues)
            self.world.edits += 1
        return Response(204)

    def delete_issue(self, req: Request, issue_id: str, org: str | None = None) -> Response:
        issue = self._issue(issue_id, org)
        self.world.delete_issues([issue])
        self.world.edits += 1
        return Response(202)
