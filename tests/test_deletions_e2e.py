"""Issues deleted in Sentry: the mirror keeps their events, but its daily counts, trends and
release figures leave them out as Sentry's do, and the per-issue reports list such an issue as
deleted."""

from datetime import datetime, timedelta

import requests
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store


TOKEN = "sntryu_" + "9" * 64


def test_figures_leave_out_the_events_of_issues_deleted_in_sentry(tmp_path):
    """Sentry's figures drop a deleted issue's events; the mirror's daily counts, trends and release
    figures kept counting them (33 events a day where Sentry had 30). The events stay stored, and
    the per-issue reports list the issue as deleted."""
    from collections import Counter

    from sentry_mirror.reading.reports import Filters, run_report

    with Emulator(seed=8, scale="tiny", token=TOKEN, deletions=True) as emu:
        store = Store(str(tmp_path / "s.duckdb"))
        sync(store, emu)
        deleted = 0
        for hours in (24, 48, 24):
            deleted += emu.advance(hours).get("deleted_issues", 0)
            sync(store, emu)
        assert deleted, "no issue was deleted: pick another seed"
        raw = requests.get(f"{emu.url}/_emulator/truth/event_rows", timeout=60).json()
        now = datetime.fromisoformat(emu.truth()["now"].replace("Z", "+00:00")).replace(tzinfo=None)
    cutoff = (now - timedelta(days=89)).date()  # whole days the emulator still serves
    want = Counter()
    for row in raw["rows"]:
        fact = dict(zip(raw["columns"], row))
        day = datetime.fromisoformat(fact["date_created"].replace("Z", "+00:00")).date()
        if day > cutoff:
            want[(fact["project_id"], str(day))] += 1
    con = store.con
    daily = Counter({(p, str(d)): int(n) for p, d, n in con.execute(
        "SELECT p.id, d.day, sum(d.events) FROM daily_events d JOIN projects p ON p.slug = d.project "
        "GROUP BY ALL").fetchall() if d > cutoff})
    assert daily == want
    trends = Counter({(p, str(b.date())): int(n) for p, b, n in con.execute(
        "SELECT project_id, bucket, sum(events) FROM error_trends WHERE period = 'day' AND basis = 'events' "
        "GROUP BY ALL").fetchall() if b.date() > cutoff})
    assert trends == want
    gone = {r[0] for r in con.execute("SELECT id FROM issues WHERE deleted_at IS NOT NULL").fetchall()}
    kept = con.execute("SELECT count(*) FROM events WHERE issue_id IN (SELECT unnest(?::VARCHAR[]))",
                       [sorted(gone)]).fetchone()[0]
    assert gone and kept > 0  # still stored
    users = run_report(con.cursor(), "users", Filters(limit=100000))
    assert set(users.loc[users.status == "deleted", "issue_id"]) == gone & set(users.issue_id) and gone & set(users.issue_id)
    store.close()
