"""The virtual clock: a world's time starts at its anchor and only advance() moves it on."""

from __future__ import annotations

from datetime import datetime, timezone

from .model import RETENTION_MS


class Clock:
    """The world's virtual time (ms since the epoch, UTC) and the retention window it implies."""

    anchor_ms: int  # when the world was generated: generated history ends here
    now_ms: int
    step: int  # number of advance() calls; also invalidates cached search results

    def _start_clock(self, now: datetime | None) -> None:
        """Start at `now`, by default the current hour (a naive datetime is taken as UTC)."""
        now = now or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        self.anchor_ms = int(now.timestamp() * 1000)
        self.now_ms = self.anchor_ms
        self.step = 0

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, timezone.utc)

    @property
    def retention_ms(self) -> int:
        return self.now_ms - RETENTION_MS
