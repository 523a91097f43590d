"""A source is bound to its server and organization at its first sync. A sync pointed at another
server whose organization has the same slug marked 197 of 202 stored issues deleted, added the
other organization's rows under the same source, and exited 6; nothing undid it."""

import http.server
import threading

import pytest
from click.testing import CliRunner
from helpers import assert_level, sync

from sentry_mirror.cli import cli
from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store

TOKEN = "sntryu_" + "b" * 64


def run(db, emu, *flags):
    return CliRunner().invoke(cli, ["sync", "--url", emu.url, "--org", emu.org_slug, "--db", str(db), "-q", *flags],
                              env={"SENTRY_AUTH_TOKEN": TOKEN, "SENTRY_MIRROR_CONFIG": "", "SENTRYCLIRC": "/nonexistent"})


def counts(db):
    store = Store(str(db))
    try:
        return store.con.execute(
            "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM projects), "
            "(SELECT count(*) FROM issues), (SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL), "
            "(SELECT count(*) FROM events)").fetchone()
    finally:
        store.close()


def test_another_organization_under_the_same_slug_is_refused_before_anything_is_written(tmp_path, clean_sentry_env):
    db = tmp_path / "m.duckdb"
    with Emulator(seed=41, scale="tiny", token=TOKEN) as mine:
        assert run(db, mine).exit_code == 0
    before = counts(db)
    with Emulator(seed=42, scale="tiny", token=TOKEN) as other:
        assert other.world.org_id != mine.world.org_id and other.org_slug == mine.org_slug
        result = run(db, other)
        assert result.exit_code == 2, result.output
        line = result.output.strip().splitlines()[-1]
        assert mine.world.org_id in line and other.world.org_id in line and "\n" not in result.output.strip()
        assert "Traceback" not in result.output
        result = run(db, other, "--rebind")  # a move keeps the id: --rebind never accepts another organization
        assert result.exit_code == 2, result.output
    assert counts(db) == before


def test_a_store_from_before_the_binding_is_checked_against_its_stored_organization(tmp_path, clean_sentry_env):
    db = tmp_path / "m.duckdb"
    with Emulator(seed=41, scale="tiny", token=TOKEN) as mine:
        assert run(db, mine).exit_code == 0
    store = Store(str(db))
    store.con.execute("DELETE FROM _sync_state WHERE stream = '_binding'")
    store.close()
    before = counts(db)
    with Emulator(seed=42, scale="tiny", token=TOKEN) as other:
        assert run(db, other).exit_code == 2
    assert counts(db) == before


def test_a_server_that_moved_is_accepted_with_rebind(tmp_path, clean_sentry_env):
    db = tmp_path / "m.duckdb"
    with Emulator(seed=41, scale="tiny", token=TOKEN) as first:
        assert run(db, first).exit_code == 0
    with Emulator(seed=41, scale="tiny", token=TOKEN) as moved:  # the same organization on a new port
        moved.advance(12)
        refused = run(db, moved)
        assert refused.exit_code == 2 and "--rebind" in refused.output, refused.output
        assert run(db, moved, "--rebind").exit_code == 0
        assert run(db, moved).exit_code == 0  # bound to the new address from now on
        store = Store(str(db))
        try:
            assert_level(store, moved)
        finally:
            store.close()


def test_a_mass_deletion_is_a_failed_stream_unless_full_asks_for_it():
    with Emulator(seed=43, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        assert sync(store, emu).status == "ok"
        live = len(emu.world.served_issues())
        emu.world.delete_issues(emu.world.served_issues()[: live * 3 // 4])  # 15 of 20
        result = sync(store, emu)
        assert result.status == "partial"
        assert any("no longer listed" in e and "--full" in e for e in result.errors), result.errors
        assert store.con.execute("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL").fetchone()[0] == 0
        again = sync(store, emu, full=True)
        assert again.status == "ok", again.errors
        live_ids = {r[0] for r in store.con.execute("SELECT id FROM issues WHERE deleted_at IS NULL").fetchall()}
        assert live_ids == set(emu.truth()["issues"])  # the deleted issues' events stay, as always
        assert store.con.execute("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL").fetchone()[0] == live * 3 // 4


def test_a_few_deletions_are_marked_as_before():
    with Emulator(seed=43, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        emu.world.delete_issues(emu.world.served_issues()[:3])
        assert sync(store, emu).status == "ok"
        assert store.con.execute("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL").fetchone()[0] == 3


@pytest.fixture
def web_server():
    """A plain web server that is not Sentry: every path answers an HTML 404."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body><h1>Not Found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_web_server_that_is_not_sentry_is_named_as_such(tmp_path, web_server, clean_sentry_env):
    result = CliRunner().invoke(cli, ["sync", "--url", web_server, "--org", "acme", "--db", str(tmp_path / "m.duckdb")],
                                env={"SENTRY_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 4, result.output
    assert "does not look like a Sentry API" in result.output and "not found" not in result.output.lower().split(
        "answered")[0]
    assert "Traceback" not in result.output


def test_issues_of_a_project_no_longer_listed_are_not_a_mass_deletion():
    """Deleting a project takes its issues with it: however many, they are marked deleted."""
    with Emulator(seed=43, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu)
        doomed = emu.world.served_issues()[:15]
        # as if they belonged to a project the server has since deleted
        store.con.execute("UPDATE issues SET project_id = 'gone-project' WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                          [[str(i.id) for i in doomed]])
        emu.world.delete_issues(doomed)
        result = sync(store, emu)
        assert result.status == "ok", result.errors
        assert store.con.execute("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL").fetchone()[0] == 15


def test_a_refused_mass_deletion_is_looked_at_again_next_sync(monkeypatch):
    """The share of known issues a sync re-reads moved on even when the guard failed the stream, so
    the same issues were only looked at again after a full round."""
    from sentry_mirror.syncing import syncer as sync_module

    monkeypatch.setattr(sync_module, "MASS_DELETION_MIN", 0)
    with Emulator(seed=43, scale="tiny", token=TOKEN) as emu:
        store = Store(":memory:")
        sync(store, emu, refresh_per_project=1, max_deleted_share=0.1)
        before = store.get_state(emu.org_slug, "issue_status", "")
        emu.world.delete_issues(emu.world.served_issues()[:15])
        for _ in range(2):
            result = sync(store, emu, refresh_per_project=1, max_deleted_share=0.1)
            assert result.status == "partial" and any("no longer listed" in e for e in result.errors)
            assert store.get_state(emu.org_slug, "issue_status", "") == before


def test_a_source_refused_for_another_organization_leaves_the_others_syncing(tmp_path, monkeypatch):
    """A binding refusal ended the whole run: in a config of several sources (and under the
    scheduler, which cannot say --rebind) the other sources never synced again."""
    from sentry_mirror.running.config import resolve
    from sentry_mirror.running.runner import sync_all

    db = tmp_path / "two.duckdb"

    def config(a, b):
        path = tmp_path / "c.toml"
        path.write_text(f'db = "{db}"\n'
                        f'[[sources]]\nname = "a"\nurl = "{a.url}"\norg = "{a.org_slug}"\ntoken_env = "T"\n'
                        f'[[sources]]\nname = "b"\nurl = "{b.url}"\norg = "{b.org_slug}"\ntoken_env = "T"\n')
        return resolve(config_path=str(path), url=None, org=None, token=None, db=None)

    monkeypatch.setenv("T", TOKEN)
    with Emulator(seed=44, scale="tiny", token=TOKEN) as a, Emulator(seed=45, scale="tiny", token=TOKEN) as b:
        assert [r.status for r in sync_all(config(a, b))] == ["ok", "ok"]
        with Emulator(seed=46, scale="tiny", token=TOKEN) as other:  # another organization where a was
            b.advance(6)
            results = sync_all(config(other, b))
            assert [r.status for r in results] == ["failed", "ok"]
            assert other.world.org_id in results[0].errors[0]
            store = Store(str(db))
            try:
                live = {r[0] for r in store.con.execute(
                    "SELECT id FROM issues WHERE source = 'b' AND deleted_at IS NULL").fetchall()}
                assert live == set(b.truth()["issues"])
            finally:
                store.close()
