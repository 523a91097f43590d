"""Sentry's issue search language, parsed into a small AST.

Facts carried over from Sentry's grammar (src/sentry/api/event_search.py) and its issue search
config: terms are `key:value`, `!key:value`, `key:"quoted \\"value\\""`, `key:[a, b]`, free text;
terms side by side are ANDed; `AND`/`OR` (any case) and parentheses group them, AND binding tighter
than OR; `*` is a wildcard and `\\*` a literal star; numbers take `>`, `>=`, `<`, `<=` and the
suffixes k, m, b; dates take the same operators with an ISO date or datetime, or a relative
`-24h` (at or after 24 hours ago) / `+7d` (at or before 7 days ago); a bare date means that whole
day, a bare datetime five minutes either side; adjacent free words are one phrase.
Sentry's own issue stream rejects `OR`/`AND` ("not supported in this search"); the mirror and its
emulator accept them, since the discover grammar defines them.

Parsing is syntax only: the SQL compiler (compile.py) and the emulator each evaluate the AST.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Union

from ...errors import SearchError

# Canonical key -> kind. Event-level keys match when any stored event of the issue matches.
KEYS = {
    "is": "is", "has": "has",
    "firstSeen": "date", "lastSeen": "date",
    "times_seen": "number",
    "error.handled": "bool",
    "level": "text", "release": "text", "environment": "text", "project": "text", "assigned": "text",
    "user.email": "text", "user.id": "text", "user.username": "text", "user.ip": "text",
    "error.type": "text", "error.value": "text", "message": "text", "platform": "text",
    "issue.category": "text", "issue.type": "text", "firstRelease": "text",
    "bookmarks": "text", "subscribed": "text",  # the token's own: only `me` is known offline
    # tags every Sentry event may carry; other tag keys are valid when the store holds them
    "server_name": "tag", "transaction": "tag", "url": "tag", "browser": "tag", "os": "tag", "device": "tag",
}
ALIASES = {"timesSeen": "times_seen", "age": "firstSeen", "assigned_or_suggested": "assigned",
           "first_release": "firstRelease", "user.ip_address": "user.ip", "error.unhandled": "error.handled"}
IS_VALUES = ("unresolved", "resolved", "ignored", "archived", "assigned", "unassigned", "for_review",
             "new", "ongoing", "regressed", "escalating", "linked", "unlinked")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NEGATE = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "=": "!=", "!=": "="}

_KEY = re.compile(r'(!?)(tags\[([^\]\s]+)\]|"([A-Za-z0-9_.:-]+)"|[A-Za-z0-9_.-]+):')
_OPERATOR = re.compile(r">=|<=|>|<|!=|=")
_NUMBER = re.compile(r"^(-?\d+(?:\.\d*)?)([kmb]?)$")
_REL = re.compile(r"^([+-])(\d+)([wdhm])$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$")
_BOOLEAN = re.compile(r"(AND|OR)(?=[\t\n )]|$)", re.I)
_BOOL = {"true": True, "1": True, "false": False, "0": False}


@dataclass(frozen=True)
class Rel:
    """A relative date: `seconds` before the search's `now` (its sign only chose the operator)."""

    seconds: int


@dataclass(frozen=True)
class Filter:
    """`key op value`. Text values are tuples (one or more, `in` when a list); dates are a
    datetime, a Rel, or (start, end) with op `range`; `tag` is True for an event tag key."""

    key: str
    op: str
    value: object
    column: int
    kind: str = "text"


@dataclass(frozen=True)
class FreeText:
    text: str
    column: int


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


Node = Union[Filter, FreeText, And, Or]


def parse(query: str, tag_keys: Iterable[str] = ()) -> Node | None:
    """The query's AST (None when it is empty). `tag_keys` are the extra keys valid as `key:value`."""
    return _Parser(query, set(tag_keys)).run()


def resolve_time(value, now: datetime) -> datetime:
    """A date filter's point in time: absolute as given, relative counted back from `now`."""
    return now - timedelta(seconds=value.seconds) if isinstance(value, Rel) else value


def wildcard_regex(text: str) -> str | None:
    """The anchored regex of a value with unescaped `*`, or None when it has none."""
    if not re.search(r"(?<!\\)(\\\\)*\*", text):
        return None
    out, i = "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out += re_escape(text[i + 1])
            i += 2
            continue
        out += ".*" if c == "*" else re_escape(c)
        i += 1
    return "^" + out + "$"


def re_escape(text: str) -> str:
    """Escape regex metacharacters the same way for DuckDB's RE2 and Python's re."""
    return "".join("\\" + c if c in ".^$|?*+()[]{}\\" else c for c in text)


def unescape(text: str) -> str:
    """A value without wildcards, its `\\*` turned into `*`."""
    return text.replace("\\*", "*")


def number(text: str) -> float | None:
    m = _NUMBER.match(text)
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[m.group(2)]


class _Parser:
    def __init__(self, text: str, tag_keys: set[str]):
        self.text, self.pos, self.tag_keys = text, 0, tag_keys

    def fail(self, message: str, pos: int | None = None, hint: str | None = None):
        col = (self.pos if pos is None else pos) + 1
        raise SearchError(f"{message} at column {col}", column=col, hint=hint)

    def run(self) -> Node | None:
        node = self.expression(top=True)
        return node

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def operator_here(self) -> str | None:
        return self.operator_here_at(self.pos)

    def operator_here_at(self, pos: int) -> str | None:
        m = _BOOLEAN.match(self.text, pos)
        return m.group(1).upper() if m else None

    def expression(self, top: bool) -> Node | None:
        """OR of ANDs; `top` is False inside parentheses (which a `)` ends)."""
        groups: list[list[Node]] = [[]]
        last_op: tuple[str, int] | None = None
        while True:
            self.skip()
            if self.pos >= len(self.text):
                if not top:
                    self.fail("unbalanced parenthesis: '(' is never closed", self.open_at)
                break
            if self.text[self.pos] == ")":
                if top:
                    self.fail("unbalanced parenthesis: ')' closes nothing")
                break
            op = self.operator_here()
            if op:
                if not groups[-1] or last_op is not None:
                    self.fail(f"condition missing on the left side of '{op}'")
                last_op = (op, self.pos)
                self.pos += len(op)
                if op == "OR":
                    groups.append([])
                continue
            last_op = None
            groups[-1].append(self.term())
        if last_op is not None:
            self.fail(f"condition missing on the right side of '{last_op[0]}'", last_op[1])
        ands = [g[0] if len(g) == 1 else And(tuple(g)) for g in groups if g]
        if not ands:
            return None
        return ands[0] if len(ands) == 1 else Or(tuple(ands))

    def term(self) -> Node:
        if self.text[self.pos] == "(":
            start = self.pos
            self.pos += 1
            outer, self.open_at = getattr(self, "open_at", None), start
            node = self.expression(top=False)
            self.open_at = outer
            self.pos += 1  # the ')'
            if node is None:
                self.fail("empty parentheses", start)
            return node
        m = _KEY.match(self.text, self.pos)
        if m:
            return self.filter(m)
        if self.text[self.pos] == '"':
            start = self.pos
            return FreeText(self.quoted(), start + 1)
        start = self.pos
        end = self.pos
        while end < len(self.text) and self.text[end] not in "()\"" and not _KEY.match(self.text, end) \
                and not (end > start and self.operator_here_at(end)):
            word = re.compile(r'[^()\t\n ]+').match(self.text, end)
            if word is None:
                break
            end = word.end()
            self.pos = end
            self.skip()
            if self.pos == len(self.text):
                break
            end = self.pos
        self.pos = end
        return FreeText(self.text[start:end].strip(" \t\n"), start + 1)

    def quoted(self) -> str:
        """A double-quoted string at pos, `\\"` inside it a quote."""
        start, i, out = self.pos, self.pos + 1, []
        while i < len(self.text):
            c = self.text[i]
            if c == "\\" and i + 1 < len(self.text) and self.text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            if c == '"':
                self.pos = i + 1
                return "".join(out)
            out.append(c)
            i += 1
        self.fail("unbalanced quote: '\"' is never closed", start)

    def key_name(self, m: re.Match) -> tuple[str, str]:
        """(canonical key, kind) for the key matched, or an error naming the nearest valid key."""
        if m.group(3) is not None:
            return m.group(3), "tag"
        raw = m.group(4) if m.group(4) is not None else m.group(2)
        name = ALIASES.get(raw, raw)
        if name in KEYS:
            return name, KEYS[name]
        if raw in self.tag_keys:
            return raw, "tag"
        valid = sorted(set(KEYS) | set(ALIASES) | self.tag_keys)
        near = difflib.get_close_matches(raw, valid, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'?" if near else "keys are " + ", ".join(sorted(KEYS))
        col = m.start(2) + 1
        raise SearchError(f"unknown search key '{raw}' at column {col}; {hint}", column=col)

    def filter(self, m: re.Match) -> Filter:
        negated = m.group(1) == "!"
        key, kind = self.key_name(m)
        raw_key = m.group(2)
        col = m.start() + 1
        self.pos = m.end()
        if m.group(2) in ("error.unhandled",):
            negated = not negated  # error.unhandled:true is error.handled:false
        if self.pos < len(self.text) and self.text[self.pos] == "[":
            values = self.list_values(raw_key)
            if kind == "number":
                nums = tuple(self.as_number(v, raw_key, col) for v in values)
                return Filter(key, "not in" if negated else "in", nums, col, kind)
            if kind not in ("text", "tag"):
                self.fail(f"'{raw_key}' takes one value, not a list", col - 1)
            return Filter(key, "not in" if negated else "in", values, col, kind)
        op_m = _OPERATOR.match(self.text, self.pos)
        op, self.op_at = None, self.pos
        if op_m:
            self.pos = op_m.end()
            op = None if op_m.group(0) == "=" else op_m.group(0)  # a plain `=` changes nothing
        value_at = self.pos
        if self.pos < len(self.text) and self.text[self.pos] == '"':
            value, quoted = self.quoted(), True
        else:
            vm = re.compile(r"[^()\t\n ]*").match(self.text, self.pos)
            value, quoted = vm.group(0), False
            self.pos = vm.end()
        if value == "" and not quoted:
            self.fail(f"empty value for '{raw_key}'", value_at)
        return self.typed(key, kind, raw_key, op, value, negated, col, value_at)

    def typed(self, key, kind, raw_key, op, value, negated, col, value_at) -> Filter:
        if kind == "is":
            if op or value not in IS_VALUES:
                self.fail(f"invalid value '{value}' for 'is'", value_at,
                          hint="valid values are " + ", ".join(IS_VALUES))
            return Filter("is", "!=" if negated else "=", value, col, kind)
        if kind == "has":
            name = ALIASES.get(value, value)
            if op or not (name in KEYS or value in self.tag_keys) or name in ("is", "has"):
                near = difflib.get_close_matches(value, sorted(set(KEYS) | self.tag_keys), n=1)
                self.fail(f"unknown key '{value}' for 'has'", value_at,
                          hint=f"did you mean '{near[0]}'?" if near else None)
            return Filter(name, "not has" if negated else "has", None, col, KEYS.get(name, "tag"))
        if kind == "number":
            op = op or "="
            return Filter(key, NEGATE[op] if negated else op, self.as_number(value, raw_key, value_at), col, kind)
        if kind == "bool":
            if op or value.lower() not in _BOOL:
                self.fail(f"invalid boolean '{value}' for '{raw_key}'; expected true, 1, false or 0", value_at)
            return Filter(key, "=", _BOOL[value.lower()] != negated, col, kind)
        if kind == "date":
            if negated:
                self.fail(f"'{raw_key}' cannot be negated; use < or > instead", col - 1)
            return self.date(key, raw_key, op, value, col, value_at)
        if op and op != "!=":
            self.fail(f"'{raw_key}' is text: the operator '{op}' does not apply", self.op_at)
        if op == "!=":
            negated = not negated
        return Filter(key, "!=" if negated else "=", (value,), col, kind)

    def list_values(self, raw_key: str) -> tuple[str, ...]:
        start, values = self.pos, []
        self.pos += 1
        while True:
            self.skip()
            if self.pos >= len(self.text):
                self.fail("unbalanced bracket: '[' is never closed", start)
            if self.text[self.pos] == '"':
                values.append(self.quoted())
            else:
                vm = re.compile(r"[^,\]\t\n ()]*").match(self.text, self.pos)
                if not vm.group(0):
                    self.fail(f"empty value in the list of '{raw_key}'")
                values.append(vm.group(0))
                self.pos = vm.end()
            self.skip()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.pos < len(self.text) and self.text[self.pos] == "]":
                self.pos += 1
                return tuple(values)
            self.fail(f"expected ',' or ']' in the list of '{raw_key}'")

    def as_number(self, value: str, raw_key: str, at: int) -> float:
        n = number(value)
        if n is None:
            self.fail(f"invalid number '{value}' for '{raw_key}'; expected a number with an optional k, m or b",
                      at)
        return n

    def date(self, key, raw_key, op, value, col, at) -> Filter:
        rel = _REL.match(value)
        if rel:
            seconds = int(rel.group(2)) * UNITS[rel.group(3)]
            return Filter(key, op or ("<=" if rel.group(1) == "+" else ">="), Rel(seconds), col, "date")
        if not _ISO.match(value):
            self.fail(f"invalid date '{value}' for '{raw_key}'; expected -24h, +7d or an ISO date like "
                      "2024-01-31 or 2024-01-31T12:00:00", at)
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"invalid date '{value}' for '{raw_key}'", at)
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
        if op:
            return Filter(key, op, moment, col, "date")
        span = (moment, moment + timedelta(days=1)) if len(value) == 10 else \
            (moment - timedelta(minutes=5), moment + timedelta(minutes=6))
        return Filter(key, "range", span, col, "date")

