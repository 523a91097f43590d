"""Progress only on a terminal: a sync run on a terminal shows its pages as it goes (never the
token); piped, it prints nothing but its summary."""

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TOKEN


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def run_sync_process(emu, db: Path, tty: bool) -> str:
    cmd = [sys.executable, "-m", "sentry_mirror.cli", "sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db)]
    env = {**os.environ, "SENTRY_AUTH_TOKEN": TOKEN, "COLUMNS": "120"}
    if not tty:
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    return out.decode(errors="replace")


def test_progress_on_a_terminal_and_nothing_extra_when_piped(emu, tmp_path):
    shown = run_sync_process(emu, tmp_path / "t.duckdb", tty=True)
    assert "pages" in shown and "events " in shown and "issues" in shown
    assert TOKEN not in shown
    piped = run_sync_process(emu, tmp_path / "p.duckdb", tty=False)
    assert "pages" not in piped
    assert [line for line in piped.splitlines() if line.strip()][0].startswith("synced ")
