"""`config from-gitlab`: a GitLab project's error-tracking settings (served by the emulator's
GitLab routes) become a config source that the loader accepts and that, synced, mirrors that one
Sentry project; every setting that gives no source is one clear line; `--all` walks a group
across GitLab's pages; `--client-keys` lists DSNs; `--write` appends and never clobbers; neither
token is ever printed, and the GitLab token never goes to another server than --gitlab-url's
(by a next-page link or a redirect); projects on one Sentry organization make one source."""

import json
import socket
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

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
    # both point at the same Sentry organization: one source for it, so its organization-wide
    # streams are read once, not once per GitLab project
    assert {s.name: s.projects for s in sources} == {
        "gitlab-acme": sorted({emu.world.projects[0].slug, emu.world.projects[1].slug})}
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
    before = f"db = 'x.duckdb'\n\n[[sources]]\nname = 'mine'\norg = 'other'\nurl = '{emu.url}'\ntoken_env = 'SM_TOKEN'"
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
    # that organization has its source already: no second one, but what to add to it by hand
    [line] = [line for line in every.stderr.splitlines() if "gitlab-acme-web" in line]
    assert line == (f"skipped gitlab-acme: source 'gitlab-acme-web' in {path} already mirrors {emu.org_slug} "
                    f"at {emu.url}; add to its projects by hand: {emu.world.projects[1].slug}")
    assert path.read_text() == text


def test_write_to_a_missing_folder_is_one_line(emu, tmp_path):
    missing = tmp_path / "nope" / "c.toml"
    line = one_line_error(from_gitlab(emu, "--project", "acme/web", "--write", str(missing)), code=2)
    assert f"the folder {missing.parent} does not exist" in line
    assert not missing.parent.exists()
    assert "--project is empty" in one_line_error(from_gitlab(emu, "--project", " "), code=2)


def test_write_adds_no_source_for_an_organization_a_source_already_mirrors_whole(emu, tmp_path):
    path = tmp_path / "c.toml"
    before = f"[[sources]]\nname = 'mine'\norg = '{emu.org_slug}'\nurl = '{emu.url}/'\ntoken_env = 'SM_TOKEN'\n"
    path.write_text(before)
    line = one_line_error(from_gitlab(emu, "--project", "acme/web", "--write", str(path)), code=2)
    assert f"source 'mine' in {path} already mirrors {emu.org_slug} at {emu.url}, every project of it" in line
    every = from_gitlab(emu, "--project", "acme", "--all", "--write", str(path))
    assert every.exit_code == 0, every.stderr
    assert "skipped gitlab-acme: source 'mine'" in every.stderr
    assert path.read_text() == before


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
    data = tomllib.loads(gitlab.toml_block(gitlab.merged([found])[0], "SENTRY_AUTH_TOKEN", "https://gitlab.example"))
    assert data["sources"][0]["org"] == 'we"ird' and data["sources"][0]["projects"] == ["a\\b"]


class Tiny:
    """A small HTTP server on 127.0.0.1 (another origin than the emulator: another port): `routes`
    maps a path (as sent, still encoded) to (status, headers, JSON body); every request it gets is
    kept as (path, headers)."""

    def __init__(self, routes: dict | None = None):
        self.routes, self.got = routes or {}, []
        tiny = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                tiny.got.append((self.path, dict(self.headers)))
                status, headers, body = tiny.routes.get(urlsplit(self.path).path, (200, {}, []))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def tokens(self) -> list:
        return [h.get("PRIVATE-TOKEN") for _, h in self.got if h.get("PRIVATE-TOKEN")]


def test_a_next_page_on_another_server_never_gets_the_token(emu):
    with Tiny() as other, Tiny() as gl:
        gl.routes["/api/v4/groups/acme/projects"] = (
            200, {"Link": f'<{other.url}/api/v4/groups/acme/projects?page=2>; rel="next"'}, [])
        line = one_line_error(from_gitlab(emu, "--project", "acme", "--all", url=gl.url), code=2)
    assert gl.tokens() == [GL_TOKEN]  # the first page was asked, with the token
    assert other.tokens() == [], "the token went to another server"
    assert other.got == []
    assert f"GitLab's next page of the projects of group acme is at {other.url}" in line


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_server_never_gets_the_token(emu, status):
    with Tiny() as other, Tiny() as gl:
        gl.routes["/api/v4/projects/acme%2Fweb"] = (status, {"Location": f"{other.url}/api/v4/projects/101"}, {})
        other.routes["/api/v4/projects/101"] = (200, {}, {"id": 101, "path_with_namespace": "acme/web"})
        line = one_line_error(from_gitlab(emu, "--project", "acme/web", url=gl.url), code=2)
    assert other.tokens() == [], "the token went to another server"
    assert other.got == []
    assert f"GitLab redirected the request for project acme/web to {other.url}" in line


def test_a_redirect_on_the_same_server_is_followed(emu, tmp_path, monkeypatch):
    setting = {"active": True, "integrated": False, "api_url": f"{emu.url}/api/0/projects/{emu.org_slug}/web/"}
    with Tiny() as gl:
        gl.routes["/api/v4/projects/acme%2Fweb"] = (301, {"Location": "/api/v4/projects/101"}, {})
        gl.routes["/api/v4/projects/101"] = (200, {}, {"id": 101, "path_with_namespace": "acme/web"})
        gl.routes["/api/v4/projects/acme%2Fweb/error_tracking/settings"] = (200, {}, setting)
        result = from_gitlab(emu, "--project", "acme/web", url=gl.url)
    assert result.exit_code == 0, result.stderr
    [source] = sources_of(result.stdout, tmp_path, monkeypatch)
    assert (source.org, source.projects) == (emu.org_slug, ["web"])


def test_all_walks_pages_by_x_next_page_when_there_is_no_link(emu, tmp_path, monkeypatch):
    monkeypatch.setattr(emu, "gitlab_links", False)
    first = requests.get(f"{emu.url}/api/v4/groups/acme/projects", headers={"PRIVATE-TOKEN": GL_TOKEN})
    assert "Link" not in first.headers and int(first.headers["X-Total-Pages"]) >= 3
    result = from_gitlab(emu, "--project", "acme", "--all")
    assert result.exit_code == 0, result.stderr
    sources = sources_of(result.stdout, tmp_path, monkeypatch)
    assert {s.name: s.projects for s in sources} == {
        "gitlab-acme": sorted({emu.world.projects[0].slug, emu.world.projects[1].slug})}
    assert len(result.stderr.splitlines()) == 4  # api, docs, mobile, secret: every page was read


def test_all_goes_on_past_a_project_it_cannot_read(emu, tmp_path, monkeypatch):
    result = from_gitlab(emu, "--project", "ops", "--all")
    assert result.exit_code == 0, result.stderr
    [source] = sources_of(result.stdout, tmp_path, monkeypatch)
    assert (source.name, source.projects) == ("gitlab-ops", [emu.world.projects[2].slug])
    skipped = dict(line.split(": ", 1) for line in result.stderr.splitlines())
    assert set(skipped) == {"skipped ops/legacy", "skipped ops/flaky"}
    assert "api_url is not a Sentry project's" in skipped["skipped ops/legacy"]
    assert "GitLab answered 503" in skipped["skipped ops/flaky"]


@pytest.mark.parametrize("write_it", [False, True])
def test_the_gitlab_url_s_user_and_password_are_never_printed_or_written(emu, tmp_path, write_it):
    url = emu.url.replace("http://", "http://someone:hunter2secret@")
    path = tmp_path / "c.toml"
    result = from_gitlab(emu, "--project", "acme/web", *(["--write", str(path)] if write_it else []), url=url)
    assert result.exit_code == 0, result.stderr
    shown = result.output + result.stderr + (path.read_text() if write_it else "")
    assert "hunter2secret" not in shown and "someone" not in shown
    assert f"({emu.url})" in shown  # the comment line still names the GitLab server


def test_merged_gives_one_source_per_sentry_server_and_organization():
    def found(path, url, org, project):
        return gitlab.Found(path, url=url, org=org, project=project)

    got = gitlab.merged([found("g/b", "https://s.example", "eng", "web"),
                         found("g/a", "https://S.example/", "eng", "api"),  # the same server, written otherwise
                         found("g/c", "https://s.example", "eng", "web"),
                         found("g/d", "https://s.example", "ops", "x")], "g")
    assert [(s.name, s.url, s.org, s.projects, s.paths) for s in got] == [
        ("gitlab-g-eng", "https://s.example", "eng", ["api", "web"], ["g/b", "g/a", "g/c"]),
        ("gitlab-g-ops", "https://s.example", "ops", ["x"], ["g/d"])]
