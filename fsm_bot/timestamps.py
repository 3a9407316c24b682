"""Timestamps as the journal and the files write them: ISO-8601 UTC text of ms since the epoch, and back;
and a session's id, which is its mode and start."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache


@lru_cache(maxsize=64)
def _day(days: int) -> str:
    return datetime.fromtimestamp(days * 86400, timezone.utc).strftime("%Y-%m-%d")


def _clock(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of the second ``ms`` falls in (UTC): the day's date, then the time by arithmetic."""
    days, secs = divmod(ms // 1000, 86400)
    return f"{_day(days)}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"


@lru_cache(maxsize=256)
def iso(ms: int) -> str:
    """ISO-8601 UTC with milliseconds: the journal's and the files' timestamps."""
    return f"{_clock(ms)}.{ms % 1000:03d}Z"


@lru_cache(maxsize=256)
def iso_seconds(ms: int) -> str:
    return f"{_clock(ms)}Z"


def session_id(mode: str, start_ms: int, seed: int) -> str:
    """In ``--sim`` a function of the start and the seed, so two runs with one seed write the same bytes."""
    stamp = f"{mode}-{datetime.fromtimestamp(start_ms / 1000, timezone.utc):%Y%m%dT%H%MZ}"
    return f"{stamp}-s{seed}" if mode == "sim" else stamp


def parse_iso(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
