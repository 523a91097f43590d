"""Sentry endpoints the mirror reads, described as data.

Each stream names its path (relative to `/api/0/`), the table its objects go to, fixed query
parameters, and fallback paths for servers that lack the first one (GlitchTip serves only the
legacy unscoped issue routes). The generic walker in `sync.py` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    entity: str
    params: dict = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    paged: bool = True

    def paths(self, **scope: str) -> list[str]:
        return [p.format(**scope) for p in (self.path, *self.fallbacks)]


ORGANIZATION = Endpoint("organization", "organizations/{org}/", "organizations", paged=False)

PROJECTS = Endpoint("projects", "organizations/{org}/projects/", "projects")

# The list hides archived releases unless asked: walk both statuses.
RELEASES = [
    Endpoint("releases", "organizations/{org}/releases/", "releases", params={"status": "open"}),
    Endpoint("releases_archived", "organizations/{org}/releases/", "releases", params={"status": "archived"}),
]

# `query` must be sent, even empty: without it Sentry applies `is:unresolved` and resolved issues
# silently go missing. 90 days is the longest window the issue search accepts.
ISSUES = Endpoint("issues", "organizations/{org}/issues/", "issues",
                  params={"statsPeriod": "90d", "sort": "date", "query": ""})

ISSUE_EVENTS = Endpoint("events", "organizations/{org}/issues/{issue}/events/", "events",
                        params={"full": "true"}, fallbacks=("issues/{issue}/events/",))
