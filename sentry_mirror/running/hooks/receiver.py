"""The HTTP receiver: checks each delivery and keeps it in the spool before answering 2xx.

Two kinds of deliveries (FACTS.md §6):
- project service hooks: `X-ServiceHook-GUID` names the hook, `X-ServiceHook-Signature` is the
  hex HMAC-SHA256 of the raw body with its secret, `X-ServiceHook-Timestamp` unix seconds;
- an integration's webhooks: `Sentry-Hook-Signature` (HMAC-SHA256 of the body with the
  integration's client secret), `Sentry-Hook-Resource`, `Sentry-Hook-Timestamp`.
Answers: 405 anything but POST, 415 not JSON, 411 no Content-Length (chunked bodies are refused),
400 a bogus one or a malformed request, 413 over the size limit, 431 headers over 64 KB, 401 an
unknown hook, a missing or wrong signature, or a timestamp outside the replay window, 400 a body
that is not a UTF-8 JSON object, 503 when the spool cannot keep it (Sentry retries), 202 once it
is on disk.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus

from ...errors import ConfigError, MirrorError
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
    warned: bool = False  # a refusal already logged as a warning of its own (not summed up again)


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_HEX = frozenset("0123456789abcdef")


def _matches(secret: str, body: bytes, given: str | None) -> bool:
    """Compared as bytes: compare_digest raises on a str with non-ASCII in it (a header read as
    Latin-1 may hold any byte), and a signature that is not 64 hex digits is wrong whatever it is."""
    if not given:
        return False
    given = given.strip().lower()
    if len(given) != 64 or not _HEX.issuperset(given):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), given.encode())


def _fresh(stamp: str | None, window: float) -> bool:
    try:
        sent = float(stamp)
    except (TypeError, ValueError):
        return False
    return abs(time.time() - sent) <= window


# Checks that a body is JSON without building it (a third of json.loads's time on a 9 KB event):
# its objects become None. A valid JSON text that starts with `{` is an object.
_JSON_CHECK = json.JSONDecoder(object_pairs_hook=lambda pairs: None)


WARN_EVERY = 60.0  # seconds between two warnings of the same kind of refusal


class Checker:
    """Decides what one delivery gets; keeps it in the spool when it is good."""

    def __init__(self, secrets: HookSecrets, spool: HookSpool, limits: Limits, default_source: str | None,
                 integration_secrets: list[Secret] = (), on_spooled=None):
        self.secrets, self.spool, self.limits = secrets, spool, limits
        self.default_source = default_source
        self.integration_secrets = list(integration_secrets)
        self.on_spooled = on_spooled or (lambda: None)
        self._warned: dict[str, float] = {}  # hook guid -> when its unset secret variable was last warned of
        self._refusals: dict[str, int] = {}  # "status message" -> refusals since the last summary
        self._summed_at: float | None = None

    def _unset(self, guid: str) -> Verdict:
        """A delivery for a hook that is not known, or whose secret variable is unset: the same
        answer (a scanner learns nothing of which hooks exist), and a warning for the latter, at
        most once a minute a hook (a flood of Sentry's retries does not flood the log)."""
        unset = self.secrets.unset(guid)
        if not unset:
            return Verdict(401, "unknown service hook")
        [(_, project, variable)] = unset
        now = time.monotonic()
        if now - self._warned.get(guid, -WARN_EVERY) >= WARN_EVERY:
            self._warned[guid] = now
            log.warning("refused a delivery for service hook %s (project %s): its secret variable %s is not "
                        "set", guid, project or "?", variable)
        return Verdict(401, "unknown service hook", warned=True)

    def refused(self, verdict: Verdict) -> None:
        """Every refusal at INFO (-v); at WARNING, the refusals summed up at most once a minute (a
        wrong secret refuses every delivery of its hook, and at the default level said nothing)."""
        log.info("refused a delivery: %d %s", verdict.status, verdict.message)
        if verdict.warned or verdict.status == 503:  # 503s are logged as errors where they arise
            return
        key = f"{verdict.status} {verdict.message}"
        self._refusals[key] = self._refusals.get(key, 0) + 1
        now = time.monotonic()
        if self._summed_at is not None and now - self._summed_at < WARN_EVERY:
            return
        total, counts = sum(self._refusals.values()), ", ".join(f"{n} {k}" for k, n in self._refusals.items())
        log.warning("refused %d %s: %s (at most one such line a minute; -v logs each)", total,
                    "delivery" if total == 1 else "deliveries", counts)
        self._refusals, self._summed_at = {}, now

    def verify(self, headers, body: bytes) -> Verdict:
        guid = headers.get("X-ServiceHook-GUID")
        if guid:
            secret = self.secrets.hook(guid.strip())
            if secret is None:
                return self._unset(guid.strip())
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

    def admit(self, headers, body: bytes) -> Verdict:
        """The verdict on a delivery; one with `meta` is to be kept in the spool before its answer."""
        verdict = self.verify(headers, body)
        if verdict.meta is None:
            return verdict
        try:
            text = body.decode("utf-8")
            _JSON_CHECK.decode(text)
        except ValueError:  # UnicodeDecodeError too: Sentry sends UTF-8
            return Verdict(400, "the body is not JSON")
        except RecursionError:  # a signed body nested deeper than Python's stack
            return Verdict(400, "the body is nested too deeply")
        if not text.lstrip(" \t\n\r").startswith("{"):
            return Verdict(400, "the body is not a JSON object")
        if verdict.meta["kind"] == "integration" and verdict.meta["resource"] not in STORED_RESOURCES:
            return Verdict(200, f"resource {verdict.meta['resource'] or '(none)'} is not stored")
        verdict.meta = {**verdict.meta, "received_at": time.time()}
        return verdict

    def admit_safely(self, headers, body: bytes) -> Verdict:
        """As `admit`, but an error in it (a malformed secrets file, a bug) is a logged 503 (Sentry
        retries) rather than a connection dropped with no answer."""
        try:
            return self.admit(headers, body)
        except MirrorError as exc:
            log.error("could not check a delivery: %s", exc)
        except Exception:  # noqa: BLE001 - the client gets an answer whatever went wrong
            log.exception("could not check a delivery")
        return Verdict(503, "cannot check the delivery now; retry")

    def kept(self, verdict: Verdict, error: OSError | None) -> Verdict:
        """What an admitted delivery gets once the spool has it (or could not keep it)."""
        if error is not None:
            log.error("could not keep a delivery in the spool %s: %s", self.spool.folder, error.strerror)
            return Verdict(503, "cannot keep the delivery now; retry")
        self.on_spooled()
        return verdict


class Headers(dict):
    """A request's headers by lower-cased name (the last one of a name wins)."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


_BAD_HEAD = re.compile(rb"\r(?!\n)|(?<!\r)\n|\0")  # in a head whose lines end with CRLF
HEAD_LIMIT = 64 * 1024  # request line and headers; Sentry's are well under 2 KB
CLIENT_TIMEOUT = 30.0  # seconds a client may take to send a request's head or body
IDLE_TIMEOUT = 5.0  # seconds a connection may wait, idle, for its next request (Sentry opens one per delivery)
SHUTDOWN_GRACE = 10.0  # seconds stop() waits for deliveries being kept to get their answers
MAX_CONNECTIONS = 256  # open at once, and never more than half the descriptors the process may hold


def connection_cap() -> int:
    """MAX_CONNECTIONS, or half the process's descriptor limit if that is lower: idle connections
    that took every descriptor once left the spool and the store unable to open a file."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return MAX_CONNECTIONS
    return MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else min(MAX_CONNECTIONS, max(16, soft // 2))


def read_head(head: bytes) -> tuple[str, str, Headers]:
    """(method, HTTP version, headers) of a request's head (its bytes up to the blank line). A CR,
    LF or NUL left inside a line after splitting on CRLF is 400 (RFC 9112 §2.2, §5: a bare LF as a
    line end is refused too, never read as one, so no two readers of a request see different headers)."""
    if _BAD_HEAD.search(head[:-4]):
        raise BadRequest(400, "a CR, LF or NUL inside a request line or header")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "a malformed request line")
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "a malformed header")
        name = name.lower()
        if name in ("content-length", "transfer-encoding") and name in headers:
            raise BadRequest(400, f"more than one {name} header")  # which one a proxy took is unknown
        headers[name] = value.strip()
    return parts[0], parts[2], headers


def body_length(headers: Headers, max_bytes: int) -> int:
    """The body's length from Content-Length: 411 without one (chunked bodies are refused: Sentry
    sends a length), 400 when it is not a number, 413 over the limit."""
    if headers.get("Transfer-Encoding") is not None:
        raise BadRequest(411, "chunked bodies are not accepted; send a Content-Length")
    given = headers.get("Content-Length")
    if given is None:
        raise BadRequest(411, "a Content-Length is required")
    if not (given.isascii() and given.isdigit()):
        raise BadRequest(400, "the Content-Length is not a number")
    length = int(given)
    if length > max_bytes:
        raise BadRequest(413, f"the body is over {max_bytes} bytes")
    return length


def keeps_alive(version: str, headers: Headers) -> bool:
    connection = (headers.get("Connection") or "").lower()
    return "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection


def answer(status: int, message: str, close: bool) -> bytes:
    body = json.dumps({"detail": message}).encode()
    closing = "Connection: close\r\n" if close else ""
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: sentry-mirror-hooks\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{closing}\r\n").encode() + body


def listen(host: str, port: int) -> socket.socket:
    """The receiver's listening socket, bound before anything else of the service starts. An empty
    host (which would be every interface), an address that is not this machine's or a port in use is
    a ConfigError of one line, as `emulator` says it."""
    if not host.strip():
        raise ConfigError("--host is empty", hint="give the address to listen on: 127.0.0.1 (the default), "
                                                  "or 0.0.0.0 for every interface")
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
        return socket.create_server(address, family=family)
    except OSError as exc:
        if isinstance(exc, socket.gaierror):  # not an address, nor a name this machine resolves
            reason = exc.strerror or str(exc)
        else:  # create_server's own message repeats the address
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EADDRINUSE:
            hint = "pick another --port, or --port 0 for any free one"
        elif exc.errno == errno.EACCES and 0 < port < 1024:
            hint = "ports below 1024 need privileges: pick --port 1024 or above and a proxy in front"
        else:  # an unknown name, an address of another machine
            hint = "--host must be an address of this machine, e.g. 127.0.0.1, or 0.0.0.0 for every interface"
        raise ConfigError(f"cannot listen on {where}: {reason}", hint=hint) from None


class Receiver:
    """HTTP/1.1 with keep-alive on one asyncio event loop in a thread of its own.

    http.server spent a thread per connection, parsed each head with the email package and made
    the threads take turns on the GIL; here the connections share one thread (an asyncio Protocol
    per connection: no coroutine per request), and a delivery's answer waits for the spool's group
    commit without holding a thread. A slow or silent client holds only its own connection, and is
    dropped when a request (or the wait for the next one) takes over CLIENT_TIMEOUT."""

    def __init__(self, sock: socket.socket, checker: Checker):
        """`sock`: the listening socket (`listen`); the receiver closes it at stop."""
        self.checker = checker
        self._sock = sock
        self._sock.setblocking(False)
        self.server_address = self._sock.getsockname()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections: dict[_Connection, None] = {}  # open ones, oldest first (the event loop's thread only)
        self.max_connections = connection_cap()

    def start(self) -> "Receiver":
        self._thread = threading.Thread(target=self._run, name="hooks-receiver", daemon=True)
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        asyncio.run(self._serve_forever())

    async def _serve_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await self._loop.create_server(lambda: _Connection(self.checker, self._loop, self), sock=self._sock)
        self._started.set()
        async with server:
            await self._stopping.wait()
            server.close()
            await self._drain_connections()

    async def _drain_connections(self) -> None:
        """At stop: connections with nothing owed are closed at once; those whose delivery waits for
        the spool are answered (then closed) within SHUTDOWN_GRACE; what is left is closed."""
        for conn in list(self.connections):
            if not conn.waiting:
                conn._close()
        deadline = self._loop.time() + SHUTDOWN_GRACE
        while any(c.waiting for c in self.connections) and self._loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            if not conn.closed:
                conn._close()

    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    def opened(self, conn: "_Connection") -> bool:
        """Count a new connection in; over the cap, the oldest idle one is closed to make room, and
        with none idle the new one is refused (False)."""
        self.connections[conn] = None
        if len(self.connections) <= self.max_connections:
            return True
        oldest = next((c for c in self.connections if c is not conn and c.idle()), None)
        if oldest is None:
            log.warning("%d connections are open, none idle: refusing a new one", len(self.connections) - 1)
            return False
        log.info("%d connections are open: closing the oldest idle one", len(self.connections) - 1)
        oldest._close()
        return True

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join()
        self._sock.close()


class _Connection(asyncio.Protocol):
    """One client's connection: requests read off it in turn, each answered once it is kept."""

    def __init__(self, checker: Checker, loop: asyncio.AbstractEventLoop, receiver: Receiver | None = None):
        self.checker, self.loop, self.receiver = checker, loop, receiver
        self.buffer = bytearray()
        self.request: tuple[str, Headers, int] | None = None  # (version, headers, body length) read so far
        self.waiting = False  # for the spool: what follows on the connection waits too
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.receiver is not None and not self.receiver.opened(self):
            return self._refuse(503, "too many connections; retry")
        self._arm(IDLE_TIMEOUT)

    def connection_lost(self, exc) -> None:
        self.closed = True  # a client gone mid-request leaves nothing kept
        if self.timer:
            self.timer.cancel()
        if self.receiver is not None:
            self.receiver.connections.pop(self, None)

    def idle(self) -> bool:
        """Between requests: nothing read of the next one, no answer owed."""
        return not self.buffer and self.request is None and not self.waiting and not self.closed

    def _arm(self, seconds: float | None = None) -> None:
        """The client has CLIENT_TIMEOUT from now to send a whole request (IDLE_TIMEOUT to start one)."""
        if self.timer:
            self.timer.cancel()
        self.timer = self.loop.call_later(CLIENT_TIMEOUT if seconds is None else seconds, self._close)

    def _close(self) -> None:
        self.closed = True
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.idle():  # a request begins: it has CLIENT_TIMEOUT to arrive whole
            self._arm()
        self.buffer += data
        self._advance_safely()

    def _advance_safely(self) -> None:
        """`_advance`, whose errors end in a logged 503, not in asyncio's "Fatal error" and a
        connection dropped without an answer."""
        try:
            self._advance()
        except Exception:  # noqa: BLE001
            log.exception("could not read a request")
            if not self.closed:
                self._refuse(503, "cannot read the request now; retry")

    def _advance(self) -> None:
        """Take the requests the buffer holds, one at a time."""
        while not self.waiting and not self.closed:
            if self.request is None:
                while self.buffer.startswith(b"\r\n"):  # empty lines before a request line (RFC 9112 §2.2)
                    del self.buffer[:2]
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0 and _BAD_HEAD.search(self.buffer, 0, len(self.buffer) - 1):  # bare LFs: no CRLF CRLF will come
                    return self._refuse(400, "a CR, LF or NUL inside a request line or header")
                if end < 0 or end + 4 > HEAD_LIMIT:
                    if end + 4 > HEAD_LIMIT or len(self.buffer) > HEAD_LIMIT:
                        self._refuse(431, "the request's headers are too large")
                    return
                head = bytes(self.buffer[:end + 4])
                del self.buffer[:end + 4]
                try:
                    self.request = self._head(head)
                except BadRequest as refused:
                    return self._refuse(refused.status, refused.message)
            version, headers, length = self.request
            if len(self.buffer) < length:
                return
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.request = None
            verdict = self.checker.admit_safely(headers, body)
            alive = keeps_alive(version, headers)
            if verdict.meta is None or verdict.status != 202:
                self._answer(verdict, alive)
                continue
            self.waiting = True
            self.timer.cancel()  # the wait for the disk is not the client's
            self.transport.pause_reading()
            self.checker.spool.submit(verdict.meta, body, lambda name, error: self._from_spool(verdict, error, alive))

    def _head(self, head: bytes) -> tuple[str, Headers, int]:
        method, version, headers = read_head(head)
        if method != "POST":
            raise BadRequest(405, "only POST is accepted")
        kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise BadRequest(415, "send application/json")
        return version, headers, body_length(headers, self.checker.limits.max_bytes)

    def _from_spool(self, verdict: Verdict, error: OSError | None, alive: bool) -> None:
        """On the spool's thread: hand the outcome to the event loop (gone if stop() gave up waiting:
        the delivery is on disk all the same, and Sentry, unanswered, sends it again)."""
        try:
            self.loop.call_soon_threadsafe(self._kept, verdict, error, alive)
        except RuntimeError:
            log.warning("a delivery was kept after the receiver stopped; it was not answered")

    def _kept(self, verdict: Verdict, error: OSError | None, alive: bool) -> None:
        self.waiting = False
        if self.receiver is not None and self.receiver.stopping():
            alive = False  # answered, then closed
        verdict = self.checker.kept(verdict, error)
        if self.closed:
            return
        self._answer(verdict, alive)
        self.transport.resume_reading()
        self._advance_safely()

    def _answer(self, verdict: Verdict, alive: bool) -> None:
        if verdict.status >= 400:
            self.checker.refused(verdict)
        self.transport.write(answer(verdict.status, verdict.message, close=not alive))
        if alive:
            self._arm(None if self.buffer else IDLE_TIMEOUT)
        else:
            self._close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer and close: what is left of the request is not read."""
        self._answer(Verdict(status, message), alive=False)
