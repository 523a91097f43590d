"""Kill `sentry-mirror sync` with SIGKILL at random moments; every resume must end level with an
uninterrupted sync: nothing lost, nothing doubled."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "c" * 64
ENTITY_KEYS = {"organizations": "id", "projects": "id", "releases": "version", "issues": "id", "events": "event_id"}


def sync_cmd(emu, db):
    return [sys.executable, "-m", "sentry_mirror", "sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q"]


def env():
    e = dict(os.environ, SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull)
    e.pop("SENTRY_MIRROR_CONFIG", None)
    return e


def rows(db):
    """Every entity row, all columns but the time it was written."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT * EXCLUDE (synced_at) FROM {t} ORDER BY source, {k}").fetchall()
                for t, k in ENTITY_KEYS.items()}
    finally:
        con.close()


def run_to_completion_with_kills(emu, db, rng, max_delay, max_kills=400):
    """Start the sync, SIGKILL it after a random delay, repeat until a run completes; return kills.

    After `max_kills` kills the next run is let finish: on a loaded machine every run may take longer
    than `max_delay`, and the test is about what a resume stores, not about the machine's speed."""
    kills = 0
    while True:
        proc = subprocess.Popen(sync_cmd(emu, db), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.05, max_delay) if kills < max_kills else 600)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()
        return kills


def timed_sync(emu, db):
    start = time.monotonic()
    out = subprocess.run(sync_cmd(emu, db), env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return time.monotonic() - start


@pytest.mark.parametrize("seed", [11])
def test_fifty_kills_then_resume_equals_uninterrupted(tmp_path, seed):
    rng = random.Random(seed)
    kills = rounds = 0
    with Emulator(seed=seed, scale="tiny", token=TOKEN) as emu:
        reference = tmp_path / "reference.duckdb"
        victim = tmp_path / "victim.duckdb"
        while kills < 50 and rounds < 40:
            # The reference syncs uninterrupted; the victim syncs the same emulator state but is
            # killed at random moments within the time the reference took, until a run completes.
            duration = timed_sync(emu, reference)
            kills += run_to_completion_with_kills(emu, victim, rng, max_delay=duration * 1.1, max_kills=8)
            assert rows(victim) == rows(reference), f"round {rounds}: victim differs after {kills} kills"
            emu.advance(rng.choice([1, 6, 12, 24]))  # new events, issues and status changes
            rounds += 1
    assert kills >= 50, f"only {kills} kills landed in {rounds} rounds"
    print(f"{kills} SIGKILLs over {rounds} rounds; every round ended equal to the uninterrupted store")


SLOW_MIGRATION = textwrap.dedent("""
    import sys
    from sentry_mirror.storage import sqlfiles, store
    real = sqlfiles.migrations()
    slow = ("999_slow", "CREATE TABLE slow AS SELECT range AS n, md5(range::VARCHAR) AS h FROM range(50000000);")
    store.migrations = lambda: real + [slow]
    print("migrating", flush=True)
    store.Store(sys.argv[1])
""")


def test_kill_during_a_migration_leaves_a_usable_store(tmp_path):
    db = tmp_path / "m.duckdb"
    Store(str(db)).close()  # a store at the current schema
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MIGRATION, str(db)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"migrating"
    time.sleep(0.5)  # well inside the 50-million-row migration
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(str(db))  # reopens, replays or drops the WAL, and finds its schema intact
    con = store.con
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "sql" / "migrations").glob("*.sql"))
    assert [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY 1").fetchall()] == shipped
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "slow" not in tables and "issues" in tables
    store.close()


@pytest.mark.slow
def test_medium_scale_kills_and_random_faults_end_level_with_ground_truth(tmp_path):
    """The slow variant (`pytest --slow`): medium scale, random 5xx/resets/truncation, and kills."""
    import requests

    rng = random.Random(77)
    with Emulator(seed=77, scale="medium", token=TOKEN) as emu:
        for spec in ("kind=503,rate=0.03", "kind=reset,rate=0.01", "kind=truncate,rate=0.01", "kind=429,rate=0.02"):
            requests.post(emu.url + "/_emulator/faults", json={"spec": spec}, timeout=10).raise_for_status()
        victim = tmp_path / "victim.duckdb"
        kills = run_to_completion_with_kills(emu, victim, rng, max_delay=20.0)
        emu.advance(24)
        kills += run_to_completion_with_kills(emu, victim, rng, max_delay=5.0)
        truth = emu.truth()
        events = requests.get(emu.url + "/_emulator/truth/events", timeout=60).json()["event_ids"]
    con = duckdb.connect(str(victim), read_only=True)
    try:
        issues = dict(con.execute("SELECT id, status FROM issues").fetchall())
        stored = [r[0] for r in con.execute("SELECT event_id FROM events").fetchall()]
    finally:
        con.close()
    assert issues == {i: v["status"] for i, v in truth["issues"].items()}
    assert len(stored) == len(set(stored)) and set(stored) == set(events)
    print(f"medium scale: {kills} kills, {len(stored):,} events, level with ground truth")
