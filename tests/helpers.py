"""Helpers shared by several test modules: one sync against the emulator, a check that a store
is level with it, a strict (or tolerant) reading of Sentry's Link header for walking the
emulator by hand, a query's first column as a set, the command line as the nightly job runs it
(with a token it must never print), and a check that a bad input is one clear line."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from click.testing import CliRunner

from sentry_mirror.cli import cli
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.syncing.syncer import Syncer, SyncOptions

LINK_RE = re.compile(r'<([^>]*)>; rel="(\w+)"; results="(true|false)"; cursor="([^"]*)"')
TOLERANT_LINK_RE = re.compile(r'<([^>]*)>; rel="(\w+)"; results="(true|false)"(?:; cursor="([^"]*)")?')
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sntryu_" + "5e" * 32  # a known token: it must never be printed


def sync(store, emu, **options):
    """One sync of the emulator's organization into `store`, with quick retries."""
    client = SentryClient(emu.url, emu.token, backoff_base=0.01)
    try:
        return Syncer(store, client, emu.org_slug, options=SyncOptions(**options)).run()
    finally:
        client.close()


def links(resp: requests.Response, strict: bool = True) -> dict[str, tuple[str, str, str | None]]:
    """rel -> (url, results, cursor), from Sentry's exact Link format (or GlitchTip's, not strict)."""
    regex = LINK_RE if strict else TOLERANT_LINK_RE
    return {rel: (url, results, cursor or None) for url, rel, results, cursor in regex.findall(resp.headers["Link"])}


def walk(s: requests.Session, url: str, strict: bool = True) -> tuple[list, list[requests.Response]]:
    """Follow rel="next" until results="false"; returns all rows and all responses."""
    rows, responses = [], []
    while True:
        resp = s.get(url)
        assert resp.status_code == 200, resp.text
        rows.extend(resp.json())
        responses.append(resp)
        nxt_url, results, _ = links(resp, strict)["next"]
        if results == "false":
            return rows, responses
        url = nxt_url


def assert_level(store, emu, org: str | None = None, source: str | None = None):
    """The store holds what the emulator serves: projects, issues, releases, each event once. With
    `org` and `source`: that organization of the emulator (regions.py) in that source's rows."""
    truth = emu.truth() if org is None else requests.get(f"{emu.url}/_emulator/truth?org={org}", timeout=30).json()
    events = requests.get(emu.url + "/_emulator/truth/events" + (f"?org={org}" if org else ""),
                          timeout=30).json()["event_ids"]
    con = store.con
    where, params = ("source = ?", [source]) if source else ("true", [])
    assert {r[0] for r in con.execute(f"SELECT id FROM projects WHERE {where}", params).fetchall()} == set(truth["projects"])
    got = {r[0]: (r[1], r[2]) for r in con.execute(
        f"SELECT id, status, times_seen FROM issues WHERE deleted_at IS NULL AND {where}", params).fetchall()}
    assert got == {i: (v["status"], v["count"]) for i, v in truth["issues"].items()}
    stored = [r[0] for r in con.execute(f"SELECT event_id FROM events WHERE {where}", params).fetchall()]
    assert len(stored) == len(set(stored))  # no duplicates (events have no primary key to refuse them)
    assert set(stored) == set(events)
    assert {r[0] for r in con.execute(f"SELECT version FROM releases WHERE {where}", params).fetchall()} \
        == set(truth["releases"])


def session(emu, token: str | None = None) -> requests.Session:
    """A session that speaks to the emulator with its token (or another)."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token or emu.token}"
    return s


def org(emu, path: str) -> str:
    """The URL of an organization route of the emulator."""
    return f"{emu.url}/api/0/organizations/{emu.org_slug}/{path}"


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert TOKEN not in result.output + (result.stderr or ""), "the token was printed"
    return result


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def sync_args(emu, db) -> list[str]:
    return ["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "--json"]


def column(store, sql, *params):
    return {r[0] for r in store.con.execute(sql, list(params)).fetchall()}


def invoke(*args, **kwargs):
    """The CLI in-process with its exceptions let through (a bug shows as itself, not as exit 1)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, **kwargs)


def one_line_error(result, code=None):
    assert result.exit_code != 0
    if code is not None:
        assert result.exit_code == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]
