"""Sentry's issue search language over the store: `parser` makes the AST, `compile` the SQL.

`search_issue_ids` answers a query with issue ids, as Sentry's issue list would; `issue_filter`
gives the same condition for readers that select more than ids (reading/browse.py)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from ...errors import ConfigError, SearchError  # noqa: F401 (SearchError: the package's error, re-exported)

__all__ = ["SearchError", "issue_filter", "search_issue_ids", "sort_order"]

# Sentry's sort names (and the mirror's older ones) as ORDER BY text over `issues i`.
SORTS = {"date": "i.last_seen DESC", "new": "i.first_seen DESC", "freq": "i.times_seen DESC",
         "user": "i.user_count DESC",
         "priority": "CASE i.priority WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END DESC, "
                     "i.last_seen DESC"}
SORT_ALIASES = {"events": "freq", "users": "user", "last-seen": "date", "first-seen": "new"}


def store_tag_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tag keys the store's events carry: each is a valid `key:value`."""
    try:
        return {r[0] for r in con.execute("SELECT DISTINCT key FROM event_tags").fetchall()}
    except duckdb.CatalogException:
        return set()


def sort_order(sort: str) -> str:
    """ORDER BY text over `issues i` for Sentry's sort names (and the mirror's older ones)."""
    name = SORT_ALIASES.get(sort, sort)
    if name not in SORTS:
        raise ConfigError(f"unknown sort {sort!r}", hint="use date, new, freq, user or priority")
    return SORTS[name]


def issue_filter(con, query: str | None, *, now: datetime, source=None, project=None, environment=None,
                 me: str | None = None, live: bool = True) -> tuple[str, list]:
    """One condition over `issues i` and its parameters: the query and scope; `live` leaves out
    the issues Sentry deleted (as its search does)."""
    from .compile import compile_where  # here: `issues` without --query needs no parser (start-up time)
    from .parser import parse

    node = parse(query or "", store_tag_keys(con))
    where, params = compile_where(node, now=now, me=me)
    parts, args = (["i.deleted_at IS NULL"] if live else []) + [where], list(params)
    if source is not None:
        parts.append("i.source = ?")
        args.append(source)
    if project is not None:
        parts.append("i.project_id IN (SELECT p.id FROM projects p WHERE p.source = i.source AND p.slug = ?)")
        args.append(project)
    if environment is not None:
        parts.append("EXISTS (SELECT 1 FROM events e WHERE e.source = i.source AND e.issue_id = i.id "
                     "AND e.environment = ?)")
        args.append(environment)
    return " AND ".join(parts), args


def search_issue_ids(con, query: str, *, now: datetime, source=None, project=None, environment=None,
                     sort: str = "date", limit: int | None = None, me: str | None = None) -> list[str]:
    """Ids (as text) of the live issues the query finds, in Sentry's `sort` order."""
    where, params = issue_filter(con, query, now=now, source=source, project=project,
                                 environment=environment, me=me)
    sql = f"SELECT i.id FROM issues i WHERE {where} ORDER BY {sort_order(sort)} NULLS LAST, i.id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params = params + [limit]
    return [r[0] for r in con.execute(sql, params).fetchall()]
