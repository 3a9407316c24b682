"""``fsm-bot data binance``: BTCUSDT 1-minute candles over [first, end) into a candle file.

Sources, in the span's order:
- ``dump`` (the default): Binance's public dump (data.binance.vision), a monthly file for every calendar
  month wholly inside the span and a daily file for every other day; each file is checked against the
  sha256 of its ``.CHECKSUM``. A month not published yet (404) falls back to its days, a day not
  published yet to the REST API.
- ``rest``: ``GET /api/v3/klines?symbol=BTCUSDT&interval=1m&startTime&endTime&limit=1000``, paged by
  startTime. Each answer's ``X-MBX-USED-WEIGHT-1M`` is read: at 90% of the 6,000-a-minute limit the
  download waits for the next minute. 429 and 418 wait out ``Retry-After`` (``client.py``).

Resumable: an existing file of the candle schema is kept and the download starts after its last candle.
Every piece (a file, a day of REST pages) is deduplicated before it is added (``checks.py``); a
conflicting duplicate stops the download with what came before it written.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import polars as pl

from fsm_bot.adapters.binance.feed import iso
from fsm_bot.adapters.binance.parsers import KLINES_MAX, KLINES_PATH, SYMBOL
from fsm_bot.datasets import checks, klines, output
from fsm_bot.datasets.client import Fetcher
from fsm_bot.errors import ConfigError, DataError
from fsm_bot.ports import MINUTE_MS
from fsm_bot.values import frozen

DUMP_URL = "https://data.binance.vision"
MONTHLY_PATH = "/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-{}.zip"
DAILY_PATH = "/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{}.zip"
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
WEIGHT_LIMIT = 6000
WEIGHT_SLOW = 0.9
"""At this share of the minute's request weight, wait for the next minute."""
DAY_MS = 86_400_000
CHECKPOINT_ROWS = 44_640
"""Rewrite the file every this many new candles (a 31-day month)."""
Progress = Callable[[int, int], None]


@frozen
class Piece:
    """A part of the span and where it comes from: ``monthly``/``daily`` (a dump file) or ``rest``."""

    kind: str
    start_ms: int
    end_ms: int

    @property
    def name(self) -> str:
        day = datetime.fromtimestamp(self.start_ms / 1000, timezone.utc)
        return f"BTCUSDT-1m-{day:%Y-%m}" if self.kind == "monthly" else f"BTCUSDT-1m-{day:%Y-%m-%d}"


@dataclass
class Sources:
    """What came from where, for the report."""

    monthly: list[str] = field(default_factory=list)
    daily: list[str] = field(default_factory=list)
    rest_days: list[str] = field(default_factory=list)  # dump days not published, read from REST
    rest_requests: int = 0
    microsecond_files: int = 0
    weight_waits: int = 0


def _month_end(start_ms: int) -> int:
    day = datetime.fromtimestamp(start_ms / 1000, timezone.utc)
    following = day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1, day=1, hour=0, minute=0)
    return int(following.timestamp() * 1000)


def days(start_ms: int, end_ms: int, kind: str) -> list[Piece]:
    """[start, end) cut at UTC midnights, each part a ``kind`` piece."""
    cuts = list(range(start_ms - start_ms % DAY_MS + DAY_MS, end_ms, DAY_MS))
    return [Piece(kind, a, b) for a, b in zip([start_ms, *cuts], [*cuts, end_ms])]


def plan(start_ms: int, end_ms: int, source: str) -> list[Piece]:
    """The pieces of [start, end): for ``dump``, whole months as monthly files, the other days as daily ones."""
    if source == "rest":
        return days(start_ms, end_ms, "rest")
    pieces, month_ms = [], start_ms
    while month_ms < end_ms:
        first_of_month = datetime.fromtimestamp(month_ms / 1000, timezone.utc).replace(day=1, hour=0, minute=0)
        month_start, month_end = int(first_of_month.timestamp() * 1000), _month_end(month_ms)
        if month_start >= start_ms and month_end <= end_ms:
            pieces.append(Piece("monthly", month_start, month_end))
        else:
            pieces += days(max(month_start, start_ms), min(month_end, end_ms), "daily")
        month_ms = month_end
    return pieces


class Klines:
    """The candles of a piece, from the dump or the REST API."""

    def __init__(self, rest: Fetcher, dump: Fetcher | None, *, now_secs: Callable[[], float] = time.time,
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.rest, self.dump, self.now_secs, self.pause = rest, dump, now_secs, pause
        self.sources = Sources()

    def piece(self, p: Piece) -> pl.DataFrame | list[Piece]:
        """The rows of ``p``, or the pieces it falls back to when its dump file is not published."""
        if p.kind == "rest":
            return self.rest_rows(p.start_ms, p.end_ms)
        path = (MONTHLY_PATH if p.kind == "monthly" else DAILY_PATH).format(p.name.removeprefix("BTCUSDT-1m-"))
        rows = self.dump_file(path, p.name + ".zip")
        if rows is not None:
            (self.sources.monthly if p.kind == "monthly" else self.sources.daily).append(p.name)
            return rows
        if p.kind == "monthly":
            return days(p.start_ms, p.end_ms, "daily")
        self.sources.rest_days.append(p.name.removeprefix("BTCUSDT-1m-"))
        return [Piece("rest", p.start_ms, p.end_ms)]

    def dump_file(self, path: str, name: str) -> pl.DataFrame | None:
        """A dump file's rows, checked against its CHECKSUM (fetched again once on a mismatch); None if absent."""
        assert self.dump is not None
        sums = self.dump.get(path + ".CHECKSUM")
        if sums is None:
            return None
        expected = klines.checksum(sums.body, name)
        for attempt in (1, 2):
            answer = self.dump.get(path)
            if answer is None:
                return None
            try:
                klines.verify(answer.body, expected, name)
                break
            except DataError:
                if attempt == 2:
                    raise
        candles, micro = klines.read_zip(answer.body, name)
        self.sources.microsecond_files += micro
        return candles

    def rest_rows(self, start_ms: int, end_ms: int) -> pl.DataFrame:
        """The klines opening in [start, end), page after page."""
        pages = [klines.frame()]
        while start_ms < end_ms:
            params: dict[str, Any] = {"symbol": SYMBOL, "interval": "1m", "startTime": start_ms,
                                      "endTime": end_ms - 1, "limit": KLINES_MAX}
            answer = self.rest.get(KLINES_PATH, params)
            if answer is None:
                raise DataError(f"binance GET {KLINES_PATH}: HTTP 404 (not found): is --rest-url Binance's API?")
            self.sources.rest_requests += 1
            self.pace(answer.headers.get(WEIGHT_HEADER))
            pages.append(klines.page(answer.json(f"binance GET {KLINES_PATH}"),
                                     f"binance GET {KLINES_PATH}?startTime={start_ms} row"))
            if pages[-1].height < KLINES_MAX:
                break
            start_ms = int(checks.epoch_ms(pages[-1]).max()) + MINUTE_MS
        return pl.concat(pages)

    def pace(self, used: str | None) -> None:
        """Near the minute's weight limit, wait for the next minute."""
        if used is not None and used.isdigit() and int(used) >= WEIGHT_LIMIT * WEIGHT_SLOW:
            self.sources.weight_waits += 1
            self.pause(60 - self.now_secs() % 60 + 0.5)


def span_of(kept: pl.DataFrame, out: Path, first_ms: int) -> None:
    """Refuse a ``--from`` that would leave the file with a hole: candles are appended after its last one, so the
    span asked must start by the minute after it."""
    file_last = int(checks.epoch_ms(kept).max())
    if first_ms > file_last + MINUTE_MS:
        raise ConfigError(f"--from {iso(first_ms)}: {out} ends at {iso(file_last)}; appending from there would "
                          f"leave {(first_ms - file_last) // MINUTE_MS - 1:,} minutes missing: give --from "
                          f"{iso(file_last + MINUTE_MS)} or earlier, or another --out")


def download(source: Klines, out: Path, first_ms: int, end_ms: int, kind: str, *, flag: str = "--out",
             progress: Progress | None = None) -> dict[str, Any]:
    """Append the candles of [first, end) that ``out`` lacks; the report (``error`` set if a conflict stopped it)."""
    kept = output.existing(out, klines.SCHEMA, flag, "the candle schema")
    kept = kept if kept is not None else klines.frame([])
    last_ms = int(checks.epoch_ms(kept).max()) if kept.height else None
    if last_ms is not None:
        span_of(kept, out, first_ms)
    start_ms = first_ms if last_ms is None else max(first_ms, last_ms + MINUTE_MS)
    book = output.Checkpoints(out, kept, CHECKPOINT_ROWS, flag)
    queue, dropped, conflicts = deque(plan(start_ms, end_ms, kind)), 0, []
    try:
        while queue and not conflicts:
            piece = queue.popleft()
            got = source.piece(piece)
            if isinstance(got, list):
                queue.extendleft(reversed(got))
                continue
            times = checks.epoch_ms(got)
            rows = got.filter((times >= piece.start_ms) & (times < piece.end_ms))
            rows, repeats, conflicts = checks.dedupe(rows)
            dropped += repeats
            if not conflicts:
                book.add(rows.sort("open_time"))
            if progress:
                progress((piece.end_ms - start_ms) // MINUTE_MS, (end_ms - start_ms) // MINUTE_MS)
    finally:
        book.flush()
    s = source.sources
    report = {"file": str(out), "from": iso(first_ms), "to": iso(end_ms), "kept": kept.height,
              "added": book.frame.height - kept.height, "candles": book.frame.height,
              "monthly_files": s.monthly, "daily_files": s.daily, "rest_days": s.rest_days,
              "rest_requests": s.rest_requests, "microsecond_files": s.microsecond_files,
              "weight_waits": s.weight_waits, "duplicates_dropped": dropped,
              "conflicting_duplicates": [iso(t) for t in conflicts]}
    report |= checks.candle_report(book.frame, first_ms, end_ms)
    if conflicts:
        report["error"] = (f"{len(conflicts)} minute(s) have rows that disagree, first {iso(conflicts[0])}: "
                           "nothing from there on was written")
    return report
