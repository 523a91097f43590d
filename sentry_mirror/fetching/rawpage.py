"""Pages kept as the JSON text the server sent, checked without building Python objects of them.

Full event payloads are the bulk of a sync (about 5 KB each); decoding them with `json` and
encoding them again for the store cost more than everything else the mirror does. The text goes
to DuckDB whole (`Store.upsert_pages`); here DuckDB's own parser checks, on the thread that
fetched it, that the text is a JSON array, and reads the two things the syncer needs from it.

DuckDB's parser needs several times a document's size in memory at once. Events with big
payloads (breadcrumbs, frame variables) make pages of many megabytes, which neither the small
database here nor the store's memory limit could parse whole. Such a page is walked object by
object with Python's parser (one object decoded at a time, to read its time) and handed on in
parts of at most PART_BYTES characters, each part the objects' own text, unchanged; DuckDB then
checks each part, so that the walk refuses what the store would refuse.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ..timestamps import naive_utc, parse_ts

_local = threading.local()
_shared: duckdb.DuckDBPyConnection | None = None  # one small in-memory database; a cursor per thread
_shared_lock = threading.Lock()

# One parse: the array's objects reduced to their creation time (Sentry camelCase or GlitchTip
# snake_case). Text that is not JSON raises; JSON that is not an array gives NULL.
_INSPECT = """
SELECT len(l), list_max(list_transform(l, lambda x: TRY_CAST(coalesce(x.dateCreated, x.date_created) AS TIMESTAMPTZ)))
FROM (SELECT json_transform($text, '[{"dateCreated": "VARCHAR", "date_created": "VARCHAR"}]') AS l)
"""

# Pages up to WHOLE_BYTES characters are checked by DuckDB in one piece; bigger ones are split.
WHOLE_BYTES = 2_000_000
PART_BYTES = 1_000_000

_SPACE = " \t\n\r"  # JSON's whitespace
_decoder = json.JSONDecoder()


@dataclass
class RawPage:
    text: str  # the body as the server sent it ("" when it was split into parts)
    count: int  # objects in the array
    newest: datetime | None  # the latest dateCreated among them (naive UTC), if any
    parts: tuple[str, ...] | None = None  # for a big page: JSON arrays of its objects, to store instead

    def texts(self) -> tuple[str, ...]:
        """The JSON arrays to store: the page itself, or its parts."""
        return self.parts if self.parts is not None else (self.text,)


def inspect(body: bytes) -> RawPage:
    """A response body as a RawPage; ValueError when it is not a JSON array."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    if text.lstrip(_SPACE)[:1] != "[":
        raise ValueError("the body is not a JSON array")
    if len(text) > WHOLE_BYTES:
        return _split(text)
    try:
        row = _cursor().execute(_INSPECT, {"text": text}).fetchone()
    except duckdb.OutOfMemoryException:
        return _split(text)  # deeply nested, or more values than its size suggests
    except duckdb.Error as exc:
        raise ValueError(_invalid(exc)) from None
    if row is None or row[0] is None:
        raise ValueError("the body is not a JSON array")
    return RawPage(text, int(row[0]), naive_utc(row[1]))


def _cursor() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        global _shared
        with _shared_lock:
            if _shared is None:
                _shared = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "32MB"})
            con = _shared.cursor()
        con.execute("SET TimeZone = 'UTC'")  # a time without an offset is UTC, as the store reads it
        _local.con = con
    return con


def _invalid(exc: BaseException) -> str:
    return f"the body is not valid JSON ({str(exc).splitlines()[0].split(' Input:')[0][:120]})"


def _split(text: str) -> RawPage:
    """A big page walked one object at a time, its objects' text grouped into parts of at most
    PART_BYTES characters (an object bigger than that is a part of its own)."""
    parts: list[str] = []
    group: list[str] = []
    size = count = 0  # size: the characters of "[" + ",".join(group) + "]"
    newest: datetime | None = None

    def close_group() -> None:
        part = "[" + ",".join(group) + "]"
        try:
            valid = _cursor().execute("SELECT json_valid($p)", {"p": part}).fetchone()[0]
        except duckdb.Error as exc:  # a part too dense for the check's memory: the store would fail too
            raise ValueError(_invalid(exc)) from None
        if not valid:  # what Python's parser takes and DuckDB's does not (lone surrogates)
            raise ValueError("the body is not valid JSON (DuckDB refuses a part of it)")
        parts.append(part)

    pos = len(text) - len(text.lstrip(_SPACE)) + 1  # past the "["
    try:
        while True:
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
            if count == 0 and text.startswith("]", pos):
                pos += 1
                break
            obj, end = _decoder.raw_decode(text, pos)
            piece = text[pos:end]
            if group and size + 1 + len(piece) > PART_BYTES:
                close_group()
                group = []
            size = (size + 1 if group else 2) + len(piece)
            group.append(piece)
            count += 1
            if isinstance(obj, dict):
                created = obj.get("dateCreated")
                created = parse_ts(created if created is not None else obj.get("date_created"))
                if created is not None and (newest is None or created > newest):
                    newest = created
            pos = end
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
            if text.startswith(",", pos):
                pos += 1
            elif text.startswith("]", pos):
                pos += 1
                break
            else:
                raise ValueError(f"expected ',' or ']' at character {pos}")
    except (ValueError, IndexError, RecursionError) as exc:
        raise ValueError(f"the body is not valid JSON ({str(exc)[:120]})") from None
    if text[pos:].strip(_SPACE):
        raise ValueError("the body is not valid JSON (text after the array)")
    if group:
        close_group()
    return RawPage("", count, newest, tuple(parts))


