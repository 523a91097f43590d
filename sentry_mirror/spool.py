"""Pages fetched ahead of the writer: a few in memory, the rest on disk.

The fetch threads and the writer run at different paces. Most of the time the writer keeps up,
but now and then it stops for seconds (merging row groups, a checkpoint). With a short queue the
fetchers then stop too, and under a rate limit the windows that pass meanwhile are lost for good:
at a million events, a sync limited to 20 requests/s took 1.15 times the limit's floor. A long
queue in memory would let the syncer's memory grow with the pages. So pages beyond the first few
wait in an unlinked temporary file beside the store, their text unchanged, and are read back in
turn; nothing is left on disk should the process die.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from typing import Any

from .rawpage import RawPage

log = logging.getLogger(__name__)


class PageSpool:
    """Holds up to `in_memory` pages in memory and up to `on_disk` characters of page text on
    disk; `hold` blocks beyond that, as a bounded queue would."""

    def __init__(self, directory: str | None, in_memory: int, on_disk: int = 256 << 20):
        self._directory = directory
        self._in_memory = in_memory
        self._on_disk = on_disk
        self._memory_pages = 0
        self._disk_bytes = 0
        self._ready = threading.Condition()
        self.spooled = 0  # pages that went to disk, for the figures

    def hold(self, page: Any, params: dict) -> tuple:
        """A page handed on: as is, or with its text in a file. Called by the fetch threads."""
        raw: RawPage | None = getattr(page, "raw", None)
        size = 0 if raw is None else sum(len(t) for t in raw.texts())
        with self._ready:
            while True:
                if self._memory_pages < self._in_memory:
                    self._memory_pages += 1
                    return page, params, None
                if raw is not None and self._disk_bytes + size <= self._on_disk:
                    self._disk_bytes += size
                    break
                self._ready.wait()
        try:
            return self._to_disk(page, raw, size, params)
        except OSError as exc:  # no room, or no temporary file: pages wait in memory only, as before
            log.warning("cannot keep pages on disk while the writer is busy (%s); keeping them in memory", exc)
            with self._ready:
                self._disk_bytes -= size
                self._on_disk = 0
                self._ready.notify_all()
                while self._memory_pages >= self._in_memory:
                    self._ready.wait()
                self._memory_pages += 1
            return page, params, None

    def take(self, held: tuple) -> tuple[Any, dict]:
        """The page back, whole, for the writer; its place is freed for the fetchers."""
        page, params, spooled = held
        try:
            if spooled is not None:
                file, lengths, _ = spooled
                file.seek(0)
                texts = tuple(file.read(n).decode("utf-8") for n in lengths)
                raw = page.raw
                page.raw = dataclasses.replace(raw, text=texts[0] if raw.parts is None else "",
                                               parts=None if raw.parts is None else texts)
        finally:
            self.release(held)
        return page, params

    def release(self, held: tuple) -> None:
        """Free a page's place without reading it back (a walk given up)."""
        spooled = held[2]
        with self._ready:
            if spooled is None:
                self._memory_pages -= 1
            else:
                spooled[0].close()
                self._disk_bytes -= spooled[2]
            self._ready.notify_all()

    def _to_disk(self, page: Any, raw: RawPage, size: int, params: dict) -> tuple:
        file = tempfile.TemporaryFile(dir=self._directory)
        try:
            lengths = []
            for text in raw.texts():
                data = text.encode("utf-8")
                file.write(data)
                lengths.append(len(data))
            file.flush()
        except BaseException:
            file.close()
            raise
        page.raw = dataclasses.replace(raw, text="", parts=None if raw.parts is None else ())
        with self._ready:
            self.spooled += 1
        return page, params, (file, lengths, size)


def spool_directory(store_path: str) -> str | None:
    """Beside the store (a disk the user chose for data), or the system's temporary directory."""
    if store_path == ":memory:":
        return None
    return os.path.dirname(os.path.abspath(store_path)) or None
