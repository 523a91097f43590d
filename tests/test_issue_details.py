"""Per-issue details (issue 23 §3): each issue's grouping hashes, and Sentry's tag breakdown of the
issues of sampled projects, read for the issues that changed; checked against the emulator's
ground truth, after a merge, after a sync cut short, and on GlitchTip, which lacks the tag route."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime

import pytest
import requests
from helpers import TOKEN, invoke, sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import Interrupted
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.buffer import WriteBuffer
from sentry_mirror.syncing.issue_details import IssueDetails, _breakdown

HASHES = ("GET /api/0/organizations/{org}/issues/{issue_id}/hashes/", "GET /api/0/issues/{issue_id}/hashes/")
TAGS = "GET /api/0/organizations/{org}/issues/{issue_id}/tags/{key}/"


def requested(emu, *templates: str) -> int:
    counts = emu.request_counts()["by_endpoint"]
    return sum(counts.get(t, 0) for t in templates)


def tag_paths(emu) -> list[str]:
    """Issue tag paths asked (GlitchTip's missing routes log no template, only their path)."""
    return [p for p in emu.requests.paths() if "/issues/" in p and "/tags/" in p]


def stored_hashes(store) -> dict[str, list[str]]:
    out = defaultdict(list)
    for issue_id, h in store.con.execute("SELECT issue_id, hash FROM issue_hashes ORDER BY hash").fetchall():
        out[issue_id].append(h)
    return dict(out)


def truth_hashes(emu) -> dict[str, list[str]]:
    return requests.get(emu.url + "/_emulator/truth/hashes", timeout=30).json()


def merge_busiest(emu) -> tuple[str, list[str]]:
    """Merge the two busiest other issues of the busiest project into its busiest issue."""
    truth = emu.truth()["issues"]
    pid, _ = Counter(v["project_id"] for v in truth.values()).most_common(1)[0]
    ids = sorted((i for i, v in truth.items() if v["project_id"] == pid), key=lambda i: -truth[i]["count"])
    emu.merge_issues(ids[0], ids[1:3])
    return ids[0], ids[1:3]


# ----- hashes ----------------------------------------------------------------------------------------
def test_hashes_equal_the_truth_and_a_merge_moves_them_to_the_survivor():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        assert sync(store, emu).status == "ok"
        assert stored_hashes(store) == truth_hashes(emu)
        primary, merged = merge_busiest(emu)
        before = {h: i for i, hs in stored_hashes(store).items() for h in hs}
        moved = {h for h, i in before.items() if i in merged}
        assert moved
        assert sync(store, emu).status == "ok"
        assert stored_hashes(store) == truth_hashes(emu)
        now = stored_hashes(store)
        assert not any(i in now for i in merged)  # the merged issues keep none
        assert moved <= set(now[primary])
        rows = store.con.execute("SELECT hash, previous_issue_id FROM issue_hashes WHERE issue_id = ?",
                                 [primary]).fetchall()
        assert {h: p for h, p in rows if h in moved} == {h: before[h] for h in moved}


def test_a_no_change_sync_requests_no_hashes_and_a_change_only_the_changed_issues():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        emu.requests.reset()
        result = sync(store, emu)
        assert requested(emu, *HASHES) == 0
        assert result.streams["issue_details"]["requests"] == 0
        before = emu.truth()["issues"]
        emu.advance(6)
        after = emu.truth()["issues"]
        moved = lambda v: (v["count"], v["lastSeen"])  # noqa: E731  (a status change alone moves neither)
        changed = {i for i, v in after.items() if i not in before or moved(before[i]) != moved(v)}
        assert changed
        emu.requests.reset()
        sync(store, emu)
        assert requested(emu, *HASHES) == len(changed)
        assert stored_hashes(store) == truth_hashes(emu)


def test_a_sync_cut_short_in_the_hashes_finishes_them_next_time(monkeypatch):
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        original = IssueDetails._mark
        settled = []

        def cut(self, stream, issue_id, mark):
            original(self, stream, issue_id, mark)
            settled.append(issue_id)
            if len(settled) == 5:
                self.walker.stop.set()

        monkeypatch.setattr(IssueDetails, "_mark", cut)
        with pytest.raises(Interrupted):
            sync(store, emu)
        monkeypatch.setattr(IssueDetails, "_mark", original)
        total = len(truth_hashes(emu))
        emu.requests.reset()
        assert sync(store, emu).status == "ok"
        assert requested(emu, *HASHES) == total - 5  # the five settled ones are not read again
        assert stored_hashes(store) == truth_hashes(emu)


# ----- tag breakdowns ----------------------------------------------------------------------------------
def truth_breakdown(emu) -> dict[tuple[str, str], Counter]:
    """(issue, key) -> value counts over the issue's served events, from the emulator's model."""
    data = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=30).json()
    col = {c: n for n, c in enumerate(data["columns"])}
    out: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for row in data["rows"]:
        for key in ("environment", "release", "level"):
            if row[col[key]] is not None:
                out[(row[col["issue_id"]], key)][row[col[key]]] += 1
    return out


def test_a_sampled_projects_breakdown_equals_the_truth_and_shows_on_the_issue_page(tmp_path):
    with Emulator(seed=3, scale="small", token=TOKEN) as emu:  # small: some issues have over 9 releases
        db = tmp_path / "m.duckdb"
        store = Store(str(db))
        assert sync(store, emu, events="sample", events_sample=1).status == "ok"
        truth = truth_breakdown(emu)
        assert any(len(c) > 9 for c in truth.values())  # so that keeping the top values is put to the test
        con = store.con
        for (issue_id, key), counts in truth.items():
            rows = con.execute("SELECT value, count, key_events, key_values FROM issue_tag_values "
                               "WHERE issue_id = ? AND key = ?", [issue_id, key]).fetchall()
            assert rows, (issue_id, key)
            assert {v: n for v, n, _, _ in rows} == {v: counts[v] for v, _, _, _ in rows}
            # the top values (Sentry's tag summary lists 9), none left out that outnumbers one kept
            kept = {v for v, *_ in rows}
            assert len(kept) == min(len(counts), 9)
            assert min(counts[v] for v in kept) >= max([n for v, n in counts.items() if v not in kept], default=0)
            assert {(e, d) for _, _, e, d in rows} == {(sum(counts.values()), len(counts))}
        busiest = max(emu.truth()["issues"].items(), key=lambda kv: kv[1]["count"])[0]
        store.close()
        page = json.loads(invoke("issue", busiest, "--db", str(db), "--json").output)
        envs = {t["key"]: t for t in page["tags"]}["environment"]
        assert envs["events"] == sum(truth[(busiest, "environment")].values())
        assert any("Sentry's counts" in n for n in page["notes"])


def test_a_project_whose_events_are_all_read_requests_no_breakdown():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        assert sync(store, emu).status == "ok"  # events = "all"
        assert requested(emu, TAGS) == 0 and tag_paths(emu) == []
        assert store.con.execute("SELECT count(*) FROM issue_tag_values").fetchone() == (0,)


def test_issue_hashes_false_reads_none_and_true_again_reads_every_issue():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        assert sync(store, emu, issue_hashes=False).status == "ok"
        assert requested(emu, *HASHES) == 0 and stored_hashes(store) == {}
        emu.requests.reset()
        assert sync(store, emu).status == "ok"  # turned on: every issue's hashes, none of it skipped for good
        assert requested(emu, *HASHES) == len(emu.truth()["issues"])
        assert stored_hashes(store) == truth_hashes(emu)


def test_glitchtip_lacks_the_tag_route_which_is_remembered_not_asked_again():
    with Emulator(seed=10, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        store = Store(":memory:")
        result = sync(store, emu, events="sample")
        assert result.status == "ok", result.errors
        assert len(tag_paths(emu)) == 1  # the first answer told it
        assert any(n.startswith("issue_tags: not available") for n in result.notes)
        assert stored_hashes(store) == truth_hashes(emu)  # its legacy route serves them
        emu.advance(12)
        emu.requests.reset()
        assert sync(store, emu, events="sample").status == "ok"
        assert tag_paths(emu) == []


# ----- savers, against an in-memory store with Sentry's shapes ----------------------------------------------
HASH = {"id": "53aa54ab27474eaab1fc1d0f7f86d2f1", "mergedBySeer": True, "seerMatchDistance": 0.01,
        "latestEvent": {"id": "9999aaafcc8b46d797c23c6077c6ff01", "event.type": "error", "groupID": "1341191803",
                        "eventID": "9999aaaaca8b46d797c23c6077c6ff01", "projectID": "5236886", "message": "",
                        "title": "This is an example Python exception", "location": "example.py:123", "culprit": None,
                        "user": None, "tags": [], "platform": "python", "dateCreated": "2020-06-17T22:26:56.098086Z",
                        "crashFile": None, "metadata": {}}}
TAG = {"key": "flavors", "name": "Flavors", "uniqueValues": 2, "totalValues": 3,
       "topValues": [{"key": "flavors", "name": "Strawberry", "value": "strawberry", "count": 2,
                      "lastSeen": "2024-01-02T00:00:00Z", "firstSeen": "2024-01-01T00:00:00Z"},
                     {"key": "flavors", "name": "Vanilla", "value": "vanilla", "count": 1,
                      "lastSeen": "2024-01-01T00:00:00Z", "firstSeen": "2024-01-01T00:00:00Z"}]}


def test_the_hash_saver_moves_a_hash_to_the_issue_that_now_lists_it():
    store = Store(":memory:")
    buf = WriteBuffer(store, "s")
    buf.add("issue_hashes", [HASH], {"issue_id": "1"})
    buf.flush()
    row = "SELECT issue_id, latest_event_id, latest_event_at, merged_by_seer, previous_issue_id FROM issue_hashes"
    assert store.con.execute(row).fetchall() == [("1", "9999aaaaca8b46d797c23c6077c6ff01",
                                                  datetime(2020, 6, 17, 22, 26, 56, 98086),
                                                  True, None)]
    buf.add("issue_hashes", [HASH], {"issue_id": "2"})  # merged into issue 2
    buf.update("issue_hashes_kept", issue_id="2", keep=[HASH["id"]])
    buf.flush()
    assert store.con.execute("SELECT issue_id, previous_issue_id FROM issue_hashes").fetchall() == [("2", "1")]
    buf.update("issue_hashes_kept", issue_id="2", keep=[])  # listed no more
    buf.flush()
    assert store.con.execute("SELECT count(*) FROM issue_hashes").fetchone() == (0,)


def test_the_tag_saver_keeps_an_issues_top_values_with_the_keys_totals():

    store = Store(":memory:")
    buf = WriteBuffer(store, "s")
    context, values = _breakdown("7", "flavors", TAG)
    buf.add("issue_tag_values", values, context)
    buf.flush()
    assert store.con.execute("SELECT value, count, key_events, key_values, strftime(last_seen, '%Y-%m-%d') "
                             "FROM issue_tag_values ORDER BY value").fetchall() == \
        [("strawberry", 2, 3, 2, "2024-01-02"), ("vanilla", 1, 3, 2, "2024-01-01")]
    buf.update("issue_tag_values_kept", issue_id="7", key="flavors", keep=["strawberry"])
    buf.flush()
    assert store.con.execute("SELECT value FROM issue_tag_values").fetchall() == [("strawberry",)]


def test_a_route_found_back_by_full_is_asked_again_by_the_next_syncs():
    """A detail route remembered as missing is asked again by --full; when it answers, the
    syncs after it read that detail again, not only --full ones."""
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu, issue_hashes=False)
        caps = (store.get_state(emu.org_slug, "_capabilities", "") or {}).get("extra") or {}
        store.set_state(emu.org_slug, "_capabilities", "", extra={**caps, "issue_hashes": False})  # as a 404 left it
        emu.requests.reset()
        sync(store, emu)
        assert requested(emu, *HASHES) == 0  # remembered as missing
        sync(store, emu, full=True)
        assert stored_hashes(store) == truth_hashes(emu)
        emu.advance(24)
        emu.requests.reset()
        sync(store, emu)
        assert requested(emu, *HASHES) > 0 and stored_hashes(store) == truth_hashes(emu)
