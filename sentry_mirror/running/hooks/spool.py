"""Deliveries accepted but not yet written: files in a folder beside the store.

The receiver answers 2xx only after its delivery is on disk (written, fsynced, renamed into place,
the folder fsynced): a crash after the answer loses nothing, and the next start drains what is
there. A file is removed only after the transaction that stored it committed; a crash between
the two stores it again, which changes nothing (the writes are idempotent).

Two fsyncs cost a few milliseconds, so deliveries that arrive together share them (a group
commit): one writer thread puts all the deliveries waiting into one file, syncs it once, and
answers them all. Alone, a delivery waits for one commit; in a burst, the rate is set by how many
arrive during a commit, not by the disk.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

SUFFIX = ".hook"
QUARANTINE = "quarantine"  # the spool's subfolder of deliveries the store refused: kept, not retried

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    name: str
    meta: dict  # kind ("service" or "integration"), source, resource, received_at
    body: bytes


@dataclass
class _Waiting:
    record: bytes
    done: threading.Event | None = field(default_factory=threading.Event)
    name: str | None = None
    error: OSError | None = None
    on_done: Callable[[str | None, OSError | None], None] | None = None

    def finish(self) -> None:
        if self.on_done is not None:
            self.on_done(self.name, self.error)
        else:
            self.done.set()


def _record(meta: dict, body: bytes) -> bytes:
    head = json.dumps({**meta, "length": len(body)}, sort_keys=True).encode()
    return head + b"\n" + body + b"\n"


class HookSpool:
    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self._queue: list[_Waiting] = []
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None
        self._writing = False  # a group being written (flush waits for it)
        self._removing: set[str] = set()  # stored, being unlinked by the remover thread
        self._unlinks: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # None: the remover stops
        self._remover: threading.Thread | None = None
        self._removed = threading.Condition()  # apart from _cond, whose notify() must reach the writer
        self._closing = False  # the writer thread ends once the queue is empty

    def put(self, meta: dict, body: bytes) -> str:
        """Keep one verified delivery durably (returns once it is on disk); returns its file name."""
        waiting = self._queued(_Waiting(_record(meta, body)))
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.name

    def submit(self, meta: dict, body: bytes, on_done: Callable[[str | None, OSError | None], None]) -> None:
        """As `put`, without waiting: `on_done(name, error)` is called from the spool's thread once
        the delivery is on disk (error None) or could not be kept (the receiver's event loop)."""
        self._queued(_Waiting(_record(meta, body), done=None, on_done=on_done))

    def _queued(self, waiting: _Waiting) -> _Waiting:
        with self._cond:
            self._queue.append(waiting)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, name="hook-spool", daemon=True)
                self._writer.start()
            self._cond.notify_all()  # flush() may wait on it too
        return waiting

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if self._closing:
                        return
                    self._cond.wait()
                group, self._queue = self._queue, []
                self._writing = True
            try:
                name = self._write(b"".join(w.record for w in group))
            except OSError as exc:
                name = None
                for w in group:
                    w.error = exc
            for w in group:
                w.name = name
                try:
                    w.finish()
                except Exception:  # noqa: BLE001 - one waiter's trouble is not the others'
                    log.exception("could not answer a delivery kept in %s", name)
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every delivery handed to the spool is on disk (at shutdown, before the writer's
        last pass); False if that took over `timeout`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._writing, timeout)

    def _write(self, records: bytes, folder: str | None = None) -> str:
        """A new file of `records` in the spool (or `folder`), whole or not at all: written under a
        hidden name, fsynced, renamed, and the folder fsynced."""
        folder = folder or self.folder
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        tmp = os.path.join(folder, "." + name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(records)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(folder, name))
        self._sync_folder(folder)
        return name

    def _sync_folder(self, folder: str | None = None) -> None:
        fd = os.open(folder or self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self, limit: int | None = None) -> list[str]:
        """Names of the deliveries waiting, oldest first."""
        with self._removed:
            gone = set(self._removing)
        names = sorted(n for n in os.listdir(self.folder)
                       if n.endswith(SUFFIX) and not n.startswith(".") and n not in gone)
        return names[:limit] if limit else names

    def quarantine(self, delivery: Delivery) -> str:
        """Keep a delivery the store refused apart (fsynced, as it came), so the ones after it go on;
        returns the file's path. Its original file is removed with its batch."""
        folder = os.path.join(self.folder, QUARANTINE)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        name = self._write(_record({**delivery.meta, "from": delivery.name}, delivery.body), folder)
        return os.path.join(folder, name)

    def quarantined(self) -> list[str]:
        """Names of the deliveries set aside, oldest first."""
        try:
            return sorted(n for n in os.listdir(os.path.join(self.folder, QUARANTINE)) if n.endswith(SUFFIX))
        except FileNotFoundError:
            return []

    def read_quarantined(self, name: str) -> list[Delivery]:
        return self.read(os.path.join(QUARANTINE, name))

    def read(self, name: str) -> list[Delivery]:
        """The deliveries a file holds (several, when they arrived together)."""
        try:
            with open(os.path.join(self.folder, name), "rb") as fh:
                data = fh.read()
        except OSError:
            return []
        out, at = [], 0
        while at < len(data):
            end = data.find(b"\n", at)
            try:
                meta = json.loads(data[at:end])
                length = meta.pop("length", None)
            except ValueError:
                break
            if end < 0:
                break
            if length is None:  # a file from before the group commit: one delivery, the rest its body
                out.append(Delivery(name, meta, data[end + 1:]))
                break
            out.append(Delivery(name, meta, data[end + 1:end + 1 + length]))
            at = end + 1 + length + 1
        return out

    def remove(self, names: list[str]) -> None:
        """Forget stored deliveries: at once for `pending`, on disk by a thread of their own (an unlink
        took ~2 ms here, a file per handful of deliveries, and the writer need not wait for it). A
        crash before the unlink stores them again at the next start, which changes nothing."""
        with self._removed:
            self._removing.update(names)
            if self._remover is None or not self._remover.is_alive():
                self._remover = threading.Thread(target=self._unlink_forever, name="hook-spool-remover", daemon=True)
                self._remover.start()
        for name in names:
            self._unlinks.put(name)

    def _unlink_forever(self) -> None:
        while True:
            name = self._unlinks.get()
            if name is None:
                return
            try:
                os.unlink(os.path.join(self.folder, name))
            except FileNotFoundError:
                pass
            except OSError as exc:  # still on disk: the next start stores it again, harmlessly
                log.warning("could not remove %s from the hook spool: %s", name, exc.strerror)
            with self._removed:
                self._removing.discard(name)
                if not self._removing:
                    self._removed.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """End the spool's threads once what they hold is on disk or unlinked (at shutdown: a
        service stopped and started again in one process must not leave two behind)."""
        with self._cond:
            self._closing = True
            writer = self._writer
            self._cond.notify_all()
        with self._removed:
            remover = self._remover
        if remover is not None:
            self._unlinks.put(None)
        for thread in (writer, remover):
            if thread is not None:
                thread.join(timeout)
        with self._cond:
            self._closing = False  # a later put starts a writer again

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait for the removals under way to reach the disk (at shutdown); False if they did not."""
        with self._removed:
            return self._removed.wait_for(lambda: not self._removing, timeout)
