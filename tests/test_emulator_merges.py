"""Issue merges in the emulator, observed through HTTP: the merged issues' events move to the
surviving issue with their ids unchanged, its figures cover them all, and the merged ids answer
404 and leave every list and the ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import requests
from helpers import org, session, walk

from sentry_mirror.emulator import Emulator

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)




def pick_merge(truth: dict) -> tuple[str, list[str]]:
    """The project with the most issues: its latest unresolved issue (one that goes on getting
    events) and the two busiest others."""
    by_project = Counter(v["project_id"] for v in truth["issues"].values())
    pid = by_project.most_common(1)[0][0]
    ids = sorted((i for i, v in truth["issues"].items() if v["project_id"] == pid),
                 key=lambda i: -truth["issues"][i]["count"])
    primary = max(ids, key=lambda i: (truth["issues"][i]["status"] == "unresolved", truth["issues"][i]["lastSeen"]))
    ids.remove(primary)
    return primary, ids[:2]


def rows_by_event(e: Emulator) -> dict[str, list]:
    data = requests.get(f"{e.url}/_emulator/truth/event_rows", timeout=30).json()
    return {r[0]: r for r in data["rows"]}


def test_merge_moves_events_keeps_their_ids_and_hides_the_merged_issues():
    with Emulator(seed=3, scale="tiny", now=NOW) as e:
        s = session(e)
        before = e.truth()
        primary, others = pick_merge(before)
        listed = {i: {ev["eventID"] for ev in walk(s, org(e, f"issues/{i}/events/?per_page=50"))[0]}
                  for i in [primary, *others]}
        rows_before = rows_by_event(e)
        ids_before = requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"]

        assert requests.post(f"{e.url}/_emulator/merge", json={"primary": primary, "others": others}).json() == \
            {"merged": 2, "primary": primary}

        after = e.truth()
        assert after["merged_issues"] == {o: primary for o in others}
        assert set(after["issues"]) == set(before["issues"]) - set(others)
        merged = [before["issues"][i] for i in [primary, *others]]
        got = after["issues"][primary]
        assert got["count"] == sum(m["count"] for m in merged) == len(set().union(*listed.values()))
        assert got["firstSeen"] == min(m["firstSeen"] for m in merged)
        assert got["lastSeen"] == max(m["lastSeen"] for m in merged)
        assert got["userCount"] >= max(m["userCount"] for m in merged)
        assert after["counts"]["events"] == before["counts"]["events"]
        ids_after = requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"]
        assert sorted(ids_after) == sorted(ids_before) and len(set(ids_after)) == len(ids_after)

        # the surviving issue lists every event under its id; the event routes find them there
        events = walk(s, org(e, f"issues/{primary}/events/?per_page=7"))[0]
        assert {ev["eventID"] for ev in events} == set().union(*listed.values())
        assert {ev["groupID"] for ev in events} == {primary}
        detail = requests.get(f"{e.url}/api/0/issues/{primary}/", headers=s.headers).json()
        assert int(detail["count"]) == got["count"] and detail["userCount"] == got["userCount"]
        rows_after = rows_by_event(e)
        for o in others:
            moved = sorted(listed[o])[0]
            assert s.get(org(e, f"issues/{primary}/events/{moved}/")).json()["groupID"] == primary
            assert s.get(org(e, f"eventids/{moved}/")).json()["groupId"] == primary
            assert s.get(org(e, f"issues/{o}/events/{moved}/")).status_code == 404
            for ev in listed[o]:  # the event itself is unchanged: only its issue moved
                assert rows_after[ev][2:] == rows_before[ev][2:] and rows_after[ev][1] == primary
            # the merged issue's id is gone from every issue route and list
            assert s.get(org(e, f"issues/{o}/")).status_code == 404
            assert s.get(f"{e.url}/api/0/issues/{o}/").status_code == 404
            assert s.get(org(e, f"issues/{o}/events/")).status_code == 404
            assert s.get(org(e, f"issues/?group={o}")).json() == []
        searched = {i["id"] for i in walk(s, org(e, "issues/?query=&per_page=7"))[0]}
        assert searched == set(after["issues"])
        project_ids = set()
        for pid in after["projects"]:
            url = f"{e.url}/api/0/projects/{e.org_slug}/{pid}/events/?per_page=100"
            project_ids |= {ev["eventID"] for ev in walk(s, url)[0]}
        assert project_ids == set(ids_after)


def test_events_after_a_merge_land_on_the_survivor_with_new_ids():
    with Emulator(seed=3, scale="tiny", now=NOW) as e:
        primary, others = pick_merge(e.truth())
        e.merge_issues(primary, others)
        before = set(requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"])
        for _ in range(4):
            e.advance(24)
        after = requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"]
        assert len(after) == len(set(after)) == e.truth()["counts"]["events"]
        new = set(after) - before
        rows = rows_by_event(e)
        assert new and any(rows[ev][1] == primary for ev in new)
        s = session(e)
        for ev in new:
            assert s.get(org(e, f"eventids/{ev}/")).json()["groupId"] == rows[ev][1]


def test_merges_in_advance_are_off_by_default_and_leave_the_step_otherwise_alike():
    with Emulator(seed=5, scale="small", now=NOW) as plain, \
            Emulator(seed=5, scale="small", now=NOW, merges=True) as merging:
        before = set(requests.get(f"{plain.url}/_emulator/truth/events").json()["event_ids"])
        a, b = plain.advance(24), merging.advance(24)
        assert a.pop("merged_issues") == 0 and b.pop("merged_issues") >= 1
        assert a == b  # the same events, issues and changes: merges come last, from their own RNG
        t_plain, t_merge = plain.truth(), merging.truth()
        assert t_plain["merged_issues"] == {} and len(t_merge["merged_issues"]) >= 1
        assert set(t_merge["issues"]) == set(t_plain["issues"]) - set(t_merge["merged_issues"])
        assert t_merge["counts"]["events"] == t_plain["counts"]["events"]
        ids = requests.get(f"{merging.url}/_emulator/truth/events").json()["event_ids"]
        assert sorted(ids) == sorted(requests.get(f"{plain.url}/_emulator/truth/events").json()["event_ids"])
        for source, survivor in t_merge["merged_issues"].items():
            assert survivor in t_merge["issues"]
            assert t_plain["issues"][source]["project_id"] == t_merge["issues"][survivor]["project_id"]
        for _ in range(3):  # later steps: every event still listed once
            merging.advance(24)
        ids = requests.get(f"{merging.url}/_emulator/truth/events").json()["event_ids"]
        assert len(ids) == len(set(ids)) == merging.truth()["counts"]["events"] and before <= set(ids) | before
