"""One writer per store: an OS advisory lock beside the store file.

The kernel releases the lock when the process dies, so a killed sync never leaves a stale lock
that someone must delete by hand. DuckDB's own file lock is not enough, because the syncer lets go
of the file between pages so that readers can get in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from typing import Callable, Iterator

from ..errors import StoreError
from . import sidefiles


def writer_lock(db_path: str, *, wait: bool = False, stop: threading.Event | None = None,
                on_wait: Callable[[str], None] | None = None):
    """Held by a sync while it runs; with `wait`, a second sync waits for the first one's end."""
    return process_lock(sidefiles.writer_lock(db_path), f"another sync is already writing {db_path}",
                        "wait for it to finish (or pass --wait); only one sync may write a store at a time",
                        skip=db_path == ":memory:", wait=wait, stop=stop, on_wait=on_wait)


def scheduler_lock(db_path: str):
    """Held by a `schedule` daemon for its whole life: a second daemon on the same store exits."""
    return process_lock(sidefiles.scheduler_lock(db_path), f"a scheduler is already running for {db_path}",
                        "stop it first, or use another --db", skip=db_path == ":memory:")


def is_held(lock_path: str) -> bool:
    """Whether a live process holds this lock now (a killed one's lock is gone with it)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def process_lock(lock_path: str, busy: str, hint: str, *, skip: bool = False, wait: bool = False,
                 stop: threading.Event | None = None, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    if skip:
        yield
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {lock_path}: {exc.strerror}",
                         hint="check that the store's folder is writable") from None
    try:
        told = False
        # `status` tests the lock by taking it shared for an instant (is_held): a writer starting
        # then must not take that for another writer, so "busy" means busy for half a second.
        patience = time.monotonic() + 0.5
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                who = f" (process {holder})" if holder.isdigit() else ""
                if time.monotonic() < patience:
                    time.sleep(0.01)
                    continue
                if not wait:
                    raise StoreError(f"{busy}{who}", hint=hint) from None
                if stop is not None and stop.is_set():
                    from ..errors import Interrupted

                    raise Interrupted("stopped while waiting for the other writer") from None
                if not told and on_wait:
                    on_wait(f"{busy}{who}; waiting for it to finish")
                    told = True
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


class ReaderSignal:
    """How readers and the one writer share a store file that DuckDB lets only one process open.

    A side file `<store>.readers` carries two POSIX record locks:
    - byte 0, "readers waiting": a reader holds it shared while it waits to open the store; the
      writer probes it after every page and, when it is held, commits what it has and closes the
      file, so the reader gets in within a page and sees every page fetched so far;
    - byte 1, the turnstile: the writer holds it while it waits to reopen the file, and readers
      pass through it before announcing themselves, so a stream of readers cannot starve the sync.
    When the side file cannot be opened (a read-only folder, another user's store), everything
    falls back to the writer's timed leases.
    """

    WAITING, TURNSTILE = 0, 1

    def __init__(self, db_path: str):
        self.path = sidefiles.readers_turnstile(db_path)
        self._fd: int | None = None

    def _open(self) -> int | None:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return None
        return self._fd

    def _try(self, kind: int, byte: int) -> bool:
        fd = self._open()
        if fd is None:
            return True
        try:
            fcntl.lockf(fd, kind | fcntl.LOCK_NB, 1, byte)
            return True
        except OSError:  # EAGAIN/EACCES: someone else holds a conflicting lock
            return False

    def _unlock(self, byte: int) -> None:
        if self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, byte)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- the writer's side -------------------------------------------------------------------

    def readers_waiting(self) -> bool:
        if self._open() is None:
            return False
        if self._try(fcntl.LOCK_EX, self.WAITING):
            self._unlock(self.WAITING)
            return False
        return True

    @contextlib.contextmanager
    def writer_reopening(self, patience: float = 5.0) -> Iterator[None]:
        """Held while the writer reopens the file. Readers already waiting go first (the writer
        let go for them); newer ones queue behind the writer."""
        fd = self._open()
        if fd is not None:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, self.TURNSTILE)
        try:
            deadline = time.monotonic() + patience
            while self.readers_waiting() and time.monotonic() < deadline:
                time.sleep(0.005)
            yield
        finally:
            self._unlock(self.TURNSTILE)

    # -- a reader's side ---------------------------------------------------------------------

    @contextlib.contextmanager
    def reader_waiting(self, deadline: float) -> Iterator[None]:
        """Held by a reader until it has opened the store; `deadline` is a time.monotonic() value."""
        if self._open() is None:
            yield
            return
        try:
            while not self._try(fcntl.LOCK_SH, self.TURNSTILE):  # a writer is reopening: queue behind it
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            self._unlock(self.TURNSTILE)
            fcntl.lockf(self._fd, fcntl.LOCK_SH, 1, self.WAITING)  # never held exclusively for long
            yield
        finally:
            self.close()  # closing the file drops this process's locks on it
