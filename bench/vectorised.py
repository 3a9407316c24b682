"""The speed-of-light reference: every interval's indicators and signal computed in one vectorised
pass over all the 100-candle windows at once (numpy across windows, a loop over the 100 minutes).

The arithmetic follows the TA-Lib build the machine uses, operation for operation, so the values
equal the machine's bit for bit: RSI divides by the period as a multiply by its reciprocal
(``(l x (p-1) + x) x (1/p)``); the EMAs of MACD seed with a simple average and step as
``(x - prev) x k + prev``; the signal line's step is fused (``fma(x - prev, k, prev)``), which numpy
has no ufunc for, so it is emulated exactly with an error-free product and sum (double-double).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from fsm_bot.config import Config
from fsm_bot.indicators import IMBALANCE_CAP

_SPLIT = 134217729.0  # 2^27 + 1: Dekker's splitter for doubles


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_product(a: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def fma(a: np.ndarray, b: float, c: np.ndarray) -> np.ndarray:
    """a x b + c rounded once (double-double: exact product, exact sum, one final rounding)."""
    p, e = _two_product(a, b)
    s, t = _two_sum(p, c)
    return s + (t + e)


def rsi_last(close: np.ndarray, period: int) -> np.ndarray:
    """RSI at the last minute of every row of ``close`` (windows x minutes)."""
    diff = np.diff(close, axis=1)
    gain = np.zeros(len(close))
    loss = np.zeros(len(close))
    for i in range(period):
        d = diff[:, i]
        down = d < 0
        loss = np.where(down, loss - d, loss)
        gain = np.where(down, gain, gain + d)
    inv = 1.0 / period
    loss = loss * inv
    gain = gain * inv
    for i in range(period, diff.shape[1]):
        d = diff[:, i]
        down = d < 0
        loss = loss * (period - 1)
        gain = gain * (period - 1)
        loss = np.where(down, loss - d, loss)
        gain = np.where(down, gain, gain + d)
        loss = loss * inv
        gain = gain * inv
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total > -1e-14) & (total < 1e-14), 0.0, 100.0 * (gain / total))


def _ema(x: np.ndarray, seed_from: int, period: int, first_out: int, fused: bool = False) -> np.ndarray:
    """EMA columns from ``first_out`` on, seeded with the average of ``period`` columns from ``seed_from``."""
    k = 2.0 / (period + 1)
    prev = x[:, seed_from]
    for i in range(seed_from + 1, seed_from + period):
        prev = prev + x[:, i]
    prev = prev / period
    for i in range(seed_from + period, first_out + 1):
        prev = fma(x[:, i] - prev, k, prev) if fused else (x[:, i] - prev) * k + prev
    out = [prev]
    for i in range(first_out + 1, x.shape[1]):
        prev = fma(x[:, i] - prev, k, prev) if fused else (x[:, i] - prev) * k + prev
        out.append(prev)
    return np.stack(out, axis=1)


def macd_last(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    """(MACD line, signal line) at the last minute of every row, as TA-Lib's MACD computes them."""
    start = slow - 1
    line = _ema(close, start - fast + 1, fast, start) - _ema(close, 0, slow, start)
    return line[:, -1], _ema(line, 0, signal, signal - 1, fused=True)[:, -1]


@dataclass
class Decisions:
    start_ms: np.ndarray
    close: np.ndarray
    rsi: np.ndarray
    macd: np.ndarray
    macd_signal: np.ndarray
    imbalance: np.ndarray
    range_pct: np.ndarray
    side: np.ndarray  # "UP" / "DOWN" / "SKIP"
    tier: np.ndarray  # "strict" / "reversion" / "lean" / "none"
    result: np.ndarray  # the interval's market result, "UP" / "DOWN"


def interval_rows(times: np.ndarray, cfg: Config, first_ms: int | None = None, last_ms: int | None = None) -> np.ndarray:
    """Row of each interval start with ``cfg.candles`` closed candles before it and the interval after it."""
    step = cfg.interval_secs * 1000
    rows = np.nonzero(times % step == 0)[0]
    rows = rows[(rows >= cfg.candles) & (rows + cfg.interval_minutes <= len(times))]
    if first_ms is not None:
        rows = rows[times[rows] >= first_ms]
    if last_ms is not None:
        rows = rows[times[rows] <= last_ms]
    return rows


def decide(frame: pl.DataFrame, cfg: Config, rows: np.ndarray) -> Decisions:
    """Every interval's indicators, signal and result in one pass (``rows``: candle rows of the starts)."""
    n = cfg.candles
    col = {name: frame.get_column(name).to_numpy() for name in ("open_time", "open", "high", "low", "close", "volume",
                                                                 "taker_buy_base")}
    pick = rows - n  # window i covers candles [rows[i] - n, rows[i])
    close = sliding_window_view(col["close"], n)[pick]
    rsi = rsi_last(close, cfg.rsi_period)
    macd, signal = macd_last(close, cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    m = cfg.imbalance_candles
    bought = sliding_window_view(col["taker_buy_base"], m)[rows - m].sum(axis=1)
    sold = sliding_window_view(col["volume"], m)[rows - m].sum(axis=1) - bought
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(bought / sold, 1 / IMBALANCE_CAP, IMBALANCE_CAP)
    imbalance = np.where((bought <= 0) & (sold <= 0), 1.0, np.where(sold <= 0, IMBALANCE_CAP, ratio))
    v = cfg.volatility_candles
    lo = sliding_window_view(col["low"], v)[rows - v].min(axis=1)
    hi = sliding_window_view(col["high"], v)[rows - v].max(axis=1)
    range_pct = (hi - lo) / lo
    up_strict = (rsi < cfg.rsi_oversold) & (macd > signal) & (imbalance > cfg.imbalance_up)
    down_strict = (rsi > cfg.rsi_overbought) & (macd < signal) & (imbalance < cfg.imbalance_down)
    strict = up_strict | down_strict
    if cfg.policy == "strict":
        side = np.where(up_strict, "UP", np.where(down_strict, "DOWN", "SKIP"))
        tier = np.where(strict, "strict", "none")
    else:
        rev_up, rev_down = rsi < cfg.reversion_oversold, rsi > cfg.reversion_overbought
        lean_up = rsi < cfg.lean_midline
        side = np.where(up_strict, "UP", np.where(down_strict, "DOWN", np.where(
            rev_up, "UP", np.where(rev_down, "DOWN", np.where(lean_up, "UP", "DOWN")))))
        tier = np.where(strict, "strict", np.where(rev_up | rev_down, "reversion", "lean"))
    result = np.where(col["close"][rows + cfg.interval_minutes - 1] >= col["open"][rows], "UP", "DOWN")
    return Decisions(start_ms=col["open_time"][rows], close=col["close"][rows - 1], rsi=rsi, macd=macd,
                     macd_signal=signal, imbalance=imbalance, range_pct=range_pct, side=side, tier=tier, result=result)
