"""The nightly job's view: config check, sync --json and partial success, status the morning after,
one writer at a time (--wait), progress only on a terminal, and the scheduler under SIGTERM."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.locking import writer_lock

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sntryu_" + "5e" * 32  # a known token: it must never be printed


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=12, scale="tiny", token=TOKEN) as e:
        yield e


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert TOKEN not in result.output + (result.stderr or ""), "the token was printed"
    return result


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


# ----- config check ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("db = [", "not valid TOML"),
    ("[[sources]]\norg = 'acme'\ntokn_env = 'SM_TOKEN'\n", "unknown key `tokn_env` in sources[0] on line 3; did you mean `token_env`?"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\ntimeout = 'soon'\n", "sources[0].timeout must be a number"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_NOT_SET'\n", "environment variable SM_NOT_SET is not set (line 3)"),
    ("[schedule]\ncron = '61 3 * * *'\n", "schedule.cron must be a crontab line"),
    ("[schedule]\ncron = '0 3 * * *'\ntimezone = 'Mars/Olympus'\n", "schedule.timezone must be an IANA time zone"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nurl = 'ftp://x'\n", "sources[0].url must be an http(s) URL"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nverify = 'maybe'\n",
     "sources[0].verify: no CA bundle at 'maybe'; give true, false, or the path of a PEM file or a folder of certificates (line 4)"),
    ("[[sources]]\nname = 'a'\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n[[sources]]\nname = 'a'\norg = 'beta'\n"
     "token_env = 'SM_TOKEN'\n", "sources[1]: another source is named 'a' too; each needs its own name"),
])
def test_config_check_names_each_problem_in_one_line(tmp_path, text, expected):
    result = run("config", "check", "-c", write(tmp_path, text), env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_config_check_prints_effective_settings_and_their_origins(tmp_path):
    path = write(tmp_path, "db = 'x.duckdb'\n[schedule]\ncron = '0 3 * * *'\ntimezone = 'Europe/Berlin'\n"
                           "[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nevents = 'sample'\n"
                           "headers = { 'X-Proxy-Key' = 'proxy-secret-value-1234' }\n")
    result = run("config", "check", "-c", path, env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "x.duckdb" in out and "(file)" in out and "Europe/Berlin" in out and "next run" in out
    assert "sntryu_…5e5e" in out and "env SM_TOKEN (token_env)" in out
    assert "https://sentry.io" in out and "(default)" in out and "sample" in out
    assert "proxy-secret-value-1234" not in out and out.strip().endswith("config OK")


def test_config_check_online_reports_scopes_and_orgs(emu, tmp_path):
    path = write(tmp_path, f"[[sources]]\nurl = '{emu.url}'\norg = '{emu.org_slug}'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "event:read" in result.stdout and f"sees organizations {emu.org_slug}" in result.stdout


def test_config_check_online_with_an_unreachable_url(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    path = write(tmp_path, f"[[sources]]\nurl = 'http://127.0.0.1:{port}'\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("sentry-mirror:")]
    assert len(errors) == 1 and "could not reach" in errors[0]


def test_config_check_online_with_a_wrong_org(emu, tmp_path):
    path = write(tmp_path, f"[[sources]]\nurl = '{emu.url}'\norg = 'not-ours'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code != 0 and "does not see organization 'not-ours'" in result.stderr


# ----- sync --json, partial success, _sync_runs, status ---------------------------------------------

def sync_args(emu, db) -> list[str]:
    return ["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "--json"]


def test_sync_json_and_sync_runs_hold_the_same_figures(emu, tmp_path):
    db = tmp_path / "s.duckdb"
    result = run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (source,) = summary["sources"]
    assert summary["status"] == "ok" and source["errors"] == []
    assert source["rows"]["events"] == emu.truth()["counts"]["events"]
    assert sum(s["requests"] for s in source["streams"].values()) == source["requests"] > 0
    con = duckdb.connect(str(db), read_only=True)
    requests, retries, limited, streams, status = con.execute(
        "SELECT requests, retries, rate_limited, streams, status FROM _sync_runs").fetchone()
    con.close()
    assert (requests, retries, limited, status) == (source["requests"], source["retries"], source["rate_limited"], "ok")
    assert json.loads(streams) == source["streams"]
    shown = run("status", "--db", str(db))
    assert shown.exit_code == 0, shown.output
    stats_line = next(line for line in shown.output.splitlines() if line.strip().startswith("project_stats"))
    assert "not yet stored" not in stats_line and "no cursor" in stats_line  # it stored rows


def test_a_failing_stream_is_a_partial_success_and_the_rest_is_stored(tmp_path, monkeypatch):
    from sentry_mirror.fetching.client import SentryClient
    from sentry_mirror.running import runner

    # The same client the command builds, with quick retries: the outage outlasts them in seconds.
    monkeypatch.setattr(runner, "client_for", lambda s: SentryClient(s.url, s.token, backoff_base=0.01))
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="500", route="*/stats/*", rate=1.0)  # project stats keep failing
        db = tmp_path / "p.duckdb"
        result = run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN})
        assert result.exit_code == 6, result.output
        summary = json.loads(result.stdout)
        (source,) = summary["sources"]
        assert summary["status"] == "partial" and source["streams"]["project_stats"]["error"]
        assert source["rows"]["events"] == emu.truth()["counts"]["events"]  # the other streams were stored
        status = run("status", "--db", str(db), "--json")
        info = json.loads(status.stdout)["sources"][emu.org_slug]
        assert info["last_run"]["status"] == "partial" and "project_stats" in info["last_run"]["error"]
        emu.faults.clear()
        assert run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN}).exit_code == 0


def test_one_source_with_a_refused_token_leaves_the_others_synced(emu, tmp_path):
    """Two sources in one config, the first with a wrong token: the second still syncs, the summary
    names both, and the exit status is the partial one. Both refused: the token's own exit 5."""
    config = write(tmp_path, f'db = "{tmp_path / "two.duckdb"}"\n'
                             f'[[sources]]\nname = "bad"\nurl = "{emu.url}"\norg = "{emu.org_slug}"\ntoken_env = "SM_BAD"\n'
                             f'[[sources]]\nname = "good"\nurl = "{emu.url}"\norg = "{emu.org_slug}"\ntoken_env = "SM_GOOD"\n')
    wrong = "sntryu_" + "0" * 64
    result = run("sync", "-c", config, "-q", env={"SM_BAD": wrong, "SM_GOOD": TOKEN})
    assert result.exit_code == 6, result.output
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED bad: Sentry answered 401")]
    assert failed and "check the token in SM_BAD, the config's token_env" in failed[0], result.stdout
    assert any(line.startswith("synced good") for line in lines), result.stdout
    con = duckdb.connect(str(tmp_path / "two.duckdb"), read_only=True)
    runs = dict(con.execute("SELECT source, status FROM _sync_runs").fetchall())
    events = con.execute("SELECT count(*) FROM events WHERE source = 'good'").fetchone()[0]
    con.close()
    assert runs == {"bad": "failed", "good": "ok"} and events == emu.truth()["counts"]["events"]
    both = run("sync", "-c", config, "-q", env={"SM_BAD": wrong, "SM_GOOD": wrong})
    assert both.exit_code == 5 and "401" in both.stderr


def test_status_of_a_store_that_never_synced_and_of_a_file_that_is_not_one(tmp_path):
    from sentry_mirror.storage.store import Store

    Store(str(tmp_path / "new.duckdb")).close()
    result = run("status", "--db", str(tmp_path / "new.duckdb"))
    assert result.exit_code == 1 and "never synced" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    (tmp_path / "notes.txt").write_text("hello")
    result = run("status", "--db", str(tmp_path / "notes.txt"))
    assert result.exit_code == 3 and "not a DuckDB file" in result.stderr
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    result = run("status", "--db", str(tmp_path / "other.duckdb"))
    assert result.exit_code == 3 and "not a sentry-mirror store" in result.stderr


def test_status_of_runs_that_failed_or_were_killed(tmp_path):
    """Only failed runs: the status says no sync succeeded yet and exits 1 (it said 'never UTC
    (never)' and exited 0). A run whose process was killed says 'interrupted', not 'running',
    unless a sync does hold the store."""
    from sentry_mirror.storage.store import Store

    db = str(tmp_path / "k.duckdb")
    store = Store(db)
    store.finish_run(store.start_run("acme", False), "failed", requests=1, retries=0, rows={},
                     error="Sentry answered 401: Invalid token")
    store.start_run("acme", False)  # killed: never finished
    store.close()
    result = run("status", "--db", db)
    assert result.exit_code == 1, result.output
    assert "source acme: no successful sync yet" in result.stdout
    assert ", interrupted," in result.stdout and "running" not in result.stdout
    with writer_lock(db):  # a sync at work: its run is running
        assert ", running," in run("status", "--db", db).stdout


# ----- one writer ---------------------------------------------------------------------------------------

def test_a_second_writer_exits_naming_the_first_or_waits(emu, tmp_path):
    db = tmp_path / "w.duckdb"
    env = {"SENTRY_AUTH_TOKEN": TOKEN}
    with writer_lock(str(db)):
        result = run(*sync_args(emu, db), env=env)
        assert result.exit_code == 3 and f"(process {os.getpid()})" in result.stderr
    held = threading.Event()

    def hold():
        with writer_lock(str(db)):
            held.set()
            time.sleep(1.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    result = run(*sync_args(emu, db), "--wait", env=env)
    holder.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0  # it waited for the holder rather than failing


# ----- progress only on a terminal -----------------------------------------------------------------------

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


# ----- the scheduler --------------------------------------------------------------------------------------

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


@pytest.mark.parametrize("route, times", [
    ("*/stats/*", 1),  # on the syncer's own thread: it took 59.8 s
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


@pytest.mark.parametrize("args, env, code", [
    (["--org", "acme"], {"SENTRY_AUTH_TOKEN": ""}, 2),  # no token: before any store or server
    (["--org", "acme", "--url", "ftp://x"], {}, 2),
    (["--org", "acme", "--url", "http://127.0.0.1:9", "--insecure", "--ca-bundle", os.devnull], {}, 2),
])
def test_sync_json_answers_a_configuration_error_as_json(tmp_path, args, env, code):
    """A cron line keeps `sync --json` as its record: an exit-2 error printed nothing on stdout."""
    out = subprocess.run([sys.executable, "-m", "sentry_mirror", "sync", "--json", "--db", str(tmp_path / "s.duckdb"),
                          *args], env={**os.environ, "SENTRY_AUTH_TOKEN": TOKEN, "SENTRYCLIRC": os.devnull, **env},
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == code, out.stderr
    record = json.loads(out.stdout)
    assert record["status"] == "failed" and record["exit_code"] == code and record["error"]
