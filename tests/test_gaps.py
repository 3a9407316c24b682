"""A candle file with holes (a Binance outage, a download that reported its gaps): every session still ends.

The simulated venue resolves every market, as a real one does on its own price source: on the interval's
first and last minutes when the file has them, else on the nearest prices before them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from fsm_bot import backtest
from fsm_bot.adapters.sim import BUNDLED, ReplayFeed, load_candles
from fsm_bot.config import Config
from fsm_bot.ports import MINUTE_MS
from fsm_bot.wiring import parse_start

FRAME = load_candles(BUNDLED)
START = parse_start("2024-03-12T06:00:00Z", 300)  # an interval start inside the bundled sample
FIVE = 5 * MINUTE_MS


def without(*open_ms: int) -> pl.DataFrame:
    times = FRAME.get_column("open_time").dt.epoch("ms")
    return FRAME.filter(~times.is_in(list(open_ms)))


def prices(frame: pl.DataFrame, open_ms: int) -> tuple[float, float]:
    row = frame.filter(pl.col("open_time").dt.epoch("ms") == open_ms)
    return float(row.get_column("open")[0]), float(row.get_column("close")[0])


def test_whole_minutes_settle_on_the_reference():
    feed = ReplayFeed(FRAME)
    assert feed.settlement(START, START + FIVE) == feed.reference(START, START + FIVE) is not None


def test_a_missing_first_minute_starts_from_the_close_before_it():
    feed = ReplayFeed(without(START))
    assert feed.reference(START, START + FIVE) is None
    start_price = prices(FRAME, START - MINUTE_MS)[1]
    end_price = prices(FRAME, START + FIVE - MINUTE_MS)[1]
    assert feed.settlement(START, START + FIVE) == ("UP" if end_price >= start_price else "DOWN")


def test_a_missing_last_minute_ends_on_the_last_close_before_it():
    last = START + FIVE - MINUTE_MS
    feed = ReplayFeed(without(last))
    start_price, end_price = prices(FRAME, START)[0], prices(FRAME, last - MINUTE_MS)[1]
    assert feed.settlement(START, START + FIVE) == ("UP" if end_price >= start_price else "DOWN")


def test_an_interval_wholly_missing_sees_no_move_and_a_file_not_yet_there_none():
    feed = ReplayFeed(without(*range(START, START + FIVE, MINUTE_MS)))
    assert feed.settlement(START, START + FIVE) == "UP"  # the same last price at both ends: Up, as ">=" says
    last = int(FRAME.get_column("open_time").dt.epoch("ms").max())
    assert ReplayFeed(FRAME).settlement(last + FIVE, last + 2 * FIVE) == "UP"  # the last close on both sides
    first = int(FRAME.get_column("open_time").dt.epoch("ms").min())
    assert ReplayFeed(FRAME).settlement(first - 2 * FIVE, first - FIVE) is None


def test_a_backtest_over_holes_at_interval_edges_finishes_and_settles_them(tmp_path):
    """Holes at the first and at the last minute of intervals and one across three of them: the command ends
    (under a timeout: it used to wait for ever for those results) and matches the in-process run."""
    edges = [START + k * FIVE for k in (3, 7)] + [START + 12 * FIVE - MINUTE_MS]
    hole = list(range(START + 20 * FIVE + 2 * MINUTE_MS, START + 23 * FIVE, MINUTE_MS))
    frame = without(*edges, *hole)
    data = tmp_path / "holes.parquet"
    frame.write_parquet(data)
    last = START + 30 * FIVE
    out = tmp_path / "bt"
    done = subprocess.run([sys.executable, "-m", "fsm_bot", "backtest", "--data", str(data), "--workers", "1",
                           "--from", "2024-03-12T06:00:00Z", "--to", "2024-03-12T08:30:00Z", "--out", str(out),
                           "--json"], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    sessions, decisions, _ = backtest.backtest(ReplayFeed(frame), Config(), START, last)
    assert sessions.height >= 1 and decisions.height >= 18 * sessions.height
    settled = decisions.filter(pl.col("action") == "trade")
    assert settled.get_column("outcome").is_in(["WIN", "LOSS"]).all()
    starts = set(decisions.get_column("interval_start").to_list())
    stamp = lambda ms: np.datetime64(ms, "ms").astype(str)[:19] + "Z"  # noqa: E731
    assert {stamp(START + 3 * FIVE), stamp(START + 7 * FIVE), stamp(START + 11 * FIVE)} <= starts
