"""The shipped Polymarket samples (``shared/data``, its README) as recorded-prices files, the schema
``backtest --prices`` reads (``fsm_bot.adapters.recorded.SCHEMA``, which ``fsm-bot data polymarket`` writes).

One row per recorded price point; a market with no point for either token gets one placeholder row (its
Up token, ``t`` and ``price`` null). Nothing is filled in that the sample does not hold:

- ``2025-12``: 670 BTC 15-minute markets, 2025-12-12 19:45 to 2025-12-19 19:30 UTC, the Up token's
  history for 440 of them. The sample records no resolution: ``resolved_outcome`` is null throughout
  (backtest it with ``--settle candles``). The one sample with candles of the same days.
- ``2026-01``: 615 BTC 15-minute markets with their official resolutions (the CLOB's ``winner`` flags),
  both tokens' history for 200 of them (2026-01-09 23:29 to 2026-01-12 06:00). No candles ship for it.
- ``2026-02-5m`` and ``2026-02-15m``: the official resolutions of 2,017 five-minute and 673 fifteen-minute
  markets, 2026-02-21 14:30 to 2026-02-28 14:30, no price at all (backtest them with ``--quotes simulated``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from fsm_bot.adapters.recorded import SCHEMA

SAMPLES: dict[str, tuple[str, ...]] = {
    "2025-12": ("polymarket_btc15m_up_price_history_2025-12-12_to_19.parquet",
                "polymarket_btc15m_markets_2025-12-12_to_19.parquet"),
    "2026-01": ("polymarket_btc15m_price_history_2026-01.parquet", "polymarket_btc15m_markets_2026-01.parquet"),
    "2026-02-5m": ("polymarket_btc_updown_resolutions_2026-02-21_to_28.parquet",),
    "2026-02-15m": ("polymarket_btc_updown_resolutions_2026-02-21_to_28.parquet",),
}
CANDLES = {"2025-12": "btcusdt_1m_2025-12-12_to_19_ohlcv.parquet",
           "2026-02-5m": "btcusdt_1m_2026-02-21_to_28_polymarket_week.parquet",
           "2026-02-15m": "btcusdt_1m_2026-02-21_to_28_polymarket_week.parquet"}
"""The sample's candles of the same days (OHLCV only: no taker flow); January has none."""


def conformed(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (times as ms) in the schema's columns and types, a market's rows together in time order."""
    times = ("window_start", "window_end", "t")
    return (rows.with_columns(pl.col(*times).cast(pl.Int64).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
            .select(*(pl.col(c).cast(t) for c, t in SCHEMA.items())).sort("window_start", "outcome", "t"))


def with_placeholders(points: pl.DataFrame, markets: pl.DataFrame) -> pl.DataFrame:
    """The points, and a placeholder row (the Up token, no ``t``, no ``price``) for each market without one;
    both frames carry the market's columns, ``markets`` its ``up_token``."""
    priced = points.get_column("slug").unique().to_list()
    empty = markets.filter(~pl.col("slug").is_in(priced)).select(
        *(c for c in markets.columns if c not in ("up_token", "down_token")), outcome=pl.lit("Up"),
        token_id=pl.col("up_token"), t=pl.lit(None, pl.Int64), price=pl.lit(None, pl.Float64))
    return pl.concat([points.select(empty.columns), empty], how="vertical_relaxed")


def from_up_history(history: pl.DataFrame, markets: pl.DataFrame) -> pl.DataFrame:
    """December's sample: ``slug, up_token, ts (unix s), up_price`` points and ``slug, condition_id, start, end,
    up_token, down_token`` markets (unix s); no resolution is recorded."""
    base = markets.select(
        "slug", "condition_id", "up_token", "down_token", window_start=pl.col("start") * 1000,
        window_end=pl.col("end") * 1000, interval_minutes=((pl.col("end") - pl.col("start")) // 60).cast(pl.Int32),
        resolved_outcome=pl.lit(None, pl.String))
    points = history.select("slug", t=pl.col("ts") * 1000, price="up_price", token_id="up_token").join(
        base.drop("up_token", "down_token"), on="slug", how="inner").with_columns(outcome=pl.lit("Up"))
    return conformed(with_placeholders(points, base))


def from_clob_history(history: pl.DataFrame, markets: pl.DataFrame) -> pl.DataFrame:
    """January's sample: ``slug, outcome, t, price`` points of both tokens and the markets with their
    ``resolved_outcome`` (Up/Down from the CLOB's winner flags)."""
    base = markets.select(
        "slug", "condition_id", "resolved_outcome", up_token="up_token_id", down_token="down_token_id",
        window_start=pl.col("window_start").dt.epoch("ms"), window_end=pl.col("window_end").dt.epoch("ms"),
        interval_minutes=((pl.col("window_end") - pl.col("window_start")).dt.total_minutes()).cast(pl.Int32))
    points = history.select("slug", "outcome", "price", t=pl.col("t").dt.epoch("ms")).join(
        base, on="slug", how="inner").with_columns(
        token_id=pl.when(pl.col("outcome") == "Up").then("up_token").otherwise("down_token"))
    return conformed(with_placeholders(points, base))


def from_resolutions(resolutions: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """February's sample: ``window_start, window_end, interval_min, slug, resolved_outcome, up_token_id``, no
    price and no condition id; its ``minutes``-long markets, each a placeholder row."""
    base = resolutions.filter(pl.col("interval_min") == minutes).select(
        "slug", "resolved_outcome", up_token="up_token_id", condition_id=pl.lit(None, pl.String),
        window_start=pl.col("window_start").dt.epoch("ms"), window_end=pl.col("window_end").dt.epoch("ms"),
        interval_minutes=pl.col("interval_min").cast(pl.Int32))
    return conformed(base.with_columns(outcome=pl.lit("Up"), token_id="up_token", t=pl.lit(None, pl.Int64),
                                       price=pl.lit(None, pl.Float64)))


def convert(sample: str, data_dir: Path) -> pl.DataFrame:
    """The named sample of ``data_dir`` (``SAMPLES``) as a recorded-prices frame."""
    if sample not in SAMPLES:
        raise ValueError(f"sample {sample!r}: one of {sorted(SAMPLES)}")
    frames = [pl.read_parquet(Path(data_dir) / name) for name in SAMPLES[sample]]
    if sample == "2025-12":
        return from_up_history(*frames)
    if sample == "2026-01":
        return from_clob_history(*frames)
    return from_resolutions(frames[0], int(sample.rsplit("-", 1)[1].removesuffix("m")))
