"""Sync benchmarks against the emulator: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_sync.py                  # small and medium
    .venv/bin/python benchmarks/bench_sync.py --scale large    # about a million events

For each scale: the first sync (time, requests, events per second, peak memory of the syncer
process), an incremental sync after the emulator's clock moves a day, and a sync with nothing new.
The syncer runs as a subprocess (`sentry-mirror sync`), so its peak RSS is its own, not the
emulator's; requests are the emulator's own count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sentry_mirror.emulator import Emulator  # noqa: E402

TOKEN = "sntryu_" + "b" * 64


def run_sync(emu: Emulator, db: Path, concurrency: int | None = None) -> dict:
    before = emu.request_counts()["total"]
    env = dict(os.environ, SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull)
    cmd = [sys.executable, "-m", "sentry_mirror", "sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, _, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = 0
    err = proc.stderr.read()
    if err.strip():
        print(err, file=sys.stderr)
    return {"seconds": seconds, "requests": emu.request_counts()["total"] - before,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def count(db: Path, table: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def bench(scale: str, seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder, Emulator(seed=seed, scale=scale, token=TOKEN) as emu:
        db = Path(folder) / "bench.duckdb"
        truth = emu.truth()["counts"]
        first = run_sync(emu, db)
        events = count(db, "events")
        print(f"\n{scale}: {truth['projects']} projects, {truth['issues']:,} issues, {truth['events']:,} events")
        print(f"  first sync      {first['seconds']:8.1f} s  {first['requests']:7,} requests  "
              f"{events / first['seconds']:8,.0f} events/s  peak RSS {first['peak_rss_mb']:6.0f} MB  "
              f"store {db.stat().st_size / 2**20:6.1f} MB")
        changes = emu.advance(24)
        second = run_sync(emu, db)
        print(f"  after a day     {second['seconds']:8.1f} s  {second['requests']:7,} requests  "
              f"({changes['new_events']:,} new events, {changes['new_issues']} new issues, "
              f"{changes['status_changes']} status changes)")
        third = run_sync(emu, db)
        print(f"  nothing new     {third['seconds']:8.1f} s  {third['requests']:7,} requests")
        level = count(db, "events") == emu.truth()["counts"]["events"]
        print(f"  store level with the emulator's ground truth: {'yes' if level else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", action="append", choices=["tiny", "small", "medium", "large"],
                        help="scale to run (repeatable; default small and medium)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for scale in args.scale or ["small", "medium"]:
        bench(scale, args.seed)


if __name__ == "__main__":
    main()
