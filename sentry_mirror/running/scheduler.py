"""The built-in scheduler: `sentry-mirror schedule` runs the same sync as the `sync` command on a
cron expression or an interval, never twice at once, and stops cleanly on SIGTERM/SIGINT.

Jobs are rebuilt from the config at every start (no persistent job store): the store's own
`_sync_state` already says where each stream stands.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..errors import ConfigError, Interrupted, MirrorError
from ..storage import sidefiles
from ..storage.locking import scheduler_lock
from .config import Config
from .runner import describe_result, sync_all

log = logging.getLogger(__name__)


def make_trigger(cron: str | None, every_minutes: float | None, tz: str | None = None):
    """APScheduler's own triggers: a crontab line (in `tz`, default UTC) or an interval."""
    if cron and every_minutes:
        raise ConfigError("give either a cron expression or an interval, not both")
    try:
        zone = ZoneInfo(tz) if tz else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {tz!r}", hint="an IANA name such as UTC or Europe/Berlin") from None
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=zone)
        except ValueError as exc:
            raise ConfigError(f"bad cron expression {cron!r}: {exc}", hint="five fields, e.g. '0 3 * * *'") from None
    if every_minutes is not None:
        if not math.isfinite(every_minutes) or every_minutes <= 0:
            raise ConfigError("the interval must be a positive number of minutes")
        return IntervalTrigger(minutes=every_minutes, timezone=zone)
    raise ConfigError("no schedule given", hint="pass --cron '0 3 * * *' or --every 60, or set [schedule] in the config")


def stamp_log_lines() -> None:
    """The daemon's log lines (a skipped run, a stream that failed, a TLS warning) start with their
    UTC time, as the lines it reports itself do: each line of a daemon's output is read alone."""
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    formatter.converter = time.gmtime
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


class _PlainSkips(logging.Filter):
    """APScheduler's word for a run that came due while the last one still synced names an inner
    function (`run_scheduler.<locals>.job`); say it as the user would."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances reached" in record.getMessage():
            record.msg, record.args = "a run came due while the previous sync was still at work; skipped it", None
        return True


def run_scheduler(config: Config, trigger, *, run_now: bool, report: Callable[..., None]) -> None:
    """Until SIGTERM/SIGINT: then the sync in progress checkpoints its page and the process exits 0.

    A BackgroundScheduler, so that the main thread can wait for the signal and then for the job to
    finish its checkpoint (`shutdown(wait=True)`); a scheduled run waits for a manual sync that
    holds the store, rather than fail.
    """
    logging.getLogger("apscheduler.scheduler").addFilter(_PlainSkips())
    stop = threading.Event()
    running = threading.Event()  # a sync is at work (for what a stop says)
    scheduler = BackgroundScheduler(timezone=timezone.utc)

    def announce_next() -> None:
        job_ = scheduler.get_job("sync")
        upcoming = job_.next_run_time if job_ else None
        if upcoming:
            report(f"next run {upcoming:%Y-%m-%d %H:%M:%S %Z}")
        write_schedule_note(config.db, upcoming)

    def job() -> None:
        running.set()
        try:
            for result in sync_all(config, stop=stop, wait=True):
                report(describe_result(result))
        except Interrupted:
            report("sync interrupted; it resumes at the next run")
        except MirrorError as exc:  # one failed run must not kill the daemon
            report(f"sync failed: {exc}", failure=True)
        finally:
            running.clear()
            if not stop.is_set():
                announce_next()

    def on_signal(signum, frame) -> None:
        if stop.is_set():  # a second signal: stop now (what systemd's SIGKILL would do anyway)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        report("stopping: the sync at work checkpoints the page in hand first" if running.is_set() else "stopping",
               failure=True)
        stop.set()

    with scheduler_lock(config.db):
        # APScheduler adds a job whose next_run_time is None as paused: without --now it never ran.
        first = {"next_run_time": datetime.now(timezone.utc)} if run_now else {}
        scheduler.add_job(job, trigger, id="sync", max_instances=1, coalesce=True, misfire_grace_time=600, **first)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        report(f"scheduler started for {', '.join(s.name for s in config.sources)} into {config.db}")
        try:
            scheduler.start(paused=True)
            announce_next()
            scheduler.resume()
            woken = time.monotonic()
            while not stop.wait(0.5):
                # APScheduler sleeps until the next run in one wait, timed on a clock that stands
                # still while the machine is suspended: after a resume it would wake late and skip
                # the run as missed. Waking it each minute has it look at the wall clock again.
                if time.monotonic() - woken >= 60:
                    scheduler.wakeup()
                    woken = time.monotonic()
        finally:
            scheduler.shutdown(wait=True)
            write_schedule_note(config.db, None)


def write_schedule_note(db: str, upcoming) -> None:
    """Tell `status` when the next run is: a small file beside the store (the store itself has one
    writer, the sync, and the scheduler must not compete with it)."""
    if db == ":memory:":
        return
    note = {"pid": os.getpid(), "next_run": upcoming.astimezone(timezone.utc).isoformat() if upcoming else None}
    with contextlib.suppress(OSError):
        tmp = sidefiles.schedule_note(db) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(note, fh)
        os.replace(tmp, sidefiles.schedule_note(db))
