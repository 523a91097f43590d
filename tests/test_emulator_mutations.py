"""Issue changes made through the API (PUT/DELETE) change the emulator's world: later reads, the
ground truth and its history show them, and the mirror picks them up on its next sync."""

from __future__ import annotations

import pytest
import requests
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "d4" * 32


@pytest.fixture
def emu():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as e:
        yield e


@pytest.fixture
def api(emu):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s, f"{emu.url}/api/0/organizations/{emu.org_slug}"


def statuses(emu, status):
    return sorted(i for i, v in emu.truth()["issues"].items() if v["status"] == status)


def test_bulk_resolve_by_id_in_the_next_release(emu, api):
    s, org = api
    ids = statuses(emu, "unresolved")[:3]
    resp = s.put(f"{org}/issues/?" + "&".join(f"id={i}" for i in ids), json={"status": "resolvedInNextRelease"})
    assert resp.status_code == 200 and resp.json()["status"] == "resolved"
    assert resp.json()["statusDetails"] == {"inNextRelease": True}
    truth = emu.truth()["issues"]
    assert all(truth[i]["status"] == "resolved" for i in ids)
    detail = s.get(f"{org}/issues/{ids[0]}/").json()
    assert detail["statusDetails"] == {"inNextRelease": True}
    assert detail["activity"][0]["type"] == "set_resolved_in_release"
    history = requests.get(f"{emu.url}/_emulator/truth/history").json()
    assert history[ids[0]][-1]["type"] == "set_resolved_in_release"


def test_status_change_by_query_touches_only_matching_issues_up_to_the_limit(emu, api):
    s, org = api
    unresolved = statuses(emu, "unresolved")
    resolved = statuses(emu, "resolved")
    resp = s.put(f"{org}/issues/?query=is:unresolved&limit=2",
                 json={"status": "ignored", "statusDetails": {"ignoreDuration": 60}})
    assert resp.status_code == 200
    now_ignored = set(statuses(emu, "ignored"))
    changed = set(unresolved) - set(statuses(emu, "unresolved"))
    assert len(changed) == 2 and changed <= now_ignored
    assert statuses(emu, "resolved") == resolved  # the query kept resolved issues out
    details = s.get(f"{org}/issues/{sorted(changed)[0]}/").json()
    assert details["substatus"] == "archived_until_condition_met" and "ignoreUntil" in details["statusDetails"]


def test_non_status_changes_need_ids_and_valid_values(emu, api):
    s, org = api
    assert s.put(f"{org}/issues/", json={"isBookmarked": True}).json() == {
        "detail": "You must specify a list of IDs for this operation"}
    one = statuses(emu, "unresolved")[0]
    assert s.put(f"{org}/issues/?id={one}", json={"status": "fixed"}).status_code == 400
    assert s.put(f"{org}/issues/{one}/", json={"assignedTo": "nobody-here"}).status_code == 400
    assert s.put(f"{org}/issues/{one}/", json={}).status_code == 400


def test_assign_bookmark_priority_on_one_issue(emu, api):
    s, org = api
    issue = statuses(emu, "unresolved")[0]
    member = s.get(f"{org}/members/").json()[1]["user"]
    resp = s.put(f"{org}/issues/{issue}/", json={"assignedTo": f"user:{member['id']}", "isBookmarked": True,
                                                  "hasSeen": True, "priority": "low"})
    body = resp.json()
    assert resp.status_code == 200 and body["assignedTo"]["id"] == member["id"]
    assert (body["isBookmarked"], body["hasSeen"], body["priority"]) == (True, True, "low")
    assert emu.truth()["issues_assigned"][issue]["id"] == member["id"]
    s.put(f"{org}/issues/{issue}/", json={"assignedTo": ""})
    assert emu.truth()["issues_assigned"][issue] is None


def test_delete_one_and_in_bulk(emu, api):
    s, org = api
    first, second, third = statuses(emu, "unresolved")[:3]
    assert s.delete(f"{org}/issues/{first}/").status_code == 202
    assert s.delete(f"{org}/issues/?id={second}&id={third}").status_code == 204
    truth = emu.truth()
    assert not {first, second, third} & set(truth["issues"])
    assert all(s.get(f"{org}/issues/{i}/").status_code == 404 for i in (first, second, third))
    listed = {i["id"] for i in s.get(f"{org}/issues/?query=&statsPeriod=90d&limit=100").json()}
    assert not {first, second, third} & listed


def test_project_issue_mutations_stay_inside_the_project(emu, api):
    s, org = api
    truth = emu.truth()["issues"]
    project = next(iter({v["project_id"] for v in truth.values()}))
    slug = next(p["slug"] for p in s.get(f"{org}/projects/").json() if p["id"] == project)
    other = next(i for i, v in truth.items() if v["project_id"] != project and v["status"] == "unresolved")
    base = f"{emu.url}/api/0/projects/{emu.org_slug}/{slug}/issues/"
    assert s.put(f"{base}?id={other}", json={"status": "resolved"}).status_code == 204  # out of scope: no change
    assert emu.truth()["issues"][other]["status"] == "unresolved"
    assert s.put(base, json={"status": "resolved"}).status_code == 200
    after = emu.truth()["issues"]
    assert all(v["status"] == "resolved" for v in after.values() if v["project_id"] == project)
    assert after[other]["status"] == "unresolved"


def test_the_mirror_picks_up_changes_made_through_the_api(emu, api, tmp_path):
    s, org = api
    store = Store(str(tmp_path / "s.duckdb"))
    sync(store, emu)
    issue = statuses(emu, "unresolved")[0]
    gone = statuses(emu, "unresolved")[1]
    s.put(f"{org}/issues/{issue}/", json={"status": "resolved"})
    s.delete(f"{org}/issues/{gone}/")
    sync(store, emu)
    con = store.con
    assert con.execute("SELECT status FROM issues WHERE id = ?", [issue]).fetchone()[0] == "resolved"
    assert con.execute("SELECT to_status FROM issue_status_history WHERE issue_id = ? ORDER BY id DESC LIMIT 1",
                       [issue]).fetchone()[0] == "resolved"
    assert con.execute("SELECT deleted_at IS NOT NULL FROM issues WHERE id = ?", [gone]).fetchone()[0]
    store.close()


def test_the_legacy_issue_route_takes_put_and_delete_as_its_get(emu, api):
    """README lists issue detail under both routes and PUT on one issue; the legacy one answered 405."""
    s, org = api
    issue = statuses(emu, "unresolved")[0]
    legacy = f"{emu.url}/api/0/issues/{issue}/"
    resp = s.put(legacy, json={"status": "resolved"})
    assert resp.status_code == 200 and resp.json()["status"] == "resolved"
    assert s.get(f"{org}/issues/{issue}/").json()["status"] == "resolved"
    assert s.delete(legacy).status_code == 202
    assert s.get(legacy).status_code == 404
