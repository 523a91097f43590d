"""What `status`, `query` and `issues` read from a store (and the demo's summary): its figures
and their text, an ad-hoc query, the issue list. Everything here only reads; rows come back as
`rows.Rows`, streamed, for the CLI to print."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from ..errors import ConfigError
from ..storage import sidefiles
from ..storage.store import ISSUE_HOOKS, require_store
from ..timestamps import parse_ts
from .rows import Rows

ENTITY_TABLES = ("organizations", "projects", "releases", "issues", "events")
# The store's tables. Not information_schema.tables: it binds every view too (14 ms of a 60 ms answer).
TABLES_SQL = "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(TABLES_SQL).fetchall()}


def shown_status(alias: str = "") -> str:
    """An issue's status as the mirror shows it: 'deleted' once Sentry no longer has it (the
    issues table keeps Sentry's last status); as the issue_summary view says it."""
    p = f"{alias}." if alias else ""
    return f"CASE WHEN {p}deleted_at IS NOT NULL THEN 'deleted' ELSE {p}status END"


def store_status(con: duckdb.DuckDBPyConnection, db_path: str | None = None) -> dict[str, Any]:
    """Per source: rows, the last run and the last good one, lag, last error, each stream's figures
    from the last run and whether a walk will resume; and the scheduler's next run if one runs."""
    require_store(con, db_path or "this file")
    tables = _tables(con)
    from ..storage.locking import is_held

    info: dict[str, Any] = {"store": db_path, "sources": {},
                            "scheduler": scheduler_status(db_path) if db_path else None}
    if "_sync_runs" not in tables:
        return info
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = '_sync_runs'").fetchall()}
    figures = ", rate_limited, seconds, streams" if "streams" in columns else ", NULL, NULL, NULL"
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM _sync_runs ORDER BY 1").fetchall()]
    if not sources and {"events", "issues"} <= tables:  # no sync yet; `hooks serve` may have stored rows
        info["unsynced_rows"] = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "issues")}
    for source in sources:
        src: dict[str, Any] = {"rows": {}}
        for table in ENTITY_TABLES:
            if table in tables:
                src["rows"][table] = con.execute(f"SELECT count(*) FROM {table} WHERE source = ?", [source]).fetchone()[0]
        src["issues_by_status"] = dict(con.execute(
            f"SELECT coalesce({shown_status()}, '?'), count(*) FROM issues WHERE source = ? GROUP BY 1 ORDER BY 2 DESC",
            [source]).fetchall())
        names = ("run_id", "started_at", "finished_at", "status", "requests", "retries", "error", "rate_limited",
                 "seconds", "streams")
        run = con.execute(f"SELECT run_id, started_at, finished_at, status, requests, retries, error{figures} "
                          "FROM _sync_runs WHERE source = ? ORDER BY run_id DESC LIMIT 1", [source]).fetchone()
        if run:
            last = dict(zip(names, run))
            if last["status"] == "running" and not (db_path and is_held(sidefiles.writer_lock(db_path))):
                last["status"] = "interrupted"  # its process ended without recording the end (killed)
            last["streams"] = json.loads(last["streams"]) if last["streams"] else {}
            last["error"] = last["error"].splitlines()[0][:300] if last["error"] else None
            src["last_run"] = last
        good = con.execute("SELECT max(finished_at) FROM _sync_runs WHERE source = ? AND status IN ('ok', 'partial')",
                           [source]).fetchone()[0]
        src["last_success"] = good
        src["lag_seconds"] = round((now - good).total_seconds()) if good else None
        pending = {s for s, p in con.execute(
            "SELECT CASE WHEN stream = 'events' THEN 'events' ELSE stream END, bool_or(cursor IS NOT NULL) "
            "FROM _sync_state WHERE source = ? AND stream NOT LIKE '\\_%' ESCAPE '\\' GROUP BY 1",
            [source]).fetchall() if p}
        streams = {}
        for name, updated in con.execute(
                "SELECT CASE WHEN stream = 'events' THEN 'events' ELSE stream END, max(updated_at) FROM _sync_state "
                "WHERE source = ? AND stream NOT LIKE '\\_%' ESCAPE '\\' GROUP BY 1 ORDER BY 1", [source]).fetchall():
            streams[name] = {"stream": name, "updated_at": updated, "resume_pending": name in pending}
        for name, fig in (src.get("last_run") or {}).get("streams", {}).items():
            streams.setdefault(name, {"stream": name, "updated_at": None, "resume_pending": False}).update(
                last_rows=sum(fig.get("rows", {}).values()), last_requests=fig.get("requests"),
                last_error=fig.get("error"))
        src["streams"] = sorted(streams.values(), key=lambda x: x["stream"])
        clock = con.execute("SELECT extra->>'note' FROM _sync_state WHERE source = ? AND stream = '_clock'",
                            [source]).fetchone()
        src["clock"] = clock[0] if clock else None  # the Date header and Sentry's clock disagreed
        src["cadences"] = _cadences(con, source)
        src["organization_gone_at"] = _gone_at(con, source)
        hooks = con.execute("SELECT extra->>'at' FROM _sync_state WHERE source = ? AND stream = ? AND scope = ?",
                            [source, *ISSUE_HOOKS]).fetchone()
        src["issue_webhooks_at"] = parse_ts(hooks[0]) if hooks else None
        info["sources"][source] = src
    return info


def _gone_at(con: duckdb.DuckDBPyConnection, source: str):
    """When the source's organization left its token's list (`org = "*"`), if it did."""
    try:
        return con.execute("SELECT max(gone_at) FROM organizations WHERE source = ?", [source]).fetchone()[0]
    except duckdb.Error:  # a store from before migration 010
        return None


def _cadences(con: duckdb.DuckDBPyConnection, source: str) -> list[dict]:
    """The slowly changing streams a sync reads whole on a cadence: each one's cadence in hours, when
    it was last read whole and when it is next due (on Sentry's clock; 24 h when a sync from before
    the cadence was recorded read it)."""
    rows = con.execute("SELECT scope, extra->>'at', extra->>'hours' FROM _sync_state "
                       "WHERE source = ? AND stream = '_cadence' ORDER BY scope", [source]).fetchall()
    out = []
    for name, at, hours in rows:
        last = parse_ts(at)
        every = float(hours) if hours is not None else 24.0
        out.append({"stream": name, "every_hours": every, "last_read": last,
                    "next_due": last + timedelta(hours=every) if last else None})
    return out


def scheduler_status(db_path: str) -> dict | None:
    """The running scheduler's pid and next run, or None when no scheduler holds this store."""
    from ..storage.locking import is_held

    if not is_held(sidefiles.scheduler_lock(db_path)):
        return None
    try:
        with open(sidefiles.schedule_note(db_path), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"pid": None, "next_run": None}


def _when(moment) -> str:
    """A stored time to the second (they are kept to the microsecond), or '-'."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if hasattr(moment, "strftime") else (str(moment) if moment else "-")


def _count(n, one: str, many: str | None = None) -> str:
    n = n or 0
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{int(seconds)}s ago"


def format_status(path: str, info: dict) -> str:
    """`store_status` as the lines `sentry-mirror status` prints."""
    lines = [f"store: {path}"]
    if not info["sources"]:
        rows = info.get("unsynced_rows") or {}
        if any(rows.values()):  # what `hooks serve` stored before any sync
            return (f"store {path} has never synced; webhooks stored {_count(rows['events'], 'event')} and "
                    f"{_count(rows['issues'], 'issue')}: run 'sentry-mirror sync' for the rest")
        return f"store {path} has never synced: run 'sentry-mirror sync'"
    scheduler = info.get("scheduler")
    if scheduler:
        lines.append(f"scheduler: running (process {scheduler.get('pid')}), next run {scheduler.get('next_run') or '?'}")
    for name, src in info["sources"].items():
        if src["last_success"]:
            lines.append(f"source {name}: last successful sync {_when(src['last_success'])} UTC "
                         f"({_ago(src['lag_seconds'])})")
        else:
            lines.append(f"source {name}: no successful sync yet")
        if src.get("organization_gone_at"):
            lines.append(f"  organization gone: no longer listed for the token since {_when(src['organization_gone_at'])} "
                         "UTC; its rows are kept, no longer synced")
        run = src.get("last_run")
        if run:
            figures = (f"{_count(run['requests'], 'request')}, {_count(run['retries'], 'retry', 'retries')}, "
                       f"{run['rate_limited'] or 0} 429s")
            took = f", {run['seconds']:.1f}s" if run.get("seconds") is not None else ""
            lines.append(f"  last run: {_when(run['started_at'])} UTC, {run['status']}{took}, {figures}")
            if run.get("error"):
                lines.append(f"  last error: {run['error']}")
        if src.get("clock"):
            lines.append(f"  clock: {src['clock']}")
        if src.get("issue_webhooks_at"):
            lines.append(f"  issue webhooks: last received {_when(src['issue_webhooks_at'])} UTC (within a day, syncs "
                         "re-read refresh_with_hooks known issues a project)")
        lines.append("  rows: " + ", ".join(f"{t} {n:,}" for t, n in src["rows"].items()))
        if src.get("issues_by_status"):
            lines.append("  issues by status: " + ", ".join(f"{k} {v:,}" for k, v in src["issues_by_status"].items()))
        for stream in src.get("streams", []):
            extra = ""
            if stream.get("last_rows") is not None:
                extra = f", last run {_count(stream['last_rows'], 'row')} in {_count(stream['last_requests'], 'request')}"
            if stream.get("last_error"):
                extra += f", FAILED: {stream['last_error'][:120]}"
            resume = "  (interrupted: will resume)" if stream["resume_pending"] else ""
            if stream["updated_at"]:
                updated = f"updated {_when(stream['updated_at'])}"
            else:  # streams that keep no cursor (stats start from their latest stored bucket)
                updated = "no cursor" if stream.get("last_rows") is not None else "not yet stored"
            lines.append(f"  {stream['stream']:<18} {updated}{extra}{resume}")
        if src.get("cadences"):
            lines.append("  read whole on a cadence (sync --refresh NAME reads one now):")
        for c in src.get("cadences", []):
            lines.append(f"    {c['stream']:<18} every {c['every_hours']:g} h, last read {_when(c['last_read'])} UTC, "
                         f"next due {_when(c['next_due'])} UTC")
    return "\n".join(lines)


def demo_summary(con: duckdb.DuckDBPyConnection, truth: dict, first, second) -> str:
    lines = []
    status = dict(con.execute(f"SELECT {shown_status()}, count(*) FROM issues GROUP BY 1 ORDER BY 2 DESC").fetchall())
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
            "SELECT short_id, project, title, status, times_seen, user_count FROM issue_summary "
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


def query_rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, str] | None = None) -> Rows:
    """A user's SQL on a read-only connection, its rows streamed: whatever it says, it cannot change
    the store, nor read or write other files (DuckDB's external access is off: no
    read_csv('/etc/…'), no COPY TO, no ATTACH; --csv writes the result where the shell says).
    `params` are bound to the SQL's `$name`s. The connection stays open for the rows: the caller
    closes it."""
    if not sql.strip():
        raise ConfigError("no SQL given", hint='e.g. sentry-mirror query "SELECT count(*) FROM issues"')
    try:
        con.execute("SET enable_external_access = false")
        result = con.execute(sql, params) if params else con.execute(sql)
        if result.description is None:
            raise ConfigError("the statement returned no rows to show", hint="query runs SELECT statements")
        return Rows.of(result)
    except (duckdb.IOException, duckdb.SerializationException):
        raise  # a damaged file, said as such by the CLI
    except duckdb.PermissionException:
        raise ConfigError("query reads the store only: files, COPY TO and ATTACH are off",
                          hint="write results with --csv > file.csv, or open the store in DuckDB yourself") from None
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0]
        hint = None
        if "parameter" in message.lower() or "prepared statement" in message.lower():
            hint = "each $name in the SQL takes a --param name VALUE, and each --param names a $name in it"
        raise ConfigError(f"query failed: {message}", hint=hint) from None


def count_rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, str] | None = None) -> int | None:
    """How many rows the query answers, counted by DuckDB (for "N more rows" under a table cut
    short), or None when the SQL is not one query that can be counted so."""
    body = sql.strip().rstrip(";")
    try:
        cursor = con.cursor()  # the query's own result is still being read on `con`
        try:
            return cursor.execute(f"SELECT count(*) FROM ({body}\n)", params or None).fetchone()[0]
        finally:
            cursor.close()
    except duckdb.Error:
        return None


_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_when(value: str | None, flag: str) -> datetime | None:
    """YYYY-MM-DD, an ISO-8601 time (UTC unless it says otherwise), or a span back from now (7d, 24h)."""
    if value is None:
        return None
    text = value.strip()
    span = _SPAN.match(text.lower())
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        if span:
            n, unit = int(span.group(1)), span.group(2)
            return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: n})
        parsed = parse_ts(text)
        if parsed is None:
            raise ValueError(text)
        return parsed
    except (ValueError, OverflowError):
        raise ConfigError(f"bad date for {flag}: {value!r}",
                          hint="use YYYY-MM-DD, an ISO time like 2025-01-31T12:00, or a span like 7d or 24h") from None


def check_source(con: duckdb.DuckDBPyConnection, source: str | None) -> None:
    """A --source that the store does not mirror is a mistake worth a line, not an empty answer."""
    if source and not con.execute("SELECT EXISTS (SELECT 1 FROM projects WHERE source = ?) "
                                  "OR EXISTS (SELECT 1 FROM issues WHERE source = ?)", [source, source]).fetchone()[0]:
        known = [r[0] for r in con.execute("SELECT DISTINCT source FROM projects ORDER BY 1").fetchall()]
        raise ConfigError(f"no source '{source}' in the store", hint="known: " + (", ".join(known) or "none"))


def check_project(con: duckdb.DuckDBPyConnection, project: str | None, source: str | None = None) -> None:
    """An unknown --project (of --source, if given) is one line naming the known ones."""
    if project and not con.execute("SELECT EXISTS (SELECT 1 FROM projects WHERE slug = ? "
                                   "AND (?::VARCHAR IS NULL OR source = ?))", [project, source, source]).fetchone()[0]:
        known = [r[0] for r in con.execute("SELECT DISTINCT slug FROM projects WHERE ?::VARCHAR IS NULL OR source = ? "
                                           "ORDER BY 1", [source, source]).fetchall()]
        raise ConfigError(f"no project '{project}' in the store", hint="known: " + (", ".join(known[:20]) or "none"))


ISSUE_OPTIONAL = ("stored", "first_release", "first_seen", "level", "project")  # left out first on a narrow terminal

def issue_rows(con: duckdb.DuckDBPyConnection, *, since=None, until=None, status=None, project=None,
               sort="freq", limit=20, source=None, query=None, environment=None, me=None, now=None) -> Rows:
    """Issues from the issue_summary view; every filter is a bound parameter, never pasted into SQL.
    `query` is Sentry's issue search (reading/search), `sort` Sentry's sort names (date, new, freq,
    user, priority) or the mirror's older ones. The connection stays open for the rows: the caller
    closes it."""
    from .search import issue_filter, sort_order

    shown = shown_status("i")  # from issues itself: a store's view from before 'deleted' lacks it
    where, params = [], []
    for condition, value in (("s.source = ?", source), ("s.last_seen >= ?", since), ("s.first_seen < ?", until),
                             (f"{shown} = ?", status), ("s.project = ?", project)):
        if value is not None:
            where.append(condition)
            params.append(value)
    order = sort_order(sort)
    if query or environment:
        searched, args = issue_filter(con, query, now=now or datetime.now(timezone.utc), environment=environment,
                                      me=me, live=status != "deleted")  # --status deleted asks for the dead
        where.append(searched)
        params.extend(args)
    sql = (
        # Sentry's own counters side by side (what its issue page shows), then what the mirror holds
        # of the issue: with sampled events, or past retention, the two differ.
        f"SELECT s.short_id, s.project, {shown} AS status, s.level, s.times_seen AS events, "
        "s.user_count AS users, s.stored_events AS stored, s.first_seen, s.last_seen, s.first_release, s.title "
        "FROM issue_summary s JOIN issues i ON i.source = s.source AND i.id = s.issue_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY {order} NULLS LAST, s.issue_id LIMIT ?"
    )
    try:
        check_source(con, source)
        check_project(con, project, source)
        return Rows.of(con.execute(sql, params + [limit]))
    except duckdb.CatalogException:
        raise ConfigError("this store has no issues yet", hint="run 'sentry-mirror sync' first") from None
