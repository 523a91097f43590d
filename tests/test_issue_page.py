"""`sentry-mirror issue SHORT-ID|ID`: an issue and one of its events read offline, checked against
the emulator's ground truth and its own issue and event pages (what Sentry's web UI reads)."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
import requests
from helpers import TOKEN, one_line_error, org, run, session, sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store synced from an emulator where a user ignored one issue until 50 more events in an
    hour and resolved another in the next release (before the sync), then deleted a third (seen by
    a second sync). Yields the store's path, the emulator's truth, its event facts and pages."""
    db = str(tmp_path_factory.mktemp("issue_page") / "s.duckdb")
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        s = session(emu)
        truth = emu.truth()
        by_events = sorted(truth["issues"], key=lambda i: (-truth["issues"][i]["count"], i))
        unresolved = [i for i in by_events if truth["issues"][i]["status"] == "unresolved"]
        ignored, resolved, deleted = unresolved[1], unresolved[2], unresolved[3]
        for issue_id, body in ((ignored, {"status": "ignored", "statusDetails": {"ignoreCount": 50, "ignoreWindow": 60}}),
                               (resolved, {"status": "resolvedInNextRelease"})):
            assert s.put(org(emu, f"issues/{issue_id}/"), json=body, timeout=30).status_code == 200
        store = Store(db)
        sync(store, emu)
        pages = {i: s.get(org(emu, f"issues/{i}/"), timeout=30).json() for i in truth["issues"]}
        latest = {i: s.get(org(emu, f"issues/{i}/events/latest/"), timeout=30).json() for i in by_events[:4]}
        assert s.delete(org(emu, f"issues/{deleted}/"), timeout=30).status_code == 202
        sync(store, emu)
        store.close()
        truth = emu.truth()
        rows = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=60).json()
    facts = [dict(zip(rows["columns"], r)) for r in rows["rows"]]
    yield {"db": db, "truth": truth, "facts": facts, "pages": pages, "latest": latest, "top": by_events[0],
           "ignored": ignored, "resolved": resolved, "deleted": deleted}


def page(world, ref, *args):
    result = run("issue", ref, "--db", world["db"], "--json", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def text(world, ref, *args):
    result = run("issue", ref, "--db", world["db"], *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def test_the_page_shows_the_truths_title_status_and_counts(world):
    issue_id = world["top"]
    want, shown = world["truth"]["issues"][issue_id], world["pages"][issue_id]
    out = text(world, shown["shortId"].lower())  # a short id typed in lower case finds it too
    assert out.splitlines()[0] == f"{shown['shortId']}  {shown['title']}"
    assert f"events {want['count']:,} in Sentry, {want['count']:,} stored" in out
    assert f"users {want['userCount']:,} in Sentry" in out
    assert f"status {want['status']} ({want['substatus']})" in out
    assert f"project {shown['project']['slug']}" in out


def test_the_latest_event_is_the_newest_one_stored_and_sentrys_latest(world):
    con = duckdb.connect(world["db"], read_only=True)
    try:
        for issue_id, online in world["latest"].items():
            newest = max((f for f in world["facts"] if f["issue_id"] == issue_id),
                         key=lambda f: (f["date_created"], f["event_id"]))
            stored = con.execute("SELECT event_id FROM events WHERE issue_id = ? ORDER BY date_created DESC, "
                                 "event_id DESC LIMIT 1", [issue_id]).fetchone()[0]
            got = page(world, issue_id)["event"]
            assert got["event_id"] == newest["event_id"] == stored == online["eventID"]
            assert got["newer"] == 0
            oldest = page(world, issue_id, "--oldest")["event"]
            first = min((f for f in world["facts"] if f["issue_id"] == issue_id),
                        key=lambda f: (f["date_created"], f["event_id"]))
            assert oldest["event_id"] == first["event_id"] and oldest["older"] == 0
            assert page(world, issue_id, "--event", first["event_id"])["event"]["event_id"] == first["event_id"]
    finally:
        con.close()


def test_frames_come_in_sentrys_order_with_in_app_frames_marked_and_their_source(world):
    issue_id = world["top"]
    online = world["latest"][issue_id]
    exc = next(e for e in online["entries"] if e["type"] == "exception")["data"]["values"]
    want = [[(f["filename"], f["function"], f["lineNo"], f["inApp"]) for f in v["stacktrace"]["frames"]] for v in exc]
    got = page(world, issue_id)["event"]["exceptions"]
    assert [[(f["filename"], f["function"], f["line_no"], f["in_app"]) for f in e["frames"]] for e in got] == want
    assert [(e["type"], e["value"], e["handled"]) for e in got] == [
        (v["type"], v["value"], v["mechanism"]["handled"]) for v in exc]
    lines = text(world, issue_id).splitlines()
    frame_lines = [line for line in lines if " in " in line and " at line " in line]
    assert len(frame_lines) == len(want[0])
    for line, (filename, function, line_no, in_app) in zip(frame_lines, want[0]):
        assert f"{filename} in {function} at line {line_no}" in line
        assert line.startswith("  > ") == bool(in_app)
    app = next(f for f in exc[0]["stacktrace"]["frames"] if f["inApp"])
    raised = next(t for n, t in app["context"] if n == app["lineNo"])
    assert any(line.strip().startswith(f">{app['lineNo']:>5} | ") and line.endswith(raised) for line in lines)


def test_status_details_say_until_when_and_in_which_release(world):
    ignored = text(world, world["ignored"])
    assert "status ignored until 50 more events in 1 hour" in ignored
    assert world["pages"][world["ignored"]]["statusDetails"] == {"ignoreCount": 50, "ignoreWindow": 60}
    assert "status resolved in the next release" in text(world, world["resolved"])
    resolved = page(world, world["resolved"])["issue"]
    assert resolved["status"] == world["truth"]["issues"][world["resolved"]]["status"] == "resolved"
    assert resolved["status_details"] == {"inNextRelease": True}


def test_json_is_the_same_page_as_data(world):
    issue_id = world["top"]
    got = page(world, issue_id)
    online = world["latest"][issue_id]
    assert got["issue"]["times_seen"] == world["truth"]["issues"][issue_id]["count"]
    assert got["issue"]["short_id"] == world["pages"][issue_id]["shortId"]
    event = got["event"]
    entries = {e["type"]: e["data"] for e in online["entries"]}
    assert event["breadcrumbs"] == (entries.get("breadcrumbs") or {}).get("values", [])
    assert "request" in entries  # a web project's event: the page must carry its request
    assert (event["request"]["method"], event["request"]["url"]) == (entries["request"]["method"], entries["request"]["url"])
    assert event["release"] == (online["release"] or {}).get("version")
    assert event["contexts"] == online["contexts"]
    assert event["user"]["id"] == online["user"]["id"]
    con = duckdb.connect(world["db"], read_only=True)
    try:
        counts = dict(((k, v), n) for k, v, n in con.execute(
            "SELECT key, value, count(*) FROM event_tags WHERE event_id IN "
            "(SELECT event_id FROM events WHERE issue_id = ?) GROUP BY ALL", [issue_id]).fetchall())
    finally:
        con.close()
    for tag in got["tags"]:
        assert len(tag["top"]) <= 3
        assert [v["events"] for v in tag["top"]] == sorted((v["events"] for v in tag["top"]), reverse=True)
        for value in tag["top"]:
            assert value["events"] == counts[(tag["key"], value["value"])]
            assert value["share"] == round(value["events"] / tag["events"], 4)


def test_an_unknown_id_is_one_line_and_exit_2(world):
    line = one_line_error(run("issue", "WEB-9", "--db", world["db"]), 2)
    assert "no issue WEB-9 in the store" in line and "sentry-mirror issues" in line
    line = one_line_error(run("issue", world["top"], "--db", world["db"], "--event", "f" * 32), 2)
    assert "f" * 32 in line


def test_a_deleted_issue_still_shows_marked_deleted(world):
    issue_id = world["deleted"]
    assert issue_id not in world["truth"]["issues"]
    out = text(world, issue_id)
    assert "DELETED in Sentry" in out and world["pages"][issue_id]["title"] in out
    got = page(world, issue_id)
    assert got["issue"]["shown_status"] == "deleted" and got["event"] is not None


def test_an_id_in_two_sources_asks_for_source(world, tmp_path):
    db = str(tmp_path / "two.duckdb")
    shutil.copy(world["db"], db)
    con = duckdb.connect(db)
    con.execute("INSERT INTO issues SELECT 'other', * EXCLUDE (source) FROM issues WHERE id = ?", [world["top"]])
    con.close()
    short_id = world["pages"][world["top"]]["shortId"]
    line = one_line_error(run("issue", short_id, "--db", db), 2)
    assert "2 sources (acme, other)" in line and "--source" in line
    result = run("issue", short_id, "--db", db, "--source", "other", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["issue"]["source"] == "other"
