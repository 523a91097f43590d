"""Hook events per second the receiver stores: N signed service-hook deliveries POSTed by senders in
processes of their own (as Sentry's are on other machines: their CPU is not the receiver's) to a
receiver over a synced tiny store. The requests are signed and written out before the clock starts and
sent as raw bytes over kept-alive sockets: with `requests` the senders took 1.9 ms of CPU per event,
more than the receiver, on the same 2 cores. The senders' own CPU is printed apart; the clock stops when the writer has committed the last one.
Target: >= 1,000 events/s on a 2-core machine.

    .venv/bin/python benchmarks/bench_hooks.py [N]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from sentry_mirror.emulator import Emulator
from sentry_mirror.emulator.hooks import payload
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.running.config import Config, Source
from sentry_mirror.running.hooks.secrets import HookSecrets
from sentry_mirror.running.hooks.service import HookService, ServeOptions
from sentry_mirror.storage import sidefiles
from sentry_mirror.storage.store import Store

GUID, SECRET = "b" * 32, "c" * 64


def bodies(emu: Emulator, n: int) -> list[bytes]:
    """n distinct events (the world's, with their ids made unique), as Sentry would send them."""
    world = emu.world
    with world.lock:
        base = [payload(world, i, len(i.times) - 1, emu.url) for i in world.served_issues()[:50]]
    out = []
    for k in range(n):
        p = json.loads(json.dumps(base[k % len(base)]))
        p["event"]["eventID"] = p["event"]["id"] = f"{k:032x}"
        out.append(json.dumps(p).encode())
    return out


SENDERS = 4  # processes, each with THREADS connections open at once
THREADS = 4
_WIRE: list[bytes] = []  # the signed requests, whole; forked sender processes inherit them


def wire(port: int, bodies: list[bytes]) -> list[bytes]:
    """Each delivery as the bytes Sentry's sender puts on the wire, signed before the clock starts:
    the signing and HTTP client work happen on Sentry's machines, not the receiver's."""
    stamp = str(int(time.time()))
    return [(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\nX-ServiceHook-GUID: {GUID}\r\nX-ServiceHook-Timestamp: {stamp}\r\n"
             f"X-ServiceHook-Signature: {hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}\r\n\r\n"
             ).encode() + body for body in bodies]


def _send_on(port: int, indexes: list[int]) -> list[int]:
    """One kept-alive connection: each request sent, its answer read, in turn; the statuses."""
    codes = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rb") as answers:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in indexes:
            sock.sendall(_WIRE[k])
            codes.append(int(answers.readline().split()[1]))
            length = 0
            while (line := answers.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            answers.read(length)
    return codes


def send_all(port: int, indexes: list[int]) -> tuple[list[int], float]:
    """One sender process: its share of the deliveries over THREADS connections; statuses and its CPU."""
    cpu = time.process_time()
    with ThreadPoolExecutor(THREADS) as pool:
        codes = [c for part in pool.map(_send_on, [port] * THREADS, [indexes[t::THREADS] for t in range(THREADS)])
                 for c in part]
    return codes, time.process_time() - cpu


def main(n: int = 5000) -> None:
    with Emulator(seed=1, scale="tiny") as emu, tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/bench.duckdb"
        Store(db).close()
        HookSecrets(sidefiles.hook_secrets(db)).add_hook(GUID, SECRET, source=None, project="p", url="http://x/")
        config = Config(db=db, sources=[Source(name="bench", url=emu.url, org=emu.org_slug, token=emu.token)])
        client = SentryClient(emu.url, emu.token)
        data = bodies(emu, n)
        with HookService(config, ServeOptions(port=0), clients={"bench": (client, emu.org_slug)}) as svc:
            _WIRE[:] = wire(svc.port, data)
            parts = [list(range(k, n, SENDERS)) for k in range(SENDERS)]
            started, cpu = time.perf_counter(), time.process_time()
            with ProcessPoolExecutor(SENDERS, mp_context=multiprocessing.get_context("fork")) as pool:
                sent = list(pool.map(send_all, [svc.port] * SENDERS, parts))
            codes = [c for part, _ in sent for c in part]
            senders_cpu = sum(c for _, c in sent)
            answered = time.perf_counter() - started
            while svc.drainer.stored < n:
                svc.drainer.wake.set()
                time.sleep(0.01)
            stored = time.perf_counter() - started
            cpu = time.process_time() - cpu  # this process: the receiver, the writer, the emulator's refresh
            requests_made = svc.refresher.requests
        con = Store(db)
        rows = con.con.execute("SELECT count(*) FROM events").fetchone()[0]
        con.close()
    assert codes.count(202) == n and rows == n, (codes[:3], rows)
    print(f"hooks: {n:,} events answered in {answered:.2f}s ({n / answered:,.0f}/s), stored in {stored:.2f}s "
          f"({n / stored:,.0f} events/s stored); {requests_made} issue-refresh requests; receiver and writer CPU "
          f"{cpu / n * 1000:.2f} ms per event ({n / cpu:,.0f} events per CPU-second); senders' CPU "
          f"{senders_cpu / n * 1000:.2f} ms per event")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
