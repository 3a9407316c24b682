"""A backtest hands FETCH what each candle window shows, computed for its whole span at once
(``indicators.Windows``); it must equal, bit for bit, what FETCH computes from the candles it is given
(``indicators.window``: TA-Lib over exactly those 100 candles). Compared for every interval start of the
bundled sample, of windows with gaps, flat stretches and bad values, and of the whole dev file (one
test per month, so the workers share them)."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fsm_bot import indicators
from fsm_bot.adapters.sim import BUNDLED, ReplayFeed, load_candles
from fsm_bot.config import Config
from fsm_bot.research import chunks

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "btcusdt_1m_dev.parquet"
STEP = 300_000


def bits(w: indicators.Window) -> tuple:
    """Every value of a window, floats as their exact bits (so NaN equals NaN and -0.0 is not 0.0)."""
    s = w.shape
    f = float.hex
    return (s.count, s.last_open_ms, s.consecutive, tuple(f(float(x)) for x in s.lows),
            tuple(f(float(x)) for x in s.highs), s.flat, s.flat_bars, f(float(s.first_close)), f(float(s.volume)),
            f(w.close), f(w.rsi), f(w.macd), f(w.macd_signal), f(w.taker_flow), f(w.range_pct))


def differing(frame: pl.DataFrame, starts: np.ndarray, cfg: Config = Config()) -> list[int]:
    """The decision times whose computed-at-once window differs from FETCH's own computation."""
    feed, table = ReplayFeed(frame), indicators.Windows(frame, starts, cfg)
    out = []
    for t in starts.tolist():
        candles = feed.candles(t, cfg.candles)
        if len(candles) < cfg.candles:
            assert table.at(t, cfg) is None
            continue
        if bits(table.at(t, cfg)) != bits(indicators.window(indicators.Columns.of(candles), cfg)):
            out.append(t)
    return out


def grid(frame: pl.DataFrame) -> np.ndarray:
    times = frame.get_column("open_time")
    return np.arange(-(-times[0] // STEP) * STEP, times[-1] + 60_000, STEP)


def test_every_window_of_the_sample_equals_fetchs_own():
    frame = load_candles(BUNDLED)
    assert differing(frame, grid(frame)) == []


def test_windows_with_gaps_flat_stretches_and_bad_values_equal_fetchs_own():
    frame = load_candles(BUNDLED).head(3000)
    n = frame.height
    rows = pl.int_range(pl.len())
    odd = frame.filter((rows < 400) | (rows > 410)).with_columns(  # a gap of 11 minutes
        close=pl.when(rows.is_between(900, 1200)).then(pl.lit(42000.0)).otherwise(pl.col("close")),
        high=pl.when(rows.is_between(1000, 1150)).then(pl.col("low")).otherwise(pl.col("high")),
        volume=pl.when(rows.is_between(1500, 1700)).then(pl.lit(0.0)).otherwise(pl.col("volume")),
        taker_buy_base=pl.when(rows.is_between(1500, 1700)).then(pl.lit(0.0)).otherwise(pl.col("taker_buy_base")),
        low=pl.when(rows == 2000).then(pl.lit(float("nan"))).when(rows == 2300).then(pl.lit(-1.0))
        .otherwise(pl.col("low")))
    assert odd.height < n
    starts = grid(odd)
    assert differing(odd, starts) == []
    assert differing(odd, starts, Config(candles=60, imbalance_candles=100, volatility_candles=70)) == []


def test_a_window_is_known_only_for_its_config():
    frame = load_candles(BUNDLED)
    t = int(grid(frame)[40])
    table = indicators.Windows(frame, np.array([t]), Config())
    assert table.at(t, Config()) is not None and table.at(t + STEP, Config()) is None
    assert table.at(t, Config(rsi_period=10)) is None


DEV_FRAME = load_candles(DEV) if DEV.is_file() else None


def dev_months() -> list[chunks.Chunk]:
    if DEV_FRAME is None:
        return []
    times = DEV_FRAME.get_column("open_time")
    return chunks.split(*chunks.span(times[0], times[-1], Config(), None, None))


@pytest.mark.skipif(DEV_FRAME is None, reason="the shared dev data is not here")
@pytest.mark.parametrize("month", dev_months(), ids=lambda c: c.label)
def test_every_window_of_the_dev_file_equals_fetchs_own(month):
    assert differing(DEV_FRAME, np.arange(month.first_ms, month.end_ms, STEP)) == []
