"""Time windows and Sentry's issue search language (parsed by the mirror's parser, evaluated here).

Window rules follow sentry.api.utils.get_date_range_from_params: `statsPeriod` wins over
`start`/`end`, both of which are required together; no window means the last 90 days.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable

from ..errors import SearchError
from ..reading.search import parser
from . import catalog, render
from .model import DAY_MS, HOUR_MS, RETENTION_MS, Agg, Issue
from .pagination import bad_request
from .world import World

PERIOD_RE = re.compile(r"^(\d+)([smhdw]?)$")
RELATIVE_RE = re.compile(r"^([+-]?)(\d+)([smhdw])$")
UNIT_MS = {"": 1000, "s": 1000, "m": 60_000, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
STATUS_VALUES = {"unresolved", "resolved", "ignored", "archived"}
SUBSTATUS_VALUES = {"new", "ongoing", "regressed", "escalating"}
ASSIGN_VALUES = {"assigned", "unassigned"}
SORTS = {
    "date": lambda a: a.last_ms,
    "new": lambda a: a.first_ms,
    "freq": lambda a: a.count,
    "user": lambda a: a.user_count,
}

Predicate = Callable[[Issue, Agg], bool]


def first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


def parse_datetime_ms(text: str) -> int:
    """ISO-8601 (with `Z`, offsets, fractions or date only) to epoch ms; naive means UTC."""
    try:
        dt = datetime.fromisoformat(text.strip().replace(" ", "+") if "T" in text else text.strip())
    except ValueError:
        raise bad_request(f"{text} is not a valid ISO8601 date query") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def date_window(params: dict[str, list[str]], now_ms: int) -> tuple[int, int]:
    """[start, end) in epoch ms from statsPeriod / start+end, defaulting to the last 90 days."""
    period = first(params, "statsPeriod")
    start, end = first(params, "start"), first(params, "end")
    if period is not None:
        m = PERIOD_RE.match(period)
        if not m or int(m.group(1)) == 0:
            raise bad_request(f"Invalid statsPeriod: {period!r}")
        return now_ms - int(m.group(1)) * UNIT_MS[m.group(2)], now_ms
    if start is None and end is None:
        return now_ms - RETENTION_MS, now_ms
    if start is None or end is None:
        raise bad_request("start and end are both required")
    start_ms, end_ms = parse_datetime_ms(start), parse_datetime_ms(end)
    if start_ms >= end_ms:
        raise bad_request("start must be before end")
    return start_ms, end_ms


def parse_issue_query(text: str, world: World, dates: bool = True) -> list[Predicate]:
    """The query (the mirror's parser: Sentry's language) as one predicate, evaluated here over the
    world independently of the mirror's SQL; a query that does not parse is a 400, and so are (with
    `dates` off, as on GlitchTip) `lastSeen:`/`firstSeen:`."""
    try:
        node = parser.parse(text, world_tag_keys(world))
    except SearchError as exc:
        raise bad_request(f"Invalid query. {exc}") from None
    if node is None:
        return []
    if not dates and _uses_dates(node):
        raise bad_request("Invalid query. Unsupported search key: 'lastSeen'")
    return [_Evaluator(world).compile(node)]


def world_tag_keys(world: World) -> set[str]:
    """Every tag key the world's events carry (valid as `key:value`)."""
    key = ("tag_keys",)
    if key not in world.cache:
        world.cache[key] = {k for i in world.issues for k in render._event_tag_keys(i)}
    return world.cache[key]


def _uses_dates(node) -> bool:
    if isinstance(node, (parser.And, parser.Or)):
        return any(_uses_dates(n) for n in node.items)
    return isinstance(node, parser.Filter) and node.kind == "date"


def _matcher(values) -> Callable[[str | None], bool]:
    """Equal to one of the values; a value with `*` matches as a wildcard, ignoring case."""
    tests = []
    for v in values:
        rx = parser.wildcard_regex(v)
        if rx is not None:
            tests.append(lambda s, r=re.compile("(?i)" + rx): r.search(s) is not None)
        else:
            tests.append(lambda s, e=parser.unescape(v): s == e)
    return lambda s: s is not None and any(t(s) for t in tests)  # a missing value matches nothing


def _contains(text: str) -> Callable[[str | None], bool]:
    rx = re.compile("(?i)" + ".*".join(parser.re_escape(parser.unescape(p)) for p in text.split("*")))
    return lambda s: rx.search(s or "") is not None


class _Evaluator:
    """AST -> predicate over (Issue, Agg). Event keys hold when any retained event matches."""

    def __init__(self, world: World):
        self.world = world

    def compile(self, node) -> Predicate:
        if isinstance(node, parser.And):
            parts = [self.compile(n) for n in node.items]
            return lambda i, a: all(p(i, a) for p in parts)
        if isinstance(node, parser.Or):
            parts = [self.compile(n) for n in node.items]
            return lambda i, a: any(p(i, a) for p in parts)
        if isinstance(node, parser.FreeText):
            return self.free_text(node.text)
        return self.filter(node)

    def free_text(self, text: str) -> Predicate:
        hit = _contains(text)
        return lambda i, a: hit(i.title) or hit(i.culprit)  # an event's message is its issue's title

    def seen(self, ms: int) -> datetime:
        cut = 1000 if self.world.seen_in_seconds else 1
        return datetime.fromtimestamp(ms // cut * cut / 1000, timezone.utc)

    def filter(self, f) -> Predicate:
        if f.op in ("has", "not has"):
            pred = self.has(f)
            return pred if f.op == "has" else (lambda i, a: not pred(i, a))
        negated = f.op in ("!=", "not in")
        if f.kind == "is":
            pred = _is_predicate(f.value)
        elif f.kind == "date":
            return self.date(f)
        elif f.kind == "number":
            return self.number(f)
        elif f.kind == "bool":
            return lambda i, a: bool(i.handled) == f.value  # every event of an issue has its exception
        elif f.key == "message":
            hits = [_contains(v) for v in f.value]
            pred = lambda i, a: any(h(i.title) or h(i.culprit) for h in hits)
        elif f.key == "assigned":
            pred = self.assigned(f.value)
        elif f.key in ("bookmarks", "subscribed"):  # the token's user: `me`; nobody else's are kept
            field = "bookmarked" if f.key == "bookmarks" else "subscribed"
            mine = "me" in f.value
            pred = lambda i, a: mine and bool(getattr(i, field))
        elif f.key in ISSUE_TEXT:
            field, match = ISSUE_TEXT[f.key], _matcher(f.value)
            pred = lambda i, a: match(field(i))
        else:
            return self.event_filter(f, negated)
        return (lambda i, a: not pred(i, a)) if negated else pred

    def event_filter(self, f, negated: bool) -> Predicate:
        """Any retained event of the issue whose value matches (does not match, negated)."""
        value_of = self.event_value(f.key)
        match = _matcher([v for v in f.value if not (f.key == "release" and v == "latest")])
        latest = f.key == "release" and "latest" in f.value

        def pred(issue: Issue, agg: Agg) -> bool:
            newest = _latest_release(issue) if latest else None
            for seq in range(agg.lo, len(issue.times)):
                value = value_of(issue, seq)
                hit = match(value) or (latest and newest is not None and value == newest)
                if hit != negated:
                    return True
            return False

        return pred

    def event_value(self, key: str) -> Callable[[Issue, int], str | None]:
        world = self.world
        if key == "release":
            return lambda i, s: (lambda r: r.version if r else None)(i.project.release_at(i.times[s]))
        if key == "environment":
            return world.environment
        if key in USER_FIELDS:
            name = USER_FIELDS[key]
            return lambda i, s: render.user_fields(i.users[s])[name] if i.users[s] >= 0 else None
        if key == "error.type":
            return lambda i, s: i.exc_type
        if key == "error.value":
            return lambda i, s: i.exc_value
        return lambda i, s: next((t["value"] for t in render.event_tags(world, i, s) if t["key"] == key), None)

    def has(self, f) -> Predicate:
        if f.key == "firstRelease":
            return lambda i, a: i.first_release is not None
        if f.key == "assigned":
            return lambda i, a: i.assigned is not None
        if f.key in ISSUE_TEXT or f.kind in ("date", "number", "bool") or f.key in (
                "message", "error.type", "error.value"):
            return lambda i, a: True
        value_of = self.event_value(f.key)
        return lambda i, a: any(value_of(i, s) for s in range(a.lo, len(i.times)))

    def assigned(self, values) -> Predicate:
        def one(v: str) -> Predicate:
            if v == "none":
                return lambda i, a: i.assigned is None
            if v == "me":
                return lambda i, a: False  # the emulator's token belongs to no member
            if v.startswith("#"):
                return lambda i, a: i.assigned is not None and i.assigned[0] == "team" and i.assigned[2] == v[1:]
            name = v.lower().split("@")[0] if "@" not in v or v.lower().endswith("@acme.example") else None
            return lambda i, a: (i.assigned is not None and i.assigned[0] == "user"
                                 and name is not None and i.assigned[2].lower() == name)
        parts = [one(v) for v in values]
        return lambda i, a: any(p(i, a) for p in parts)

    def date(self, f) -> Predicate:
        now = datetime.fromtimestamp(self.world.now_ms / 1000, timezone.utc)
        field = "last_ms" if f.key == "lastSeen" else "first_ms"
        if f.op == "range":
            lo, hi = (parser.resolve_time(v, now) for v in f.value)
            return lambda i, a: lo <= self.seen(getattr(a, field)) < hi
        t = parser.resolve_time(f.value, now)
        compare = COMPARE[f.op]
        return lambda i, a: compare(self.seen(getattr(a, field)), t)

    def number(self, f) -> Predicate:
        if f.op in ("in", "not in"):
            want = set(f.value)
            return lambda i, a: (a.count in want) != (f.op == "not in")
        compare = COMPARE[f.op]
        return lambda i, a: compare(a.count, f.value)


COMPARE = {">": lambda x, y: x > y, ">=": lambda x, y: x >= y, "<": lambda x, y: x < y,
           "<=": lambda x, y: x <= y, "=": lambda x, y: x == y, "!=": lambda x, y: x != y}
USER_FIELDS = {"user.email": "email", "user.id": "id", "user.username": "username", "user.ip": "ip_address"}
ISSUE_TEXT = {
    "level": lambda i: i.level,
    "platform": lambda i: catalog.platform_family(i.project.platform).event_platform,
    "project": lambda i: i.project.slug,
    "issue.category": lambda i: "error",
    "issue.type": lambda i: "error",
    "firstRelease": lambda i: i.first_release.version if i.first_release else None,
}


def _latest_release(issue: Issue) -> str | None:
    releases = issue.project.releases
    return max(releases, key=lambda r: (r.created_ms, r.version)).version if releases else None


def _is_predicate(value: str) -> Predicate:
    if value in STATUS_VALUES:
        status = "ignored" if value == "archived" else value
        return lambda i, a: i.status == status
    if value in SUBSTATUS_VALUES:
        return lambda i, a: i.substatus == value
    if value in ASSIGN_VALUES:
        want = value == "assigned"
        return lambda i, a: (i.assigned is not None) == want
    raise bad_request(f"Invalid query. is:{value} is not supported by the emulator")
