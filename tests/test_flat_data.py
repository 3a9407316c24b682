"""FETCH: a window of candles with no price movement, or no volume, is invalid data (``flat_data``), not a
signal. Flat closes make RSI 0/0, which TA-Lib returns as 0, and 0 reads as oversold: UP."""

import polars as pl
import pytest

from fsm_bot.observed import FetchSeen
from fsm_bot.steps import Fetched, Skip
from states import fetch
from tests.fakes import SAMPLE, START, FakeVenue, session_at

NOW = START + 1_000  # one second into the first interval


def window(**columns: float) -> pl.DataFrame:
    """The 100 closed candles before START, from the bundled sample, with ``columns`` set to constants."""
    candles = SAMPLE.filter(pl.col("open_time") < START).tail(100)
    return candles.with_columns(*(pl.lit(float(v)).alias(name) for name, v in columns.items()))


def fetched(candles: pl.DataFrame):
    return fetch.run(session_at(), NOW, FetchSeen(candles=candles, market=FakeVenue().market(START)))


def test_the_real_window_is_fetched():
    step = fetched(window())
    assert isinstance(step, Fetched) and 0 < step.snapshot.rsi < 100


@pytest.mark.parametrize("columns, seen", [
    ({"open": 42000, "high": 42000, "low": 42000, "close": 42000, "volume": 0, "taker_buy_base": 0},
     "all 100 closes are 42000 and every high equals its low"),
    ({"open": 42000, "high": 42000, "low": 42000, "close": 42000}, "all 100 closes are 42000 and every high"),
    ({"close": 42000}, "all 100 closes are 42000: no price movement"),
    ({"volume": 0, "taker_buy_base": 0}, "total volume 0 over 100 candles"),
])
def test_a_window_without_movement_or_volume_skips_as_flat_data(columns, seen):
    step = fetched(window(**columns))
    assert isinstance(step, Skip) and step.reason == "flat_data", step
    assert seen in step.detail


def test_the_zero_range_window_would_have_read_as_oversold():
    """What the rule prevents: the indicators of a flat window are artefacts (RSI 0)."""
    from fsm_bot import indicators
    from fsm_bot.config import Config
    flat = indicators.Columns.of(window(open=42000, high=42000, low=42000, close=42000, volume=0, taker_buy_base=0))
    assert indicators.compute(flat, None, Config()).rsi == 0.0
    assert indicators.no_movement(flat) is not None


def test_movement_in_part_of_the_window_is_not_flat():
    candles = window()
    half = candles.height // 2
    still = candles.with_columns(pl.when(pl.int_range(pl.len()) >= half).then(pl.lit(42000.0))
                                 .otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close"))
    assert isinstance(fetched(still), Fetched)
