"""The demo: a store synced twice from the built-in emulator (a day apart on its clock) and summarised."""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import duckdb

from ..emulator import Emulator
from ..errors import StoreError
from ..reading.browse import demo_summary
from ..storage.store import Store, check_store_path, open_readonly
from .config import Config, Source
from .runner import describe_result, stop_on_signals, sync_all

DEMO_MARK = "_demo"  # a table only the demo creates: the one sign that a store is the demo's own


def run_demo(db: str, *, scale: str, seed: int, show: Callable[[str], None],
             progress: Callable[[str], None]) -> None:
    """Serve a generated organization, sync it into `db`, let a day pass, sync again, summarise;
    `show` gets the lines of the results, `progress` each sync's progress."""
    replace_demo_store(db)
    token = "sntryu_" + secrets.token_hex(32)
    # The world begins a day back, so that the day the demo lets pass ends at the present: no stored
    # event lies in the wall clock's future (`--since 30m`, "the last 7 days" and trends end now).
    a_day_ago = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    with Emulator(seed=seed, scale=scale, token=token, now=a_day_ago) as emu:
        show(f"Started the Sentry API emulator at {emu.url} (organization '{emu.org_slug}', scale {scale}).")
        config = Config(db=db, sources=[Source(name=emu.org_slug, url=emu.url, org=emu.org_slug, token=token)])
        with stop_on_signals() as stop:
            first = sync_all(config, stop=stop, progress=progress)[0]
            show(describe_result(first))
            changes = emu.advance(24)
            show(f"The emulator's clock moves on a day: {changes.get('new_events', 0)} new events, "
                 f"{changes.get('new_issues', 0)} new issues, {changes.get('status_changes', 0)} status changes.")
            second = sync_all(config, stop=stop, progress=progress)[0]
            show(describe_result(second))
        truth = emu.truth()
    con = open_readonly(db)
    try:
        show("")
        show(demo_summary(con, truth, first, second))
    finally:
        con.close()


def replace_demo_store(db: str) -> None:
    """The demo starts afresh, but only ever replaces a store it made itself (marked with DEMO_MARK);
    a store synced from a real server, even one on this machine, is never its to replace."""
    path = Path(db)
    if path.exists():
        check_store_path(db)  # refuses anything that is not a DuckDB file
        con = open_readonly(db, wait=5)
        try:
            mine = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [DEMO_MARK]).fetchone()[0]
            if not mine:  # a demo store from before the mark: the emulator's own organization, only
                with contextlib.suppress(duckdb.Error):
                    mine = con.execute(
                        "SELECT count(*) > 0 AND bool_and(slug = 'acme' AND name = 'Acme Corp' AND "
                        "region_url LIKE 'http://127.0.0.1:%') FROM organizations").fetchone()[0]
        finally:
            con.close()
        if not mine:
            raise StoreError(f"{db} was not made by the demo; not replacing it",
                             hint="pass another --db for the demo, or remove that file yourself")
        for suffix in ("", ".wal"):
            Path(db + suffix).unlink(missing_ok=True)
    store = Store(db)
    try:
        with store.transaction() as con:
            con.execute(f"CREATE TABLE {DEMO_MARK} AS SELECT now() AS made_at")
    finally:
        store.close()
