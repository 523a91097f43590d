"""Fault injection: rules that make the emulator misbehave the way real networks and servers do.

A rule matches requests by route, counts them, and fires by probability (its own seeded RNG)
and/or schedule (`after`, `times`, `every`). The server asks `fire()` once per /api/0/ request
and applies the returned rule's kind; `/_emulator/` routes never reach the registry.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass, field

KINDS = ("429", "500", "html500", "502", "503", "reset", "truncate", "badjson", "slow", "badcursor", "revoke", "drift",
         "huge", "hostile", "emptypage", "shortpage", "datefromproxy", "forbidden")
_INT_FIELDS = ("after", "times", "every")
_FLOAT_FIELDS = ("rate", "delay", "retry_after", "offset")


@dataclass
class FaultRule:
    kind: str
    route: str = "*"
    rate: float | None = None
    after: int = 0
    times: int | None = None
    every: int | None = None
    delay: float = 2.0
    retry_after: float | None = None
    offset: float = 0.0  # datefromproxy: seconds the proxy's Date header is ahead (+) or behind (-)
    seen: int = 0
    fired: int = 0
    _rng: random.Random = field(default=None, repr=False, compare=False)

    def matches(self, template: str, path: str) -> bool:
        """Glob (`*`, `?`, `[`) against route template or path; otherwise a substring test."""
        if self.route in ("", "*"):
            return True
        if any(c in self.route for c in "*?["):
            return fnmatch.fnmatchcase(template, self.route) or fnmatch.fnmatchcase(path, self.route)
        return self.route in template or self.route in path

    def should_fire(self) -> bool:
        """Called once per matching request (after `seen` was incremented)."""
        if self.seen <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.every and (self.seen - self.after) % self.every:
            return False
        return self.rate is None or self._rng.random() < self.rate

    def as_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


def parse_spec(spec: str) -> dict:
    """Parse a compact CLI spec like `kind=503,route=*/issues/*,rate=0.2` (a bare word is the kind)."""
    rule: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            key, value = "kind", part
        rule[key.strip()] = value.strip()
    _coerce(rule)  # refuse a bad spec here, where the user typed it
    return rule


def _coerce(rule: dict) -> dict:
    """Validate and type a rule given as strings or JSON values."""
    unknown = set(rule) - {"kind", "route"} - set(_INT_FIELDS) - set(_FLOAT_FIELDS)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    kind = str(rule.get("kind", ""))
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}")
    out: dict = {"kind": kind, "route": str(rule.get("route") or "*")}
    for name in _INT_FIELDS:
        if rule.get(name) is not None:
            out[name] = int(rule[name])
    for name in _FLOAT_FIELDS:
        if rule.get(name) is not None:
            out[name] = float(rule[name])
    if "rate" in out and not 0 <= out["rate"] <= 1:
        raise ValueError("rate must be between 0 and 1")
    return out


class FaultRegistry:
    """Ordered fault rules; the first rule that fires for a request wins."""

    def __init__(self, seed: int = 0):
        self._seed = seed
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._added = 0

    def add(self, kind: str, route: str = "*", **options) -> FaultRule:
        """Add a rule, e.g. `add(kind="503", route="*/issues/*", rate=0.2)`."""
        rule = FaultRule(**_coerce({"kind": str(kind), "route": route, **options}))
        with self._lock:
            rule._rng = random.Random(f"fault:{self._seed}:{self._added}")
            self._added += 1
            self._rules.append(rule)
        return rule

    def add_spec(self, spec: str) -> FaultRule:
        return self.add(**parse_spec(spec))

    def clear(self) -> int:
        with self._lock:
            n = len(self._rules)
            self._rules.clear()
            return n

    def rules(self) -> list[dict]:
        with self._lock:
            return [r.as_json() for r in self._rules]

    def fire(self, template: str, path: str, query: str = "") -> FaultRule | None:
        """Count the request against every matching rule; return the first that fires.

        A `badcursor` rule matches only requests that send a cursor: a server cannot refuse one
        it was not given. A `datefromproxy` rule is never chosen: it shifts the Date header of
        every request it matches, whatever else fires (see `date_offset`)."""
        chosen = None
        has_cursor = "cursor=" in query
        with self._lock:
            for rule in self._rules:
                if (rule.kind == "badcursor" and not has_cursor) or rule.kind == "datefromproxy":
                    continue
                if rule.matches(template, path):
                    rule.seen += 1
                    if chosen is None and rule.should_fire():
                        rule.fired += 1
                        chosen = rule
        return chosen

    def date_offset(self, template: str, path: str) -> float:
        """Seconds to add to the Date header: a reverse proxy whose clock differs from the server's
        sets its own Date (nginx does), while the data and the rate-limit Reset stay on Sentry's."""
        with self._lock:
            return sum(r.offset for r in self._rules if r.kind == "datefromproxy" and r.matches(template, path))


_DRIFT_DROP = ("annotations", "isUnhandled", "numComments", "subscriptionDetails", "lifetime", "stats",
               "shortVersion", "sdk", "packages", "crashFile", "hasSeen", "firstTransactionEvent")
_DRIFT_NULL = ("culprit", "logger", "platform", "assignedTo", "shareId", "priority", "location",
               "dateReleased", "user", "metadata", "firstEvent", "latestRelease", "dist")


def drift(payload):
    """Schema drift as clients meet it: unknown fields, dropped optional fields, nulls, count as int."""
    if isinstance(payload, list):
        return [drift(item) for item in payload]
    if not isinstance(payload, dict):
        return payload
    out = {k: v for k, v in payload.items() if k not in _DRIFT_DROP}
    for key in _DRIFT_NULL:
        if key in out:
            out[key] = None
    if isinstance(out.get("count"), str) and out["count"].isdigit():
        out["count"] = int(out["count"])
    out["x_emulatorDrift"] = {"schemaVersion": 2, "note": "field added by a newer server"}
    return out


# Strings that break careless code: control characters, terminal escapes, NUL, quotes and
# backslashes, SQL, right-to-left and combining marks, astral-plane characters, a long one.
HOSTILE = [
    "'; DROP TABLE events; --",
    'Robert"); DELETE FROM issues WHERE (\'1\'=\'1',
    "nul\x00byte and \x07bell and \x1b[31mred\x1b[0m",
    "line\r\nbreak\ttab \\backslash \"quote\"",
    "\u202eevil\u202c r\u0301e\u0301sume\u0301 \U0001f4a5\U0001f525 \u4e2d\u6587 \ufeffbom",
    "x" * 20000,
]


def hostile(payload, _depth=0):
    """Replace the human-readable strings of every object with hostile ones; ids stay intact."""
    if isinstance(payload, list):
        return [hostile(item, _depth) for item in payload]
    if not isinstance(payload, dict):
        return payload
    out = dict(payload)
    for n, key in enumerate(("title", "message", "culprit", "location", "name")):
        if isinstance(out.get(key), str):
            out[key] = HOSTILE[n % len(HOSTILE)]
    if isinstance(out.get("tags"), list):
        out["tags"] = [dict(t, value=HOSTILE[i % len(HOSTILE)]) if isinstance(t, dict) and t.get("key") not in
                       ("release", "environment", "level") else t for i, t in enumerate(out["tags"])]
    if isinstance(out.get("user"), dict):
        out["user"] = dict(out["user"], username=HOSTILE[2], email=HOSTILE[0])
    return out


def huge(payload, megabytes: float = 4.0):
    """Make the first object of the answer several MB: a breadcrumbs entry as large SDKs send."""
    items = payload if isinstance(payload, list) else [payload]
    if not items or not isinstance(items[0], dict):
        return payload
    crumb = {"type": "default", "category": "console", "level": "info", "message": "y" * 1000}
    big = dict(items[0])
    big["entries"] = list(big.get("entries") or []) + [
        {"type": "breadcrumbs", "data": {"values": [crumb] * int(megabytes * 1000)}}]
    return [big, *items[1:]] if isinstance(payload, list) else big
