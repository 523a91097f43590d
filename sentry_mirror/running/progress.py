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
    """The sync's observer: `page(label, items, hits)` and `expect(label, total)`."""

    def __init__(self, console: Console):
        self.bars = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[pages]:>5} pages"), RateColumn(), TimeRemainingColumn(), console=console, transient=False, refresh_per_second=4)
        self._tasks: dict[str, TaskID] = {}
        self._pages: dict[str, int] = {}
        self._lock = threading.Lock()  # event walks report from the writing thread, others may not

    def _task(self, label: str) -> TaskID:
        if label not in self._tasks:
            self._tasks[label] = self.bars.add_task(label, total=None, pages=0)
            self._pages[label] = 0
        return self._tasks[label]

    def expect(self, label: str, total: int | None) -> None:
        with self._lock:
            self.bars.update(self._task(label), total=total)

    def page(self, label: str, items: int, hits: int | None) -> None:
        with self._lock:
            task = self._task(label)
            self._pages[label] += 1
            if hits is not None and self.bars.tasks[task].total is None:
                self.bars.update(task, total=hits)
            self.bars.update(task, advance=items, pages=self._pages[label])

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
