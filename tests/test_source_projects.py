"""A source that names its projects (`projects = ["web"]`) mirrors those alone: the others' issues,
events, stats, tag values and users are never asked for, and the store equals the emulator's truth
restricted to the projects named."""

import pytest
import requests
from helpers import sync

from sentry_mirror.emulator import Emulator
from sentry_mirror.errors import ConfigError
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "7" * 64


@pytest.fixture(scope="module")
def emu():
    with Emulator(seed=5, scale="tiny", token=TOKEN) as e:
        yield e


def test_a_source_with_projects_mirrors_those_alone(emu, tmp_path):
    projects = {str(p.id): p.slug for p in emu.world.projects}
    assert len(projects) >= 2
    chosen_id, chosen = sorted(projects.items())[0]
    others = {pid: slug for pid, slug in projects.items() if pid != chosen_id}
    emu.requests.reset()
    store = Store(str(tmp_path / "s.duckdb"))
    try:
        result = sync(store, emu, projects=(chosen,))
        assert result.status == "ok", result.errors
        con = store.con
        truth = emu.truth()
        rows = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=30).json()
        at = {c: i for i, c in enumerate(rows["columns"])}
        want_issues = {i: (v["status"], v["count"]) for i, v in truth["issues"].items() if v["project_id"] == chosen_id}
        want_events = {r[at["event_id"]] for r in rows["rows"] if str(r[at["project_id"]]) == chosen_id}
        assert want_issues and want_events
        assert {r[0] for r in con.execute("SELECT id FROM projects").fetchall()} == {chosen_id}
        assert {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT id, status, times_seen FROM issues WHERE deleted_at IS NULL").fetchall()} == want_issues
        assert {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()} == want_events
        assert {r[0] for r in con.execute("SELECT DISTINCT project_id FROM project_stats").fetchall()} == {chosen_id}
    finally:
        store.close()
    asked = emu.requests.paths()
    assert asked, "the emulator logged no paths"
    for path in asked:  # no route of another project, by slug or id, nor a filter naming one
        for pid, slug in others.items():
            assert f"/{slug}/" not in path and f"project={pid}" not in path, path
    issue_lists = [p for p in asked if p.split("?")[0].endswith(f"/organizations/{emu.org_slug}/issues/")]
    assert issue_lists and all(f"project={chosen_id}" in p for p in issue_lists)


def test_an_unknown_project_slug_is_one_error_naming_the_known_ones(emu, tmp_path):
    store = Store(str(tmp_path / "s.duckdb"))
    try:
        with pytest.raises(ConfigError) as caught:
            sync(store, emu, projects=("no-such-project",))
    finally:
        store.close()
    text = str(caught.value) + " " + (caught.value.hint or "")
    assert "no-such-project" in text
    assert all(p.slug in text for p in emu.world.projects)


def test_the_config_key_reaches_the_sync_and_is_checked(emu, tmp_path):
    from helpers import run, write

    chosen = sorted((str(p.id), p.slug) for p in emu.world.projects)[0]
    path = write(tmp_path, f"[[sources]]\norg = '{emu.org_slug}'\nurl = '{emu.url}'\ntoken_env = 'SM_TOKEN'\n"
                           f"projects = ['{chosen[1]}']\n")
    db = tmp_path / "s.duckdb"
    result = run("sync", "-c", path, "--db", str(db), env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    store = Store(str(db))
    try:
        assert {r[0] for r in store.con.execute("SELECT DISTINCT project_id FROM issues").fetchall()} == {chosen[0]}
    finally:
        store.close()
    bad = write(tmp_path, f"[[sources]]\norg = 'acme'\ntoken_env = 'SM_TOKEN'\nprojects = '{chosen[1]}'\n")
    result = run("config", "check", "-c", bad, env={"SM_TOKEN": TOKEN})
    assert result.exit_code == 2 and "sources[0].projects must be a list of project slugs" in result.stderr
