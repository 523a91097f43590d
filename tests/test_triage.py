"""`sentry-mirror triage` against the emulator: each action changes Sentry (the emulator's truth)
and the store at once, from Sentry's answer; the next sync confirms it and adds no history; bulk
sets go in requests of at most 100 ids; nothing changes without --yes or with --dry-run; a token
without the write scope, a rate limit and a failing server end as Sentry's user would expect."""

from __future__ import annotations

import json

import pytest
import requests
from helpers import TOKEN, one_line_error, run, sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.storage.store import Store


@pytest.fixture
def emu():
    with Emulator(seed=5, scale="tiny", token=TOKEN) as e:
        yield e


@pytest.fixture
def db(emu, tmp_path, clean_sentry_env):
    path = tmp_path / "m.duckdb"
    store = Store(path)
    try:
        sync(store, emu, events="none")
    finally:
        store.close()
    return path


@pytest.fixture
def quick_retries(monkeypatch):
    """Retries wait 10 ms: the paths under test are the same, the test is not minutes long."""
    monkeypatch.setattr(SentryClient, "_delay", lambda self, attempt, response: 0.01)


def triage(emu, db, *args):
    return run("triage", *args, "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "--yes",
               env={"SENTRY_AUTH_TOKEN": TOKEN})


def rows(db, sql, *params):
    store = Store(db)
    try:
        return store.con.execute(sql, list(params)).fetchall()
    finally:
        store.close()


def ids_with(emu, status, n):
    return sorted(i for i, v in emu.truth()["issues"].items() if v["status"] == status)[:n]


def stored(db, ids):
    return {r[0]: r[1:] for r in rows(db, "SELECT id, status, substatus, assigned_to, raw->'statusDetails', "
                                          "raw->>'isBookmarked', deleted_at FROM issues WHERE id IN "
                                          "(SELECT unnest(?::VARCHAR[]))", ids)}


def history(db, ids):
    return rows(db, "SELECT issue_id, from_status, to_status, to_substatus, via FROM issue_status_history "
                    "WHERE issue_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY id", ids)


def puts(emu):
    return emu.request_counts()["by_endpoint"].get("PUT /api/0/organizations/{org}/issues/", 0)


def resync(emu, db):
    store = Store(db)
    try:
        sync(store, emu, events="none")
    finally:
        store.close()


def test_resolve_in_next_release_lands_in_sentry_and_the_store_and_the_next_sync_agrees(emu, db):
    ids = ids_with(emu, "unresolved", 3)
    short = rows(db, "SELECT short_id FROM issues WHERE id = ?", ids[0])[0][0]
    result = triage(emu, db, "resolve", "--in-next-release", short.lower(), ids[1], ids[2])
    assert result.exit_code == 0, result.output
    truth = emu.truth()["issues"]
    assert all(truth[i]["status"] == "resolved" for i in ids)
    got = stored(db, ids)
    assert {i: (got[i][0], got[i][1]) for i in ids} == {i: ("resolved", truth[i]["substatus"]) for i in ids}
    assert all(json.loads(got[i][3]).get("inNextRelease") is True for i in ids)
    before = history(db, ids)
    assert [(h[2], h[4]) for h in before[-3:]] == [("resolved", "triage")] * 3
    log = rows(db, "SELECT action, issue_ids, method, status_code, applied, body FROM triage_log")
    assert [(a, sorted(i), m, s, ok) for a, i, m, s, ok, _ in log] == [("resolve", ids, "PUT", 200, True)]
    assert json.loads(log[0][5]) == {"status": "resolved", "statusDetails": {"inNextRelease": True}}
    assert TOKEN not in json.dumps(rows(db, "SELECT * FROM triage_log"), default=str)

    resync(emu, db)  # the sync confirms it and does not fight it
    assert history(db, ids) == before
    assert {i: v[0] for i, v in stored(db, ids).items()} == {i: "resolved" for i in ids}


@pytest.mark.parametrize("args, substatus, detail", [
    (["--for", "1h"], "archived_until_condition_met", "ignoreUntil"),
    (["--until-count", "10", "--window", "1h"], "archived_until_condition_met", "ignoreWindow"),
    (["--until-users", "5"], "archived_until_condition_met", "ignoreUserCount"),
    (["--forever"], "archived_forever", None),
    (["--until-escalating"], "archived_until_escalating", None),
])
def test_ignore_conditions_reach_sentry_and_the_store(emu, db, args, substatus, detail):
    ids = ids_with(emu, "unresolved", 2)
    result = triage(emu, db, "ignore", *args, *ids)
    assert result.exit_code == 0, result.output
    truth = emu.truth()["issues"]
    got = stored(db, ids)
    for i in ids:
        assert (truth[i]["status"], truth[i]["substatus"]) == ("ignored", substatus)
        assert got[i][:2] == ("ignored", substatus)
        if detail:
            assert detail in json.loads(got[i][3])
    before = history(db, ids)
    resync(emu, db)
    assert history(db, ids) == before


def test_unresolve_sets_issues_ongoing(emu, db):
    ids = ids_with(emu, "resolved", 2)
    assert triage(emu, db, "unresolve", *ids).exit_code == 0
    truth = emu.truth()["issues"]
    assert {i: stored(db, ids)[i][:2] for i in ids} == {i: ("unresolved", truth[i]["substatus"]) for i in ids}


def test_assign_to_a_member_and_a_team_then_unassign(emu, db):
    ids = ids_with(emu, "unresolved", 2)
    email, = rows(db, "SELECT email FROM members WHERE user_id IS NOT NULL AND NOT coalesce(pending, false) "
                      "ORDER BY id LIMIT 1")[0]
    assert triage(emu, db, "assign", email, *ids).exit_code == 0
    truth = emu.truth()["issues_assigned"]
    assert {i: stored(db, ids)[i][2] for i in ids} == {i: f"user:{truth[i]['email']}" for i in ids}

    slug, = rows(db, "SELECT slug FROM teams ORDER BY id LIMIT 1")[0]
    assert triage(emu, db, "assign", f"team:{slug}", ids[0]).exit_code == 0
    assert emu.truth()["issues_assigned"][ids[0]]["type"] == "team"
    assert stored(db, ids)[ids[0]][2] == f"team:{emu.truth()['issues_assigned'][ids[0]]['name']}"

    assert triage(emu, db, "unassign", *ids).exit_code == 0
    assert all(emu.truth()["issues_assigned"][i] is None for i in ids)
    assert all(stored(db, ids)[i][2] is None for i in ids)

    unknown = triage(emu, db, "assign", "nobody@nowhere.example", ids[0])
    assert "no member" in one_line_error(unknown, 2)


def test_bookmark_and_unbookmark(emu, db):
    ids = ids_with(emu, "unresolved", 2)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    detail = f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/{ids[0]}/"
    assert triage(emu, db, "bookmark", *ids).exit_code == 0
    assert s.get(detail).json()["isBookmarked"] is True
    assert [stored(db, ids)[i][4] for i in ids] == ["true", "true"]
    online = s.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/",
                   params={"query": "bookmarks:me", "statsPeriod": "90d", "limit": 100}).json()
    found = run("issues", "--db", str(db), "--query", "bookmarks:me", "--limit", "1000", "--json")
    assert set(ids) <= {i["id"] for i in online}  # the search sees the bookmarks at once, offline too
    assert {r["short_id"] for r in json.loads(found.output)} == {i["shortId"] for i in online}
    assert triage(emu, db, "unbookmark", *ids).exit_code == 0
    assert s.get(detail).json()["isBookmarked"] is False
    assert [stored(db, ids)[i][4] for i in ids] == ["false", "false"]


def test_merge_keeps_the_busiest_issue_and_marks_the_others_deleted(emu, db):
    project, = rows(db, "SELECT project_id FROM issues GROUP BY project_id HAVING count(*) >= 2 LIMIT 1")[0]
    ids = [r[0] for r in rows(db, "SELECT id FROM issues WHERE project_id = ? ORDER BY id LIMIT 2", project)]
    result = triage(emu, db, "merge", *ids)
    assert result.exit_code == 0, result.output
    merged = emu.truth()["merged_issues"]
    child, = merged
    assert merged[child] in ids and child in ids
    got = stored(db, ids)
    assert got[child][5] is not None and got[merged[child]][5] is None
    before = history(db, ids)
    resync(emu, db)
    assert history(db, ids) == before

    other, = rows(db, "SELECT id FROM issues WHERE project_id <> ? LIMIT 1", project)[0]
    across = triage(emu, db, "merge", merged[child], other)
    assert "one project" in one_line_error(across, 2)


def test_delete_removes_issues_from_sentry_and_marks_them_in_the_store(emu, db):
    ids = ids_with(emu, "resolved", 2)
    result = triage(emu, db, "delete", *ids)
    assert result.exit_code == 0, result.output
    assert not set(ids) & set(emu.truth()["issues"])
    assert all(v[5] is not None for v in stored(db, ids).values())
    assert rows(db, "SELECT method, status_code, applied FROM triage_log") == [("DELETE", 204, True)]
    before = history(db, ids)
    assert [(h[2], h[4]) for h in before[-2:]] == [("deleted", "triage")] * 2
    resync(emu, db)
    assert history(db, ids) == before


def test_dry_run_shows_and_changes_nothing(emu, db):
    ids = ids_with(emu, "unresolved", 3)
    truth = emu.truth()["issues"]
    before = rows(db, "SELECT * FROM issues ORDER BY id")
    result = triage(emu, db, "resolve", "--dry-run", *ids)
    assert result.exit_code == 0, result.output
    assert "Would resolve: 3 issues" in result.output
    title = rows(db, "SELECT title FROM issues WHERE id = ?", ids[0])[0][0]
    assert title[:40] in result.output
    assert puts(emu) == 0
    assert emu.truth()["issues"] == truth
    assert rows(db, "SELECT * FROM issues ORDER BY id") == before
    assert rows(db, "SELECT count(*) FROM triage_log") == [(0,)]


def test_without_yes_and_without_a_terminal_nothing_changes(emu, db):
    ids = ids_with(emu, "unresolved", 1)
    result = run("triage", "resolve", ids[0], "--url", emu.url, "--org", emu.org_slug, "--db", str(db),
                 env={"SENTRY_AUTH_TOKEN": TOKEN})
    line = one_line_error(result, 2)
    assert "triage changes Sentry: pass --yes to confirm, or --dry-run to only show" in line
    assert puts(emu) == 0 and emu.truth()["issues"][ids[0]]["status"] == "unresolved"


def test_unknown_issue_is_one_line(emu, db):
    assert "not in the store: NOPE-1" in one_line_error(triage(emu, db, "resolve", "NOPE-1"), 2)


def test_forbidden_names_the_missing_scope_and_stores_no_change(emu, db):
    ids = ids_with(emu, "unresolved", 2)
    before = rows(db, "SELECT * FROM issues ORDER BY id")
    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "forbidden", "route": "*/issues/"}, timeout=10)
    line = one_line_error(triage(emu, db, "resolve", *ids), 5)
    assert "event:write" in line
    delete = one_line_error(triage(emu, db, "delete", *ids), 5)
    assert "event:admin" in delete
    assert rows(db, "SELECT * FROM issues ORDER BY id") == before
    assert rows(db, "SELECT status_code, applied FROM triage_log") == [(403, False), (403, False)]


def test_rate_limit_is_waited_out(emu, db, quick_retries):
    ids = ids_with(emu, "unresolved", 2)
    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "429", "route": "*/issues/", "times": 1,
                                                       "retry_after": 0}, timeout=10)
    result = triage(emu, db, "resolve", *ids)
    assert result.exit_code == 0, result.output
    assert puts(emu) == 2
    assert all(emu.truth()["issues"][i]["status"] == "resolved" for i in ids)
    assert all(v[0] == "resolved" for v in stored(db, ids).values())


def test_a_server_error_is_retried_then_reported_and_nothing_is_claimed(emu, db, quick_retries):
    ids = ids_with(emu, "unresolved", 2)
    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "503", "route": "*/issues/", "times": 1}, timeout=10)
    assert triage(emu, db, "resolve", ids[0]).exit_code == 0  # once: retried
    assert stored(db, ids)[ids[0]][0] == "resolved"

    requests.post(f"{emu.url}/_emulator/faults", json={"kind": "500", "route": "*/issues/"}, timeout=10)
    result = triage(emu, db, "resolve", ids[1])
    assert result.exit_code == 6
    assert "FAILED" in result.output
    assert emu.truth()["issues"][ids[1]]["status"] == "unresolved"
    assert stored(db, ids)[ids[1]][0] == "unresolved"
    assert rows(db, "SELECT status_code, applied FROM triage_log ORDER BY id")[-1] == (500, False)


def test_a_204_from_sentry_is_no_change(emu, db):
    """Sentry answers 204 and changes nothing when an id is out of reach: the store claims nothing."""
    ids = ids_with(emu, "unresolved", 2)
    requests.delete(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/?id={ids[1]}",
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)  # gone in Sentry, not yet here
    result = triage(emu, db, "resolve", *ids)
    assert result.exit_code == 6
    assert emu.truth()["issues"][ids[0]]["status"] == "unresolved"
    assert stored(db, ids)[ids[0]][0] == "unresolved"


@pytest.fixture
def big():
    with Emulator(seed=5, scale="small", token=TOKEN) as e:
        yield e


def test_bulk_over_100_is_split_and_a_failing_request_is_reported_alone(big, tmp_path, clean_sentry_env,
                                                                        quick_retries):
    db = tmp_path / "big.duckdb"
    store = Store(db)
    try:
        sync(store, big, events="none")
    finally:
        store.close()
    ids = ids_with(big, "unresolved", 130)
    assert len(ids) == 130
    result = triage(big, db, "bookmark", *ids[:120])
    assert result.exit_code == 0, result.output
    assert puts(big) == 2
    assert rows(db, "SELECT len(issue_ids) FROM triage_log ORDER BY id") == [(100,), (20,)]

    requests.post(f"{big.url}/_emulator/faults", json={"kind": "500", "route": "*/issues/", "after": 1},
                  timeout=10)
    result = triage(big, db, "resolve", *ids)
    assert result.exit_code == 6, result.output
    truth = big.truth()["issues"]
    got = stored(db, ids)
    assert sum(truth[i]["status"] == "resolved" for i in ids) == 100
    assert {i for i in ids if got[i][0] == "resolved"} == {i for i in ids if truth[i]["status"] == "resolved"}
    assert "30 issues were not changed" in result.stderr


def test_query_selects_what_the_offline_search_finds_and_only_that_changes(emu, db):
    """`triage --query` acts on exactly the issues `issues --query` lists; the others stay as they were."""
    search = "is:unresolved level:error"
    truth = emu.truth()["issues"]
    online = requests.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/issues/", timeout=30,
                          params={"query": search, "statsPeriod": "90d", "limit": 100},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    expected = {issue["id"] for issue in online.json()}  # Sentry's own answer to the search (the emulator's)
    assert expected and len(expected) < len(truth), "the search picks some issues, not all"
    listed = run("issues", "--db", str(db), "--query", search, "--limit", "1000", "--csv")
    assert {r.split(",")[0] for r in listed.output.splitlines()[1:]} == set(
        r[0] for r in rows(db, "SELECT short_id FROM issues WHERE id IN (SELECT unnest(?::VARCHAR[]))", sorted(expected)))
    dry = triage(emu, db, "resolve", "--query", search, "--dry-run")
    assert dry.exit_code == 0 and f"Would resolve: {len(expected)} issue" in dry.output, dry.output
    assert emu.truth()["issues"] == truth  # a dry run changes nothing
    result = triage(emu, db, "resolve", "--query", search)
    assert result.exit_code == 0, result.output
    after = emu.truth()["issues"]
    assert {i for i, v in after.items() if v["status"] != truth[i]["status"]} == expected
    assert {i: v[0] for i, v in stored(db, sorted(expected)).items()} == {i: "resolved" for i in expected}
    nothing = triage(emu, db, "resolve", "--query", search)  # none is left unresolved
    assert nothing.exit_code == 0 and "nothing to change" in nothing.output


def test_a_delete_sentry_answers_but_does_not_do_is_not_stored(emu, db, monkeypatch):
    """Sentry answers a bulk delete 204 even for issues it leaves (ones the token may not delete):
    the store marks deleted only the issues Sentry no longer lists."""
    ids = ids_with(emu, "resolved", 2)
    world, real = emu.world, emu.world.delete_issues
    monkeypatch.setattr(world, "delete_issues", lambda issues: real([i for i in issues if str(i.id) != ids[1]]))
    result = triage(emu, db, "delete", *ids)
    assert result.exit_code == 6, result.output
    assert ids[0] not in emu.truth()["issues"] and ids[1] in emu.truth()["issues"]
    got = stored(db, ids)
    assert got[ids[0]][5] is not None and got[ids[1]][5] is None
    assert "FAILED" in result.output and "(1 request)" in result.output
    assert [(h[0], h[2]) for h in history(db, ids) if h[2] == "deleted"] == [(ids[0], "deleted")]


def test_a_delete_whose_answer_fails_but_happened_is_stored(emu, db, quick_retries, monkeypatch):
    """A 500 after Sentry deleted the issues: they are gone from its list, so the store says deleted."""
    ids = ids_with(emu, "resolved", 2)
    api, real = emu.api, emu.api.delete_issues

    def deletes_then_fails(req, org, project=None):
        real(req, org, project)
        raise RuntimeError("the answer is lost")  # the emulator answers 500

    monkeypatch.setattr(api, "delete_issues", deletes_then_fails)
    result = triage(emu, db, "delete", *ids)
    assert not set(ids) & set(emu.truth()["issues"])
    assert result.exit_code == 0, result.output
    assert all(v[5] is not None for v in stored(db, ids).values())


def test_an_organization_sentry_no_longer_has_is_one_line_and_nothing_is_stored(emu, db, monkeypatch):
    """A 404 for the organization (renamed, or the token's access gone) stops the run at once."""
    from sentry_mirror.emulator.pagination import ApiError as EmulatorError

    ids = ids_with(emu, "unresolved", 1)

    def not_found(req, org, project=None):
        raise EmulatorError(404, "The requested resource does not exist")

    monkeypatch.setattr(emu.api, "update_issues", not_found)
    result = triage(emu, db, "resolve", ids[0])
    assert result.exit_code == 4, result.output
    assert one_line_error(result) and "404" in result.output
    assert stored(db, ids)[ids[0]][0] == "unresolved" and emu.truth()["issues"][ids[0]]["status"] == "unresolved"
    assert rows(db, "SELECT status_code, applied FROM triage_log") == [(404, False)]


def test_a_source_the_store_does_not_hold_is_named(emu, db):
    ids = ids_with(emu, "unresolved", 1)
    result = run("triage", "resolve", ids[0], "--url", emu.url, "--org", "no-such-org", "--db", str(db), "--yes",
                 env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert one_line_error(result) and "no-such-org" in result.output and "acme" in result.output
    assert stored(db, ids)[ids[0]][0] == "unresolved"


def converse(emu, db, args: list[str], answers: list[tuple[str, str]], timeout: float = 120) -> tuple[int, str]:
    """Run `sentry-mirror triage …` on a terminal (a pty), answering each prompt as it appears."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "sentry_mirror", "triage", *args, "--url", emu.url, "--org", emu.org_slug,
            "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY")}
    env.update(SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull, COLUMNS="120")
    # The pty's far end as the command's terminal, started without Python code between fork and exec
    # (pty.fork runs some, which a test process with other threads may not survive).
    fd, far = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=far, stdout=far, stderr=far, start_new_session=True)
    os.close(far)
    out, deadline = b"", time.monotonic() + timeout

    def read_until(text: bytes | None) -> None:
        nonlocal out
        while text is None or text not in out:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"timed out waiting for {text!r}: {out.decode(errors='replace')}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal: it ended
                chunk = b""
            if not chunk:
                if text is None:
                    return
                raise AssertionError(f"ended before {text!r}: {out.decode(errors='replace')}")
            out += chunk

    try:
        for prompt, answer in answers:
            read_until(prompt.encode())
            os.write(fd, answer.encode() + b"\n")
        read_until(None)
    finally:
        code = proc.wait(timeout=60)
        os.close(fd)
    return code, out.decode(errors="replace")


def test_on_a_terminal_triage_asks_and_a_no_changes_nothing(emu, db):
    ids = ids_with(emu, "unresolved", 1)
    code, out = converse(emu, db, ["resolve", ids[0]], [("Change these issues in Sentry?", "n")])
    assert code == 2 and "nothing was changed" in out
    assert emu.truth()["issues"][ids[0]]["status"] == "unresolved" and stored(db, ids)[ids[0]][0] == "unresolved"
    code, out = converse(emu, db, ["resolve", ids[0]], [("Change these issues in Sentry?", "y")])
    assert code == 0, out
    assert emu.truth()["issues"][ids[0]]["status"] == "resolved" and stored(db, ids)[ids[0]][0] == "resolved"


def test_on_a_terminal_a_delete_asks_twice_naming_the_count(emu, db):
    ids = ids_with(emu, "resolved", 2)
    code, out = converse(emu, db, ["delete", *ids], [("Change these issues in Sentry?", "y"),
                                                     ("Delete 2 issues and all their events for good?", "n")])
    assert code == 2 and "nothing was deleted" in out
    assert set(ids) <= set(emu.truth()["issues"]) and all(v[5] is None for v in stored(db, ids).values())
