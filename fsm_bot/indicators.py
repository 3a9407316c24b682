"""RSI, MACD, the order-book imbalance and the volatility range, over a polars frame of candles.

RSI and MACD come from TA-Lib over exactly the candles given (the last ``cfg.candles``), so a
decision's values are a function of that window alone. In replay there is no order book: the
imbalance is then the taker-flow proxy ``sum(taker_buy_base) / sum(volume - taker_buy_base)``
over the last few candles, and its source says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import talib

from fsm_bot.config import Config
from fsm_bot.ports import CANDLE_COLUMNS, Depth

IMBALANCE_CAP = 1e6
"""A one-sided book or flow has no finite ratio; it is clamped to [1/cap, cap] so it stays a number."""


@dataclass(frozen=True)
class Indicators:
    close: float
    rsi: float
    macd: float
    macd_signal: float
    imbalance: float
    imbalance_source: str
    range_pct: float


def rsi_macd(close: np.ndarray, cfg: Config) -> tuple[float, float, float]:
    rsi = talib.RSI(close, timeperiod=cfg.rsi_period)
    macd, signal, _ = talib.MACD(close, fastperiod=cfg.macd_fast, slowperiod=cfg.macd_slow, signalperiod=cfg.macd_signal)
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


def no_movement(c: Columns) -> str | None:
    """What shows that a window of candles saw no market at all, or None: every close the same price (so RSI
    is 0/0 and MACD 0: any value read from them is an artefact, e.g. RSI 0 read as oversold), or no volume
    traded in the whole window. Real BTC minutes always move and trade; such a window is a dead or faked
    feed."""
    n = len(c.close)
    if n and (c.close == c.close[0]).all():
        flat = " and every high equals its low" if (c.high == c.low).all() else ""
        return f"all {n} closes are {c.close[0]:g}{flat}: no price movement in the window"
    if n and float(c.volume.sum()) == 0:
        return f"total volume 0 over {n} candles: nothing traded in the window"
    return None


def range_pct(high: np.ndarray, low: np.ndarray, n: int) -> float:
    lo = float(low[-n:].min())
    return (float(high[-n:].max()) - lo) / lo


@dataclass(frozen=True)
class Columns:
    """A candle frame's columns as numpy arrays, taken out of polars once per decision."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker_buy_base: np.ndarray

    @classmethod
    def of(cls, candles: pl.DataFrame) -> "Columns":
        """Raises ``ColumnError`` for a missing or non-numeric column."""
        try:
            first = candles.get_column(CANDLE_COLUMNS[0]).to_numpy().astype(np.int64, copy=False)
            rest = [candles.get_column(name).to_numpy().astype(np.float64, copy=False) for name in CANDLE_COLUMNS[1:]]
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            raise ColumnError(f"unusable candle frame: {exc}") from None
        return cls(first, *rest)


class ColumnError(ValueError):
    pass


def compute(c: Columns, depth: Depth | None, cfg: Config) -> Indicators:
    rsi, macd, signal = rsi_macd(c.close, cfg)
    if depth is not None:
        imbalance, source = book_imbalance(depth), f"binance_depth_top{depth.levels}"
    else:
        imbalance = taker_flow_imbalance(c.volume, c.taker_buy_base, cfg.imbalance_candles)
        source = f"replay_proxy_taker_flow_{cfg.imbalance_candles}c"
    vol = range_pct(c.high, c.low, cfg.volatility_candles)
    return Indicators(close=float(c.close[-1]), rsi=rsi, macd=macd, macd_signal=signal, imbalance=imbalance,
                      imbalance_source=source, range_pct=vol)
