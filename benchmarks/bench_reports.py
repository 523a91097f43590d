"""Report and view latencies on a synthetic store: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_reports.py                     # ten million events
    .venv/bin/python benchmarks/bench_reports.py --events 1000000 --keep /tmp/r.duckdb

The store is generated with SQL inside DuckDB (no API, no Python loops): a year of events over
8 projects, 20,000 issues with a heavy tail, a release every week per project, Sentry's hourly and
daily counters derived from those events, and a status history with resolutions and regressions.
Each report runs as the `report` command runs it: a fresh read-only connection, the report's SQL
with its filters bound, the answer read into a DataFrame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sentry_mirror.reading.reports import Filters, run_report  # noqa: E402
from sentry_mirror.storage.store import Store, open_readonly  # noqa: E402

PROJECTS, ISSUES, USERS, DAYS = 8, 20_000, 200_000, 365

GENERATE = """
CREATE OR REPLACE TEMP TABLE g_issue AS
SELECT i, (i % {projects}) AS p, (hash(i * 7) % 1000) / 1000.0 AS pos FROM range({issues}) t(i);

INSERT INTO projects
SELECT 'bench', CAST(4500000 + p AS VARCHAR), 'project-' || p, 'Project ' || p, 'python',
       TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-02', '{{}}', now()::TIMESTAMP
FROM range({projects}) t(p);

INSERT INTO releases
SELECT 'bench', 'project-' || p || '@1.' || w || '.0', 1000 * p + w, '1.' || w || '.0', 'open',
       $start::TIMESTAMP + INTERVAL (w * 7) DAY, $start::TIMESTAMP + INTERVAL (w * 7) DAY + INTERVAL 1 HOUR,
       0, 3, 1, [CAST(4500000 + p AS VARCHAR)], '{{}}', now()::TIMESTAMP
FROM range({projects}) a(p), range(53) b(w);

-- Events: issue drawn with a heavy tail, time spread over the year, release current at that time.
INSERT INTO events (source, event_id, issue_id, project_id, date_created, date_received, release, environment,
                    level, platform, title, user_id, raw, synced_at, user_key)
SELECT 'bench', md5(CAST(n AS VARCHAR)), CAST(5100000000 + g.i AS VARCHAR), CAST(4500000 + g.p AS VARCHAR), t,
       t + INTERVAL 1 SECOND, 'project-' || g.p || '@1.' || (datediff('day', $start::TIMESTAMP, t) // 7) || '.0',
       CASE WHEN hash(n) % 5 = 0 THEN 'staging' ELSE 'production' END,
       CASE WHEN hash(n) % 9 = 0 THEN 'warning' ELSE 'error' END, 'python', 'Error ' || g.i,
       CASE WHEN hash(n * 3) % 10 = 0 THEN NULL ELSE CAST(hash(n * 5) % {users} AS VARCHAR) END,
       '{{}}', now()::TIMESTAMP,
       CASE WHEN hash(n * 3) % 10 = 0 THEN NULL ELSE 'id:' || CAST(hash(n * 5) % {users} AS VARCHAR) END
FROM (SELECT n, CAST(floor(pow((hash(n) % 1000003) / 1000003.0, 3) * {issues}) AS BIGINT) AS i,
             $start::TIMESTAMP + to_microseconds(CAST(hash(n * 11) % ({days} * 86400000::BIGINT) AS BIGINT) * 1000) AS t
      FROM range({events}) r(n)) e
JOIN g_issue g ON g.i = e.i;

INSERT INTO issues (source, id, short_id, project_id, title, culprit, level, status, substatus, type, platform,
                    first_seen, last_seen, times_seen, user_count, raw, synced_at)
SELECT 'bench', issue_id, 'P' || right(issue_id, 5), any_value(project_id), any_value(title), 'app.main', 'error',
       CASE WHEN hash(issue_id) % 3 = 0 THEN 'resolved' ELSE 'unresolved' END, NULL, 'error', 'python',
       min(date_created), max(date_created), count(*), count(DISTINCT user_id), '{{}}', now()::TIMESTAMP
FROM events GROUP BY issue_id;

INSERT INTO project_stats
SELECT source, project_id, 'generated', '1h', date_trunc('hour', date_created), count(*), now()::TIMESTAMP
FROM events GROUP BY ALL;
INSERT INTO project_stats
SELECT source, project_id, 'generated', '1d', date_trunc('day', date_created), count(*), now()::TIMESTAMP
FROM events GROUP BY ALL;

-- A resolution seen for a third of the issues, half-way through their life, some regressing after.
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus, observed_at)
SELECT source, id, 'unresolved', 'resolved', 'ongoing', NULL, first_seen + (last_seen - first_seen) / 2
FROM issues WHERE hash(id) % 3 = 0;
INSERT INTO issue_status_history (source, issue_id, from_status, to_status, from_substatus, to_substatus, observed_at)
SELECT source, id, 'resolved', 'unresolved', NULL, 'regressed', first_seen + (last_seen - first_seen) * 3 / 4
FROM issues WHERE hash(id) % 6 = 0;
"""

VARIANTS = [
    ("trends", Filters(by="day", limit=1000)),
    ("trends", Filters(by="hour", limit=1000)),
    ("trends", Filters(by="week", project="project-3", limit=1000)),
    ("trends", Filters(by="day", environment="staging", limit=1000)),
    ("regressions", Filters(limit=50)),
    ("regressions", Filters(project="project-1", limit=50)),
    ("users", Filters(limit=50)),
    ("users", Filters(release="project-2@1.30.0", limit=50)),
    ("top", Filters(limit=50)),
    ("top", Filters(project="project-5", environment="production", limit=50)),
]


def build_synthetic_store(path: str, events: int = 10_000_000) -> dict:
    """A store of `events` events generated in SQL; returns build figures."""
    for suffix in ("", ".wal"):
        Path(path + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    store = Store(path)
    sql = GENERATE.format(projects=PROJECTS, issues=ISSUES, users=USERS, days=DAYS, events=events)
    with store.transaction() as con:
        con.execute("SET memory_limit = '8GB'")  # the syncer's small pool is for pages, not for ten million rows at once
        for statement in (s.strip() for s in sql.split(";")):
            if statement and not all(line.lstrip().startswith("--") for line in statement.splitlines()):
                con.execute(statement, {"start": "2025-06-01"} if "$start" in statement else None)
    store.create_views()
    store.close()
    return {"events": events, "seconds": round(time.perf_counter() - started, 1),
            "bytes": Path(path).stat().st_size}


def time_reports(path: str, repeat: int = 3) -> dict:
    """Median seconds per report variant, each on a fresh read-only connection as the CLI does."""
    figures = {}
    for name, filters in VARIANTS:
        label = name + "".join(f" --{k} {v}" for k, v in vars(filters).items()
                               if v is not None and k not in ("limit",) and not (k == "by" and name != "trends"))
        times, rows = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            con = open_readonly(path)
            try:
                rows = len(run_report(con, name, filters))
            finally:
                con.close()
            times.append(time.perf_counter() - started)
        figures[label] = {"seconds": round(statistics.median(times), 3), "rows": rows}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", help="build (or reuse, recreating its views) the store at this path instead of a "
                                       "temporary one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or str(Path(tmp) / "bench.duckdb")
        if args.keep and Path(path).exists():
            store = Store(path)  # the views and macros of this checkout, not those the store was built with
            store.create_views()
            store.close()
            print(f"reusing {path} (views recreated)")
        else:
            built = build_synthetic_store(path, args.events)
            print(f"built {built['events']:,} events in {built['seconds']} s; store {built['bytes'] / 1e6:,.0f} MB")
        print(f"{'report':<60} {'seconds':>8} {'rows':>6}")
        for label, f in time_reports(path).items():
            print(f"{label:<60} {f['seconds']:>8.3f} {f['rows']:>6}")


if __name__ == "__main__":
    main()
