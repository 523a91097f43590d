"""Issues merged in Sentry between two syncs: the mirror ends level with the emulator's truth.
Every event is stored once, under the surviving issue; the merged issues are marked deleted; the
views count each event once. Also when the sync after the merge is cut short."""

from __future__ import annotations

from collections import Counter

import pytest
import requests
from helpers import assert_level, sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import Interrupted
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.event_walks import EventWalks
from sentry_mirror.syncing.syncer import Syncer

TOKEN = "sntryu_" + "m" * 64


def merge_two_groups(emu: Emulator) -> dict[str, str]:
    """In the two projects with the most issues, merge the two busiest issues into the latest
    unresolved one (which goes on getting events); returns merged id -> surviving id."""
    truth = emu.truth()["issues"]
    out = {}
    for pid, _ in Counter(v["project_id"] for v in truth.values()).most_common(2):
        ids = sorted((i for i, v in truth.items() if v["project_id"] == pid), key=lambda i: -truth[i]["count"])
        primary = max(ids, key=lambda i: (truth[i]["status"] == "unresolved", truth[i]["lastSeen"]))
        ids.remove(primary)
        emu.merge_issues(primary, ids[:2])
        out.update({o: primary for o in ids[:2]})
    return out


def assert_merged_level(store: Store, emu: Emulator, merged: dict[str, str]) -> None:
    """assert_level, plus: each event under the issue the truth lists it under, the merged issues
    marked deleted, and the views counting every event once."""
    assert_level(store, emu)
    con = store.con
    rows = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=30).json()["rows"]
    want = {r[0]: r[1] for r in rows}
    assert dict(con.execute("SELECT event_id, issue_id FROM events").fetchall()) == want
    deleted = {r[0] for r in con.execute("SELECT id FROM issues WHERE deleted_at IS NOT NULL").fetchall()}
    assert set(merged) <= deleted
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM live_events").fetchone() == (len(want),) * 2
    truth = emu.truth()["issues"]
    summary = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
        "SELECT issue_id, status, times_seen, stored_events FROM issue_summary").fetchall()}
    for issue_id, v in truth.items():
        assert summary[issue_id] == (v["status"], v["count"], v["count"]), issue_id
    for issue_id in merged:
        assert summary[issue_id][0] == "deleted" and summary[issue_id][2] == 0
    assert sum(n for _, _, n in summary.values()) == len(want)


def test_merged_issues_end_level_after_the_next_sync():
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        merged = merge_two_groups(emu)  # their events are older than the sync
        changes = emu.advance(24)  # then new events, some on the surviving issues
        assert changes["new_events"] > 0
        assert sync(store, emu).status == "ok"
        assert_merged_level(store, emu, merged)
        merged.update(merge_two_groups(emu))  # a survivor merged again, with events it gained
        emu.advance(6)
        assert sync(store, emu).status == "ok"
        assert_merged_level(store, emu, merged)


STOPS = {
    # after the known issues were re-read: the merged ones are marked deleted, no event moved yet
    "after_issue_status": (Syncer, "refresh_known_issues"),
    # after the first page of an issue's events: some moved events stored, most not
    "after_an_event_page": (EventWalks, "_store_event_page"),
    # after the first page of a project's events
    "after_a_project_page": (EventWalks, "_store_project_page"),
}


@pytest.mark.parametrize("stop_at", sorted(STOPS))
def test_a_sync_cut_short_after_a_merge_resumes_level(monkeypatch, stop_at):
    with Emulator(seed=3, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        merged = merge_two_groups(emu)
        emu.advance(24)
        owner, name = STOPS[stop_at]
        original = getattr(owner, name)

        def cut(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            self.walker.stop.set()
            return out

        monkeypatch.setattr(owner, name, cut)
        with pytest.raises(Interrupted):
            sync(store, emu)
        monkeypatch.setattr(owner, name, original)
        # cut short, the views still count no event twice
        con = store.con
        assert con.execute("SELECT count(*) = count(DISTINCT event_id) FROM live_events").fetchone()[0]
        assert sync(store, emu).status == "ok"
        assert_merged_level(store, emu, merged)
