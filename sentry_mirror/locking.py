"""One writer per store: an OS advisory lock beside the store file.

The kernel releases the lock when the process dies, so a killed sync never leaves a stale lock
that someone must delete by hand. DuckDB's own file lock is not enough, because the syncer lets go
of the file between pages so that readers can get in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from .errors import StoreError


def writer_lock(db_path: str):
    """Held by a sync while it runs."""
    return process_lock(db_path + ".lock", f"another sync is already writing {db_path}",
                        "wait for it to finish; only one sync may write a store at a time", skip=db_path == ":memory:")


def scheduler_lock(db_path: str):
    """Held by a `schedule` daemon for its whole life: a second daemon on the same store exits."""
    return process_lock(db_path + ".scheduler.lock", f"a scheduler is already running for {db_path}",
                        "stop it first, or use another --db", skip=db_path == ":memory:")


@contextlib.contextmanager
def process_lock(lock_path: str, busy: str, hint: str, *, skip: bool = False) -> Iterator[None]:
    if skip:
        yield
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {lock_path}: {exc.strerror}",
                         hint="check that the store's folder is writable") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise StoreError(f"{busy}{who}", hint=hint) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
