"""Pages fetched ahead of the writer: a few in memory, the rest on disk.

The fetch threads and the writer run at different paces. Most of the time the writer keeps up,
but now and then it stops for seconds (merging row groups, a checkpoint). With a short queue the
fetchers then stop too, and under a rate limit the windows that pass meanwhile are lost for good:
at a million events, a sync limited to 20 requests/s took 1.15 times the limit's floor. A long
queue in memory would let the syncer's memory grow with the pages. So pages beyond the first few
wait in one unlinked temporary file beside the store, their text unchanged, and are read back in
turn; the file is emptied whenever the writer has caught up, and nothing is left on disk should
the process die.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from typing import Any, Callable

from ..errors import StoreError
from ..fetching.rawpage import RawPage

log = logging.getLogger(__name__)

ON_DISK_BYTES = 128 << 20  # about 180 pages of 100 full events: a writer's pause of 9 s at 20 pages/s
ON_DISK_PAGES = 512  # small pages cost memory too (their headers), not only their text
# Pages of big events (breadcrumbs, frame variables) can be tens of megabytes each: the pages in
# memory are bounded by their text too, one page always allowed. Typical pages (100 events of
# 5 KB) never reach it.
IN_MEMORY_BYTES = 32 << 20


class PageSpool:
    """Holds up to `in_memory` pages and `in_memory_bytes` of their text in memory (one page
    whatever its size), and up to `on_disk_pages` pages and `on_disk_bytes` bytes of their text on
    disk; `hold` blocks beyond that, as a bounded queue would. `close` when done."""

    def __init__(self, directory: str | None, in_memory: int, on_disk_bytes: int = ON_DISK_BYTES,
                 on_disk_pages: int = ON_DISK_PAGES, wanted: Callable[[], bool] = lambda: True,
                 in_memory_bytes: int = IN_MEMORY_BYTES):
        self._directory = directory
        self._wanted = wanted  # while False, pages wait in memory only (the writer is the bound)
        self._in_memory = in_memory
        self._in_memory_bytes = in_memory_bytes
        self._max_bytes = on_disk_bytes
        self._max_pages = on_disk_pages
        self._memory_pages = 0
        self._memory_bytes = 0
        self._disk_pages = 0
        self._disk_bytes = 0
        self._tail = 0  # the file's end: where the next page's text goes
        self._file = None
        self._ready = threading.Condition()
        self.spooled = 0  # pages that went to disk, for the figures

    def hold(self, page: Any, params: dict) -> tuple:
        """A page handed on: as is, or with its text in the file. Called by the fetch threads."""
        raw: RawPage | None = getattr(page, "raw", None)
        length = sum(map(len, raw.texts())) if raw is not None else 0  # its text's size in memory
        blobs = None
        if raw is not None and self._max_bytes and not self._fits_in_memory(length) and self._wanted():
            blobs = [t.encode("utf-8") for t in raw.texts()]  # likely bound for disk: encode unlocked
        size = sum(len(b) for b in blobs or ())
        with self._ready:
            while True:
                if self._fits_in_memory(length):
                    self._memory_pages += 1
                    self._memory_bytes += length
                    return page, params, None, length
                if blobs is not None and self._disk_pages < self._max_pages and self._disk_bytes + size <= self._max_bytes:
                    try:
                        if self._file is None:
                            self._file = tempfile.TemporaryFile(dir=self._directory)
                    except OSError as exc:
                        self._give_up_disk(exc)
                        continue
                    offset, self._tail = self._tail, self._tail + size
                    self._disk_pages += 1
                    self._disk_bytes += size
                    break
                self._ready.wait()
        spooled = (offset, [len(b) for b in blobs], size)
        try:
            _write_at(self._file.fileno(), b"".join(blobs), offset)
        except OSError as exc:  # no room: pages wait in memory only, as before
            self._release(spooled)
            with self._ready:
                self._give_up_disk(exc)
            return self.hold(page, params)  # the disk given up, it waits for a place in memory
        page.raw = dataclasses.replace(raw, text="", parts=None if raw.parts is None else ())
        with self._ready:
            self.spooled += 1
        return page, params, spooled, 0

    def _fits_in_memory(self, length: int) -> bool:
        """Room for a page of `length` characters among the pages in memory (read unlocked as a
        hint, decided under the lock)."""
        return self._memory_pages < self._in_memory and (
            self._memory_pages == 0 or self._memory_bytes + length <= self._in_memory_bytes)

    def take(self, held: tuple) -> tuple[Any, dict]:
        """The page back, whole, for the writer; its place is freed for the fetchers."""
        page, params, spooled, _ = held
        try:
            if spooled is not None:
                offset, lengths, size = spooled
                data = os.pread(self._file.fileno(), size, offset)
                if len(data) != size:
                    raise OSError(f"read {len(data)} of {size} bytes")
                texts, at = [], 0
                for n in lengths:
                    texts.append(data[at:at + n].decode("utf-8"))
                    at += n
                raw = page.raw
                page.raw = dataclasses.replace(raw, text=texts[0] if raw.parts is None else "",
                                               parts=None if raw.parts is None else tuple(texts))
        except OSError as exc:
            raise StoreError(f"could not read back a page kept on disk while the writer was busy: {exc}",
                             hint="check the disk beside the store; nothing from this page was stored") from None
        finally:
            self.release(held)
        return page, params

    def release(self, held: tuple) -> None:
        """Free a page's place without reading it back (a walk given up)."""
        if held[2] is None:
            with self._ready:
                self._memory_pages -= 1
                self._memory_bytes -= held[3]
                self._ready.notify_all()
        else:
            self._release(held[2])

    def close(self) -> None:
        with self._ready:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _release(self, spooled: tuple) -> None:
        with self._ready:
            self._disk_pages -= 1
            self._disk_bytes -= spooled[2]
            if self._disk_pages == 0 and self._file is not None:  # the writer caught up: empty the file
                self._tail = 0
                try:
                    os.ftruncate(self._file.fileno(), 0)
                except OSError:
                    pass  # the space comes back when the file is closed
            self._ready.notify_all()

    def _give_up_disk(self, exc: OSError) -> None:
        log.warning("cannot keep pages on disk while the writer is busy (%s); keeping them in memory", exc)
        self._max_bytes = 0
        self._ready.notify_all()


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


