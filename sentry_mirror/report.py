"""Read-only summaries of a store, for `status` and the demo. Everything here only reads."""

from __future__ import annotations

from typing import Any

import duckdb

ENTITY_TABLES = ("organizations", "projects", "releases", "issues", "events")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def store_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    tables = _tables(con)
    info: dict[str, Any] = {"sources": {}}
    if "_sync_runs" not in tables:
        return info
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM _sync_runs ORDER BY 1").fetchall()]
    for source in sources:
        src: dict[str, Any] = {"rows": {}}
        for table in ENTITY_TABLES:
            if table in tables:
                src["rows"][table] = con.execute(f"SELECT count(*) FROM {table} WHERE source = ?", [source]).fetchone()[0]
        src["issues_by_status"] = dict(con.execute(
            "SELECT coalesce(status, '?'), count(*) FROM issues WHERE source = ? GROUP BY 1 ORDER BY 2 DESC",
            [source]).fetchall())
        run = con.execute(
            "SELECT run_id, started_at, finished_at, status, requests, error FROM _sync_runs "
            "WHERE source = ? ORDER BY run_id DESC LIMIT 1", [source]).fetchone()
        if run:
            src["last_run"] = dict(zip(("run_id", "started_at", "finished_at", "status", "requests", "error"), run))
        # Org-wide streams one line each; per-issue event walks folded into one line.
        streams = con.execute(
            """SELECT CASE WHEN stream = 'events' THEN 'events (per issue)' ELSE stream END AS name,
                      max(updated_at), bool_or(cursor IS NOT NULL)
               FROM _sync_state WHERE source = ? GROUP BY 1 ORDER BY 1""", [source]).fetchall()
        src["streams"] = [{"stream": s, "updated_at": u, "in_progress": p} for s, u, p in streams]
        info["sources"][source] = src
    return info


def demo_summary(con: duckdb.DuckDBPyConnection, truth: dict, first, second) -> str:
    lines = []
    status = dict(con.execute("SELECT status, count(*) FROM issues GROUP BY 1 ORDER BY 2 DESC").fetchall())
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("projects", "issues", "events", "releases")}
    lines.append(f"Stored: {counts['projects']} projects, {counts['releases']} releases, {counts['issues']:,} issues "
                 f"({', '.join(f'{n:,} {s}' for s, n in status.items())}), {counts['events']:,} events.")
    t = truth.get("counts", {})
    same = (counts["issues"] == t.get("issues") and counts["events"] == t.get("events")
            and counts["projects"] == t.get("projects"))
    lines.append(f"Emulator's ground truth: {t.get('issues', '?'):,} issues, {t.get('events', '?'):,} events: "
                 + ("the mirror matches." if same else "MISMATCH."))
    if first.requests:
        lines.append(f"Incremental sync after a day: {second.requests:,} requests, "
                     f"{100 * second.requests / first.requests:.0f}% of the first sync's {first.requests:,}.")
    lines.append("")
    lines.append("Top issues by events (issue_summary view):")
    for short_id, project, title, status_, events, users in con.execute(
            "SELECT short_id, project, title, status, times_seen, affected_users FROM issue_summary "
            "ORDER BY times_seen DESC LIMIT 5").fetchall():
        lines.append(f"  {short_id:<12} {project:<18} {events:>7,} events {users:>5,} users  [{status_}] {title[:50]}")
    lines.append("")
    lines.append("Events per day, last 7 days in the store (daily_events view):")
    rows = con.execute("SELECT day, sum(events) FROM daily_events GROUP BY day ORDER BY day DESC LIMIT 7").fetchall()
    peak = max((n for _, n in rows), default=1) or 1
    for day, n in reversed(rows):
        lines.append(f"  {day}  {int(n):>7,}  {'#' * max(1, round(40 * n / peak))}")
    lines.append("")
    lines.append("Releases that brought the most new issues (release_health view):")
    for project, release, new_issues, users in con.execute(
            "SELECT project, release, new_issues, affected_users FROM release_health "
            "ORDER BY new_issues DESC, release LIMIT 5").fetchall():
        lines.append(f"  {release:<28} {project:<18} {new_issues:>4} new issues, {users:>5,} users affected")
    return "\n".join(lines)
