"""The progress line's total is true: a count never runs past it. A total the server told for one
walk (`X-Hits`) is not the total of a line that many walks add to, a capped `X-Hits` is a floor,
and a total the count passes was a guess: the line then shows no total ("71/?"), not "71/1".

The observer is driven directly, as the walker drives it: no terminal, no emulator."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from sentry_mirror.fetching.client import Page
from sentry_mirror.running.progress import TerminalProgress
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.walker import SyncOptions, SyncResult, Walker


def progress() -> TerminalProgress:
    return TerminalProgress(Console(file=io.StringIO(), width=120))


def line(p: TerminalProgress, label: str):
    task = next(t for t in p.bars.tasks if t.description == label)
    return task.completed, task.total


def test_hits_of_one_walk_are_not_the_total_of_a_line_many_walks_add_to():
    """GlitchTip sends X-Hits on every list: the first issue's 1 event became the line's total."""
    p = progress()
    p.page("events backend", 1, 1, walk="issue 1")
    assert line(p, "events backend") == (1, 1)  # one walk so far: its hits are the line's total
    p.page("events backend", 70, 70, walk="issue 2")
    assert line(p, "events backend") == (71, None)


def test_hits_of_one_walk_stay_its_total_across_its_pages():
    p = progress()
    p.page("issues", 100, 250, walk="issues")
    p.page("issues", 100, 250, walk="issues")
    assert line(p, "issues") == (200, 250)


def test_a_count_that_passes_its_expected_total_drops_it():
    p = progress()
    p.expect("events backend", 1)
    p.page("events backend", 1, None, walk="backend")
    assert line(p, "events backend") == (1, 1)
    p.page("events backend", 70, None, walk="backend")
    assert line(p, "events backend") == (71, None)


def test_an_expected_total_is_not_replaced_by_hits():
    p = progress()
    p.expect("events backend", 500)
    p.page("events backend", 100, 3, walk="issue 1")
    assert line(p, "events backend") == (100, 500)


class Recorder:
    def __init__(self):
        self.pages = []

    def page(self, label, items, hits, walk=None):
        self.pages.append((label, items, hits, walk))


def walker_with(observer) -> Walker:
    store = Store(":memory:")
    return Walker(store, None, "acme", "sentry", SyncOptions(), threading.Event(), SyncResult("sentry"),
                  progress=lambda _: None, observer=observer)


def test_the_walker_passes_hits_only_when_they_are_a_count():
    """Sentry and GlitchTip count hits up to X-Max-Hits (1000): a capped count is no total."""
    seen = Recorder()
    walker = walker_with(seen)
    try:
        items = [{"id": "1"}]
        walker.save_page("issues", "issues", "", Page(items, None, None, {"X-Hits": "250", "X-Max-Hits": "1000"}), {})
        walker.save_page("issues", "issues", "", Page(items, None, None, {"X-Hits": "1000", "X-Max-Hits": "1000"}), {})
        walker.save_page("releases", "releases", "p1", Page(items, None, None, {}), {})
    finally:
        walker.store.close()
    assert seen.pages == [("issues", 1, 250, "issues/"), ("issues", 1, None, "issues/"),
                          ("releases", 1, None, "releases/p1")]


class Totals:
    """What a sync tells the observer: each line's expected total and the items counted on it."""

    def __init__(self):
        self.expected: dict[str, int | None] = {}
        self.counted: dict[str, int] = {}

    def expect(self, label, total):
        self.expected[label] = total

    def page(self, label, items, hits, walk=None):
        self.counted[label] = self.counted.get(label, 0) + items

    def passed(self) -> dict:
        return {label: (self.counted.get(label, 0), total) for label, total in self.expected.items()
                if total is not None and self.counted.get(label, 0) > total}


def test_a_later_sync_expects_no_event_total_it_cannot_know(emu):
    """A later walk of an issue reads an unknown part of its events (and a project walk every
    issue's new ones): its project's line had the first walks' total, and counted past it."""
    from sentry_mirror.fetching.client import SentryClient
    from sentry_mirror.syncing.syncer import Syncer

    store = Store(":memory:")
    client = SentryClient(emu.url, emu.token, backoff_base=0.01)
    try:
        first = Totals()
        Syncer(store, client, emu.org_slug, observer=first).run()
        assert first.counted and not first.passed()
        emu.advance(24 * 7)
        second = Totals()
        Syncer(store, client, emu.org_slug, observer=second).run()
        assert any(label.startswith("events ") for label in second.counted)
        assert not second.passed(), second.passed()
    finally:
        client.close()
        store.close()
