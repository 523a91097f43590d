"""The emulated organization: one class composed of modules that each do one job, each one
building only on those before it: clock (virtual time), served (derived event attributes,
aggregates, lookups), generate (the world a seed makes), mutations (changes made through the API),
advance (the organization living on as the clock moves), truth (ground truth). World itself only
sets up the state; the records it holds are in model.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime

from .advance import Advance
from .codec import EventCodec, mix64
from .model import SCALES
from .truth import Truth

__all__ = ["SCALES", "World"]


class World(Advance, Truth):
    """Ground truth of one emulated Sentry organization, advanced by a virtual clock."""

    def __init__(self, seed: int = 1, scale: str = "tiny", now: datetime | None = None,
                 deletions: bool = False, merges: bool = False, slug: str = "acme", index: int = 0):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
        self.seed = seed
        # Another organization of the same server (emulator/regions.py): its own slug, and ids of
        # its own, as Sentry's ids are unique across organizations.
        self.slug, self.index = slug, index
        self.seen_in_seconds = False  # render issues' firstSeen/lastSeen cut to the second (Emulator)
        self.scale_name = scale
        self.scale = SCALES[scale]
        self._start_clock(now)
        self.edits = 0  # changes made through the API (PUT/DELETE/POST); also invalidates cached searches
        self.hooks: dict[int, list[dict]] = {}  # project idx -> service hooks created through the API
        self.hooks_removed: set[str] = set()  # ids of generated hooks deleted through the API
        self.lock = threading.RLock()
        self.codec = EventCodec(seed)
        self._hash_key = mix64(seed * 7919 + 17)
        self.deletions = deletions  # off by default: advance() then never deletes issues
        self.deleted = []
        self.merges = merges  # off by default: advance() then never merges issues
        self.merged = []
        self.cache = {}
        self._generate(random.Random(seed))
