"""Files the user asked for follow the user's umask; the store stays the owner's.

`main()` sets umask 077 for the whole process (the store, its WAL and lock files hold error
data). A PNG from `--plot` and the folders and files of `export parquet` are the user's to share:
run as a process under `umask 022`, they come out 0644 (folders 0755) while the store is 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TOKEN


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI as its own process under umask 022, through main() as the installed command runs."""
    # the umask set by the process itself: no Python code between fork and exec (see test_local_input)
    command = [sys.executable, "-c", "import os; os.umask(0o022); from sentry_mirror.cli import main; main()", *args]
    done = subprocess.run(command, env={**os.environ, "SENTRY_AUTH_TOKEN": TOKEN}, cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_plot_and_export_follow_the_umask_while_the_store_stays_private(emu, tmp_path):
    db = tmp_path / "m.duckdb"
    cli("sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db))
    png = tmp_path / "plots" / "trends.png"
    png.parent.mkdir()
    cli("report", "trends", "--db", str(db), "--plot", str(png))
    out = tmp_path / "exports" / "acme"  # exports/ does not exist yet: made by the export
    cli("export", "parquet", str(out), "--db", str(db))

    assert mode(db) == 0o600
    assert mode(png) == 0o644
    assert mode(out.parent) == 0o755 and mode(out) == 0o755
    folders = [p for p in out.rglob("*") if p.is_dir()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert folders and any(p.suffix == ".parquet" for p in files)
    assert {oct(mode(p)) for p in folders} == {oct(0o755)}
    assert {oct(mode(p)) for p in files} == {oct(0o644)}
    # the store's side files stay the owner's too
    assert all(mode(p) == 0o600 for p in tmp_path.glob("m.duckdb*") if p.is_file())
