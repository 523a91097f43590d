"""The DuckDB store: migrations, bulk upserts from `.sql` files, sync bookkeeping, views.

DuckDB lets one process write a file, and while it holds the file no other process can open it,
not even read-only. So the writer lets go of the file between pages: as soon as a reader says it
is waiting (`locking.ReaderSignal`), the writer commits the pages in hand with their cursors and
closes the file; the reader opens it read-only and sees everything committed so far. Without that
signal the writer still closes the file after each lease of `lease_seconds`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import stat
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import duckdb

from ..errors import Interrupted, StoreError
from .locking import ReaderSignal
from .sqlfiles import load_sql, migrations, params_for, statements, view_files

log = logging.getLogger(__name__)

DUCKDB_MAGIC = b"DUCK"
# The writer's DuckDB memory limit. The syncer's resident memory is about 75 MB of Python and
# libraries, plus this, plus what DuckDB holds outside it: a medium first sync peaks near 260 MB.
# 96 MB took 30 MB off that but made the sync 5% slower, its batches parsed in smaller slices to
# fit. Parsing works in slices that fit (SLICE_BYTES, OBJECT_SLICE_BYTES, narrow_slices).
MEMORY_LIMIT = "128MB"

# Key fields of each entity, as found in the raw JSON (first present name wins); used to
# de-duplicate a batch before the upsert, because one INSERT … ON CONFLICT may not touch a row twice.
# Within one context (the project, release or issue a list was read under).
ENTITY_KEYS: dict[str, tuple[str | int, ...]] = {
    "organizations": ("id",),
    "projects": ("id",),
    "issues": ("id",),
    "issue_hashes": ("id",),
    "issue_tag_values": ("value",),
    "events": ("eventID", "event_id", "id"),
    "releases": ("version",),
    "teams": ("id",),
    "members": ("id",),
    "environments": ("name",),
    "deploys": ("id",),
    "tag_values": ("value", "name"),
    "project_users": ("tagValue",),
    "project_tag_keys": ("key",),
    "project_hooks": ("id",),
    "project_stats": (0,),  # [unix_seconds, count]
    "org_stats": ("key",),
}


# Snapshot tables: (key column, the raw fields holding the key, context fields that scope a walk).
PRUNE_KEYS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "teams": ("id", ("id",), ()),
    "members": ("id", ("id",), ()),
    "environments": ("name", ("name",), ()),
    "tag_values": ("value", ("value", "name"), ("project_id", "key")),
    "project_users": ("tag_value", ("tagValue",), ("project_id",)),
    "project_tag_keys": ("key", ("key",), ("project_id",)),
    "project_hooks": ("hook_id", ("id",), ("project_id",)),
}


# Entities stored from whole pages of JSON text (`upsert_pages`), parsed by DuckDB: their lists are
# the big ones (full event payloads), where decoding in Python cost more than everything else.
PAGE_ENTITIES = {"events"}
# How much of a batch's JSON text DuckDB parses at once: pages of events, then the events
# (upsert_pages); other objects (upsert), whose statements parse each object once per field.
# A batch of typical events (WriteBuffer: 1,000 or 8 MB) is parsed whole; a batch too dense for
# the memory limit fails once and the store narrows its slices (narrow_slices).
SLICE_BYTES = 8_000_000
OBJECT_SLICE_BYTES = 256_000
# DuckDB's row-group merges wait (see Store.merge_if_due) until a full row group's worth of
# events (DuckDB's default size) sits in small row groups, or the store holds this many small
# row groups (a row group under half the default size is small).
MERGE_EVERY_ROWS = 122_880
MAX_SMALL_ROW_GROUPS = 256

# Statements that run with the same page of objects in the same transaction: before the upsert
# (to compare with what is stored) and after it (tables derived from the objects).
COMPANIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "issues": (("issues_history",), ()),
    "events": ((), ("event_tags", "event_exceptions", "event_contexts")),
}


# The `_sync_state` row (stream, scope) where the hook writer notes when a source's integration issue
# webhooks last arrived: while they do, its syncs re-read fewer known issues (`refresh_with_hooks`).
ISSUE_HOOKS = ("_hooks", "issue")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def assignee_text(value: Any) -> str | None:
    """An issue's `assignedTo` object as sql/upserts/issues.sql stores it in `assigned_to`:
    type:email, else type:name, else type:id (for the writes stored from Sentry's answer)."""
    if not isinstance(value, dict):
        return None
    return f"{value.get('type')}:{value.get('email') or value.get('name') or value.get('id')}"


class Store:
    """The one writer of a store file."""

    def __init__(self, path: str | os.PathLike, *, lease_seconds: float = 1.0, reader_wait: float = 600.0,
                 min_hold: float = 0.3, stop: threading.Event | None = None):
        self.path = str(path)
        self.stop = stop  # a sync asked to stop does not wait out a reader (up to reader_wait)
        self.lease_seconds = lease_seconds
        self.min_hold = min_hold
        self.reader_wait = reader_wait
        self._con: duckdb.DuckDBPyConnection | None = None
        self._leased_at = 0.0
        self._in_tx = False
        self._views_sql: list[tuple[str, str]] = []
        self.statement_seconds: dict[str, float] = {}  # time spent per upsert statement and in commits
        self.slice_bytes, self.object_slice_bytes = SLICE_BYTES, OBJECT_SLICE_BYTES  # see narrow_slices
        self._appended_since_merge = 0  # events appended since the last merge (merge_if_due)
        self._readers = ReaderSignal(self.path) if self.path != ":memory:" else None
        if self.path != ":memory:":
            check_store_path(self.path)
        self.migrate()

    # -- connection leases -------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            created = self.path != ":memory:" and not os.path.exists(self.path)
            with self._readers.writer_reopening() if self._readers else contextlib.nullcontext():
                self._con = self._open_for_writing()
            if created:
                _owner_only(self.path)
            self._leased_at = time.monotonic()
        return self._con

    def _open_for_writing(self) -> duckdb.DuckDBPyConnection:
        started = time.monotonic()
        warned = False
        while True:
            try:
                # DuckDB's buffer pool defaults to 80% of RAM and grows with the data written; the
                # syncer writes pages and re-reads little, so a small pool keeps its memory flat.
                con = duckdb.connect(self.path, config={"memory_limit": MEMORY_LIMIT,
                                                        "preserve_insertion_order": False})
                con.execute("SET TimeZone = 'UTC'")  # a time sent without an offset is UTC (iso_ts)
                con.execute("SET max_vacuum_tasks = 0")  # merges when due only (merge_if_due)
                # Fewer, bigger row groups between merges: a medium first sync's store was 96 MB
                # at DuckDB's 16 MB, 80 MB at 32 MB (the leases' checkpoints then set the pace).
                con.execute("SET checkpoint_threshold = '32MB'")
                return con
            except duckdb.IOException as exc:
                # A reader (report, query, a notebook) has the file open: wait for it to close it.
                waited = time.monotonic() - started
                if "lock" not in str(exc).lower():
                    raise StoreError(f"cannot open the store {self.path}: {_first_line(exc)}", hint=io_hint(exc)) from None
                if self.stop is not None and self.stop.is_set():
                    raise Interrupted.stopped()
                if waited >= self.reader_wait:
                    raise StoreError(_lock_message(self.path, exc),
                                     hint="close the program reading the store (a notebook keeps it open "
                                          "until its connection is closed), or wait for it") from None
                if not warned and waited >= 10:
                    log.warning("waiting for a reader to close %s (%s)", self.path, _lock_message(self.path, exc))
                    warned = True
                time.sleep(0.05)
            except duckdb.Error as exc:
                raise StoreError(f"cannot open the store {self.path}: {_first_line(exc)}") from None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A connection for reads made by the writer itself (status, tests)."""
        return self._connect()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; rows and the cursor that covers them commit together or not at all."""
        if self._in_tx:
            yield self._connect()
            return
        con = self._connect()
        con.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield con
        except BaseException:
            self._in_tx = False
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        self._in_tx = False
        started = time.perf_counter()
        merge = self._merge_due()
        try:
            if merge:
                con.execute("RESET max_vacuum_tasks")  # should the commit checkpoint, it merges
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
                if merge:
                    con.execute("SET max_vacuum_tasks = 0")
            raise StoreError(f"could not commit to {self.path}: {_first_line(exc)}",
                             hint="check free disk space and permissions; nothing from this page was stored") from None
        started = self._clock("commit", started)
        if merge:
            self._merge(con)
            self._clock("merge (checkpoint)", started)
        self.maybe_release()

    def merge_if_due(self) -> bool:
        """Have the next commit merge the store's small row groups, if enough have piled up.

        Each checkpoint (every lease, every 32 MB of WAL) puts the rows appended since the last one
        in a new row group, and DuckDB's vacuum, left on, merges the small ones into the last,
        partly full row group at every checkpoint. At a thousand events per batch that rewrote the
        stored events again and again, the more the fuller that row group got: at a million events
        the commits took 170 of the first sync's 445 s. So the writer turns the vacuum off and
        merges in one go when a full row group's worth of events sits in small row groups (counted
        as they are appended, and here from the store itself), or when the store holds
        MAX_SMALL_ROW_GROUPS of them: each event is rewritten about once, and the blocks a merge
        frees are reused by the next appends. A store smaller than a row group stays in small row
        groups rather than be written twice over (merging a first sync of 74,000 events at its
        end left the file twice its size)."""
        if self.path == ":memory:":
            return False
        try:
            small_events, small_groups = self._small_row_groups()
        except duckdb.Error as exc:  # only the merge waits; never fail a sync over it
            log.warning("could not count the store's row groups: %s", _first_line(exc))
            return False
        if small_events >= MERGE_EVERY_ROWS or small_groups >= MAX_SMALL_ROW_GROUPS:
            self._appended_since_merge = MERGE_EVERY_ROWS
            return True
        return False

    def _small_row_groups(self) -> tuple[int, int]:
        """(events in the events table's small row groups, small row groups in all tables)."""
        con = self._connect()
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database()").fetchall()]
        events = groups = 0
        for table in tables:
            sizes = [r[0] for r in con.execute(
                f"SELECT max(count) FROM pragma_storage_info('{table}') GROUP BY row_group_id").fetchall()]
            small = [n for n in sizes if n < MERGE_EVERY_ROWS // 2]
            groups += len(small)
            if table == "events":
                events = sum(small)
        return events, groups

    def _merge_due(self) -> bool:
        return self.path != ":memory:" and self._appended_since_merge >= MERGE_EVERY_ROWS

    def _merge(self, con: duckdb.DuckDBPyConnection) -> None:
        """Checkpoint with DuckDB's vacuum on. A checkpoint with any change in the WAL merges every
        table's small row groups; this one follows a commit, which left one there unless it
        checkpointed (and merged) itself. Then the vacuum is off again."""
        try:
            con.execute("CHECKPOINT")
            con.execute("SET max_vacuum_tasks = 0")
        except duckdb.Error as exc:  # committed already; the next merge, or the next sync's, catches up
            log.warning("could not merge the store's row groups: %s", _first_line(exc))
            with contextlib.suppress(duckdb.Error):
                self.release()  # a fresh connection has the vacuum off again
        self._appended_since_merge = 0

    def readers_waiting(self) -> bool:
        """A reader waits, and this writer has had the file long enough to give it up now. (Each
        hand-over costs a checkpoint and a reopen; `min_hold` keeps readers in a tight loop from
        turning every page into its own transaction.)"""
        if self._readers is None or self._con is None or time.monotonic() - self._leased_at < self.min_hold:
            return False
        return self._readers.readers_waiting()

    def maybe_release(self) -> None:
        """Close the file when a reader waits for it, or once the current lease is long enough."""
        if self.path == ":memory:" or self._in_tx or self._con is None:
            return
        if time.monotonic() - self._leased_at >= self.lease_seconds or self.readers_waiting():
            self.release()

    def release(self) -> None:
        if self._con is not None and self.path != ":memory:":
            started = time.perf_counter()
            con, self._con = self._con, None
            try:
                con.close()  # checkpoints: writes what the WAL holds into the file
            except duckdb.Error as exc:
                raise StoreError(f"could not write {self.path}: {_first_line(exc)}", hint=io_hint(exc)) from None
            self._clock("close (checkpoint)", started)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._readers is not None:
            self._readers.close()

    def _clock(self, label: str, started: float) -> float:
        """Add the time since `started` to `statement_seconds[label]` (the benchmark prints them)."""
        now = time.perf_counter()
        self.statement_seconds[label] = self.statement_seconds.get(label, 0.0) + now - started
        return now

    # -- schema ------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending numbered migrations, each in one transaction with its `_migrations` row."""
        con = self._connect()
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database()").fetchall()}
        if tables and "_migrations" not in tables:  # someone else's database: never write into it
            self.close()
            raise StoreError(f"{self.path} is a DuckDB file but not a sentry-mirror store (it holds other tables)",
                             hint="pass another --db; this file was left untouched")
        con.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)")
        done = {row[0] for row in con.execute("SELECT name FROM _migrations").fetchall()}
        known = migrations()
        unknown = done - {name for name, _ in known}
        if unknown:
            raise StoreError(f"the store {self.path} was written by a newer sentry-mirror (migrations {sorted(unknown)})",
                             hint="upgrade sentry-mirror, or use another --db")
        applied = []
        for name, sql in known:
            if name in done:
                continue
            try:
                with self.transaction() as tx:
                    tx.execute(sql)
                    tx.execute("INSERT INTO _migrations VALUES (?, ?)", [name, utcnow()])
            except duckdb.Error as exc:
                raise StoreError(f"migration {name} failed on {self.path}: {_first_line(exc)}") from None
            applied.append(name)
        return applied

    def missing_views(self) -> list[str]:
        """The view files (sql/views/, each named after the view or macro it makes) whose view or
        macro the store lacks: a store only `hooks serve` wrote had none, and every report failed."""
        there = {r[0] for r in self._connect().execute(
            "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
            "UNION ALL SELECT function_name FROM duckdb_functions() "
            "WHERE database_name = current_database() AND function_type IN ('macro', 'table_macro')").fetchall()}
        return [name for name, _ in view_files() if name not in there]

    def create_views(self) -> list[str]:
        """(Re)create the SQL views whose tables (and views) exist; a view is skipped until what its
        `-- requires:` line names is there. Views that require views come after them."""
        created: list[str] = []
        pending = view_files()
        while pending:
            # a connection each time: a commit may have handed the file to a reader meanwhile
            there = {r[0] for r in self._connect().execute("SELECT table_name FROM information_schema.tables").fetchall()}
            ready = [(name, sql) for name, sql in pending if not _requires(sql) - there]
            if not ready:
                break  # the rest wait for tables a later sync brings
            for name, sql in ready:
                with self.transaction() as tx:
                    tx.execute(sql)
                created.append(name)
            pending = [(name, sql) for name, sql in pending if name not in created]
        return created

    # -- writes ------------------------------------------------------------------------------

    def upsert(self, entity: str, items: Iterable[Any], *, source: str, contexts: Iterable[dict | None] | None = None,
               observed_at: datetime | None = None) -> int:
        """Bulk upsert raw API objects through `sql/upserts/<entity>.sql`; return the batch size.

        `contexts` (aligned with `items`) says where each object was listed: the issue of an event
        (for servers whose event lists omit it), the project of a tag value, the release of a deploy.
        """
        items = list(items)
        ctx = [json.dumps(c, sort_keys=True) if c else None for c in contexts] if contexts is not None else [None] * len(items)
        if entity in PAGE_ENTITIES:  # objects handed over as Python values: one page per context
            groups: dict[str | None, list] = {}
            for item, c in zip(items, ctx):
                groups.setdefault(c, []).append(item)
            pages = [(json.dumps(group, ensure_ascii=False), json.loads(c) if c else None) for c, group in groups.items()]
            self.upsert_pages(entity, pages, source=source, observed_at=observed_at)
            return len(items)
        pairs = _dedupe(zip(items, ctx), ENTITY_KEYS[entity])
        if not pairs:
            return 0
        before, after = COMPANIONS.get(entity, ((), ()))
        rows = [json.dumps(item, ensure_ascii=False) for item, _ in pairs]
        params = self._batch_params(source, observed_at)
        with self.transaction() as con:
            try:
                # The objects go into a temp table that every statement reads, a slice at a time:
                # each `j->>'field'` parses the objects anew with parser memory of its own, and
                # 500 issues shaped like Sentry's example (1.2 MB) needed over 128 MB at once.
                for lo, hi in _slices([len(r) for r in rows], self.object_slice_bytes):
                    con.execute("CREATE OR REPLACE TEMP TABLE _page AS "
                                "SELECT unnest($rows::JSON[]) AS j, unnest($ctx::JSON[]) AS ctx",
                                {"rows": rows[lo:hi + 1], "ctx": [ctx for _, ctx in pairs[lo:hi + 1]]})
                    self._run_upserts(con, (*before, entity, *after), params)
                con.execute("DROP TABLE _page")
            except duckdb.Error as exc:
                raise _write_error(f"could not store {len(pairs)} {entity}", exc) from None
        return len(pairs)

    def _run_upserts(self, con: duckdb.DuckDBPyConnection, names: Iterable[str], params: dict[str, Any],
                     slices: dict[str, Callable[[], list[tuple[int, int]]]] | None = None) -> None:
        """Run `sql/upserts/<name>.sql` files in order, each statement timed (statement_seconds).

        A statement that uses `$<kind>_lo` and `$<kind>_hi` runs once per slice that
        `slices[kind]()` returns (inclusive bounds): the page batches parse a few pages at a time.
        """
        started = time.perf_counter()
        for name in names:
            for n, statement in enumerate(statements(load_sql("upserts", name)), 1):
                own = params_for(statement, params)
                kind = next((k for k in (slices or {}) if f"${k}_lo" in statement), None)
                if kind is None:
                    con.execute(statement, own)
                else:
                    for lo, hi in slices[kind]():
                        con.execute(statement, {**own, f"{kind}_lo": lo, f"{kind}_hi": hi})
                started = self._clock(f"{name}.sql #{n}", started)

    def narrow_slices(self) -> bool:
        """Parse a quarter as much at once from now on (after DuckDB ran out of memory on a batch:
        memory follows how many values a text holds, not only its size); False at one object."""
        if self.slice_bytes <= 1 and self.object_slice_bytes <= 1:
            return False
        self.slice_bytes = max(1, self.slice_bytes // 4)
        self.object_slice_bytes = max(1, self.object_slice_bytes // 4)
        return True

    @staticmethod
    def _batch_params(source: str, observed_at: datetime | None) -> dict[str, Any]:
        """One clock reading per batch: every slice of it gets the same `synced_at`."""
        now = utcnow()
        return {"source": source, "synced_at": now, "observed_at": observed_at or now}

    def upsert_pages(self, entity: str, pages: list[tuple[str, dict | None]], *, source: str,
                     observed_at: datetime | None = None) -> int:
        """Bulk upsert whole pages as the server sent them (JSON array text, and the context they
        were listed under); DuckDB parses them, so no event is decoded in Python. Returns how many
        objects were new or changed."""
        if not pages:
            return 0
        before, after = COMPANIONS.get(entity, ((), ()))
        # DuckDB parses a whole vector of values at once, with parser memory of several times
        # their size: a batch's pages parsed in one go took over 100 MB of the memory limit, and a
        # batch of big events (9 MB) failed with DuckDB's out-of-memory error. So the statements
        # that parse run once per slice of at most SLICE_BYTES: of the pages, then of the objects.
        page_slices = _slices([len(text) for text, _ in pages], self.slice_bytes)
        params = self._batch_params(source, observed_at)
        with self.transaction() as con:
            try:
                # One row per page, bound as a parameter: the text is copied once, never decoded.
                started = time.perf_counter()
                con.execute("CREATE OR REPLACE TEMP TABLE _incoming (n INTEGER, p VARCHAR, ctx VARCHAR)")
                con.executemany("INSERT INTO _incoming VALUES (?, ?, ?)",
                                [[i, text, json.dumps(c, sort_keys=True) if c else None]
                                 for i, (text, c) in enumerate(pages)])
                self._clock("pages in", started)

                def row_slices() -> list[tuple[int, int]]:
                    # ranges of the parsed objects' rowids (DuckDB numbers the rows a transaction
                    # adds from about 2**55 up), each holding at most `slice_bytes` of their text
                    rows = con.execute(f"SELECT rowid, strlen(j::VARCHAR) FROM _{entity} ORDER BY rowid").fetchall()
                    return [(rows[lo][0], rows[hi][0]) for lo, hi in _slices([n for _, n in rows], self.slice_bytes)]

                slices = {"page": lambda: page_slices, "row": functools.cache(row_slices)}
                self._run_upserts(con, (*before, entity), params, slices)
                changed = con.execute("SELECT count(*) FROM _changed").fetchone()[0]
                self._appended_since_merge += changed
                self._run_upserts(con, after, params, slices)
                con.execute("DROP TABLE _incoming")
            except duckdb.Error as exc:
                raise _write_error(f"could not store a batch of {len(pages)} {entity} pages", exc) from None
        return changed

    def prune(self, entity: str, *, source: str, context: dict | None, keep: Iterable[str]) -> int:
        """Drop rows of a snapshot table (within `context`) whose key a complete walk did not return."""
        column, _, scope_fields = PRUNE_KEYS[entity]
        where = " AND ".join(["source = ?"] + [f"{f} = ?" for f in scope_fields])
        params = [source] + [str((context or {})[f]) for f in scope_fields] + [sorted(set(keep))]
        with self.transaction() as con:
            return con.execute(f"DELETE FROM {entity} WHERE {where} AND NOT list_contains(?::VARCHAR[], {column})",
                               params).fetchone()[0]

    def select(self, name: str, **params: Any) -> list[tuple]:
        """Rows of `sql/queries/<name>.sql`: what a sync plans from (what the store holds, what
        moved since a stream was last read), kept as SQL beside the upserts and views."""
        sql = statements(load_sql("queries", name))[0]
        try:
            return self._connect().execute(sql, params_for(sql, params)).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"could not run queries/{name}: {_first_line(exc)}") from None

    def run_statements(self, kind: str, name: str, **params: Any) -> None:
        """Run a `sql/<kind>/<name>.sql` file, statement by statement, in one transaction."""
        with self.transaction() as con:
            for statement in statements(load_sql(kind, name)):
                try:
                    con.execute(statement, params_for(statement, params))
                except duckdb.Error as exc:
                    raise StoreError(f"could not run {kind}/{name}: {_first_line(exc)}") from None

    # -- sync state --------------------------------------------------------------------------

    def get_state(self, source: str, stream: str, scope: str = "") -> dict[str, Any] | None:
        row = self._connect().execute(
            "SELECT watermark, cursor, params, extra FROM _sync_state WHERE source=? AND stream=? AND scope=?",
            [source, stream, scope]).fetchone()
        if row is None:
            return None
        return {"watermark": row[0], "cursor": row[1],
                "params": json.loads(row[2]) if row[2] else None,
                "extra": json.loads(row[3]) if row[3] else {}}

    def set_state(self, source: str, stream: str, scope: str = "", *, watermark: str | None = None,
                  cursor: str | None = None, params: dict | None = None, extra: dict | None = None) -> None:
        """Write a stream's state; call inside the transaction that stores the rows it covers."""
        with self.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO _sync_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [source, stream, scope, watermark, cursor,
                 json.dumps(params) if params is not None else None,
                 json.dumps(extra, sort_keys=True) if extra else None, utcnow()])

    def apply_states(self, source: str, updates: list[tuple[str, str, str, dict]]) -> None:
        """Apply many state updates in order, as two set-based statements.

        Each update is (kind, stream, scope, fields): kind "state" sets the whole row, kind
        "cursor" sets cursor/params/extra and keeps the watermark. Updates to one (stream, scope)
        collapse to their net effect first.
        """
        net: dict[tuple[str, str], tuple[bool, dict]] = {}
        for kind, stream, scope, fields in updates:
            whole, merged = net.get((stream, scope), (False, {}))
            net[(stream, scope)] = (whole or kind == "state", {**merged, **fields})
        now = utcnow()

        def columns(rows):
            keys = list(rows)
            return {"streams": [k[0] for k in keys], "scopes": [k[1] for k in keys],
                    "watermarks": [rows[k].get("watermark") for k in keys],
                    "cursors": [rows[k].get("cursor") for k in keys],
                    "params": [json.dumps(rows[k]["params"]) if rows[k].get("params") is not None else None for k in keys],
                    "extras": [json.dumps(rows[k]["extra"], sort_keys=True) if rows[k].get("extra") else None for k in keys],
                    "source": source, "now": now}

        whole = {k: f for k, (w, f) in net.items() if w}
        partial = {k: f for k, (w, f) in net.items() if not w}
        select = """SELECT $source, unnest($streams::VARCHAR[]), unnest($scopes::VARCHAR[]),
                           unnest($watermarks::VARCHAR[]), unnest($cursors::VARCHAR[]),
                           unnest($params::VARCHAR[])::JSON, unnest($extras::VARCHAR[])::JSON, $now"""
        with self.transaction() as con:
            if whole:
                con.execute(f"INSERT OR REPLACE INTO _sync_state {select}", columns(whole))
            if partial:
                con.execute(f"""INSERT INTO _sync_state {select}
                    ON CONFLICT (source, stream, scope) DO UPDATE SET cursor = excluded.cursor,
                        params = excluded.params, extra = excluded.extra, updated_at = excluded.updated_at""",
                            columns(partial))

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, source: str, full: bool) -> int:
        with self.transaction() as con:
            return con.execute(
                "INSERT INTO _sync_runs (source, started_at, status, full_sync) VALUES (?, ?, 'running', ?) RETURNING run_id",
                [source, utcnow(), full]).fetchone()[0]

    def finish_run(self, run_id: int, status: str, *, requests: int, retries: int,
                   rows: dict[str, int], error: str | None = None, rate_limited: int = 0,
                   seconds: float | None = None, streams: dict | None = None) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE _sync_runs SET finished_at=?, status=?, requests=?, retries=?, rows_written=?, error=?, "
                "rate_limited=?, seconds=?, streams=? WHERE run_id=?",
                [utcnow(), status, requests, retries, json.dumps(rows, sort_keys=True), error, rate_limited, seconds,
                 json.dumps(streams or {}, sort_keys=True), run_id])


def _write_error(what: str, exc: duckdb.Error) -> StoreError:
    error = StoreError(f"{what}: {_first_line(exc)}")
    error.out_of_memory = isinstance(exc, duckdb.OutOfMemoryException)
    return error


def _slices(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive index ranges (inclusive) whose sizes add up to at most `limit`, one item at least."""
    out: list[tuple[int, int]] = []
    lo, total = 0, 0
    for i, size in enumerate(sizes):
        if i > lo and total + size > limit:
            out.append((lo, i - 1))
            lo, total = i, 0
        total += size
    if sizes:
        out.append((lo, len(sizes) - 1))
    return out


def _requires(sql: str) -> set[str]:
    """What a view file's `-- requires:` line names (tables, or views it reads)."""
    found = re.findall(r"--\s*requires:\s*(.+)", sql)
    return set(found[0].replace(",", " ").split()) if found else set()


def _dedupe(pairs: Iterable[tuple[Any, str | None]], key_fields: tuple[str | int, ...]) -> list[tuple[Any, str | None]]:
    """Keep the last (object, context) for each key within its context, in first-seen order.

    An object without its key cannot be mirrored faithfully and is skipped.
    """
    by_key: dict[tuple, tuple[Any, str | None]] = {}
    for item, ctx in pairs:
        if isinstance(item, dict):
            key = next((item[f] for f in key_fields if item.get(f) not in (None, "")), None)
        elif isinstance(item, list) and key_fields and isinstance(key_fields[0], int) and len(item) > key_fields[0]:
            key = item[key_fields[0]]
        else:
            key = None
        if key is not None:
            by_key[(ctx, str(key))] = (item, ctx)
    return list(by_key.values())


def check_store_path(path: str) -> None:
    """Refuse, with a clear message, a path that exists but is not a DuckDB file."""
    p = Path(path)
    if p.is_dir():
        raise StoreError(f"{path} is a directory, not a store file", hint="pass --db path/to/file.duckdb")
    parent = p.parent if str(p.parent) else Path(".")
    if not p.exists():
        if not parent.exists():
            raise StoreError(f"the folder {parent} does not exist", hint="create it or choose another --db")
        if not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create {path}: the folder {parent} is not writable", hint="choose another --db")
        return
    if p.stat().st_size == 0:
        raise StoreError(f"{path} is an empty file, not a DuckDB store", hint="remove it or choose another --db")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if DUCKDB_MAGIC not in head:
        raise StoreError(f"{path} is not a DuckDB file", hint="choose another --db; this file was left untouched")


def _owner_only(path: str) -> None:
    """Error data is sensitive: a new store is readable by its owner only."""
    for candidate in (path, path + ".wal"):
        with contextlib.suppress(OSError):
            os.chmod(candidate, stat.S_IRUSR | stat.S_IWUSR)


DAMAGED_HINT = ("the file may be damaged (cut short, overwritten): restore it from a backup, or sync into a new "
                "--db; the next sync does not repair it")


def io_hint(exc: BaseException) -> str:
    """What to do about a DuckDB IO error that is not a lock: a full disk and a permission are
    not a damaged file."""
    text = str(exc).lower()
    if "no space left" in text or "disk full" in text:
        return "the disk is full: free some space; what was committed before is kept"
    if "permission denied" in text or "read-only file system" in text:
        return "check the file's and its folder's permissions"
    return DAMAGED_HINT


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _lock_message(path: str, exc: BaseException) -> str:
    text = str(exc)
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f" (process {pid.group(1)})" if pid else ""
        return f"the store {path} is in use by another process{who}"
    return f"cannot open the store {path}: {_first_line(exc)}"


def open_readonly(path: str | os.PathLike, *, wait: float = 30.0) -> duckdb.DuckDBPyConnection:
    """Open a store for reading, even while a sync writes it.

    The reader says it is waiting; a running sync commits the pages in hand and lets go of the file
    within about a page, and this connection sees everything committed until then. Close it soon:
    while it is open the sync cannot write (it waits, up to `Store.reader_wait`).
    """
    path = str(path)
    if not os.path.exists(path):
        raise StoreError(f"no store at {path}", hint="run 'sentry-mirror sync' first, or pass --db")
    check_store_path(path)
    deadline = time.monotonic() + wait
    with ReaderSignal(path).reader_waiting(deadline):
        while True:
            try:
                con = duckdb.connect(path, read_only=True)
                # Stored times are naive UTC: `now()::TIMESTAMP` must be UTC too, not the machine's
                # local time (a notebook's "last 60 days" was nine hours off in Tokyo).
                con.execute("SET TimeZone = 'UTC'")
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():  # not busy: damaged, or unreadable
                    raise StoreError(f"cannot read the store {path}: {_first_line(exc)}", hint=io_hint(exc)) from None
                if time.monotonic() >= deadline:
                    raise StoreError(_lock_message(path, exc), hint="a sync is writing; try again in a moment") from None
                time.sleep(0.02)
            except duckdb.Error as exc:
                raise StoreError(f"cannot open the store {path}: {_first_line(exc)}") from None


def require_store(con: duckdb.DuckDBPyConnection, path: str) -> duckdb.DuckDBPyConnection:
    """`con` itself, if it is a sentry-mirror store (it has `_migrations`); else a StoreError, and
    `con` closed: every reader command says the same of someone else's DuckDB file."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_migrations' "
                       "AND database_name = current_database()").fetchone()[0]:
        con.close()
        raise StoreError(f"{path} is a DuckDB file but not a sentry-mirror store", hint="pass the --db that sync writes")
    return con


def read_df(path: str | os.PathLike, sql: str, params: list | dict | None = None):
    """One query into a pandas DataFrame on a connection of its own, closed at once: the way for a
    notebook to read a store that a sync may be writing."""
    con = open_readonly(path)
    try:
        return con.execute(sql, params).df() if params is not None else con.execute(sql).df()
    finally:
        con.close()
