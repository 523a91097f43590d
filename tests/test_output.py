"""The output layer on its own: rows from an in-memory DuckDB written as table, CSV, TSV, JSON and
newline-delimited JSON, parsed back and compared with what DuckDB itself says of the same rows."""

import csv
import io
import json
from datetime import date, datetime

import duckdb
import pytest

from sentry_mirror.errors import ConfigError
from sentry_mirror.reading.rows import Rows
from sentry_mirror.running.output import Output, choose, layout, write

MIXED = """
SELECT * FROM (VALUES
  (1, 10::HUGEINT, 'plain', TIMESTAMP '2026-01-02 03:04:05.123456', DATE '2026-01-02', 1.5::DOUBLE, true, 2.50::DECIMAL(5,2)),
  (2, 170141183460469231731687303715884105727::HUGEINT, 'comma, "quote"' || chr(10) || 'newline',
      TIMESTAMP '2026-12-31 23:59:59', DATE '2026-12-31', -0.25::DOUBLE, false, 0.01::DECIMAL(5,2)),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS t(id, big, text, seen, day, ratio, flag, amount)
ORDER BY id
"""


def rows_of(sql: str, batch: int = 2) -> Rows:
    con = duckdb.connect()
    return Rows.of(con.execute(sql), batch=batch)


def printed(sql: str, out: Output, **kwargs) -> str:
    buffer = io.StringIO()
    write(rows_of(sql), out, stream=buffer, **kwargs)
    return buffer.getvalue()


def duckdb_csv(sql: str, tmp_path, delimiter: str = ",") -> list[list[str]]:
    """DuckDB's own CSV of the query: the oracle for ours."""
    path = tmp_path / "oracle.csv"
    duckdb.connect().execute(f"COPY ({sql}) TO '{path}' (HEADER, DELIMITER '{delimiter}')")
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=delimiter))


@pytest.mark.parametrize("fmt,delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv_read_back_as_duckdb_writes_them(tmp_path, fmt, delimiter):
    ours = list(csv.reader(io.StringIO(printed(MIXED, Output(fmt))), delimiter=delimiter))
    assert ours == duckdb_csv(MIXED, tmp_path, delimiter)
    assert len(ours) == 4 and ours[2][2] == 'comma, "quote"\nnewline'  # quoted, whole, one record


def test_no_headers_leaves_out_exactly_the_header_line():
    whole = printed(MIXED, Output("csv"))
    bare = printed(MIXED, Output("csv", headers=False))
    assert whole.split("\n", 1)[1] == bare
    table = printed(MIXED, Output("table", headers=False)).splitlines()
    assert not table[0].startswith("id") and len(table) == 3


def test_json_and_nl_keep_types_and_say_null():
    expected = [
        {"id": 1, "big": 10, "text": "plain", "seen": "2026-01-02T03:04:05.123456", "day": "2026-01-02",
         "ratio": 1.5, "flag": True, "amount": 2.5},
        {"id": 2, "big": 2**127 - 1, "text": 'comma, "quote"\nnewline', "seen": "2026-12-31T23:59:59",
         "day": "2026-12-31", "ratio": -0.25, "flag": False, "amount": 0.01},
        {"id": 3, "big": None, "text": None, "seen": None, "day": None, "ratio": None, "flag": None, "amount": None},
    ]
    assert json.loads(printed(MIXED, Output("json"))) == expected
    lines = printed(MIXED, Output("nl")).splitlines()
    assert [json.loads(line) for line in lines] == expected


def test_empty_answers_are_empty_in_every_format():
    none = "SELECT 1 AS a, 'x' AS b WHERE false"
    assert json.loads(printed(none, Output("json"))) == []
    assert printed(none, Output("nl")) == ""
    assert printed(none, Output("csv")) == "a,b\n"
    assert printed(none, Output("table")) == "(no rows)\n"


def test_nan_and_infinity_are_valid_json():
    text = printed("SELECT 'nan'::DOUBLE AS x UNION ALL SELECT 'inf'::DOUBLE", Output("json"))
    assert json.loads(text) == [{"x": None}, {"x": None}]


def test_rows_are_written_as_they_are_fetched():
    """No format but the table waits for the whole answer: the first rows are out before the
    third batch is fetched."""
    for fmt in ("csv", "tsv", "json", "nl"):
        fetched = []
        source = rows_of("SELECT range AS n FROM range(100)", batch=10)

        def counting(batches=source.batches):
            for chunk in batches:
                fetched.append(len(chunk))
                yield chunk

        source.batches = counting()

        class Watch(io.StringIO):
            at_first_row = None

            def write(self, text):
                if self.at_first_row is None and "0" in text:
                    self.at_first_row = len(fetched)
                return super().write(text)

        stream = Watch()
        assert write(source, Output(fmt), stream=stream) == 100
        assert stream.at_first_row is not None and stream.at_first_row <= 2, fmt


def test_a_limited_table_counts_what_it_leaves_out():
    text = printed("SELECT range AS n FROM range(1000)", Output("table", limit=5))
    lines = text.splitlines()
    assert [line.strip() for line in lines[2:7]] == ["0", "1", "2", "3", "4"]
    assert lines[7].startswith("… 995 more rows")
    counted = printed("SELECT range AS n FROM range(1000)", Output("table", limit=5), count_rest=lambda: 1000)
    assert counted == text
    # csv with a limit prints that many rows and nothing else
    assert printed("SELECT range AS n FROM range(1000)", Output("csv", limit=3)) == "n\n0\n1\n2\n"


def test_tables_fit_the_width_cutting_text_never_numbers_or_times():
    sql = ("SELECT 123456789 AS events, TIMESTAMP '2026-01-02 03:04:05' AS last_seen, "
           "repeat('long title ', 20) AS title, 'backend' AS project")
    for width in (40, 60, 80, 120):
        lines = printed(sql, Output("table", width=width)).splitlines()
        assert all(len(line) <= width for line in lines[:3]), (width, lines)
        assert "123456789" in lines[2] and "2026-01-02 03:04:05" in lines[2]
    wide = printed(sql, Output("table", wide=True, width=None)).splitlines()
    assert repeat_title() in wide[2]


def repeat_title() -> str:
    return ("long title " * 20).rstrip()


def test_optional_columns_go_first_and_are_named():
    columns = ["short_id", "status", "events", "stored", "first_release", "title"]
    cells = [["WEB-1", "unresolved", "12", "12", "web@1.0.0", "x" * 80]]
    numeric = [False, False, True, True, False, False]
    lines = layout(columns, cells, numeric, [not n for n in numeric], width=60, optional=[3, 4])
    assert lines[0].split() == ["short_id", "status", "events", "title"]
    assert lines[-1].startswith("(2 more columns: stored, first_release")
    assert all(len(line) <= 60 for line in lines[:-1])
    # a width that takes everything keeps everything
    assert layout(columns, cells, numeric, [not n for n in numeric], width=None, optional=[3, 4])[0].split() == columns


def test_table_cells_are_one_line_and_missing_is_blank():
    text = printed(MIXED, Output("table", width=None))
    lines = text.splitlines()
    assert len(lines) == 5  # header, rule, three rows: the newline inside a value did not break its row
    assert "<NA>" not in text and "None" not in text and "nan" not in text.lower()
    assert lines[4].split() == ["3"]  # the all-NULL row shows its id and blanks


@pytest.mark.parametrize("flags,fmt,extra,message", [
    ({"csv": True, "json": True}, None, {}, "--csv and --json contradict each other"),
    ({"tsv": True}, "nl", {}, "--tsv and --nl contradict each other"),
    ({"nl": True}, None, {"no_headers": True}, "--no-headers has no meaning for --nl"),
    ({}, "json", {"no_headers": True}, "--no-headers has no meaning for --json"),
    ({"csv": True}, None, {"wide": True}, "--wide shapes tables only"),
])
def test_flags_that_disagree_are_one_error(flags, fmt, extra, message):
    with pytest.raises(ConfigError, match=message):
        choose(flags, fmt, **extra)


def test_flags_that_agree_choose_their_format():
    assert choose({}, None).fmt == "table"
    assert choose({"csv": True}, "csv").fmt == "csv"
    assert choose({"table": True}, None, no_headers=True).headers is False
    assert choose({"nl": True}, None).fmt == "nl"


def test_dates_times_and_values_print_as_written():
    text = printed("SELECT DATE '2026-03-04' AS d, TIMESTAMP '2026-03-04 05:06:07.5' AS t, [1, 2] AS l, "
                   "{'k': 'v'} AS s", Output("csv"))
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == str(date(2026, 3, 4)) and row[1] == str(datetime(2026, 3, 4, 5, 6, 7, 500000))
    assert json.loads(row[2]) == [1, 2] and json.loads(row[3]) == {"k": "v"}
