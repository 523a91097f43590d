"""A reader's answer as columns and a stream of row batches, straight from DuckDB.

The CLI prints answers from here rather than from a pandas DataFrame: DuckDB streams a result
(`fetchmany` keeps memory flat over millions of rows), its Python values keep their exact types
(a HUGEINT sum stays an int, a DATE a date), and nothing has to import pandas to answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import duckdb

BATCH = 10_000  # rows per fetch: large enough to amortise the call, small enough to stay flat

NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


@dataclass
class Rows:
    columns: list[str]
    types: list[str]  # DuckDB's type names, e.g. BIGINT, VARCHAR, TIMESTAMP, DECIMAL(18,3)
    batches: Iterator[list[tuple]]
    _peeked: list[tuple] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, result: duckdb.DuckDBPyConnection, batch: int = BATCH) -> "Rows":
        """The rows of an executed statement, fetched lazily."""
        columns = [d[0] for d in result.description]
        types = [str(d[1]) for d in result.description]

        def fetch() -> Iterator[list[tuple]]:
            while True:
                chunk = result.fetchmany(batch)
                if not chunk:
                    return
                yield chunk

        return cls(columns, types, fetch())

    def numeric(self, index: int) -> bool:
        return self.types[index].split("(")[0] in NUMERIC

    def first(self) -> list[tuple]:
        """The first batch (empty when there are no rows), without consuming it."""
        if self._peeked is None:
            self._peeked = next(self.batches, [])
        return self._peeked

    def __iter__(self) -> Iterator[tuple]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[tuple]]:
        if self._peeked is not None:
            peeked, self._peeked = self._peeked, []
            if peeked:
                yield peeked
        yield from self.batches

    def limited(self, n: int) -> "Rows":
        """The first `n` rows only; the rest are never fetched."""
        def head() -> Iterator[list[tuple]]:
            left = n
            for chunk in self.chunks():
                if left <= 0:
                    return
                yield chunk[:left]
                left -= len(chunk)

        return Rows(self.columns, self.types, head())

    def held(self) -> "Rows":
        """Every row fetched now and kept, to be read twice (a plot, then the printed rows)."""
        return Rows(self.columns, self.types, iter([list(self)]))

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self]

    def frame(self):
        """Every row as a pandas DataFrame (for a plot); only here is pandas imported."""
        import pandas as pd

        return pd.DataFrame.from_records(list(self), columns=self.columns)
