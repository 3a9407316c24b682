"""A shipped Polymarket sample as a recorded-prices file for ``fsm-bot backtest --prices``.

Writes the sample (``fsm_bot/research/prices.py`` says what each holds) in the schema ``fsm-bot data
polymarket`` writes, and prints what it holds and which candle file covers the same days:

    python scripts/recorded_prices.py 2025-12 --out prices-2025-12.parquet [--data-dir ../shared/data]
    fsm-bot backtest --data ../shared/data/btcusdt_1m_2025-12-12_to_19_ohlcv.parquet \\
        --prices prices-2025-12.parquet --settle candles
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fsm_bot.research import prices  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", choices=sorted(prices.SAMPLES))
    ap.add_argument("--out", type=Path, required=True, metavar="FILE", help="the recorded-prices parquet to write")
    ap.add_argument("--data-dir", type=Path, default=DATA, metavar="DIR", help="the samples (default ../shared/data)")
    args = ap.parse_args(argv)
    frame = prices.convert(args.sample, args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(args.out)
    markets = frame.group_by("window_start").agg(priced=pl.col("t").is_not_null().any(),
                                                 resolved=pl.col("resolved_outcome").first())
    candles = prices.CANDLES.get(args.sample)
    print(json.dumps({
        "wrote": str(args.out), "rows": frame.height, "markets": markets.height,
        "markets_with_prices": int(markets.get_column("priced").sum()),
        "markets_resolved": int(markets.get_column("resolved").is_not_null().sum()),
        "first_window": str(frame.get_column("window_start").min()),
        "last_window": str(frame.get_column("window_start").max()),
        "candles": str(args.data_dir / candles) if candles else None}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
