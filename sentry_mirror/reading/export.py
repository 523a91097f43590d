"""`export parquet`: the store as Parquet files that DuckDB, Spark, Trino, ClickHouse and pandas
read as they are.

Events and their detail tables are partitioned `source=…/project_id=…/month=YYYY-MM/` (hive
style); the partition columns are also kept inside the files, so a reader that ignores the
folder names (or infers their types) still gets the exact values. The export is written beside
the target and swapped in when complete, so a rerun or a crash never leaves half an export.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from ..errors import ConfigError, StoreError
from ..filemodes import give_to_user, user_umask

# Partitioned tables: how to reach their event (for the project and month).
EVENT_TABLES = ("events", "event_tags", "event_exceptions", "event_frames", "event_contexts")
# Tables limited by --since, and the time column that limits them.
SINCE_COLUMNS = {"issue_status_history": "observed_at", "project_stats": "ts", "org_stats": "ts"}


def export_parquet(con: duckdb.DuckDBPyConnection, directory: str, *, since: datetime | None = None) -> dict[str, int]:
    """Write every table; returns rows written per table."""
    # A link to the export folder is followed once, here: the staging folder and both renames
    # then work on the real folder (renaming the link replaced it, and failed across file systems).
    target = Path(directory).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{directory} exists and is not a folder", hint="choose another folder for the export")
    if target.exists() and any(target.iterdir()) and not (target / "_sentry_mirror_export").exists():
        raise ConfigError(f"{directory} is not empty and holds no earlier export; not replacing it",
                          hint="choose a new or empty folder")
    parent = target.parent
    staging = parent / f".{target.name}.partial-{os.getpid()}"
    try:
        with user_umask():  # the user's folders, as the export itself
            parent.mkdir(parents=True, exist_ok=True)  # `export parquet exports/acme` with no exports/ yet
        _remove_leftovers(parent, target.name)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot write in the folder {parent}: {exc.strerror}", hint="choose another folder") from None
    written: dict[str, int] = {}
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = 'main' ORDER BY 1").fetchall()]
        for table in tables:
            query, params = _select(table, since)
            n = con.execute(f"SELECT count(*) FROM ({query})", params).fetchone()[0]
            out = staging / table
            if table in EVENT_TABLES:
                out.mkdir()
                if n:
                    con.execute(f"COPY ({query}) TO '{_quoted(out)}' (FORMAT parquet, COMPRESSION zstd, "
                                "PARTITION_BY (source, project_id, month), WRITE_PARTITION_COLUMNS true)", params)
            else:
                out.mkdir()
                con.execute(f"COPY ({query}) TO '{_quoted(out / 'data.parquet')}' (FORMAT parquet, COMPRESSION zstd)",
                            params)
            written[table] = n
        (staging / "_sentry_mirror_export").write_text(
            f"sentry-mirror export; since {since.isoformat() if since else 'the beginning'}\n", encoding="utf-8")
        give_to_user(staging)  # written owner-only (DuckDB may spill beside the store meanwhile); now the user's
        _swap(staging, target)
    except duckdb.Error as exc:
        raise StoreError(f"export failed: {str(exc).strip().splitlines()[0]}", hint="nothing was replaced") from None
    except OSError as exc:
        raise StoreError(f"export failed: {exc.strerror}: {exc.filename}", hint="nothing was replaced") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _remove_leftovers(parent: Path, name: str) -> None:
    """Staging and old folders of exports that were killed (their process is gone): gigabytes at
    scale, and named by process id, so no later export would ever reuse them."""
    for path in parent.glob(f".{name}.*-*"):
        kind, _, pid = path.name[len(name) + 2:].rpartition("-")
        if kind in ("partial", "old") and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _select(table: str, since: datetime | None) -> tuple[str, list]:
    if table == "events":
        query = "SELECT *, strftime(date_created, '%Y-%m') AS month FROM events"
        return (query + " WHERE date_created >= ?", [since]) if since else (query, [])
    if table in EVENT_TABLES:
        query = (f"SELECT d.*, e.project_id, strftime(e.date_created, '%Y-%m') AS month FROM {table} d "
                 "LEFT JOIN events e ON e.source = d.source AND e.event_id = d.event_id")
        return (query + " WHERE e.date_created >= ?", [since]) if since else (query, [])
    if since and table in SINCE_COLUMNS:
        return f"SELECT * FROM {table} WHERE {SINCE_COLUMNS[table]} >= ?", [since]
    return f"SELECT * FROM {table}", []


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _swap(staging: Path, target: Path) -> None:
    """Put the finished export in place of the old one: two renames, the old one removed after."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)  # put the previous export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
