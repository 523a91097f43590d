"""What each sync costs in requests, by endpoint, at several sizes of organization (issues 22 and 23):
a first sync, a sync with nothing new, and a sync after one new event in one project. Counts are
the emulator's own (exact), so they are the same on any machine; tests/test_sync_cost.py asserts the
targets, this prints the whole picture so the cost of each stream and detail is visible.

The re-read of known issues (`refresh_per_project`) is counted apart: it is the price the user chose
for status freshness, not the cost of learning what changed.

    .venv/bin/python benchmarks/bench_cost.py [--scales small,eight,wide] [--out benchmarks/results/cost.md]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from sentry_mirror.emulator import Emulator
from sentry_mirror.fetching.client import SentryClient
from sentry_mirror.storage.store import Store
from sentry_mirror.syncing.syncer import Syncer
from sentry_mirror.syncing.walker import SyncOptions

TOKEN = "bench-cost-token"
ISSUES = "GET /api/0/organizations/{org}/issues/"


def sync(store: Store, emu: Emulator):
    client = SentryClient(emu.url, emu.token, backoff_base=0.01)
    try:
        return Syncer(store, client, emu.org_slug, options=SyncOptions()).run()
    finally:
        client.close()


def counted(emu: Emulator, store: Store) -> tuple[dict, int]:
    """One sync's requests by endpoint, the known-issue refresh taken out and returned apart."""
    emu.requests.reset()
    result = sync(store, emu)
    if result.status != "ok":
        raise SystemExit(f"sync ended {result.status}: {result.errors}")
    counts = dict(emu.request_counts()["by_endpoint"])
    refresh = (result.streams.get("issue_status") or {}).get("requests", 0)
    counts[ISSUES] = counts.get(ISSUES, 0) - refresh
    return {k: v for k, v in counts.items() if v}, refresh


def one_new_event(emu: Emulator) -> str:
    """The smallest steps of the emulator's clock until one event is new; what else moved with it
    (a step may also bring a release or a deploy, each read at its own cost)."""
    before = emu.truth()["counts"]
    while emu.truth()["counts"]["events"] == before["events"]:
        emu.advance(0.02)
    after = emu.truth()["counts"]
    moved = [f"{after[k] - before[k]:+} {k}" for k in ("events", "issues", "releases", "deploys") if after[k] != before[k]]
    return ", ".join(moved)


def measure(scale: str, seed: int) -> dict:
    with Emulator(seed=seed, scale=scale, token=TOKEN) as emu, tempfile.TemporaryDirectory() as tmp:
        truth = emu.truth()
        store = Store(str(Path(tmp) / "cost.duckdb"))
        try:
            first, first_refresh = counted(emu, store)
            same, same_refresh = counted(emu, store)
            moved = one_new_event(emu)
            one, one_refresh = counted(emu, store)
        finally:
            store.close()
    return {"scale": scale, "projects": len(truth["projects"]), "issues": len(truth["issues"]),
            "events": truth["counts"]["events"], "moved": moved,
            "runs": {"first sync": (first, first_refresh), "nothing new": (same, same_refresh),
                     "one new event": (one, one_refresh)}}


def table(results: list[dict]) -> list[str]:
    lines = ["| scale | projects | issues | first sync | nothing new | one new event | what moved before it |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{sum(c.values()):,} + {refresh:,}" for c, refresh in r["runs"].values()]
        lines.append(f"| {r['scale']} | {r['projects']} | {r['issues']:,} | " + " | ".join(cells) + f" | {r['moved']} |")
    return lines


def by_endpoint(r: dict) -> list[str]:
    runs = r["runs"]
    endpoints = sorted({k for c, _ in runs.values() for k in c})
    lines = [f"| endpoint ({r['scale']}) | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for e in endpoints:
        lines.append(f"| `{e}` | " + " | ".join(str(c.get(e, "")) for c, _ in runs.values()) + " |")
    lines.append("| re-read of known issues | " + " | ".join(str(refresh) for _, refresh in runs.values()) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,eight,wide")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/cost.md")
    args = parser.parse_args()
    results = []
    for scale in args.scales.split(","):
        print(f"measuring {scale}…", file=sys.stderr, flush=True)
        results.append(measure(scale.strip(), args.seed))
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = [f"Requests per sync (emulator seed {args.seed}; Python {platform.python_version()}; {when}).",
           "Each cell: requests to learn what changed + requests re-reading known issues.", ""]
    out += table(results) + [""]
    out += by_endpoint(results[0])
    text = "\n".join(out) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
