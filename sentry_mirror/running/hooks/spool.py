"""Deliveries accepted but not yet written: one file each in a folder beside the store.

The receiver answers 2xx only after the file is on disk (written, fsynced, renamed into place,
the folder fsynced): a crash after the answer loses nothing, and the next start drains what is
there. A file is removed only after the transaction that stored it committed; a crash between
the two stores it again, which changes nothing (the writes are idempotent).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass

SUFFIX = ".hook"


@dataclass
class Delivery:
    name: str
    meta: dict  # kind ("service" or "integration"), source, resource, received_at
    body: bytes


class HookSpool:
    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, mode=0o700, exist_ok=True)

    def put(self, meta: dict, body: bytes) -> str:
        """Keep one verified delivery durably; returns its file name."""
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        tmp = os.path.join(self.folder, "." + name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(meta, sort_keys=True).encode() + b"\n" + body)
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

    def read(self, name: str) -> Delivery | None:
        try:
            with open(os.path.join(self.folder, name), "rb") as fh:
                head, _, body = fh.read().partition(b"\n")
            return Delivery(name, json.loads(head), body)
        except (OSError, ValueError):
            return None

    def remove(self, names: list[str]) -> None:
        for name in names:
            try:
                os.unlink(os.path.join(self.folder, name))
            except FileNotFoundError:
                pass
