"""What a downloaded candle frame says about itself: duplicates, missing minutes, inconsistent candles.

Nothing here changes a value. Two rows of one minute that agree in every column are one candle said
twice: the repeat is dropped and counted. Two that disagree are a conflict nobody can settle from the
data: ``dedupe`` lists them and the download stops before writing them. Gaps and OHLC breaks are real
properties of the source (an exchange outage, a bad print) and are reported, with the minutes they
concern, never filled or clipped.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from fsm_bot.adapters.binance.feed import iso
from fsm_bot.ports import MINUTE_MS

SHOWN = 10
"""How many minutes a report names per finding (the count is always whole)."""
RULES = {
    "high >= max(open, close)": pl.col("high") >= pl.max_horizontal("open", "close"),
    "low <= min(open, close)": pl.col("low") <= pl.min_horizontal("open", "close"),
    "low > 0": pl.col("low") > 0,
    "volume >= 0": pl.col("volume") >= 0,
    "quote_volume >= 0": pl.col("quote_volume") >= 0,
    "0 <= taker_buy_base <= volume": (pl.col("taker_buy_base") >= 0) & (pl.col("taker_buy_base") <= pl.col("volume")),
}
"""Each rule a candle must keep; a candle breaking one is reported under its text."""


def epoch_ms(frame: pl.DataFrame) -> pl.Series:
    return frame.get_column("open_time").dt.epoch("ms")


def dedupe(frame: pl.DataFrame) -> tuple[pl.DataFrame, int, list[int]]:
    """(the frame without repeats of identical rows, how many were dropped, the minutes whose rows disagree)."""
    unique = frame.unique(maintain_order=True)
    conflicts = epoch_ms(unique.filter(pl.col("open_time").is_duplicated())).unique().sort().to_list()
    return unique, frame.height - unique.height, conflicts


def gaps(frame: pl.DataFrame, first_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """(first missing minute, how many minutes) of every run of minutes in [first, end) without a candle."""
    times = epoch_ms(frame).filter((epoch_ms(frame) >= first_ms) & (epoch_ms(frame) < end_ms)).unique().sort()
    edges = pl.concat([pl.Series([first_ms - MINUTE_MS], dtype=pl.Int64), times,
                       pl.Series([end_ms], dtype=pl.Int64)])
    steps = edges.diff().slice(1)
    starts = edges.slice(0, edges.len() - 1) + MINUTE_MS
    found = pl.DataFrame({"start": starts, "minutes": steps // MINUTE_MS - 1}).filter(pl.col("minutes") > 0)
    return [(int(s), int(n)) for s, n in found.iter_rows()]


def broken(frame: pl.DataFrame) -> dict[str, list[int]]:
    """Rule -> the open times (ms) of the candles that break it; only rules something breaks."""
    found = {}
    for rule, holds in RULES.items():
        times = epoch_ms(frame.filter(~holds.fill_null(False))).to_list()
        if times:
            found[rule] = times
    return found


def candle_report(frame: pl.DataFrame, first_ms: int, end_ms: int) -> dict[str, Any]:
    """The findings over [first, end) of a deduplicated, sorted candle frame, for printing and ``--json``."""
    span = frame.filter((epoch_ms(frame) >= first_ms) & (epoch_ms(frame) < end_ms))
    runs = gaps(span, first_ms, end_ms)
    return {"candles_in_span": span.height, "minutes_in_span": (end_ms - first_ms) // MINUTE_MS,
            "missing_minutes": sum(n for _, n in runs), "gaps": len(runs),
            "gap_list": [{"from": iso(s), "until": iso(s + n * MINUTE_MS), "minutes": n} for s, n in runs],
            "ohlc": {rule: {"count": len(times), "first": [iso(t) for t in times[:SHOWN]]}
                     for rule, times in broken(span).items()}}
