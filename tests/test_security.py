"""Tokens stay secret: not in the store file, its WAL or lock, the logs, any output or error."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from sentry_mirror.emulator import Emulator

TOKEN = "sntryu_" + "5ec7e7" * 10 + "abcd"


def run(args, token=TOKEN, env_extra=None, **kw):
    env = dict(os.environ, SENTRY_AUTH_TOKEN=token, SENTRYCLIRC=os.devnull, **(env_extra or {}))
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
        requests_logged = [line for line in first.stderr.splitlines() if "sentry_mirror.fetching.client: GET organizations/" in line]
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
    from sentry_mirror.running.config import Source
    from sentry_mirror.running.runner import client_for

    client = client_for(Source(name="x", url="https://sentry.example", org="x", token="t-1234"))
    assert client.session.verify is True


# ----- leaks found in review: every one of these printed the token, or most of it --------------------

import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import pytest  # noqa: E402

from sentry_mirror import redact  # noqa: E402
from sentry_mirror.errors import ApiError, ConfigError, MirrorError  # noqa: E402
from sentry_mirror.fetching.client import SentryClient  # noqa: E402


class _Echo(BaseHTTPRequestHandler):
    """Answers 400 with the Authorization header echoed: in the body at `offset`, or as the reason."""

    offset = 0
    in_reason = False

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        body = b"" if self.in_reason else ("x" * self.offset + auth + " was refused").encode()
        self.send_response(400, f"Bad header {auth}" if self.in_reason else None)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo():
    def serve(**attrs):
        handler = type("Handler", (_Echo,), attrs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers = []
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _error_text(url, token, auth="bearer"):
    client = SentryClient(url, token, auth_scheme=auth, max_retries=0)
    with pytest.raises(ApiError) as caught:
        client.get("organizations/")
    return str(caught.value)


@pytest.mark.parametrize("offset", [0, 60, 100, 119])
def test_an_echoed_token_cut_by_the_snippet_is_not_shown_in_part(echo, offset):
    text = _error_text(echo(offset=offset), TOKEN)
    assert TOKEN[7:20] not in text and TOKEN[-12:] not in text, text  # nor either end of it


def test_an_echoed_token_in_the_reason_phrase_is_masked(echo):
    text = _error_text(echo(in_reason=True), TOKEN)
    assert "Bad header Bearer sntryu_***" in text and TOKEN[7:] not in text


def test_the_basic_form_of_a_legacy_key_is_masked(echo):
    import base64

    key = "0123456789abcdef0123456789abcdef"
    text = _error_text(echo(), key, auth="basic")
    assert base64.b64encode(f"{key}:".encode()).decode() not in text and key not in text


def test_an_error_built_with_a_token_in_it_prints_it_masked():
    redact.register_token(TOKEN)
    for error in (MirrorError(f"saw {TOKEN}"), ApiError(400, f"bad {TOKEN}", "http://x"), ConfigError("x", hint=TOKEN)):
        assert TOKEN not in str(error) and "sntryu_***" in str(error)


def _config(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("pasted", [TOKEN, "sntrys_eyJpYXQiOjE3MDAwMDAwMDAuMCwidXJsIjoiaHR0cHM6Ly9zZW50cnkuaW8ifQ==_abc"])
def test_a_token_pasted_as_token_env_is_never_echoed(tmp_path, pasted):
    path = _config(tmp_path, f'[[sources]]\norg = "acme"\ntoken_env = "{pasted}"\n')
    for args in (["config", "check", "-c", path], ["sync", "-c", path, "--db", str(tmp_path / "s.duckdb")]):
        out = run(args)
        assert out.returncode == 2, out.stderr
        assert "looks like a token itself" in out.stderr
        assert pasted not in out.stdout + out.stderr and pasted[7:30] not in out.stdout + out.stderr


def test_token_flag_is_refused_for_several_sources(tmp_path):
    path = _config(tmp_path, '[[sources]]\norg = "a"\nurl = "http://127.0.0.1:9"\ntoken_env = "A_TOKEN"\n'
                             '[[sources]]\norg = "b"\nurl = "http://127.0.0.1:9"\ntoken_env = "B_TOKEN"\n')
    out = run(["sync", "-c", path, "--token", "tok_abcdefghijklmnop", "--db", str(tmp_path / "s.duckdb")])
    assert out.returncode == 2 and "--token change one source" in out.stderr and "--source" in out.stderr
    assert not (tmp_path / "s.duckdb").exists()


def test_sources_on_two_servers_each_need_their_own_token_env(tmp_path):
    path = _config(tmp_path, '[[sources]]\norg = "a"\nurl = "https://sentry.io"\n'
                             '[[sources]]\norg = "b"\nurl = "https://sentry.example.com"\ntoken_env = "B_TOKEN"\n')
    out = run(["config", "check", "-c", path], env_extra={"B_TOKEN": "x" * 20})
    assert out.returncode == 2 and "sources[0]: no token_env, and the config names more than one server" in out.stdout + out.stderr
    same = _config(tmp_path, '[[sources]]\norg = "a"\n[[sources]]\norg = "b"\nurl = "https://sentry.io/"\n')
    assert run(["config", "check", "-c", same]).returncode == 0  # two orgs on one server may share it


def test_a_percent_sign_in_sentryclirc_is_read_as_itself(tmp_path):
    rc = tmp_path / "rc"
    rc.write_text("[auth]\ntoken = abc%zz-secret-part-0123456789\n[defaults]\norg = acme\n")
    rc.chmod(0o600)
    env = dict(os.environ, SENTRYCLIRC=str(rc))
    env.pop("SENTRY_AUTH_TOKEN", None)
    out = subprocess.run([sys.executable, "-m", "sentry_mirror", "config", "check"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "zz-secret-part" not in out.stdout + out.stderr
    assert f"({rc})" in out.stdout  # the file each value came from


def test_a_password_in_the_url_is_masked_in_config_check(tmp_path):
    out = run(["config", "check", "--url", "http://proxyuser:Pr0xyS3cret99@127.0.0.1:9", "--org", "acme"])
    assert out.returncode == 0, out.stderr
    assert "Pr0xyS3cret99" not in out.stdout + out.stderr and "proxyuser:***" in out.stdout
