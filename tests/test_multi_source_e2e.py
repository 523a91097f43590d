"""Several sources in one store: a Sentry and a GlitchTip synced through one config file, their
rows tagged by source, `--source` keeping each organization to itself in reports and issue lists,
and the figures of a project slug both share added up without crossing bases."""

import json

from helpers import column

from sentry_mirror.emulator import Emulator
from sentry_mirror.storage.store import Store


TOKEN = "sntryu_" + "9" * 64


def test_two_sources_share_one_store(tmp_path, monkeypatch):
    """Two servers (a Sentry and a GlitchTip) into one store through a config file, rows tagged."""
    from sentry_mirror.running.config import resolve
    from sentry_mirror.running.runner import sync_all

    with Emulator(seed=13, scale="tiny", token=TOKEN) as a, \
            Emulator(seed=14, scale="tiny", token="sntryu_" + "7" * 64, flavor="glitchtip") as b:
        monkeypatch.setenv("A_TOKEN", a.token)
        monkeypatch.setenv("B_TOKEN", b.token)
        config_path = tmp_path / "c.toml"
        config_path.write_text(f'db = "{tmp_path / "two.duckdb"}"\n'
                               f'[[sources]]\nname = "saas"\nurl = "{a.url}"\norg = "{a.org_slug}"\ntoken_env = "A_TOKEN"\n'
                               f'[[sources]]\nname = "gt"\nurl = "{b.url}"\norg = "{b.org_slug}"\ntoken_env = "B_TOKEN"\n')
        results = sync_all(resolve(config_path=str(config_path), url=None, org=None, token=None, db=None))
        assert [r.source for r in results] == ["saas", "gt"] and all(r.status == "ok" for r in results)
        store = Store(str(tmp_path / "two.duckdb"))
        for name, emu in (("saas", a), ("gt", b)):
            issues = column(store, "SELECT id FROM issues WHERE source = ?", name)
            assert issues == set(emu.truth()["issues"])
            assert store.con.execute("SELECT count(*) FROM events WHERE source = ?", [name]).fetchone()[0] \
                == emu.truth()["counts"]["events"]
        store.close()
        # --source keeps each organization to itself in the reports and the issue list (both
        # emulators name their projects alike: without it, one project's figures were two orgs')
        from click.testing import CliRunner

        from sentry_mirror.cli import cli

        def cli_json(*args):
            result = CliRunner().invoke(cli, [*args, "--db", str(tmp_path / "two.duckdb"), "--format", "json",
                                              "--limit", "100000"])
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        for name, emu in (("saas", a), ("gt", b)):
            truth = emu.truth()
            listed = cli_json("issues", "--source", name)
            assert len(listed) == len(truth["issues"])
            top = cli_json("report", "top", "--source", name)
            assert {r["issue_id"] for r in top} <= set(truth["issues"])
            assert sum(r["events"] for r in top) == truth["counts"]["events"]
            users = cli_json("report", "users", "--source", name)
            assert {r["issue_id"] for r in users} <= set(truth["issues"])
            trends = cli_json("report", "trends", "--source", name, "--by", "week")
            if name == "gt":  # GlitchTip has no project stats: counted from its own events alone
                assert {r["basis"] for r in trends} == {"events"}
                assert sum(r["events"] for r in trends) == truth["counts"]["events"]
            else:
                assert {r["basis"] for r in trends} == {"stats"}
            regressions = cli_json("report", "regressions", "--source", name)
            assert {r["release"] for r in regressions} <= set(truth["releases"])
        assert len(cli_json("issues")) == len(a.truth()["issues"]) + len(b.truth()["issues"])
        # Without --source a project of one slug in both adds up, one row per bucket and project
        # (each counted on its own basis); it came out as four rows, week_before crossed between bases
        per_source = {}
        for name in ("saas", "gt"):
            for r in cli_json("report", "trends", "--source", name, "--by", "day"):
                per_source[(r["bucket"], r["project"])] = per_source.get((r["bucket"], r["project"]), 0) + r["events"]
        both = cli_json("report", "trends", "--by", "day")
        keys = [(r["bucket"], r["project"]) for r in both]
        assert len(keys) == len(set(keys)) == len(per_source)
        assert {(r["bucket"], r["project"]): r["events"] for r in both} == per_source
        shared = {r["project"] for r in both if r["basis"] == "events+stats"}
        assert shared, "the two emulators share no project slug: pick other seeds"
        missing = CliRunner().invoke(cli, ["issues", "--source", "nope", "--db", str(tmp_path / "two.duckdb")])
        assert missing.exit_code == 2 and "known: gt, saas" in missing.stderr
