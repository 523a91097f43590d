"""Where settings come from, and clear errors for malformed ones."""

import pytest

from sentry_mirror import redact
from sentry_mirror.errors import ConfigError
from sentry_mirror.running.config import resolve


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("SENTRY_AUTH_TOKEN", "SENTRY_TOKEN", "SENTRY_URL", "SENTRY_HOST", "SENTRY_ORG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENTRYCLIRC", str(tmp_path / "no-such-sentryclirc"))


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("SENTRY_ORG", "env-org")
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "env-token-123")
    config = resolve(config_path=None, url="https://de.sentry.io", org="flag-org", token="flag-token-123", db=None)
    (source,) = config.sources
    assert (source.url, source.org, source.token) == ("https://de.sentry.io", "flag-org", "flag-token-123")


def test_sentry_cli_environment_variables(monkeypatch):
    monkeypatch.setenv("SENTRY_HOST", "https://sentry.example.com")
    monkeypatch.setenv("SENTRY_ORG", "acme")
    monkeypatch.setenv("SENTRY_TOKEN", "tok-from-env")
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.url, source.org, source.token) == ("https://sentry.example.com", "acme", "tok-from-env")


def test_sentryclirc_fallback(monkeypatch, tmp_path):
    rc = tmp_path / "sentryclirc"
    rc.write_text("[auth]\ntoken = rc-token-abc\n\n[defaults]\norg = rc-org\nurl = https://self.hosted\n")
    monkeypatch.setenv("SENTRYCLIRC", str(rc))
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.url, source.org, source.token) == ("https://self.hosted", "rc-org", "rc-token-abc")


def test_missing_org_and_token_are_clear():
    with pytest.raises(ConfigError, match="no organization"):
        resolve(config_path=None, url=None, org=None, token="t-123", db=None)
    with pytest.raises(ConfigError, match="no auth token"):
        resolve(config_path=None, url=None, org="acme", token=None, db=None)


def test_config_file_sources_with_token_from_named_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ACME_TOKEN", "secret-acme-token")
    path = tmp_path / "c.toml"
    path.write_text('db = "x.duckdb"\n[[sources]]\nname = "eu"\nurl = "https://de.sentry.io"\norg = "acme"\n'
                    'token_env = "ACME_TOKEN"\nheaders = { "X-Proxy-Key" = "k" }\n')
    config = resolve(config_path=str(path), url=None, org=None, token=None, db=None)
    assert config.db == "x.duckdb"
    (source,) = config.sources
    assert (source.name, source.url, source.token, source.headers) == ("eu", "https://de.sentry.io", "secret-acme-token", {"X-Proxy-Key": "k"})
    assert "secret-acme-token" not in repr(source)
    assert "secret-acme-token" not in redact.scrub("oops secret-acme-token leaked")


@pytest.mark.parametrize("text, message", [
    ("db = [", "not valid TOML"),
    ("colour = 'blue'", "unknown key `colour` on line 1"),
    ("[[sources]]\nurl = 'https://sentry.io'", "'org'"),
    ("[[sources]]\norg = 'a'\ntoken = 'abc'", "do not put tokens"),
    ("[[sources]]\norg = 'a'\ntoken_env = 'NOPE_NOT_SET'", "NOPE_NOT_SET is not set"),
    ("[[sources]]\norg = 'a'\ntoken_env = 'HOME'\nauth = 'magic'", "auth must be"),
    ("[[sources]]\norg = 'a'\ntoken_env = 'HOME'\ntimeout = 'soon'", "timeout must be"),
])
def test_malformed_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve(config_path=str(path), url=None, org=None, token=None, db=None)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(config_path="/nonexistent/sentry-mirror.toml", url=None, org=None, token=None, db=None)


def test_example_config_parses(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "tok-example-1")
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = resolve(config_path=str(example), url=None, org=None, token=None, db=None)
    assert [s.name for s in config.sources] == ["acme"]
    assert config.sources[0].token == "tok-example-1"


def test_world_readable_sentryclirc_with_token_warns(monkeypatch, tmp_path, caplog):
    rc = tmp_path / "sentryclirc"
    rc.write_text("[auth]\ntoken = rc-token-xyz\n")
    rc.chmod(0o644)
    monkeypatch.setenv("SENTRYCLIRC", str(rc))
    with caplog.at_level("WARNING"):
        resolve(config_path=None, url=None, org="acme", token=None, db=None)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    assert not any("rc-token-xyz" in r.getMessage() for r in caplog.records)
    caplog.clear()
    rc.chmod(0o600)
    with caplog.at_level("WARNING"):
        resolve(config_path=None, url=None, org="acme", token=None, db=None)
    assert not any("chmod" in r.getMessage() for r in caplog.records)


def test_each_source_gets_its_own_token_even_with_the_env_token_set(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "saas-token-1111")
    monkeypatch.setenv("ONPREM_TOKEN", "onprem-token-2222")
    monkeypatch.setenv("SENTRY_ORG", "env-org")  # must not replace the config's sources either
    path = tmp_path / "c.toml"
    path.write_text('[[sources]]\nname = "saas"\norg = "a"\ntoken_env = "SENTRY_AUTH_TOKEN"\n'
                    '[[sources]]\nname = "onprem"\nurl = "https://sentry.internal"\norg = "b"\ntoken_env = "ONPREM_TOKEN"\n')
    config = resolve(config_path=str(path), url=None, org=None, token=None, db=None)
    assert {s.name: (s.org, s.token) for s in config.sources} == {
        "saas": ("a", "saas-token-1111"), "onprem": ("b", "onprem-token-2222")}


def test_pasted_token_is_stripped_and_control_characters_refused(monkeypatch, tmp_path):
    (source,) = resolve(config_path=None, url=None, org="acme", token="  tok-abc-123\n", db=None).sources
    assert source.token == "tok-abc-123"
    path = tmp_path / "c.toml"
    monkeypatch.setenv("T1", "tok-1234")
    path.write_text('[[sources]]\norg = "a"\ntoken_env = "T1"\nheaders = { "X-Key" = "a\\nb" }\n')
    with pytest.raises(ConfigError, match="control or non-ASCII"):
        resolve(config_path=str(path), url=None, org=None, token=None, db=None)


@pytest.mark.parametrize("name", ["X Key", "X-Key:", "Clé", ""])
def test_a_header_name_that_http_cannot_carry_is_a_config_error(monkeypatch, tmp_path, name):
    """A name with a space went out as is and came back as a confusing 401."""
    path = tmp_path / "c.toml"
    monkeypatch.setenv("T1", "tok-1234")
    path.write_text(f'[[sources]]\norg = "a"\ntoken_env = "T1"\nheaders = {{ "{name}" = "v" }}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="HTTP header names"):
        resolve(config_path=str(path), url=None, org=None, token=None, db=None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://exa mple.com", "http://[::1"])
def test_bad_url_is_a_config_error(url):
    with pytest.raises(ConfigError):
        resolve(config_path=None, url=url, org="acme", token="tok-1234", db=None)


def one_source_file(tmp_path, url_line='url = "https://de.sentry.io"\n', name_line="", token_line='token_env = "ACME_TOKEN"\n'):
    path = tmp_path / "one.toml"
    path.write_text(f'[[sources]]\n{name_line}org = "acme"\n{url_line}{token_line}concurrency = 3\n')
    return str(path)


def test_a_flag_changes_one_setting_of_the_config_source_and_keeps_the_rest(monkeypatch, tmp_path):
    """--org with a config file used to throw the file's sources away: url and token then came
    from ~/.sentryclirc. Another org is its own source (named after it): under the file's source
    name its rows would mix with that organization's, and a named source refuses it."""
    rc = tmp_path / "sentryclirc"
    rc.write_text("[auth]\ntoken = rc-token-abc\n\n[defaults]\nurl = https://rc.example\n")
    monkeypatch.setenv("SENTRYCLIRC", str(rc))
    monkeypatch.setenv("ACME_TOKEN", "file-token-123")
    (source,) = resolve(config_path=one_source_file(tmp_path), url=None, org="other", token=None, db=None).sources
    assert (source.name, source.url, source.org, source.token, source.concurrency) == (
        "other", "https://de.sentry.io", "other", "file-token-123", 3)
    assert source.origins["org"] == "flag" and source.origins["url"] == "file"
    with pytest.raises(ConfigError, match="would be stored as source 'main'"):
        resolve(config_path=one_source_file(tmp_path, name_line='name = "main"\n'), url=None, org="other",
                token=None, db=None)
    (source,) = resolve(config_path=one_source_file(tmp_path, name_line='name = "main"\n'),
                        url="https://eu.example", org="acme", token=None, db=None).sources
    assert (source.name, source.url, source.org, source.origins["url"]) == ("main", "https://eu.example", "acme", "flag")


def test_a_config_source_is_never_sent_elsewhere_by_a_leftover_variable(monkeypatch, tmp_path):
    """No token goes to a server it is not for: a source's own url wins over SENTRY_URL; a source
    without url is sentry.io, unless SENTRY_URL or ~/.sentryclirc names another server (its token
    from there would go to sentry.io, or this source's token to that server): then it asks."""
    monkeypatch.setenv("SENTRY_URL", "https://elsewhere.example")
    monkeypatch.setenv("SENTRY_ORG", "env-org")
    monkeypatch.setenv("ACME_TOKEN", "file-token-123")
    (source,) = resolve(config_path=one_source_file(tmp_path), url=None, org=None, token=None, db=None).sources
    assert (source.url, source.org) == ("https://de.sentry.io", "acme")
    with pytest.raises(ConfigError, match=r"has no url, and env SENTRY_URL names https://elsewhere.example"):
        resolve(config_path=one_source_file(tmp_path, url_line=""), url=None, org=None, token=None, db=None)
    monkeypatch.setenv("SENTRY_URL", "https://sentry.io/")
    (source,) = resolve(config_path=one_source_file(tmp_path, url_line=""), url=None, org=None, token=None,
                        db=None).sources
    assert (source.url, source.origins["url"]) == ("https://sentry.io", "default")


def two_sources(tmp_path, monkeypatch, first: str) -> str:
    path = tmp_path / "two.toml"
    path.write_text(f'[[sources]]\n{first}token_env = "T1"\n\n[[sources]]\nname = "b"\norg = "b"\ntoken_env = "T2"\n')
    monkeypatch.setenv("T1", "token-one-123")
    monkeypatch.setenv("T2", "token-two-456")
    return str(path)


def test_org_flag_naming_another_configured_source_is_refused(monkeypatch, tmp_path):
    """'--source a --org b' would store org b, from a's server with a's token, as source b."""
    path = two_sources(tmp_path, monkeypatch, 'org = "a"\nurl = "https://sentry.mycorp.example"\n')
    with pytest.raises(ConfigError, match="--source b"):
        resolve(config_path=path, url=None, org="b", token=None, db=None, source_names=("a",))


def test_url_or_org_flags_with_several_sources_ask_which(monkeypatch, tmp_path):
    path = two_sources(tmp_path, monkeypatch, 'name = "a"\norg = "a"\n')
    with pytest.raises(ConfigError, match="--source"):
        resolve(config_path=path, url=None, org="c", token=None, db=None)
    (source,) = resolve(config_path=path, url="https://b.example", org=None, token=None, db=None,
                        source_names=("b",)).sources
    assert (source.name, source.url, source.org, source.token) == ("b", "https://b.example", "b", "token-two-456")


def _rc(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".sentryclirc"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_sentryclirc_in_the_working_directory_is_found(monkeypatch, tmp_path):
    """As sentry-cli: a project's .sentryclirc is read from the folder the command runs in."""
    rc = _rc(tmp_path / "proj", "[auth]\ntoken = proj-token-abc\n[defaults]\norg = proj-org\nurl = https://proj.example\n")
    monkeypatch.chdir(tmp_path / "proj")
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.url, source.org, source.token) == ("https://proj.example", "proj-org", "proj-token-abc")
    assert source.origins == dict.fromkeys(("url", "org", "token"), str(rc.resolve()))


def test_the_nearest_sentryclirc_upwards_wins_over_the_home_one_key_by_key(monkeypatch, tmp_path):
    """sentry-cli looks upward from the working directory and stops at the first .sentryclirc (or
    sentrycli.ini); its keys win over ~/.sentryclirc's, and the home file fills in the rest."""
    home = _rc(tmp_path / "home", "[auth]\ntoken = home-token-abc\n[defaults]\norg = home-org\nurl = https://home.example\n")
    monkeypatch.setenv("SENTRYCLIRC", str(home))
    _rc(tmp_path / "repo", "[defaults]\norg = far-org\nurl = https://far.example\n")
    near = _rc(tmp_path / "repo" / "app", "[defaults]\norg = near-org\n")
    (tmp_path / "repo" / "app" / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "app" / "src" / "deep")
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.org, source.token, source.url) == ("near-org", "home-token-abc", "https://home.example")
    assert source.origins == {"org": str(near.resolve()), "token": str(home), "url": str(home)}
    near.unlink()
    (tmp_path / "repo" / "app" / "sentrycli.ini").write_text("[defaults]\norg = ini-org\n")
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert source.org == "ini-org"
    (tmp_path / "repo" / "app" / "sentrycli.ini").unlink()
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.org, source.url) == ("far-org", "https://far.example")


def test_a_project_sentryclirc_gives_a_config_source_its_token_and_is_checked_for_exposure(monkeypatch, tmp_path, caplog):
    rc = _rc(tmp_path / "proj", "[auth]\ntoken = proj-token-xyz\n")
    rc.chmod(0o644)
    monkeypatch.chdir(tmp_path / "proj")
    with caplog.at_level("WARNING"):
        (source,) = resolve(config_path=one_source_file(tmp_path, token_line=""), url=None, org=None, token=None,
                            db=None).sources
    assert (source.token, source.origins["token"]) == ("proj-token-xyz", str(rc.resolve()))
    assert any("chmod 600" in r.getMessage() and str(rc.resolve()) in r.getMessage() for r in caplog.records)


def test_sentryclirc_replaces_the_home_file_even_when_the_walk_upwards_passes_home(monkeypatch, tmp_path):
    """Working under the home folder, the upward walk reaches ~/.sentryclirc: that is the home file,
    which $SENTRYCLIRC replaces (how the tests keep a developer's real one out), not a project's."""
    _rc(tmp_path / "home", "[auth]\ntoken = real-home-token\n[defaults]\norg = real-home-org\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "code").mkdir()
    monkeypatch.chdir(tmp_path / "home" / "code")
    with pytest.raises(ConfigError, match="no organization"):
        resolve(config_path=None, url=None, org=None, token=None, db=None)
    monkeypatch.delenv("SENTRYCLIRC")
    (source,) = resolve(config_path=None, url=None, org=None, token=None, db=None).sources
    assert (source.org, source.origins["org"]) == ("real-home-org", "~/.sentryclirc")


def test_an_empty_token_flag_is_refused_not_taken_for_the_environment_s(monkeypatch):
    """`--token "$TOKEN"` with TOKEN unset used SENTRY_AUTH_TOKEN instead, silently."""
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "tok-from-env")
    for empty in ("", "  "):
        with pytest.raises(ConfigError, match="--token is empty"):
            resolve(config_path=None, url="https://sentry.io", org="acme", token=empty, db=None)
