"""Progress on a terminal while `sync` runs: a line per stream (and per project for event walks)
with pages and items done, the rate, and an ETA where the server told a total (`X-Hits`, or the
issues' event counts). Drawn by rich on stderr; nothing at all when stderr is not a terminal or
with --quiet, so cron mails and pipes stay clean."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, once there is a rate to show."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:>7,.0f}/s" if task.speed else "        ")


class TerminalProgress:
    """The sync's observer: `page(label, items, hits, walk)` and `expect(label, total)`.

    A line's total is shown only while it is true: `X-Hits` counts one walk, so it is a line's
    total only while that walk is the line's only one (events of a project come from many issue
    walks); and a total the count passes was a guess, so the line then shows none ("71/?")."""

    def __init__(self, console: Console):
        self.bars = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[pages]:>5} pages"), RateColumn(), TimeRemainingColumn(), console=console, transient=False, refresh_per_second=4)
        self._tasks: dict[str, TaskID] = {}
        self._pages: dict[str, int] = {}
        self._walks: dict[str, set[str | None]] = {}  # the walks each line has counted
        self._from_hits: set[str] = set()  # lines whose total is one walk's X-Hits
        self._lock = threading.Lock()  # event walks report from the writing thread, others may not

    def _task(self, label: str) -> TaskID:
        if label not in self._tasks:
            self._tasks[label] = self.bars.add_task(label, total=None, pages=0)
            self._pages[label] = 0
            self._walks[label] = set()
        return self._tasks[label]

    def expect(self, label: str, total: int | None) -> None:
        with self._lock:
            self.bars.update(self._task(label), total=total)
            self._from_hits.discard(label)

    def page(self, label: str, items: int, hits: int | None, walk: str | None = None) -> None:
        with self._lock:
            task = self._task(label)
            self._pages[label] += 1
            walks = self._walks[label]
            walks.add(walk)
            if len(walks) > 1 and label in self._from_hits:
                self._from_hits.discard(label)  # a second walk: the first one's hits are not the line's
                self._drop_total(task)
            if hits is not None and len(walks) == 1 and self.bars.tasks[task].total is None:
                self.bars.update(task, total=hits)
                self._from_hits.add(label)
            self.bars.update(task, advance=items, pages=self._pages[label])
            total = self.bars.tasks[task].total
            if total is not None and self.bars.tasks[task].completed > total:
                self._drop_total(task)  # counted past it: it was no total

    def _drop_total(self, task: TaskID) -> None:
        """No total ("71/?"): rich's `update(total=None)` keeps the old one."""
        next(t for t in self.bars.tasks if t.id == task).total = None

    def message(self, text: str) -> None:
        self.bars.console.print(text, highlight=False)


@contextlib.contextmanager
def terminal_progress(silent: bool, stream=None) -> Iterator[tuple[Callable[[str], None] | None, TerminalProgress | None]]:
    """(message callback, observer), both None unless stderr is a terminal and not silenced."""
    stream = stream or sys.stderr
    if silent or not stream.isatty():
        yield None, None
        return
    progress = TerminalProgress(Console(file=stream))
    with progress.bars:
        yield progress.message, progress
