"""The closed-candle buffer the feed reads from, shared by the stream's thread and the engine's,
and its persistence: saved atomically in the state dir (its columns in numpy's format: no polars in a
trading process) so a restart does not wait for the bootstrap window, and loaded back through the same
checks as any other input."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fsm_bot.adapters.binance.parsers import Kline, kline
from fsm_bot.candles import Columns
from fsm_bot.errors import DataError
from fsm_bot.logs import event
from fsm_bot.ports import CANDLE_COLUMNS, MINUTE_MS
from fsm_bot.storage import replace_by

BUFFER_FILE = "candles-buffer.npz"
SUPERSEDED = ("candles-buffer.parquet",)
"""What earlier releases saved the buffer as: removed once the buffer is saved in its place."""
KEEP_CANDLES = 300

log = logging.getLogger("fsm_bot.binance")


class CandleBuffer:
    """The last ``keep`` closed candles by open time, shared by the stream's thread and the engine's."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._rows: dict[int, Kline] = {}
        self.arrived: dict[int, float] = {}  # open time -> wall time (``time.time``) the candle first came in
        self._lock = threading.Condition()

    def add(self, klines: Iterable[Kline]) -> int:
        """Adds (or replaces) candles; returns how many minutes were new."""
        klines = list(klines)
        now = time.time()
        with self._lock:
            before = len(self._rows)
            for k in klines:
                self._rows[k.open_ms] = k
                self.arrived.setdefault(k.open_ms, now)
            new = len(self._rows) - before
            for t in sorted(self._rows)[:max(0, len(self._rows) - self.keep)]:
                del self._rows[t]
                self.arrived.pop(t, None)
            self._lock.notify_all()
        return new

    def wait_for(self, open_ms: int, timeout_secs: float) -> float | None:
        """Wait up to ``timeout_secs`` (wall) for the candle of ``open_ms``: the wall time it came in, or None."""
        with self._lock:
            if self._lock.wait_for(lambda: open_ms in self._rows, timeout_secs):
                return self.arrived.get(open_ms)
        return None

    def get(self, open_ms: int) -> Kline | None:
        with self._lock:
            return self._rows.get(open_ms)

    def last_open_ms(self) -> int | None:
        with self._lock:
            return max(self._rows, default=None)

    def missing(self, first_ms: int, last_ms: int) -> list[int]:
        """The minutes in [first, last] the buffer lacks, oldest first."""
        with self._lock:
            return [t for t in range(first_ms, last_ms + 1, MINUTE_MS) if t not in self._rows]

    def rows(self, before_ms: int | None = None, count: int | None = None) -> list[tuple[Any, ...]]:
        """The last ``count`` candles closed by ``before_ms`` (all when None), oldest first, as CANDLE_COLUMNS
        tuples."""
        with self._lock:
            times = sorted(t for t in self._rows if before_ms is None or t + MINUTE_MS <= before_ms)
            if count is not None:
                times = times[-count:] if count > 0 else []
            return [self._rows[t].row() for t in times]

    def columns(self, before_ms: int | None = None, count: int | None = None) -> Columns:
        return Columns.rows(self.rows(before_ms, count))

    def __len__(self) -> int:
        return len(self._rows)


def save_buffer(columns: Columns, path: Path) -> None:
    """Atomically (``storage.replace_by``), then an earlier release's copy beside it removed; an ``OSError`` is
    the caller's to log."""
    replace_by(path, lambda f: np.savez(f, **{name: getattr(columns, name) for name in CANDLE_COLUMNS}))
    for name in SUPERSEDED:
        path.with_name(name).unlink(missing_ok=True)


def load_buffer(path: Path, now_ms: int) -> list[Kline]:
    """The persisted buffer's candles closed by ``now_ms``, checked like any input; none when the
    file is absent or unusable (it is a cache: REST refills it)."""
    if not path.is_file():
        return []
    try:
        with np.load(path, allow_pickle=False) as kept:
            columns = [kept[name].tolist() for name in CANDLE_COLUMNS]
        rows = [_stored(r, path.name) for r in zip(*columns)]
    except DataError as exc:
        event(log, logging.WARNING, "binance", f"{path.name} ignored: {exc}", error_code="bad_buffer")
        return []
    except Exception as exc:  # numpy and zipfile raise several kinds for a file that is not theirs
        event(log, logging.WARNING, "binance", f"{path.name} ignored: {type(exc).__name__}", error_code="bad_buffer")
        return []
    return [k for k in rows if k.open_ms + MINUTE_MS <= now_ms]


def _stored(row: tuple[Any, ...], name: str) -> Kline:
    open_ms = row[0]
    close_ms = open_ms + MINUTE_MS - 1 if isinstance(open_ms, int) else None
    return kline(open_ms, close_ms, *row[1:], where=f"{name} row")
