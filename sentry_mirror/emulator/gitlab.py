"""GitLab's error-tracking routes (REST API v4), served beside the Sentry API so that
`config from-gitlab` can be tested end to end.

Served (GET only): `/api/v4/projects/:id`, `/api/v4/projects/:id/error_tracking/settings`,
`/api/v4/projects/:id/error_tracking/client_keys` and `/api/v4/groups/:id/projects`, where `:id`
is a number or the URL-encoded path (`acme%2Fbackend%2Fworker`). Auth is the `PRIVATE-TOKEN`
header, which must be TOKEN below; errors are GitLab's `{"message": "401 Unauthorized"}`,
`403 Forbidden`, `404 Project Not Found`, `404 Group Not Found` and `404 Error Tracking Setting
Not Found`. Lists page as GitLab's offset pagination does (`page`, `per_page`; `Link` with
prev/next/first/last, `X-Page`, `X-Per-Page`, `X-Next-Page`, `X-Prev-Page`, `X-Total`,
`X-Total-Pages`), except that `per_page` is capped at MAX_PER_PAGE (GitLab: 100), so that even a
client asking 100 a page crosses pages here. With `emulator.gitlab_links = False` lists come
without `Link`, only the X- headers, as from a proxy that drops it (the client then pages by
`X-Next-Page`).

The group `acme` holds one GitLab project per case: `acme/web` active and pointing at this
emulator's own Sentry organization and its first project, `acme/api` turned off, `acme/mobile`
on GitLab's integrated backend (with client keys), `acme/docs` with no setting, and
`acme/backend/worker` (a subgroup) active on the second Sentry project, and `acme/secret`, which
the token sees but whose settings answer 403, as for a token without the Maintainer role. The
group `ops` holds the projects `--all` must walk past: `ops/legacy`, active but its `api_url` is
a Sentry web page, not an API URL; `ops/flaky`, whose settings always answer 503; then `ops/app`,
active on the third Sentry project.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode

from .api import Response

TOKEN = "glpat-emulator-0000000000"  # the PRIVATE-TOKEN the emulator accepts (tests use it)
GROUP = "acme"
MAX_PER_PAGE = 2
DEFAULT_PER_PAGE = 20


@dataclass(frozen=True)
class GitLabProject:
    id: int
    path: str  # path_with_namespace
    setting: str | None  # "active", "inactive", "integrated", "broken" (bad api_url) or None (no setting)
    sentry_project: int = 0  # which of the world's projects an external setting points at
    forbidden: bool = False
    down: bool = False  # its settings answer 503, every time


PROJECTS = (
    GitLabProject(101, "acme/web", "active", 0),
    GitLabProject(102, "acme/api", "inactive", 1),
    GitLabProject(103, "acme/mobile", "integrated"),
    GitLabProject(104, "acme/docs", None),
    GitLabProject(105, "acme/backend/worker", "active", 1),
    GitLabProject(106, "acme/secret", "active", 0, forbidden=True),
    GitLabProject(107, "ops/legacy", "broken", 2),
    GitLabProject(108, "ops/flaky", "active", 2, down=True),
    GitLabProject(109, "ops/app", "active", 2),
)


def serve(emulator, method: str, raw_path: str, query: str, headers) -> Response:
    """Answer one /api/v4/ request as GitLab does."""
    if headers.get("PRIVATE-TOKEN") != TOKEN:
        return _message(401, "401 Unauthorized")
    if method != "GET":
        return _message(405, "405 Method Not Allowed")
    parts = raw_path.removeprefix("/api/v4/").rstrip("/").split("/")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if len(parts) >= 2 and parts[0] == "projects":
        project = _project(unquote(parts[1]))
        if project is None:
            return _message(404, "404 Project Not Found")
        return _project_route(emulator, project, parts[2:], raw_path, params)
    if len(parts) == 3 and parts[0] == "groups" and parts[2] == "projects":
        return _group_projects(emulator, unquote(parts[1]), raw_path, params)
    return _message(404, "404 Not Found")


def _message(status: int, text: str) -> Response:
    return Response(status, {"message": text})


def _project(key: str) -> GitLabProject | None:
    return next((p for p in PROJECTS if key in (str(p.id), p.path)), None)


def _project_route(emulator, project: GitLabProject, rest: list[str], raw_path: str, params: dict) -> Response:
    if not rest:
        return Response(200, _project_json(emulator, project))
    if project.forbidden:
        return _message(403, "403 Forbidden")
    if rest == ["error_tracking", "settings"]:
        if project.down:
            return _message(503, "503 Service Unavailable")
        if project.setting is None:
            return _message(404, "404 Error Tracking Setting Not Found")
        return Response(200, _setting(emulator, project))
    if rest == ["error_tracking", "client_keys"]:
        return _paged(emulator, raw_path, params, _client_keys(emulator, project))
    return _message(404, "404 Not Found")


def _project_json(emulator, project: GitLabProject) -> dict:
    name = project.path.rsplit("/", 1)[-1]
    return {"id": project.id, "name": name, "path": name, "path_with_namespace": project.path,
            "namespace": {"full_path": project.path.rsplit("/", 1)[0]},
            "web_url": f"{emulator.url}/{project.path}"}


def _setting(emulator, project: GitLabProject) -> dict:
    """What GitLab keeps: the Sentry project's API URL and page, or neither on its own backend."""
    if project.setting == "integrated":
        return {"active": True, "project_name": None, "sentry_external_url": None, "api_url": None,
                "integrated": True}
    sentry = emulator.world.projects[project.sentry_project % len(emulator.world.projects)]
    org = emulator.world.org_slug
    page = f"{emulator.url}/organizations/{org}/projects/{sentry.slug}/"
    return {"active": project.setting != "inactive", "project_name": sentry.slug, "sentry_external_url": page,
            "api_url": page if project.setting == "broken" else f"{emulator.url}/api/0/projects/{org}/{sentry.slug}/",
            "integrated": False}


def _client_keys(emulator, project: GitLabProject) -> list[dict]:
    """GitLab's integrated backend's DSNs: the public key is in the DSN; nothing secret."""
    if project.setting != "integrated":
        return []
    host = emulator.url.split("//", 1)[1]
    keys = [(1, True, f"glet_{project.id:032x}"), (2, False, f"glet_{project.id + 1000:032x}")]
    return [{"id": i, "active": active, "public_key": key,
             "sentry_dsn": f"http://{key}@{host}/api/v4/error_tracking/collector/{project.id}"}
            for i, active, key in keys]


def _group_projects(emulator, group: str, raw_path: str, params: dict) -> Response:
    if not any(p.path.startswith(group + "/") for p in PROJECTS):
        return _message(404, "404 Group Not Found")
    deep = params.get("include_subgroups") == "true"
    found = [p for p in PROJECTS if p.path.startswith(group + "/")
             and (deep or "/" not in p.path.removeprefix(group + "/"))]
    return _paged(emulator, raw_path, params, [_project_json(emulator, p) for p in found])


def _paged(emulator, raw_path: str, params: dict, items: list) -> Response:
    """GitLab's offset pagination: the page asked, its Link header and X- headers."""
    try:
        per_page = min(max(int(params.get("per_page") or DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        page = max(int(params.get("page") or 1), 1)
    except ValueError:
        return _message(400, "400 Bad request - per_page is invalid")
    pages = max(1, -(-len(items) // per_page))
    rows = items[(page - 1) * per_page: page * per_page]

    def link(n: int) -> str:
        return f"{emulator.url}{raw_path}?{urlencode({**params, 'page': n, 'per_page': per_page})}"

    rels = ([("prev", page - 1)] if page > 1 else []) + ([("next", page + 1)] if page < pages else [])
    rels += [("first", 1), ("last", pages)]
    headers = [("Link", ", ".join(f'<{link(n)}>; rel="{rel}"' for rel, n in rels)),
               ("X-Page", str(page)), ("X-Per-Page", str(per_page)),
               ("X-Next-Page", str(page + 1) if page < pages else ""),
               ("X-Prev-Page", str(page - 1) if page > 1 else ""),
               ("X-Total", str(len(items))), ("X-Total-Pages", str(pages))]
    if not emulator.gitlab_links:  # a proxy that drops Link: X- headers only
        headers = headers[1:]
    return Response(200, rows, headers)
