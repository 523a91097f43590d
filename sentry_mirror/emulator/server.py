"""HTTP front of the emulator: serving, auth, rate limits, fault application and the control API.

One ThreadingHTTPServer on 127.0.0.1 speaks HTTP/1.1 with exact Content-Length so clients keep
connections alive; faults that break the transport (reset, truncate) close the connection.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import struct
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import gitlab, glitchtip
from .api import MUTATIONS, NOT_FOUND, Api, Request, Response, resolve
from .hooks import Deliverer
from .faults import FaultRegistry, FaultRule, drift, hostile, huge
from .pagination import ApiError, bad_request
from .regions import DEFAULT_REGIONS, REGION_PATH, Regions
from .world import World

DEFAULT_TOKEN = "sntryu_" + "0" * 64
DEFAULT_RATE_LIMIT = 470  # Sentry's default per-second limit, advertised when none is enforced
CONCURRENT_LIMIT = 100
RATE_LIMIT_MESSAGE = "You are attempting to use this endpoint too frequently. Limit is {} requests in {} seconds"
GATEWAY_PAGE = ("<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center>"
                "<hr><center>nginx</center></body></html>")
GATEWAY_REASONS = {"502": "502 Bad Gateway", "503": "503 Service Temporarily Unavailable",
                   "html500": "500 Internal Server Error"}  # a proxy's own page, not Sentry's JSON
FLAVORS = ("sentry", glitchtip.FLAVOR)
EXTRA_ORGS = ("globex", "initech", "hooli", "umbrella")  # the slugs of `orgs=N`'s other organizations
# A token that lacks a route's scope (fault `forbidden`): DRF's message on Sentry, GlitchTip's own.
FORBIDDEN = {"sentry": "You do not have permission to perform this action.", glitchtip.FLAVOR: "Permission denied"}


# Per-route limits Sentry sets on endpoints (FACTS §2), applied with strict_limits=True:
# template -> (requests, window seconds, concurrent requests).
ROUTE_LIMITS = {"/api/0/projects/{org}/{project}/events/": (60, 60, 1)}
CONCURRENCY_MESSAGE = ("You are attempting to go above the allowed concurrency for this endpoint. "
                       "Concurrency limit is {}")


@dataclass
class Ticket:
    """One request's admission: what it counted against, and whether it may proceed."""

    key: str
    limit: int
    window: int
    remaining: int
    reset: int
    concurrent_limit: int
    concurrent_remaining: int
    refusal: str | None = None  # the JSON string a 429 answers with

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-Sentry-Rate-Limit-Limit", str(self.limit)),
            ("X-Sentry-Rate-Limit-Remaining", str(self.remaining)),
            ("X-Sentry-Rate-Limit-Reset", str(self.reset)),
            ("X-Sentry-Rate-Limit-ConcurrentLimit", str(self.concurrent_limit)),
            ("X-Sentry-Rate-Limit-ConcurrentRemaining", str(self.concurrent_remaining)),
        ]


class RateLimiter:
    """Fixed windows and in-flight counts per caller (token, else IP), as Sentry's middleware keeps them.

    `limit` (requests per second) is enforced only when given, as one window per caller over all
    endpoints, the way a proxy in front of a server limits. Otherwise Sentry's default is advertised,
    in a window per endpoint as Sentry keeps them (its key is `{category}:{endpoint}:{METHOD}:{id}`);
    with `strict`, the routes in ROUTE_LIMITS get their own limit and concurrency. Concurrency is
    always counted and advertised, and enforced only when `concurrent_limit` is given (Sentry
    enforces it only with ENFORCE_CONCURRENT_RATE_LIMITS).
    """

    def __init__(self, limit: int | None, concurrent_limit: int | None = None, strict: bool = False,
                 clock: Callable[[], float] | None = None):
        self.limit = limit
        self.clock = clock or time.time  # the server's clock, which the Date header also shows
        self.concurrent_limit = concurrent_limit
        self.strict = strict
        self._windows: dict[str, tuple[int, int]] = {}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, caller: str, template: str) -> Ticket:
        """Count a request in its window and in flight; call release() with the ticket afterwards."""
        route = ROUTE_LIMITS.get(template) if self.strict else None
        if route:
            key, (limit, window, concurrency) = f"{caller} {template}", route
            enforced = True
        else:
            # Sentry's default window is per endpoint; the --rate-limit one spans all endpoints
            key = caller if self.limit is not None else f"{caller} {template}"
            limit, window = self.limit or DEFAULT_RATE_LIMIT, 1
            concurrency, enforced = self.concurrent_limit or CONCURRENT_LIMIT, self.limit is not None
        now = int(self.clock())  # windows run on the server's clock, whole seconds, as Date tells it
        start = now - now % window
        with self._lock:
            begun, used = self._windows.get(key, (start, 0))
            used = (used if begun == start else 0) + 1
            self._windows[key] = (start, used)
            flying = self._in_flight[key] = self._in_flight.get(key, 0) + 1
        # Reset is the next window's first second on that clock, as a real server tells it.
        reset = start + window
        ticket = Ticket(key, limit, window, max(0, limit - used), reset, concurrency,
                        max(0, concurrency - flying))
        if enforced and used > limit:
            ticket.refusal, ticket.remaining = RATE_LIMIT_MESSAGE.format(limit, window), 0
        elif self.concurrent_limit is not None and flying > concurrency:
            ticket.refusal = CONCURRENCY_MESSAGE.format(concurrency)
        return ticket

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            self._in_flight[ticket.key] -= 1


class RequestLog:
    """Counts /api/0/ requests by `METHOD route-template`, and keeps the paths asked (with their
    query strings), so that a test can see which projects were asked for."""

    def __init__(self):
        self._counts: dict[str, int] = {}
        self._paths: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, key: str, path: str = "") -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if path:
                self._paths[path] = self._paths.get(path, 0) + 1

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._paths)

    def snapshot(self) -> dict:
        with self._lock:
            return {"total": sum(self._counts.values()), "by_endpoint": dict(sorted(self._counts.items()))}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._paths.clear()


class Emulator:
    """A Sentry /api/0/ server over a deterministic World. See the package docstring for usage."""

    def __init__(self, seed: int = 1, scale: str = "tiny", token: str = DEFAULT_TOKEN,
                 rate_limit: int | None = None, port: int = 0, now: datetime | None = None,
                 flavor: str = "sentry", concurrent_limit: int | None = None, strict_limits: bool = False,
                 deletions: bool = False, project_event_days: int | None = None, seen_in_seconds: bool = False,
                 merges: bool = False, orgs: int = 1):
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}")
        self.gitlab_links = True  # False: GitLab lists answer without `Link` (X-Next-Page only)
        self.world = World(seed=seed, scale=scale, now=now, deletions=deletions, merges=merges)
        # Issues' firstSeen/lastSeen cut to the second, as Sentry's schema example has them (its
        # servers may send microseconds: the mirror must cope with both)
        self.world.seen_in_seconds = seen_in_seconds
        self.token = token
        self.flavor = flavor
        self.faults = FaultRegistry(seed)
        self._born = time.monotonic()
        self.limiter = RateLimiter(rate_limit, concurrent_limit, strict_limits, clock=self.server_time)
        self.requests = RequestLog()
        self.api = Api(self.world, project_event_days=project_event_days)
        # Other organizations, each at its region (regions.py); with orgs=1 only the one above.
        self.regions = Regions(self.world, self.api, lambda w: Api(w, project_event_days=project_event_days))
        if orgs > 1:
            self.regions.place_primary(DEFAULT_REGIONS[0])
        for k in range(1, orgs):
            slug = EXTRA_ORGS[k - 1] if k <= len(EXTRA_ORGS) else f"org-{k}"
            self.regions.add(slug, DEFAULT_REGIONS[k % len(DEFAULT_REGIONS)])
        self._port = port
        self._revoked: set[str] = set()
        # Cursors handed out by `emptypage`/`shortpage`: token -> (the cursor of the page that was cut
        # or withheld, None for a first page; how many of its items were already served).
        self._deferred: dict[str, tuple[str | None, int]] = {}
        self._deferred_ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.hooks = Deliverer()  # signed POSTs to the service hooks created through the API

    def server_time(self) -> float:
        """The server's clock, as Date and X-Sentry-Rate-Limit-Reset tell it: the world's virtual
        time, running with real time since the emulator started (a real server's clock runs; data
        and windows stay on the virtual clock, which only `advance` moves)."""
        return self.world.now_ms / 1000 + (time.monotonic() - self._born)

    # ----- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Emulator":
        self._server = _Server(("127.0.0.1", self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sentry-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without trailing slash (the real port is known once started)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def org_slug(self) -> str:
        return self.world.org_slug

    # ----- in-process control (same as the /_emulator/ API) -------------------------------------
    def truth(self) -> dict:
        return self.world.truth()

    def advance(self, hours: float) -> dict:
        """Move the clock; each new event is then POSTed to its project's hooks (emulator/hooks.py)."""
        with self.world.lock:
            summary = self.world.advance(hours)
            sent = self.hooks.enqueue(self.world, self.world.last_added, self.url)
        for site in list(self.regions.sites.values())[1:]:  # one server, one clock; each org's hooks fire
            with site.world.lock:
                site.world.advance(hours)
                base = f"{self.url}/_region/{site.region}" if site.region else self.url
                sent += self.hooks.enqueue(site.world, site.world.last_added, base)
        if sent:
            summary["hook_deliveries"] = sent
        return summary

    def request_counts(self) -> dict:
        return self.requests.snapshot()

    def merge_issues(self, primary: str, others: list[str]) -> dict:
        """Merge issues (by id) into `primary`, as a user does in Sentry (see World.merge_issues)."""
        world = self.world
        with world.lock:
            found = [world.find_issue(str(i)) for i in [primary, *others]]
            if any(i is None for i in found):
                raise ValueError("unknown (or deleted) issue id")
            return {"merged": world.merge_issues(found[0], found[1:]), "primary": str(found[0].id)}

    # ----- /api/0/ --------------------------------------------------------------------------------
    def serve_api(self, method: str, raw_path: str, query: str, headers, host: str,
                  client_ip: str, body: bytes = b"", region: str | None = None) -> tuple[Response, FaultRule | None]:
        """Answer one /api/0/ request (at the main URL, or at `region`'s, regions.py); returns the
        response and the fault rule that fired, if any."""
        match = resolve(raw_path, self.flavor)
        template = match[0] if match else "(unmatched)"
        prefix = f"/_region/{region}" if region else ""
        self.requests.record(f"{method} {template}", prefix + raw_path + (f"?{query}" if query else ""))
        rule = self.faults.fire(template, raw_path, query)
        kind = rule.kind if rule else None
        if kind in GATEWAY_REASONS:
            page = GATEWAY_PAGE.format(GATEWAY_REASONS[kind]).encode()
            return Response(int(kind.removeprefix("html")), raw=page, content_type="text/html",
                            headers=_retry_after(rule)), rule
        auth = headers.get("Authorization")
        token = _bearer_token(auth)
        if kind == "revoke" and token:
            self._revoked.add(token)
        ticket = self.limiter.admit(token or f"ip:{client_ip}", template)
        try:
            if kind == "slow":  # a slow answer holds its concurrency slot, as a slow view does
                time.sleep(rule.delay)
            if kind == "429":
                ticket.remaining = 0
                resp = Response(429, RATE_LIMIT_MESSAGE.format(ticket.limit, ticket.window), _retry_after(rule))
            elif ticket.refusal:
                resp = Response(429, ticket.refusal)
            else:
                pairs, served = self._undefer(parse_qsl(query, keep_blank_values=True))
                req = Request(method, prefix + raw_path, pairs, host, self.url + prefix, flavor=self.flavor,
                              body=_json_or_none(body))
                resp = self._app(req, match, auth, kind, region)
                self._shape_page(resp, kind, dict(pairs).get("cursor"), served)
            if self.flavor == "sentry":  # GlitchTip sends no rate-limit headers
                resp.headers += ticket.headers()
        finally:
            self.limiter.release(ticket)
        return resp, rule

    def _app(self, req: Request, match, auth: str | None, kind: str | None, region: str | None = None) -> Response:
        """What the Sentry application answers (after the proxy and the rate limiter)."""
        try:
            if kind == "500":
                return Response(500, {"detail": "Internal Error", "errorId": uuid.uuid4().hex})
            if match is None and self.flavor == "glitchtip":
                return Response(500, raw=glitchtip.ERROR_PAGE, content_type="text/html; charset=utf-8")
            if match is None:
                raise ApiError(404, NOT_FOUND)
            template, name, params = match
            if req.method != "GET":
                name = MUTATIONS.get((req.method, template))
                if name is None or self.flavor == "glitchtip":
                    raise ApiError(405, f'Method "{req.method}" not allowed.')
            req.authed = self._authenticate(auth)
            if not req.authed and name != "root":
                raise ApiError(401, "Authentication credentials were not provided.")
            if kind == "badcursor":
                raise bad_request("Invalid cursor parameter.")
            if kind == "forbidden":  # a valid token without the scope this route needs
                raise ApiError(403, FORBIDDEN.get(self.flavor, FORBIDDEN["sentry"]))
            if name == "org_list" and self.regions.several:
                return self.regions.org_list(req, region, self.url)
            resp = self.regions.api_for(params, region).handle(name, req, **params)
            if name == "org_detail":
                self.regions.linked(resp.payload, self.url)
            return resp
        except ApiError as err:
            return Response(err.status, err.payload)
        except Exception:  # a bug in the emulator: answer like Sentry does, keep serving
            traceback.print_exc()
            return Response(500, {"detail": "Internal Error"})

    def _undefer(self, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
        """A cursor handed out by `_shape_page` stands for a real one: ask for that page instead, and
        say how many of its items were served already."""
        cursor = dict(pairs).get("cursor")
        if cursor not in self._deferred:
            return pairs, 0
        original, served = self._deferred[cursor]
        rest = [(k, v) for k, v in pairs if k != "cursor"]
        return rest + ([("cursor", original)] if original else []), served

    def _shape_page(self, resp: Response, kind: str | None, cursor: str | None, served: int) -> None:
        """Answer a list page short (`shortpage`) or empty (`emptypage`) while its Link still says
        results="true", as Sentry's paginators may; the next cursor leads to the rest of the page."""
        link = dict(resp.headers).get("Link")
        if resp.status != 200 or not isinstance(resp.payload, list) or link is None:
            return
        if served:
            resp.payload = resp.payload[served:]
        keep = 0 if kind == "emptypage" else len(resp.payload) // 2 if kind == "shortpage" else None
        if keep is None or (kind == "shortpage" and not keep):
            return
        token = f"deferred-{next(self._deferred_ids)}"
        self._deferred[token] = (cursor, served + keep)
        resp.payload = resp.payload[:keep]
        resp.headers = [(k, _defer_next(v, token) if k == "Link" else v) for k, v in resp.headers]

    def _authenticate(self, header: str | None) -> bool:
        """Bearer token check with DRF's messages; False means anonymous (no bearer header)."""
        if not header or header.split(" ", 1)[0].lower() != "bearer":
            return False
        credentials = header.split(" ", 1)[1].strip() if " " in header else ""
        if not credentials:
            raise ApiError(401, "Invalid token header. No credentials provided.")
        if " " in credentials:
            raise ApiError(401, "Invalid token header. Token string should not contain spaces.")
        if credentials != self.token or credentials in self._revoked:
            raise ApiError(401, "Invalid token")
        return True

    # ----- /_emulator/ ------------------------------------------------------------------------------
    def control(self, method: str, path: str, body: bytes, query: str = "") -> Response:
        """The unauthenticated control API; never subject to faults or rate limits. `?org=SLUG` asks
        the truth of another organization (regions.py)."""
        org = dict(parse_qsl(query)).get("org")
        routes = {
            ("GET", "/_emulator/truth"): lambda: self.regions.world(org).truth(),
            ("GET", "/_emulator/truth/events"): lambda: {"event_ids": self.regions.world(org).event_ids()},
            ("GET", "/_emulator/truth/event_rows"): self.world.truth_event_rows,
            ("GET", "/_emulator/truth/history"): self.world.truth_history,
            ("GET", "/_emulator/truth/hashes"): self.world.truth_hashes,
            ("GET", "/_emulator/requests"): lambda: self.request_counts(),
            ("POST", "/_emulator/requests/reset"): self._reset_requests,
            ("POST", "/_emulator/advance"): lambda: self.advance(_json_body(body).get("hours", 0)),
            ("POST", "/_emulator/merge"): lambda: self.merge_issues(**_json_body(body)),
            ("GET", "/_emulator/faults"): lambda: self.faults.rules(),
            ("POST", "/_emulator/faults"): lambda: self._add_fault(_json_body(body)),
            ("DELETE", "/_emulator/faults"): lambda: {"cleared": self.faults.clear()},
            ("GET", "/_emulator/orgs"): self.regions.listing,
            ("POST", "/_emulator/orgs"): lambda: self.regions.add(**_json_body(body)),
            ("DELETE", "/_emulator/orgs"): lambda: self.regions.drop(**_json_body(body)),
        }
        key = (method, path.rstrip("/"))
        if key not in routes:
            known = any(p == key[1] for _, p in routes)
            return Response(405 if known else 404, {"detail": "Method not allowed" if known else "Not found"})
        try:
            result = routes[key]()
        except (ValueError, TypeError) as err:
            return Response(400, {"detail": str(err)})
        return Response(201 if key in (("POST", "/_emulator/faults"), ("POST", "/_emulator/orgs")) else 200, result)

    def _reset_requests(self) -> dict:
        self.requests.reset()
        return self.request_counts()

    def _add_fault(self, rule: dict) -> dict:
        if not isinstance(rule, dict):
            raise ValueError("fault rule must be a JSON object")
        added = self.faults.add_spec(rule["spec"]) if "spec" in rule else self.faults.add(**rule)
        return added.as_json()


_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z_-]+="[^"]*")*)')


def _defer_next(value: str, token: str) -> str:
    """The Link header with its `rel="next"` link pointing at `token`, with results="true" (in
    either Sentry's or GlitchTip's wrapping)."""
    def one(m: re.Match) -> str:
        url, attrs = m.group(1), m.group(2)
        if 'rel="next"' not in attrs:
            return m.group(0)
        split = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(split.query, keep_blank_values=True) if k != "cursor"]
        query.append(("cursor", token))
        url = split._replace(query=urlencode(query)).geturl()  # re-encoded, as the links it replaces are
        return f'<{url}>; rel="next"; results="true"; cursor="{token}"'

    return _LINK.sub(one, value)


def _bearer_token(header: str | None) -> str | None:
    parts = (header or "").split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None


def _retry_after(rule: FaultRule | None) -> list[tuple[str, str]]:
    if rule is None or rule.retry_after is None:
        return []
    return [("Retry-After", f"{rule.retry_after:g}")]


def _json_or_none(body: bytes):
    """A request's JSON body, or None when it has none or it is not JSON (the handler says so)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def _json_body(body: bytes):
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON body: {err}") from None


class _Server(ThreadingHTTPServer):
    """Tracks open connections so stop() can close idle keep-alive sockets too."""

    daemon_threads = True
    request_queue_size = 128  # concurrent mirror workers must not overflow the listen backlog

    def __init__(self, address, emulator: Emulator):
        super().__init__(address, _Handler)
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def handle_error(self, request, client_address):
        """A client that hangs up mid-request (a killed sync) is normal here, not worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sentry-emulator/0.1"
    timeout = 120  # idle keep-alive connections are dropped eventually

    def setup(self) -> None:
        """Disable Nagle: headers and body go out in separate writes, which would stall keep-alive."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - signature from BaseHTTPRequestHandler
        """Silence per-request logging; the control API exposes request counts instead."""

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp=None):
        """`Date` follows the emulator's server clock (its virtual time, running), or the clock of a
        proxy in front of it (fault `datefromproxy`)."""
        return formatdate(self.server.emulator.server_time() + getattr(self, "_date_offset", 0.0), usegmt=True)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self) -> None:
        emulator: Emulator = self.server.emulator
        self._date_offset = 0.0
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if split.path == "/_emulator" or split.path.startswith("/_emulator/"):
            self._send(emulator.control(self.command, split.path, body, split.query))
        elif split.path == "/api/0" or split.path.startswith("/api/0/") or (
                emulator.regions.several and REGION_PATH.match(split.path)):
            region_path = REGION_PATH.match(split.path)
            region, path = region_path.groups() if region_path else (None, split.path)
            match = resolve(path, emulator.flavor)
            self._date_offset = emulator.faults.date_offset(match[0] if match else "(unmatched)", path)
            host = self.headers.get("Host") or emulator.url.split("//", 1)[1]
            resp, rule = emulator.serve_api(self.command, path, split.query, self.headers, host,
                                            self.client_address[0], body, region)
            self._send(resp, rule.kind if rule else None)
        elif split.path.startswith("/api/v4/"):  # GitLab's error-tracking routes (gitlab.py)
            self._send(gitlab.serve(emulator, self.command, split.path, split.query, self.headers))
        else:
            self._send(Response(404, {"detail": "Not found"}))

    def _send(self, resp: Response, fault: str | None = None) -> None:
        mutate = {"drift": drift, "hostile": hostile, "huge": huge}.get(fault) if resp.status == 200 else None
        payload = mutate(resp.payload) if mutate else resp.payload
        if resp.raw is not None:
            body = resp.raw
        elif resp.status in (202, 204) and payload is None:
            body = b""  # DELETE answers carry no body
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
        if fault == "badjson":
            body = body[: len(body) // 2]
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        if fault in ("reset", "truncate"):
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            if fault == "reset":
                self._abort()
            return
        self.wfile.write(body)

    def _abort(self) -> None:
        """Close with RST instead of FIN, like a proxy dropping the connection."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()


def serve_forever(emu: Emulator) -> None:
    """Block until Ctrl-C or SIGTERM, then stop the emulator cleanly."""
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        emu.stop()


def run_emulator(port: int, seed: int, scale: str, token: str | None, rate_limit: int | None,
                 faults: list[str], flavor: str = "sentry", concurrent_limit: int | None = None,
                 strict_limits: bool = False, deletions: bool = False, merges: bool = False, orgs: int = 1) -> None:
    """CLI entry point: start, print how to connect, serve until interrupted."""
    emu = Emulator(seed=seed, scale=scale, token=token or DEFAULT_TOKEN, rate_limit=rate_limit, port=port,
                   flavor=flavor, concurrent_limit=concurrent_limit, strict_limits=strict_limits,
                   deletions=deletions, merges=merges, orgs=orgs)
    for spec in faults or []:
        emu.faults.add_spec(spec)
    emu.start()
    print(f"base URL: {emu.url}")
    print(f"organization: {emu.org_slug}")
    if orgs > 1:
        print("organizations: " + ", ".join(f"{o['slug']} ({o['region']})" for o in emu.regions.listing()))
    print(f"token: {emu.token}", flush=True)
    serve_forever(emu)
