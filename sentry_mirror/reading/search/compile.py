"""A parsed issue search (parser.py) as ONE parameterised DuckDB condition over `issues i`.

Values are always bound parameters; key names only pick SQL from the fixed tables below. Issue
keys read the issues row; event keys (release, environment, user.*, error.*, tags) hold when ANY
stored event of the issue matches, as Sentry's search does over its events. Wildcards and free
text match case-insensitively; a value without `*` must be equal."""

from __future__ import annotations

from datetime import datetime, timezone

from ...errors import SearchError
from .parser import And, Filter, FreeText, Or, re_escape, resolve_time, unescape, wildcard_regex

# issue-level text keys -> SQL over `i`
ISSUE_TEXT = {
    "level": "i.level",
    "platform": "i.platform",
    "project": "(SELECT p.slug FROM projects p WHERE p.source = i.source AND p.id = i.project_id)",
    "issue.category": "coalesce(i.raw->>'issueCategory', i.type)",
    "issue.type": "coalesce(i.raw->>'issueType', i.type)",
    "firstRelease": ("(SELECT arg_min(e.release, e.date_created) FROM events e WHERE e.source = i.source "
                     "AND e.issue_id = i.id HAVING min(e.date_created) < i.first_seen + INTERVAL 1 SECOND)"),
}
# event-level text keys -> SQL over `e` (an event of the issue)
EVENT_TEXT = {
    "release": "e.release", "environment": "e.environment", "user.email": "e.user_email",
    "user.id": "e.user_id", "user.username": "e.user_username", "user.ip": "e.user_ip",
}
EXCEPTION_TEXT = {"error.type": "x.type", "error.value": "x.value"}
DATES = {"firstSeen": "i.first_seen", "lastSeen": "i.last_seen"}
NUMBERS = {"times_seen": "i.times_seen"}
IS_SQL = {
    "unresolved": "i.status = 'unresolved'", "resolved": "i.status = 'resolved'",
    "ignored": "i.status = 'ignored'", "archived": "i.status = 'ignored'",
    "assigned": "i.assigned_to IS NOT NULL", "unassigned": "i.assigned_to IS NULL",
    "new": "i.substatus = 'new'", "ongoing": "i.substatus = 'ongoing'",
    "regressed": "i.substatus = 'regressed'", "escalating": "i.substatus = 'escalating'",
}
OWN_FLAGS = {"bookmarks": "isBookmarked", "subscribed": "isSubscribed"}  # fixed JSON keys, never user text
EVENTS_OF = "FROM events e WHERE e.source = i.source AND e.issue_id = i.id"


def naive_utc(moment: datetime) -> datetime:
    """The store keeps UTC times without a zone."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


class Compiler:
    """Walks the AST, collecting SQL text and its parameters in order."""

    def __init__(self, now: datetime, me: str | None = None):
        self.now, self.me, self.params = now, me, []

    def bind(self, value) -> str:
        self.params.append(value)
        return "?"

    def node(self, n) -> str:
        if isinstance(n, And):
            return "(" + " AND ".join(self.node(c) for c in n.items) + ")"
        if isinstance(n, Or):
            return "(" + " OR ".join(self.node(c) for c in n.items) + ")"
        if isinstance(n, FreeText):
            return self.free_text(n.text)
        return self.filter(n)

    def match(self, expr: str, values) -> str:
        """expr equals one of the values (a wildcard value: matches it, case-insensitively)."""
        parts = []
        for v in values:
            rx = wildcard_regex(v)
            if rx is not None:
                parts.append(f"regexp_matches({expr}, {self.bind('(?i)' + rx)})")
            else:
                parts.append(f"{expr} = {self.bind(unescape(v))}")
        return "(" + " OR ".join(parts) + ")"

    def free_text(self, text: str) -> str:
        """Title, culprit or a stored event's message contains the text (`*` any run)."""
        rx = "(?i)" + ".*".join(re_escape(unescape(p)) for p in text.split("*"))
        a, b, c = self.bind(rx), self.bind(rx), self.bind(rx)
        return (f"(regexp_matches(coalesce(i.title, ''), {a}) OR regexp_matches(coalesce(i.culprit, ''), {b}) "
                f"OR EXISTS (SELECT 1 {EVENTS_OF} AND regexp_matches(coalesce(e.message, ''), {c})))")

    def filter(self, f: Filter) -> str:
        if f.op in ("has", "not has"):
            sql = self.has(f)
            return sql if f.op == "has" else f"NOT {sql}"
        negated = f.op in ("!=", "not in")
        if f.kind == "is":
            sql = self.is_(f)
        elif f.kind == "date":
            return self.date(f)
        elif f.kind == "number":
            return self.number(f)
        elif f.kind == "bool":
            # an event is handled when none of its exceptions says otherwise
            want = "NOT" if f.value else ""
            return (f"EXISTS (SELECT 1 {EVENTS_OF} AND {want} EXISTS (SELECT 1 FROM event_exceptions x "
                    "WHERE x.source = e.source AND x.event_id = e.event_id AND x.handled = false))")
        elif f.key == "message":
            sql = "(" + " OR ".join(self.free_text(v) for v in f.value) + ")"
        elif f.key == "assigned":
            sql = self.assigned(f.value, f.column)
        elif f.key in OWN_FLAGS:
            sql = self.own_flag(f)
        elif f.key in ISSUE_TEXT:
            sql = self.match(ISSUE_TEXT[f.key], f.value)
        elif f.key == "release" and "latest" in f.value:
            sql = self.release_latest(f.value, negated)
            return sql
        elif f.key in EVENT_TEXT:
            return self.event_text(EVENT_TEXT[f.key], f.value, negated)
        elif f.key in EXCEPTION_TEXT:
            cond = _maybe_not(self.match(EXCEPTION_TEXT[f.key], f.value), negated)
            return (f"EXISTS (SELECT 1 FROM events e JOIN event_exceptions x ON x.source = e.source "
                    f"AND x.event_id = e.event_id WHERE e.source = i.source AND e.issue_id = i.id AND {cond})")
        else:
            return self.tag(f.key, f.value, negated)
        return _maybe_not(sql, negated)

    def event_text(self, column: str, values, negated: bool) -> str:
        return f"EXISTS (SELECT 1 {EVENTS_OF} AND {_maybe_not(self.match(column, values), negated)})"

    def release_latest(self, values, negated: bool) -> str:
        """`latest` is the newest release of the issue's project (by creation)."""
        latest = ("(SELECT arg_max(r.version, r.date_created) FROM releases r WHERE r.source = i.source "
                  "AND list_contains(r.project_ids, i.project_id))")
        others = [v for v in values if v != "latest"]
        cond = f"e.release = {latest}"
        if others:
            cond = f"({cond} OR {self.match('e.release', others)})"
        return f"EXISTS (SELECT 1 {EVENTS_OF} AND {_maybe_not(cond, negated)})"

    def tag(self, key: str, values, negated: bool) -> str:
        k = self.bind(key)
        if not negated:
            cond = self.match("t.value", values)
            return (f"EXISTS (SELECT 1 FROM events e JOIN event_tags t ON t.source = e.source AND t.event_id = "
                    f"e.event_id WHERE e.source = i.source AND e.issue_id = i.id AND t.key = {k} AND {cond})")
        value = (f"(SELECT any_value(t.value) FROM event_tags t WHERE t.source = e.source "
                 f"AND t.event_id = e.event_id AND t.key = {k})")
        return f"EXISTS (SELECT 1 {EVENTS_OF} AND {_maybe_not(self.match(value, values), True)})"

    def has(self, f: Filter) -> str:
        if f.key in ISSUE_TEXT:
            return f"({ISSUE_TEXT[f.key]} IS NOT NULL)"
        if f.key == "assigned":
            return "(i.assigned_to IS NOT NULL)"
        if f.key in DATES or f.key in NUMBERS or f.key == "message":
            return "true"
        if f.key in EVENT_TEXT:
            return f"EXISTS (SELECT 1 {EVENTS_OF} AND coalesce({EVENT_TEXT[f.key]}, '') <> '')"
        if f.key in EXCEPTION_TEXT or f.key == "error.handled":
            return ("EXISTS (SELECT 1 FROM events e JOIN event_exceptions x ON x.source = e.source AND "
                    "x.event_id = e.event_id WHERE e.source = i.source AND e.issue_id = i.id)")
        k = self.bind(f.key)
        return (f"EXISTS (SELECT 1 FROM events e JOIN event_tags t ON t.source = e.source AND t.event_id = "
                f"e.event_id WHERE e.source = i.source AND e.issue_id = i.id AND t.key = {k})")

    def is_(self, f: Filter) -> str:
        if f.value not in IS_SQL:
            raise SearchError(f"is:{f.value} at column {f.column} is not known offline: the store does not "
                              "hold it", column=f.column)
        return IS_SQL[f.value]

    def own_flag(self, f: Filter) -> str:
        """`bookmarks:me`, `subscribed:me`: the issue JSON says it for the token's user only."""
        for v in f.value:
            if v != "me" and not (self.me and v.lower() == self.me.lower()):
                raise SearchError(f"{f.key}:{v} at column {f.column} is not known offline: the store holds only "
                                  "the token's own bookmarks and subscriptions", column=f.column,
                                  hint=f"use {f.key}:me")
        return f"coalesce(TRY_CAST(i.raw->>'{OWN_FLAGS[f.key]}' AS BOOLEAN), false)"

    def assigned(self, values, column: int) -> str:
        """`me` (needs --me EMAIL), `none`, `#team-slug`, an email or a username."""
        parts = []
        for v in values:
            if v == "me":
                if not self.me:
                    raise SearchError(f"assigned:me at column {column} needs to know who you are, which the "
                                      "store does not", column=column, hint="give --me EMAIL")
                v = self.me
            if v == "none":
                parts.append("i.assigned_to IS NULL")
            elif v.startswith("#"):
                parts.append(f"i.assigned_to = {self.bind('team:' + v[1:])}")
            elif "@" in v:
                parts.append(f"lower(i.assigned_to) = {self.bind('user:' + v.lower())}")
            else:
                parts.append(f"lower(i.assigned_to) LIKE {self.bind('user:' + v.lower() + '@%')}")
        return "(" + " OR ".join(parts) + ")"

    def date(self, f: Filter) -> str:
        column = DATES[f.key]
        if f.op == "range":
            lo, hi = (naive_utc(resolve_time(v, self.now)) for v in f.value)
            return f"({column} >= {self.bind(lo)} AND {column} < {self.bind(hi)})"
        return f"({column} {f.op} {self.bind(naive_utc(resolve_time(f.value, self.now)))})"

    def number(self, f: Filter) -> str:
        column = NUMBERS[f.key]
        if f.op in ("in", "not in"):
            inner = " OR ".join(f"{column} = {self.bind(v)}" for v in f.value)
            return f"(NOT coalesce(({inner}), false))" if f.op == "not in" else f"({inner})"
        return f"({column} {'<>' if f.op == '!=' else f.op} {self.bind(f.value)})"


def _maybe_not(sql: str, negated: bool) -> str:
    """The condition, or its negation where a missing value (NULL) counts as not matching."""
    return f"(NOT coalesce({sql}, false))" if negated else sql


def compile_where(node, *, now: datetime, me: str | None = None) -> tuple[str, list]:
    """(SQL condition over `issues i`, its parameters); `true` for an empty query."""
    if node is None:
        return "true", []
    c = Compiler(now, me)
    return c.node(node), c.params
