"""Bad local input: one clear line, a non-zero exit, and nothing already stored lost."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from sentry_mirror.emulator import Emulator

TOKEN = "sntryu_" + "1" * 64


# Sets a file-size limit, then becomes the CLI: the limit is set by the new process itself, not by
# Python code run between fork and exec (a preexec_fn), which a test process with other threads
# (emulators, DuckDB's) may not survive.
LIMITED = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           "limit = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
           "os.execv(sys.executable, [sys.executable, '-m', 'sentry_mirror', *sys.argv[2:]])")


def cli(*args, file_size_limit=None, cwd=None):
    env = dict(os.environ, SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull)
    start = [sys.executable, "-m", "sentry_mirror"] if file_size_limit is None else \
        [sys.executable, "-c", LIMITED, str(file_size_limit)]
    return subprocess.run([*start, *args], env=env, capture_output=True, text=True, timeout=300, cwd=cwd)


def one_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("issues", "events", "projects")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=41, scale="tiny", token=TOKEN) as e:
        yield e


@pytest.fixture
def synced(tmp_path, emu):
    db = tmp_path / "s.duckdb"
    out = cli("sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q")
    assert out.returncode == 0, out.stderr
    return db


def test_full_disk_fails_cleanly_and_keeps_what_was_stored(synced, emu):
    before = counts(synced)
    emu.advance(48)  # enough new data that the next sync must write
    limit = 128 * 1024  # per file: below the store's size, so growing it or its WAL fails
    assert synced.stat().st_size > limit

    out = cli("sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(synced), "-q", file_size_limit=limit)
    line = one_line(out)
    assert out.returncode == 3 and "sentry-mirror: error:" in line
    after = counts(synced)
    assert all(after[t] >= before[t] for t in before)  # nothing lost
    # and once there is room again, the next sync completes
    assert cli("sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(synced), "-q").returncode == 0


def test_read_only_folder(emu, tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    db = folder / "s.duckdb"
    try:
        if os.geteuid() != 0:
            out = cli("sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db))
            line, code = one_line(out), out.returncode
        else:
            # Root writes anywhere, and an unprivileged user cannot run this virtualenv: ask the
            # same question through the CLI in-process, with the OS answering "not writable".
            from click.testing import CliRunner

            from sentry_mirror.cli import cli as command

            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder and mode & os.W_OK
                                else real_access(p, mode))
            monkeypatch.setenv("SENTRY_AUTH_TOKEN", TOKEN)
            result = CliRunner().invoke(command, ["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db)])
            lines = [x for x in result.stderr.splitlines() if x.strip()]
            assert len(lines) == 1 and result.exception is None or isinstance(result.exception, SystemExit)
            line, code = lines[0], result.exit_code
        assert code == 3 and "not writable" in line
        assert not db.exists()
    finally:
        folder.chmod(0o755)


def test_store_from_a_newer_version(synced):
    con = duckdb.connect(str(synced))
    con.execute("INSERT INTO _migrations VALUES ('999_future', now()::TIMESTAMP)")
    con.close()
    before = counts(synced)
    line = one_line(cli("sync", "--url", "http://127.0.0.1:9", "--org", "x", "--db", str(synced)))
    assert "newer sentry-mirror" in line
    assert counts(synced) == before


def test_not_a_store(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_bytes(b"PK\x03\x04 a zip file, not a store")
    line = one_line(cli("sync", "--url", "http://127.0.0.1:9", "--org", "x", "--db", str(path)))
    assert "not a DuckDB file" in line and path.read_bytes().startswith(b"PK")


@pytest.mark.parametrize("value", ["2025-13-45", "last tuesday", "7 parsecs", "'; DROP TABLE issues; --", ""])
def test_bad_dates_in_filters(synced, value):
    line = one_line(cli("issues", "--db", str(synced), "--since", value))
    assert "bad date for --since" in line


def test_injection_in_a_filter_is_just_a_value(synced):
    before = counts(synced)
    out = cli("issues", "--db", str(synced), "--project", "x' OR '1'='1")
    assert "no project 'x' OR '1'='1' in the store" in one_line(out)  # looked up as a value: none has it
    assert counts(synced) == before


def test_query_cannot_write(synced):
    before = counts(synced)
    line = one_line(cli("query", "--db", str(synced), "DELETE FROM issues"))
    assert "query failed" in line
    assert counts(synced) == before


@pytest.mark.parametrize("sql", ["SELECT * FROM read_csv('{secret}')", "COPY (SELECT * FROM issues) TO '{out}'",
                                 "ATTACH '{other}' AS o", "SELECT * FROM read_text('{secret}')"])
def test_query_reads_no_other_file_and_writes_none(synced, tmp_path, sql):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    out, other = tmp_path / "leak.csv", tmp_path / "other.duckdb"
    result = cli("query", "--db", str(synced), sql.format(secret=secret, out=out, other=other))
    line = one_line(result)
    assert "reads the store only" in line and "hunter2" not in result.stdout
    assert not out.exists() and not other.exists()
    assert cli("query", "--db", str(synced), "SELECT count(*) AS n FROM issues").returncode == 0


def test_malformed_config_file(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[[sources]]\norg = 'a'\ntoken_env = 'HOME'\nconcurrency = 'lots'\n")
    line = one_line(cli("sync", "--config", str(bad)))
    assert "concurrency must be" in line
