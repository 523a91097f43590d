"""One clear line for each kind of bad input, without a server: no organization, a malformed
config, an unreachable URL, a missing store or folder, a port in use, a damaged store, and TLS to a
server that does not speak it; no traceback, no token, and the exit status of its kind."""

import socket

import pytest
from helpers import invoke as run
from helpers import ROOT, one_line_error


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


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


def test_sync_into_a_folder_that_does_not_exist(tmp_path):
    line = one_line_error(run("sync", "--url", "http://127.0.0.1:9", "--org", "a", "--token", "t-1234",
                              "--db", str(tmp_path / "no" / "such" / "s.duckdb")), code=3)
    assert "does not exist" in line


def test_the_emulator_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_line_error(run("emulator", "--port", str(port), "--scale", "tiny"), code=2)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


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


HOOKS_SOURCE = ("--url", "http://127.0.0.1:9", "--org", "acme", "--token", "t-hooks-1")


def test_hooks_serve_on_a_port_in_use_says_so_in_one_line_and_leaves_nothing_started(tmp_path):
    import threading

    before = set(threading.enumerate())
    db = tmp_path / "h.duckdb"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_line_error(run("hooks", "serve", "--port", str(port), "--db", str(db), *HOOKS_SOURCE), code=2)
    assert line == (f"sentry-mirror: error: cannot listen on 127.0.0.1:{port}: Address already in use "
                    "(pick another --port, or --port 0 for any free one)")
    assert set(threading.enumerate()) <= before  # no receiver, writer or spool thread left behind
    assert not (tmp_path / "h.duckdb.hooks-spool").exists() and not db.exists()


@pytest.mark.parametrize("host", ["999.1.1.1", "nosuchhost.invalid"])
def test_hooks_serve_on_a_host_that_is_no_address_says_so_in_one_line(tmp_path, host):
    line = one_line_error(run("hooks", "serve", "--host", host, "--port", "0", "--db", str(tmp_path / "h.duckdb"),
                              *HOOKS_SOURCE), code=2)
    assert f"cannot listen on {host}:0" in line and "--host" in line
    assert not (tmp_path / "h.duckdb.hooks-spool").exists()


def test_hooks_serve_refuses_an_empty_host(tmp_path):
    """In a process of its own: a receiver that took '' as every interface would serve until stopped."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sentry_mirror", "hooks", "serve", "--host", "", "--port", "0",
                           "--db", str(tmp_path / "h.duckdb"), *HOOKS_SOURCE],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "--host" in lines[0] and "0.0.0.0" in lines[0], done.stderr
