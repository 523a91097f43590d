"""Project service hooks: created, listed and deleted through the API as Sentry does, and the
signed POSTs Sentry sends them when an event arrives (`Deliverer`).

Sentry (src/sentry/sentry_apps/tasks/service_hooks.py) POSTs `json.dumps(payload)` with the
headers X-ServiceHook-Timestamp (unix seconds, the real clock), X-ServiceHook-GUID (the hook's id)
and X-ServiceHook-Signature (hex HMAC-SHA256 of the body with the hook's secret). Payload v0 is
{"project": {"slug", "name"}, "group": <the issue, with url>, "event": <the event, with url>}.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from . import render
from .model import Issue, Project, iso
from .pagination import ApiError

log = logging.getLogger(__name__)

HOOK_EVENTS = ("event.alert", "event.created")  # what a service hook may subscribe to


def built_in(world, p: Project) -> dict | None:
    """The hook each generated project comes with, unless it was deleted through the API."""
    hook = render.service_hook(world, p)
    return None if hook["id"] in world.hooks_removed else hook


def project_hooks(world, p: Project) -> list[dict]:
    own = built_in(world, p)
    return ([own] if own else []) + list(world.hooks.get(p.idx, []))


def create(world, p: Project, body: object) -> dict:
    """Validate as Sentry's ServiceHookValidator does (url, events from the known list)."""
    errors: dict[str, list[str]] = {}
    body = body if isinstance(body, dict) else {}
    url, events = body.get("url"), body.get("events")
    if not isinstance(url, str) or not url:
        errors["url"] = ["This field is required."]
    elif urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        errors["url"] = ["Enter a valid URL."]
    if not isinstance(events, list) or not events:
        errors["events"] = ["This field is required."]
    else:
        bad = [e for e in events if e not in HOOK_EVENTS]
        if bad:
            errors["events"] = [f"Invalid event name: {bad[0]}"]
    if errors:
        raise ApiError(400, errors, bare=True)
    hook = {"id": uuid.uuid4().hex, "url": url, "dateCreated": iso(world.now_ms), "events": sorted(set(events)),
            "status": "active", "secret": uuid.uuid4().hex + uuid.uuid4().hex}
    world.hooks.setdefault(p.idx, []).append(hook)
    world.edits += 1
    return hook


def delete(world, p: Project, hook_id: str) -> None:
    own = built_in(world, p)
    if own and own["id"] == hook_id:
        world.hooks_removed.add(hook_id)
    else:
        mine = world.hooks.get(p.idx, [])
        if not any(h["id"] == hook_id for h in mine):
            raise ApiError(404, "The requested resource does not exist")
        world.hooks[p.idx] = [h for h in mine if h["id"] != hook_id]
    world.edits += 1


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(world, issue: Issue, seq: int, base_url: str) -> dict:
    """Payload v0 of one event, as Sentry's get_payload_v0 builds it."""
    group = render.issue(world, issue, base_url)
    group["url"] = f"{base_url}/organizations/{world.org_slug}/issues/{issue.id}/"
    event = render.event_detail(world, issue, seq, (None, None))
    event["url"] = f"{group['url']}events/{event['eventID']}/"
    return {"project": {"slug": issue.project.slug, "name": issue.project.name}, "group": group, "event": event}


class Deliverer:
    """POSTs signed event payloads to the hooks created through the API, from a thread of its own.
    The generated hooks point at hosts that do not exist and are never called. `log` keeps each
    attempt's (hook id, event id, HTTP status or 0) for tests."""

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout
        self.log: list[tuple[str, str, int]] = []
        self.delivered = threading.Condition()
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def enqueue(self, world, added: list[tuple[Issue, int]], base_url: str) -> int:
        """Queue every new event for each API-created hook of its project that wants event.created."""
        n = 0
        for issue, first in added:
            hooks = [h for h in world.hooks.get(issue.project.idx, []) if "event.created" in h["events"]]
            for seq in range(first, len(issue.times)) if hooks else ():
                body = json.dumps(payload(world, issue, seq, base_url)).encode()
                for hook in hooks:
                    self._queue.put((hook["url"], hook["id"], hook["secret"], body))
                    n += 1
        if n and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="emulator-hooks", daemon=True)
            self._thread.start()
        return n

    def _run(self) -> None:
        while True:
            url, guid, secret, body = self._queue.get()
            status = self._post(url, guid, secret, body)
            with self.delivered:
                self.log.append((guid, json.loads(body)["event"]["eventID"], status))
                self.delivered.notify_all()

    def _post(self, url: str, guid: str, secret: str, body: bytes) -> int:
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-ServiceHook-Timestamp": str(int(time.time())),
            "X-ServiceHook-GUID": guid, "X-ServiceHook-Signature": sign(secret, body)})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError) as exc:
            log.info("service hook %s: %s", url, exc)
            return 0
