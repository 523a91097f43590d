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

from .. import redact
from ..errors import ApiError, BindingError, ConfigError, MirrorError
from ..fetching.client import SentryClient
from ..storage.locking import writer_lock
from ..storage.store import Store, check_store_path
from ..syncing.syncer import Syncer, SyncOptions, SyncResult
from .config import Config, Source

log = logging.getLogger(__name__)


def client_for(source: Source) -> SentryClient:
    client = SentryClient(source.url, source.token, auth_scheme=source.auth, timeout=source.timeout,
                          verify=source.verify, extra_headers=source.headers)
    origin = source.origins.get("token") or ""  # a 401 names where the token came from
    if origin == "flag":
        client.token_origin = "--token"
    elif origin.endswith(" (token_env)"):
        client.token_origin = f"{origin[4:-12]}, the config's token_env,"
    elif origin.startswith("env "):
        client.token_origin = origin[4:]
    elif origin:
        client.token_origin = origin
    return client


def give_large_blocks_back() -> None:
    """Ask glibc to map every block over 128 KB on its own, so freeing it returns it to the system.

    A sync holds pages of event text (half a megabyte each) on several threads. glibc raises its
    mmap threshold after the first such block is freed and from then on keeps freed pages in
    per-thread arenas, so the syncer's memory climbed with every thread (medium scale: 284 MB peak;
    253 MB with this). Elsewhere than glibc, nothing to do.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def sync_all(config: Config, *, full: bool = False, refresh: frozenset[str] = frozenset(), rebind: bool = False, stop: threading.Event | None = None,
             progress: Callable[[str], None] | None = None, wait: bool = False,
             observer: Any = None) -> list[SyncResult]:
    results: list[SyncResult] = []
    failures: list[MirrorError] = []
    give_large_blocks_back()
    if config.db != ":memory:":
        check_store_path(config.db)
    with writer_lock(config.db, wait=wait, stop=stop, on_wait=progress or log.warning):
        store = Store(config.db, stop=stop)
        try:
            sources = _planned(config.sources, store, results, failures)
            for source in sources:
                options = SyncOptions(full=full, overlap=timedelta(minutes=source.overlap_minutes),
                                      events=source.events, events_sample=source.events_sample,
                                      project_events=source.project_events, concurrency=source.concurrency,
                                      refresh_per_project=source.refresh_per_project, rebind=rebind,
                                      refresh_with_hooks=source.refresh_with_hooks,
                                      refresh=refresh, cadence={k: timedelta(hours=h) for k, h in source.refresh_hours.items()},
                                      projects=tuple(source.projects),
                                      projects_anywhere=source.listed,
                                      tag_keys=None if source.tag_keys == "all" else tuple(source.tag_keys),
                                      issue_hashes=source.issue_hashes)
                client = client_for(source)
                try:
                    say = (lambda m, n=source.name: progress(f"[{n}] {m}")) if progress else None
                    results.append(Syncer(store, client, source.org, source=source.name, options=options,
                                          stop=stop, progress=say, observer=observer).run())
                except (ApiError, BindingError) as exc:
                    # One source's server or token failing, or a source pointed at another server, is
                    # no reason to leave the others unsynced; the run row says it failed, and the
                    # sync ends partial (or with this error alone).
                    if len(sources) == 1 and not failures:
                        raise
                    _failed(source, client, exc, results, failures)
                finally:
                    client.close()
        finally:
            store.close()
    if failures and len(failures) == len(results):
        raise failures[0]
    if results and all(r.status == "skipped" for r in results):  # `projects` names none of any organization's
        raise ConfigError("no organization the token sees has any of the projects the config names",
                          hint="; ".join(n for r in results for n in r.notes))
    _nowhere(sources, results)
    return results


def _nowhere(sources: list[Source], results: list[SyncResult]) -> None:
    """With `org = "*"`, a project named that no organization has (a typo, most likely) is said once
    in the summary, beside the per-organization notes; an organization that failed leaves it unknown."""
    by_parent: dict[str, list[SyncResult]] = {}
    named = {s.name: s for s in sources}
    for result in results:
        source = named.get(result.source)
        if source is not None and source.listed and source.projects:
            by_parent.setdefault(result.source.rpartition("/")[0], []).append(result)
    for parent, group in by_parent.items():
        if any(r.status == "failed" for r in group):
            continue
        nowhere = set(group[0].missing_projects).intersection(*(r.missing_projects for r in group[1:]))
        if nowhere:
            slugs = ", ".join(sorted(nowhere))
            shown = next((r for r in group if r.status != "skipped"), group[0])  # a summary line with notes
            shown.notes.insert(0, f"no organization {parent} sees has project {slugs}")


def _planned(sources: list[Source], store: Store, results: list[SyncResult],
             failures: list[MirrorError]) -> list[Source]:
    """The sources to sync: each as configured, and for one with `org = "*"` one per organization its
    token sees (running/allorgs.py). A list that cannot be read fails that source alone."""
    from .allorgs import each_organization, expand

    def failed(source: Source, client: SentryClient, exc: ApiError) -> None:
        if len(sources) == 1:
            raise exc
        _failed(source, client, exc, results, failures)

    return each_organization(sources, client_for, lambda source, client: expand(source, store, client), failed)


def _failed(source: Source, client: SentryClient, exc: MirrorError, results: list[SyncResult],
            failures: list[MirrorError]) -> None:
    """One source failed while others go on: its result says so, and the run ends partial."""
    log.error("%s: %s", source.name, redact.scrub(str(exc)))
    results.append(SyncResult(source=source.name, status="failed", errors=[redact.scrub(str(exc))],
                              requests=client.stats.requests, retries=client.stats.retries))
    failures.append(exc)


def describe_result(result) -> str:
    if result.status == "failed":  # a source that failed while others synced (runner.sync_all)
        return f"FAILED {result.source}: {'; '.join(result.errors)}"
    if result.status == "skipped":
        return f"skipped {result.source}: {'; '.join(result.notes)}"
    rows = ", ".join(f"{n:,} {entity}" for entity, n in sorted(result.rows.items())) or "nothing"
    text = (f"synced {result.source} in {result.seconds:.1f}s with {result.requests:,} requests "
            f"({result.retries} retried); read {rows}")
    for error in result.errors:
        text += f"\n  FAILED {error}"
    for note in result.notes[:5]:
        text += f"\n  note: {note}"
    if len(result.notes) > 5:
        text += f"\n  note: … and {len(result.notes) - 5} more"
    return text


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
