"""`status` the morning after: a store that never synced, a file that is not a store, and runs that
failed or were killed are each said plainly, with the exit status a script can test; a run is
'running' only while a sync holds the store."""

import duckdb
import pytest
from helpers import run

from sentry_mirror.storage.locking import writer_lock


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def test_status_of_a_store_that_never_synced_and_of_a_file_that_is_not_one(tmp_path):
    from sentry_mirror.storage.store import Store

    Store(str(tmp_path / "new.duckdb")).close()
    result = run("status", "--db", str(tmp_path / "new.duckdb"))
    assert result.exit_code == 1 and "never synced" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    (tmp_path / "notes.txt").write_text("hello")
    result = run("status", "--db", str(tmp_path / "notes.txt"))
    assert result.exit_code == 3 and "not a DuckDB file" in result.stderr
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    result = run("status", "--db", str(tmp_path / "other.duckdb"))
    assert result.exit_code == 3 and "not a sentry-mirror store" in result.stderr


def test_status_of_runs_that_failed_or_were_killed(tmp_path):
    """Only failed runs: the status says no sync succeeded yet and exits 1 (it said 'never UTC
    (never)' and exited 0). A run whose process was killed says 'interrupted', not 'running',
    unless a sync does hold the store."""
    from sentry_mirror.storage.store import Store

    db = str(tmp_path / "k.duckdb")
    store = Store(db)
    store.finish_run(store.start_run("acme", False), "failed", requests=1, retries=0, rows={},
                     error="Sentry answered 401: Invalid token")
    store.start_run("acme", False)  # killed: never finished
    store.close()
    result = run("status", "--db", db)
    assert result.exit_code == 1, result.output
    assert "source acme: no successful sync yet" in result.stdout
    assert ", interrupted," in result.stdout and "running" not in result.stdout
    with writer_lock(db):  # a sync at work: its run is running
        assert ", running," in run("status", "--db", db).stdout
