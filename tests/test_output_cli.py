"""The reading commands' output flags end to end: issues, query and the four reports, printed as a
table, CSV, TSV, JSON and newline-delimited JSON, read back and compared value by value with what
DuckDB itself answers on the same store; tables fitted to the terminal; query's SQL from -, --file
and --param; empty answers; CSV of millions of rows in flat memory; `| head` closing the pipe."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from helpers import invoke, one_line_error, sync

from sentry_mirror.storage.sqlfiles import load_sql, params_for, statements
from sentry_mirror.storage.store import Store, open_readonly

FORMATS = ("csv", "tsv", "json", "nl")
REPORTS = ("trends", "regressions", "users", "top")
ISSUE_COLUMNS = ["short_id", "project", "status", "level", "events", "users", "stored", "first_seen", "last_seen",
                 "first_release", "title"]
ISSUES_SQL = ("SELECT short_id, project, status, level, times_seen, user_count, stored_events, first_seen, last_seen, "
              "first_release, title FROM issue_summary ORDER BY times_seen DESC NULLS LAST, issue_id LIMIT $limit")
FUTURE = "2100-01-01"


@pytest.fixture(scope="module")
def db(emu, tmp_path_factory):
    """One store, synced once from the module's emulator (scale tiny), read by every test here."""
    path = tmp_path_factory.mktemp("output") / "mirror.duckdb"
    store = Store(str(path))
    try:
        sync(store, emu)
    finally:
        store.close()
    return str(path)


@pytest.fixture(autouse=True)
def no_terminal(clean_sentry_env, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)


# -- what DuckDB answers, and the outputs read back ------------------------------------------------

def truth(db: str, sql: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
    """The columns and rows DuckDB answers on the store, read as the readers read it."""
    con = open_readonly(db)
    try:
        result = con.execute(sql, params) if params else con.execute(sql)
        return [d[0] for d in result.description], result.fetchall()
    finally:
        con.close()


def report_truth(db: str, name: str) -> tuple[list[str], list[tuple]]:
    """The report's own SQL run directly, with the CLI's default filters."""
    sql = statements(load_sql("reports", name))[0]
    defaults = {"source": None, "project": None, "environment": None, "release": None, "since": None, "until": None,
                "by": "day", "limit": 50, "basis": "auto"}
    return truth(db, sql, params_for(sql, defaults))


def parse(fmt: str, text: str, headers: bool = True) -> tuple[list[str] | None, list[list]]:
    """The columns and rows of an output, read back as a user's program would read it."""
    if fmt in ("csv", "tsv"):
        lines = list(csv.reader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t"))
        return (lines[0], lines[1:]) if headers else (None, lines)
    objects = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(o, dict) for o in objects)
    return (list(objects[0]) if objects else None), [list(o.values()) for o in objects]


def same_text(text: str, value) -> bool:
    """A CSV/TSV field says `value`: NULL empty, integers whole, times ISO text."""
    if value is None:
        return text == ""
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, int):
        return text == str(value)
    if isinstance(value, float):
        return float(text) == value
    if isinstance(value, Decimal):
        return Decimal(text) == value
    if isinstance(value, datetime):
        return datetime.fromisoformat(text) == value
    if isinstance(value, date):
        return text == value.isoformat()
    if isinstance(value, timedelta):
        return text == str(value)
    if isinstance(value, (list, dict)):
        return json.loads(text) == value
    return text == str(value)


def same_json(got, value) -> bool:
    """A JSON value says `value`: NULL null, integers stay integers, times ISO text."""
    if value is None:
        return got is None
    if isinstance(value, bool):
        return got is value
    if isinstance(value, int):
        return type(got) is int and got == value
    if isinstance(value, float):
        return isinstance(got, (int, float)) and got == value
    if isinstance(value, Decimal):
        return got == float(value)
    if isinstance(value, datetime):
        return isinstance(got, str) and "T" in got and datetime.fromisoformat(got) == value
    if isinstance(value, date):
        return got == value.isoformat()
    if isinstance(value, timedelta):
        return got == str(value)
    return got == value


def assert_same(fmt: str, got: list[list], want: list[tuple]) -> None:
    same = same_text if fmt in ("csv", "tsv") else same_json
    assert len(got) == len(want), (len(got), len(want))
    bad = [(r, c, g, w) for r, (grow, wrow) in enumerate(zip(got, want))
           for c, (g, w) in enumerate(zip(grow, wrow)) if not same(g, w)]
    assert all(len(g) == len(w) for g, w in zip(got, want))
    assert not bad, bad[:5]


def answers(db: str, fmt: str, *args: str, headers: bool = True, **kwargs):
    result = invoke(*args, "--db", db, f"--{fmt}", *([] if headers else ["--no-headers"]), **kwargs)
    assert result.exit_code == 0, result.output
    return parse(fmt, result.stdout, headers)


def command_cases(db: str):
    """(the command's arguments, what DuckDB answers for it) for issues, query and each report."""
    yield ("issues", "--limit", "100"), (ISSUE_COLUMNS, truth(db, ISSUES_SQL, {"limit": 100})[1])
    sql = ("SELECT times_seen, user_count, last_seen, short_id, title, * EXCLUDE (times_seen, user_count, last_seen, "
           "short_id, title) FROM issue_summary ORDER BY issue_id")
    yield ("query", sql), truth(db, sql)
    for name in REPORTS:
        yield ("report", name), report_truth(db, name)


# -- every command, every format ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_every_reading_command_prints_what_duckdb_answers(db, fmt):
    for args, (columns, rows) in command_cases(db):
        assert rows, f"{args}: the store should give this command rows to print"
        got_columns, got = answers(db, fmt, *args)
        assert got_columns == columns, args
        assert_same(fmt, got, rows)


def test_the_reports_agree_with_their_views(db):
    """`report top` counts what the top_issues view counts: the figures, not only the shape."""
    _, got = answers(db, "json", "report", "top")
    view = dict(truth(db, "SELECT short_id, stored_events FROM top_issues")[1])
    assert got and all(view[row[0]] == row[2] for row in got)


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_no_headers_drops_exactly_the_header_line(db, fmt):
    for args, _ in command_cases(db):
        with_headers = invoke(*args, "--db", db, f"--{fmt}").stdout
        without = invoke(*args, "--db", db, f"--{fmt}", "--no-headers").stdout
        assert with_headers.split("\n", 1)[1] == without, args


def test_format_name_is_the_flag(db):
    for fmt in ("table", *FORMATS):
        for args, _ in command_cases(db):
            assert invoke(*args, "--db", db, "--format", fmt).stdout == invoke(*args, "--db", db, f"--{fmt}").stdout


@pytest.mark.parametrize("flags", [("--csv", "--json"), ("--tsv", "--format", "nl"), ("--no-headers", "--nl"),
                                   ("--no-headers", "--json"), ("--wide", "--csv"), ("-t", "--tsv")])
def test_contradicting_flags_are_one_line(db, flags):
    for args in (("issues",), ("query", "SELECT 1"), ("report", "top")):
        result = invoke(*args, "--db", db, *flags)
        one_line_error(result, code=2)
        assert result.stdout == ""


# -- tables ---------------------------------------------------------------------------------------

def table_cells(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """A table's header cells, its rows' cells (cut where the dashes under the header say), and
    the lines after them."""
    lines = text.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    cells = [[line[a:b].strip() for a, b in spans] for line in lines]
    body = [c for line, c in zip(lines[2:], cells[2:]) if not line.startswith(("(", "…"))]
    return cells[0], body, lines[2 + len(body):]


@pytest.mark.parametrize("width", [60, 200])
def test_tables_fit_the_terminal_and_never_cut_numbers_or_times(db, width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    for args, (columns, rows) in command_cases(db):
        text = invoke(*args, "--db", db).stdout
        lines = text.splitlines()
        notes = [line for line in lines if line.startswith("(") and "more column" in line]
        assert all(len(line) <= width for line in lines if line not in notes), (args, max(map(len, lines)))
        header, body, rest = table_cells(text)
        assert len(body) == len(rows) and rest == notes, args
        whole = 0
        for i, name in enumerate(header):
            if name not in columns:
                continue  # a text column's header, cut
            k = columns.index(name)
            for cells, row in zip(body, rows):
                value = row[k]
                if isinstance(value, bool) or not isinstance(value, (int, datetime)):
                    continue
                whole += 1
                shown = value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)
                assert cells[i] == shown, (args, name, cells[i], value)
        assert whole, f"{args}: no number or time shown at width {width}"


def test_wide_prints_every_column_whatever_the_width(db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    for args, (columns, rows) in command_cases(db):
        text = invoke(*args, "--db", db, "--wide").stdout
        header, body, rest = table_cells(text)
        assert header == columns and len(body) == len(rows) and rest == [], args


def test_a_piped_table_is_not_fitted(db):
    """No COLUMNS and no terminal (a pipe, a file): every column, every value whole."""
    for args, (columns, rows) in command_cases(db):
        header, body, rest = table_cells(invoke(*args, "--db", db).stdout)
        assert header == columns and len(body) == len(rows) and rest == [], args
        assert not any(cell.endswith("…") for cells in body for cell in cells), args


def test_a_table_of_an_uncountable_query_says_how_many_more_rows(db):
    """A table stops at 40 rows and counts the rest with SQL; a CALL cannot be counted so, and the
    table crashed with a TypeError instead of counting the rows it had not read."""
    _, rows = truth(db, "CALL duckdb_settings()")
    assert len(rows) > 40
    result = invoke("query", "--db", db, "CALL duckdb_settings()")
    assert result.exit_code == 0, result.output
    _, body, rest = table_cells(result.stdout)
    assert len(body) == 40
    assert rest == [f"… {len(rows) - 40:,} more rows (--limit shows more; --csv or --nl prints all)"]


# -- query: its SQL and its parameters ------------------------------------------------------------

SQL = "SELECT id, short_id, times_seen, level FROM issues ORDER BY id"


def test_query_reads_sql_from_stdin_and_from_a_file(db, tmp_path):
    _, rows = truth(db, SQL)
    _, got = answers(db, "csv", "query", "-", input=SQL + ";\n")
    assert_same("csv", got, rows)
    path = tmp_path / "q.sql"
    path.write_text("-- the issues\n" + SQL + ";\n")
    _, got = answers(db, "nl", "query", "--file", str(path))
    assert_same("nl", got, rows)


def test_query_binds_params_by_name(db):
    """Values are text: DuckDB casts '5' where a number is compared (as text, '49' < '5')."""
    sql = ("SELECT short_id, times_seen FROM issues WHERE times_seen >= $n AND project_id IN "
           "(SELECT id FROM projects WHERE slug = $slug) ORDER BY id")
    _, rows = truth(db, sql, {"n": 5, "slug": "backend"})
    _, as_text = truth(db, sql.replace("times_seen >= $n", "times_seen::VARCHAR >= $n"), {"n": "5", "slug": "backend"})
    assert rows and rows != as_text  # the figures tell a number from text
    _, got = answers(db, "json", "query", sql, "-p", "n", "5", "--param", "slug", "backend")
    assert_same("json", got, rows)


@pytest.mark.parametrize("args, says", [
    (("SELECT $n", "-p", "n", "1", "-p", "n", "2"), "given twice"),
    (("SELECT 1 AS one", "-p", "unused", "1"), "each --param names a $name"),
    (("SELECT $unknown",), "not provided for the following parameters: unknown"),
])
def test_query_param_mistakes_are_one_line(db, args, says):
    for fmt in ("--table", "--csv"):
        result = invoke("query", "--db", db, *args, fmt)
        assert says in one_line_error(result, code=2)
        assert result.stdout == ""


# -- nothing matches ------------------------------------------------------------------------------

EMPTY = {"table": "(no rows)\n", "csv": None, "tsv": None, "json": "[]\n", "nl": ""}


@pytest.mark.parametrize("fmt", list(EMPTY))
def test_issues_matching_nothing_is_an_empty_answer(db, fmt):
    result = invoke("issues", "--db", db, "--project", "backend", "--since", FUTURE, f"--{fmt}")
    assert result.exit_code == 0 and result.stderr == ""
    header = {"csv": ",".join(ISSUE_COLUMNS) + "\n", "tsv": "\t".join(ISSUE_COLUMNS) + "\n"}
    assert result.stdout == (header[fmt] if EMPTY[fmt] is None else EMPTY[fmt])
    if fmt in ("csv", "tsv"):
        assert invoke("issues", "--db", db, "--since", FUTURE, f"--{fmt}", "--no-headers").stdout == ""


@pytest.mark.parametrize("fmt", list(EMPTY))
def test_a_report_with_no_data_is_an_empty_answer_said_on_stderr(db, fmt):
    columns, _ = report_truth(db, "top")
    result = invoke("report", "top", "--db", db, "--since", FUTURE, f"--{fmt}")
    assert result.exit_code == 0
    assert "no data for the top report" in result.stderr and len(result.stderr.splitlines()) == 1
    header = {"csv": ",".join(columns) + "\n", "tsv": "\t".join(columns) + "\n"}
    assert result.stdout == (header[fmt] if EMPTY[fmt] is None else EMPTY[fmt])


# -- streaming --------------------------------------------------------------------------------------

PEAK = """# runs the CLI as its console script does; at exit notes its peak memory (KiB), VmHWM: not
# ru_maxrss, which Linux carries over exec from the (v)forked parent, here the test runner
import atexit, re, sys
note = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as status, open(note, "w") as out:
        out.write(re.search(r"VmHWM:\\s*(\\d+)", status.read()).group(1))
atexit.register(peak)
sys.argv[0] = "sentry-mirror"
from sentry_mirror.cli import main
main()
"""


def peak_kib(db: str, n: int, tmp_path) -> int:
    """The peak memory (KiB) of `query … --csv` printing n rows into a file; checks the file."""
    out, note, script = tmp_path / f"{n}.csv", tmp_path / f"{n}.rss", tmp_path / "peak.py"
    script.write_text(PEAK)  # a file, not -c: DuckDB takes a __main__ without __file__ for a terminal
    sql = f"SELECT range AS n, md5(range::VARCHAR) AS h FROM range({n})"
    with open(out, "w") as fh:
        done = subprocess.run([sys.executable, str(script), str(note), "query", "--db", db, sql, "--csv"],
                              stdout=fh, stderr=subprocess.PIPE, timeout=600)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    lines, last = 0, ""
    with open(out) as fh:
        for last in fh:
            lines += 1
    assert lines == n + 1
    assert last == f"{n - 1},{hashlib.md5(str(n - 1).encode()).hexdigest()}\n"
    return int(note.read_text())


def test_csv_of_millions_of_rows_streams_in_flat_memory(db, tmp_path):
    """Two million rows of CSV take about what ten thousand do; holding them would take hundreds
    of MB more."""
    small = peak_kib(db, 10_000, tmp_path)
    large = peak_kib(db, 2_000_000, tmp_path)
    assert large - small < 60 * 1024, (small, large)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_reader_that_closes_the_pipe_early_ends_it_quietly(db, fmt):
    """`sentry-mirror query … | head -2`: exit 0 and nothing on stderr, however much was left."""
    sql = "SELECT range AS n, md5(range::VARCHAR) AS h FROM range(500000)"
    proc = subprocess.Popen([sys.executable, "-m", "sentry_mirror", "query", "--db", db, sql, f"--{fmt}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = [proc.stdout.readline(), proc.stdout.readline()]
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert all(first) and err == b""
