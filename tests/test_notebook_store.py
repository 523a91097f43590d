"""The store a notebook reads is found as the reading commands find it, without --db:
SENTRY_MIRROR_DB, else SENTRY_MIRROR_CONFIG's db, else sentry.duckdb; a relative path is taken from
the folder Jupyter was started in (the PWD the kernel inherits), not the notebook's folder where
the kernel runs. No store: one error saying how to point at one."""

import duckdb
import pytest

from sentry_mirror.errors import ConfigError, StoreError
from sentry_mirror.running.notebook import notebook_store, open_store
from sentry_mirror.storage.store import Store


@pytest.fixture
def places(tmp_path, monkeypatch, clean_sentry_env):
    """Jupyter started in `launch/`; the kernel runs in `launch/notebooks/`, as Jupyter runs it."""
    launch, kernel = tmp_path / "launch", tmp_path / "launch" / "notebooks"
    kernel.mkdir(parents=True)
    monkeypatch.setenv("PWD", str(launch))
    monkeypatch.chdir(kernel)
    return launch, kernel


def make_store(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Store(str(path)).close()
    return path


def test_a_relative_sentry_mirror_db_is_taken_from_where_jupyter_was_started(places, monkeypatch):
    launch, kernel = places
    make_store(launch / "data" / "acme.duckdb")
    make_store(kernel / "data" / "acme.duckdb")  # the kernel's own folder must not win
    monkeypatch.setenv("SENTRY_MIRROR_DB", "data/acme.duckdb")
    assert notebook_store() == launch / "data" / "acme.duckdb"
    con = open_store()
    try:
        assert con.execute("SELECT count(*) FROM _migrations").fetchone()[0] > 0
    finally:
        con.close()


def test_the_config_files_db_then_the_default(places, monkeypatch):
    launch, _ = places
    make_store(launch / "stores" / "from-config.duckdb")
    (launch / "mirror.toml").write_text('db = "stores/from-config.duckdb"\n')
    monkeypatch.setenv("SENTRY_MIRROR_CONFIG", "mirror.toml")  # relative to the launch folder too
    assert notebook_store() == launch / "stores" / "from-config.duckdb"
    monkeypatch.setenv("SENTRY_MIRROR_DB", str(make_store(launch / "over.duckdb")))
    assert notebook_store() == launch / "over.duckdb", "SENTRY_MIRROR_DB wins over the config's db"
    monkeypatch.delenv("SENTRY_MIRROR_DB")
    monkeypatch.delenv("SENTRY_MIRROR_CONFIG")
    make_store(launch / "sentry.duckdb")
    assert notebook_store() == launch / "sentry.duckdb"


def test_no_store_is_one_error_saying_how_to_point_at_one(places, monkeypatch):
    launch, _ = places
    with pytest.raises(StoreError) as caught:
        notebook_store()
    message = str(caught.value)
    assert str(launch / "sentry.duckdb") in message
    assert "SENTRY_MIRROR_DB=" in message and "jupyter lab" in message and "sentry-mirror demo" in message
    duckdb.connect(str(launch / "other.duckdb")).close()  # someone else's DuckDB file
    monkeypatch.setenv("SENTRY_MIRROR_DB", "other.duckdb")
    with pytest.raises(StoreError, match="not a sentry-mirror store") as caught:
        notebook_store()
    assert "--db" not in str(caught.value) and "SENTRY_MIRROR_DB=" in str(caught.value)


def test_a_bad_config_file_is_a_config_error(places, monkeypatch):
    monkeypatch.setenv("SENTRY_MIRROR_CONFIG", "missing.toml")
    with pytest.raises(ConfigError, match="missing.toml does not exist"):
        notebook_store()
