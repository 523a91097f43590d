"""Printing a reader's rows as a table, CSV, TSV, a JSON array or newline-delimited JSON.

One convention for every command that prints rows, as sqlite-utils has it: `--table` (the default),
`--csv`, `--tsv`, `--json`, `--nl`, `--no-headers`, or `--format NAME`. Rows arrive in batches
(`reading.rows.Rows`) and leave as they come, so CSV, TSV and JSON of millions of rows take
constant memory; only a table, which must know its column widths, holds the rows it shows.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable, Sequence, TextIO

from ..errors import ConfigError
from ..reading.rows import Rows

FORMATS = ("table", "csv", "tsv", "json", "nl")
COMFORTABLE = 24  # text is cut to this before a table leaves out its optional columns
MIN_CELL = 6  # and never narrower than this
UNCUT = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
         "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE",
         "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIME WITH TIME ZONE", "INTERVAL")  # a cut number or time would read as another one
GAP = "  "


@dataclass(frozen=True)
class Output:
    fmt: str = "table"
    headers: bool = True
    wide: bool = False  # a table with every column and whole values, whatever the terminal's width
    limit: int | None = None  # at most this many rows; a table says how many more there were
    width: int | None = None  # fit a table to this many characters; None: as wide as it needs


def choose(flags: dict[str, bool], fmt: str | None, *, no_headers: bool = False, wide: bool = False,
           limit: int | None = None) -> Output:
    """The output the flags ask for; two that disagree are one line, not a silent pick."""
    asked = [name for name in FORMATS if flags.get(name)]
    if fmt:
        asked.append(fmt)
    asked = list(dict.fromkeys(asked))  # --csv --format csv agree
    if len(asked) > 1:
        raise ConfigError(f"{' and '.join('--' + a for a in asked)} contradict each other",
                          hint="pick one output format")
    chosen = asked[0] if asked else "table"
    if no_headers and chosen in ("json", "nl"):
        raise ConfigError(f"--no-headers has no meaning for --{chosen}", hint="it applies to --table, --csv and --tsv")
    if wide and chosen != "table":
        raise ConfigError(f"--wide shapes tables only, not --{chosen}", hint="--csv, --tsv and --json keep every value whole")
    return Output(chosen, headers=not no_headers, wide=wide, limit=limit, width=None if wide else terminal_width())


def terminal_width() -> int | None:
    """COLUMNS when the user set it, else the terminal's width; None when printing into a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def write(rows: Rows, out: Output, *, count_rest: Callable[[], int | None] | None = None,
          optional: Sequence[str] = (), stream: TextIO | None = None) -> int:
    """Print `rows` as `out` says; returns how many rows were printed. `count_rest` counts the rows
    of the whole answer, for a table cut at its limit (None: the rows are counted by reading them);
    `optional` names the columns a table too wide for the terminal leaves out first."""
    stream = stream or sys.stdout
    if out.fmt == "table":
        return _table(rows, out, stream, count_rest, optional)
    if out.limit is not None:
        rows = rows.limited(out.limit)
    if out.fmt in ("csv", "tsv"):
        return _delimited(rows, out, stream)
    return _json(rows, out.fmt == "nl", stream)


# -- CSV and TSV --------------------------------------------------------------------------------

def _delimited(rows: Rows, out: Output, stream: TextIO) -> int:
    writer = csv.writer(stream, delimiter="," if out.fmt == "csv" else "\t", lineterminator="\n")
    if out.headers:
        writer.writerow(rows.columns)
    convert = [(i, f) for i, f in enumerate(_converters(rows, _csv_value)) if f]
    n = 0
    for chunk in rows.chunks():
        if convert:
            chunk = [_convert_row(row, convert) for row in chunk]
        writer.writerows(chunk)  # None is an empty field
        n += len(chunk)
    return n


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else str(value)
    return value


def _converters(rows: Rows, convert: Callable[[Any], Any]) -> list[Callable | None]:
    """Per column, the conversion its values need, or None for those written as they are
    (integers and text: the bulk of most answers, and the fast path)."""
    plain = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT", "VARCHAR", "DECIMAL", "DATE", "TIMESTAMP", "UUID")
    return [None if kind.split("(")[0] in plain else convert for kind in rows.types]


def _convert_row(row: tuple, convert: list[tuple[int, Callable]]) -> list:
    values = list(row)
    for i, f in convert:
        if values[i] is not None:
            values[i] = f(values[i])
    return values


# -- JSON and newline-delimited JSON --------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    return value


def _json(rows: Rows, newline_delimited: bool, stream: TextIO) -> int:
    floats = [i for i, kind in enumerate(rows.types) if kind in ("FLOAT", "DOUBLE")]
    columns = rows.columns
    dumps = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False).encode
    n = 0
    for chunk in rows.chunks():
        lines = []
        for row in chunk:
            if floats:
                row = list(row)
                for i in floats:
                    row[i] = _json_value(row[i])
            lines.append(dumps(dict(zip(columns, row))))
        if newline_delimited:
            stream.write("\n".join(lines) + "\n")
        else:
            stream.write(("[\n  " if n == 0 else ",\n  ") + ",\n  ".join(lines))
        n += len(chunk)
    if not newline_delimited:
        stream.write("\n]\n" if n else "[]\n")
    return n


# -- Tables -------------------------------------------------------------------------------------

def _cell(value: Any, wide: bool) -> str:
    """A value as a table shows it: missing as an empty cell, one line, times to the second."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "" if math.isnan(value) else str(value)
        return repr(value) if wide else f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 else f"{value:.3g}"
    if isinstance(value, datetime) and not wide:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, dict, tuple)):
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    return text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")


def _table(rows: Rows, out: Output, stream: TextIO, count_rest: Callable[[], int | None] | None,
           optional: Sequence[str]) -> int:
    shown: list[tuple] = []
    more: int | None = 0
    for chunk in rows.chunks():
        room = (out.limit - len(shown)) if out.limit is not None else len(chunk)
        shown.extend(chunk[:room])
        if len(chunk) > room:  # cut at the limit: how many more are there?
            counted = count_rest() if count_rest else None  # None: SQL cannot count it (CALL, PRAGMA)
            more = counted - len(shown) if counted is not None else None
            if more is None:
                more = len(chunk) - room + sum(len(c) for c in rows.chunks())
            break
    if not shown:
        stream.write("(no rows)\n")
        return 0
    cells = [[_cell(v, out.wide) for v in row] for row in shown]
    cuttable = [rows.types[i].split("(")[0] not in UNCUT for i in range(len(rows.columns))]
    numeric = [rows.numeric(i) for i in range(len(rows.columns))]
    optional_at = [rows.columns.index(c) for c in optional if c in rows.columns]
    for line in layout(rows.columns, cells, numeric, cuttable, width=out.width, headers=out.headers,
                       optional=optional_at):
        stream.write(line + "\n")
    if more:
        stream.write(f"… {more:,} more row{'s' if more != 1 else ''} (--limit shows more; --csv or --nl prints all)\n")
    return len(shown)


def layout(columns: list[str], cells: list[list[str]], numeric: list[bool], cuttable: list[bool], *,
           width: int | None, headers: bool = True, optional: Sequence[int] = ()) -> list[str]:
    """The lines of a table. With a `width`, it is fitted: long text is cut (with …), then the
    `optional` columns are left out, in their order, then text is cut shorter still, and columns
    from the right are left out; a last line names the ones left out."""
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    keep = list(range(len(columns)))
    if width:
        keep, widths = _plan(widths, cuttable, width, list(optional))

    def line(values: list[str]) -> str:
        parts = []
        for i in keep:
            text = _cut(values[i], widths[i])
            parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
        return GAP.join(parts).rstrip()

    lines = [line(columns), GAP.join("-" * widths[i] for i in keep)] if headers else []
    lines.extend(line(r) for r in cells)
    hidden = [columns[i] for i in range(len(columns)) if i not in keep]
    if hidden:
        lines.append(f"({len(hidden)} more column{'s' if len(hidden) != 1 else ''}: {', '.join(hidden)}; "
                     "--wide shows every column)")
    return lines


def _plan(widths: list[int], cuttable: list[bool], width: int, optional: list[int]) -> tuple[list[int], list[int]]:
    """Which columns a table of at most `width` characters keeps, and their widths."""
    keep = list(range(len(widths)))
    while True:  # first, text cut no shorter than COMFORTABLE, leaving out the optional columns
        fitted = _fit(widths, cuttable, keep, width, COMFORTABLE)
        if _total(fitted, keep) <= width or not optional:
            break
        keep.remove(optional.pop(0))
    fitted = _fit(widths, cuttable, keep, width, MIN_CELL)
    while len(keep) > 1 and _total(fitted, keep) > width:  # then whatever fits, from the left
        keep.pop()
        fitted = _fit(widths, cuttable, keep, width, MIN_CELL)
    return keep, fitted


def _total(widths: list[int], keep: list[int]) -> int:
    return sum(widths[i] for i in keep) + len(GAP) * (len(keep) - 1)


def _fit(widths: list[int], cuttable: list[bool], keep: list[int], width: int, floor: int) -> list[int]:
    """Cut the widest text columns to one common cap (no lower than `floor`), the largest that fits."""
    text = [i for i in keep if cuttable[i] and widths[i] > floor]
    if _total(widths, keep) <= width or not text:
        return widths
    room = width - (_total(widths, keep) - sum(widths[i] for i in text))
    cap = max(widths[i] for i in text)
    while cap > floor and sum(min(widths[i], cap) for i in text) > room:
        cap -= 1
    return [min(w, cap) if i in text else w for i, w in enumerate(widths)]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
