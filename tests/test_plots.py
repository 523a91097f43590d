"""Plots say what they draw: the title names the series drawn and the filters applied, and the
newest trends bucket, still filling at the last sync, is drawn dashed and labelled partial (the
frame carries `partial` too, for table and CSV readers). Checked on the Figure, not on pixels."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from click.testing import CliRunner
from helpers import TOKEN, sync

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator
from sentry_mirror.reading.reports import Filters, plot_report, run_report
from sentry_mirror.storage.store import Store


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A store synced once from an emulator whose clock is this hour: its hour is still filling."""
    path = tmp_path_factory.mktemp("plots") / "store.duckdb"
    with Emulator(seed=5, scale="tiny", token=TOKEN) as emu:
        store = Store(str(path))
        sync(store, emu)
        store.close()
    return path


def frame_of(db, name, filters):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return run_report(con, name, filters)
    finally:
        con.close()


def title_of(db, tmp_path, name, filters):
    fig = plot_report(name, frame_of(db, name, filters), str(tmp_path / f"{name}.png"), filters)
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    return fig.axes[0].get_title()


def test_titles_name_only_what_is_drawn(db, tmp_path):
    """The users plot draws users alone: its title spoke of Sentry's userCount beside them."""
    users = title_of(db, tmp_path, "users", Filters(limit=10))
    assert "userCount" not in users and "beside" not in users
    assert "distinct affected users" in users
    top = title_of(db, tmp_path, "top", Filters(limit=10))
    assert "time to resolve" not in top and "their users" not in top and "events" in top
    regressions = title_of(db, tmp_path, "regressions", Filters(limit=10))
    assert "new and regressed issues" in regressions and "users" not in regressions


def test_titles_name_every_filter(db, tmp_path):
    con = duckdb.connect(str(db), read_only=True)
    project, = con.execute("SELECT slug FROM projects ORDER BY slug LIMIT 1").fetchone()
    environment, newest = con.execute("SELECT environment, max(date_created) FROM events "
                                      "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
    con.close()
    since = newest.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    filters = Filters(project=project, environment=environment, since=since, by="hour", limit=100)
    title = title_of(db, tmp_path, "trends", filters)
    assert f"events per hour, project {project}" in title
    assert f"environment {environment}" in title and f"since {since:%Y-%m-%d}" in title
    assert "a week" not in title  # the change over a week is in the table, not drawn


def test_the_bucket_still_filling_is_partial_and_drawn_dashed(db, tmp_path):
    from sentry_mirror.reading.reports import draw_report

    filters = Filters(by="hour", limit=48)
    frame = frame_of(db, "trends", filters)
    con = duckdb.connect(str(db), read_only=True)
    synced_at, = con.execute("SELECT max(started_at) FROM _sync_runs WHERE status = 'ok'").fetchone()
    con.close()
    want = [bucket + timedelta(hours=1) > synced_at for bucket in frame["bucket"]]
    assert list(frame["partial"]) == want
    assert any(want) and not all(want)
    assert set(frame[frame["partial"]]["bucket"]) == {frame["bucket"].max()}  # the newest hour only

    ax = draw_report("trends", frame, filters).axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed, "the partial bucket is not drawn dashed"
    assert any(line.get_markerfacecolor() == "none" for line in ax.get_lines())
    assert any("partial" in text.get_text() for text in ax.get_legend().get_texts())
    whole = frame[~frame["partial"]]
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert max(max(line.get_xdata()) for line in solid) == whole["bucket"].max()  # solid ends before it


def test_csv_readers_see_the_partial_column(db):
    result = CliRunner().invoke(cli, ["report", "trends", "--db", str(db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.strip().splitlines()
    assert header.split(",") == ["bucket", "project", "events", "week_before", "change", "change_pct", "basis",
                                 "partial"]
    assert rows[-1].endswith(",true") or rows[-1].endswith(",True")
