"""Find and read the project's `.sql` files (migrations, upserts, updates, views, queries, reports),
and split them into statements with their own parameters.

They live in the repository's `sql/` folder so they can be read and run from the DuckDB CLI or a
notebook; a built wheel carries them as `sentry_mirror/sql/`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent.parent  # sentry_mirror/


@functools.cache
def sql_dir() -> Path:
    for candidate in (_PACKAGE / "sql", _PACKAGE.parent / "sql"):  # a wheel carries it in the package
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


@functools.cache
def statements(sql: str) -> tuple[str, ...]:
    """Split a .sql file into statements (our files keep `;` only at statement ends)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(part.strip() for part in body.split(";") if part.strip())


def params_for(statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters a statement does not use: pass each only its own."""
    names = set(re.findall(r"\$([A-Za-z_]\w*)", statement))
    return {k: v for k, v in params.items() if k in names}
