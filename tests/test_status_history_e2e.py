"""The issue status history across syncs: an issue Sentry resolves between syncs gets a positive
time to resolve in `issue_resolutions`."""

from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store


TOKEN = "sntryu_" + "9" * 64


def test_status_history_gives_time_to_resolve():
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        before = {i: v["status"] for i, v in emu.truth()["issues"].items()}
        resolved_now = set()
        for _ in range(4):
            emu.advance(12)
            sync(store, emu)
            now = {i: v["status"] for i, v in emu.truth()["issues"].items()}
            resolved_now |= {i for i, s in now.items() if s == "resolved" and before.get(i) == "unresolved"}
            before = now
        assert resolved_now, "no issue was resolved across four steps; pick another seed"
        rows = store.con.execute("SELECT issue_id, time_to_resolve FROM issue_resolutions").fetchall()
        seen = {r[0] for r in rows if r[1] is not None and r[1].total_seconds() > 0}
        assert resolved_now <= seen
