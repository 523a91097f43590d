"""`config from-gitlab`: a GitLab project's error-tracking settings (served by the emulator's
GitLab routes) become a config source that the loader accepts and that, synced, mirrors that one
Sentry project; every setting that gives no source is one clear line; `--all` walks a group
across GitLab's pages; `--client-keys` lists DSNs; `--write` appends and never clobbers; neither
token is ever printed."""

import socket
import tomllib

import pytest
from helpers import one_line_error, run, write

from sentry_mirror.emulator import Emulator
from sentry_mirror.emulator import gitlab as emulated
from sentry_mirror.running import gitlab
from sentry_mirror.running.config import resolve
from sentry_mirror.storage.store import Store

SENTRY_TOKEN = "sntryu_" + "9" * 64
GL_TOKEN = emulated.TOKEN


@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=5, scale="tiny", token=SENTRY_TOKEN) as e:
        yield e


@pytest.fixture(autouse=True)
def quick_retry(monkeypatch, clean_sentry_env):
    monkeypatch.setattr(gitlab, "RETRY_PAUSE", 0.0)


def from_gitlab(emu, *args, token=GL_TOKEN, url=None):
    result = run("config", "from-gitlab", "--gitlab-url", url or emu.url, "--sentry-token-env", "SM_TOKEN", *args,
                 env={"GITLAB_TOKEN": token, "SM_TOKEN": None})
    shown = result.output + (result.stderr or "")
    assert GL_TOKEN not in shown and SENTRY_TOKEN not in shown, "a token was printed"
    assert "Traceback" not in shown
    return result


def sources_of(text, tmp_path, monkeypatch):
    """The printed tables, read by the config loader itself."""
    monkeypatch.setenv("SM_TOKEN", SENTRY_TOKEN)
    return resolve(config_path=write(tmp_path, text), url=None, org=None, token=None, db=None).sources


def test_a_project_by_path_gives_a_source_that_mirrors_that_project_alone(emu, tmp_path, monkeypatch):
    result = from_gitlab(emu, "--project", "acme/backend/worker")
    assert result.exit_code == 0, result.output + result.stderr
    [source] = sources_of(result.stdout, tmp_path, monkeypatch)
    chosen = emu.world.projects[1]
    assert (source.name, source.url, source.org, source.projects) == (
        "gitlab-acme-backend-worker", emu.url, emu.org_slug, [chosen.slug])
    assert source.origins["token"] == "env SM_TOKEN (token_env)"
    db = tmp_path / "s.duckdb"
    synced = run("sync", "-c", str(tmp_path / "c.toml"), "--db", str(db), env={"SM_TOKEN": SENTRY_TOKEN})
    assert synced.exit_code == 0, synced.output
    truth = emu.truth()
    store = Store(str(db))
    try:
        con = store.con
        assert {r[0] for r in con.execute("SELECT id FROM projects").fetchall()} == {str(chosen.id)}
        assert {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT id, status, times_seen FROM issues WHERE deleted_at IS NULL").fetchall()} == {
            i: (v["status"], v["count"]) for i, v in truth["issues"].items() if v["project_id"] == str(chosen.id)}
    finally:
        store.close()


def test_a_project_by_numeric_id_is_named_by_its_path(emu, tmp_path, monkeypatch):
    result = from_gitlab(emu, "--project", "101")
    assert result.exit_code == 0, result.stderr
    [source] = sources_of(result.stdout, tmp_path, monkeypatch)
    assert (source.name, source.projects) == ("gitlab-acme-web", [emu.world.projects[0].slug])


@pytest.mark.parametrize("project, token, said", [
    ("acme/api", GL_TOKEN, "turned off (active: false)"),
    ("103", GL_TOKEN, "integrated error tracking, which has no Sentry API"),
    ("acme/docs", GL_TOKEN, "no error-tracking setting (404)"),
    ("acme/secret", GL_TOKEN, "(403): that needs the Maintainer role"),
    ("acme/nope", GL_TOKEN, "GitLab knows no project acme/nope (404)"),
    ("acme/web", "glpat-wrong-token-1234567", "401 Unauthorized"),
    ("acme/web", None, "environment variable GITLAB_TOKEN is not set"),
])
def test_each_project_without_a_source_is_one_line_saying_why(emu, project, token, said):
    line = one_line_error(from_gitlab(emu, "--project", project, token=token), code=2)
    assert said in line
    assert "glpat-wrong-token-1234567" not in line


def test_an_unreachable_gitlab_is_one_line(emu):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        line = one_line_error(from_gitlab(emu, "--project", "acme/web", url=url), code=2)
    assert "cannot reach GitLab" in line


def test_all_walks_the_group_across_pages_and_lists_the_skipped(emu, tmp_path, monkeypatch):
    in_group = [p for p in emulated.PROJECTS if p.path.startswith("acme/")]
    assert len(in_group) > 2 * emulated.MAX_PER_PAGE  # three pages at least, whatever per_page asks
    result = from_gitlab(emu, "--project", "acme", "--all")
    assert result.exit_code == 0, result.stderr
    sources = sources_of(result.stdout, tmp_path, monkeypatch)
    assert {s.name: s.projects for s in sources} == {
        "gitlab-acme-web": [emu.world.projects[0].slug],
        "gitlab-acme-backend-worker": [emu.world.projects[1].slug]}
    skipped = sorted(line.split(":")[0] for line in result.stderr.splitlines())
    assert skipped == ["skipped acme/api", "skipped acme/docs", "skipped acme/mobile", "skipped acme/secret"]


def test_client_keys_lists_keys_and_dsns(emu):
    result = from_gitlab(emu, "--project", "acme/mobile", "--client-keys")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 client keys of GitLab project acme/mobile"
    assert [line.split("  ")[1] for line in lines[1:]] == ["active", "inactive"]
    for line in lines[1:]:
        key, _, dsn = line.split("  ")
        assert dsn.startswith(f"http://{key}@") and dsn.endswith("/api/v4/error_tracking/collector/103")


def test_write_appends_and_refuses_a_name_already_there(emu, tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    before = f"db = 'x.duckdb'\n\n[[sources]]\nname = 'mine'\norg = '{emu.org_slug}'\nurl = '{emu.url}'\ntoken_env = 'SM_TOKEN'"
    path.write_text(before)  # no final newline: the table added must still start on its own line
    result = from_gitlab(emu, "--project", "acme/web", "--write", str(path))
    assert result.exit_code == 0, result.stderr
    assert "added 1 source" in result.stdout
    text = path.read_text()
    assert text.startswith(before) and text[len(before):].startswith("\n\n# from GitLab project acme/web")
    assert [s.name for s in sources_of(text, tmp_path, monkeypatch)] == ["mine", "gitlab-acme-web"]
    again = from_gitlab(emu, "--project", "acme/web", "--write", str(path))
    assert "already has a source named 'gitlab-acme-web'" in one_line_error(again, code=2)
    assert path.read_text() == text
    every = from_gitlab(emu, "--project", "acme", "--all", "--write", str(path))
    assert every.exit_code == 0, every.stderr
    assert "already has a source named 'gitlab-acme-web'" in every.stderr
    assert [s.name for s in sources_of(path.read_text(), tmp_path, monkeypatch)] == [
        "mine", "gitlab-acme-web", "gitlab-acme-backend-worker"]


@pytest.mark.parametrize("api_url, want", [
    ("https://sentry.io/api/0/projects/myorg/web", ("https://sentry.io", "myorg", "web")),
    ("https://u:p@sentry.example.com:9000/sentry/api/0/projects/eng/api/",
     ("https://sentry.example.com:9000/sentry", "eng", "api")),
])
def test_api_url_gives_server_org_and_project(api_url, want):
    got = gitlab.sentry_target(api_url, "g/p")
    assert (got["url"], got["org"], got["project"]) == want


def test_an_api_url_that_is_not_a_sentry_project_is_refused():
    with pytest.raises(gitlab.ConfigError, match="not a Sentry project's"):
        gitlab.sentry_target("https://sentry.io/organizations/myorg/", "g/p")


def test_the_printed_table_is_valid_toml_with_awkward_names():
    found = gitlab.Found("g/p", url="https://s.example", org='we"ird', project="a\\b")
    data = tomllib.loads(gitlab.toml_block(found, "SENTRY_AUTH_TOKEN", "https://gitlab.example"))
    assert data["sources"][0]["org"] == 'we"ird' and data["sources"][0]["projects"] == ["a\\b"]
