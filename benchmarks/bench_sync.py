"""How close the mirror is to its limits: prints figures and writes them, asserts nothing.

    .venv/bin/python benchmarks/bench_sync.py                       # small (make bench)
    .venv/bin/python benchmarks/bench_sync.py --scale medium --report-events 10000000

For one emulator scale: (a) the first sync, (b) a sync after the emulator's clock moves a day,
(c) a sync with nothing new, (c2) one after the smallest step of the clock that brings an event, (d) a first sync under `--rate-limit R` — each run as the `sync`
command in a process of its own (its peak RSS its own VmHWM, see PeakRss; requests, retries and 429s from its
`--json` summary; requests also counted by the emulator). Beside the requests made stands the
minimum the data needs: every list read in pages of 100 (events by project, the cheapest listing).
Then ingest-only (recorded full-payload event pages replayed into a fresh store, no HTTP), store
bytes per event, and report latencies on a synthetic store (bench_reports.py). Results go to
benchmarks/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sentry_mirror.emulator import Emulator  # noqa: E402
from sentry_mirror.fetching import rawpage  # noqa: E402
from sentry_mirror.storage.store import MEMORY_LIMIT, Store  # noqa: E402
from sentry_mirror.syncing.buffer import WriteBuffer  # noqa: E402
from sentry_mirror.syncing.event_walks import PROJECT_WALKS  # noqa: E402

TOKEN = "sntryu_" + "b" * 64
PAGE = 100
RESULTS = Path(__file__).resolve().parent / "results"


class PeakRss:
    """The peak resident memory of a running process, from its VmHWM, read every 20 ms until it
    exits. Not its rusage: Linux carries the maximum RSS across exec, so a child's ru_maxrss is at
    least the RSS of the parent that forked it (this benchmark, holding an emulator: the syncer
    seemed to peak at 434 MB when it was the benchmark at that size)."""

    def __init__(self, pid: int):
        self.kb, self._done = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(pid,), daemon=True)
        self._thread.start()

    def _poll(self, pid: int) -> None:
        while not self._done.is_set():
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            self.kb = max(self.kb, int(line.split()[1]))
            except OSError:
                return
            self._done.wait(0.02)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_sync(emu: Emulator, db: Path) -> dict:
    """One `sentry-mirror sync --json` in its own process."""
    before = emu.request_counts()["total"]
    env = dict(os.environ, SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull)
    cmd = [sys.executable, "-m", "sentry_mirror.cli", "sync", "--url", emu.url, "--org", emu.org_slug,
           "--db", str(db), "--json"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        peak = PeakRss(proc.pid)
        _, _, usage = os.wait4(proc.pid, 0)  # reaps it: its own CPU time, not the largest child's so far
        seconds = time.perf_counter() - start
        peak.stop()
        proc.returncode = 0
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    summary = json.loads(text) if text.strip().startswith("{") else {"status": "failed", "sources": [{}]}
    source = summary["sources"][0] if summary.get("sources") else {}
    return {"seconds": round(seconds, 2), "requests": emu.request_counts()["total"] - before,
            "retries": source.get("retries"), "rate_limited": source.get("rate_limited"),
            "status": summary.get("status"), "events_written": (source.get("rows") or {}).get("events", 0),
            "refresh_requests": ((source.get("streams") or {}).get("issue_status") or {}).get("requests", 0),
            # the slowly changing streams read because their cadence came due (not because of the change)
            "cadenced_requests": sum(((source.get("streams") or {}).get(name) or {}).get("requests", 0)
                                     for name in CADENCED),
            "peak_rss_mb": round(peak.kb / 1024, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "stderr": errors.strip()[-300:]}


# Streams read whole on a cadence (a day by default). The release lists are left out: their newest
# pages are read every sync, and the stream's figures do not split the two.
CADENCED = ("organization", "projects", "teams", "members", "environments", "project_details")


def one_new_event(emu: Emulator) -> tuple[int, float]:
    """Move the emulator's clock by the smallest steps until at least one event is new; how many
    are, and how many hours the clock moved (in a small world, long enough for cadences to pass)."""
    before, hours = emu.truth()["counts"]["events"], 0.0
    step = 0.02 if before < 10_000 else 0.002  # a busy world brings more than one event in 72 s
    while emu.truth()["counts"]["events"] == before:
        emu.advance(step)
        hours += step
    return emu.truth()["counts"]["events"] - before, round(hours, 2)


def minimum_requests(emu: Emulator) -> int:
    """Every list in pages of 100: organization, projects, releases (2 statuses), teams, members,
    environments, issues, events by project, deploys per release, stats (one stats_v2 request grouped
    by project, which holds the organization's too); per project its tag key list, the values of each key
    (Sentry lists at most 1,000), its users and its service hooks; per issue its hashes."""
    t = emu.truth()
    c = t["counts"]
    pages = lambda n: max(1, math.ceil(n / PAGE))  # noqa: E731
    by_project: dict[str, int] = {}
    for issue in t["issues"].values():
        by_project[issue["project_id"]] = by_project.get(issue["project_id"], 0) + issue["count"]
    n = 1 + pages(c["projects"]) + pages(c["releases_open"]) + pages(c["releases_archived"]) + 3
    n += pages(c["issues"]) + sum(pages(v) for v in by_project.values())
    n += sum(pages(len(v)) for v in t["deploys"].values())
    n += 1
    for project in t["projects"]:
        values = t["tag_values"].get(project, {})
        # its tag key list, every key's values, its users and its service hooks
        n += 1 + sum(pages(min(1000, len(v))) for v in values.values()) + pages(len(t["users"].get(project, []))) + 1
    n += sum(pages(len(h)) for h in emu.world.truth_hashes().values())  # each issue's hashes
    return n


def checked_pages(bodies: list[bytes], threads: int = PROJECT_WALKS, ahead: int = 8):
    """Each body checked by rawpage.inspect on `threads` worker threads, a few pages ahead of the
    writer, in order: as the syncer's fetch threads check the pages they read (PROJECT_WALKS walks
    at once, a queue of `ahead` pages)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        window: deque = deque()
        for body in bodies:
            window.append(pool.submit(rawpage.inspect, body))
            if len(window) >= ahead:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def storage_floor(bodies: list[bytes], counts: list[int], folder: Path, batch_events: int = 1000) -> dict:
    """What the storage engine alone costs on this machine: each page split into its objects (one
    DuckDB parse) and the objects kept as the raw column is kept (zstd), in batches of the
    WriteBuffer's size, each batch its own commit. No columns, no derived tables, no checks: no
    ingest that keeps the payloads can be faster than this."""
    con = duckdb.connect(str(folder / "floor.duckdb"), config={"memory_limit": MEMORY_LIMIT,
                                                              "preserve_insertion_order": False})
    con.execute("CREATE TABLE raw_events (raw JSON USING COMPRESSION zstd)")
    texts = [b.decode() for b in bodies]
    start, i = time.perf_counter(), 0
    while i < len(texts):
        n, j = 0, i
        while j < len(texts) and n < batch_events:
            n += counts[j]
            j += 1
        con.execute("BEGIN")
        con.execute("CREATE OR REPLACE TEMP TABLE _incoming (p VARCHAR)")
        con.executemany("INSERT INTO _incoming VALUES (?)", [[t] for t in texts[i:j]])
        con.execute("""INSERT INTO raw_events SELECT unnest(from_json(p, '["JSON"]')) FROM _incoming""")
        con.execute("COMMIT")
        i = j
    stored = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    con.close()
    seconds = time.perf_counter() - start
    return {"events": stored, "seconds": round(seconds, 2), "events_per_second": round(stored / seconds)}


def ingest_only(emu: Emulator, folder: Path, limit: int = 20_000) -> dict:
    """Full-payload event pages (100 per page, as a project walk reads them) recorded from the
    emulator as bytes, then replayed with no HTTP: each page checked as the client checks it
    (rawpage.inspect, on two threads as the fetch threads do) and written through the syncer's
    WriteBuffer into a fresh store. Then the same pages through `storage_floor`."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    bodies, counts = [], []
    for project in emu.truth()["projects"]:
        url = f"{emu.url}/api/0/projects/{emu.org_slug}/{project}/events/?full=true&per_page=100&statsPeriod=90d"
        while url and sum(counts) < limit:
            resp = s.get(url)
            bodies.append(resp.content)
            counts.append(rawpage.inspect(resp.content).count)
            nxt = [part for part in resp.headers.get("Link", "").split(",") if 'rel="next"' in part]
            url = nxt[0].split(";")[0].strip(" <>") if nxt and 'results="true"' in nxt[0] else None
    store = Store(str(folder / "ingest.duckdb"))
    buffer = WriteBuffer(store, "bench")
    cpu, start = time.process_time(), time.perf_counter()
    for page in checked_pages(bodies):
        buffer.add_page("events", page)
        buffer.maybe_flush()
    buffer.flush()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    stored = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    store.close()
    profile = {k: round(v, 3) for k, v in sorted(store.statement_seconds.items(), key=lambda kv: -kv[1])}
    total = sum(counts)
    return {"events": total, "stored": stored, "bytes_per_event": round(sum(map(len, bodies)) / max(1, total)),
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "events_per_second": round(total / seconds),
            "seconds_by_statement": profile, "storage_floor": storage_floor(bodies, counts, folder)}


def bench(scale: str, seed: int, rate_limit: int, report_events: int) -> dict:
    out: dict = {"scale": scale, "seed": seed, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with Emulator(seed=seed, scale=scale, token=TOKEN) as emu:
            counts = emu.truth()["counts"]
            out["entities"] = {k: counts[k] for k in ("projects", "issues", "events", "releases")}
            out["minimum_requests"] = minimum_requests(emu)
            db = folder / "bench.duckdb"
            out["first_sync"] = run_sync(emu, db)
            out["store_bytes_per_event"] = round(db.stat().st_size / max(1, counts["events"]))
            out["day_changes"] = {k: v for k, v in emu.advance(24).items() if isinstance(v, int)}
            out["after_a_day"] = run_sync(emu, db)
            out["nothing_new"] = run_sync(emu, db)
            out["new_events"], out["new_event_hours"] = one_new_event(emu)
            out["one_new_event"] = run_sync(emu, db)
            con = duckdb.connect(str(db), read_only=True)
            out["level_with_truth"] = con.execute("SELECT count(*) FROM events").fetchone()[0] == \
                emu.truth()["counts"]["events"]
            con.close()
            out["ingest_only"] = ingest_only(emu, folder)
        with Emulator(seed=seed, scale=scale, token=TOKEN, rate_limit=rate_limit) as limited:
            run = run_sync(limited, folder / "limited.duckdb")
            run["rate_limit"] = rate_limit
            run["floor_seconds"] = round(run["requests"] / rate_limit, 2)
            out["rate_limited_first_sync"] = run
    if report_events:
        try:
            from bench_reports import build_synthetic_store, time_reports
        except ImportError:
            out["reports"] = "not available"
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / "reports.duckdb")
                built = build_synthetic_store(path, report_events)
                out["reports"] = {"events": report_events, "store_mb": round(built["bytes"] / 1e6),
                                  "latencies": time_reports(path)}
    return out


def markdown(r: dict) -> str:
    first, day, none, lim = r["first_sync"], r["after_a_day"], r["nothing_new"], r["rate_limited_first_sync"]
    one = r.get("one_new_event")  # runs from before it was measured have none
    e = r["entities"]
    target = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    lines = [
        f"Scale `{r['scale']}` (seed {r['seed']}): {e['projects']} projects, {e['issues']:,} issues, "
        f"{e['events']:,} events, {e['releases']} releases. {r['machine']}; {r['when']}.",
        "",
        "| run | wall s | syncer CPU s | requests | minimum | events/s | peak RSS MB | retries | 429s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| (a) first sync | {first['seconds']} | {first['cpu_seconds']} | {first['requests']:,} | "
        f"{r['minimum_requests']:,} | {first['events_written'] / first['seconds']:,.0f} | {first['peak_rss_mb']} | "
        f"{first['retries']} | {first['rate_limited']} |",
        f"| (b) after a day | {day['seconds']} | {day['cpu_seconds']} | {day['requests']:,} | | | {day['peak_rss_mb']} | "
        f"{day['retries']} | {day['rate_limited']} |",
        f"| (c) nothing new | {none['seconds']} | {none['cpu_seconds']} | {none['requests']:,} | | | "
        f"{none['peak_rss_mb']} | {none['retries']} | {none['rate_limited']} |",
        *([f"| (c2) {r['new_events']} new event | {one['seconds']} | {one['cpu_seconds']} | {one['requests']:,} | | | "
           f"{one['peak_rss_mb']} | {one['retries']} | {one['rate_limited']} |"] if one else []),
        f"| (d) first sync, rate limit {lim['rate_limit']}/s | {lim['seconds']} | {lim['cpu_seconds']} | "
        f"{lim['requests']:,} | floor {lim['floor_seconds']} s | | {lim['peak_rss_mb']} | {lim['retries']} | "
        f"{lim['rate_limited']} |",
        "",
        f"- Ingest only (recorded pages of 100 full-payload events, {r['ingest_only']['bytes_per_event']:,} bytes each, "
        f"checked on two threads as the fetch threads do, and written into a fresh store, no HTTP): {r['ingest_only']['events_per_second']:,} events/s "
        f"({r['ingest_only']['events']:,} events in {r['ingest_only']['seconds']} s, "
        f"{r['ingest_only']['cpu_seconds']} s CPU). Target 20,000: {target(r['ingest_only']['events_per_second'] >= 20000)}.",
        f"  Where the ingest time goes (seconds): " + ", ".join(
            f"{k} {v}" for k, v in list(r['ingest_only'].get('seconds_by_statement', {}).items())[:8]) + ".",
        *([f"  Storage floor, the same pages kept as raw payloads only (one parse, zstd, the same batches and "
           f"commits; no columns, derived tables or checks): {floor['events_per_second']:,} events/s."]
          if (floor := r['ingest_only'].get('storage_floor')) else []),
        f"- Syncer CPU per event stored, first sync: {first['cpu_seconds'] / max(1, first['events_written']) * 1e6:,.0f} µs "
        f"(HTTP, checks and store; the emulator runs in another process).",
        f"- First-sync requests against the minimum: {first['requests'] / r['minimum_requests']:.2f}x "
        f"(target within 2% plus a constant per project: {target(first['requests'] <= r['minimum_requests'] * 1.02 + 10 * e['projects'])}).",
        f"- No-change sync: {none['requests']} requests, {none['requests'] / e['projects']:.1f} per project."
        if not one else
        f"- No-change sync: {none['requests']} requests, {none['requests'] - none['refresh_requests']} besides "
        f"the known-issue refresh ({none['refresh_requests']}; target 4 or fewer: "
        f"{target(none['requests'] - none['refresh_requests'] <= 4)}). After {r['new_events']} new event: "
        f"{one['requests']} requests, {one['requests'] - one['refresh_requests']} besides the refresh"
        + (f", {one['requests'] - one['refresh_requests'] - one.get('cadenced_requests', 0)} besides the "
           f"{one['cadenced_requests']} of streams whose cadence came due while the clock moved "
           f"{r.get('new_event_hours')} h to bring it" if one.get('cadenced_requests') else "")
        + f" (target 8 or fewer: {target(one['requests'] - one['refresh_requests'] - one.get('cadenced_requests', 0) <= 8)}).",
        f"- Peak RSS of the syncer, the largest of the four runs: {max(x['peak_rss_mb'] for x in (first, day, none, lim))} MB "
        f"(target under 300 MB: {target(max(x['peak_rss_mb'] for x in (first, day, none, lim)) < 300)}).",
        f"- Under a rate limit of {lim['rate_limit']}/s: {lim['seconds']} s against a floor of {lim['floor_seconds']} s "
        f"({lim['seconds'] / max(lim['floor_seconds'], 0.01):.2f}x; target within 15%: "
        f"{target(lim['seconds'] <= lim['floor_seconds'] * 1.15)}), {lim['rate_limited']} 429s met, status {lim['status']}.",
        f"- Store: {r['store_bytes_per_event']:,} bytes per event. Level with the emulator's truth: "
        f"{'yes' if r['level_with_truth'] else '**no**'}.",
    ]
    reports = r.get("reports")
    if isinstance(reports, dict):
        lines += ["", f"Report latencies on a synthetic store of {reports['events']:,} events "
                      f"({reports['store_mb']:,} MB), median of 3, fresh read-only connection each:", "",
                  "| report | seconds |", "|---|---|"]
        lines += [f"| `{label}` | {f['seconds']} |" for label, f in reports["latencies"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "eight", "medium", "wide", "large"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate-limit", type=int, default=20, help="requests per second for run (d)")
    parser.add_argument("--report-events", type=int, default=1_000_000,
                        help="events in the synthetic report store (0 to skip; the target is stated for 10,000,000)")
    parser.add_argument("--ingest-only", action="store_true", help="only the ingest-only figure (prints it, writes nothing)")
    parser.add_argument("--render", action="store_true", help="re-render results/*.md from their .json and stop")
    args = parser.parse_args()
    if args.render:
        for path in sorted(RESULTS.glob("*.json")):
            path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
        return
    if args.ingest_only:
        with tempfile.TemporaryDirectory() as tmp, Emulator(seed=args.seed, scale=args.scale, token=TOKEN) as emu:
            print(json.dumps(ingest_only(emu, Path(tmp)), indent=2))
        return
    result = bench(args.scale, args.seed, args.rate_limit, args.report_events)
    RESULTS.mkdir(exist_ok=True)
    text = markdown(result)
    for name in ("latest", args.scale):  # the newest run, and the newest at this scale
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(text)
    print(text)
    print(f"written to {RESULTS / 'latest.json'} and latest.md (and {args.scale}.json, {args.scale}.md)")


if __name__ == "__main__":
    main()
