"""Settings of issue 23: SENTRY_HOST as sentry-cli's environment gives it (a bare host), and proxy
headers whose values come from the environment (never printed, logged or stored)."""

import logging

import pytest
from helpers import TOKEN, run, write

from sentry_mirror.errors import ConfigError
from sentry_mirror.running.config import resolve
from sentry_mirror.running.runner import client_for

GATEWAY_ID = "conn-7f3a9c2e51d04b88"  # a gateway's connection id: the value that must not leak


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


@pytest.mark.parametrize("host, url", [
    ("sentry.io", "https://sentry.io"),
    ("sentry.example.com", "https://sentry.example.com"),
    ("sentry.example.com:8443", "https://sentry.example.com:8443"),
    ("http://localhost:9000", "http://localhost:9000"),  # a scheme is kept
    ("https://de.sentry.io/", "https://de.sentry.io/"),
])
def test_sentry_host_as_a_bare_host_means_https(monkeypatch, host, url):
    monkeypatch.setenv("SENTRY_HOST", host)
    (source,) = resolve(config_path=None, url=None, org="acme", token="tok-1234", db=None).sources
    assert source.url == url
    assert source.origins["url"].startswith("env SENTRY_HOST")


def test_sentry_url_and_the_flag_keep_their_rules(monkeypatch):
    monkeypatch.setenv("SENTRY_HOST", "other.example.com")
    monkeypatch.setenv("SENTRY_URL", "sentry.example.com")  # SENTRY_URL is a URL: no scheme is refused
    with pytest.raises(ConfigError, match="not an http"):
        resolve(config_path=None, url=None, org="acme", token="tok-1234", db=None)
    (source,) = resolve(config_path=None, url="https://flag.example.com", org="acme", token="tok-1234",
                        db=None).sources
    assert (source.url, source.origins["url"]) == ("https://flag.example.com", "flag")


def test_a_bare_sentry_host_of_sentry_io_asks_no_url_of_a_source(monkeypatch, tmp_path):
    """A source without url is sentry.io; SENTRY_HOST=sentry.io is that same server, not another."""
    monkeypatch.setenv("SENTRY_HOST", "sentry.io")
    monkeypatch.setenv("SM_TOKEN", TOKEN)
    path = write(tmp_path, "[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n")
    (source,) = resolve(config_path=path, url=None, org=None, token=None, db=None).sources
    assert source.url == "https://sentry.io"


def test_config_check_says_the_url_came_from_sentry_host(monkeypatch):
    result = run("config", "check", env={"SENTRY_HOST": "sentry.example.com", "SENTRY_ORG": "acme",
                                         "SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("url "))
    assert "https://sentry.example.com" in row and "env SENTRY_HOST" in row


HEADERS_ENV = ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n"
               "headers_env = { 'Maton-Connection' = 'MATON_CONNECTION' }\n")


def test_headers_from_the_environment_are_sent_and_never_shown(tmp_path, monkeypatch):
    path = write(tmp_path, HEADERS_ENV)
    monkeypatch.setenv("SM_TOKEN", TOKEN)
    monkeypatch.setenv("MATON_CONNECTION", GATEWAY_ID)
    (source,) = resolve(config_path=path, url=None, org=None, token=None, db=None).sources
    client = client_for(source)
    try:
        assert client._headers["Maton-Connection"] == GATEWAY_ID
    finally:
        client.close()
    assert GATEWAY_ID not in repr(source)
    result = run("config", "check", "-c", path, env={"SM_TOKEN": TOKEN, "MATON_CONNECTION": GATEWAY_ID})
    assert result.exit_code == 0, result.output
    assert GATEWAY_ID not in result.output + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("headers_env "))
    assert "Maton-Connection" in row and "from env MATON_CONNECTION" in row


def test_a_missing_header_variable_is_one_config_error_naming_it(tmp_path):
    path = write(tmp_path, HEADERS_ENV)
    for args in (("config", "check", "-c", path), ("sync", "-c", path, "--db", str(tmp_path / "s.duckdb"))):
        result = run(*args, env={"SM_TOKEN": TOKEN})
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "MATON_CONNECTION" in lines[0] and "Maton-Connection" in lines[0], result.stderr


@pytest.mark.parametrize("text, expected", [
    (HEADERS_ENV + "headers = { 'maton-connection' = 'x' }\n", "Maton-Connection is in both headers and headers_env"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nheader_env = { 'A' = 'B' }\n", "did you mean `headers_env`?"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nheaders_env = { 'A' = 'not a name' }\n",
     "sources[0].headers_env must be"),
])
def test_headers_env_is_checked(tmp_path, text, expected):
    result = run("config", "check", "-c", write(tmp_path, text), env={"SM_TOKEN": TOKEN, "MATON_CONNECTION": "x1"})
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_header_values_from_the_environment_never_reach_the_store_or_logs(emu, tmp_path, caplog):
    path = write(tmp_path, f"[[sources]]\norg = '{emu.org_slug}'\nurl = '{emu.url}'\ntoken_env = 'SM_TOKEN'\n"
                           "headers_env = { 'Maton-Connection' = 'MATON_CONNECTION' }\n")
    db = tmp_path / "s.duckdb"
    with caplog.at_level(logging.DEBUG):
        result = run("sync", "-c", path, "--db", str(db), "-v",
                     env={"SM_TOKEN": TOKEN, "MATON_CONNECTION": GATEWAY_ID})
    assert result.exit_code == 0, result.output
    assert GATEWAY_ID not in result.output + result.stderr + caplog.text
    assert GATEWAY_ID.encode() not in db.read_bytes()
    assert all(GATEWAY_ID.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != db)
