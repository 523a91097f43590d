"""Soak: `sentry-mirror sync` killed again and again under random faults while the organization
changes, then one clean sync, compared with the emulator's ground truth.

    .venv/bin/python benchmarks/soak.py --seed 1 --scale small --kills 40      # make soak KILLS=40 SCALE=small

The emulator runs in this process on 127.0.0.1 (issues deleted and merged as its clock moves);
each sync is a subprocess. Every round sets new fault rules through the control API
(POST /_emulator/faults: the retried kinds), sometimes moves the clock on (POST /_emulator/advance),
starts a sync and SIGKILLs it at a random instant: after a random delay, or once the emulator has
answered a random number of requests. Everything random comes from --seed. The loop stops after
--kills kills or --max-seconds; then the faults are cleared, one sync runs to completion, and the
store is compared with the truth. Prints plain figures; exits 1 if anything is lost, doubled,
missing, extra or wrong.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sentry_mirror.emulator import Emulator  # noqa: E402
from sentry_mirror.emulator.faults import KINDS  # noqa: E402

TOKEN = "sntryu_" + "5" * 64
# Faults the client retries, pages that come back empty or short, and a proxy's Date header (where the
# emulator has them).
WANTED = ("429", "500", "502", "503", "reset", "truncate", "badjson", "badcursor", "drift", "slow",
          "emptypage", "shortpage", "datefromproxy")
FAULTS = tuple(k for k in WANTED if k in KINDS)
RETENTION = timedelta(days=90)
FAILURES = ("events lost", "events doubled", "events under the wrong issue", "events extra",
            "issues missing", "issues extra", "issues with a wrong status", "issues with a wrong count",
            "releases missing")


def fault_rule(rng: random.Random, kind: str) -> dict:
    """One rule of `kind` at a modest random rate, so that a sync can still get somewhere."""
    rule: dict = {"kind": kind, "rate": round(rng.uniform(0.02, 0.12), 3)}
    if kind == "slow":
        rule["delay"] = round(rng.uniform(0.05, 0.6), 2)
    elif kind == "429":
        rule["retry_after"] = round(rng.uniform(0.05, 0.5), 2)
    elif kind == "badcursor":
        rule = {"kind": kind, "after": rng.randint(1, 20), "times": 1}
    elif kind == "datefromproxy":  # a proxy's Date header, behind or ahead of Sentry's clock
        rule = {"kind": kind, "offset": rng.choice([-3 * 86400, -7200, 7200, 3 * 86400])}
    return rule


def set_faults(url: str, rng: random.Random) -> list[str]:
    """Replace the fault rules with one to three random ones; returns their kinds."""
    requests.delete(url + "/_emulator/faults", timeout=10).raise_for_status()
    kinds = rng.sample(FAULTS, rng.randint(1, min(3, len(FAULTS))))
    for kind in kinds:
        requests.post(url + "/_emulator/faults", json=fault_rule(rng, kind), timeout=10).raise_for_status()
    return kinds


def sync_cmd(url: str, org: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "sentry_mirror", "sync", "--url", url, "--org", org, "--db", str(db), "-q"]


def sync_env() -> dict:
    env = dict(os.environ, SENTRY_AUTH_TOKEN=TOKEN, SENTRYCLIRC=os.devnull)
    env.pop("SENTRY_MIRROR_CONFIG", None)
    return env


def served_requests(url: str) -> int:
    return requests.get(url + "/_emulator/requests", timeout=10).json()["total"]


def run_until_killed(emu: Emulator, db: Path, rng: random.Random, typical: dict, max_delay: float,
                     deadline: float) -> tuple[str, float]:
    """Start a sync and SIGKILL it at a random instant: a delay within the time a completed sync
    took (at most `max_delay`), or a count of requests served within what a completed sync made.
    Returns ("killed" | "ok" | "exit N", seconds it ran)."""
    by_requests = rng.random() < 0.5
    delay = rng.uniform(0.2, max(0.5, min(max_delay, typical["seconds"] * 1.1)))
    budget = rng.randint(1, max(2, int(typical["requests"] * 1.1)))
    start_requests = served_requests(emu.url)
    started = time.monotonic()
    said = db.parent / (db.name + ".stderr")  # a file, not a pipe: a pipe left unread could stall the sync
    with open(said, "w") as err:
        proc = subprocess.Popen(sync_cmd(emu.url, emu.org_slug, db), env=sync_env(),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline or (now - started >= delay if not by_requests
                                  else served_requests(emu.url) - start_requests >= budget):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed", time.monotonic() - started
            time.sleep(0.02)  # polling the child and the emulator's counter; nothing waits on this
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.monotonic() - started
    if proc.returncode == 2:  # refused (another organization's store, a bad flag): no run will do better
        lines = [x for x in said.read_text().splitlines() if x.strip()]
        raise SystemExit(f"a sync was refused (exit 2): {lines[-1] if lines else '?'}")
    if proc.returncode == 0:
        typical["seconds"] = max(typical["seconds"] * 0.5, seconds)
        typical["requests"] = max(10, served_requests(emu.url) - start_requests)
    return ("ok" if proc.returncode == 0 else f"exit {proc.returncode}"), seconds


def clean_sync(emu: Emulator, db: Path, timeout: float) -> None:
    requests.delete(emu.url + "/_emulator/faults", timeout=10).raise_for_status()
    out = subprocess.run(sync_cmd(emu.url, emu.org_slug, db), env=sync_env(), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"the clean sync failed (exit {out.returncode}): {out.stderr[-2000:]}")


def compare(emu: Emulator, db: Path) -> dict[str, int]:
    """The store against the emulator's truth, as counts (see FAILURES), plus what is kept on purpose."""
    truth = emu.truth()
    rows = requests.get(emu.url + "/_emulator/truth/event_rows", timeout=120).json()["rows"]
    want = {r[0]: r[1] for r in rows}
    now = datetime.strptime(truth["now"][:19], "%Y-%m-%dT%H:%M:%S")
    con = duckdb.connect(str(db), read_only=True)
    try:
        events = con.execute("SELECT e.event_id, e.issue_id, e.date_created, i.deleted_at IS NOT NULL FROM events e "
                             "LEFT JOIN issues i ON i.source = e.source AND i.id = e.issue_id").fetchall()
        issues = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT id, status, times_seen, last_seen FROM issues WHERE deleted_at IS NULL").fetchall()}
        releases = {r[0] for r in con.execute("SELECT version FROM releases").fetchall()}
        deleted = con.execute("SELECT count(*) FROM issues WHERE deleted_at IS NOT NULL").fetchone()[0]
    finally:
        con.close()
    stored: dict[str, str] = {}
    kept_deleted = aged = extra = 0
    for event_id, issue_id, created, of_deleted in events:
        stored.setdefault(event_id, issue_id)
        if event_id not in want:
            if of_deleted:
                kept_deleted += 1
            elif created is not None and created < now - RETENTION:
                aged += 1
            else:
                extra += 1
    live = {i for i, (_, _, last) in issues.items() if last is None or last >= now - RETENTION}
    t_issues = truth["issues"]
    common = live & set(t_issues)
    return {
        "events in truth": len(want), "events stored": len(events),
        "events lost": len(set(want) - set(stored)),
        "events doubled": len(events) - len(stored),
        "events under the wrong issue": sum(1 for e, i in want.items() if e in stored and stored[e] != i),
        "events extra": extra,
        "events kept from deleted or merged issues": kept_deleted, "events kept past retention": aged,
        "issues in truth": len(t_issues), "issues marked deleted": deleted,
        "issues missing": len(set(t_issues) - live), "issues extra": len(live - set(t_issues)),
        "issues with a wrong status": sum(1 for i in common if issues[i][0] != t_issues[i]["status"]),
        "issues with a wrong count": sum(1 for i in common if issues[i][1] != t_issues[i]["count"]),
        "releases missing": len(set(truth["releases"]) - releases),
    }


def soak(args: argparse.Namespace, db: Path) -> dict[str, int]:
    rng = random.Random(args.seed)
    started = time.monotonic()
    deadline = started + args.max_seconds
    figures = {"kills": 0, "runs": 0, "runs completed": 0, "runs failed": 0, "advances": 0, "hours advanced": 0,
               "issues deleted": 0, "issues merged": 0}
    typical = {"seconds": args.max_delay, "requests": 200}
    with Emulator(seed=args.seed, scale=args.scale, token=TOKEN, deletions=True, merges=True) as emu:
        while figures["kills"] < args.kills and time.monotonic() < deadline:
            if figures["runs"] and rng.random() < args.advance_chance:
                hours = rng.choice((1, 3, 6, 12, 24))
                changes = requests.post(emu.url + "/_emulator/advance", json={"hours": hours}, timeout=60).json()
                figures["advances"] += 1
                figures["hours advanced"] += hours
                figures["issues deleted"] += changes.get("deleted_issues", 0)
                figures["issues merged"] += changes.get("merged_issues", 0)
            kinds = set_faults(emu.url, rng)
            outcome, seconds = run_until_killed(emu, db, rng, typical, args.max_delay, deadline)
            figures["runs"] += 1
            if outcome == "killed":
                figures["kills"] += 1
            elif outcome == "ok":
                figures["runs completed"] += 1
            else:
                figures["runs failed"] += 1
            if args.verbose:
                print(f"run {figures['runs']}: {outcome} after {seconds:.1f} s under {', '.join(kinds)}", flush=True)
        clean_sync(emu, db, timeout=max(120.0, args.max_seconds))
        figures.update(compare(emu, db))
    figures["seconds"] = round(time.monotonic() - started)
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="Prints its figures (kills, runs, events lost, doubled, ...) and exits 1 "
                                       "when anything was lost, doubled or wrong, else 0.")
    p.add_argument("--seed", type=int, default=1, help="seeds the world, the faults and the kill instants")
    p.add_argument("--scale", default="small", choices=("tiny", "small", "medium", "large"))
    p.add_argument("--kills", type=int, default=40, help="stop after this many SIGKILLs")
    p.add_argument("--max-seconds", type=float, default=1800, help="stop killing after this long")
    p.add_argument("--max-delay", type=float, default=30.0,
                   help="kill within this many seconds at most (and within the time a completed sync took)")
    p.add_argument("--advance-chance", type=float, default=0.4, help="chance of moving the clock on before a run")
    p.add_argument("--db", type=Path, default=None,
                   help="a new store file to keep afterwards (a store of another organization is refused); "
                        "None: a temporary one")
    p.add_argument("-v", "--verbose", action="store_true", help="a line per run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        figures = soak(args, args.db or Path(tmp) / "soak.duckdb")
    print(f"soak: seed {args.seed}, scale {args.scale}, faults from {', '.join(FAULTS)}")
    for name, value in figures.items():
        print(f"  {name}: {value:,}")
    bad = {k: figures[k] for k in FAILURES if figures[k]}
    print("FAILED: " + ", ".join(f"{k} {v:,}" for k, v in bad.items()) if bad else "level with the truth")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
