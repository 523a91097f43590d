"""Offline search equals online search: the emulator (Sentry's issue list with `query=`) and the
store (`search_issue_ids`) find the same issue ids for a corpus of queries, with the emulator's
clock as `now` on both sides. The corpus crosses every key with values found in the emulator's
world, plus hand-written queries with OR, parentheses, negation, wildcards and relative dates."""

from __future__ import annotations

import pytest

from helpers import TOKEN, org, session, sync, walk
from sentry_mirror.emulator import Emulator
from sentry_mirror.emulator.render import user_fields
from sentry_mirror.reading.search import search_issue_ids
from sentry_mirror.storage.store import Store

HAND_WRITTEN = [
    "", "is:unresolved", "!is:unresolved", "is:resolved", "is:ignored", "is:archived", "is:assigned",
    "is:unassigned", "is:new", "is:ongoing", "is:regressed", "is:escalating",
    "is:unresolved level:error", "level:error OR level:fatal", "level:[error, fatal]", "!level:[error, warning]",
    "is:resolved OR is:ignored", "(is:resolved OR is:ignored) level:error",
    "is:resolved OR is:ignored level:error", "level:error AND is:unresolved", "(level:error) OR (level:warning)",
    "times_seen:>10", "times_seen:>=10", "times_seen:<5", "times_seen:<=1", "timesSeen:>1k", "!times_seen:>10",
    "times_seen:[1, 2, 3]", "lastSeen:-24h", "lastSeen:-1h", "lastSeen:+7d", "firstSeen:-2w", "firstSeen:+30d",
    "age:-7d", "age:+14d", "lastSeen:-24h OR firstSeen:-24h", "has:browser", "!has:browser", "has:user",
    "!has:user.email", "has:release", "has:server_name", "error.handled:true", "error.handled:0",
    "error.unhandled:true", "!error.unhandled:1", "error.type:*Error", "error.type:Key*", "!error.type:*Error",
    "Error", "error", "*Timeout*", "\"Error\"", "message:Error", "assigned:none", "!assigned:none",
    "environment:staging", "!environment:production", "environment:[production, staging]",
    "release:latest", "!release:latest", "has:url", "url:https://*", "os:*", "tags[os.name]:*",
    "user.email:*@example.com", "user.username:a*", "platform:python OR platform:javascript",
    "issue.category:error", "issue.type:error", "!issue.category:error", "firstRelease:*",
    "(level:error OR level:warning) (is:unresolved OR is:ignored) times_seen:>2",
    "is:unresolved !(level:error)", "browser:Chrome*", "device:*", "transaction:*", "handled:yes",
    "mechanism:*", "has:runtime",
    "bookmarks:me", "!bookmarks:me is:unresolved", "subscribed:me", "subscribed:me level:error",
]


def generated(world) -> list[str]:
    """Key x value from what the world holds: every project, release, level, error type, team,
    member and a few users, environments and tag values."""
    issues = world.served_issues()
    out = [f"project:{p.slug}" for p in world.projects]
    out += [f"release:{r.version}" for r in world.releases[:: max(1, len(world.releases) // 12)]]
    out += [f"!release:{world.releases[0].version}"]
    out += [f"level:{lv}" for lv in sorted({i.level for i in issues})]
    out += [f"error.type:{t}" for t in sorted({i.exc_type for i in issues})]
    out += [f'error.value:"{i.exc_value}"' for i in issues[:6]]
    out += [f"assigned:#{t.slug}" for t in world.teams]
    out += [f"assigned:{m.email}" for m in world.members[:6]]
    users = sorted({u for i in issues for u in i.users if u >= 0})[:: 7][:8]
    out += [f"user.email:{user_fields(u)['email']}" for u in users]
    out += [f"user.id:{user_fields(u)['id']}" for u in users[:4]]
    out += [f"user.ip:{user_fields(u)['ip_address']}" for u in users[:4]]
    out += [f"times_seen:>{n}" for n in (0, 3, 8, 20, 50)]
    out += [f"project:{p.slug} is:unresolved" for p in world.projects]
    out += [f"project:{p.slug} OR level:fatal" for p in world.projects]
    day = world.now.date()
    out += [f"firstSeen:>{day.replace(day=1).isoformat()}", f"lastSeen:<{day.isoformat()}",
            f"lastSeen:{day.isoformat()}"]
    return out


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    with Emulator(seed=21, scale="tiny", token=TOKEN) as emu:
        store = Store(tmp_path_factory.mktemp("search") / "mirror.duckdb")
        sync(store, emu)
        yield emu, store
        store.close()


def online(emu, query: str) -> set[str]:
    url = org(emu, "issues/")
    s = session(emu)
    rows, _ = walk(s, s.prepare_request(__import__("requests").Request(
        "GET", url, params={"query": query, "statsPeriod": "90d", "per_page": 100})).url)
    return {r["id"] for r in rows}


def test_corpus_is_large_enough(mirrored):
    emu, _ = mirrored
    assert len(set(HAND_WRITTEN + generated(emu.world))) >= 100


def test_offline_search_equals_online_search(mirrored):
    emu, store = mirrored
    now = emu.world.now
    differences, empty = [], 0
    for query in dict.fromkeys(HAND_WRITTEN + generated(emu.world)):
        want = online(emu, query)
        got = set(search_issue_ids(store.con, query, now=now))
        empty += not want
        if got != want:
            differences.append(f"{query!r}: online only {sorted(want - got)}, offline only {sorted(got - want)}")
    assert not differences, "\n".join(differences)
    assert empty < len(HAND_WRITTEN) // 2  # the corpus finds things, not just empty sets
