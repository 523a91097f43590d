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
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

SUFFIX = ".hook"


@dataclass
class Delivery:
    name: str
    meta: dict  # kind ("service" or "integration"), source, resource, received_at
    body: bytes


@dataclass
class _Waiting:
    record: bytes
    done: threading.Event = field(default_factory=threading.Event)
    name: str | None = None
    error: OSError | None = None


class HookSpool:
    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self._queue: list[_Waiting] = []
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None

    def put(self, meta: dict, body: bytes) -> str:
        """Keep one verified delivery durably (returns once it is on disk); returns its file name."""
        head = json.dumps({**meta, "length": len(body)}, sort_keys=True).encode()
        waiting = _Waiting(head + b"\n" + body + b"\n")
        with self._cond:
            self._queue.append(waiting)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, name="hook-spool", daemon=True)
                self._writer.start()
            self._cond.notify()
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.name

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                group, self._queue = self._queue, []
            try:
                name = self._write(b"".join(w.record for w in group))
            except OSError as exc:
                name = None
                for w in group:
                    w.error = exc
            for w in group:
                w.name = name
                w.done.set()

    def _write(self, records: bytes) -> str:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        tmp = os.path.join(self.folder, "." + name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(records)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.folder, name))
        self._sync_folder()
        return name

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self, limit: int | None = None) -> list[str]:
        """Names of the deliveries waiting, oldest first."""
        names = sorted(n for n in os.listdir(self.folder) if n.endswith(SUFFIX) and not n.startswith("."))
        return names[:limit] if limit else names

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
        for name in names:
            try:
                os.unlink(os.path.join(self.folder, name))
            except FileNotFoundError:
                pass
