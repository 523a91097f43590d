"""One writer at a time: a second sync into a store another process writes exits naming that
process, or with `--wait` waits for it to finish and then syncs."""

import os
import threading
import time

import pytest
from helpers import TOKEN, run, sync_args

from sentry_mirror.storage.locking import writer_lock


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def test_a_second_writer_exits_naming_the_first_or_waits(emu, tmp_path):
    db = tmp_path / "w.duckdb"
    env = {"SENTRY_AUTH_TOKEN": TOKEN}
    with writer_lock(str(db)):
        result = run(*sync_args(emu, db), env=env)
        assert result.exit_code == 3 and f"(process {os.getpid()})" in result.stderr
    held = threading.Event()

    def hold():
        with writer_lock(str(db)):
            held.set()
            time.sleep(1.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    result = run(*sync_args(emu, db), "--wait", env=env)
    holder.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 1.0  # it waited for the holder rather than failing
