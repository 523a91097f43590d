"""The receiver's own HTTP/1.1 (it replaced http.server): what http.server gave for free, kept.
Keep-alive, Content-Length missing or bogus, chunked bodies refused, slow or silent clients that
hold only their own connection, and a client that leaves mid-body keeping nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time

import pytest
import requests

from sentry_mirror.emulator import Emulator
from sentry_mirror.running.hooks import receiver

from test_hooks import GUID, SECRET, an_event, post, service, wait_for, with_secret


@pytest.fixture
def emu():
    with Emulator(seed=5, scale="tiny") as e:
        yield e


@pytest.fixture
def svc(tmp_path, emu):
    from sentry_mirror.storage.store import Store

    db = str(tmp_path / "m.duckdb")
    Store(db).close()
    with_secret(db)
    with service(db, emu) as s:
        yield s


def signed(body: bytes, *, extra: str = "", length: str | None = None, version: str = "HTTP/1.1") -> bytes:
    """A signed request as bytes on the wire (its head in Latin-1, as HTTP/1.1 reads it)."""
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    size = f"Content-Length: {len(body) if length is None else length}\r\n" if length != "" else ""
    return (f"POST / {version}\r\nHost: x\r\nContent-Type: application/json\r\n{size}"
            f"X-ServiceHook-GUID: {GUID}\r\nX-ServiceHook-Timestamp: {int(time.time())}\r\n"
            f"X-ServiceHook-Signature: {sig}\r\n{extra}\r\n").encode("latin-1") + body


def connect(svc) -> socket.socket:
    return socket.create_connection(("127.0.0.1", svc.port), timeout=10)


def answers(sock: socket.socket, n: int) -> list[tuple[int, dict]]:
    """n answers read off the connection: (status, headers by lower-cased name)."""
    fh = sock.makefile("rb")
    out = []
    for _ in range(n):
        status = int(fh.readline().split()[1])
        headers = {}
        while (line := fh.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        fh.read(int(headers.get("content-length", 0)))
        out.append((status, headers))
    return out


def closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (what it still sends is read first)."""
    sock.settimeout(10)
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return True
        if not data:
            return True


def bodies(emu, n: int) -> list[bytes]:
    event, _ = an_event(emu)
    out = []
    for k in range(n):
        event["event"]["eventID"] = event["event"]["id"] = f"{k + 1:032x}"
        out.append(json.dumps(event).encode())
    return out


def test_keep_alive_and_pipelined_requests_on_one_connection(svc, emu):
    first, second, third = bodies(emu, 3)
    with connect(svc) as sock:
        sock.sendall(signed(first))
        assert answers(sock, 1)[0][0] == 202
        sock.sendall(signed(second) + signed(third))  # two at once: answered in turn
        got = answers(sock, 2)
        assert [s for s, _ in got] == [202, 202] and all("connection" not in h for _, h in got)
    wait_for(lambda: svc.drainer.stored == 3)


def test_http_1_0_and_connection_close_end_the_connection(svc, emu):
    one, two = bodies(emu, 2)
    for request in (signed(one, version="HTTP/1.0"), signed(two, extra="Connection: close\r\n")):
        with connect(svc) as sock:
            sock.sendall(request)
            status, headers = answers(sock, 1)[0]
            assert status == 202 and headers.get("connection") == "close"
            assert closed(sock)
    wait_for(lambda: svc.drainer.stored == 2)


@pytest.mark.parametrize("length, status", [("", 411), ("abc", 400), ("-5", 400), ("1e3", 400), ("12, 12", 400),
                                            ("\u00b2", 400), ("7\r\nContent-Length: 7", 400)])
def test_content_length_missing_or_bogus(svc, emu, length, status):
    body = bodies(emu, 1)[0]
    with connect(svc) as sock:
        sock.sendall(signed(body, length=length))
        assert answers(sock, 1)[0][0] == status
        assert closed(sock)
    assert svc.spool.pending() == []


def test_a_chunked_body_is_refused(svc, emu):
    body = bodies(emu, 1)[0]
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with connect(svc) as sock:
        sock.sendall(signed(chunked, length="", extra="Transfer-Encoding: chunked\r\n")[:-len(chunked)] + chunked)
        status, headers = answers(sock, 1)[0]
        assert status == 411 and headers.get("connection") == "close"
        assert closed(sock)
    assert svc.spool.pending() == []


def test_a_slow_client_does_not_hold_up_the_others(svc, emu):
    slow_body, quick = bodies(emu, 2)
    with connect(svc) as slow:
        whole = signed(slow_body)
        slow.sendall(whole[:len(whole) // 2])  # half a request, and the rest only later
        assert post(svc, quick).status_code == 202  # answered meanwhile
        slow.sendall(whole[len(whole) // 2:])
        assert answers(slow, 1)[0][0] == 202
    wait_for(lambda: svc.drainer.stored == 2)


def test_a_silent_client_is_dropped(svc, monkeypatch):
    monkeypatch.setattr(receiver, "CLIENT_TIMEOUT", 0.3)
    with connect(svc) as idle, connect(svc) as stalled:
        stalled.sendall(b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        assert closed(idle) and closed(stalled)
    assert svc.spool.pending() == []


def test_a_client_that_leaves_mid_body_keeps_nothing(svc, emu):
    left, whole = bodies(emu, 2)
    with connect(svc) as sock:
        request = signed(left)
        sock.sendall(request[:-100])  # all but the body's last 100 bytes, then gone
    assert post(svc, whole).status_code == 202  # the receiver goes on
    wait_for(lambda: svc.drainer.stored >= 1 and not svc.drainer.busy())
    assert svc.drainer.stored == 1 and svc.spool.pending() == []


def test_headers_too_large_and_a_malformed_request_line(svc):
    with connect(svc) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nX-Big: " + b"a" * (receiver.HEAD_LIMIT + 10) + b"\r\n\r\n")
        assert answers(sock, 1)[0][0] == 431
    with connect(svc) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert answers(sock, 1)[0][0] == 400
    assert requests.get(f"http://127.0.0.1:{svc.port}/", timeout=5).status_code == 405
