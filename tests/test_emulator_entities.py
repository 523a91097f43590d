"""The emulator's organization entities, stats, tag values, users, hashes, the org changes advance()
makes, rate-limit headers, and the GlitchTip flavour, all observed through HTTP and checked
against ground truth."""


from __future__ import annotations

import base64
import email.utils
import hashlib
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import quote

import pytest
import requests
from helpers import LINK_RE, links, org, session, walk

from sentry_mirror.emulator import Emulator, aggregates, api

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
NOW_S = int(NOW.timestamp())


@pytest.fixture(scope="module")
def emu():
    """One untouched world shared by the read-only tests (advance() tests make their own)."""
    with Emulator(seed=1, scale="tiny", now=NOW) as e:
        yield e


@pytest.fixture(scope="module")
def gt():
    with Emulator(seed=1, scale="tiny", now=NOW, flavor="glitchtip") as e:
        yield e




def proj(e: Emulator, pid: str, path: str) -> str:
    return f"{e.url}/api/0/projects/{e.org_slug}/{pid}/{path}"


def project_events(s: requests.Session, e: Emulator, pid: str, extra: str = "") -> list[dict]:
    size = "limit" if e.flavor == "glitchtip" else "per_page"
    return walk(s, proj(e, pid, f"events/?{size}=100{extra}"), strict=e.flavor == "sentry")[0]


def iso_s(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----- teams, members, environments ----------------------------------------------------------------------
def test_teams_walk_to_truth_with_projects_and_member_counts(emu):
    s = session(emu)
    rows, responses = walk(s, org(emu, "teams/?per_page=2"))
    truth = emu.truth()
    assert sorted(t["id"] for t in rows) == sorted(truth["teams"]) and len(responses) == 2
    assert links(responses[0])["next"][1:] == ("true", "2:1:0")
    assert [t["slug"] for t in rows] == sorted(t["slug"] for t in rows)
    project_ids = [p["id"] for t in rows for p in t["projects"]]
    assert sorted(project_ids) == sorted(truth["projects"])
    members = walk(s, org(emu, "members/"))[0]
    for t in rows:
        assert t["memberCount"] == sum(1 for m in members if not m["pending"] and t["slug"] in m["teams"]) > 0
        assert isinstance(t["id"], str) and t["dateCreated"].endswith("Z") and isinstance(t["isMember"], bool)
    plain = s.get(org(emu, "teams/?detailed=0")).json()
    assert plain and all("projects" not in t for t in plain)
    assert [t["slug"] for t in s.get(org(emu, "teams/?query=mob")).json()] == ["mobile"]


def test_members_include_one_pending_invite_and_every_assignee(emu):
    s = session(emu)
    rows, _ = walk(s, org(emu, "members/?per_page=5"))
    truth = emu.truth()
    assert sorted(m["id"] for m in rows) == sorted(truth["members"]) and len(rows) == truth["counts"]["members"]
    pending = [m for m in rows if m["pending"]]
    assert len(pending) == 1 and pending[0]["user"] is None and pending[0]["name"] == pending[0]["email"]
    for m in rows:
        assert m["orgRole"] == m["role"] and m["expired"] is False and m["dateCreated"].endswith("Z")
    users = {m["user"]["id"]: m for m in rows if m["user"]}
    for assignee in filter(None, truth["issues_assigned"].values()):
        if assignee["type"] == "user":
            assert users[assignee["id"]]["email"] == assignee["email"]
        else:
            assert assignee["id"] in truth["teams"] and "email" not in assignee


def test_environments_are_plain_lists(emu):
    s = session(emu)
    resp = s.get(org(emu, "environments/"))
    assert "Link" not in resp.headers
    assert [e["name"] for e in resp.json()] == emu.truth()["environments"] == ["production", "staging"]
    assert all(set(e) == {"id", "name"} for e in resp.json())
    pid = emu.truth()["projects"][0]
    project = s.get(proj(emu, pid, "environments/?visibility=all")).json()
    assert [e["name"] for e in project] == ["production", "staging"] and project[0]["isHidden"] is False
    assert s.get(org(emu, "environments/?visibility=hidden")).json() == []
    bad = s.get(org(emu, "environments/?visibility=secret"))
    assert bad.status_code == 400 and "visibility" in bad.json()["detail"]


# ----- deploys ---------------------------------------------------------------------------------------------
def assert_deploys_agree(e: Emulator) -> None:
    s = session(e)
    truth = e.truth()
    releases = walk(s, org(e, "releases/"))[0] + walk(s, org(e, "releases/?status=archived"))[0]
    assert {r["version"] for r in releases} == set(truth["releases"])
    with_deploys = 0
    for r in releases:
        rows, _ = walk(s, org(e, f"releases/{quote(r['version'], safe='')}/deploys/?per_page=2"))
        finished = [d["dateFinished"] for d in rows]
        assert finished == sorted(finished, reverse=True) and len(set(finished)) == len(finished)
        assert sorted(d["id"] for d in rows) == sorted(truth["deploys"].get(r["version"], []))
        assert len(rows) == r["deployCount"]
        if rows:
            with_deploys += 1
            assert r["lastDeploy"] == rows[0]
            assert all(d["environment"] in truth["environments"] and d["dateFinished"].endswith("Z") for d in rows)
        else:
            assert r["lastDeploy"] is None
    assert with_deploys == len(truth["deploys"]) > 0
    assert sum(len(v) for v in truth["deploys"].values()) == truth["counts"]["deploys"]


def test_deploys_agree_with_releases_and_truth(emu):
    assert_deploys_agree(emu)
    missing = session(emu).get(org(emu, "releases/nope%401.0.0/deploys/"))
    assert missing.status_code == 404


# ----- project stats ---------------------------------------------------------------------------------------
def project_event_counts(emu) -> dict[str, int]:
    counts: Counter = Counter()
    for v in emu.truth()["issues"].values():
        counts[v["project_id"]] += v["count"]
    return counts


def stats(s, e, pid, **params) -> list[list[int]]:
    resp = s.get(proj(e, pid, "stats/"), params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_project_stats_received_sums_to_served_events(emu):
    s = session(emu)
    truth = emu.truth()
    per_project = project_event_counts(emu)
    for pid in truth["projects"]:
        daily = stats(s, emu, pid, stat="generated", resolution="1d", since=NOW_S - 90 * 86400, until=NOW_S)
        assert sum(n for _, n in daily) == per_project[pid] == truth["project_stats"][pid]["accepted_total_90d"]
        assert all(ts % 86400 == 0 for ts, _ in daily) and daily[0][0] <= NOW_S - 90 * 86400 < daily[0][0] + 86400
        assert daily[-1][0] <= NOW_S < daily[-1][0] + 86400
    assert truth["counts"]["accepted_total_90d"] == truth["counts"]["events"]


def test_project_stats_hourly_buckets_match_the_events_in_them(emu):
    s = session(emu)
    pid = max(project_event_counts(emu).items(), key=lambda kv: kv[1])[0]
    since, until = NOW_S - 3 * 86400 + 1800.5, NOW_S - 3600.25
    hourly = stats(s, emu, pid, stat="generated", resolution="1h", since=since, until=until)
    assert hourly[0][0] == NOW_S - 3 * 86400 and hourly[-1][0] == NOW_S - 7200
    assert [ts for ts, _ in hourly] == list(range(hourly[0][0], hourly[-1][0] + 1, 3600))
    start, end = iso_s(hourly[0][0]), iso_s(hourly[-1][0] + 3600)
    events = project_events(s, emu, pid, f"&start={start}&end={end}")
    by_hour = Counter(int(datetime.fromisoformat(ev["dateCreated"].replace("Z", "+00:00")).timestamp()) // 3600 * 3600
                      for ev in events)
    assert {ts: n for ts, n in hourly if n} == dict(by_hour) and sum(by_hour.values()) > 0


def test_project_stats_outcomes_add_up_across_stats_and_resolutions(emu):
    s = session(emu)
    pid = emu.truth()["projects"][0]
    window = {"since": NOW_S - 10 * 86400, "until": NOW_S - 1}
    series = {stat: stats(s, emu, pid, stat=stat, resolution="1h", **window)
              for stat in ("received", "rejected", "blacklisted", "generated")}
    for k, (ts, received) in enumerate(series["received"]):  # Sentry: accepted + filtered + rate limited
        assert received == sum(series[st][k][1] for st in ("generated", "rejected", "blacklisted"))
    rejected = sum(n for _, n in series["rejected"])
    assert 0 < rejected < sum(n for _, n in series["received"])
    daily = stats(s, emu, pid, stat="rejected", resolution="1d", **window)
    assert sum(n for _, n in daily) == rejected
    tens = stats(s, emu, pid, stat="received", resolution="10s", since=NOW_S - 7200, until=NOW_S)
    assert all(ts % 10 == 0 for ts, _ in tens)
    hour = stats(s, emu, pid, resolution="1h", since=NOW_S - 7200, until=NOW_S - 1)
    assert sum(n for _, n in tens[:-1]) == sum(n for _, n in hour)


def test_project_stats_defaults_to_the_last_day_hourly(emu):
    s = session(emu)
    pid = emu.truth()["projects"][0]
    points = stats(s, emu, pid)
    assert points[0][0] == NOW_S - 86400 and points[-1][0] == NOW_S
    assert [b - a for (a, _), (b, _) in zip(points, points[1:])] == [3600] * (len(points) - 1)
    assert points == stats(s, emu, pid, stat="received", until=NOW_S)


@pytest.mark.parametrize("params, detail", [
    ({"since": "yesterday"}, "since must be a numeric timestamp"),
    ({"until": "now"}, "until must be a numeric timestamp."),
    ({"since": NOW_S, "until": NOW_S - 10}, "start must be before or equal to end"),
    ({"resolution": "2h"}, "Invalid resolution"),
    ({"resolution": "fast"}, "Invalid resolution"),
    ({"stat": "sessions"}, "Invalid stat: sessions"),
])
def test_project_stats_errors(emu, params, detail):
    resp = session(emu).get(proj(emu, emu.truth()["projects"][0], "stats/"), params=params)
    assert resp.status_code == 400 and resp.json() == {"detail": detail}


# ----- stats_v2 --------------------------------------------------------------------------------------------
def test_stats_v2_error_outcomes_agree_with_events_and_project_stats(emu):
    s = session(emu)
    truth = emu.truth()
    resp = s.get(org(emu, "stats_v2/"), params={"field": "sum(quantity)", "groupBy": ["outcome", "project"],
                                                "category": "error", "statsPeriod": "90d", "interval": "1d"})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["intervals"][0] == data["start"] and data["end"] == "2024-06-01T12:01:00Z"
    assert len(data["intervals"]) == 91 and all(t.endswith("T00:00:00Z") for t in data["intervals"])
    start_s = int(datetime.fromisoformat(data["start"].replace("Z", "+00:00")).timestamp())
    per_project = project_event_counts(emu)
    accepted = {g["by"]["project"]: g for g in data["groups"] if g["by"]["outcome"] == "accepted"}
    assert {str(p) for p in accepted} == set(truth["projects"])
    for pid, g in accepted.items():
        assert g["totals"]["sum(quantity)"] == sum(g["series"]["sum(quantity)"]) == per_project[str(pid)]
        daily = stats(s, emu, str(pid), stat="generated", resolution="1d", since=start_s, until=start_s + 91 * 86400 - 1)
        assert g["series"]["sum(quantity)"] == [n for _, n in daily]
    limited = [g for g in data["groups"] if g["by"]["outcome"] == "rate_limited"]
    for g in limited:
        daily = stats(s, emu, str(g["by"]["project"]), stat="rejected", resolution="1d", since=start_s,
                      until=start_s + 91 * 86400 - 1)
        assert g["series"]["sum(quantity)"] == [n for _, n in daily]
    assert limited and {g["by"]["outcome"] for g in data["groups"]} == {"accepted", "rate_limited", "filtered"}


def test_stats_v2_hourly_window_filters_and_grouping(emu):
    s = session(emu)
    base = {"field": "sum(times_seen)", "start": "2024-05-30T10:30:00Z", "end": "2024-05-31T09:00:00Z"}  # inclusive
    data = s.get(org(emu, "stats_v2/"), params={**base, "groupBy": "category", "outcome": "accepted"}).json()
    assert data["start"] == "2024-05-30T10:00:00Z" and data["end"] == "2024-05-31T10:00:00Z"
    assert len(data["intervals"]) == 24 and len(data["groups"]) == 1
    assert data["groups"][0]["by"] == {"category": "error"}
    events = sum(len(project_events(s, emu, pid, "&start=2024-05-30T10:00:00Z&end=2024-05-31T10:00:00Z"))
                 for pid in emu.truth()["projects"])
    assert data["groups"][0]["totals"]["sum(times_seen)"] == events > 0
    one = emu.truth()["projects"][0]
    only = s.get(org(emu, "stats_v2/"), params={**base, "groupBy": "project", "project": one, "outcome": "accepted"})
    assert [g["by"] for g in only.json()["groups"]] == [{"project": int(one)}]
    none = s.get(org(emu, "stats_v2/"), params={**base, "groupBy": "outcome", "category": "transaction"}).json()
    assert none["groups"] == [] and len(none["intervals"]) == 24


@pytest.mark.parametrize("params, detail", [
    ({"groupBy": "outcome", "statsPeriod": "1d"}, 'At least one "field" is required.'),
    ({"field": "count()", "statsPeriod": "1d"}, 'Invalid field: "count()"'),
    ({"field": "sum(quantity)", "groupBy": "planet", "statsPeriod": "1d"}, 'Invalid groupBy: "planet"'),
    ({"field": "sum(quantity)", "interval": "30m", "statsPeriod": "1d"},
     "The interval has to be a multiple of the minimum interval of one hour."),
    ({"field": "sum(quantity)", "interval": "5h", "statsPeriod": "1d"},
     "The interval should divide one day without a remainder."),
    ({"field": "sum(quantity)", "category": "emails"}, 'Invalid category: "emails"'),
    ({"field": "sum(quantity)", "statsPeriod": "1x"}, "Invalid statsPeriod: '1x'"),
])
def test_stats_v2_errors(emu, params, detail):
    resp = session(emu).get(org(emu, "stats_v2/"), params=params)
    assert resp.status_code == 400 and resp.json() == {"detail": detail}


# ----- tag values and users ----------------------------------------------------------------------------------
def event_tag_counts(events: list[dict]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for ev in events:
        for tag in ev["tags"]:
            out.setdefault(tag["key"], Counter())[tag["value"]] += 1
    return out


def test_tag_values_count_exactly_the_served_events(emu):
    s = session(emu)
    truth = emu.truth()
    seen_browser = False
    for pid in truth["projects"]:
        events = project_events(s, emu, pid)
        counted = event_tag_counts(events)
        listed = s.get(proj(emu, pid, "tags/")).json()  # the project's tag keys: every key its events carry
        assert [(t["key"], t["uniqueValues"]) for t in listed] == sorted((k, len(v)) for k, v in counted.items())
        for key in aggregates.TAG_KEYS + aggregates.OTHER_TAG_KEYS:
            if key not in counted:
                assert s.get(proj(emu, pid, f"tags/{key}/values/")).json() == []
                assert key not in truth["tag_values"][pid]
                continue
            seen_browser |= key == "browser"
            rows, _ = walk(s, proj(emu, pid, f"tags/{key}/values/?per_page=7"))
            assert {r["value"]: r["count"] for r in rows} == dict(counted[key]) == truth["tag_values"][pid][key]
            assert all(r["key"] == key and r["firstSeen"] <= r["lastSeen"] for r in rows)
            assert [r["lastSeen"] for r in rows] == sorted((r["lastSeen"] for r in rows), reverse=True)
            last = {v: max(ev["dateCreated"] for ev in events if {"key": key, "value": v} in ev["tags"])
                    for v in counted[key]}
            assert {r["value"]: r["lastSeen"] for r in rows} == last
    assert seen_browser
    assert s.get(proj(emu, truth["projects"][0], "tags/no.such.key/values/")).status_code == 404
    n = sum(len(v) for t in truth["tag_values"].values() for v in t.values())
    assert truth["counts"]["tag_values"] == n


def test_tag_values_stop_at_the_cap_and_filter_by_query(emu, monkeypatch):
    s = session(emu)
    pid = emu.truth()["projects"][0]
    everything = walk(s, proj(emu, pid, "tags/user/values/"))[0]
    assert len(everything) > 5
    monkeypatch.setattr(api, "MAX_TAG_VALUES", 5)
    capped = walk(s, proj(emu, pid, "tags/user/values/?per_page=2"))[0]
    assert capped == everything[:5]
    one = everything[3]["value"]
    assert [r["value"] for r in s.get(proj(emu, pid, f"tags/user/values/?query={one}")).json()] == [one]


def test_project_users_are_the_event_users_and_query_by_prefix(emu):
    s = session(emu)
    truth = emu.truth()
    pid = max(truth["users"], key=lambda p: len(truth["users"][p]))
    events = project_events(s, emu, pid)
    rows, _ = walk(s, proj(emu, pid, "users/?per_page=10"))
    assert sorted(u["tagValue"] for u in rows) == truth["users"][pid]
    assert {u["tagValue"] for u in rows} == {f"id:{ev['user']['id']}" for ev in events if ev["user"]}
    assert sum(len(v) for v in truth["users"].values()) == truth["counts"]["users"]
    first_seen = {}
    for ev in events:
        if ev["user"]:
            first_seen[ev["user"]["id"]] = min(first_seen.get(ev["user"]["id"], "9"), ev["dateCreated"])
    for u in rows:
        assert u["dateCreated"] == first_seen[u["identifier"]]
        assert u["hash"] == hashlib.md5(u["identifier"].encode()).hexdigest()
    assert [u["dateCreated"] for u in rows] == sorted((u["dateCreated"] for u in rows), reverse=True)
    target = rows[len(rows) // 2]
    for prefix, value in (("id", target["identifier"]), ("email", target["email"]),
                          ("username", target["username"]), ("ip", target["ipAddress"])):
        found = s.get(proj(emu, pid, "users/"), params={"query": f"{prefix}:{value}"}).json()
        assert [u["tagValue"] for u in found] == [target["tagValue"]]
    assert s.get(proj(emu, pid, "users/"), params={"query": "shoe:42"}).json() == []
    assert s.get(proj(emu, pid, "users/"), params={"query": target["email"]}).json() == []


# ----- hashes ------------------------------------------------------------------------------------------------
def test_issue_hashes_carry_each_hash_latest_event(emu):
    s = session(emu)
    counts = Counter()
    for issue_id in emu.truth()["issues"]:
        scoped = s.get(org(emu, f"issues/{issue_id}/hashes/"))
        legacy = s.get(f"{emu.url}/api/0/issues/{issue_id}/hashes/")
        assert scoped.json() == legacy.json() and "Link" in scoped.headers
        rows = scoped.json()
        counts[len(rows)] += 1
        assert 1 <= len(rows) <= 2 and len({r["id"] for r in rows}) == len(rows)
        assert all(re.fullmatch(r"[0-9a-f]{32}", r["id"]) for r in rows)
        assert all("entries" in r["latestEvent"] and r["latestEvent"]["groupID"] == issue_id for r in rows)
        latest = s.get(f"{emu.url}/api/0/issues/{issue_id}/events/latest/").json()
        assert latest["eventID"] in {r["latestEvent"]["eventID"] for r in rows}
        assert rows[0]["id"] == latest["fingerprints"][0]
    assert counts[1] and counts[2]
    simple = s.get(f"{emu.url}/api/0/issues/{issue_id}/hashes/?full=false").json()
    assert "entries" not in simple[0]["latestEvent"]
    assert s.get(f"{emu.url}/api/0/issues/123/hashes/").status_code == 404


# ----- advance -------------------------------------------------------------------------------------------------
ORG_CHANGE_KEYS = {"deleted_issues", "deleted_events", "assignment_changes", "archived_releases", "new_deploys",
                   "new_members"}


def test_advance_reassigns_quiet_issues_without_an_event():
    with Emulator(seed=2, scale="tiny", now=NOW) as e:
        s = session(e)
        before = e.truth()
        summary = e.advance(24)
        after = e.truth()
        assert ORG_CHANGE_KEYS <= set(summary) and summary["deleted_issues"] == 0
        moved = [i for i, a in after["issues_assigned"].items() if before["issues_assigned"].get(i, a) != a]
        assert len(moved) == summary["assignment_changes"] >= 1
        for issue_id in moved:
            assert after["issues"][issue_id]["count"] == before["issues"][issue_id]["count"]
            detail = s.get(f"{e.url}/api/0/issues/{issue_id}/").json()
            assert detail["assignedTo"] == after["issues_assigned"][issue_id]
            assert detail["activity"][0]["type"] in ("assigned", "unassigned")
        assigned = {i["id"] for i in walk(s, org(e, "issues/?query=is:assigned"))[0]}
        assert assigned == {i for i, a in after["issues_assigned"].items() if a}


def test_advance_archives_open_releases_out_of_the_default_list():
    with Emulator(seed=2, scale="tiny", now=NOW) as e:
        s = session(e)
        before = e.truth()["releases_by_status"]
        summary = e.advance(48)
        after = e.truth()["releases_by_status"]
        newly = set(after["archived"]) - set(before["archived"])
        assert len(newly) == summary["archived_releases"] >= 1
        assert newly <= set(before["open"])
        listed = {r["version"] for r in walk(s, org(e, "releases/"))[0]}
        archived = {r["version"] for r in walk(s, org(e, "releases/?status=archived"))[0]}
        assert listed == set(after["open"]) and archived == set(after["archived"]) and newly <= archived


def test_advance_adds_deploys_and_releases_agree():
    with Emulator(seed=2, scale="tiny", now=NOW) as e:
        before = e.truth()["counts"]["deploys"]
        summary = e.advance(24)
        assert summary["new_deploys"] >= 1
        assert e.truth()["counts"]["deploys"] == before + summary["new_deploys"]
        assert_deploys_agree(e)


def test_advance_accepts_the_invite_and_sends_a_new_one():
    with Emulator(seed=2, scale="tiny", now=NOW) as e:
        s = session(e)
        invite = next(m for m in s.get(org(e, "members/")).json() if m["pending"])
        summary = e.advance(24 * 7)
        assert summary["new_members"] == 1
        members = walk(s, org(e, "members/"))[0]
        assert len(members) == len(e.truth()["members"]) == 18
        joined = next(m for m in members if m["id"] == invite["id"])
        assert joined["pending"] is False and joined["user"]["email"] == invite["email"]
        assert sum(m["pending"] for m in members) == 1


def test_deleted_issues_vanish_everywhere():
    with Emulator(seed=1, scale="tiny", now=NOW, deletions=True) as e:
        s = session(e)
        before = e.truth()
        old_events = set(requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"])
        gone_events = {}
        summary = e.advance(48)
        after = e.truth()
        assert summary["deleted_issues"] >= 1 and len(after["deleted_issues"]) == summary["deleted_issues"]
        events = before["counts"]["events"] + summary["new_events"] - summary["deleted_events"]
        assert after["counts"]["events"] == events
        served = set(requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"])
        for issue_id in after["deleted_issues"]:
            assert issue_id in before["issues"] and issue_id not in after["issues"]
            assert issue_id not in after["issues_assigned"]
            assert s.get(f"{e.url}/api/0/issues/{issue_id}/").status_code == 404
            assert s.get(org(e, f"issues/{issue_id}/")).status_code == 404
            assert s.get(org(e, f"issues/{issue_id}/events/")).status_code == 404
            assert s.get(org(e, f"issues/?group={issue_id}")).json() == []
        searched = {i["id"] for i in walk(s, org(e, "issues/?query=&per_page=7"))[0]}
        assert searched == set(after["issues"]) and not searched & set(after["deleted_issues"])
        listed = set()
        for pid in after["projects"]:
            listed |= {ev["eventID"] for ev in project_events(s, e, pid)}
            assert sum(n for _, n in stats(s, e, pid, stat="generated", resolution="1d", since=NOW_S - 88 * 86400)) == \
                after["project_stats"][pid]["accepted_total_90d"]
        assert listed == served and len(old_events - served) == summary["deleted_events"]
        for ev in old_events - served:
            gone_events[ev] = s.get(proj(e, after["projects"][0], f"events/{ev}/")).status_code
        assert set(gone_events.values()) == {404}
        with Emulator(seed=1, scale="tiny", now=NOW) as kept:
            assert kept.advance(48)["deleted_issues"] == 0 and kept.truth()["deleted_issues"] == []


# ----- rate limits ----------------------------------------------------------------------------------------------
def test_concurrency_headers_on_every_api_response(emu):
    s = session(emu)
    for url in (f"{emu.url}/api/0/", org(emu, "teams/"), f"{emu.url}/api/0/no/such/"):
        resp = s.get(url)
        assert resp.headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "100"
        assert resp.headers["X-Sentry-Rate-Limit-ConcurrentRemaining"] == "99"
        assert resp.headers["X-Sentry-Rate-Limit-Limit"] == "470"


def test_concurrent_limit_is_enforced_per_token_and_endpoint():
    with Emulator(seed=1, scale="tiny", now=NOW, concurrent_limit=1) as e:
        e.faults.add(kind="slow", delay=0.6, route="*/teams/*", times=1)
        s = session(e)
        slow: dict = {}
        thread = threading.Thread(target=lambda: slow.update(resp=s.get(org(e, "teams/"))))
        thread.start()
        time.sleep(0.2)
        same = session(e).get(org(e, "teams/"))
        beside = session(e).get(org(e, "members/"))  # another endpoint: its own count, as in Sentry
        other = requests.get(org(e, "teams/"), headers={"Authorization": "Bearer other"})
        thread.join()
        assert beside.status_code == 200
        assert same.status_code == 429
        assert same.json() == ("You are attempting to go above the allowed concurrency for this endpoint. "
                               "Concurrency limit is 1")
        assert same.headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "1"
        assert same.headers["X-Sentry-Rate-Limit-ConcurrentRemaining"] == "0"
        assert other.status_code == 401  # a different caller is not held up (and then fails auth)
        assert slow["resp"].status_code == 200
        assert session(e).get(org(e, "members/")).status_code == 200


def test_strict_limits_cap_project_events_at_60_a_minute():
    with Emulator(seed=1, scale="tiny", now=NOW, strict_limits=True) as e:
        s = session(e)
        url = proj(e, e.truth()["projects"][0], "events/?per_page=1")
        while time.time() % 60 > 50:  # keep all 61 requests inside one 60 s window
            time.sleep(1)
        responses = [s.get(url) for _ in range(61)]
        assert [r.status_code for r in responses[:60]] == [200] * 60
        assert responses[60].status_code == 429
        assert responses[60].json() == ("You are attempting to use this endpoint too frequently. "
                                        "Limit is 60 requests in 60 seconds")
        assert responses[0].headers["X-Sentry-Rate-Limit-Limit"] == "60"
        assert responses[0].headers["X-Sentry-Rate-Limit-Remaining"] == "59"
        assert responses[0].headers["X-Sentry-Rate-Limit-ConcurrentLimit"] == "1"
        date = email.utils.parsedate_to_datetime(responses[0].headers["Date"]).timestamp()
        assert 0 <= int(responses[0].headers["X-Sentry-Rate-Limit-Reset"]) - date <= 60  # a minute window
        assert s.get(org(e, "teams/")).status_code == 200
    with Emulator(seed=1, scale="tiny", now=NOW) as e:
        url = proj(e, e.truth()["projects"][0], "events/?per_page=1")
        assert all(session(e).get(url).status_code == 200 for _ in range(61))


# ----- GlitchTip flavour ------------------------------------------------------------------------------------------
def test_glitchtip_link_header_is_a_python_set_with_opaque_cursors(gt):
    s = session(gt)
    first = s.get(org(gt, "issues/?query=&limit=7"))
    raw = first.headers["Link"]
    assert raw.startswith("{'<") and raw.endswith("\"'}")
    assert not LINK_RE.search(raw.split(", <")[0])  # results="false" links carry no cursor attribute
    prev, nxt = links(first, strict=False)["previous"], links(first, strict=False)["next"]
    assert prev == (org(gt, "issues/?query=&limit=7"), "false", None)
    assert nxt[1] == "true" and nxt[2] and ":" not in nxt[2]
    assert base64.b64decode(nxt[2])  # base64, opaque to clients
    rows, responses = walk(s, org(gt, "issues/?query=&limit=7"), strict=False)
    assert {r["id"] for r in rows} == set(gt.truth()["issues"]) and len(rows) == len(set(r["id"] for r in rows))
    assert [len(r.json()) for r in responses] == [7, 7, 6]
    assert all(r.headers["X-Hits"] == "20" and r.headers["X-Max-Hits"] == "1000" for r in responses)
    last = links(responses[-1], strict=False)
    assert last["next"][1:] == ("false", None) and last["previous"][1] == "true"
    back = s.get(last["previous"][0])
    assert [i["id"] for i in back.json()] == [i["id"] for i in responses[-2].json()]


def test_glitchtip_rejects_garbage_cursors_and_pages_by_limit(gt):
    s = session(gt)
    for cursor in ("garbage!", "0:100:0", base64.b64encode(b"q=1").decode()):
        resp = s.get(f"{gt.url}/api/0/issues/{next(iter(gt.truth()['issues']))}/events/", params={"cursor": cursor})
        assert resp.status_code == 400 and resp.json() == {"detail": "Invalid cursor"}
    truth = gt.truth()["issues"]
    big = max(truth, key=lambda i: truth[i]["count"])
    url = f"{gt.url}/api/0/issues/{big}/events/"
    assert len(s.get(url).json()) == 50
    assert len(s.get(url + "?per_page=3").json()) == 50
    assert len(s.get(url + "?limit=3&per_page=100").json()) == 3
    rows, _ = walk(s, url + "?limit=40", strict=False)
    assert len(rows) == truth[big]["count"] == len({r["event_id"] for r in rows})
    small = s.get(url + "?limit=100&statsPeriod=1h")
    assert small.headers["X-Hits"] == str(len(small.json()))
    assert len(s.get(org(gt, "releases/?per_page=2")).json()) == 50


def test_glitchtip_issue_sorts(gt):
    s = session(gt)
    for sort in ("date", "freq", "new", "user"):
        resp = s.get(org(gt, f"issues/?query=&sort={sort}"))
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "sort"]
    truth = gt.truth()["issues"]

    def ids(sort):
        rows = walk(s, org(gt, f"issues/?query=&limit=6&sort={sort}"), strict=False)[0]
        return [r["id"] for r in rows]

    newest = ids("-last_seen")
    assert [truth[i]["lastSeen"] for i in newest] == sorted((v["lastSeen"] for v in truth.values()), reverse=True)
    assert ids("last_seen") == newest[::-1] or \
        [truth[i]["lastSeen"] for i in ids("last_seen")] == sorted(v["lastSeen"] for v in truth.values())
    assert [truth[i]["count"] for i in ids("-count")] == sorted((v["count"] for v in truth.values()), reverse=True)
    assert [truth[i]["firstSeen"] for i in ids("first_seen")] == sorted(v["firstSeen"] for v in truth.values())
    rank = {"high": 3, "medium": 2, "low": 1}
    by_priority = walk(s, org(gt, "issues/?query=&sort=-priority"), strict=False)[0]
    ranks = [rank[r["priority"]] for r in by_priority]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) > 1
    default = [r["id"] for r in s.get(org(gt, "issues/?query=")).json()]
    assert default == newest


def test_glitchtip_search_has_is_and_text_but_no_date_filters(gt):
    s = session(gt)
    truth = gt.truth()["issues"]
    resolved = {i["id"] for i in s.get(org(gt, "issues/?query=is:resolved")).json()}
    assert resolved == {i for i, v in truth.items() if v["status"] == "resolved"}
    word = s.get(org(gt, "issues/?query=")).json()[0]["title"].split(":")[0]
    assert s.get(org(gt, "issues/"), params={"query": word}).json()
    for query in ("lastSeen:>2024-05-01T00:00:00", "firstSeen:-24h", "is:unresolved lastSeen:-48h"):
        resp = s.get(org(gt, "issues/"), params={"query": query})
        assert resp.status_code == 400 and "Unsupported search key" in resp.json()["detail"]


def test_glitchtip_issue_events_are_snake_case_elsewhere_camel_case(gt):
    s = session(gt)
    issue_id, t = next(iter(gt.truth()["issues"].items()))
    events = s.get(f"{gt.url}/api/0/issues/{issue_id}/events/").json()
    assert len(events) == t["count"]
    for ev in events:
        assert {"event_id", "group_id", "project_id", "date_created", "date_received"} <= set(ev)
        assert not {"eventID", "groupID", "projectID", "dateCreated"} & set(ev)
        assert ev["group_id"] == issue_id and ev["date_received"] >= ev["date_created"]
    assert max(ev["date_created"] for ev in events) == t["lastSeen"]
    latest = s.get(f"{gt.url}/api/0/issues/{issue_id}/events/latest/").json()
    assert latest["eventID"] == events[0]["event_id"] and "event_id" not in latest
    project = s.get(proj(gt, t["project_id"], "events/?limit=3")).json()
    assert "eventID" in project[0] and "event_id" not in project[0]


@pytest.mark.parametrize("path", [
    "organizations/acme/issues/{issue}/events/",
    "organizations/acme/issues/{issue}/events/latest/",
    "organizations/acme/releases/{release}/deploys/",
    "projects/acme/{project}/stats/",
    "no/such/route/",
])
def test_glitchtip_missing_routes_answer_500_html(gt, path):
    truth = gt.truth()
    url = f"{gt.url}/api/0/" + path.format(issue=next(iter(truth["issues"])), project=truth["projects"][0],
                                           release=quote(next(iter(truth["deploys"])), safe=""))
    resp = session(gt).get(url)
    assert resp.status_code == 500 and resp.headers["Content-Type"].startswith("text/html")
    assert "<h1>Server Error (500)</h1>" in resp.text


def test_glitchtip_stats_v2_needs_category_field_start_end(gt):
    s = session(gt)
    full = {"category": "error", "field": "sum(quantity)", "start": "2024-05-29T10:20:00Z",
            "end": "2024-05-31T08:00:00Z"}
    for name in ("category", "field", "start", "end"):
        params = {k: v for k, v in full.items() if k != name} | {"statsPeriod": "2d"}
        resp = s.get(org(gt, "stats_v2/"), params=params)
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", name]
    assert s.get(org(gt, "stats_v2/"), params={**full, "category": "replay"}).status_code == 422
    data = s.get(org(gt, "stats_v2/"), params={**full, "groupBy": "outcome"}).json()
    assert set(data) == {"intervals", "groups"} and list(data["groups"][0]) == ["series"]
    assert data["intervals"][0] == "2024-05-29T10:00:00+00:00" and data["intervals"][-1] == "2024-05-31T09:00:00+00:00"
    series = data["groups"][0]["series"]["sum(quantity)"]
    assert len(series) == len(data["intervals"]) == 48
    events = sum(len(project_events(s, gt, pid, "&start=2024-05-29T10:00:00Z&end=2024-05-31T10:00:00Z"))
                 for pid in gt.truth()["projects"])
    assert sum(n or 0 for n in series) == events > 0 and None in series
    many = {**full, "start": "2024-01-01T00:00:00Z", "end": "2024-03-01T00:00:00Z"}
    assert s.get(org(gt, "stats_v2/"), params=many).status_code == 422


def test_glitchtip_shapes_and_headers(gt, emu):
    s = session(gt)
    org_detail = s.get(org(gt, "")).json()
    assert org_detail["require2fa"] is False and "require2FA" not in org_detail
    assert "require2fa" in s.get(f"{gt.url}/api/0/organizations/").json()[0]
    releases = s.get(org(gt, "releases/")).json()
    assert releases and not {"id", "newGroups", "lastEvent"} & set(releases[0]) and "version" in releases[0]
    truth = gt.truth()
    for path, total in (("teams/", len(truth["teams"])), ("members/", len(truth["members"])),
                        ("releases/", len(truth["releases_by_status"]["open"])),
                        ("issues/?query=is:resolved", truth["counts"]["issues_by_status"]["resolved"]),
                        ("releases/?limit=200", len(truth["releases_by_status"]["open"]))):
        resp = s.get(org(gt, path))
        assert resp.headers["X-Max-Hits"] == "1000" and resp.headers["X-Hits"] == str(total)
        assert len(resp.json()) == min(total, 50 if "limit" not in path else 100)
        assert not [h for h in resp.headers if h.startswith("X-Sentry-Rate-Limit")]
    assert gt.truth() == emu.truth()


def test_run_emulator_and_constructor_take_a_flavor():
    with pytest.raises(ValueError):
        Emulator(flavor="bugsnag")
    code = ("from sentry_mirror.emulator import run_emulator; "
            "run_emulator(0, 1, 'tiny', None, None, [], flavor='glitchtip')")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        base = proc.stdout.readline().strip().removeprefix("base URL: ")
        proc.stdout.readline()
        token = proc.stdout.readline().strip().removeprefix("token: ")
        resp = requests.get(base + "/api/0/organizations/acme/", headers={"Authorization": f"Bearer {token}"})
        assert "require2fa" in resp.json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_truth_endpoint_carries_the_new_keys(emu):
    truth = requests.get(f"{emu.url}/_emulator/truth").json()
    assert truth == emu.truth()
    for key in ("teams", "members", "environments", "deploys", "releases_by_status", "issues_assigned",
                "deleted_issues", "project_stats", "tag_values", "users"):
        assert key in truth
    assert set(truth["issues_assigned"]) == set(truth["issues"])
    assert sorted(truth["releases_by_status"]["open"] + truth["releases_by_status"]["archived"]) == \
        sorted(truth["releases"])
    assert set(truth["project_stats"]) == set(truth["tag_values"]) == set(truth["users"]) == set(truth["projects"])
    assert truth["counts"]["issues_assigned"] == sum(1 for v in truth["issues_assigned"].values() if v)
    assert truth["counts"]["releases_open"] == len(truth["releases_by_status"]["open"])
