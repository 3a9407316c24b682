"""RSI, MACD, the order-book imbalance and the volatility range, over a window of candles (``Columns``).

RSI and MACD come from TA-Lib over exactly the candles given (the last ``cfg.candles``), so a
decision's values are a function of that window alone. In replay there is no order book: the
imbalance is then the taker-flow proxy ``sum(taker_buy_base) / sum(volume - taker_buy_base)``
over the last few candles, and its source says so.

``window`` is what one window of candles shows before any rule is applied (its ``Shape``: times,
column ranges, flatness; and its values: RSI, MACD, taker flow, range); FETCH's rules read it.
``Windows`` holds the same for every decision of a span of a replayed frame, computed at once, equal
bit for bit to ``window`` of each one (``tests/test_windows.py`` compares every interval of the dev file):
minimums, maximums, sums and flatness across the windows in numpy (exact: a minimum is one of the
values, a sum of a row of a contiguous block is summed as the same row alone), RSI and MACD by TA-Lib
over each window in turn (their recursions start at the window's first candle, so a whole-series
computation would differ).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fsm_bot.candles import Columns
from fsm_bot.config import Config
from fsm_bot.ports import MINUTE_MS, Depth
from fsm_bot.values import frozen

IMBALANCE_CAP = 1e6
"""A one-sided book or flow has no finite ratio; it is clamped to [1/cap, cap] so it stays a number."""


@frozen
class Indicators:
    close: float
    rsi: float
    macd: float
    macd_signal: float
    imbalance: float
    imbalance_source: str
    range_pct: float


def _talib() -> Any:
    """TA-Lib, imported without the frame libraries it looks for: it imports polars and pandas, when they are
    installed and not loaded yet, only to accept their Series (polars alone takes 0.15-0.45 s to import), and
    it is only ever given numpy arrays here. They stay importable afterwards."""
    hidden = [name for name in ("polars", "pandas") if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))  # None: an import of it fails at once, as if not installed
    try:
        import talib
    finally:
        for name in hidden:
            del sys.modules[name]
    return talib


_TALIB = _talib()
_RSI = getattr(_TALIB.RSI, "__wrapped__", _TALIB.RSI)  # TA-Lib's own function, without the check for Series input
_MACD = getattr(_TALIB.MACD, "__wrapped__", _TALIB.MACD)


def rsi_macd(close: np.ndarray, cfg: Config) -> tuple[float, float, float]:
    rsi = _RSI(close, timeperiod=cfg.rsi_period)
    macd, signal, _ = _MACD(close, fastperiod=cfg.macd_fast, slowperiod=cfg.macd_slow, signalperiod=cfg.macd_signal)
    return float(rsi[-1]), float(macd[-1]), float(signal[-1])


def ratio(up: float, down: float) -> float:
    """``up / down`` clamped to [1/cap, cap]; 1.0 (no lean) when both sides are empty."""
    if up <= 0 and down <= 0:
        return 1.0
    if down <= 0:
        return IMBALANCE_CAP
    return min(max(up / down, 1 / IMBALANCE_CAP), IMBALANCE_CAP)


def taker_flow_imbalance(volume: np.ndarray, taker_buy: np.ndarray, n: int) -> float:
    """Replay proxy: taker-bought over taker-sold base volume in the last ``n`` candles."""
    bought = float(taker_buy[-n:].sum())
    return ratio(bought, float(volume[-n:].sum()) - bought)


def book_imbalance(depth: Depth) -> float:
    """Bid quantity over ask quantity across the top levels of the spot book."""
    return ratio(depth.bid_qty, depth.ask_qty)


def no_movement(c: Columns | Shape) -> str | None:
    """What shows that a window of candles saw no market at all, or None: every close the same price (so RSI
    is 0/0 and MACD 0: any value read from them is an artefact, e.g. RSI 0 read as oversold), or no volume
    traded in the whole window. Real BTC minutes always move and trade; such a window is a dead or faked
    feed."""
    w = c if isinstance(c, Shape) else Shape.of(c)
    if w.count and w.flat:
        flat = " and every high equals its low" if w.flat_bars else ""
        return f"all {w.count} closes are {w.first_close:g}{flat}: no price movement in the window"
    if w.count and float(w.volume) == 0:
        return f"total volume 0 over {w.count} candles: nothing traded in the window"
    return None


def range_pct(high: np.ndarray, low: np.ndarray, n: int) -> float:
    lo = float(low[-n:].min())
    return (float(high[-n:].max()) - lo) / lo


def spread_pct(hi: float, lo: float) -> float:
    """``(hi - lo) / lo``, NaN where ``lo`` is not a positive price (a window FETCH refuses anyway)."""
    return (float(hi) - float(lo)) / float(lo) if lo > 0 else math.nan


RANGED = ("open", "high", "low", "close", "volume", "taker_buy_base")
"""The columns whose minimum and maximum a ``Shape`` keeps, in this order."""


@frozen
class Shape:
    """What FETCH's checks read of a window: how many candles, the last one's time, whether they are
    consecutive minutes, each ``RANGED`` column's minimum and maximum, and whether anything moved."""

    count: int
    last_open_ms: int
    consecutive: bool
    lows: tuple[float, ...]
    highs: tuple[float, ...]
    flat: bool  # every close the same
    flat_bars: bool  # every high equal to its low
    first_close: float
    volume: float  # the window's total

    @classmethod
    def of(cls, c: Columns) -> "Shape":
        n = len(c.close)
        cols = [getattr(c, name) for name in RANGED] if n else []
        return cls(count=n, last_open_ms=int(c.open_time[-1]) if n else 0,
                   consecutive=bool((np.diff(c.open_time) == MINUTE_MS).all()),
                   lows=tuple(col.min() for col in cols), highs=tuple(col.max() for col in cols),
                   flat=bool((c.close == c.close[0]).all()) if n else False, flat_bars=bool((c.high == c.low).all()),
                   first_close=c.close[0] if n else math.nan, volume=c.volume.sum())


@frozen
class Window:
    """A window's shape and the values FETCH computes from it (for one config's periods)."""

    shape: Shape
    close: float
    rsi: float
    macd: float
    macd_signal: float
    taker_flow: float  # the replay's imbalance proxy over the last ``imbalance_candles``
    range_pct: float  # over the last ``volatility_candles``; NaN where a low is not a positive price

    def indicators(self, depth: Depth | None, cfg: Config) -> Indicators:
        """The decision's indicators: the book's imbalance when there is a book, else the taker-flow proxy."""
        if depth is not None:
            imbalance, source = book_imbalance(depth), f"binance_depth_top{depth.levels}"
        else:
            imbalance, source = self.taker_flow, f"replay_proxy_taker_flow_{cfg.imbalance_candles}c"
        return Indicators(close=self.close, rsi=self.rsi, macd=self.macd, macd_signal=self.macd_signal,
                          imbalance=imbalance, imbalance_source=source, range_pct=self.range_pct)


def window(c: Columns, cfg: Config) -> Window:
    """Everything FETCH reads of one window of candles (TA-Lib over exactly these candles)."""
    rsi, macd, signal = rsi_macd(c.close, cfg)
    v = cfg.volatility_candles
    return Window(shape=Shape.of(c), close=float(c.close[-1]), rsi=rsi, macd=macd, macd_signal=signal,
                  taker_flow=taker_flow_imbalance(c.volume, c.taker_buy_base, cfg.imbalance_candles),
                  range_pct=spread_pct(c.high[-v:].max(), c.low[-v:].min()))


def compute(c: Columns, depth: Depth | None, cfg: Config) -> Indicators:
    return window(c, cfg).indicators(depth, cfg)



class Windows:
    """``window`` of the candles before each decision time of a span of one frame, computed at once and
    looked up by the time of a decision (``at``: the window the replayed feed serving that frame gives then)."""

    BLOCK = 4096  # windows per numpy pass, so a block of windows stays a few MB

    def __init__(self, candles: Any, decisions_ms: np.ndarray, cfg: Config) -> None:
        n = cfg.candles
        candles = Columns.of(candles)
        self.times = candles.open_time
        ends = np.unique(self._end(np.asarray(decisions_ms, dtype=np.int64)))
        ends = ends[ends >= n]  # where each window ends (excluded), as the replayed feed cuts it; whole ones only
        self.periods = periods(cfg)
        self.row = {end: i for i, end in enumerate(ends.tolist())}
        offset = int(ends.min()) - n if len(ends) else 0
        c, ends = candles.slice(offset, int(ends.max()) - offset if len(ends) else 0), ends - offset
        first, last = ends - n, ends - 1
        gaps = _running(np.diff(c.open_time) != MINUTE_MS)
        uneven = _running(~(c.high == c.low))
        m, v = min(cfg.imbalance_candles, n), min(cfg.volatility_candles, n)
        bought, traded = _over(np.sum, c.taker_buy_base, ends - m, m), _over(np.sum, c.volume, ends - m, m)
        hi, lo = _over(np.max, c.high, ends - v, v), _over(np.min, c.low, ends - v, v)
        self.count = n
        self.lows, self.highs, self.volume = _ranges(c, first, n)
        self.facts = np.stack([c.open_time[last], gaps[last] == gaps[first], uneven[ends] == uneven[first]], axis=1)
        columns = (first, ends, c.close[last], bought, traded, hi, lo)
        self.values = np.array([(close, *rsi_macd(c.close[f:e], cfg), ratio(b, t - b), spread_pct(h, lw))
                                for f, e, close, b, t, h, lw in zip(*(x.tolist() for x in columns))]).reshape(-1, 6)
        self.first_close = c.close[first]

    def __len__(self) -> int:
        return len(self.row)

    def _end(self, before_ms: Any) -> Any:
        return self.times.searchsorted(before_ms - MINUTE_MS, side="right")  # as ``ReplayFeed.candles``

    def at(self, before_ms: int, cfg: Config) -> Window | None:
        """The window of the ``cfg.candles`` candles closed before ``before_ms``, if computed for that config."""
        i = self.row.get(int(self._end(before_ms)))
        if i is None or periods(cfg) != self.periods:
            return None
        last_open_ms, consecutive, flat_bars = self.facts[i].tolist()
        lows, highs = tuple(self.lows[i].tolist()), tuple(self.highs[i].tolist())
        close = RANGED.index("close")
        shape = Shape(count=self.count, last_open_ms=last_open_ms, consecutive=bool(consecutive), lows=lows,
                      highs=highs, flat=lows[close] == highs[close], flat_bars=bool(flat_bars),
                      first_close=float(self.first_close[i]), volume=float(self.volume[i]))
        return Window(shape, *self.values[i].tolist())  # every close the same: their minimum is their maximum


def periods(cfg: Config) -> tuple[int, ...]:
    """The config's fields a window's values depend on: two configs with the same ones see the same windows."""
    return (cfg.candles, cfg.rsi_period, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal, cfg.imbalance_candles,
            cfg.volatility_candles)


def _running(flags: np.ndarray) -> np.ndarray:
    """How many of ``flags`` are set before each index (one more entry than ``flags``)."""
    return np.concatenate(([0], np.cumsum(flags)))


def _blocks(rows: np.ndarray, size: int = Windows.BLOCK) -> list[np.ndarray]:
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [rows]


def _over(reduce: Any, col: np.ndarray, first: np.ndarray, n: int) -> np.ndarray:
    """``reduce`` of ``col`` over the ``n`` rows from each of ``first``."""
    return np.concatenate([reduce(sliding_window_view(col, n)[b], axis=1) for b in _blocks(first)])


def _ranges(c: Columns, first: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(minimums, maximums) of each ``RANGED`` column over each window (a row per window), and each window's
    total volume."""
    lows, highs, volume = [], [], []
    for b in _blocks(first):
        block = [sliding_window_view(getattr(c, name), n)[b] for name in RANGED]
        lows.append(np.stack([w.min(axis=1) for w in block], axis=1))
        highs.append(np.stack([w.max(axis=1) for w in block], axis=1))
        volume.append(block[4].sum(axis=1))
    return np.concatenate(lows), np.concatenate(highs), np.concatenate(volume)
