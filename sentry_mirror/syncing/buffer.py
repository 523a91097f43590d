"""Writes waiting for their transaction: rows, raw pages, the cursors and watermarks that cover
them, prunes and updates, all committed together.

Every write of a sync goes through one buffer: a batch never commits rows without the state that
covers them, nor state without its rows, so a sync killed at any instant resumes from the last
committed batch and nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable

from ..errors import StoreError
from ..fetching.rawpage import RawPage
from ..storage.store import Store

log = logging.getLogger(__name__)


class WriteBuffer:
    """Pages waiting to be written, with the cursor and watermark updates that cover them.

    A flush writes all of it in one transaction: rows never commit without the state that covers
    them, nor state without its rows. Batching pages (many issues have a few events each) cuts
    the per-statement cost; a kill loses at most the unflushed pages, which are fetched again.
    """

    def __init__(self, store: Store, source: str, *, max_rows: int = 500, max_page_rows: int = 1000,
                 max_bytes: int = 8 << 20, max_seconds: float = 2.0,
                 on_written: Callable[[str, int], None] | None = None):
        self.store, self.source = store, source
        self.on_written = on_written  # told how many objects of raw pages were new or changed
        # A batch of 1,000 full events (about 5 MB of JSON) is where DuckDB's per-statement cost is
        # spread thin; the store parses it in slices that fit its memory limit.
        self.max_rows, self.max_page_rows, self.max_bytes = max_rows, max_page_rows, max_bytes
        self.max_seconds = max_seconds
        self.rows: dict[str, list[tuple[Any, dict | None]]] = {}
        self.pages: dict[str, list[tuple[str, dict | None]]] = {}  # raw pages (Store.upsert_pages)
        self._page_rows = self._page_bytes = 0
        self.states: list[tuple[str, str, str, dict]] = []  # (kind, stream, scope, fields)
        self.prunes: list[tuple[str, dict | None, set[str]]] = []  # (entity, context, keys to keep)
        self.updates: list[tuple[str, dict]] = []  # (sql/updates file, its parameters), after the rows
        self.observed_at: datetime | None = None
        self._since = 0.0
        self.written: dict[str, int] = {}

    def add(self, entity: str, items: list, context: dict | None = None, observed_at: datetime | None = None) -> None:
        self._start_clock()
        self.rows.setdefault(entity, []).extend((item, context) for item in items)
        self.observed_at = observed_at or self.observed_at

    def add_page(self, entity: str, page: RawPage, context: dict | None = None) -> None:
        if not page.count:
            return
        self._start_clock()
        for text in page.texts():
            self.pages.setdefault(entity, []).append((text, context))
            self._page_bytes += len(text)
        self._page_rows += page.count

    def _start_clock(self) -> None:
        """The batch's age counts from what entered an empty buffer first."""
        if not self.rows and not self.states and not self.pages:
            self._since = time.monotonic()

    def state(self, kind: str, stream: str, scope: str, **fields: Any) -> None:
        self._start_clock()
        self.states.append((kind, stream, scope, fields))

    def prune(self, entity: str, context: dict | None, keep: set[str]) -> None:
        self.prunes.append((entity, context, keep))

    def update(self, name: str, **params: Any) -> None:
        """Run `sql/updates/<name>.sql` in the batch's transaction (with `source` given)."""
        self.updates.append((name, params))

    def maybe_flush(self) -> None:
        """Flush a full or old batch; and when a reader waits, flush now and let go of the file."""
        pending = sum(len(v) for v in self.rows.values())
        if pending >= self.max_rows or self._page_rows >= self.max_page_rows or self._page_bytes >= self.max_bytes or \
                (self.states and time.monotonic() - self._since >= self.max_seconds):
            self.flush()
        elif self.store.readers_waiting():
            self.flush()  # its commit lets go of the file
            self.store.maybe_release()  # in case there was nothing to commit

    def flush(self) -> None:
        if not self.rows and not self.states and not self.prunes and not self.pages and not self.updates:
            return
        while True:
            try:
                written = self._write()
                break
            except StoreError as exc:
                # Rolled back whole; the same batch again, parsed in smaller slices.
                if not exc.out_of_memory or not self.store.narrow_slices():
                    raise
                log.info("DuckDB ran out of memory on a batch; parsing it in slices of %d characters",
                         self.store.slice_bytes)
        for entity, n, raw in written:
            self.written[entity] = self.written.get(entity, 0) + n
            if raw and self.on_written:
                self.on_written(entity, n)
        self.rows, self.states, self.prunes, self.updates, self.observed_at = {}, [], [], [], None
        self.pages, self._page_rows, self._page_bytes = {}, 0, 0

    def _write(self) -> list[tuple[str, int, bool]]:
        """Everything in hand in one transaction; (entity, objects written, from raw pages)."""
        written = []
        with self.store.transaction():
            for entity, pairs in self.rows.items():
                n = self.store.upsert(entity, [p[0] for p in pairs], source=self.source,
                                      contexts=[p[1] for p in pairs], observed_at=self.observed_at)
                written.append((entity, n, False))
            for entity, pages in self.pages.items():
                n = self.store.upsert_pages(entity, pages, source=self.source, observed_at=self.observed_at)
                written.append((entity, n, True))
            for entity, context, keep in self.prunes:
                self.store.prune(entity, source=self.source, context=context, keep=keep)
            for name, params in self.updates:
                self.store.run_statements("updates", name, source=self.source, **params)
            self.store.apply_states(self.source, self.states)
        return written
