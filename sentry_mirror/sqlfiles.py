"""Find and read the project's `.sql` files (migrations, upserts, views).

They live in the repository's `sql/` folder so they can be read and run from the DuckDB CLI or a
notebook; a built wheel carries them as `sentry_mirror/sql/`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@functools.cache
def sql_dir() -> Path:
    for candidate in (_HERE / "sql", _HERE.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError("sentry-mirror's sql/ folder is missing from this installation")


@functools.cache
def load_sql(kind: str, name: str) -> str:
    return (sql_dir() / kind / f"{name}.sql").read_text(encoding="utf-8")


def migrations() -> list[tuple[str, str]]:
    """Numbered migrations in order: [(name, sql)], name being the file stem, e.g. '001_initial'."""
    files = sorted(p for p in (sql_dir() / "migrations").glob("*.sql") if re.match(r"\d+_", p.name))
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


def view_files() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted((sql_dir() / "views").glob("*.sql"))]
