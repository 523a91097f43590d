"""An `IssuePage` as the lines `sentry-mirror issue` prints, or as one JSON object.

In-app frames are marked with `>` (and bold on a terminal) and show their context lines; library
frames are one dimmed line each. The ANSI codes are dropped by click when the output is not a
terminal, so a pipe or a file gets plain text with the same `>` marks.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from .issue_page import IssuePage

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
MAX_BREADCRUMBS = 10  # the latest ones, as the issue page shows before "show more"


def to_json(page: IssuePage) -> str:
    """The page as one JSON object (times in ISO 8601, UTC)."""
    return json.dumps(page.as_dict(), indent=2, ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if hasattr(moment, "strftime") else (str(moment) if moment else "-")


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def render(page: IssuePage) -> str:
    """The whole page, as text."""
    lines = _head(page.issue) + [""] + _tags(page)
    if page.event is not None:
        lines += [""] + _event(page.event, page.issue)
    for note in page.notes:
        lines += ["", f"({note})"]
    return "\n".join(lines)


def _head(issue: dict) -> list[str]:
    lines = [f"{BOLD}{issue['short_id'] or issue['id']}  {issue['title'] or ''}{RESET}"]
    if issue.get("culprit"):
        lines.append(f"  {issue['culprit']}")
    facts = [f"project {issue['project'] or '?'}", f"level {issue['level'] or '?'}", f"status {issue['status_text']}"]
    if issue.get("priority"):
        facts.append(f"priority {issue['priority']}")
    if issue.get("is_unhandled"):
        facts.append("unhandled")
    lines.append("  " + " · ".join(facts))
    if issue["deleted_at"] is not None:
        lines.append(f"  DELETED in Sentry (the mirror noticed it {_when(issue['deleted_at'])}); "
                     "its stored events are kept")
    lines.append(f"  events {_n(issue['times_seen'])} in Sentry, {_n(issue['stored_events'])} stored · "
                 f"users {_n(issue['user_count'])} in Sentry, {_n(issue['stored_users'])} stored")
    lines.append(f"  first seen {_when(issue['first_seen'])}" + _in(issue.get("first_release")))
    lines.append(f"  last seen  {_when(issue['last_seen'])}" + _in(issue.get("last_release")))
    lines.append(f"  assignee {_assignee(issue)}")
    if issue.get("permalink"):
        lines.append(f"  {issue['permalink']}")
    return lines


def _in(release: str | None) -> str:
    return f" in release {release}" if release else ""


def _assignee(issue: dict) -> str:
    who = issue.get("assignee")
    if isinstance(who, dict):
        if who.get("type") == "team":
            return f"team #{who.get('name') or who.get('id')}"
        name, email = who.get("name"), who.get("email")
        return f"{name} <{email}>" if name and email else str(name or email or who.get("id"))
    return issue.get("assigned_to") or "nobody"


def _tags(page: IssuePage) -> list[str]:
    if not page.tags:
        return ["Tags: none stored"]
    lines = [f"Tags (of {_n(page.issue['stored_events'])} stored events)"]
    width = max(len(t["key"]) for t in page.tags)
    for tag in page.tags:
        shown = " · ".join(f"{v['value']} {100 * (v['share'] or 0):.0f}%" for v in tag["top"])
        more = tag["distinct_values"] - len(tag["top"])
        lines.append(f"  {tag['key']:<{width}}  {shown}" + (f" · {more} more" if more > 0 else ""))
    return lines


def _event(event: dict, issue: dict) -> list[str]:
    which = "Latest event" if not event["newer"] else ("Oldest event" if not event["older"] else "Event")
    total = event["older"] + event["newer"] + 1
    lines = [f"{BOLD}{which} {event['event_id']}{RESET}  {_when(event['date_created'])}  "
             f"({event['older'] + 1} of {total:,} stored)"]
    facts = [f"release {event['release'] or '-'}", f"environment {event['environment'] or '-'}",
             f"level {event['level'] or '-'}"]
    sdk = event.get("sdk") or {}
    if sdk.get("name"):
        facts.append(f"sdk {sdk['name']} {sdk.get('version') or ''}".rstrip())
    lines.append("  " + " · ".join(facts))
    user = event.get("user")
    if user:
        lines.append("  user " + " ".join(f"{k} {v}" for k, v in user.items() if v))
    lines += _exceptions(event["exceptions"])
    lines += _breadcrumbs(event["breadcrumbs"])
    request = event.get("request")
    if request and (request.get("url") or request.get("method")):
        lines += ["", "Request", f"  {request.get('method') or ''} {request.get('url') or ''}".rstrip()]
    if event["contexts"]:
        lines += ["", "Contexts"]
        for name, data in event["contexts"].items():
            fields = data.items() if isinstance(data, dict) else [("", data)]
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in fields if k != "type" and v is not None))
    return lines


def _exceptions(chain: list[dict]) -> list[str]:
    if not chain:
        return []
    lines = ["", "Exception" + (f" chain of {len(chain)}, the cause first" if len(chain) > 1 else "")
             + " (most recent call last; > marks in-app frames)"]
    for exc in chain:
        how = [exc["mechanism_type"]] if exc.get("mechanism_type") else []
        if exc.get("handled") is not None:
            how.append("handled" if exc["handled"] else "unhandled")
        lines.append(f"  {BOLD}{exc['type'] or '?'}: {exc['value'] or ''}{RESET}" + (f"  ({', '.join(how)})" if how else ""))
        lines += _frames(exc["frames"])
    return lines


def _frames(frames: list[dict]) -> list[str]:
    """In-app frames marked and with their source; library frames one dimmed line. With no in-app
    frame, the innermost one shows its source (Sentry expands it too)."""
    expand = {i for i, f in enumerate(frames) if f.get("in_app")} or ({len(frames) - 1} if frames else set())
    lines = []
    for i, f in enumerate(frames):
        where = f"{f.get('filename') or f.get('abs_path') or f.get('module') or '?'} in {f.get('function') or '?'}"
        if f.get("line_no") is not None:
            where += f" at line {f['line_no']}" + (f":{f['col_no']}" if f.get("col_no") is not None else "")
        if f.get("in_app"):
            lines.append(f"  > {BOLD}{where}{RESET}")
        else:
            lines.append(f"    {DIM}{where}{RESET}")
        if i in expand:
            for number, text in f.get("context") or []:
                mark = ">" if number == f.get("line_no") else " "
                lines.append(f"      {mark}{number:>5} | {text}")
    return lines


def _breadcrumbs(crumbs: list[dict]) -> list[str]:
    if not crumbs:
        return []
    shown = crumbs[-MAX_BREADCRUMBS:]
    head = "Breadcrumbs" + (f" (the last {len(shown)} of {len(crumbs)})" if len(shown) < len(crumbs) else "")
    lines = ["", head]
    for c in shown:
        text = c.get("message") or (json.dumps(c["data"], ensure_ascii=False) if c.get("data") else "")
        lines.append(f"  {str(c.get('timestamp') or '-'):<24} {c.get('category') or c.get('type') or '-':<10} "
                     f"{c.get('level') or '-':<7} {text}".rstrip())
    return lines
