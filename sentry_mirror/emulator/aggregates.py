"""Per-project aggregates over served events: tag values, users, and the outcome counts behind
project stats and stats_v2, shared by the endpoints and by ground truth (truth.py) so they always agree.

Outcome semantics, as Sentry's tsdb has them (TOTAL_RECEIVED_OUTCOMES in sentry/tsdb/snuba.py; the
`generated` stat reads TSDBModel.project, the stored events):
- generated: the project's served events (retained, not deleted), at their timestamps (stats_v2
  outcome `accepted`);
- rejected: events dropped by rate limits (stats_v2 outcome `rate_limited`, reason `smart_rate_limit`);
- blacklisted: events dropped by inbound filters (stats_v2 outcome `filtered`, reason `browser-extensions`);
- received: accepted + filtered + rate limited, i.e. generated + rejected + blacklisted.
Dropped events are never served, so they are derived from the served ones: a served event
"had a rejected sibling" when bits of its hash say so (about 1 in 13, and 1 in 29 for filtered),
at the same instant. Counts are therefore additive across resolutions and deterministic.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass

from . import catalog
from .model import SEQ_BITS, Project
from .served import Served

TAG_KEYS = ("environment", "release", "browser", "os", "user", "level")
# The other keys render._tags puts on every event, counted too: the project's tag key list
# (`/projects/{org}/{p}/tags/`) names every key its events carry.
OTHER_TAG_KEYS = ("handled", "mechanism", "os.name", "browser.name", "url", "runtime", "server_name")
STATS = ("received", "rejected", "blacklisted", "generated")
ENVIRONMENTS = ("production", "staging")
_SEQ_MASK = (1 << SEQ_BITS) - 1


def rejected_sibling(h: int) -> bool:
    return (h >> 44) % 13 == 0


def filtered_sibling(h: int) -> bool:
    return (h >> 50) % 29 == 0


@dataclass
class Summary:
    """One pass over a project's served events, oldest first."""

    tags: dict[str, dict[str, list[int]]]  # key -> value -> [count, first_ms, last_ms]
    users: dict[int, list[int]]  # user index -> [count, first_ms, last_ms]
    received: array  # event times (ms), ascending
    rejected: array
    blacklisted: array


def _bump(table: dict, value, t: int) -> None:
    entry = table.get(value)
    if entry is None:
        table[value] = [1, t, t]
    else:
        entry[0] += 1
        entry[2] = t


def summary(world: Served, p: Project) -> Summary:
    """The project's aggregates, cached until the world changes (advance clears the cache)."""
    key = ("summary", p.idx)
    if key not in world.cache:
        world.cache[key] = _summarise(world, p)
    return world.cache[key]


def _summarise(world: Served, p: Project) -> Summary:
    fam = catalog.platform_family(p.platform)
    oses, browsers = fam.os_choices, fam.browsers
    tags: dict[str, dict] = {k: {} for k in TAG_KEYS + OTHER_TAG_KEYS}
    env, rel_t, br_t, os_t, user_t, level_t = (tags[k] for k in
                                                ("environment", "release", "browser", "os", "user", "level"))
    handled_t, mech_t, os_name_t, br_name_t, url_t, runtime_t, server_t = (tags[k] for k in (
        "handled", "mechanism", "os.name", "browser.name", "url", "runtime", "server_name"))
    runtime = " ".join(fam.runtime) if fam.runtime else None
    users: dict[int, list[int]] = {}
    rejected, blacklisted = array("q"), array("q")
    lo = bisect_left(p.ev_times, world.retention_ms)
    received = p.ev_times[lo:]
    issues = world.issues
    for k in range(lo, len(p.ev_times)):
        t, ref = p.ev_times[k], p.ev_refs[k]
        issue, seq = issues[ref >> SEQ_BITS], ref & _SEQ_MASK
        h = world.event_hash(issue.idx, seq)
        _bump(env, world.environment(issue, seq), t)
        rel = p.release_at(t)
        if rel is not None:
            _bump(rel_t, rel.version, t)
        if browsers:
            b_name, b_ver = browsers[(h >> 20) % len(browsers)]
            _bump(br_t, f"{b_name} {b_ver}", t)
            _bump(br_name_t, b_name, t)
            _bump(url_t, f"https://app.acme.example/{issue.module.rsplit('/', 1)[-1].lower()}", t)
        os_name, os_ver = oses[(h >> 16) % len(oses)]
        _bump(os_t, f"{os_name} {os_ver}", t)
        _bump(os_name_t, os_name, t)
        _bump(handled_t, "yes" if issue.handled else "no", t)
        _bump(mech_t, fam.mechanism, t)
        if runtime:
            _bump(runtime_t, runtime, t)
            _bump(server_t, f"{p.slug}-{(h >> 24) % 6}", t)
        u = issue.users[seq]
        if u >= 0:
            _bump(user_t, f"id:{10_000 + u}", t)
            _bump(users, u, t)
        _bump(level_t, world.event_level(issue, seq), t)
        if rejected_sibling(h):
            rejected.append(t)
        if filtered_sibling(h):
            blacklisted.append(t)
    return Summary({k: v for k, v in tags.items() if v}, users, received, rejected, blacklisted)


def outcome_times(world: Served, p: Project, stat: str) -> list[array]:
    """Time arrays whose counts add up to `stat` (project stats vocabulary)."""
    s = summary(world, p)
    parts = {"generated": [s.received], "rejected": [s.rejected], "blacklisted": [s.blacklisted]}
    return parts.get(stat) or [s.received, s.rejected, s.blacklisted]  # received: all three


def bucket_counts(times_list: list[array], edges_ms: list[int]) -> list[int]:
    """Counts in [edges[k], edges[k+1]) summed over several ascending time arrays."""
    out = [0] * (len(edges_ms) - 1)
    for times in times_list:
        idx = [bisect_left(times, e) for e in edges_ms]
        for k in range(len(out)):
            out[k] += idx[k + 1] - idx[k]
    return out
