"""Hook events per second the receiver stores: N signed service-hook deliveries POSTed by senders in
processes of their own (as Sentry's are on other machines: their CPU is not the receiver's) to a
receiver over a synced tiny store; the clock stops when the writer has committed the last one.
Target: >= 1,000 events/s on a 2-core machine.

    .venv/bin/python benchmarks/bench_hooks.py [N]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import requests

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


def send_all(url: str, bodies: list[bytes]) -> list[int]:
    """One sender process: its share of the deliveries over THREADS kept-alive connections."""
    local = threading.local()

    def send(body: bytes) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session.post(url, data=body, timeout=30, headers={
            "Content-Type": "application/json", "X-ServiceHook-GUID": GUID,
            "X-ServiceHook-Timestamp": str(int(time.time())),
            "X-ServiceHook-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}).status_code

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(send, bodies))


def main(n: int = 5000) -> None:
    with Emulator(seed=1, scale="tiny") as emu, tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/bench.duckdb"
        Store(db).close()
        HookSecrets(sidefiles.hook_secrets(db)).add_hook(GUID, SECRET, source=None, project="p", url="http://x/")
        config = Config(db=db, sources=[Source(name="bench", url=emu.url, org=emu.org_slug, token=emu.token)])
        client = SentryClient(emu.url, emu.token)
        data = bodies(emu, n)
        with HookService(config, ServeOptions(port=0), clients={"bench": (client, emu.org_slug)}) as svc:
            url = f"http://127.0.0.1:{svc.port}/"
            parts = [data[k::SENDERS] for k in range(SENDERS)]
            started, cpu = time.perf_counter(), time.process_time()
            with ProcessPoolExecutor(SENDERS) as pool:
                codes = [c for part in pool.map(send_all, [url] * SENDERS, parts) for c in part]
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
          f"{cpu / n * 1000:.2f} ms per event ({n / cpu:,.0f} events per CPU-second)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
