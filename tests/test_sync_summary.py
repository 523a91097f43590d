"""What a sync reports for the nightly job: `sync --json` and the `_sync_runs` table hold the same
figures; a failing stream, or one source of several with a refused token, is a partial success (exit
6) with the rest stored; a configuration error still answers `--json` with a record."""

import json
import os
import subprocess
import sys

import duckdb
import pytest
from helpers import ROOT, TOKEN, run, sync_args, write

from sentry_mirror.emulator import Emulator


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


def test_sync_json_and_sync_runs_hold_the_same_figures(emu, tmp_path):
    db = tmp_path / "s.duckdb"
    result = run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    (source,) = summary["sources"]
    assert summary["status"] == "ok" and source["errors"] == []
    assert source["rows"]["events"] == emu.truth()["counts"]["events"]
    assert sum(s["requests"] for s in source["streams"].values()) == source["requests"] > 0
    con = duckdb.connect(str(db), read_only=True)
    requests, retries, limited, streams, status = con.execute(
        "SELECT requests, retries, rate_limited, streams, status FROM _sync_runs").fetchone()
    con.close()
    assert (requests, retries, limited, status) == (source["requests"], source["retries"], source["rate_limited"], "ok")
    assert json.loads(streams) == source["streams"]
    shown = run("status", "--db", str(db))
    assert shown.exit_code == 0, shown.output
    stats_line = next(line for line in shown.output.splitlines() if line.strip().startswith("project_stats"))
    assert "not yet stored" not in stats_line and "no cursor" in stats_line  # it stored rows


def test_a_failing_stream_is_a_partial_success_and_the_rest_is_stored(tmp_path, monkeypatch):
    from sentry_mirror.fetching.client import SentryClient
    from sentry_mirror.running import runner

    # The same client the command builds, with quick retries: the outage outlasts them in seconds.
    monkeypatch.setattr(runner, "client_for", lambda s: SentryClient(s.url, s.token, backoff_base=0.01))
    with Emulator(seed=12, scale="tiny", token=TOKEN) as emu:
        emu.faults.add(kind="500", route="*/stats_v2/*", rate=1.0)  # project stats keep failing
        db = tmp_path / "p.duckdb"
        result = run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN})
        assert result.exit_code == 6, result.output
        summary = json.loads(result.stdout)
        (source,) = summary["sources"]
        assert summary["status"] == "partial" and source["streams"]["project_stats"]["error"]
        assert source["rows"]["events"] == emu.truth()["counts"]["events"]  # the other streams were stored
        status = run("status", "--db", str(db), "--json")
        info = json.loads(status.stdout)["sources"][emu.org_slug]
        assert info["last_run"]["status"] == "partial" and "project_stats" in info["last_run"]["error"]
        emu.faults.clear()
        assert run(*sync_args(emu, db), env={"SENTRY_AUTH_TOKEN": TOKEN}).exit_code == 0


def test_one_source_with_a_refused_token_leaves_the_others_synced(emu, tmp_path):
    """Two sources in one config, the first with a wrong token: the second still syncs, the summary
    names both, and the exit status is the partial one. Both refused: the token's own exit 5."""
    config = write(tmp_path, f'db = "{tmp_path / "two.duckdb"}"\n'
                             f'[[sources]]\nname = "bad"\nurl = "{emu.url}"\norg = "{emu.org_slug}"\ntoken_env = "SM_BAD"\n'
                             f'[[sources]]\nname = "good"\nurl = "{emu.url}"\norg = "{emu.org_slug}"\ntoken_env = "SM_GOOD"\n')
    wrong = "sntryu_" + "0" * 64
    result = run("sync", "-c", config, "-q", env={"SM_BAD": wrong, "SM_GOOD": TOKEN})
    assert result.exit_code == 6, result.output
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED bad: Sentry answered 401")]
    assert failed and "check the token in SM_BAD, the config's token_env" in failed[0], result.stdout
    assert any(line.startswith("synced good") for line in lines), result.stdout
    con = duckdb.connect(str(tmp_path / "two.duckdb"), read_only=True)
    runs = dict(con.execute("SELECT source, status FROM _sync_runs").fetchall())
    events = con.execute("SELECT count(*) FROM events WHERE source = 'good'").fetchone()[0]
    con.close()
    assert runs == {"bad": "failed", "good": "ok"} and events == emu.truth()["counts"]["events"]
    both = run("sync", "-c", config, "-q", env={"SM_BAD": wrong, "SM_GOOD": wrong})
    assert both.exit_code == 5 and "401" in both.stderr


@pytest.mark.parametrize("args, env, code", [
    (["--org", "acme"], {"SENTRY_AUTH_TOKEN": ""}, 2),  # no token: before any store or server
    (["--org", "acme", "--url", "ftp://x"], {}, 2),
    (["--org", "acme", "--url", "http://127.0.0.1:9", "--insecure", "--ca-bundle", os.devnull], {}, 2),
])
def test_sync_json_answers_a_configuration_error_as_json(tmp_path, args, env, code):
    """A cron line keeps `sync --json` as its record: an exit-2 error printed nothing on stdout."""
    out = subprocess.run([sys.executable, "-m", "sentry_mirror", "sync", "--json", "--db", str(tmp_path / "s.duckdb"),
                          *args], env={**os.environ, "SENTRY_AUTH_TOKEN": TOKEN, "SENTRYCLIRC": os.devnull, **env},
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == code, out.stderr
    record = json.loads(out.stdout)
    assert record["status"] == "failed" and record["exit_code"] == code and record["error"]
