"""`triage`: change issues in Sentry (resolve, ignore, assign, delete, merge...) through its bulk
routes, and store Sentry's answer at once, so readers see the change without a sync.

Built from Sentry's API (the OpenAPI "Bulk Mutate" and "Bulk Remove" operations, FACTS.md):
- `PUT organizations/{org}/issues/?id=1&id=2` with the attributes to change; `DELETE` the same path.
- An id Sentry does not know or the token may not touch makes it change nothing and answer 204:
  a 204 to a PUT is reported as a failure, never stored as a change.
- The answer is the changed attributes as they now stand (status, statusDetails, substatus,
  assignedTo, isBookmarked, merge{parent, children}): that, not what was asked, is stored.
- Sentry takes up to 1000 ids a request (BULK_MUTATION_LIMIT); we send at most 100, the most its
  query-selected mutations touch, so one failing request leaves fewer issues in doubt.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import duckdb

from .. import redact
from ..errors import ApiError, AuthError, ConfigError, NotFoundError
from ..fetching.client import SentryClient
from ..storage.store import Store, assignee_text

log = logging.getLogger(__name__)

BATCH = 100
WRITE_SCOPE = "event:write"  # Sentry's schema: bulk mutate needs event:write (or event:admin)
DELETE_SCOPE = "event:admin"  # bulk remove needs event:admin
# What Sentry answers as the status, as the issue lists show it (which is what a sync stores).
STATUS_NAMES = {"archived": "ignored", "muted": "ignored", "resolvedInNextRelease": "resolved"}
SPAN = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.I)
SPAN_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}


@dataclass
class Target:
    """An issue triage acts on, as the store holds it."""

    source: str
    id: str
    short_id: str | None
    title: str | None
    project_id: str | None
    status: str | None


@dataclass
class Action:
    """One kind of change: the request it becomes and how it is said to the user."""

    name: str
    what: str  # "resolve in the next release"
    method: str = "PUT"
    body: dict[str, Any] | None = None

    @property
    def scope(self) -> str:
        return DELETE_SCOPE if self.method == "DELETE" else WRITE_SCOPE


@dataclass
class RequestResult:
    """What one bulk request did."""

    ids: list[str]
    status_code: int
    applied: bool
    message: str
    answer: Any = None


@dataclass
class TriageResult:
    requests: list[RequestResult] = field(default_factory=list)
    sent: int = 0  # requests that asked for a change (a DELETE Sentry answered for only some ids reports twice)

    @property
    def failed(self) -> list[RequestResult]:
        return [r for r in self.requests if not r.applied]


# -- choosing issues ---------------------------------------------------------------------------

def select_issues(con: duckdb.DuckDBPyConnection, source: str, refs: Iterable[str]) -> list[Target]:
    """The stored issues named by id or short id (any case), in the order given, each once.

    The place a query selector (`--query`) plugs in: it yields ids, which come through here too.
    """
    wanted = list(dict.fromkeys(r.strip() for r in refs if r.strip()))
    if not con.execute("SELECT EXISTS (SELECT 1 FROM issues WHERE source = ?)", [source]).fetchone()[0]:
        known = [r[0] for r in con.execute("SELECT DISTINCT source FROM issues ORDER BY 1").fetchall()]
        raise ConfigError(f"the store holds no issues of source '{source}'",
                          hint=f"its sources: {', '.join(known) or 'none (sync first)'}; pass the --org (or --source) "
                               "that sync used")
    rows = con.execute(
        "SELECT source, id, short_id, title, project_id, status FROM issues "
        "WHERE source = ? AND deleted_at IS NULL AND (id IN (SELECT unnest(?::VARCHAR[])) "
        "OR upper(short_id) IN (SELECT upper(unnest(?::VARCHAR[]))))",
        [source, wanted, wanted]).fetchall()
    by_ref: dict[str, Target] = {}
    for row in rows:
        target = Target(*row)
        by_ref[target.id] = target
        if target.short_id:
            by_ref[target.short_id.upper()] = target
    missing = [r for r in wanted if r not in by_ref and r.upper() not in by_ref]
    if missing:
        raise ConfigError(f"not in the store: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}",
                          hint="give stored issue ids or short ids (sentry-mirror issues); sync first if they are new")
    chosen = [by_ref.get(r) or by_ref[r.upper()] for r in wanted]
    return list({t.id: t for t in chosen}.values())


# -- actions -----------------------------------------------------------------------------------

def minutes(text: str, option: str) -> int:
    """`30m`, `2h`, `7d`, `1w` (or bare minutes) as minutes, as Sentry's ignore durations are given."""
    if text.strip().isdigit():
        return int(text)
    match = SPAN.match(text)
    if not match:
        raise ConfigError(f"{option} {text!r} is not a span of time", hint="e.g. 30m, 2h, 7d or 1w")
    return int(match.group(1)) * SPAN_MINUTES[match.group(2).lower()]


def resolve_action(in_next_release: bool, in_release: str | None, in_commit: str | None,
                   repository: str | None) -> Action:
    chosen = sum(bool(x) for x in (in_next_release, in_release, in_commit))
    if chosen > 1:
        raise ConfigError("--in-next-release, --in-release and --in-commit exclude each other", hint="pass one")
    if in_next_release:
        return Action("resolve", "resolve in the next release",
                      body={"status": "resolved", "statusDetails": {"inNextRelease": True}})
    if in_release:
        return Action("resolve", f"resolve in release {in_release}",
                      body={"status": "resolved", "statusDetails": {"inRelease": in_release}})
    if in_commit:
        if not repository:
            raise ConfigError("--in-commit needs --repository", hint="the repository's name as Sentry knows it")
        return Action("resolve", f"resolve in commit {in_commit[:12]} of {repository}",
                      body={"status": "resolved",
                            "statusDetails": {"inCommit": {"commit": in_commit, "repository": repository}}})
    return Action("resolve", "resolve", body={"status": "resolved", "statusDetails": {}})


def ignore_action(for_: str | None, until_count: int | None, until_users: int | None, window: str | None,
                  forever: bool, until_escalating: bool) -> Action:
    """Sentry's ignore (newer Sentry: archive) conditions: one of them, or forever."""
    if sum(bool(x) for x in (for_, until_count, until_users, forever, until_escalating)) > 1:
        raise ConfigError("--for, --until-count, --until-users, --until-escalating and --forever exclude each other",
                          hint="pass one")
    if window and not (until_count or until_users):
        raise ConfigError("--window goes with --until-count or --until-users")
    details: dict[str, Any] = {}
    if for_:
        details["ignoreDuration"] = minutes(for_, "--for")
        what = f"ignore for {for_}"
    elif until_count:
        details["ignoreCount"] = until_count
        if window:
            details["ignoreWindow"] = minutes(window, "--window")
        what = f"ignore until {until_count} more events{f' in {window}' if window else ''}"
    elif until_users:
        details["ignoreUserCount"] = until_users
        if window:
            details["ignoreUserWindow"] = minutes(window, "--window")
        what = f"ignore until {until_users} more users{f' in {window}' if window else ''}"
    elif until_escalating:
        return Action("ignore", "ignore until escalating",
                      body={"status": "ignored", "statusDetails": {}, "substatus": "archived_until_escalating"})
    else:
        return Action("ignore", "ignore forever",
                      body={"status": "ignored", "statusDetails": {}, "substatus": "archived_forever"})
    return Action("ignore", what, body={"status": "ignored", "statusDetails": details,
                                        "substatus": "archived_until_condition_met"})


def assign_action(con: duckdb.DuckDBPyConnection, source: str, who: str) -> Action:
    """`team:SLUG` from the stored teams, else a member by email or username (stored members)."""
    if who.startswith(("team:", "#")):
        slug = who.split(":", 1)[1] if who.startswith("team:") else who[1:]
        row = con.execute("SELECT id, slug FROM teams WHERE source = ? AND (slug = ? OR id = ?)",
                          [source, slug, slug]).fetchone()
        if row is None:
            raise ConfigError(f"no team {slug!r} in the store", hint="see: sentry-mirror query \"SELECT slug FROM teams\"")
        return Action("assign", f"assign to team {row[1]}", body={"assignedTo": f"team:{row[0]}"})
    rows = con.execute(
        "SELECT DISTINCT user_id, email FROM members WHERE source = ? AND user_id IS NOT NULL AND NOT coalesce(pending, false) "
        "AND (lower(email) = lower(?) OR lower(raw->'user'->>'username') = lower(?) OR lower(name) = lower(?) "
        "OR lower(split_part(email, '@', 1)) = lower(?))", [source, who, who, who, who]).fetchall()
    exact = [r for r in rows if (r[1] or "").lower() == who.lower()]
    rows = exact or rows
    if not rows:
        raise ConfigError(f"no member {who!r} in the store", hint="give a member's email or username, or team:SLUG")
    if len(rows) > 1:
        raise ConfigError(f"{who!r} names {len(rows)} members", hint="give the member's email")
    return Action("assign", f"assign to {rows[0][1] or who}", body={"assignedTo": f"user:{rows[0][0]}"})


def simple_action(name: str) -> Action:
    return {
        "unresolve": Action("unresolve", "unresolve",
                            body={"status": "unresolved", "statusDetails": {}, "substatus": "ongoing"}),
        "unassign": Action("unassign", "unassign", body={"assignedTo": ""}),
        "bookmark": Action("bookmark", "bookmark", body={"isBookmarked": True}),
        "unbookmark": Action("unbookmark", "remove the bookmark of", body={"isBookmarked": False}),
        "merge": Action("merge", "merge", body={"merge": 1}),
        "delete": Action("delete", "delete", method="DELETE"),
    }[name]


def check_merge(targets: list[Target]) -> None:
    """Sentry merges issues of one project, all in one request."""
    if len(targets) < 2:
        raise ConfigError("merge needs two or more issues")
    if len({t.project_id for t in targets}) > 1:
        raise ConfigError("merge takes issues of one project only", hint="Sentry does not merge across projects")
    if len(targets) > BATCH:
        raise ConfigError(f"merge takes at most {BATCH} issues at once")


# -- running -----------------------------------------------------------------------------------

def batches(targets: list[Target], size: int = BATCH) -> list[list[Target]]:
    return [targets[i:i + size] for i in range(0, len(targets), size)]


def run_triage(store: Store, client: SentryClient, org: str, source: str, action: Action, targets: list[Target],
               report: Callable[[RequestResult], None] = lambda r: None) -> TriageResult:
    """Send the change in requests of at most BATCH ids, each answer stored (and logged) in one
    transaction before the next request. A token refused (401/403) or an organization not found
    stops the run: the next request would be refused the same way."""
    result = TriageResult()
    path = f"organizations/{org}/issues/"
    for batch in batches(targets):
        ids = [t.id for t in batch]
        params = [("id", i) for i in ids]
        result.sent += 1
        try:
            answer, response = client.request(action.method, path, params, action.body, scope=action.scope)
            done = [_answered(action, ids, answer, response.status_code)]
            if action.method == "DELETE":
                done = _deleted_or_kept(client, org, done[0])
        except (AuthError, NotFoundError) as exc:
            _log(store, source, action, ids, path, exc.status, {"error": redact.scrub(str(exc))}, False)
            raise
        except ApiError as exc:
            done = [RequestResult(ids, exc.status, False, redact.scrub(str(exc)), {"error": redact.scrub(str(exc))})]
            if action.method == "DELETE" and (exc.status >= 500 or exc.status == 0) and _all_gone(client, org, ids):
                done = [RequestResult(ids, exc.status, True, "deleted (the answer failed, but Sentry no longer "
                                                             "has these issues)", done[0].answer)]
        with store.transaction():
            for part in done:
                if part.applied:
                    _store(store, source, action, part)
            _log(store, source, action, ids, path, done[0].status_code, done[0].answer,
                 any(part.applied for part in done))
        for part in done:
            result.requests.append(part)
            report(part)
    return result


def _deleted_or_kept(client: SentryClient, org: str, done: RequestResult) -> list[RequestResult]:
    """Sentry answers a bulk delete 204 also for issues it leaves alone (ones the token may not
    delete): the issues it still lists after the answer were not deleted, and are not stored so."""
    kept = _still_listed(client, org, done.ids)
    if not kept:  # all gone, or a server that cannot say (it ignores group=): its answer stands
        return [done]
    gone = [i for i in done.ids if i not in kept]
    parts = [RequestResult(gone, done.status_code, True, "deleted", done.answer)] if gone else []
    parts.append(RequestResult([i for i in done.ids if i in kept], done.status_code, False,
                               "Sentry answered the delete but still has these issues (the token may not delete "
                               "them)", done.answer))
    return parts


def _still_listed(client: SentryClient, org: str, ids: list[str]) -> set[str] | None:
    """The ids Sentry's issue list still holds, asked in one request (`group=`, as the sync's
    refresh of known issues asks); None when the answer cannot tell."""
    params = [("group", i) for i in ids] + [("statsPeriod", "90d"), ("query", ""), ("limit", len(ids))]
    try:
        answer, _ = client.get(f"organizations/{org}/issues/", params)
    except ApiError:
        return None
    if not isinstance(answer, list):
        return None
    listed = {str(i.get("id")) for i in answer if isinstance(i, dict)}
    return None if listed - set(ids) else listed  # issues not asked for: the server ignores group=


def _answered(action: Action, ids: list[str], answer: Any, status: int) -> RequestResult:
    if action.method == "DELETE":
        return RequestResult(ids, status, True, "deleted", answer)
    if answer is None or not isinstance(answer, dict):
        return RequestResult(ids, status, False, f"Sentry answered {status} and changed none of these issues (one of "
                                                 "them it does not know, or the token may not change)", answer)
    if action.name == "merge" and not isinstance(answer.get("merge"), dict):
        return RequestResult(ids, status, False, "Sentry merged nothing", answer)
    return RequestResult(ids, status, True, _said(action, answer), answer)


def _said(action: Action, answer: dict) -> str:
    if action.name == "merge":
        merge = answer["merge"]
        return f"merged {len(merge.get('children') or [])} into {merge.get('parent')}"
    if action.body and "status" in action.body:
        sub = answer.get("substatus")
        return f"now {answer.get('status')}{f' ({sub})' if sub else ''}"
    if "assignedTo" in (action.body or {}):
        who = answer.get("assignedTo")
        return f"assigned to {assignee_text(who) or 'nobody'}"
    return "done"


def _substatus(status: str, body: dict, answer: dict) -> str | None:
    """Sentry's answer, else what Sentry sets for the change asked (servers before substatus send none)."""
    if "substatus" in answer:
        return answer["substatus"]
    if status == "resolved":
        return None
    if status == "unresolved":
        return "ongoing"
    details = body.get("statusDetails") or {}
    return body.get("substatus") or ("archived_until_condition_met" if details else "archived_forever")


def _store(store: Store, source: str, action: Action, done: RequestResult) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    if action.method == "DELETE":
        store.run_statements("updates", "triage_deleted", source=source, ids=done.ids, observed_at=now)
        return
    answer, body = done.answer, action.body or {}
    if action.name == "merge":
        children = [str(c) for c in answer["merge"].get("children") or []]
        store.run_statements("updates", "triage_deleted", source=source, ids=children, observed_at=now)
        return
    patch: dict[str, Any] = {k: answer[k] for k in body if k in answer and k not in ("merge", "substatus")}
    set_status = "status" in body and "status" in answer
    status = substatus = release = None
    if set_status:
        status = STATUS_NAMES.get(answer["status"], answer["status"])
        substatus = _substatus(status, body, answer)
        details = answer.get("statusDetails") or {}
        release = details.get("inRelease") if isinstance(details, dict) else None
        patch.update(status=status, substatus=substatus, statusDetails=details)
    set_assignee = "assignedTo" in body
    if set_assignee:
        patch["assignedTo"] = answer.get("assignedTo")
    clear = {"statusDetails": None} if set_status else {}
    store.run_statements("updates", "triage_issues", source=source, ids=done.ids, observed_at=now,
                         set_status=set_status, status=status, substatus=substatus, release=release,
                         set_assignee=set_assignee, assigned_to=assignee_text(answer.get("assignedTo")),
                         clear=json.dumps(clear), patch=json.dumps(patch))


def _log(store: Store, source: str, action: Action, ids: list[str], path: str, status: int, answer: Any,
         applied: bool) -> None:
    query = "&".join(f"id={i}" for i in ids)
    store.run_statements("updates", "triage_log", sent_at=datetime.now(timezone.utc).replace(tzinfo=None), source=source,
                         action=action.name, ids=ids, method=action.method, path=f"{path}?{query}",
                         body=None if action.body is None else json.dumps(action.body), status_code=status,
                         answer=None if answer is None else json.dumps(answer), applied=applied)


def _all_gone(client: SentryClient, org: str, ids: list[str]) -> bool:
    """After a DELETE whose answer failed: did it happen anyway? None still listed says so; else,
    on a server that ignores group=, each issue answering 404."""
    listed = _still_listed(client, org, ids)
    if listed is not None:
        return not listed
    for issue_id in ids:
        try:
            client.get(f"organizations/{org}/issues/{issue_id}/")
            return False
        except NotFoundError:
            continue
        except ApiError:
            return False
    return True
