"""What `sentry-mirror issue` reads: an issue and one of its events, offline, as Sentry's issue page
shows them first. The figures come from the tables (sql/queries/issue_page_*.sql); what only the
event's JSON keeps (context lines, breadcrumbs, the request) from its stored `raw`.

The page is plain data (`IssuePage`): `--json` prints it as it is, `issue_text.render` draws it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..errors import ConfigError
from ..storage.sqlfiles import load_sql, params_for, statements

TOP_VALUES = 3  # values shown per tag key, as the issue page's tag bars


@dataclass
class IssuePage:
    issue: dict[str, Any]
    tags: list[dict[str, Any]]
    event: dict[str, Any] | None  # None when the store holds no event of the issue
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"issue": self.issue, "tags": self.tags, "event": self.event, "notes": self.notes}


def _select(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of `sql/queries/<name>.sql` as dicts, every value a bound parameter."""
    sql = statements(load_sql("queries", name))[0]
    result = con.execute(sql, params_for(sql, params))
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()]


def _json(value: Any) -> Any:
    """A JSON column as Python (DuckDB hands JSON back as text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def find_issue(con: duckdb.DuckDBPyConnection, ref: str, source: str | None = None) -> tuple[str, str]:
    """(source, id) of the one stored issue that `ref` (an id or a short id) names; an unknown
    ref, or one that two sources hold, is a ConfigError saying what to do."""
    found = _select(con, "issue_page_lookup", ref=ref.strip(), source=source)
    if not found:
        where = f" of source '{source}'" if source else ""
        raise ConfigError(f"no issue {ref}{where} in the store", hint="list them: sentry-mirror issues")
    sources = sorted({r["source"] for r in found})
    if len(sources) > 1:
        raise ConfigError(f"issue {ref} is in {len(sources)} sources ({', '.join(sources)})",
                          hint="choose one with --source")
    if len(found) > 1:  # an id that is another issue's short id: not seen in Sentry, said if it happens
        raise ConfigError(f"{ref} names {len(found)} issues: " + ", ".join(f"{r['id']} ({r['short_id']})" for r in found),
                          hint="give the numeric id")
    return found[0]["source"], found[0]["id"]


def read_page(con: duckdb.DuckDBPyConnection, ref: str, *, source: str | None = None,
              event_id: str | None = None, oldest: bool = False) -> IssuePage:
    """The page of the issue `ref`: its head, tags, and the latest event (or `event_id`, or the
    oldest)."""
    try:
        src, issue_id = find_issue(con, ref, source)
        issue = _issue(con, src, issue_id)
        tags = _tags(con, src, issue_id)
        event = _event(con, src, issue_id, event_id, oldest)
    except duckdb.CatalogException:
        raise ConfigError("this store has no issues yet", hint="run 'sentry-mirror sync' first") from None
    notes = []
    if (issue["stored_events"] or 0) < (issue["times_seen"] or 0):
        breakdown = _tags(con, src, issue_id, "issue_page_tag_breakdown")
        if breakdown:
            tags = breakdown
            notes.append(f"tags are Sentry's counts over all {issue['times_seen']:,} events; the store holds "
                         f"{issue['stored_events']:,} of them (sampled)")
    if event is None and event_id:
        raise ConfigError(f"no event {event_id} of issue {issue['short_id'] or issue_id} in the store",
                          hint=f"its latest: sentry-mirror issue {issue['short_id'] or issue_id}")
    if event is None:
        notes.append("the store holds no event of this issue (sampled, past retention, or not synced yet)")
    return IssuePage(issue, tags, event, notes)


def _issue(con, source: str, issue_id: str) -> dict[str, Any]:
    row = _select(con, "issue_page_issue", source=source, issue_id=issue_id)[0]
    row["status_details"] = _json(row["status_details"]) or {}
    row["assignee"] = _json(row["assignee"])
    row["shown_status"] = "deleted" if row["deleted_at"] is not None else row["status"]
    row["status_text"] = status_text(row["status"], row["substatus"], row["status_details"])
    return row


def status_text(status: str | None, substatus: str | None, details: dict) -> str:
    """Sentry's status with what its statusDetails say: ignored until when or how many more
    events or users, resolved in which release or commit."""
    details = details or {}
    if status == "resolved":
        if details.get("inNextRelease"):
            return "resolved in the next release"
        if details.get("inRelease"):
            return f"resolved in release {details['inRelease']}"
        commit = details.get("inCommit")
        if commit:
            if isinstance(commit, dict):
                repo = f" ({commit['repository']})" if commit.get("repository") else ""
                return f"resolved in commit {str(commit.get('commit') or commit.get('id') or '?')[:12]}{repo}"
            return f"resolved in commit {str(commit)[:12]}"
        return "resolved"
    if status == "ignored":
        conditions = []
        if details.get("ignoreUntil"):
            conditions.append(f"until {details['ignoreUntil']}")
        if details.get("ignoreCount"):
            conditions.append(f"until {details['ignoreCount']} more events{_window(details.get('ignoreWindow'))}")
        if details.get("ignoreUserCount"):
            conditions.append(f"until {details['ignoreUserCount']} more users{_window(details.get('ignoreUserWindow'))}")
        if conditions:
            return "ignored " + " or ".join(conditions)
        return {"archived_until_escalating": "ignored until it escalates",
                "archived_forever": "ignored forever"}.get(substatus or "", "ignored")
    if status and substatus:
        return f"{status} ({substatus})"
    return status or "?"


def _window(minutes: Any) -> str:
    """Sentry's ignore windows are in minutes."""
    if not minutes:
        return ""
    minutes = int(minutes)
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes % size == 0:
            n = minutes // size
            return f" in {n} {unit}{'s' if n != 1 else ''}"
    return f" in {minutes} minutes"


def _tags(con, source: str, issue_id: str, query: str = "issue_page_tags") -> list[dict[str, Any]]:
    """Per key: its top values with their share of the events that carry the key; from the stored
    events, or (`issue_page_tag_breakdown`) from Sentry's breakdown when the store lacks events."""
    keys: dict[str, dict[str, Any]] = {}
    try:
        rows = _select(con, query, source=source, issue_id=issue_id, top=TOP_VALUES)
    except duckdb.CatalogException:  # a store from before issue_tag_values
        return []
    for row in rows:
        key = keys.setdefault(row["key"], {"key": row["key"], "events": row["key_events"],
                                           "distinct_values": row["key_values"], "top": []})
        key["top"].append({"value": row["value"], "events": row["events"],
                           "share": round(row["events"] / row["key_events"], 4) if row["key_events"] else None})
    return list(keys.values())


def _event(con, source: str, issue_id: str, event_id: str | None, oldest: bool) -> dict[str, Any] | None:
    found = _select(con, "issue_page_event", source=source, issue_id=issue_id, event_id=event_id, oldest=oldest)
    if not found:
        return None
    event = found[0]
    raw = _json(event.pop("raw")) or {}
    entries = {e.get("type"): e.get("data") for e in raw.get("entries") or [] if isinstance(e, dict)}
    event["exceptions"] = _exceptions(con, source, event["event_id"], entries.get("exception") or {})
    event["breadcrumbs"] = ((entries.get("breadcrumbs") or {}).get("values")) or []
    event["request"] = _request(entries.get("request"))
    event["user"] = _user(event, raw.get("user"))
    event["contexts"] = {r["name"]: _json(r["data"]) for r in
                         _select(con, "issue_page_contexts", source=source, event_id=event["event_id"])}
    event["sdk"] = {"name": event.pop("sdk_name"), "version": event.pop("sdk_version")}
    return event


def _exceptions(con, source: str, event_id: str, entry: dict) -> list[dict[str, Any]]:
    """The chain from event_exceptions, each with its frames from event_frames and the frames'
    context lines from the raw entry (the tables do not keep source code)."""
    raw_values = entry.get("values") or []
    chain = _select(con, "issue_page_exceptions", source=source, event_id=event_id)
    for exc in chain:
        exc["frames"] = []
    by_idx = {exc["idx"]: exc for exc in chain}
    for frame in _select(con, "issue_page_frames", source=source, event_id=event_id):
        exc = by_idx.get(frame["exception_idx"])
        if exc is None:
            continue
        frame["context"] = _context(raw_values, frame["exception_idx"], frame["idx"])
        exc["frames"].append({k: v for k, v in frame.items() if k != "exception_idx"})
    return chain


def _context(raw_values: list, exc_idx: int, frame_idx: int) -> list[list]:
    """[[line number, text], …] around a frame's line, as Sentry stores it; [] when not stored."""
    try:
        frame = raw_values[exc_idx]["stacktrace"]["frames"][frame_idx]
    except (IndexError, KeyError, TypeError):
        return []
    return [list(pair) for pair in frame.get("context") or [] if isinstance(pair, (list, tuple)) and len(pair) == 2]


def _request(data: dict | None) -> dict[str, Any] | None:
    """The request entry's URL, method and query (headers and cookies are left out: they may
    carry a user's credentials)."""
    if not data:
        return None
    return {"method": data.get("method"), "url": data.get("url"), "query": data.get("query") or None}


def _user(event: dict, raw_user: dict | None) -> dict[str, Any] | None:
    user = {"id": event.pop("user_id"), "email": event.pop("user_email"), "username": event.pop("user_username"),
            "ip_address": event.pop("user_ip")}
    if isinstance(raw_user, dict) and raw_user.get("name"):
        user["name"] = raw_user["name"]
    return user if any(user.values()) else None
