"""Stopping a sync: SIGTERM ends it within seconds even while it sleeps on a long Retry-After
(exit 130, the pages in hand stored), and the next sync ends level with each event once."""

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from helpers import ROOT, TOKEN, run, sync_args

from sentry_mirror.emulator import Emulator


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


@pytest.mark.parametrize("route, times", [
    ("*/tags/*/values/*", 1),  # on the syncer's own thread (project stats took 59.8 s; now one stats_v2 read)
    ("/api/0/projects/*/events/", 4),  # on the event walks' fetch threads: 59-120 s
])
def test_a_stop_does_not_wait_out_a_long_retry_after(tmp_path, route, times):
    """SIGTERM while the sync sleeps on a Retry-After of a minute: it stops within seconds, exit
    130, the pages in hand stored; the next sync ends level, each event once."""
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="429", route=route, after=1, times=times, retry_after=60)
        db = tmp_path / "stop.duckdb"
        sync = subprocess.Popen([sys.executable, "-m", "sentry_mirror.cli", *sync_args(emu, db)],
                                env={**os.environ, "SENTRY_AUTH_TOKEN": TOKEN}, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not any(r["fired"] for r in emu.faults.rules()) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)  # asleep on the Retry-After
            asked = time.monotonic()
            sync.send_signal(signal.SIGTERM)
            _, err = sync.communicate(timeout=180)
            took = time.monotonic() - asked
        finally:
            sync.kill()
        assert sync.returncode == 130, err
        assert took < 5, f"the stop waited {took:.1f} s"
        emu.faults.clear()
        assert run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN}).exit_code == 0
        con = duckdb.connect(str(db), read_only=True)
        stored = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        con.close()
        assert stored == (emu.truth()["counts"]["events"],) * 2
