"""Per-project details (issue 23 §3): every tag key a project lists and each key's values, and the
project's service hooks without their secrets, against the emulator over HTTP; a server without
the key list (GlitchTip) falls back to the six fixed keys; refused reads are remembered."""

from __future__ import annotations

import json

import requests
from helpers import TOKEN, session, sync

from sentry_mirror.emulator import Emulator, aggregates
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing import project_details as details

TAGS = "GET /api/0/projects/{org}/{project}/tags/"
VALUES = "GET /api/0/projects/{org}/{project}/tags/{key}/values/"
HOOKS = "GET /api/0/projects/{org}/{project}/hooks/"


def stored_tags(store) -> dict:
    out: dict = {}
    for project_id, key, value, count in store.con.execute(
            "SELECT project_id, key, value, count FROM tag_values").fetchall():
        out.setdefault(project_id, {}).setdefault(key, {})[value] = count
    return out


def truth_tags(emu) -> dict:
    return {p: {k: v for k, v in keys.items() if v} for p, keys in emu.truth()["tag_values"].items() if keys}


def emulator_hooks(emu) -> dict:
    """project id -> the hooks the emulator answers, secrets included."""
    s = session(emu)
    slugs = {str(p["id"]): p["slug"] for p in
             s.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/projects/").json()}
    return {pid: s.get(f"{emu.url}/api/0/projects/{emu.org_slug}/{slug}/hooks/").json() for pid, slug in slugs.items()}


def stored_hooks(store) -> dict:
    out: dict = {}
    for project_id, hook_id, url, events, status, created, raw in store.con.execute(
            "SELECT project_id, hook_id, url, events, status, strftime(date_created, '%Y-%m-%dT%H:%M:%S'), raw "
            "FROM project_hooks").fetchall():
        out.setdefault(project_id, []).append((hook_id, url, events, status, created, json.loads(raw)))
    return out


def test_every_tag_key_and_its_values_equal_the_emulators():
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        assert sync(store, emu).status == "ok"
        want = truth_tags(emu)
        assert stored_tags(store) == want
        assert any(set(keys) - set(aggregates.TAG_KEYS) for keys in want.values())  # more than the six
        keys = {}
        for project_id, key, values_seen in store.con.execute(
                "SELECT project_id, key, values_seen FROM project_tag_keys").fetchall():
            keys.setdefault(project_id, {})[key] = values_seen
        assert keys == {p: {k: len(v) for k, v in kv.items()} for p, kv in want.items()}


def test_a_key_added_by_new_events_appears_at_the_next_details_refresh(monkeypatch):
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        since = emu.world.now_ms
        summarise = aggregates._summarise

        def with_a_new_key(world, p):  # events from now on carry `feature`
            s = summarise(world, p)
            new = [t for t in p.ev_times if t > since]
            if new:
                s.tags["feature"] = {"on": [len(new), new[0], new[-1]]}
            return s

        monkeypatch.setattr(aggregates, "_summarise", with_a_new_key)
        monkeypatch.setattr(aggregates, "OTHER_TAG_KEYS", aggregates.OTHER_TAG_KEYS + ("feature",))
        with emu.world.lock:
            emu.world.cache.clear()
        emu.advance(6)
        want = truth_tags(emu)
        assert any("feature" in keys for keys in want.values())
        sync(store, emu)  # the details' cadence has not passed: not read
        assert not any("feature" in keys for keys in stored_tags(store).values())
        emu.requests.reset()
        sync(store, emu, refresh=frozenset({"project_details"}))
        assert stored_tags(store) == want
        counts = emu.request_counts()["by_endpoint"]
        moved = len({p for p, keys in want.items() if "feature" in keys})
        assert counts[TAGS] >= moved and counts[VALUES] >= moved * len(aggregates.TAG_KEYS)


def test_keys_a_project_no_longer_has_are_pruned_and_the_setting_narrows_them():
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        emu.advance(30)  # every project's issues move: their details are read at the refresh
        emu.requests.reset()
        sync(store, emu, refresh=frozenset({"project_details"}), tag_keys=("environment", "os"))
        assert {k for keys in stored_tags(store).values() for k in keys} == {"environment", "os"}
        counts = emu.request_counts()["by_endpoint"]
        projects = len(emu.truth()["projects"])
        assert counts[TAGS] == projects and counts[VALUES] == 2 * projects  # 1 + 2 keys a project


def test_hooks_equal_the_emulators_without_their_secrets_and_the_file_holds_none(tmp_path):
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        s = session(emu)
        project = s.get(f"{emu.url}/api/0/organizations/{emu.org_slug}/projects/").json()[0]
        made = s.post(f"{emu.url}/api/0/projects/{emu.org_slug}/{project['slug']}/hooks/",
                      json={"url": "https://example.com/hook", "events": ["event.created"]})
        assert made.status_code == 201 and made.json()["secret"]
        path = tmp_path / "mirror.duckdb"
        store = Store(path)
        assert sync(store, emu).status == "ok"
        served = emulator_hooks(emu)
        secrets = [h["secret"] for hooks in served.values() for h in hooks]
        assert len(secrets) > len(served) and all(secrets)
        want = {p: sorted((h["id"], h["url"], h["events"], h["status"], h["dateCreated"][:19],
                           {k: v for k, v in h.items() if k != "secret"}) for h in hooks)
                for p, hooks in served.items() if hooks}
        assert {p: sorted(h) for p, h in stored_hooks(store).items()} == want
        store.close()
        stored = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
        assert stored and not [x for x in secrets if x.encode() in stored]


def test_a_hook_deleted_in_sentry_is_dropped_at_the_next_refresh():
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        served = emulator_hooks(emu)
        pid = next(p for p, h in served.items() if h)
        slug = next(p["slug"] for p in session(emu).get(
            f"{emu.url}/api/0/organizations/{emu.org_slug}/projects/").json() if str(p["id"]) == pid)
        gone = served[pid][0]["id"]
        assert gone in {h[0] for h in stored_hooks(store)[pid]}
        assert session(emu).delete(f"{emu.url}/api/0/projects/{emu.org_slug}/{slug}/hooks/{gone}/").status_code == 204
        emu.advance(30)
        sync(store, emu, refresh=frozenset({"project_details"}))
        assert gone not in {h[0] for h in stored_hooks(store).get(pid, [])}


def test_hooks_refused_are_remembered_and_said_once():
    with Emulator(seed=8, scale="tiny", token=TOKEN) as emu:
        requests.post(emu.url + "/_emulator/faults", json={"spec": "kind=forbidden,route=*/hooks/*"},
                      timeout=10).raise_for_status()
        store = Store(":memory:")
        first = sync(store, emu)
        assert first.status == "ok" and not first.errors
        projects = len(emu.truth()["projects"])
        assert len([n for n in first.notes if n.startswith("project_hooks:")]) == projects
        assert store.con.execute("SELECT count(*) FROM project_hooks").fetchone() == (0,)
        emu.advance(30)  # every project's issues move, and the details' cadence passes
        emu.requests.reset()
        second = sync(store, emu)
        assert second.streams["project_details"]["requests"] > 0  # the details were read again
        assert HOOKS not in emu.request_counts()["by_endpoint"]
        assert not [n for n in second.notes if n.startswith("project_hooks:")] and not second.errors
        emu.faults.clear()
        emu.advance(30)
        sync(store, emu, refresh=frozenset({"project_details"}))  # asked again when told to
        assert store.con.execute("SELECT count(DISTINCT project_id) FROM project_hooks").fetchone() == (projects,)


def test_glitchtip_without_the_key_list_falls_back_to_the_six_keys():
    """GlitchTip has no tag key list, no service hooks, and answers tag values with an HTML 500
    (GLITCHTIP.md): the six fixed keys are asked, nothing is stored, the sync is not failed, and
    the two missing lists are not asked again."""
    with Emulator(seed=8, scale="tiny", token=TOKEN, flavor="glitchtip") as emu:
        store = Store(":memory:")
        first = sync(store, emu)
        assert first.status == "ok" and not first.errors, first.errors
        assert {n.split(":")[0] for n in first.notes if "not available from this server" in n} >= {
            "project_tag_keys", "project_hooks", "tag_values"}
        assert "/tags/environment/values/" in " ".join(emu.requests.paths())  # the fallback's first key
        assert stored_tags(store) == {}
        emu.advance(30)
        emu.requests.reset()
        sync(store, emu)  # the details' cadence has passed: neither missing list is asked again
        paths = " ".join(emu.requests.paths())
        assert "/tags/?" not in paths and not paths.endswith("/tags/") and "/hooks/" not in paths
        assert "/tags/environment/values/" in paths


def test_savers_take_real_shaped_json():
    store = Store(":memory:")
    keys = [{"key": "browser.name", "name": "Browser Name", "canDelete": True, "uniqueValues": 3},
            {"key": "environment", "name": "Environment", "canDelete": False}]
    hooks = details.without_secrets([{"dateCreated": "2018-11-06T21:20:08.143Z", "events": ["event.alert", "event.created"],
                                      "id": "4f9d73e63b7144ecb8944c41620a090b", "status": "active",
                                      "secret": "8fcac28aaa4c4f5fa572b61d40a8e084364db25fd37449c299e5a41c0504cbc2",
                                      "url": "https://empowerplant.io/sentry-hook"}])
    with store.transaction():
        store.upsert("project_tag_keys", keys, source="s", contexts=[{"project_id": "4"}] * 2)
        store.upsert("project_hooks", hooks, source="s", contexts=[{"project_id": "4"}])
    assert store.con.execute("SELECT key, name, values_seen, can_delete FROM project_tag_keys ORDER BY key").fetchall() \
        == [("browser.name", "Browser Name", 3, True), ("environment", "Environment", None, False)]
    row = store.con.execute("SELECT hook_id, url, events, status, date_created, raw FROM project_hooks").fetchone()
    assert row[:4] == ("4f9d73e63b7144ecb8944c41620a090b", "https://empowerplant.io/sentry-hook",
                       ["event.alert", "event.created"], "active")
    assert str(row[4]) == "2018-11-06 21:20:08.143000" and "secret" not in json.loads(row[5])
    assert details.keys_to_read(None, None) == list(aggregates.TAG_KEYS)
    assert details.keys_to_read(["a", "b"], ("b", "c")) == ["b"]


def test_the_tag_keys_setting_is_all_or_a_list(monkeypatch, tmp_path):
    import pytest

    from sentry_mirror.errors import ConfigError
    from sentry_mirror.running.config import resolve

    monkeypatch.setenv("ACME_TOKEN", "t")
    monkeypatch.setenv("SENTRYCLIRC", str(tmp_path / "none"))
    path = tmp_path / "c.toml"
    base = '[[sources]]\nurl = "https://sentry.io"\norg = "acme"\ntoken_env = "ACME_TOKEN"\n'
    path.write_text(base)
    assert resolve(config_path=str(path), url=None, org=None, token=None, db=None).sources[0].tag_keys == "all"
    path.write_text(base + 'tag_keys = ["environment", "release"]\n')
    source = resolve(config_path=str(path), url=None, org=None, token=None, db=None).sources[0]
    assert source.tag_keys == ["environment", "release"]
    path.write_text(base + 'tag_keys = "some"\n')
    with pytest.raises(ConfigError, match="tag_keys must be"):
        resolve(config_path=str(path), url=None, org=None, token=None, db=None)
