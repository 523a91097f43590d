"""The CLI without a server: help text everywhere, and one clear line for each kind of bad input."""

import socket
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from sentry_mirror.cli import cli


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def run(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def one_line_error(result, code=None):
    assert result.exit_code != 0
    if code is not None:
        assert result.exit_code == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def test_every_command_and_option_has_help():
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help"
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                assert param.help, f"{name} --{param.name} has no help"


def all_commands(group=cli, prefix="sentry-mirror"):
    """Every command, the groups' own subcommands included, with the words that call it."""
    yield prefix, group
    for name, command in getattr(group, "commands", {}).items():
        yield from all_commands(command, f"{prefix} {name}")


def test_every_command_has_a_one_line_docstring_and_every_option_help():
    for name, command in all_commands():
        summary = (command.help or "").split("\n\n")[0]
        assert summary.strip() and "\n" not in summary.strip(), f"{name}: no one-line summary first in its docstring"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts[-1]} has no help"


def test_help_shows_env_vars():
    out = run("sync", "--help").output
    assert "SENTRY_AUTH_TOKEN" in out and "SENTRY_ORG" in out and "SENTRY_URL" in out


def test_sync_without_org():
    line = one_line_error(run("sync", "--token", "t-123"), code=2)
    assert "no organization" in line and "--org" in line


def test_sync_with_malformed_config(tmp_path):
    (tmp_path / "bad.toml").write_text("[[sources]\norg=")
    line = one_line_error(run("sync", "--config", str(tmp_path / "bad.toml")), code=2)
    assert "not valid TOML" in line


def test_sync_unreachable_url_is_fast_and_clear(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("sync", "--url", f"http://127.0.0.1:{port}", "--org", "acme", "--token", "tok-unreach-1",
                 "--db", str(tmp_path / "s.duckdb"), "-q")
    line = one_line_error(result)
    assert "could not reach Sentry" in line and "tok-unreach-1" not in result.output + result.stderr


def test_status_of_missing_store(tmp_path):
    line = one_line_error(run("status", "--db", str(tmp_path / "missing.duckdb")), code=3)
    assert "no store at" in line


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


def test_sync_into_a_folder_that_does_not_exist(tmp_path):
    line = one_line_error(run("sync", "--url", "http://127.0.0.1:9", "--org", "a", "--token", "t-1234",
                              "--db", str(tmp_path / "no" / "such" / "s.duckdb")), code=3)
    assert "does not exist" in line


def test_console_script_runs_as_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "sentry_mirror", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "sentry-mirror, version" in out.stdout


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


def test_the_emulator_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_line_error(run("emulator", "--port", str(port), "--scale", "tiny"), code=2)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


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


def test_a_damaged_store_is_one_line_for_readers_and_the_sync(tmp_path):
    """A store cut short (a full disk, a copy interrupted): each command says the file may be
    damaged, at once, instead of a traceback or 30 s of 'a sync is writing'."""
    from sentry_mirror.storage.store import Store

    whole = tmp_path / "whole.duckdb"
    store = Store(str(whole))
    store.con.execute("CREATE TABLE filler AS SELECT range AS n, repeat('x', 200) AS t FROM range(200000)")
    store.close()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(whole.read_bytes()[:100_000])
    for args in (("status",), ("report", "top"), ("issues",), ("query", "SELECT 1"),
                 ("sync", "--url", "http://127.0.0.1:9", "--org", "a", "--token", "t-1234")):
        result = run(*args, "--db", str(cut))
        line = one_line_error(result, code=3)
        assert "may be damaged" in line, (args, line)


def test_tls_to_a_server_that_does_not_speak_it_is_one_line_without_retries(tmp_path):
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        accepted = []

        def answer_in_plain_http():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                accepted.append(conn)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer_in_plain_http, daemon=True).start()
        result = run("sync", "--url", f"https://127.0.0.1:{port}", "--org", "a", "--token", "t-tls-123",
                     "--db", str(tmp_path / "s.duckdb"), "-q")
        line = one_line_error(result, code=4)
        assert "TLS failed" in line and "--ca-bundle" in line and "t-tls-123" not in line
        assert len(accepted) == 1  # not retried: the same answer would come back
        for conn in accepted:
            conn.close()


def test_the_scale_choices_are_the_emulators():
    from sentry_mirror.emulator.world import SCALES
    from sentry_mirror.running.options import SCALES as CHOICES

    assert CHOICES == list(SCALES)
