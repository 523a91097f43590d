"""`config check`: each problem in a config file named in one line (with its key and line), the
effective settings printed with where each came from and no secret shown, and `--online` asking the
server which scopes the token has and which organizations it sees."""

import pytest
from helpers import TOKEN, run, write


@pytest.fixture(autouse=True)
def clean_env(clean_sentry_env):
    pass


@pytest.mark.parametrize("text, expected", [
    ("db = [", "not valid TOML"),
    ("[[sources]]\norg = 'acme'\ntokn_env = 'SM_TOKEN'\n", "unknown key `tokn_env` in sources[0] on line 3; did you mean `token_env`?"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\ntimeout = 'soon'\n", "sources[0].timeout must be a number"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_NOT_SET'\n", "environment variable SM_NOT_SET is not set (line 3)"),
    ("[schedule]\ncron = '61 3 * * *'\n", "schedule.cron must be a crontab line"),
    ("[schedule]\ncron = '0 3 * * *'\ntimezone = 'Mars/Olympus'\n", "schedule.timezone must be an IANA time zone"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nurl = 'ftp://x'\n", "sources[0].url must be an http(s) URL"),
    ("[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nverify = 'maybe'\n",
     "sources[0].verify: no CA bundle at 'maybe'; give true, false, or the path of a PEM file or a folder of certificates (line 4)"),
    ("[[sources]]\nname = 'a'\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n[[sources]]\nname = 'a'\norg = 'beta'\n"
     "token_env = 'SM_TOKEN'\n", "sources[1]: another source is named 'a' too; each needs its own name"),
])
def test_config_check_names_each_problem_in_one_line(tmp_path, text, expected):
    result = run("config", "check", "-c", write(tmp_path, text), env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_config_check_prints_effective_settings_and_their_origins(tmp_path):
    path = write(tmp_path, "db = 'x.duckdb'\n[schedule]\ncron = '0 3 * * *'\ntimezone = 'Europe/Berlin'\n"
                           "[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nevents = 'sample'\n"
                           "headers = { 'X-Proxy-Key' = 'proxy-secret-value-1234' }\n")
    result = run("config", "check", "-c", path, env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "x.duckdb" in out and "(file)" in out and "Europe/Berlin" in out and "next run" in out
    assert "sntryu_…5e5e" in out and "env SM_TOKEN (token_env)" in out
    assert "https://sentry.io" in out and "(default)" in out and "sample" in out
    assert "proxy-secret-value-1234" not in out and out.strip().endswith("config OK")



def test_config_check_names_the_sentryclirc_each_value_came_from(tmp_path, monkeypatch):
    """The token from the home file, the org from the project's .sentryclirc nearer the working
    directory: each row says which file, and the first line says they were read."""
    home = tmp_path / "home-rc"
    home.write_text(f"[auth]\ntoken = {TOKEN}\n[defaults]\norg = home-org\n")
    home.chmod(0o600)
    (tmp_path / "proj" / "sub").mkdir(parents=True)
    (tmp_path / "proj" / ".sentryclirc").write_text("[defaults]\norg = proj-org\n")
    monkeypatch.setenv("SENTRYCLIRC", str(home))
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    result = run("config", "check")
    assert result.exit_code == 0, result.output
    project_rc = (tmp_path / "proj" / ".sentryclirc").resolve()
    org_row = next(line for line in result.stdout.splitlines() if line.strip().startswith("org "))
    token_row = next(line for line in result.stdout.splitlines() if line.strip().startswith("token "))
    assert "proj-org" in org_row and f"({project_rc})" in org_row
    assert f"({home})" in token_row
    assert ".sentryclirc" in result.stdout.splitlines()[0]


def test_config_check_online_reports_scopes_and_orgs(emu, tmp_path):
    path = write(tmp_path, f"[[sources]]\nurl = '{emu.url}'\norg = '{emu.org_slug}'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "event:read" in result.stdout and f"sees organizations {emu.org_slug}" in result.stdout


def test_config_check_online_with_an_unreachable_url(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    path = write(tmp_path, f"[[sources]]\nurl = 'http://127.0.0.1:{port}'\norg = 'acme'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("sentry-mirror:")]
    assert len(errors) == 1 and "could not reach" in errors[0]


def test_config_check_online_with_a_wrong_org(emu, tmp_path):
    path = write(tmp_path, f"[[sources]]\nurl = '{emu.url}'\norg = 'not-ours'\ntoken_env = 'SM_TOKEN'\n")
    result = run("config", "check", "-c", path, "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code != 0 and "does not see organization 'not-ours'" in result.stderr
