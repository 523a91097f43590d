"""Time windows and the issue search language (the subset a mirror relies on).

Window rules follow sentry.api.utils.get_date_range_from_params: `statsPeriod` wins over
`start`/`end`, both of which are required together; no window means the last 90 days.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import datetime, timezone
from typing import Callable

from .model import DAY_MS, HOUR_MS, RETENTION_MS, Agg, Issue
from .pagination import bad_request
from .world import World

PERIOD_RE = re.compile(r"^(\d+)([smhdw]?)$")
RELATIVE_RE = re.compile(r"^([+-]?)(\d+)([smhdw])$")
UNIT_MS = {"": 1000, "s": 1000, "m": 60_000, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
TOKEN_RE = re.compile(r'(!?)([A-Za-z_.]+):("[^"]*"|\[[^\]]*\]|\S*)|"([^"]*)"|(\S+)')
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
    """Compile a search query into ANDed predicates; unknown keys (and, with `dates` off as on
    GlitchTip, `lastSeen:`/`firstSeen:`) are a 400."""
    preds: list[Predicate] = []
    for m in TOKEN_RE.finditer(text):
        negate, key, value, quoted, word = m.groups()
        if key is None:
            needle = (quoted if quoted is not None else word).lower()
            preds.append(lambda i, a, n=needle: n in i.title.lower() or n in i.culprit.lower())
            continue
        if not dates and key in ("lastSeen", "firstSeen"):
            raise bad_request(f"Invalid query. Unsupported search key: {key!r}")
        pred = _key_predicate(key, _unquote(value), world)
        preds.append((lambda i, a, p=pred: not p(i, a)) if negate else pred)
    return preds


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _values(value: str) -> list[str]:
    if value.startswith("[") and value.endswith("]"):
        return [_unquote(v.strip()) for v in value[1:-1].split(",") if v.strip()]
    return [value]


def _key_predicate(key: str, value: str, world: World) -> Predicate:
    if not value:
        raise bad_request(f"Invalid query: empty value for {key!r}")
    if key == "is":
        return _is_predicate(value)
    if key in ("lastSeen", "firstSeen"):
        return _date_predicate(key, value, world.now_ms)
    if key == "level":
        levels = set(_values(value))
        return lambda i, a: i.level in levels
    if key == "release":
        return _release_predicate(_values(value), world)
    raise bad_request(f"Invalid query. Unsupported search key: {key!r}")


def _is_predicate(value: str) -> Predicate:
    if value in STATUS_VALUES:
        status = "ignored" if value == "archived" else value
        return lambda i, a: i.status == status
    if value in SUBSTATUS_VALUES:
        return lambda i, a: i.substatus == value
    if value in ASSIGN_VALUES:
        want = value == "assigned"
        return lambda i, a: (i.assigned is not None) == want
    valid = sorted(STATUS_VALUES | SUBSTATUS_VALUES | ASSIGN_VALUES)
    raise bad_request(f'Invalid value for "is" search, valid values are {valid}')


def _date_predicate(key: str, value: str, now_ms: int) -> Predicate:
    """`lastSeen:>X`, `>=`, `<`, `<=`, or bare; X is ISO or relative like `-24h` (`+24h` = older)."""
    m = re.match(r"^(>=|<=|>|<)?(.+)$", value)
    op, operand = m.group(1), m.group(2)
    rel = RELATIVE_RE.match(operand)
    if rel:
        t = now_ms - int(rel.group(2)) * UNIT_MS[rel.group(3)]
        op = op or ("<=" if rel.group(1) == "+" else ">=")
        lo, hi = t, t
    else:
        t = parse_datetime_ms(operand)
        lo, hi = t, t + (DAY_MS if len(operand.strip()) == 10 else 1000)
    field = "last_ms" if key == "lastSeen" else "first_ms"
    compare = {
        ">": lambda v: v > lo, ">=": lambda v: v >= lo, "<": lambda v: v < lo, "<=": lambda v: v <= lo,
        None: lambda v: lo <= v < hi,
    }[op]
    return lambda i, a: compare(getattr(a, field))


def _release_predicate(versions: list[str], world: World) -> Predicate:
    """Issues with at least one retained event in one of the releases."""
    releases = [r for r in (world.find_release(v) for v in versions) if r is not None]
    windows = [(r.project.idx, *r.project.release_window(r)) for r in releases]

    def pred(issue: Issue, agg: Agg) -> bool:
        for pidx, start, end in windows:
            if pidx == issue.project.idx:
                lo = bisect_left(issue.times, max(start, world.retention_ms))
                if lo < len(issue.times) and issue.times[lo] < end:
                    return True
        return False

    return pred
