"""Every project's counters from one stats_v2 answer (`groupBy=project,outcome,category`, hourly),
folded into the rows the deprecated per-project stats route gave (`project_stats`: received,
rejected, blacklisted, generated, by hour and by day) and the organization's (`org_stats`).

The old route's stats are outcomes of the `error` category: `generated` is `accepted` (stored),
`blacklisted` is `filtered` (inbound filters), `rejected` is `rate_limited` (quotas, spike
protection), and `received` is everything that reached Sentry: every outcome but `client_discard`
(dropped by the SDK, never received).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..errors import ApiError
from ..timestamps import fmt_ts, parse_ts

STAT_OUTCOMES = {"generated": ("accepted",), "blacklisted": ("filtered",), "rejected": ("rate_limited",)}
NOT_RECEIVED = ("client_discard",)
ORG_HOURS = timedelta(days=30)  # org_stats keeps hourly points for 30 days, daily ones for 90


def grouped_by_project(data: Any) -> bool:
    """The answer names a project per group (a server that ignores `groupBy=project` does not)."""
    groups = data.get("groups") if isinstance(data, dict) else None
    return isinstance(groups, list) and all("project" in (g.get("by") or {}) for g in groups)


def hourly(data: Any, field: str, now: datetime) -> tuple[list[datetime], dict[tuple[str, str, str], list[int]]]:
    """(interval starts up to `now`, {(project id, category, outcome): counts per interval})."""
    if not isinstance(data, dict) or not isinstance(data.get("intervals"), list):
        raise ApiError(200, "stats_v2 answered an unexpected shape", "stats_v2")
    starts = [parse_ts(ts) for ts in data["intervals"]]
    keep = [k for k, ts in enumerate(starts) if ts is not None and ts <= now]  # no interval from the future
    series = {}
    for group in data.get("groups") or []:
        by = group.get("by") or {}
        values = (group.get("series") or {}).get(field) or []
        key = (str(by.get("project")), by.get("category", "error"), by.get("outcome", "accepted"))
        acc = series.setdefault(key, [0] * len(keep))
        for n, k in enumerate(keep):
            acc[n] += int(values[k] or 0) if k < len(values) else 0
    return [starts[k] for k in keep], series


def project_points(starts: list[datetime], series: dict, project_ids: list[str], day_from: datetime
                   ) -> dict[tuple[str, str, str], list[list[float]]]:
    """{(project id, stat, resolution): [[unix seconds, count], …]} for every known project (zeros
    where Sentry listed no group, as the old route did); days only from `day_from`, whole."""
    out = {}
    for project in project_ids:
        for stat in ("received", "rejected", "blacklisted", "generated"):
            counts = [0] * len(starts)
            for (pid, category, outcome), values in series.items():
                if pid == project and category == "error" and _counts_as(stat, outcome):
                    counts = [a + b for a, b in zip(counts, values)]
            out[(project, stat, "1h")] = [[_unix(ts), n] for ts, n in zip(starts, counts)]
            out[(project, stat, "1d")] = [[_unix(day), n] for day, n in _days(starts, counts, day_from)]
    return out


def org_points(starts: list[datetime], series: dict, day_from: datetime, hour_from: datetime
               ) -> dict[str, list[dict]]:
    """{interval: org_stats points} summed over projects, by category and outcome."""
    totals: dict[tuple[str, str], list[int]] = {}
    for (_, category, outcome), values in series.items():
        acc = totals.setdefault((category, outcome), [0] * len(starts))
        for k, n in enumerate(values):
            acc[k] += n
    out: dict[str, list[dict]] = {"1h": [], "1d": []}
    for (category, outcome), counts in sorted(totals.items()):
        for ts, n in zip(starts, counts):
            if ts >= hour_from:
                out["1h"].append(_org_point(ts, category, outcome, n))
        for day, n in _days(starts, counts, day_from):
            out["1d"].append(_org_point(day, category, outcome, n))
    return out


def _counts_as(stat: str, outcome: str) -> bool:
    if stat == "received":
        return outcome not in NOT_RECEIVED
    return outcome in STAT_OUTCOMES[stat]


def _days(starts: list[datetime], counts: list[int], day_from: datetime) -> list[tuple[datetime, int]]:
    days: dict[datetime, int] = {}
    for ts, n in zip(starts, counts):
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        if day >= day_from:
            days[day] = days.get(day, 0) + n
    return sorted(days.items())


def _org_point(ts: datetime, category: str, outcome: str, n: int) -> dict:
    stamp = fmt_ts(ts)
    return {"key": f"{stamp}|{category}|{outcome}", "ts": stamp, "category": category, "outcome": outcome,
            "quantity": n}


def _unix(ts: datetime) -> int:
    return int((ts - datetime(1970, 1, 1)).total_seconds())
