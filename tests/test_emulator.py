"""The Sentry API emulator: determinism, Sentry's pagination and errors, truth, advance, faults."""

from __future__ import annotations

import email.utils
import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from helpers import links, session, walk

from sentry_mirror.emulator import Emulator, World, parse_spec
from sentry_mirror.emulator.pagination import keyset_page

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def emu():
    with Emulator(seed=1, scale="tiny", now=NOW) as e:
        yield e



def issues_url(e: Emulator, params: str = "") -> str:
    return f"{e.url}/api/0/organizations/{e.org_slug}/issues/{params}"


def all_events(s: requests.Session, e: Emulator, issue_id: str) -> list[dict]:
    rows, _ = walk(s, f"{e.url}/api/0/organizations/{e.org_slug}/issues/{issue_id}/events/?per_page=100")
    return rows


# ----- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_identical_truth_and_responses():
    with Emulator(seed=7, scale="tiny", now=NOW) as a, Emulator(seed=7, scale="tiny", now=NOW) as b:
        assert a.truth() == b.truth()
        for e in (a, b):
            e.advance(30)
        assert a.truth() == b.truth()
        ra = session(a).get(issues_url(a, "?query=&sort=freq")).text.replace(a.url, "URL")
        rb = session(b).get(issues_url(b, "?query=&sort=freq")).text.replace(b.url, "URL")
        assert ra == rb
        issue_id = next(iter(a.truth()["issues"]))
        ea = session(a).get(f"{a.url}/api/0/issues/{issue_id}/events/latest/").text.replace(a.url, "URL")
        eb = session(b).get(f"{b.url}/api/0/issues/{issue_id}/events/latest/").text.replace(b.url, "URL")
        assert ea == eb


def test_different_seed_gives_different_world():
    a = World(seed=1, scale="tiny", now=NOW).truth()
    b = World(seed=2, scale="tiny", now=NOW).truth()
    assert a["issues"] != b["issues"]


def test_tiny_world_builds_fast():
    start = time.perf_counter()
    World(seed=3, scale="tiny", now=NOW)
    assert time.perf_counter() - start < 0.5


# ----- pagination -----------------------------------------------------------------------------------
def test_link_header_exact_format_without_query_params(emu):
    resp = session(emu).get(f"{emu.url}/api/0/organizations/{emu.org_slug}/releases/")
    base = f"{emu.url}/api/0/organizations/{emu.org_slug}/releases/?"
    assert len(resp.json()) < 100
    assert resp.headers["Link"] == (
        f'<{base}&cursor=100:-1:1>; rel="previous"; results="false"; cursor="100:-1:1", '
        f'<{base}&cursor=100:1:0>; rel="next"; results="false"; cursor="100:1:0"'
    )


def test_link_keeps_other_params_drops_cursor_and_uses_host_header(emu):
    url = issues_url(emu, "?query=is:unresolved&per_page=3&cursor=")
    resp = session(emu).get(url, headers={"Host": "sentry.example:8080"})
    prev_url, _, _ = links(resp)["previous"]
    assert prev_url.startswith("http://sentry.example:8080/api/0/organizations/acme/issues/"
                               "?query=is%3Aunresolved&per_page=3&cursor=")
    assert prev_url.count("cursor=") == 1


def test_issue_events_offset_cursors_and_last_page(emu):
    s = session(emu)
    truth = emu.truth()["issues"]
    big = max(truth, key=lambda i: truth[i]["count"])
    assert 100 < truth[big]["count"] < 200
    url = f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/{big}/events/"
    first = s.get(url)
    assert links(first)["previous"][1:] == ("false", "0:0:1")
    assert links(first)["next"][1:] == ("true", "0:100:0")
    second = s.get(links(first)["next"][0])
    assert len(first.json()) == 100 and len(second.json()) == truth[big]["count"] - 100
    assert links(second)["previous"][1:] == ("true", "0:0:1")
    assert links(second)["next"][1:] == ("false", "0:200:0")
    ids = [e["eventID"] for e in first.json() + second.json()]
    assert len(set(ids)) == len(ids)
    dates = [e["dateCreated"] for e in first.json() + second.json()]
    assert dates == sorted(dates, reverse=True)


def test_releases_use_page_number_cursors_and_hide_archived(emu):
    s = session(emu)
    rows, responses = walk(s, f"{emu.url}/api/0/organizations/{emu.org_slug}/releases/?per_page=10")
    assert [links(r)["next"][2] for r in responses[:3]] == ["10:1:0", "10:2:0", "10:3:0"]
    archived = s.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/releases/?status=archived").json()
    assert archived and all(r["status"] == "archived" for r in archived)
    assert all(r["status"] == "open" for r in rows)
    versions = {r["version"] for r in rows}
    assert versions.isdisjoint(r["version"] for r in archived)
    assert versions | {r["version"] for r in archived} == set(emu.truth()["releases"])
    dates = [r["dateCreated"] for r in rows]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("sort", ["date", "new", "freq", "user"])
def test_walking_all_issue_pages_returns_exactly_the_truth(emu, sort):
    rows, responses = walk(session(emu), issues_url(emu, f"?query=&per_page=3&sort={sort}"))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(emu.truth()["issues"])
    assert responses[0].headers["X-Hits"] == str(len(ids))
    assert responses[0].headers["X-Max-Hits"] == "1000"
    assert links(responses[-1])["next"][1] == "false"


def test_previous_cursor_returns_the_previous_page(emu):
    s = session(emu)
    first = s.get(issues_url(emu, "?query=&per_page=4&sort=freq"))
    second = s.get(links(first)["next"][0])
    back = s.get(links(second)["previous"][0])
    assert [i["id"] for i in back.json()] == [i["id"] for i in first.json()]


def test_keyset_cursor_walks_ties_forward_and_back():
    scores = [9, 7, 7, 7, 7, 7, 5, 5, 3, 1, 1, 1, 1]
    rows = list(range(len(scores)))
    neg = [-v for v in scores]
    pages = [keyset_page(rows, neg, 3, None, hits=len(rows))]
    while pages[-1].next.has_results:
        pages.append(keyset_page(rows, neg, 3, pages[-1].next, hits=len(rows)))
    assert [r for p in pages for r in p.rows] == rows
    for earlier, later in zip(pages, pages[1:]):
        assert list(keyset_page(rows, neg, 3, later.prev, hits=0).rows) == list(earlier.rows)
    assert not pages[0].prev.has_results and pages[1].prev.has_results


def test_regressed_issues_regress_in_a_later_release():
    with Emulator(seed=1, scale="small", now=NOW) as e:
        s = session(e)
        regressed = [i for i, v in e.truth()["issues"].items() if v["substatus"] == "regressed"]
        assert regressed
        for issue_id in regressed:
            activity = s.get(f"{e.url}/api/0/issues/{issue_id}/").json()["activity"]
            fixed = next(a["data"]["inRelease"] for a in activity if a["type"] == "set_resolved_in_release")
            again = next(a["data"]["version"] for a in activity if a["type"] == "set_regression")
            assert fixed != again and fixed.split("@")[0] == again.split("@")[0]


def test_default_query_hides_resolved_issues(emu):
    s = session(emu)
    truth = emu.truth()["issues"]
    default = [i["id"] for i in walk(s, issues_url(emu))[0]]
    unresolved = {i for i, v in truth.items() if v["status"] == "unresolved"}
    assert set(default) == unresolved
    assert len(unresolved) < len(truth)
    everything = [i["id"] for i in walk(s, issues_url(emu, "?query="))[0]]
    assert set(everything) == set(truth)


def test_status_and_date_filters(emu):
    s = session(emu)
    truth = emu.truth()["issues"]
    resolved = {i["id"] for i in s.get(issues_url(emu, "?query=is:resolved")).json()}
    assert resolved == {i for i, v in truth.items() if v["status"] == "resolved"}
    cutoff = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = {i["id"] for i in s.get(issues_url(emu, f"?query=lastSeen:>{cutoff}")).json()}
    expected = {i for i, v in truth.items() if v["lastSeen"] > cutoff}
    assert recent == expected and 0 < len(recent)
    relative = {i["id"] for i in s.get(issues_url(emu, "?query=is:unresolved lastSeen:-48h")).json()}
    assert relative == {i for i in expected if truth[i]["status"] == "unresolved"} != expected


def test_group_param_bypasses_search(emu):
    truth = emu.truth()["issues"]
    resolved = [i for i, v in truth.items() if v["status"] == "resolved"][:2]
    resp = session(emu).get(issues_url(emu, "?" + "&".join(f"group={i}" for i in resolved)))
    assert sorted(i["id"] for i in resp.json()) == sorted(resolved)


# ----- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("params, detail", [
    ("?per_page=101", "Invalid per_page value. Cannot exceed 100."),
    ("?limit=101", "Invalid per_page value. Cannot exceed 100."),
    ("?cursor=abc", "Invalid cursor parameter."),
    ("?cursor=1:2", "Invalid cursor parameter."),
    ("?statsPeriod=7x", "Invalid statsPeriod: '7x'"),
    ("?start=2024-05-01T00:00:00Z", "start and end are both required"),
    ("?start=2024-05-02&end=2024-05-01", "start must be before end"),
    ("?sort=priority", None),
    ("?query=bogus:1", None),
])
def test_bad_parameters_are_400_with_detail(emu, params, detail):
    resp = session(emu).get(issues_url(emu, params))
    assert resp.status_code == 400
    assert (resp.json()["detail"] == detail) if detail else resp.json()["detail"]


def test_statsperiod_limits_the_window(emu):
    s = session(emu)
    truth = emu.truth()["issues"]
    day = {i["id"] for i in s.get(issues_url(emu, "?query=&statsPeriod=24h")).json()}
    cutoff = (NOW - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")
    assert day == {i for i, v in truth.items() if v["lastSeen"] >= cutoff}
    assert 0 < len(day) < len(truth)


def test_events_bad_cursor_is_400(emu):
    issue_id = next(iter(emu.truth()["issues"]))
    resp = session(emu).get(f"{emu.url}/api/0/issues/{issue_id}/events/?cursor=x:y:z")
    assert resp.status_code == 400 and resp.json() == {"detail": "Invalid cursor parameter."}


def test_auth_errors(emu):
    url = f"{emu.url}/api/0/organizations/"
    missing = requests.get(url)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    wrong = requests.get(url, headers={"Authorization": "Bearer sntryu_" + "1" * 64})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "Invalid token"}
    assert wrong.headers["X-Sentry-Rate-Limit-Limit"]
    assert session(emu).get(url).status_code == 200


def test_unknown_org_issue_and_path_are_404(emu):
    s = session(emu)
    assert s.get(f"{emu.url}/api/0/organizations/nope/").json() == {"detail": "The requested resource does not exist"}
    assert s.get(f"{emu.url}/api/0/issues/123/").status_code == 404
    assert s.get(f"{emu.url}/api/0/no/such/thing/").status_code == 404
    assert s.get(f"{emu.url}/api/0/organizations/acme/releases/nope%401.0.0/").status_code == 404
    version = emu.truth()["releases"][0]
    found = s.get(f"{emu.url}/api/0/organizations/acme/releases/{version.replace('@', '%40')}/")
    assert found.json()["version"] == version and isinstance(found.json()["id"], int)


def test_rate_limit_answers_429_with_json_string():
    with Emulator(seed=1, scale="tiny", now=NOW, rate_limit=2) as e:
        s = session(e)
        responses = [s.get(f"{e.url}/api/0/organizations/") for _ in range(8)]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        body = limited[0].json()
        assert body == "You are attempting to use this endpoint too frequently. Limit is 2 requests in 1 seconds"
        assert limited[0].headers["X-Sentry-Rate-Limit-Remaining"] == "0"
        # Reset is told on the server's clock, as Date is: the window opens within a second of Date
        date = email.utils.parsedate_to_datetime(limited[0].headers["Date"]).timestamp()
        assert 0 <= int(limited[0].headers["X-Sentry-Rate-Limit-Reset"]) - date <= 1
        assert "Retry-After" not in limited[0].headers


def test_date_header_follows_virtual_clock(emu):
    assert session(emu).get(f"{emu.url}/api/0/").headers["Date"] == "Sat, 01 Jun 2024 12:00:00 GMT"
    emu.advance(24)
    assert session(emu).get(f"{emu.url}/api/0/").headers["Date"] == "Sun, 02 Jun 2024 12:00:00 GMT"


# ----- truth and its invariants ---------------------------------------------------------------------
def assert_truth_matches_api(e: Emulator) -> None:
    s = session(e)
    truth = e.truth()
    event_ids = set()
    for issue_id, t in truth["issues"].items():
        events = all_events(s, e, issue_id)
        assert len(events) == t["count"]
        assert max(ev["dateCreated"] for ev in events) == t["lastSeen"]
        assert min(ev["dateCreated"] for ev in events) == t["firstSeen"]
        assert len({ev["user"]["id"] for ev in events if ev["user"]}) == t["userCount"]
        detail = s.get(f"{e.url}/api/0/organizations/{e.org_slug}/issues/{issue_id}/").json()
        assert detail["count"] == str(t["count"]) and detail["status"] == t["status"]
        event_ids.update(ev["eventID"] for ev in events)
    assert len(event_ids) == truth["counts"]["events"]
    served = requests.get(f"{e.url}/_emulator/truth/events").json()["event_ids"]
    assert set(served) == event_ids


def test_truth_invariants_hold_through_the_api(emu):
    assert_truth_matches_api(emu)


def test_truth_endpoint_matches_python_api(emu):
    assert requests.get(f"{emu.url}/_emulator/truth").json() == emu.truth()


def test_advance_adds_events_and_quiet_status_changes(emu):
    before = emu.truth()
    summary = requests.post(f"{emu.url}/_emulator/advance", json={"hours": 48}).json()
    after = emu.truth()
    assert summary["now"] == after["now"] == "2024-06-03T12:00:00Z"
    assert summary["new_events"] > 0 and summary["status_changes_without_event"] >= 1
    assert after["counts"]["events"] == before["counts"]["events"] + summary["new_events"]
    quiet = [i for i, v in before["issues"].items()
             if i in after["issues"] and after["issues"][i]["count"] == v["count"]
             and (after["issues"][i]["status"], after["issues"][i]["substatus"]) != (v["status"], v["substatus"])]
    assert quiet
    assert_truth_matches_api(emu)


def test_retention_drops_events_older_than_90_days(emu):
    emu.advance(24 * 45)
    truth = emu.truth()
    cutoff = (NOW + timedelta(days=45) - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S")
    assert all(v["firstSeen"] >= cutoff for v in truth["issues"].values())
    served = walk(session(emu), issues_url(emu, "?query="))[0]
    assert {i["id"] for i in served} == set(truth["issues"])


def test_event_detail_endpoints_agree(emu):
    s = session(emu)
    issue_id, t = next(iter(emu.truth()["issues"].items()))
    latest = s.get(f"{emu.url}/api/0/issues/{issue_id}/events/latest/").json()
    oldest = s.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/{issue_id}/events/oldest/").json()
    assert latest["dateCreated"] == t["lastSeen"] and oldest["dateCreated"] == t["firstSeen"]
    project_event = s.get(f"{emu.url}/api/0/projects/{emu.org_slug}/{latest['projectID']}/events/{latest['eventID']}/")
    assert project_event.json()["eventID"] == latest["eventID"]
    assert project_event.json()["entries"][0]["type"] == "exception"
    assert latest["nextEventID"] is None and (t["count"] == 1) == (latest["previousEventID"] is None)


def test_project_events_full_is_truthy_for_any_value(emu):
    pid = emu.truth()["projects"][0]
    url = f"{emu.url}/api/0/projects/{emu.org_slug}/{pid}/events/?per_page=5"
    s = session(emu)
    assert "entries" not in s.get(url).json()[0]
    assert "entries" in s.get(url + "&full=false").json()[0]
    issue_id = next(iter(emu.truth()["issues"]))
    issue_url = f"{emu.url}/api/0/issues/{issue_id}/events/"
    assert "entries" not in s.get(issue_url + "?full=false").json()[0]
    assert "entries" in s.get(issue_url + "?full=true").json()[0]


def test_request_counts_by_route_template(emu):
    s = session(emu)
    s.get(issues_url(emu))
    s.get(issues_url(emu, "?query="))
    counts = requests.get(f"{emu.url}/_emulator/requests").json()
    assert counts["by_endpoint"] == {"GET /api/0/organizations/{org}/issues/": 2}
    requests.post(f"{emu.url}/_emulator/requests/reset")
    assert emu.request_counts()["total"] == 0


# ----- faults --------------------------------------------------------------------------------------
def test_fault_429_with_retry_after(emu):
    emu.faults.add(kind="429", retry_after=1, times=1)
    s = session(emu)
    first, second = s.get(f"{emu.url}/api/0/"), s.get(f"{emu.url}/api/0/")
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert first.json().startswith("You are attempting to use this endpoint too frequently")
    assert second.status_code == 200


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_fault_server_errors(emu, kind):
    emu.faults.add(kind=kind, route="*/issues/*")
    s = session(emu)
    assert s.get(issues_url(emu)).status_code == int(kind)
    assert s.get(f"{emu.url}/api/0/organizations/").status_code == 200


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_fault_broken_transport(emu, kind):
    emu.faults.add(kind=kind, times=1)
    s = session(emu)
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        s.get(issues_url(emu, "?query="))
    assert s.get(issues_url(emu, "?query=")).status_code == 200


def test_fault_badjson(emu):
    emu.faults.add(kind="badjson", times=1)
    resp = session(emu).get(issues_url(emu))
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


def test_fault_slow(emu):
    emu.faults.add(kind="slow", delay=0.3, times=1)
    start = time.perf_counter()
    assert session(emu).get(f"{emu.url}/api/0/").status_code == 200
    assert time.perf_counter() - start >= 0.3


def test_fault_badcursor(emu):
    emu.faults.add(kind="badcursor", times=1)
    s = session(emu)
    first = s.get(issues_url(emu, "?query=&per_page=5"))
    assert first.status_code == 200  # no cursor sent: nothing to refuse
    cursor = first.links["next"]["url"].split("cursor=")[1]
    resp = s.get(issues_url(emu, f"?query=&per_page=5&cursor={cursor}"))
    assert resp.status_code == 400 and resp.json() == {"detail": "Invalid cursor parameter."}


def test_fault_revoke_is_permanent(emu):
    emu.faults.add(kind="revoke", after=1, times=1)
    s = session(emu)
    assert s.get(f"{emu.url}/api/0/organizations/").status_code == 200
    for _ in range(2):
        resp = s.get(f"{emu.url}/api/0/organizations/")
        assert resp.status_code == 401 and resp.json() == {"detail": "Invalid token"}


def test_fault_drift(emu):
    emu.faults.add(kind="drift", route="*/issues/")
    issue = session(emu).get(issues_url(emu)).json()[0]
    assert isinstance(issue["count"], int)
    assert "x_emulatorDrift" in issue and "annotations" not in issue and issue["culprit"] is None


def test_fault_schedule_after_every_times_and_rate(emu):
    url = f"{emu.url}/api/0/organizations/"
    s = session(emu)
    emu.faults.add(kind="503", after=1, every=2, times=2)
    codes = [s.get(url).status_code for _ in range(7)]
    assert codes == [200, 200, 503, 200, 503, 200, 200]
    emu.faults.clear()
    emu.faults.add(kind="500", rate=0.5)
    codes = [s.get(url).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35


def test_faults_over_http_and_never_on_control_routes(emu):
    created = requests.post(f"{emu.url}/_emulator/faults", json={"spec": "kind=503,route=*"})
    assert created.status_code == 201 and created.json()["kind"] == "503"
    assert requests.get(f"{emu.url}/_emulator/truth").status_code == 200
    assert session(emu).get(f"{emu.url}/api/0/").status_code == 503
    listed = requests.get(f"{emu.url}/_emulator/faults").json()
    assert listed[0]["fired"] == 1
    assert requests.delete(f"{emu.url}/_emulator/faults").json() == {"cleared": 1}
    assert session(emu).get(f"{emu.url}/api/0/").status_code == 200
    assert requests.post(f"{emu.url}/_emulator/faults", json={"kind": "explode"}).status_code == 400


def test_fault_spec_grammar():
    assert parse_spec("kind=503,route=*/issues/*,rate=0.2") == {"kind": "503", "route": "*/issues/*", "rate": "0.2"}
    assert parse_spec("429,retry_after=1,times=3") == {"kind": "429", "retry_after": "1", "times": "3"}


# ----- CLI entry point ---------------------------------------------------------------------------------
def test_run_emulator_prints_connection_details_and_stops_on_sigterm():
    code = "from sentry_mirror.emulator import run_emulator; run_emulator(0, 1, 'tiny', None, None, ['kind=slow,delay=0'])"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[0].startswith("base URL: http://127.0.0.1:")
        assert lines[1] == "organization: acme"
        token = lines[2].removeprefix("token: ")
        resp = requests.get(lines[0].removeprefix("base URL: ") + "/api/0/organizations/",
                            headers={"Authorization": f"Bearer {token}"})
        assert json.loads(resp.text)[0]["slug"] == "acme"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
