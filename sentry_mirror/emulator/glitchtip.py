"""GlitchTip's deviations from Sentry's API, applied over the same world (see GLITCHTIP.md).

GlitchTip (Django + django-ninja) pages with opaque base64 cursors and `limit` (default 50),
renders its Link header from a Python set (`{'…'}`), leaves the cursor attribute off links
without results, names issue sorts differently (422 for Sentry's names), uses snake_case in the
issue events list, and answers 500 with an HTML page for routes it does not have. Seen later on
the same build: releases name their projects by slug only and ignore `status`, events carry no
level (field or tag) and users with only id and email, and issues count 0 users.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .pagination import MAX_HITS, MAX_PER_PAGE, ApiError, Cursor, Page, parse_cursor

FLAVOR = "glitchtip"
PAGE_SIZE = 50
ERROR_PAGE = (b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
              b'<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n')
# Routes GlitchTip does not serve (by template): org-scoped issue sub-routes, project stats, deploys,
# the project tag key list and service hooks.
MISSING_ROUTES = {
    "/api/0/organizations/{org}/issues/{issue_id}/events/",
    "/api/0/organizations/{org}/issues/{issue_id}/events/{event_id}/",
    "/api/0/organizations/{org}/issues/{issue_id}/hashes/",
    "/api/0/organizations/{org}/issues/{issue_id}/tags/{key}/",  # it lists /issues/{id}/tags/ only
    "/api/0/projects/{org}/{project}/stats/",
    "/api/0/organizations/{org}/releases/{version}/deploys/",
    # Project tag values and users answer this HTML 500 (GLITCHTIP.md); it keeps no tag key list either.
    "/api/0/projects/{org}/{project}/tags/",
    "/api/0/projects/{org}/{project}/tags/{key}/values/",
    "/api/0/projects/{org}/{project}/users/",
    # Assumed: GlitchTip has alert webhooks of its own, not Sentry's project service hooks.
    "/api/0/projects/{org}/{project}/hooks/",
    "/api/0/projects/{org}/{project}/hooks/{hook_id}/",
}
SORTS = ("last_seen", "first_seen", "count", "priority")
_SNAKE = {"eventID": "event_id", "groupID": "group_id", "projectID": "project_id",
          "dateCreated": "date_created", "dateReceived": "date_received"}


def validation_error(loc: list, msg: str, kind: str, **ctx) -> ApiError:
    """django-ninja's 422 body: {"detail": [{"type", "loc", "msg", "ctx"?}]}."""
    item = {"type": kind, "loc": loc, "msg": msg}
    if ctx:
        item["ctx"] = ctx
    return ApiError(422, [item])


def missing(where: str, name: str) -> ApiError:
    return validation_error([where, name], "Field required", "missing")


# ----- pagination ------------------------------------------------------------------------------------
def encode_cursor(cursor: Cursor) -> str:
    """Opaque to clients: our own `value:offset:is_prev`, as a DRF-style `p=` token in base64."""
    return base64.b64encode(f"p={cursor}".encode("ascii")).decode("ascii")


def decode_cursor(raw: str) -> Cursor:
    try:
        text = base64.b64decode(raw.encode("ascii"), validate=True).decode("ascii")
        if not text.startswith("p="):
            raise ValueError(text)
        return parse_cursor(text[2:])
    except (ValueError, binascii.Error, UnicodeError, ApiError):
        raise ApiError(400, "Invalid cursor") from None


def page_size(raw: str | None) -> int:
    """`limit` (default 50), clamped to 1..100 like ninja's cursor pagination; not a number is a 422."""
    if raw is None or raw == "":
        return PAGE_SIZE
    try:
        limit = int(raw)
    except ValueError:
        raise validation_error(["query", "limit"], "Input should be a valid integer, unable to parse string as an "
                               "integer", "int_parsing") from None
    return min(max(limit or PAGE_SIZE, 1), MAX_PER_PAGE)


def link_header(host: str, raw_path: str, pairs: list[tuple[str, str]], page: Page) -> str:
    """Both links inside a rendered Python set; links without results point at the request itself."""
    here = urlunsplit(("http", host, raw_path, urlencode(pairs), ""))

    def one(name: str, cursor: Cursor) -> str:
        if not cursor.has_results:
            return f'<{here}>; rel="{name}"; results="false"'
        token = encode_cursor(cursor)
        query = dict(parse_qsl(urlsplit(here).query, keep_blank_values=True))
        query["cursor"] = token
        url = urlunsplit(("http", host, raw_path, urlencode(sorted(query.items())), ""))
        return f'<{url}>; rel="{name}"; results="true"; cursor="{token}"'

    return str({f"{one('previous', page.prev)}, {one('next', page.next)}"})


def hits_headers(page: Page) -> list[tuple[str, str]]:
    """X-Hits: the total (counted up to 1000) when there is more than one page, else the page size."""
    several = page.prev.has_results or page.next.has_results
    hits = min(page.total, MAX_HITS) if several and page.total is not None else len(page.rows)
    return [("X-Hits", str(hits)), ("X-Max-Hits", str(MAX_HITS))]


# ----- shapes ------------------------------------------------------------------------------------------
def organization(out: dict) -> dict:
    out["require2fa"] = out.pop("require2FA")
    return out


def release(out: dict) -> dict:
    """No id, newGroups or lastEvent; its projects are `{name, slug}`, without their id."""
    for key in ("id", "newGroups", "lastEvent"):
        out.pop(key, None)
    out["projects"] = [{"name": p["name"], "slug": p["slug"]} for p in out.get("projects") or []]
    return out


EVENT_HANDLERS = {"issue_events", "issue_event", "project_events", "project_event"}
ISSUE_HANDLERS = {"org_issues", "project_issues", "issue_detail"}


def reshape(name: str, payload):
    """A handler's answer as GlitchTip shapes it: events without `level` (field and tag) and with
    users of only id and email; issues with a userCount of 0 (list and detail)."""
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        if not isinstance(item, dict):
            continue
        if name in EVENT_HANDLERS:
            item.pop("level", None)
            item["tags"] = [t for t in item.get("tags") or [] if t.get("key") != "level"]
            if isinstance(item.get("user"), dict):
                item["user"] = {k: item["user"].get(k) for k in ("id", "email")}
        elif name in ISSUE_HANDLERS:
            item["userCount"] = 0
            if isinstance(item.get("lifetime"), dict):
                item["lifetime"]["userCount"] = 0
    return payload


def snake_event(out: dict, received: str) -> dict:
    """Issue events list item: the id fields and dates in snake_case."""
    renamed = {_SNAKE.get(k, k): v for k, v in out.items()}
    renamed.setdefault("date_received", received)
    return renamed


def issue_sort(raw: str | None) -> tuple[str, bool]:
    """(sort field, descending) from `[-]last_seen|first_seen|count|priority`; anything else is a 422."""
    value = raw if raw else "-last_seen"
    name = value.removeprefix("-")
    if name not in SORTS:
        allowed = [s for name in SORTS for s in (name, f"-{name}")]
        expected = ", ".join(f"'{s}'" for s in allowed[:-1]) + f" or '{allowed[-1]}'"
        raise validation_error(["query", "sort"], f"Input should be {expected}", "literal_error", expected=expected)
    return name, value.startswith("-")
