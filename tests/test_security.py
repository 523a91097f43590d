"""Tokens stay secret: not in the store file, its WAL or lock, the logs, any output or error."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path


from sentry_mirror.emulator import Emulator

TOKEN = "sntryu_" + "5ec7e7" * 10 + "abcd"


def run(args, token=TOKEN, **kw):
    env = dict(os.environ, SENTRY_AUTH_TOKEN=token, SENTRYCLIRC=os.devnull)
    return subprocess.run([sys.executable, "-m", "sentry_mirror", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kw)


def files_mentioning(folder: Path, secret: str):
    needle = secret.encode()
    return [p.name for p in folder.iterdir() if p.is_file() and needle in p.read_bytes()]


def test_token_never_written_anywhere(tmp_path):
    db = tmp_path / "s.duckdb"
    with Emulator(seed=31, scale="tiny", token=TOKEN) as emu:
        first = run(["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-vv"])
        assert first.returncode == 0, first.stderr
        requests_logged = [line for line in first.stderr.splitlines() if "sentry_mirror.client: GET organizations/" in line]
        assert len(requests_logged) >= 3  # -vv logged every request: the lines checked below
        emu.advance(6)
        second = run(["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-vv"])
        assert second.returncode == 0, second.stderr
        wrong = run(["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db)], token=TOKEN[:-4] + "0000")
        assert wrong.returncode == 5
    status = run(["status", "--db", str(db), "--json"])
    outputs = [first.stdout, first.stderr, second.stdout, second.stderr, wrong.stdout, wrong.stderr,
               status.stdout, status.stderr]
    for text in outputs:
        assert TOKEN not in text and TOKEN[:-4] + "0000" not in text
    assert files_mentioning(tmp_path, TOKEN) == []
    assert files_mentioning(tmp_path, TOKEN[7:30]) == []  # nor a recognisable part of it
    assert json.loads(status.stdout)["sources"]


def test_store_and_its_files_are_private(tmp_path):
    db = tmp_path / "s.duckdb"
    with Emulator(seed=32, scale="tiny", token=TOKEN) as emu:
        out = run(["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q"])
    assert out.returncode == 0, out.stderr
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"


def test_insecure_is_explicit_and_warned(tmp_path):
    with Emulator(seed=33, scale="tiny", token=TOKEN) as emu:
        out = run(["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(tmp_path / "s.duckdb"), "-q",
                   "--insecure"])
    assert out.returncode == 0
    assert "TLS verification is off" in out.stderr


def test_tls_verification_on_by_default():
    from sentry_mirror.runner import client_for
    from sentry_mirror.config import Source

    client = client_for(Source(name="x", url="https://sentry.example", org="x", token="t-1234"))
    assert client.session.verify is True
