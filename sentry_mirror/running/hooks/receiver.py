"""The HTTP receiver: checks each delivery and keeps it in the spool before answering 2xx.

Two kinds of deliveries (FACTS.md §6):
- project service hooks: `X-ServiceHook-GUID` names the hook, `X-ServiceHook-Signature` is the
  hex HMAC-SHA256 of the raw body with its secret, `X-ServiceHook-Timestamp` unix seconds;
- an integration's webhooks: `Sentry-Hook-Signature` (HMAC-SHA256 of the body with the
  integration's client secret), `Sentry-Hook-Resource`, `Sentry-Hook-Timestamp`.
Answers: 405 anything but POST, 415 not JSON, 413 over the size limit, 401 an unknown hook, a
missing or wrong signature, or a timestamp outside the replay window, 400 a body that is not a
JSON object, 503 when the spool cannot keep it (Sentry retries), 202 once it is on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .secrets import HookSecrets, Secret
from .spool import HookSpool

log = logging.getLogger(__name__)

# What an integration may send that the store takes: an issue's life, and new errors.
STORED_RESOURCES = {"issue", "error"}


@dataclass
class Limits:
    max_bytes: int = 1 << 20  # Sentry's event payloads are far below this
    replay_seconds: float = 300.0


@dataclass
class Verdict:
    status: int
    message: str
    meta: dict | None = None


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _matches(secret: str, body: bytes, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(signature(secret, body), given.strip().lower())


def _fresh(stamp: str | None, window: float) -> bool:
    try:
        sent = float(stamp)
    except (TypeError, ValueError):
        return False
    return abs(time.time() - sent) <= window


class Checker:
    """Decides what one delivery gets; keeps it in the spool when it is good."""

    def __init__(self, secrets: HookSecrets, spool: HookSpool, limits: Limits, default_source: str | None,
                 integration_secrets: list[Secret] = (), on_spooled=None):
        self.secrets, self.spool, self.limits = secrets, spool, limits
        self.default_source = default_source
        self.integration_secrets = list(integration_secrets)
        self.on_spooled = on_spooled or (lambda: None)

    def verify(self, headers, body: bytes) -> Verdict:
        guid = headers.get("X-ServiceHook-GUID")
        if guid:
            secret = self.secrets.hook(guid.strip())
            if secret is None:
                return Verdict(401, "unknown service hook")
            if not _matches(secret.value, body, headers.get("X-ServiceHook-Signature")):
                return Verdict(401, "missing or wrong signature")
            if not _fresh(headers.get("X-ServiceHook-Timestamp"), self.limits.replay_seconds):
                return Verdict(401, "stale or missing timestamp")
            return Verdict(202, "accepted", {"kind": "service", "source": secret.source or self.default_source,
                                             "hook": guid.strip()})
        given = headers.get("Sentry-Hook-Signature")
        if given is None:
            return Verdict(401, "missing signature")
        found = next((s for s in self.integration_secrets + self.secrets.integrations()
                      if _matches(s.value, body, given)), None)
        if found is None:
            return Verdict(401, "wrong signature")
        if not _fresh(headers.get("Sentry-Hook-Timestamp"), self.limits.replay_seconds):
            return Verdict(401, "stale or missing timestamp")
        return Verdict(202, "accepted", {"kind": "integration", "source": found.source or self.default_source,
                                         "resource": (headers.get("Sentry-Hook-Resource") or "").strip()})

    def take(self, headers, body: bytes) -> Verdict:
        verdict = self.verify(headers, body)
        if verdict.meta is None:
            return verdict
        try:
            parsed = json.loads(body)
        except ValueError:
            return Verdict(400, "the body is not JSON")
        if not isinstance(parsed, dict):
            return Verdict(400, "the body is not a JSON object")
        if verdict.meta["kind"] == "integration" and verdict.meta["resource"] not in STORED_RESOURCES:
            return Verdict(200, f"resource {verdict.meta['resource'] or '(none)'} is not stored")
        try:
            self.spool.put({**verdict.meta, "received_at": time.time()}, body)
        except OSError as exc:
            log.error("could not keep a delivery in the spool %s: %s", self.spool.folder, exc.strerror)
            return Verdict(503, "cannot keep the delivery now; retry")
        self.on_spooled()
        return verdict


class _Handler(BaseHTTPRequestHandler):
    server_version = "sentry-mirror-hooks"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms wait for an ACK

    def log_message(self, format, *args):  # noqa: A002 - the headers and bodies are never logged
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, status: int, message: str, close: bool = False) -> None:
        body = json.dumps({"detail": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        if status >= 400:
            log.info("refused a delivery: %d %s", status, message)

    def _not_post(self):
        self._answer(405, "only POST is accepted", close=True)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_post

    def do_POST(self):
        checker: Checker = self.server.checker
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            return self._answer(415, "send application/json", close=True)
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            return self._answer(411, "a Content-Length is required", close=True)
        if length > checker.limits.max_bytes:
            return self._answer(413, f"the body is over {checker.limits.max_bytes} bytes", close=True)
        body = self.rfile.read(length)
        if len(body) < length:
            return self._answer(400, "the body was cut short", close=True)
        verdict = checker.take(self.headers, body)
        self._answer(verdict.status, verdict.message)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, checker: Checker):
        super().__init__((host, port), _Handler)
        self.checker = checker
        self._thread: threading.Thread | None = None

    def start(self) -> "Receiver":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="hooks-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join()
