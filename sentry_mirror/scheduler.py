"""The built-in scheduler: `sentry-mirror schedule` runs the same sync as the `sync` command on a
cron expression or an interval, never twice at once, and stops cleanly on SIGTERM/SIGINT.

Jobs are rebuilt from the config at every start (no persistent job store): the store's own
`_sync_state` already says where each stream stands.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config
from .errors import ConfigError, Interrupted, MirrorError
from .locking import scheduler_lock
from .runner import sync_all

log = logging.getLogger(__name__)


def make_trigger(cron: str | None, every_minutes: float | None):
    if cron and every_minutes:
        raise ConfigError("give either a cron expression or an interval, not both")
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=timezone.utc)
        except ValueError as exc:
            raise ConfigError(f"bad cron expression {cron!r}: {exc}", hint="five fields, e.g. '0 3 * * *'") from None
    if every_minutes is not None:
        if not math.isfinite(every_minutes) or every_minutes <= 0:
            raise ConfigError("the interval must be a positive number of minutes")
        return IntervalTrigger(minutes=every_minutes, timezone=timezone.utc)
    raise ConfigError("no schedule given", hint="pass --cron '0 3 * * *' or --every 60, or set [schedule] in the config")


def run_scheduler(config: Config, trigger, *, run_now: bool, report: Callable[[str], None]) -> None:
    stop = threading.Event()
    scheduler = BlockingScheduler(timezone=timezone.utc)

    def job() -> None:
        try:
            for result in sync_all(config, stop=stop):
                report(f"synced {result.source}: {result.rows} in {result.seconds:.1f}s ({result.requests} requests)")
        except Interrupted:
            report("sync interrupted; it resumes at the next run")
        except MirrorError as exc:  # one failed run must not kill the daemon
            report(f"sync failed: {exc}")

    def on_signal(signum, frame) -> None:
        report("stopping: finishing the page in hand")
        stop.set()
        scheduler.shutdown(wait=False)

    with scheduler_lock(config.db):
        scheduler.add_job(job, trigger, id="sync", max_instances=1, coalesce=True, misfire_grace_time=600,
                          next_run_time=datetime.now(timezone.utc) if run_now else None)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        report(f"scheduler started for {', '.join(s.name for s in config.sources)} into {config.db}")
        scheduler.start()
