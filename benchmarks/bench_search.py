"""Issue search latency on a synthetic store: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_search.py --events 200000      # what was measured here
    .venv/bin/python benchmarks/bench_search.py                      # ten million events

The store is bench_reports.py's (events, issues, releases made inside DuckDB; it has no event
tags or exceptions, so tag and error queries there measure the lookup, not a hit). Each query runs
as `issues --query` runs it: a fresh read-only connection, `search_issue_ids`, every id read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reports import build_synthetic_store  # noqa: E402

from sentry_mirror.reading.search import search_issue_ids  # noqa: E402
from sentry_mirror.storage.store import open_readonly  # noqa: E402

QUERIES = [
    "is:unresolved", "is:unresolved level:error", "times_seen:>1000", "lastSeen:-24h", "firstSeen:+30d",
    "release:project-1@1.20.0", "environment:staging", "!environment:production is:unresolved",
    "Error 12*", "user.id:42", "browser:Chrome*", "(level:error OR level:warning) times_seen:>100 lastSeen:-7d",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.duckdb")
        build_synthetic_store(path, args.events)
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        worst, medians = 0.0, []
        for query in QUERIES:
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                con = open_readonly(path)
                try:
                    n = len(search_issue_ids(con, query, now=now))
                finally:
                    con.close()
                times.append(time.perf_counter() - t0)
            medians.append(statistics.median(times))
            worst = max(worst, max(times))
            print(f"{statistics.median(times) * 1000:8.1f} ms  {n:>7,} issues  {query}")
        print(f"{args.events:,} events: median of medians {statistics.median(medians) * 1000:.1f} ms, "
              f"worst {worst * 1000:.1f} ms")


if __name__ == "__main__":
    main()
