"""Project stats (`/projects/{org}/{project}/stats/`) and organization stats_v2, Sentry and GlitchTip.

Counts come from aggregates.outcome_times, so `generated` / outcome `accepted` are exactly the
served events (`received` adds the dropped ones, as in Sentry) and every resolution adds up to the
same totals.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import datetime, timezone

from . import aggregates
from .glitchtip import missing, validation_error
from .model import HOUR_MS, Project, iso
from .pagination import ApiError, bad_request
from .search import PERIOD_RE, UNIT_MS, date_window, first, parse_datetime_ms
from .world import World

ROLLUPS = ((10, 360), (3600, 24 * 7), (86400, 90))  # Sentry's tsdb (seconds, samples kept)
MAX_BUCKETS = 100_000
TOO_MANY = "Your interval and date range would create too many results. Use a larger interval, or a smaller date range."
FIELDS = ("sum(quantity)", "sum(times_seen)")
GROUP_BYS = ("outcome", "category", "reason", "project")
CATEGORIES = ("error", "transaction", "attachment", "replay", "profile", "profile_duration", "profile_duration_ui",
              "profile_chunk", "profile_chunk_ui", "monitor")
OUTCOMES = ("accepted", "filtered", "rate_limited", "invalid", "abuse", "client_discard", "cardinality_limited")
# stats_v2 outcome -> (project stats stat, reason)
OUTCOME_ROWS = {"accepted": ("generated", "none"), "filtered": ("blacklisted", "browser-extensions"),
                "rate_limited": ("rejected", "smart_rate_limit")}
MAX_POINTS = 10_000
DAY_S = 86_400


# ----- /projects/{org}/{project}/stats/ ------------------------------------------------------------------
def _seconds(raw: str | None, error: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(error) from None
    if not math.isfinite(value):
        raise bad_request(error)
    return value


def _resolution(raw: str) -> int:
    """`<n>s|m|h|d` in seconds; only tsdb rollups (10s, 1h, 1d) are accepted."""
    units = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}
    try:
        seconds = int(raw[:-1]) * units[raw[-1]]
    except (KeyError, ValueError, IndexError):
        raise bad_request("Invalid resolution") from None
    if seconds not in {r for r, _ in ROLLUPS}:
        raise bad_request("Invalid resolution")
    return seconds


def project_stats(world: World, p: Project, params: dict[str, list[str]]) -> list[list[int]]:
    """`[[bucket_start_s, n], ...]` from floor(since) through the bucket holding `until` (StatsMixin rules).

    Defaults: until = now, since = until - (1 day - 1 s), resolution = the smallest rollup whose
    retention covers the window. An unknown `stat` is a 400 here (Sentry raises a plain ValueError).
    """
    stat = first(params, "stat") or "received"
    res = _resolution(first(params, "resolution")) if first(params, "resolution") else None
    until = _seconds(first(params, "until"), "until must be a numeric timestamp.")
    until = world.now_ms / 1000 if until is None else until
    since = _seconds(first(params, "since"), "since must be a numeric timestamp")
    since = until - (DAY_S - 1) if since is None else since
    if since > until:
        raise bad_request("start must be before or equal to end")
    if stat not in aggregates.STATS:
        raise bad_request(f"Invalid stat: {stat}")
    if res is None:
        res = next((r for r, n in ROLLUPS if r * n >= until - since), ROLLUPS[-1][0])
    start = math.floor(since / res) * res
    n = math.floor((until - start) / res) + 1
    if n > MAX_BUCKETS:
        raise bad_request(TOO_MANY)
    buckets = [start + k * res for k in range(n)]
    edges = [b * 1000 for b in buckets] + [(buckets[-1] + res) * 1000]
    counts = aggregates.bucket_counts(aggregates.outcome_times(world, p, stat), edges)
    return [[b, c] for b, c in zip(buckets, counts)]


# ----- /organizations/{org}/stats_v2/ (Sentry) --------------------------------------------------------------
def _choice(params, name: str, allowed: tuple, label: str) -> list[str]:
    values = params.get(name) or []
    for v in values:
        if v not in allowed:
            raise bad_request(f'Invalid {label}: "{v}"')
    return values


def _window_params(params: dict[str, list[str]]) -> dict[str, list[str]]:
    """start/end may also be epoch seconds."""
    out = dict(params)
    for key in ("start", "end"):
        raw = first(params, key)
        if raw is not None:
            try:
                out[key] = [datetime.fromtimestamp(float(raw), timezone.utc).isoformat()]
            except (ValueError, OverflowError):
                pass
    return out


def _interval(params) -> int:
    raw = first(params, "interval") or "1h"
    m = PERIOD_RE.match(raw)
    if not m or int(m.group(1)) == 0:
        raise bad_request(f"Invalid interval: {raw!r}")
    seconds = int(m.group(1)) * UNIT_MS[m.group(2)] // 1000
    if seconds % 3600 or seconds < 3600:
        raise bad_request("The interval has to be a multiple of the minimum interval of one hour.")
    if DAY_S % seconds:
        raise bad_request("The interval should divide one day without a remainder.")
    return seconds


def constrained_range(params, now_ms: int) -> tuple[int, int, int, int]:
    """(start_s, end_s, interval_s, shown_end_s) as get_constrained_date_range rounds them."""
    interval = _interval(params)
    start_ms, end_ms = date_window(_window_params(params), now_ms)
    if first(params, "end") and not first(params, "statsPeriod"):
        end_ms += 1000  # an explicit end is inclusive
    rounding = interval
    span = rounding * math.ceil((end_ms - start_ms) / 1000 / rounding)
    if span / interval > MAX_POINTS:
        raise bad_request(TOO_MANY)
    end = rounding * math.ceil(end_ms / 1000 / rounding)
    while end - span > start_ms / 1000:
        span += rounding
    shown_end = end if end * 1000 <= now_ms else (now_ms // 60_000 + 1) * 60
    return end - span, end, interval, shown_end


def stats_v2(world: World, params: dict[str, list[str]], projects: list[Project]) -> dict:
    fields = params.get("field") or []
    if not fields:
        raise bad_request('At least one "field" is required.')
    _choice(params, "field", FIELDS, "field")
    group_by = list(dict.fromkeys(_choice(params, "groupBy", GROUP_BYS, "groupBy")))
    categories = _choice(params, "category", CATEGORIES, "category")
    outcomes = _choice(params, "outcome", OUTCOMES, "outcome")
    reasons = params.get("reason") or []
    start, end, interval, shown_end = constrained_range(params, world.now_ms)
    starts = list(range(start, end, interval))
    edges = [s * 1000 for s in starts] + [end * 1000]
    groups: dict[tuple, list[int]] = {}
    for p in projects:
        if categories and "error" not in categories:
            break
        for outcome, (stat, reason) in OUTCOME_ROWS.items():
            if (outcomes and outcome not in outcomes) or (reasons and reason not in reasons):
                continue
            series = aggregates.bucket_counts(aggregates.outcome_times(world, p, stat), edges)
            row = {"outcome": outcome, "category": "error", "reason": reason, "project": p.id}
            key = tuple(row[g] for g in group_by)
            acc = groups.setdefault(key, [0] * len(series))
            for k, n in enumerate(series):
                acc[k] += n
    out_groups = []
    for key in sorted(groups, key=lambda k: tuple(str(v) for v in k)):
        series = groups[key]
        if sum(series):
            out_groups.append({"by": dict(zip(group_by, key)),
                               "totals": {f: sum(series) for f in fields},
                               "series": {f: list(series) for f in fields}})
    return {"start": iso(start * 1000), "end": iso(shown_end * 1000), "intervals": [iso(s * 1000) for s in starts],
            "groups": out_groups}


# ----- /organizations/{org}/stats_v2/ (GlitchTip) --------------------------------------------------------------
def _literal(params, name: str, allowed: tuple, default: str | None = None) -> str:
    value = first(params, name)
    if value is None:
        if default is None:
            raise missing("query", name)
        return default
    if value not in allowed:
        expected = " or ".join(f"'{a}'" for a in allowed)
        raise validation_error(["query", name], f"Input should be {expected}", "literal_error", expected=expected)
    return value


def _datetime(params, name: str) -> int:
    raw = first(params, name)
    if raw is None:
        raise missing("query", name)
    try:
        return int(float(raw) * 1000)
    except ValueError:
        pass
    try:
        return parse_datetime_ms(raw)
    except ApiError:
        raise validation_error(["query", name], "Input should be a valid datetime", "datetime_parsing") from None


def stats_v2_glitchtip(world: World, params: dict[str, list[str]]) -> dict:
    """GlitchTip's stats_v2: hourly rows joined onto generate_series(start, end, interval).

    As its SQL does: start is floored to the hour, end is (end + 1 h) floored, both ends are
    included, each point sums only the hourly rows in [ts, ts + 1 h) (so a `1d` point counts the
    first hour of that day), a point with no row at all is null, and no `by`/`totals`/`start`/`end`.
    """
    category = _literal(params, "category", ("error", "transaction"))
    interval = _literal(params, "interval", ("1d", "1h", "1m"), default="1h")
    field = _literal(params, "field", FIELDS)
    start_ms, end_ms = _datetime(params, "start"), _datetime(params, "end")
    raw_projects = params.get("project") or []
    try:
        wanted = {int(v) for v in raw_projects}
    except ValueError:
        raise validation_error(["query", "project", 0], "Input should be a valid integer", "int_parsing") from None
    per_day = {"1d": 1, "1h": 24, "1m": 1440}[interval]
    if (end_ms - start_ms) // (86_400_000) * per_day > 1000:
        raise ApiError(422, [{"end": "Too many intervals"}])
    projects = [p for p in world.projects if not wanted or p.id in wanted]
    if not projects:
        raise ApiError(404, "Not Found")
    step = {"1d": 86_400_000, "1h": HOUR_MS, "1m": 60_000}[interval]
    t, last = start_ms - start_ms % HOUR_MS, end_ms + HOUR_MS - (end_ms + HOUR_MS) % HOUR_MS
    intervals, series = [], []
    while t <= last:
        hour = t + HOUR_MS - 1 - (t + HOUR_MS - 1) % HOUR_MS  # the one hourly row inside [t, t + 1 h)
        counts = {p.id: _count(world, p, hour, hour + HOUR_MS) if category == "error" else 0
                  for p in world.projects}
        chosen = sum(counts[p.id] for p in projects)
        if any(counts.values()) and not chosen:
            t += step  # rows of other projects only: the WHERE clause drops the point
            continue
        intervals.append(datetime.fromtimestamp(t / 1000, timezone.utc).isoformat())
        series.append(chosen or None)
        t += step
    return {"intervals": intervals, "groups": [{"series": {field: series}}]}


def _count(world: World, p: Project, lo: int, hi: int) -> int:
    times = aggregates.summary(world, p).received
    return bisect_left(times, hi) - bisect_left(times, lo)
