"""Pages kept as the JSON text the server sent, checked without decoding them in Python.

Full event payloads are the bulk of a sync (about 5 KB each); decoding them with `json` and
encoding them again for the store cost more than everything else the mirror does. The text goes
to DuckDB whole (`Store.upsert_pages`); here DuckDB's own parser checks, on the thread that
fetched it, that the text is a JSON array, and reads the two things the syncer needs from it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import duckdb

_local = threading.local()
_shared: duckdb.DuckDBPyConnection | None = None  # one small in-memory database; a cursor per thread
_shared_lock = threading.Lock()

# One parse: the array's objects reduced to their creation time (Sentry camelCase or GlitchTip
# snake_case). Text that is not JSON raises; JSON that is not an array gives NULL.
_INSPECT = """
SELECT len(l), list_max(list_transform(l, lambda x: TRY_CAST(coalesce(x.dateCreated, x.date_created) AS TIMESTAMPTZ)))
FROM (SELECT json_transform($text, '[{"dateCreated": "VARCHAR", "date_created": "VARCHAR"}]') AS l)
"""


@dataclass
class RawPage:
    text: str
    count: int  # objects in the array
    newest: datetime | None  # the latest dateCreated among them (naive UTC), if any


def inspect(body: bytes) -> RawPage:
    """A response body as a RawPage; ValueError when it is not a JSON array."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    head = text.lstrip()[:1]
    if head != "[":
        raise ValueError("the body is not a JSON array")
    con = getattr(_local, "con", None)
    if con is None:
        global _shared
        with _shared_lock:
            if _shared is None:
                _shared = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "32MB"})
            con = _local.con = _shared.cursor()
    try:
        row = con.execute(_INSPECT, {"text": text}).fetchone()
    except duckdb.Error as exc:
        raise ValueError(f"the body is not valid JSON ({str(exc).splitlines()[0].split(' Input:')[0][:120]})") from None
    if row is None or row[0] is None:
        raise ValueError("the body is not a JSON array")
    newest = row[1]
    if newest is not None and newest.tzinfo is not None:
        from datetime import timezone

        newest = newest.astimezone(timezone.utc).replace(tzinfo=None)
    return RawPage(text, int(row[0]), newest)
