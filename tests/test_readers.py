"""Readers while a sync writes: a reader that asks gets in within about a page, sees every page
committed so far, and never fails with a lock error; a stream of readers does not starve the sync.

Reader and writer must be different processes (DuckDB opens a file once per process), so the
writer here is a child process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from sentry_mirror.reading.browse import issue_rows, query_rows, store_status
from sentry_mirror.reading.reports import EmptyStore, Filters, run_report
from sentry_mirror.storage.store import Store, open_readonly, read_df

ROOT = Path(__file__).resolve().parent.parent

# A writer that never lets go by itself (a lease of an hour): only a waiting reader can make it.
HOLDING_WRITER = textwrap.dedent("""
    import sys, time
    from sentry_mirror.storage.store import Store
    store = Store(sys.argv[1], lease_seconds=3600)
    store.con.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
    store.con.execute("INSERT INTO t VALUES (1)")
    print("holding", flush=True)
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        store.maybe_release()
        if store._con is None:
            print("released", flush=True)
            break
        time.sleep(0.02)
    else:
        print("kept", flush=True)
    store.con.execute("INSERT INTO t VALUES (2)")  # reopens once the reader has closed
    print("wrote again", flush=True)
    store.close()
""")


def spawn_writer(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDING_WRITER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_waiting_reader_makes_the_writer_let_go(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(str(path)).close()
    writer = spawn_writer(path, seconds=20)
    try:
        con = open_readonly(path, wait=15)
        assert writer.stdout.readline().strip() == "released"
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # what was committed
        time.sleep(0.3)
        # The writer waits for this reader before writing again.
        assert writer.poll() is None
        con.close()
        assert writer.stdout.readline().strip() == "wrote again"
        assert writer.wait(timeout=20) == 0
    finally:
        writer.kill()
    con = open_readonly(path)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    con.close()


def test_without_a_reader_the_writer_keeps_the_file(tmp_path):
    """The control for the test above: the release comes from the reader's signal, not by itself."""
    path = tmp_path / "s.duckdb"
    Store(str(path)).close()
    writer = spawn_writer(path, seconds=1)
    assert writer.stdout.readline().strip() == "kept"
    assert writer.wait(timeout=20) == 0


def _timed(latencies: list[float], read):
    started = time.monotonic()
    value = read()
    latencies.append(time.monotonic() - started)
    return value


def _reads(db: str, latencies: list[float]) -> dict[str, int]:
    """What a user runs while a sync goes on: query, issues, status, a notebook's read_df; each
    answer on its own connection, timed from asking to answer."""

    def _read(answer):
        con = open_readonly(db)
        try:
            return answer(con)
        finally:
            con.close()

    issues = _timed(latencies, lambda: _read(lambda con: query_rows(con, "SELECT count(*) AS n FROM issues").records()[0]["n"]))
    events = _timed(latencies, lambda: int(read_df(db, "SELECT count(*) AS n FROM events WHERE source <> ?",
                                                    [""])["n"][0]))
    _timed(latencies, lambda: _read(lambda con: issue_rows(con, sort="events", limit=5).records()))

    def status():
        con = open_readonly(db)
        try:
            return store_status(con)
        finally:
            con.close()

    _timed(latencies, status)

    def report():
        con = open_readonly(db)
        try:
            return run_report(con, "trends", Filters(by="hour", limit=100))
        finally:
            con.close()

    _timed(latencies, report)
    return {"events": events, "issues": issues}


def notebook_runs(db: str, stop: threading.Event, runs: list, failures: list) -> None:
    """The notebook, top to bottom in a real kernel, again and again until the sync ends."""
    from test_notebooks import NOTEBOOKS, run_notebook

    while not stop.is_set():
        started = time.monotonic()
        try:
            nb = run_notebook(NOTEBOOKS[0], Path(db))
        except Exception as exc:  # noqa: BLE001 - every failure counts
            failures.append(f"notebook: {type(exc).__name__}: {str(exc)[-300:]}")
            continue
        cells = [c for c in nb.cells if c.cell_type == "code"]
        runs.append((time.monotonic() - started) / len(cells))  # seconds per cell (a query, most of them)


def start_emulator(scale: str, seed: int, token: str) -> tuple[subprocess.Popen, str, str]:
    """The emulator in a process of its own, as a real server would be: in this process its
    threads would compete with the readers for the interpreter and blur their timings. It limits
    requests to 15 a second: unlimited, a small first sync writes its events in a few batches of
    a thousand, over before the readers have looked twice."""
    proc = subprocess.Popen([sys.executable, "-m", "sentry_mirror.cli", "emulator", "--port", "0", "--seed",
                             str(seed), "--scale", scale, "--token", token, "--rate-limit", "15"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    info = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))
    return proc, info["base URL"], info["organization"]


def read_during_sync(scale: str, seed: int) -> tuple[list[float], list[str], list[tuple[int, int]], dict, Path, list]:
    token = "sntryu_" + "d" * 64
    emulator, url, org = start_emulator(scale, seed, token)
    db = Path(os.environ.get("TMPDIR", "/tmp")) / f"readers-{os.getpid()}-{scale}.duckdb"
    try:
        for suffix in ("", ".wal", ".lock", ".readers"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        sync = subprocess.Popen(
            [sys.executable, "-m", "sentry_mirror.cli", "sync", "--url", url, "--org", org, "--db", str(db), "-q"],
            env={**os.environ, "SENTRY_AUTH_TOKEN": token}, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        latencies, failures, counts, notebook = [], [], [], []
        stop = threading.Event()
        reader = None
        try:
            while sync.poll() is None:
                if counts and reader is None and counts[-1][1] > 0:
                    reader = threading.Thread(target=notebook_runs, args=(str(db), stop, notebook, failures))
                    reader.start()
                if not db.exists():
                    time.sleep(0.05)
                    continue
                try:
                    got = _reads(str(db), latencies)
                except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
                    if not counts and ("Catalog Error" in str(exc) or isinstance(exc, EmptyStore)):
                        continue  # the first sync has not committed its first issues yet
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                counts.append((got["issues"], got["events"]))
            _, err = sync.communicate(timeout=600)
            assert sync.returncode == 0, err
        finally:
            stop.set()
            if reader is not None:
                reader.join(timeout=300)
            sync.kill()
        truth = requests.get(f"{url}/_emulator/truth", timeout=60).json()
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    return latencies, failures, counts, truth, db, notebook


@pytest.mark.parametrize("scale", ["small", pytest.param("medium", marks=pytest.mark.slow)])
def test_readers_during_a_first_sync_never_fail_and_see_committed_pages(scale):
    latencies, failures, counts, truth, db, notebook = read_during_sync(scale, seed=21)
    try:
        assert failures == []
        assert len(latencies) >= 8, "the readers hardly ran during the sync"
        assert notebook, "the notebook never finished a run during the sync"
        for i, what in enumerate(("issues", "events")):
            seen = [c[i] for c in counts]
            assert seen == sorted(seen), f"a reader saw fewer {what} than an earlier one"
        assert any(0 < n < truth["counts"]["events"] for _, n in counts), "no reader saw the sync half-way"
        final = open_readonly(db)
        assert final.execute("SELECT count(*) FROM events").fetchone()[0] == truth["counts"]["events"]
        final.close()
        over = sum(t > 1 for t in latencies)
        print(f"\n{scale}: {len(latencies)} answers during the sync; median {statistics.median(latencies):.3f}s, "
              f"max {max(latencies):.3f}s, {over} over a second; notebook ran {len(notebook)} times, "
              f"{statistics.median(notebook):.2f}s per cell")
        # Generous bounds, not a timing target: an answer waits at most for the batch being written,
        # which now and then includes a DuckDB checkpoint (seconds, on a large store).
        assert statistics.median(latencies) < 1 and max(latencies) < 30
    finally:
        for suffix in ("", ".wal", ".lock", ".readers"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def test_readers_get_in_while_the_sync_waits_on_the_network(tmp_path):
    """The syncer's thread waits 6 s on a Retry-After (tag values, read on that thread) and 5 s on
    a slow answer (an issues page): the file is the readers' meanwhile. Before, the writer checked
    for readers only when it committed, and each reader waited out the whole wait (a reader gives
    up after 30 s; Sentry's Retry-After can be a minute)."""
    token = "sntryu_" + "e" * 64
    emulator = subprocess.Popen(
        [sys.executable, "-m", "sentry_mirror.cli", "emulator", "--port", "0", "--seed", "4", "--scale", "tiny",
         "--token", token, "--fault", "kind=429,retry_after=6,route=*/tags/*/values/*,after=2,times=1",
         "--fault", "kind=slow,delay=5,route=*/issues/*,times=1"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    info = dict(emulator.stdout.readline().strip().split(": ", 1) for _ in range(3))
    db = tmp_path / "w.duckdb"
    try:
        started = time.monotonic()
        sync = subprocess.Popen(
            [sys.executable, "-m", "sentry_mirror.cli", "sync", "--url", info["base URL"], "--org",
             info["organization"], "--db", str(db), "-q"],
            env={**os.environ, "SENTRY_AUTH_TOKEN": token}, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        latencies: list[float] = []
        while sync.poll() is None:
            if not db.exists():
                time.sleep(0.05)
                continue
            asked = time.monotonic()
            con = open_readonly(db, wait=60)
            latencies.append(time.monotonic() - asked)
            con.execute("SELECT count(*) FROM _sync_runs").fetchall()
            con.close()
            time.sleep(0.2)
        _, err = sync.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    assert sync.returncode == 0, err
    assert took >= 11, "the sync did not wait as the faults say: the test shows nothing"
    print(f"{len(latencies)} reads while the sync waited; slowest {max(latencies):.2f} s")
    assert len(latencies) >= 8  # before: 3 in 13 s, each waiting out a wait of 5-6 s
    assert max(latencies) < 3.0, sorted(latencies)[-5:]


def test_a_stop_ends_the_writers_wait_for_a_reader(tmp_path):
    """SIGTERM while a notebook held the store open was ignored until the reader let go (up to
    reader_wait, ten minutes): systemd then killed the scheduler after its 90 s."""
    from sentry_mirror.errors import Interrupted

    path = tmp_path / "s.duckdb"
    Store(str(path)).close()
    reader = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], "
                               "read_only=True); print('open', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            Store(str(path), stop=stop)
        assert time.monotonic() - started < 5
    finally:
        reader.kill()
        reader.wait()


def test_readers_see_now_in_utc_like_the_stored_times(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(str(path)).close()
    env = {**os.environ, "TZ": "Asia/Tokyo"}
    code = ("import sys; from sentry_mirror.storage.store import read_df; "
            "print(read_df(sys.argv[1], \"SELECT (now()::TIMESTAMP - (now() AT TIME ZONE 'UTC'))::VARCHAR AS d\")['d'][0])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "00:00:00"
