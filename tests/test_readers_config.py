"""Where the readers (status, query, issues, report, export) find the store: the config file's
`db`, from `-c` or SENTRY_MIRROR_CONFIG, unless `--db` is given; a reader needs no token."""

import pytest
from helpers import invoke as run
from helpers import one_line_error


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_readers_take_the_store_from_the_config_file_unless_db_is_given(tmp_path, monkeypatch):
    """status, query, issues, report and export said '[default: …, or the config's db]' but had no
    -c: with SENTRY_MIRROR_CONFIG set they still looked for sentry.duckdb. A reader needs no token:
    only the file's db is read."""
    from sentry_mirror.storage.store import Store

    mine, other = tmp_path / "mine.duckdb", tmp_path / "other.duckdb"
    for path, n in ((mine, 1), (other, 2)):
        store = Store(str(path))
        store.con.execute(f"CREATE TABLE marker AS SELECT {n} AS n")
        store.close()
    config = tmp_path / "c.toml"
    config.write_text(f'db = "{mine}"\n[[sources]]\norg = "acme"\ntoken_env = "SM_UNSET_TOKEN"\n')
    asked = "SELECT n FROM marker"
    assert run("query", "-c", str(config), asked, "--format", "csv").stdout == "n\n1\n"
    monkeypatch.setenv("SENTRY_MIRROR_CONFIG", str(config))
    assert run("query", asked, "--format", "csv").stdout == "n\n1\n"
    assert run("query", "--db", str(other), asked, "--format", "csv").stdout == "n\n2\n"
    assert f"store {mine} has never synced" in run("status").stdout
    line = one_line_error(run("issues", "-c", str(tmp_path / "missing.toml")), code=2)
    assert "does not exist" in line
