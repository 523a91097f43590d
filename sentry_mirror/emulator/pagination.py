"""Sentry's cursors, paginators and `Link` header, reproduced from src/sentry/api (see FACTS.md §1)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import quote, unquote, urlencode

MAX_PER_PAGE = 100
MAX_HITS = 1000


class ApiError(Exception):
    """An API error answered as `{"detail": ...}` (or a bare JSON string when `bare`)."""

    def __init__(self, status: int, detail: str, bare: bool = False):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.bare = bare

    @property
    def payload(self):
        return self.detail if self.bare else {"detail": self.detail}


def bad_request(detail: str) -> ApiError:
    return ApiError(400, detail)


@dataclass(frozen=True)
class Cursor:
    value: int | float
    offset: int
    is_prev: bool
    has_results: bool = True

    def __str__(self) -> str:
        return f"{self.value}:{self.offset}:{int(self.is_prev)}"


def parse_cursor(raw: str | None) -> Cursor | None:
    """Parse `value:offset:is_prev` like sentry.utils.cursors.Cursor.from_string."""
    if not raw:
        return None
    bits = raw.split(":")
    try:
        if len(bits) != 3:
            raise ValueError(raw)
        value = float(bits[0]) if "." in bits[0] else int(bits[0])
        cursor = Cursor(value, int(bits[1]), bool(int(bits[2])))
    except ValueError:
        raise bad_request("Invalid cursor parameter.") from None
    if cursor.offset < 0:
        raise bad_request("Pagination offset cannot be negative")
    return cursor


def parse_per_page(raw: str | None, default: int = MAX_PER_PAGE) -> int:
    """`per_page` (or issue search `limit`): default 100; above 100 is an error, not a clamp."""
    if raw is None:
        return default
    try:
        per_page = int(raw)
    except ValueError:
        raise bad_request("Invalid per_page parameter.") from None
    if per_page > MAX_PER_PAGE:
        raise bad_request(f"Invalid per_page value. Cannot exceed {MAX_PER_PAGE}.")
    if per_page < 1:
        raise bad_request("Invalid per_page value. Cannot be less than 1.")
    return per_page


@dataclass
class Page:
    rows: Sequence
    prev: Cursor
    next: Cursor
    hits: int | None = None  # sent as X-Hits (Sentry sends it for issue search only)
    total: int | None = None  # rows in the whole list


def offset_page(rows: Sequence, limit: int, cursor: Cursor | None) -> Page:
    """GenericOffsetPaginator: value always 0, offset = absolute row offset."""
    offset = cursor.offset if cursor else 0
    page = rows[offset: offset + limit]
    has_more = len(rows) > offset + limit
    return Page(page, Cursor(0, max(0, offset - limit), True, offset > 0),
                Cursor(0, offset + limit, False, has_more), total=len(rows))


def page_number_page(rows: Sequence, limit: int, cursor: Cursor | None) -> Page:
    """OffsetPaginator: cursor value = page size, offset = page number (`100:1:0`)."""
    cursor = cursor or Cursor(0, 0, False)
    page_no = cursor.offset
    size = int(cursor.value) if cursor.value else limit
    start = page_no * size
    results = list(rows[start: start + size + 1])
    if size != limit:
        results = results[-(limit + 1):]
    return Page(results[:limit], Cursor(limit, page_no - 1, True, page_no > 0),
                Cursor(limit, page_no + 1, False, len(results) > limit), total=len(rows))


def keyset_page(rows: Sequence, scores: Sequence[int], limit: int, cursor: Cursor | None, hits: int) -> Page:
    """Issue-search pagination: rows sorted by score desc; cursor = `score:ties_to_skip:is_prev`.

    `scores` must be the rows' scores negated (ascending), so ties are located by bisection.
    """
    def first_with(score):  # index of the first row whose score <= `score`
        return bisect_left(scores, -score)

    def end_of(score):  # index just past the last row whose score >= `score`
        return bisect_right(scores, -score)

    if cursor is None:
        start, end = 0, min(limit, len(rows))
    elif cursor.is_prev:
        end = max(0, end_of(cursor.value) - cursor.offset)
        start = max(0, end - limit)
    else:
        start = min(len(rows), first_with(cursor.value) + cursor.offset)
        end = min(len(rows), start + limit)
    page = rows[start:end]
    if page:
        first, last = -scores[start], -scores[end - 1]
        prev = Cursor(first, end_of(first) - start, True, start > 0)
        nxt = Cursor(last, end - first_with(last), False, end < len(rows))
    else:
        value = cursor.value if cursor else 0
        offset = cursor.offset if cursor else 0
        prev = Cursor(value, offset, True, start > 0)
        nxt = Cursor(value, offset, False, False)
    return Page(page, prev, nxt, hits, total=len(rows))


def link_base(host: str, raw_path: str, pairs: list[tuple[str, str]]) -> str:
    """Absolute request URL plus its query string minus `cursor`, re-encoded as Django's QueryDict does."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "cursor":
            grouped.setdefault(key, []).append(value)
    query = urlencode([(k, v) for k, values in grouped.items() for v in values])
    return f"http://{host}{quote(unquote(raw_path))}?{query}"


def link_header(base: str, page: Page) -> str:
    """`Link` value: previous first, then next, each with results= and cursor= attributes."""
    def one(name: str, cursor: Cursor) -> str:
        results = "true" if cursor.has_results else "false"
        return f'<{base}&cursor={cursor}>; rel="{name}"; results="{results}"; cursor="{cursor}"'

    return f"{one('previous', page.prev)}, {one('next', page.next)}"
