"""The `schedule` daemon: it never runs two writers (a second scheduler is refused, manual syncs
wait their turn), syncs at its first scheduled time with `--no-now`, takes its timing from flags over
the config file, starts every line with its UTC time (a skipped run included), and stops cleanly on
SIGTERM."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from helpers import ROOT, TOKEN

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def test_scheduler_never_runs_two_writers_and_stops_cleanly_on_sigterm(tmp_path):
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        db = tmp_path / "sched.duckdb"
        env = {**os.environ, "SENTRY_AUTH_TOKEN": TOKEN}
        cmd = [sys.executable, "-m", "sentry_mirror.cli", "schedule", "--url", emu.url, "--org", emu.org_slug,
               "--db", str(db), "--every", "0.03"]  # every 1.8 s
        with Daemon(cmd, env) as daemon:
            daemon.wait_for("next run")  # said just before the note is written
            deadline = time.monotonic() + 60
            while not Path(f"{db}.schedule.json").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            second = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert second.returncode == 3 and "a scheduler is already running" in second.stderr
            manual = [subprocess.run([sys.executable, "-m", "sentry_mirror.cli", "sync", "--url", emu.url, "--org",
                                      emu.org_slug, "--db", str(db), "--wait", "-q"], env=env, cwd=ROOT,
                                     capture_output=True, text=True, timeout=120) for _ in range(2)]
            assert all(m.returncode == 0 for m in manual), [m.stderr for m in manual]
            status = json.loads(subprocess.run([sys.executable, "-m", "sentry_mirror.cli", "status", "--db", str(db),
                                                "--json"], env=env, cwd=ROOT, capture_output=True,
                                               text=True).stdout)
            assert status["scheduler"] and status["scheduler"]["next_run"]
            emu.advance(24)
            daemon.wait_for("synced ", daemon.err.count("synced ") + 1)  # a scheduled run after the manual ones
            returncode, err = daemon.stop()
        assert returncode == 0, err
        assert "next run" in err and "stopping" in err
        truth = emu.truth()
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT status, finished_at IS NOT NULL FROM _sync_runs ORDER BY run_id").fetchall()
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    overlaps = con.execute("""SELECT count(*) FROM _sync_runs a JOIN _sync_runs b ON a.run_id < b.run_id
                              AND b.started_at < a.finished_at""").fetchone()[0]
    con.close()
    scheduled = err.count("synced ") + err.count("sync interrupted") + err.count("sync failed")
    assert len(runs) == scheduled + 2  # every scheduled and manual run is accounted for
    assert all(done for _, done in runs) and {s for s, _ in runs} <= {"ok", "interrupted"}
    assert overlaps == 0  # never two writers at once
    # Sync once more after the stop: the store is level with the emulator.
    with Emulator(seed=12, scale="tiny", token=TOKEN) as again:
        again.advance(24)
        # the same organization on a new port: the store is bound to the old address, so --rebind
        result = CliRunner().invoke(cli, ["sync", "--url", again.url, "--org", again.org_slug, "--db", str(db),
                                          "--rebind"],
                                    env={"SENTRY_AUTH_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        truth = again.truth()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] >= events
    assert {r[0] for r in con.execute("SELECT id FROM issues WHERE deleted_at IS NULL").fetchall()} >= set(truth["issues"])
    con.close()


class Daemon:
    """`schedule` as a subprocess whose stderr is read as it comes: a test waits for a line it
    prints, never for a time (a sync on two busy cores takes what it takes)."""

    def __init__(self, cmd: list[str], env: dict):
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def err(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 180) -> None:
        """Until `text` is in `count` lines (or the daemon ended, or a generous timeout)."""
        seen = lambda: sum(text in line for line in self.lines) >= count  # noqa: E731
        with self._changed:
            self._changed.wait_for(lambda: seen() or self._closed, timeout)
            assert seen(), f"no {text!r} x{count} in:\n{''.join(self.lines)}"

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then (exit status, all it printed on stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self._reader.join(timeout=30)
        return self.proc.returncode, self.err

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def run_daemon_until_it_syncs(cmd: list[str], db: Path, env: dict) -> tuple[int, str]:
    """Start `schedule`, wait for its first "synced" line, stop it with SIGTERM: (exit status, what
    it printed on stderr)."""
    with Daemon(cmd, env) as daemon:
        daemon.wait_for("synced ")
        return daemon.stop()


def test_scheduler_without_a_run_now_syncs_at_the_first_scheduled_time(tmp_path):
    """--no-now added the job with next_run_time=None, which APScheduler takes as 'paused': the
    daemon announced nothing and never synced."""
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        db = tmp_path / "later.duckdb"
        cmd = [sys.executable, "-m", "sentry_mirror.cli", "schedule", "--url", emu.url, "--org", emu.org_slug,
               "--db", str(db), "--every", "0.03", "--no-now"]  # the first run after 1.8 s
        returncode, err = run_daemon_until_it_syncs(cmd, db, {"SENTRY_AUTH_TOKEN": TOKEN})
        assert returncode == 0, err
        assert "next run" in err.splitlines()[1], err  # said when the first run is, before it
        assert "synced " in err, err
        con = duckdb.connect(str(db), read_only=True)
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        con.close()
        assert events == emu.truth()["counts"]["events"]


def test_schedule_flags_replace_the_files_timing_and_lines_carry_their_time(tmp_path):
    """`schedule -c file --every N` with a cron line in the file was refused as 'not both'."""
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        db = tmp_path / "flags.duckdb"
        config = tmp_path / "c.toml"
        config.write_text(f'db = "{db}"\n[schedule]\ncron = "0 3 1 1 *"\n'
                          f'[[sources]]\norg = "{emu.org_slug}"\nurl = "{emu.url}"\n')
        cmd = [sys.executable, "-m", "sentry_mirror.cli", "schedule", "-c", str(config), "--every", "0.03", "--no-now"]
        returncode, err = run_daemon_until_it_syncs(cmd, db, {"SENTRY_AUTH_TOKEN": TOKEN, "SENTRYCLIRC": os.devnull})
    assert returncode == 0, err
    assert "synced " in err, err  # ran on the flag's interval, not on 1 January at 03:00
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(re.match(UTC_STAMP, line) for line in lines), err


UTC_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ "


def test_a_run_skipped_while_the_last_still_syncs_is_said_with_its_time(tmp_path):
    """Every line of `schedule` starts with its UTC time, but APScheduler's warning for a run that
    came due while the last sync was at work went through logging bare: a log reader (and the
    test above, when a sync outlasted the interval on a busy machine) found a line without it."""
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="slow", route="*/issues/*", times=1, delay=4)  # the sync outlasts the 1.8 s interval
        db = tmp_path / "skip.duckdb"
        cmd = [sys.executable, "-m", "sentry_mirror.cli", "schedule", "--url", emu.url, "--org", emu.org_slug,
               "--db", str(db), "--every", "0.03"]
        with Daemon(cmd, {"SENTRY_AUTH_TOKEN": TOKEN}) as daemon:
            daemon.wait_for("previous sync was still at work")
            returncode, err = daemon.stop()
    assert returncode == 0, err
    skipped = [line for line in err.splitlines() if "previous sync was still at work" in line]
    assert skipped and all(re.match(UTC_STAMP, line) for line in skipped), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(re.match(UTC_STAMP, line) for line in lines), err
