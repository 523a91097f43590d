"""The issue search parser: good queries become the AST Sentry's grammar implies (cases drawn from
Sentry's tests/sentry/api/test_event_search.py where they apply to issue search), bad ones one
SearchError naming the column and, for an unknown key, the nearest valid key; through the CLI a bad
query is one line and exit 2, a good one lists the issues it finds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from helpers import sync
from sentry_mirror.errors import SearchError
from sentry_mirror.reading.search import search_issue_ids
from sentry_mirror.reading.search.parser import And, Filter, FreeText, Or, Rel, parse

UTC = timezone.utc


def f(key, op, value, column, kind="text"):
    return Filter(key, op, value, column, kind)


@pytest.mark.parametrize("query, ast", [
    ("", None),
    ("   ", None),
    ("is:unresolved", f("is", "=", "unresolved", 1, "is")),
    ("!is:unresolved", f("is", "!=", "unresolved", 1, "is")),
    ("level:error", f("level", "=", ("error",), 1)),
    ("!level:error", f("level", "!=", ("error",), 1)),
    ("level:[error, fatal]", f("level", "in", ("error", "fatal"), 1)),
    ("!level:[error,fatal]", f("level", "not in", ("error", "fatal"), 1)),
    ('release:"1.0 beta"', f("release", "=", ("1.0 beta",), 1)),
    (r'message:"with \"quotes\""', f("message", "=", ('with "quotes"',), 1)),
    ('release:["a b", c]', f("release", "in", ("a b", "c"), 1)),
    ("user.email:*@example.com", f("user.email", "=", ("*@example.com",), 1)),
    ("times_seen:>500", f("times_seen", ">", 500.0, 1, "number")),
    ("timesSeen:>=1k", f("times_seen", ">=", 1000.0, 1, "number")),
    ("times_seen:<1.5m", f("times_seen", "<", 1_500_000.0, 1, "number")),
    ("!times_seen:>10", f("times_seen", "<=", 10.0, 1, "number")),
    ("times_seen:[1, 2]", f("times_seen", "in", (1.0, 2.0), 1, "number")),
    ("lastSeen:-24h", f("lastSeen", ">=", Rel(86400), 1, "date")),
    ("lastSeen:+7d", f("lastSeen", "<=", Rel(7 * 86400), 1, "date")),
    ("age:-2w", f("firstSeen", ">=", Rel(14 * 86400), 1, "date")),
    ("firstSeen:>2024-01-31T12:00:00Z", f("firstSeen", ">", datetime(2024, 1, 31, 12, tzinfo=UTC), 1, "date")),
    ("firstSeen:<=2024-01-31T12:00:00+02:00",
     f("firstSeen", "<=", datetime(2024, 1, 31, 10, tzinfo=UTC), 1, "date")),
    ("lastSeen:2024-01-31", f("lastSeen", "range", (datetime(2024, 1, 31, tzinfo=UTC),
                                                    datetime(2024, 2, 1, tzinfo=UTC)), 1, "date")),
    ("lastSeen:2024-01-31T12:00:00", f("lastSeen", "range", (datetime(2024, 1, 31, 11, 55, tzinfo=UTC),
                                                             datetime(2024, 1, 31, 12, 6, tzinfo=UTC)), 1, "date")),
    ("has:release", f("release", "has", None, 1)),
    ("!has:user.email", f("user.email", "not has", None, 1)),
    ("error.handled:1", f("error.handled", "=", True, 1, "bool")),
    ("error.unhandled:true", f("error.handled", "=", False, 1, "bool")),
    ("!error.unhandled:true", f("error.handled", "=", True, 1, "bool")),
    ("tags[fruit]:apple", f("fruit", "=", ("apple",), 1, "tag")),
    ("browser:Chrome*", f("browser", "=", ("Chrome*",), 1, "tag")),
    ("assigned_or_suggested:#backend", f("assigned", "=", ("#backend",), 1)),
    ("url:https://example.com/a", f("url", "=", ("https://example.com/a",), 1, "tag")),
    ("hello", FreeText("hello", 1)),
    ("hello world", FreeText("hello world", 1)),
    ('"hello world"', FreeText("hello world", 1)),
    ("hello level:error", And((FreeText("hello", 1), f("level", "=", ("error",), 7)))),
    ("a OR b", Or((FreeText("a", 1), FreeText("b", 6)))),
    ("a or b", Or((FreeText("a", 1), FreeText("b", 6)))),
    # AND binds tighter than OR (Sentry: "a OR b c" is a OR (b AND c))
    ("level:error OR level:fatal is:unresolved",
     Or((f("level", "=", ("error",), 1),
         And((f("level", "=", ("fatal",), 16), f("is", "=", "unresolved", 28, "is")))))),
    ("(level:error OR level:fatal) is:unresolved",
     And((Or((f("level", "=", ("error",), 2), f("level", "=", ("fatal",), 17))), f("is", "=", "unresolved", 30, "is")))),
    ("level:error AND is:resolved", And((f("level", "=", ("error",), 1), f("is", "=", "resolved", 17, "is")))),
])
def test_good_queries(query, ast):
    assert parse(query) == ast


def test_store_tag_keys_are_keys():
    assert parse("fruit:apple", tag_keys={"fruit"}) == f("fruit", "=", ("apple",), 1, "tag")
    with pytest.raises(SearchError):
        parse("fruit:apple")


@pytest.mark.parametrize("query, message, column", [
    ("levle:error", "unknown search key 'levle' at column 1; did you mean 'level'?", 1),
    ("is:unresolved relase:1.0", "unknown search key 'relase' at column 15; did you mean 'release'?", 15),
    ("timesseen:>5", "did you mean 'times_seen'?", 1),
    ('message:"unclosed', "unbalanced quote", 9),
    ('"unclosed free text', "unbalanced quote", 1),
    ("(level:error", "unbalanced parenthesis", 1),
    ("level:error)", "unbalanced parenthesis", 12),
    ("OR level:error", "missing on the left side of 'OR'", 1),
    ("level:error OR", "missing on the right side of 'OR'", 13),
    ("level:error OR OR level:fatal", "missing on the left side of 'OR'", 16),
    ("level:[error, ", "unbalanced bracket", 7),
    ("level:[error,,fatal]", "empty value", 14),
    ("times_seen:lots", "invalid number 'lots'", 12),
    ("lastSeen:yesterday", "invalid date 'yesterday'", 10),
    ("lastSeen:2024-13-45", "invalid date", 10),
    ("!lastSeen:-24h", "cannot be negated", 1),
    ("is:sleeping", "invalid value 'sleeping' for 'is'", 4),
    ("error.handled:maybe", "invalid boolean", 15),
    ("level:>error", "does not apply", 7),
    ("has:nothing", "unknown key 'nothing' for 'has'", 5),
    ("level:", "empty value for 'level'", 7),
])
def test_bad_queries_name_the_column(query, message, column):
    with pytest.raises(SearchError) as err:
        parse(query)
    assert message in str(err.value)
    assert err.value.column == column
    assert f"column {column}" in str(err.value)


# ----- through the store and the CLI -------------------------------------------------------------
@pytest.fixture(scope="module")
def store_path(emu, tmp_path_factory):
    from sentry_mirror.storage.store import Store

    path = tmp_path_factory.mktemp("q") / "mirror.duckdb"
    store = Store(path)
    sync(store, emu)
    store.close()
    return str(path)


def cli(*args):
    from click.testing import CliRunner

    from sentry_mirror.cli import cli as main

    return CliRunner().invoke(main, list(args))


def test_cli_bad_query_is_one_line_and_exit_2(store_path):
    result = cli("issues", "--db", store_path, "-q", "levle:error")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == ["sentry-mirror: error: unknown search key 'levle' at column 1; did you mean 'level'?"]


def test_cli_assigned_me_needs_an_email(store_path):
    result = cli("issues", "--db", store_path, "-q", "assigned:me")
    assert result.exit_code == 2 and "--me EMAIL" in result.output and "Traceback" not in result.output
    assert cli("issues", "--db", store_path, "-q", "assigned:me", "--me", "nobody@acme.example").exit_code == 0


def test_cli_query_lists_what_search_finds(store_path, emu):
    import json

    import duckdb

    result = cli("issues", "--db", store_path, "-q", "is:unresolved level:error", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    shown = {row["short_id"] for row in json.loads(result.output)}
    con = duckdb.connect(store_path, read_only=True)
    try:
        ids = search_issue_ids(con, "is:unresolved level:error", now=datetime.now(UTC))
        want = {r[0] for r in con.execute(
            f"SELECT short_id FROM issues WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()} if ids else set()
    finally:
        con.close()
    truth = emu.truth()["issues"]
    assert want and shown == want
    assert all(truth[i]["status"] == "unresolved" for i in ids)


@pytest.mark.parametrize("new, old", [("freq", "events"), ("user", "users"), ("date", "last-seen"),
                                      ("new", "first-seen")])
def test_cli_sort_names_and_their_old_aliases(store_path, new, old):
    a = cli("issues", "--db", store_path, "--sort", new, "--csv", "--limit", "1000")
    b = cli("issues", "--db", store_path, "--sort", old, "--csv", "--limit", "1000")
    assert a.exit_code == b.exit_code == 0 and a.output == b.output and a.output.count("\n") > 3


def test_relative_dates_count_from_now(store_path, emu):
    import duckdb

    con = duckdb.connect(store_path, read_only=True)
    try:
        now = emu.world.now
        recent = set(search_issue_ids(con, "lastSeen:-24h", now=now))
        older = set(search_issue_ids(con, "lastSeen:+24h", now=now))
        later = set(search_issue_ids(con, "lastSeen:-24h", now=now + timedelta(days=400)))
    finally:
        con.close()
    assert recent and older and not recent & older and not later
