"""Sentry endpoints the mirror reads, described as data.

Each stream names its path (relative to `/api/0/`), the table its objects go to, fixed query
parameters, and fallback paths for servers that lack the first one (GlitchTip serves only the
legacy unscoped issue routes). The generic walker in `syncing/walker.py` does the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    entity: str
    params: dict = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    paged: bool = True
    # A snapshot list is current state, not history: each walk starts from the first page and
    # rows it no longer returns are dropped (see store.PRUNE_KEYS).
    snapshot: bool = False

    @property
    def status(self) -> str | None:
        return self.params.get("status")

    def paths(self, **scope: str) -> list[str]:
        return [p.format(**scope) for p in (self.path, *self.fallbacks)]


ORGANIZATION = Endpoint("organization", "organizations/{org}/", "organizations", paged=False)

PROJECTS = Endpoint("projects", "organizations/{org}/projects/", "projects")

# The list hides archived releases unless asked: walk both statuses. Newest first (`sort=date`,
# Sentry's default: by date added), so new releases are on the first page.
RELEASES = [
    Endpoint("releases", "organizations/{org}/releases/", "releases", params={"status": "open", "sort": "date"}),
    Endpoint("releases_archived", "organizations/{org}/releases/", "releases",
             params={"status": "archived", "sort": "date"}),
]

# `query` must be sent, even empty: without it Sentry applies `is:unresolved` and resolved issues
# silently go missing. 90 days is the longest window the issue search accepts.
ISSUES = Endpoint("issues", "organizations/{org}/issues/", "issues",
                  params={"statsPeriod": "90d", "sort": "date", "query": ""})

ISSUE_EVENTS = Endpoint("events", "organizations/{org}/issues/{issue}/events/", "events",
                        params={"full": "true"}, fallbacks=("issues/{issue}/events/",))

# A project's events, all issues at once: the cheapest listing (pages of 100 full events, one walk
# per project). Offset cursors over a fixed start/end window; the order is not relied on.
PROJECT_EVENTS = Endpoint("project_events", "projects/{org}/{project}/events/", "events", params={"full": "true"})

# An issue's grouping hashes, each with its latest event (`full=false`: the short event, its id is
# all that is kept). Read for issues whose count or lastSeen moved (syncing/issue_details.py).
ISSUE_HASHES = Endpoint("issue_hashes", "organizations/{org}/issues/{issue}/hashes/", "issue_hashes",
                        params={"full": "false"}, fallbacks=("issues/{issue}/hashes/",))
# One tag key of an issue: its top values (Sentry: up to 9) with counts, and the key's totals. Read
# for issues of projects whose events are sampled or not read, so their pages still have tags.
ISSUE_TAG = Endpoint("issue_tags", "organizations/{org}/issues/{issue}/tags/{key}/", "issue_tag_values",
                     paged=False)  # for the keys ISSUE_TAG_KEYS, below

TEAMS = Endpoint("teams", "organizations/{org}/teams/", "teams", snapshot=True)
MEMBERS = Endpoint("members", "organizations/{org}/members/", "members", snapshot=True)
ENVIRONMENTS = Endpoint("environments", "organizations/{org}/environments/", "environments",
                        params={"visibility": "all"}, snapshot=True)
ORG_LISTS = [TEAMS, MEMBERS, ENVIRONMENTS]

DEPLOYS = Endpoint("deploys", "organizations/{org}/releases/{release}/deploys/", "deploys")

# `[[unix_seconds, count], …]` per stat and resolution; since/until are unix seconds.
PROJECT_STATS = Endpoint("project_stats", "projects/{org}/{project}/stats/", "project_stats", paged=False)
STATS = ("received", "rejected", "blacklisted", "generated")
STAT_RESOLUTIONS = ("1h", "1d")

ORG_STATS = Endpoint("org_stats", "organizations/{org}/stats_v2/", "org_stats", paged=False,
                     params={"groupBy": ["outcome", "category"], "field": "sum(quantity)"})
# Hourly points for the last 30 days, daily ones for 90: GlitchTip refuses more than 1,000 intervals.
ORG_STAT_INTERVALS = (("1h", 30), ("1d", 90))

TAG_VALUES = Endpoint("tag_values", "projects/{org}/{project}/tags/{key}/values/", "tag_values", snapshot=True)
# A project's tag keys (Sentry's ProjectTagsEndpoint: key, name, uniqueValues, canDelete; one list,
# not paged); each key's values are then read. A server without the list (GlitchTip) has these read.
PROJECT_TAG_KEYS = Endpoint("project_tag_keys", "projects/{org}/{project}/tags/", "project_tag_keys", snapshot=True)
TAG_KEYS = ("environment", "release", "browser", "os", "user", "level")
ISSUE_TAG_KEYS = TAG_KEYS  # an issue's breakdown: the keys its page shows

# A project's service hooks. Sentry answers each with its signing `secret`: dropped before storing.
# 403 "You do not have that feature enabled" where the project lacks the servicehooks feature.
PROJECT_HOOKS = Endpoint("project_hooks", "projects/{org}/{project}/hooks/", "project_hooks", snapshot=True)

PROJECT_USERS = Endpoint("project_users", "projects/{org}/{project}/users/", "project_users", snapshot=True)

# The scope each read needs, by route: the read scope among those Sentry's OpenAPI schema lists for
# the operation (any one of them does). GlitchTip asks `project:releases` for releases, where Sentry
# also takes `project:read`.
_RELEASES_SCOPE = "project:read (project:releases on GlitchTip)"
SCOPES = {
    ORGANIZATION.path: "org:read", PROJECTS.path: "org:read", RELEASES[0].path: _RELEASES_SCOPE,
    DEPLOYS.path: _RELEASES_SCOPE, TEAMS.path: "org:read", MEMBERS.path: "member:read",
    ENVIRONMENTS.path: "org:read", ISSUES.path: "event:read", ISSUE_EVENTS.path: "event:read",
    ISSUE_EVENTS.fallbacks[0]: "event:read", PROJECT_EVENTS.path: "project:read",
    PROJECT_STATS.path: "project:read", ORG_STATS.path: "org:read", TAG_VALUES.path: "project:read",
    PROJECT_USERS.path: "project:read", PROJECT_TAG_KEYS.path: "project:read", PROJECT_HOOKS.path: "project:read",
}
SCOPES.update({ISSUE_HASHES.path: "event:read", ISSUE_HASHES.fallbacks[0]: "event:read", ISSUE_TAG.path: "event:read"})


def scope_of(path: str) -> str | None:
    """The scope a read of this path (relative to /api/0/) needs, when known."""
    return SCOPES.get(route_of(path))


def _route_patterns() -> list[tuple[re.Pattern, str]]:
    templates: set[str] = set()
    for value in list(globals().values()):
        for endpoint in value if isinstance(value, list) else [value]:
            if isinstance(endpoint, Endpoint):
                templates.update((endpoint.path, *endpoint.fallbacks))
    # the most literal template first, should two match one path
    ordered = sorted(templates, key=lambda t: (-len(re.sub(r"\{[^}]+\}", "", t)), t))
    return [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"), t) for t in ordered]


def route_of(path: str) -> str:
    """The endpoint a path belongs to, as its template: Sentry keeps a rate-limit window (and a
    concurrency count) per endpoint, shared by all its projects and issues, not one per URL."""
    for pattern, template in _ROUTES:
        if pattern.match(path):
            return template
    return path


_ROUTES = _route_patterns()  # after every endpoint above is defined


# The slowly changing streams and how often each is re-read by default (a source's `refresh_hours`
# overrides it). The rest are read every sync, each by the cheapest request that tells what changed.
# Here, with the endpoints, so that the command line can name them without loading the HTTP client.
CADENCES = {name: timedelta(days=1) for name in
            ("organization", "projects", "teams", "members", "environments", "project_details",
             "releases", "releases_archived")}  # releases: the whole lists; between, their newest pages
