"""Where the simulated venue's book comes from: figures measured on real Polymarket BTC Up/Down books.

Reads the recorded top-of-book snapshots (about 1 Hz) of 70 BTC 15-minute markets and keeps those in
the first 30 s of each window with both sides of both books present, then prints, as JSON: the Up
book's spread in ticks (share of snapshots), the sum of the Up and Down asks, the Up mid, and the
dollar depth of the top five ask levels. ``fsm_bot/adapters/sim.py`` (``BookModel``) uses them.

    python scripts/calibrate_book.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BOOKS = "polymarket_btc15m_clob_top_of_book_2025-12-29_2026-01-02.parquet"


def quantiles(col: pl.Expr, qs=(0.1, 0.25, 0.5, 0.75, 0.9)) -> list[pl.Expr]:
    return [col.quantile(q).alias(f"q{int(q * 100)}") for q in qs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=DATA)
    args = ap.parse_args(argv)
    tob = pl.read_parquet(args.data_dir / BOOKS)
    both = (pl.col("up_bid") > 0) & (pl.col("up_ask") > 0) & (pl.col("down_bid") > 0) & (pl.col("down_ask") > 0)
    early = tob.filter(both).filter((pl.col("timestamp") - pl.col("window_start")).dt.total_seconds() <= 30)
    spread = early.select((pl.col("up_spread") * 100).round(0).cast(pl.Int64).alias("ticks"))["ticks"]
    share = spread.value_counts().sort("ticks").with_columns(share=pl.col("count") / spread.len())
    out = {
        "snapshots": early.height,
        "windows": early["window_start"].n_unique(),
        "up_spread_ticks_share": {str(r["ticks"]): round(r["share"], 4) for r in share.iter_rows(named=True)
                                  if r["share"] >= 0.005},
        "ask_sum": early.select(quantiles(pl.col("up_ask") + pl.col("down_ask"))).row(0, named=True),
        "up_mid": early.select(quantiles(pl.col("up_mid"))).row(0, named=True),
        "top5_ask_depth_usd": early.select(quantiles(pl.col("up_ask_liquidity") * pl.col("up_ask"))).row(0, named=True),
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
