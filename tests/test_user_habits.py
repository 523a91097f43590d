"""Habits users bring from sentry-cli, sqlite-utils and the DuckDB CLI: sentry-cli's name for the
token, a status that says which store it read, and a demo whose data ends at the present."""

import json
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from click.testing import CliRunner

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator

TOKEN = "sntryu_" + "e" * 64


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def test_auth_token_is_sentry_clis_name_for_the_token(tmp_path):
    db = str(tmp_path / "m.duckdb")
    with Emulator(seed=61, scale="tiny", token=TOKEN) as emu:
        result = CliRunner().invoke(cli, ["sync", "--url", emu.url, "--org", emu.org_slug, "--auth-token", TOKEN,
                                          "--db", db, "-q"])
        assert result.exit_code == 0, result.output
    status = CliRunner().invoke(cli, ["status", "--db", db, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["store"] == db  # which store it read, for a script that keeps the answer


def test_the_demo_ends_at_the_present(tmp_path):
    """After the day the demo lets pass, events lay up to 23 hours in the wall clock's future: the
    last 30 minutes listed dozens of issues, and trends ended in a cliff."""
    db = str(tmp_path / "demo.duckdb")
    result = CliRunner().invoke(cli, ["demo", "--db", db, "--scale", "tiny", "-q"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(db, read_only=True)
    newest = con.execute("SELECT max(date_created), count(*) FROM events").fetchone()
    con.close()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    assert newest[1] > 0 and now - timedelta(days=1) < newest[0] <= now


def test_starting_the_cli_imports_no_pandas_http_or_plotting():
    """`--help` and every command pay for what the CLI imports at start: pandas (0.3 s), the HTTP
    client and matplotlib are loaded by the commands that use them, not by the CLI."""
    import subprocess
    import sys

    code = ("import sys, sentry_mirror.cli; "
            "print(sorted(m for m in ('pandas', 'requests', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
