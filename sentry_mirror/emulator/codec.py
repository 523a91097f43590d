"""Seeded hashing and event ids: ids look random yet map back to (issue index, seq) with no index."""

from __future__ import annotations

from .model import SEQ_BITS

M64 = (1 << 64) - 1
M128 = (1 << 128) - 1


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


class EventCodec:
    """Bijective (issue index, seq) <-> 32-hex event id, so ids look random yet need no index."""

    _M1 = 0x9E3779B97F4A7C15F39CC0605CEDC835
    _M2 = 0xD6E8FEB86659FD93C13A9BB4D5F3C1E1

    def __init__(self, seed: int):
        self._key = (mix64(seed) << 64) | mix64(seed ^ 0x5EED)
        self._inv1 = pow(self._M1, -1, 1 << 128)
        self._inv2 = pow(self._M2, -1, 1 << 128)

    def encode(self, issue_idx: int, seq: int) -> str:
        x = ((issue_idx << SEQ_BITS) | seq) ^ self._key
        x = (x * self._M1) & M128
        x ^= x >> 64
        x = (x * self._M2) & M128
        x ^= x >> 64
        x = (x * self._M1) & M128
        return f"{x:032x}"

    def decode(self, event_id: str) -> tuple[int, int] | None:
        if len(event_id) != 32:
            return None
        try:
            x = int(event_id, 16)
        except ValueError:
            return None
        x = (x * self._inv1) & M128
        x ^= x >> 64
        x = (x * self._inv2) & M128
        x ^= x >> 64
        x = ((x * self._inv1) & M128) ^ self._key
        return x >> SEQ_BITS, x & ((1 << SEQ_BITS) - 1)
