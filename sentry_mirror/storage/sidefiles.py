"""The files a store keeps beside it, named in one place: the writer's lock, the scheduler's
lock, the readers' turnstile, the scheduler's note of its next run, where pages may wait on
disk during a sync, and the webhooks' spool and secrets.
"""

from __future__ import annotations

import os


def writer_lock(db: str) -> str:
    """Held by the one process that writes the store (a sync, or the scheduler's)."""
    return db + ".lock"


def scheduler_lock(db: str) -> str:
    """Held by the one scheduler that runs for the store."""
    return db + ".scheduler.lock"


def readers_turnstile(db: str) -> str:
    """Where readers say they wait and the writer lets them in (locking.ReaderSignal)."""
    return db + ".readers"


def schedule_note(db: str) -> str:
    """The scheduler's next run, for `status`."""
    return db + ".schedule.json"


def spool_directory(db: str) -> str | None:
    """Where pages wait on disk for the writer: beside the store (a disk the user chose for data),
    or the system's temporary directory for a store in memory."""
    if db == ":memory:":
        return None
    return os.path.dirname(os.path.abspath(db)) or None


def hook_spool(db: str) -> str:
    """The folder where webhook deliveries wait, on disk, until they are written (running/hooks)."""
    return db + ".hooks-spool"


def hook_secrets(db: str) -> str:
    """The default file of service hook secrets, owner-only (running/hooks/secrets.py)."""
    return db + ".hook-secrets.json"
