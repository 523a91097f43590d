"""The store a notebook reads, found as the reading commands find theirs, with no --db to pass:
SENTRY_MIRROR_DB, else SENTRY_MIRROR_CONFIG's `db`, else the default (`options.reader_db`).

A relative path is taken from the folder Jupyter was started in, not the notebook's folder where
its kernel runs: the kernel inherits the launching shell's PWD, so the notebook reads the same file
that `sentry-mirror status` finds when run in that shell. It lives in running/ (not reading/)
because it reuses the CLI's resolver, which lives here.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from ..errors import StoreError
from ..storage.store import open_readonly, require_store
from .options import reader_db

HINT = ("set SENTRY_MIRROR_DB=/path/to/store.duckdb before 'jupyter lab', a relative path being taken from "
        "the folder you start it in; or run 'sentry-mirror demo' and start Jupyter with SENTRY_MIRROR_DB=demo.duckdb")


def launch_dir() -> Path:
    """Where the user started Jupyter: the PWD the kernel inherits; else the kernel's own folder."""
    pwd = os.environ.get("PWD")
    return Path(pwd) if pwd and os.path.isabs(pwd) and os.path.isdir(pwd) else Path.cwd()


def notebook_store() -> Path:
    """The store's absolute path, checked to be a sentry-mirror store (else one StoreError saying
    how to point at one). Read it with `read_df(path, sql)`: a connection per query lets a sync
    running beside the notebook go on."""
    base = launch_dir()
    config = os.environ.get("SENTRY_MIRROR_CONFIG") or None
    db = reader_db(os.environ.get("SENTRY_MIRROR_DB") or None,
                   str(base / os.path.expanduser(config)) if config else None)
    path = base / os.path.expanduser(db)
    if not path.is_file():
        raise StoreError(f"no store at {path}", hint=HINT)
    try:
        open_store(path).close()  # a clear error now rather than "table issues does not exist" later
    except StoreError as exc:
        if exc.hint and "--db" in exc.hint:  # the CLI's advice: a notebook has no --db
            raise StoreError(exc.message, hint=HINT) from None
        raise
    return path


def open_store(path: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the notebook's store (or `path`). Close it soon: a sync waits for
    it (`storage.store.open_readonly`)."""
    path = str(path or notebook_store())
    return require_store(open_readonly(path), path)
