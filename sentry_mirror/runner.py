"""Run a sync of every configured source: the one function the `sync` command, the demo and the
scheduler all call."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import threading
from datetime import timedelta
from typing import Any, Callable, Iterator

from .client import SentryClient
from .config import Config, Source
from .locking import writer_lock
from .store import Store, check_store_path
from .sync import Syncer, SyncOptions, SyncResult

log = logging.getLogger(__name__)


def client_for(source: Source) -> SentryClient:
    return SentryClient(source.url, source.token, auth_scheme=source.auth, timeout=source.timeout,
                        verify=source.verify, extra_headers=source.headers)


def give_large_blocks_back() -> None:
    """Ask glibc to map every block over 128 KB on its own, so freeing it returns it to the system.

    A sync holds pages of event text (half a megabyte each) on several threads. glibc raises its
    mmap threshold after the first such block is freed and from then on keeps freed pages in
    per-thread arenas, so the syncer's memory climbed with every thread (medium scale: 284 MB peak;
    253 MB with this). Elsewhere than glibc, nothing to do.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def sync_all(config: Config, *, full: bool = False, stop: threading.Event | None = None,
             progress: Callable[[str], None] | None = None, wait: bool = False,
             observer: Any = None) -> list[SyncResult]:
    results = []
    give_large_blocks_back()
    if config.db != ":memory:":
        check_store_path(config.db)
    with writer_lock(config.db, wait=wait, stop=stop, on_wait=progress or log.warning):
        store = Store(config.db)
        try:
            for source in config.sources:
                options = SyncOptions(full=full, overlap=timedelta(minutes=source.overlap_minutes),
                                      events=source.events, events_sample=source.events_sample,
                                      project_events=source.project_events, concurrency=source.concurrency,
                                      refresh_per_project=source.refresh_per_project)
                client = client_for(source)
                try:
                    say = (lambda m, n=source.name: progress(f"[{n}] {m}")) if progress else None
                    results.append(Syncer(store, client, source.org, source=source.name, options=options,
                                          stop=stop, progress=say, observer=observer).run())
                finally:
                    client.close()
        finally:
            store.close()
    return results


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM asks the sync to stop after the page in hand; a second one kills."""
    stop = threading.Event()
    previous = {}

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
