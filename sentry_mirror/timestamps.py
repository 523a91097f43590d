"""Times as the store keeps them: naive datetimes in UTC.

Sentry writes ISO 8601 with `Z`, with an offset, or with neither (taken as UTC), to the second or the
microsecond; one parser reads them all, so that a watermark, a page's newest event and a report's
`--since` agree on what a time means.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def parse_ts(value: Any) -> datetime | None:
    """An ISO 8601 time as naive UTC; None when it is not one."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        return naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def naive_utc(moment: datetime | None) -> datetime | None:
    """An aware time in UTC, without its zone; a naive one as it is (it is UTC already)."""
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def fmt_ts(value: datetime | None) -> str | None:
    """The form the mirror sends and keeps: microseconds and `Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None
