"""Every organization a token sees (`org = "*"`, `sync --all-orgs`), against the emulator serving
two organizations in two regions (emulator/regions.py): each mirrored level with its own world, each
read at its region, a new one appearing at the next sync, one dropped kept and marked gone, one
refused (403) leaving the others synced, and what `config check` says `org = "*"` means."""

import json
import re

import pytest
import requests
from helpers import TOKEN, assert_level, one_line_error, run, session, write

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import PARTIAL_EXIT
from sentry_mirror.storage.store import Store


@pytest.fixture
def emu():
    with Emulator(seed=23, scale="tiny", token=TOKEN, orgs=2) as e:
        yield e


def _config(tmp_path, emu, extra: str = "") -> str:
    return write(tmp_path, f'db = "{tmp_path / "m.duckdb"}"\n[[sources]]\nname = "main"\nurl = "{emu.url}"\n'
                           f'org = "*"\ntoken_env = "SM_TOKEN"\n{extra}')


def _sync(path: str, *more: str):
    return run("sync", "-c", path, "--json", *more, env={"SM_TOKEN": TOKEN})


def _org_paths(emu, slug: str) -> set[str]:
    """The region prefixes of every request made for an organization's data."""
    pattern = re.compile(rf"^(.*?)/api/0/(?:organizations|projects)/{slug}/")
    return {m.group(1) for p in emu.requests.paths() if (m := pattern.match(p))}


def test_emulator_lists_each_org_with_its_region_and_refuses_the_wrong_one(emu):
    s = session(emu)
    listed = s.get(f"{emu.url}/api/0/organizations/").json()
    assert {o["slug"]: o["links"]["regionUrl"] for o in listed} == {
        "acme": f"{emu.url}/_region/us", "globex": f"{emu.url}/_region/de"}
    assert s.get(f"{emu.url}/_region/de/api/0/organizations/globex/").status_code == 200
    assert s.get(f"{emu.url}/_region/us/api/0/organizations/globex/projects/").status_code == 404
    assert s.get(f"{emu.url}/api/0/organizations/globex/").status_code == 404  # the main URL serves acme alone
    assert [o["slug"] for o in s.get(f"{emu.url}/_region/de/api/0/organizations/").json()] == ["globex"]
    assert requests.get(f"{emu.url}/_emulator/truth?org=globex").json()["organization"] == "globex"
    # the two worlds share no issue id (Sentry's ids are unique across organizations)
    assert not set(emu.truth()["issues"]) & set(emu.regions.world("globex").truth()["issues"])


def test_default_emulator_still_serves_one_org_at_its_url():
    with Emulator(seed=23, scale="tiny", token=TOKEN) as one:
        s = session(one)
        listed = s.get(f"{one.url}/api/0/organizations/").json()
        assert [(o["slug"], o["links"]["regionUrl"]) for o in listed] == [("acme", one.url)]
        assert s.get(f"{one.url}/_region/us/api/0/organizations/acme/").status_code == 404


def test_every_org_mirrored_at_its_region_then_one_added_and_one_dropped(tmp_path, emu):
    path = _config(tmp_path, emu)
    result = _sync(path)
    assert result.exit_code == 0, result.output
    assert [s["source"] for s in json.loads(result.stdout)["sources"]] == ["main/acme", "main/globex"]
    store = Store(str(tmp_path / "m.duckdb"))
    try:
        assert_level(store, emu, "acme", "main/acme")
        assert_level(store, emu, "globex", "main/globex")
        # each organization's data was read at its own region, and only there
        assert _org_paths(emu, "acme") == {"/_region/us"}
        assert _org_paths(emu, "globex") == {"/_region/de"}
    finally:
        store.close()

    globex_issues = set(emu.regions.world("globex").truth()["issues"])
    requests.post(f"{emu.url}/_emulator/orgs", json={"slug": "gamma", "region": "de"}).raise_for_status()
    requests.delete(f"{emu.url}/_emulator/orgs", json={"slug": "globex"}).raise_for_status()
    result = _sync(path)
    assert result.exit_code == 0, result.output
    assert [s["source"] for s in json.loads(result.stdout)["sources"]] == ["main/acme", "main/gamma"]
    store = Store(str(tmp_path / "m.duckdb"))
    try:
        assert_level(store, emu, "gamma", "main/gamma")
        gone = dict(store.con.execute("SELECT source, gone_at IS NOT NULL FROM organizations").fetchall())
        assert gone == {"main/acme": False, "main/globex": True, "main/gamma": False}
        kept = {r[0] for r in store.con.execute("SELECT id FROM issues WHERE source = 'main/globex'").fetchall()}
        assert kept == globex_issues  # never deleted
    finally:
        store.close()
    status = run("status", "--db", str(tmp_path / "m.duckdb"))
    block = status.output.split("source main/globex")[1].split("\nsource ")[0]
    assert "organization gone" in block
    assert "organization gone" not in status.output.split("source main/acme")[1].split("\nsource ")[0]


def test_one_org_refused_leaves_the_others_synced(tmp_path, emu):
    emu.faults.add(kind="forbidden", route="*/globex/*")
    result = _sync(_config(tmp_path, emu))
    assert result.exit_code == PARTIAL_EXIT, result.output
    by_source = {s["source"]: s["status"] for s in json.loads(result.stdout)["sources"]}
    assert by_source == {"main/acme": "ok", "main/globex": "failed"}
    store = Store(str(tmp_path / "m.duckdb"))
    try:
        assert_level(store, emu, "acme", "main/acme")
    finally:
        store.close()


def test_config_check_says_what_star_means(tmp_path, emu):
    result = run("config", "check", "-c", _config(tmp_path, emu), "--online", env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "every organization the token sees, each synced as source main/<slug>" in result.output
    assert "mirrors main/acme, main/globex" in result.output


def test_sync_all_orgs_flag(tmp_path, emu):
    db = str(tmp_path / "flag.duckdb")
    result = run("sync", "--url", emu.url, "--all-orgs", "--db", db, "--json", env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert [s["source"] for s in json.loads(result.stdout)["sources"]] == ["127.0.0.1/acme", "127.0.0.1/globex"]
    both = run("sync", "--url", emu.url, "--all-orgs", "--org", "acme", "--db", db, env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert both.exit_code == 2 and "--all-orgs" in both.stderr


@pytest.mark.parametrize("source, region, expected", [
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000/_region/de", "http://127.0.0.1:9000/_region/de"),
    ("https://sentry.io", "https://de.sentry.io", "https://de.sentry.io"),
    ("https://sentry.io", None, "https://sentry.io"),  # GlitchTip, self-hosted: no regions
    ("https://sentry.io", "https://evil.example", "https://sentry.io"),  # the token never follows elsewhere
    ("https://sentry.example.com", "http://sentry.example.com:81", "https://sentry.example.com"),
])
def test_region_url_followed_only_where_the_token_may_go(source, region, expected):
    from sentry_mirror.running.allorgs import region_url

    assert region_url(source, region) == expected


def test_source_slash_slug_syncs_that_organization_alone(tmp_path, emu):
    path = _config(tmp_path, emu)
    result = _sync(path, "--source", "main/globex")
    assert result.exit_code == 0, result.output
    assert [s["source"] for s in json.loads(result.stdout)["sources"]] == ["main/globex"]
    assert not _org_paths(emu, "acme")  # the other organization was not read at all
    store = Store(str(tmp_path / "m.duckdb"))
    try:
        assert_level(store, emu, "globex", "main/globex")
    finally:
        store.close()
    result = _sync(path, "--source", "main/nope")
    assert result.exit_code == 2
    assert "no organization nope" in result.stderr and "acme, globex" in result.stderr
    result = _sync(path, "--source", "other/acme")
    assert result.exit_code == 2 and "NAME/SLUG" in result.stderr


def test_projects_with_every_org_name_projects_in_any_and_an_org_without_them_is_skipped(tmp_path):
    """`projects` under `org = "*"` is a filter over all the organizations: one that lacks some of
    them mirrors those it has, one that has none is skipped (not failed), a project no organization
    has is said once in the summary, and naming only projects no organization has is a config error."""
    with Emulator(seed=23, scale="tiny", token=TOKEN) as emu:
        requests.post(f"{emu.url}/_emulator/orgs", json={"slug": "gamma", "region": "de", "scale": "small"}
                      ).raise_for_status()
        path = _config(tmp_path, emu, 'projects = ["payments", "backend"]\n')
        result = _sync(path)
        assert result.exit_code == 0, result.output
        by_source = {s["source"]: s for s in json.loads(result.stdout)["sources"]}
        assert by_source["main/acme"]["status"] == "ok"  # acme has backend, not payments
        assert by_source["main/gamma"]["status"] == "ok"
        store = Store(str(tmp_path / "m.duckdb"))
        try:
            slugs = store.con.execute("SELECT DISTINCT i.source, p.slug FROM issues i JOIN projects p "
                                      "ON p.id = i.project_id AND p.source = i.source "
                                      "ORDER BY 1, 2").fetchall()
        finally:
            store.close()
        assert slugs == [("main/acme", "backend"), ("main/gamma", "backend"), ("main/gamma", "payments")]

        path = _config(tmp_path, emu, 'projects = ["payments"]\n')
        result = _sync(path)
        assert result.exit_code == 0, result.output
        by_source = {s["source"]: s["status"] for s in json.loads(result.stdout)["sources"]}
        assert by_source == {"main/acme": "skipped", "main/gamma": "ok"}

        path = _config(tmp_path, emu, 'projects = ["payments", "nowhere"]\n')  # a typo beside a real one
        result = _sync(path)
        assert result.exit_code == 0, result.output
        notes = [n for s in json.loads(result.stdout)["sources"] for n in s["notes"]]
        assert notes.count("no organization main sees has project nowhere") == 1, notes
        assert not any("payments" in n for n in notes if n.startswith("no organization"))
        summary = run("sync", "-c", path, env={"SM_TOKEN": TOKEN})
        assert "note: no organization main sees has project nowhere" in summary.output

        path = _config(tmp_path, emu, 'projects = ["nowhere"]\n')
        result = _sync(path)
        assert result.exit_code == 2
        assert "no organization the token sees has any of the projects" in result.stderr


def test_all_orgs_flag_refuses_several_sources(tmp_path, emu):
    path = write(tmp_path, f'db = "{tmp_path / "m.duckdb"}"\n'
                           f'[[sources]]\nname = "a"\nurl = "{emu.url}"\norg = "acme"\ntoken_env = "SM_TOKEN"\n'
                           f'[[sources]]\nname = "b"\nurl = "{emu.url}"\norg = "acme"\ntoken_env = "SM_TOKEN"\n')
    result = _sync(path, "--all-orgs")
    assert result.exit_code == 2 and "--source NAME" in result.stderr
    assert _sync(path, "--all-orgs", "--source", "a").exit_code == 0


def test_source_without_a_config_names_the_flags_source_or_one_of_its_organizations(tmp_path, emu):
    db = str(tmp_path / "f.duckdb")
    flags = ("sync", "--url", emu.url, "--db", db, "--json")
    result = run(*flags, "--all-orgs", "--source", "127.0.0.1/globex", env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert [s["source"] for s in json.loads(result.stdout)["sources"]] == ["127.0.0.1/globex"]
    result = run(*flags, "--org", "acme", "--source", "nope", env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 2 and "no source named nope" in result.stderr and "known: acme" in result.stderr


def test_hooks_act_on_one_organization_of_a_source_with_every_organization(emu, tmp_path):
    path = _config(tmp_path, emu)
    secrets = tmp_path / "s.json"
    env = {"SM_TOKEN": TOKEN}
    globex = emu.regions.world("globex")
    slug = globex.projects[0].slug
    hook_args = ("--project", slug, "--url", "https://m.example.com/h", "--yes", "--secrets", str(secrets))
    # `*` is no organization: the commands that act on one ask which
    line = one_line_error(run("hooks", "install", "-c", path, *hook_args, env=env), code=2)
    assert "source main mirrors every organization its token sees (acme, globex)" in line
    assert "--source main/SLUG" in line
    done = run("hooks", "install", "-c", path, "--source", "main/globex", *hook_args, env=env)
    assert done.exit_code == 0, done.output + done.stderr
    assert f"on globex/{slug}" in done.output
    [(guid, entry)] = json.loads(secrets.read_text())["hooks"].items()
    assert entry["source"] == "main/globex"  # the name its synced rows have
    assert guid in [h["id"] for h in globex.hooks[globex.projects[0].idx]]
    assert f"/_region/de/api/0/projects/globex/{slug}/hooks/" in emu.requests.paths()
    listed = run("hooks", "list", "-c", path, "--source", "main/globex", "--json", env=env)
    assert listed.exit_code == 0, listed.stderr
    assert guid in [h["id"] for h in json.loads(listed.output)]
    gone = run("hooks", "remove", guid, "-c", path, "--source", "main/globex", "--yes", "--secrets", str(secrets),
               env=env)
    assert gone.exit_code == 0, gone.stderr
    assert guid not in [h["id"] for h in globex.hooks[globex.projects[0].idx]]


def test_hooks_serve_with_every_organization_stores_an_organization_s_pushed_events(emu, tmp_path):
    """`hooks serve` on a source with `org = "*"`: a hook installed on globex (second region)
    delivers its new events, signed, and they are stored under `main/globex`, with no sync."""
    import os
    import subprocess
    import sys

    from test_hooks import stored_events, wait_for

    path = _config(tmp_path, emu)
    assert _sync(path).exit_code == 0
    db = str(tmp_path / "m.duckdb")
    port_file, log = tmp_path / "port", tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sentry_mirror", "hooks", "serve", "-v", "-c", path, "--port", "0",
                                 "--port-file", str(port_file), "--refresh-after", "0.1"],
                                stdout=out, stderr=out, env={**os.environ, "SM_TOKEN": TOKEN})
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30)
        globex = emu.regions.world("globex")
        installed = run("hooks", "install", "-c", path, "--source", "main/globex", "--project",
                        globex.projects[0].slug, "--url", f"http://127.0.0.1:{port_file.read_text()}/", "--yes",
                        env={"SM_TOKEN": TOKEN})
        assert installed.exit_code == 0, installed.stderr
        guid = installed.output.split("created hook ")[1].split()[0]
        requests.post(f"{emu.url}/_emulator/advance", json={"hours": 24}).raise_for_status()
        with emu.hooks.delivered:
            emu.hooks.delivered.wait_for(lambda: any(g == guid for g, _, _ in emu.hooks.log), timeout=30)
        ids = [e for g, e, status in emu.hooks.log if g == guid and status == 202]
        assert ids, emu.hooks.log
        wait_for(lambda: stored_events(db, *ids) == len(ids), timeout=30)
        wait_for(lambda: "refreshed" in log.read_text(), timeout=30)  # their issues, at globex's region
    finally:
        proc.terminate()
        proc.wait(30)
    con = Store(db)
    try:
        sources = {r[0] for r in con.con.execute("SELECT DISTINCT source FROM events WHERE event_id IN "
                                                 "(SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()}
    finally:
        con.close()
    assert sources == {"main/globex"}
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text and "WARNING" not in text, text
