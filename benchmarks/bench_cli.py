"""How long the reading commands take as a user runs them: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_cli.py                    # make bench-cli
    .venv/bin/python benchmarks/bench_cli.py --db demo.duckdb   # an existing store, not built again

A small store is built as `sentry-mirror demo` builds it (the emulator at scale small, synced, a
day passed, synced again). Then each command runs as a process of its own, start-up included
(the import of the package, DuckDB opening the file), best of 5 wall times: --help, status,
issues, a count, two reports. Last, `query "SELECT * FROM range(10000000)" --csv` into a file,
once: its wall time, rows per second and peak RSS (VmHWM, read while it runs, see PeakRss) beside
the peak of the same query for 10,000 rows: CSV streams in flat memory. Results go to
benchmarks/results/cli.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_sync import PeakRss  # noqa: E402

RUNS = 5
BIG_ROWS = 10_000_000
SMALL_ROWS = 10_000  # the baseline of the big query's peak RSS
COMMANDS = [
    ("--help", ["--help"]),
    ("status", ["status"]),
    ("issues", ["issues"]),
    ("issues -q 'is:unresolved level:error lastSeen:-7d'", ["issues", "-q", "is:unresolved level:error lastSeen:-7d"]),
    ('query "SELECT count(*) FROM events"', ["query", "SELECT count(*) FROM events"]),
    ("report top", ["report", "top"]),
    ("report trends", ["report", "trends"]),
]
STORE_ARGS = {"status", "issues", "query", "report"}  # the commands that take --db


def cli() -> list[str]:
    """The console script beside this Python (as a user runs it), else `python -m sentry_mirror`."""
    script = Path(sys.executable).parent / "sentry-mirror"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sentry_mirror"]


def environment() -> dict[str, str]:
    """No config, store or ~/.sentryclirc of the machine's user steers the commands timed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "COLUMNS"))}
    env["SENTRYCLIRC"] = os.devnull
    return env


def build_store(db: Path) -> float:
    """The demo's store at scale small; returns the seconds it took."""
    started = time.perf_counter()
    subprocess.run(cli() + ["demo", "--db", str(db), "--scale", "small", "--quiet"], check=True,
                   stdout=subprocess.DEVNULL, env=environment(), cwd=db.parent)
    return time.perf_counter() - started


def timed(args: list[str], db: Path) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of RUNS runs of one command, its output thrown
    away. The CPU time is the command's own work: on a busy machine, wall time adds the waits."""
    argv = cli() + args + (["--db", str(db)] if args[0] in STORE_ARGS else [])
    times, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=environment(), cwd=db.parent)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpus


def big_csv(db: Path, out: Path, rows: int = BIG_ROWS) -> dict:
    """`query … --csv > out` of `rows` rows: wall seconds, rows/s, peak RSS, lines written."""
    argv = cli() + ["query", "--db", str(db), f"SELECT * FROM range({rows})", "--csv"]
    with open(out, "w") as fh:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fh, env=environment(), cwd=db.parent)
        peak = PeakRss(proc.pid)
        code = proc.wait()
        seconds = time.perf_counter() - started
        peak.stop()
    if code:
        raise SystemExit(f"the {rows:,}-row query failed with exit status {code}")
    with open(out, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return {"seconds": seconds, "rows_per_s": rows / seconds, "peak_mb": peak.kb / 1024,
            "lines": lines, "bytes": out.stat().st_size}


def markdown(figures: dict[str, tuple[list[float], list[float]]], big: dict, base: dict, built: float | None, db: Path) -> str:
    when = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # the machine is shared: busy cores stretch wall times
    lines = [f"Reading commands on a store of scale `small` ({db.stat().st_size / 1e6:.1f} MB"
             + (f", built in {built:.1f} s" if built is not None else "") + "), each a process of its own. "
             f"{platform.machine()}, {os.cpu_count()} cores (load average {load}), Python {platform.python_version()}; "
             f"{when}.",
             "", f"| command | wall, best of {RUNS} s | wall, median s | CPU, median s |", "|---|---|---|---|"]
    for name, (times, cpus) in figures.items():
        lines.append(f"| `sentry-mirror {name}` | {min(times):.3f} | {statistics.median(times):.3f} | "
                     f"{statistics.median(cpus):.3f} |")
    lines += ["", f"- `sentry-mirror query \"SELECT * FROM range({BIG_ROWS})\" --csv > file`, once: "
              f"{big['seconds']:.1f} s wall, {big['rows_per_s']:,.0f} rows/s, peak RSS {big['peak_mb']:.1f} MB, "
              f"{big['lines']:,} lines ({big['bytes'] / 1e6:.1f} MB) written. The same for {SMALL_ROWS:,} rows: "
              f"peak RSS {base['peak_mb']:.1f} MB (CSV streams: holding the rows would add hundreds of MB)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="Time the commands on this store instead of building one.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        db, built = args.db, None
        if db is None:
            db = Path(tmp) / "demo.duckdb"
            print("building the store (sentry-mirror demo --scale small)…", file=sys.stderr)
            built = build_store(db)
        db = db.resolve()
        figures = {}
        for name, command in COMMANDS:
            print(f"timing sentry-mirror {name}…", file=sys.stderr)
            figures[name] = timed(command, db)
        print(f"timing {BIG_ROWS:,} rows of CSV…", file=sys.stderr)
        big = big_csv(db, Path(tmp) / "range.csv")
        base = big_csv(db, Path(tmp) / "range.csv", SMALL_ROWS)
        text = markdown(figures, big, base, built, db)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
