"""Someone else's file is never ours to change: a file that is not a store, or a DuckDB database
that is not a sentry-mirror store, is refused in one line by every reader, by `sync` and by `demo`,
and left as it was; the demo replaces only a store it made itself."""

import pytest
from helpers import invoke as run
from helpers import one_line_error


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_status_of_a_file_that_is_not_a_store(tmp_path):
    (tmp_path / "x.duckdb").write_text("hello")
    line = one_line_error(run("status", "--db", str(tmp_path / "x.duckdb")), code=3)
    assert "not a DuckDB file" in line
    assert (tmp_path / "x.duckdb").read_text() == "hello"


@pytest.mark.parametrize("args", [["status"], ["report", "trends"], ["issues"], ["export", "parquet", "OUT"]])
def test_every_reader_says_the_same_of_someone_elses_duckdb_file(tmp_path, args):
    """report exited 1, issues 2 and status 3, and export wrote the file's tables out with exit 0."""
    import duckdb

    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (n INTEGER)")
    con.close()
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    line = one_line_error(run(*args, "--db", str(path)), code=3)
    assert "is a DuckDB file but not a sentry-mirror store" in line
    assert not (tmp_path / "out").exists()


def tables_of(path) -> set[str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def foreign_database(path):
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT 1 AS id, 'Ada' AS name")
    con.close()


def test_sync_never_writes_into_someone_elses_duckdb_database(tmp_path):
    foreign_database(tmp_path / "crm.duckdb")
    line = one_line_error(run("sync", "--url", "http://127.0.0.1:9", "--org", "a", "--token", "t-1234",
                              "--db", str(tmp_path / "crm.duckdb")), code=3)
    assert "not a sentry-mirror store" in line
    assert tables_of(tmp_path / "crm.duckdb") == {"customers"}


def test_the_demo_replaces_only_a_store_it_made(tmp_path):
    """A store synced from a server, even a local one, is never the demo's to replace; the demo's
    own store is, run after run."""
    import duckdb

    from sentry_mirror.emulator import Emulator

    mirror = tmp_path / "mirror.duckdb"
    with Emulator(seed=3, scale="tiny", token="sntryu_" + "d" * 64) as emu:
        synced = run("sync", "--url", emu.url, "--org", emu.org_slug, "--token", emu.token, "--db", str(mirror), "-q")
        assert synced.exit_code == 0, synced.stderr
    con = duckdb.connect(str(mirror))  # a self-hosted Sentry on this machine, not the emulator's Acme Corp
    con.execute("UPDATE organizations SET name = 'Our Company'")
    con.close()
    before = tables_of(mirror)
    line = one_line_error(run("demo", "--db", str(mirror), "--scale", "tiny", "-q"), code=3)
    assert "not made by the demo" in line and tables_of(mirror) == before
    foreign_database(tmp_path / "crm.duckdb")
    one_line_error(run("demo", "--db", str(tmp_path / "crm.duckdb"), "--scale", "tiny", "-q"), code=3)
    assert tables_of(tmp_path / "crm.duckdb") == {"customers"}
    for _ in range(2):  # its own store, again and again
        result = run("demo", "--db", str(tmp_path / "demo.duckdb"), "--scale", "tiny", "-q")
        assert result.exit_code == 0, result.stderr
    con = duckdb.connect(str(tmp_path / "demo.duckdb"))  # a demo store from before the mark
    con.execute("DROP TABLE _demo")
    con.close()
    result = run("demo", "--db", str(tmp_path / "demo.duckdb"), "--scale", "tiny", "-q")
    assert result.exit_code == 0, result.stderr
