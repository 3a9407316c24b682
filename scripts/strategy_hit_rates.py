"""Hit rate of each tier of the prediction policy over real candles (default: the 2-year dev file).

Every 5-minute interval start with 100 closed candles before it is decided by the machine's own
code (``fsm_bot.indicators`` on the 100-candle window, ``states.predict``'s tiers) and compared with
the interval's result (UP if the close of its last minute >= the open of its first). Prints JSON.

    python scripts/strategy_hit_rates.py [--data FILE] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from fsm_bot.adapters.sim import load_candles
from fsm_bot.config import Config
from fsm_bot.indicators import range_pct, rsi_macd, taker_flow_imbalance
from states.predict import lean, reversion, strict

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btcusdt_1m_dev.parquet"


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def decide_all(frame, cfg: Config, limit: int | None = None):
    t = frame.get_column("open_time").to_numpy()
    o, h, l, c, v, tb = (frame.get_column(x).to_numpy() for x in ("open", "high", "low", "close", "volume", "taker_buy_base"))
    step_ms, n = cfg.interval_secs * 1000, cfg.candles
    starts = np.nonzero(t % step_ms == 0)[0]
    starts = starts[(starts >= n) & (starts + cfg.interval_minutes <= len(t))]
    if limit:
        starts = starts[:limit]
    for i in starts:
        rsi, macd, signal = rsi_macd(c[i - n:i], cfg)
        snap = SimpleNamespace(rsi=rsi, macd=macd, macd_signal=signal,
                               imbalance=taker_flow_imbalance(v[i - n:i], tb[i - n:i], cfg.imbalance_candles))
        up = c[i + cfg.interval_minutes - 1] >= o[i]
        decision = strict(snap, cfg) or reversion(snap, cfg) or lean(snap, cfg)
        yield int(t[i]), decision, bool(up), range_pct(h[i - n:i], l[i - n:i], cfg.volatility_candles)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--limit", type=int, help="only the first N intervals")
    args = ap.parse_args(argv)
    cfg = Config()
    tiers: dict[str, list[int]] = {}
    strict_fires = []
    for start_ms, d, up, _ in decide_all(load_candles(args.data), cfg, args.limit):
        hit = (d.side == "UP") == up
        tiers.setdefault(d.tier, [0, 0])
        tiers[d.tier][0] += hit
        tiers[d.tier][1] += 1
        if d.tier == "strict":
            strict_fires.append(start_ms)
    total = sum(n for _, n in tiers.values())
    out = {"data": str(args.data), "intervals": total,
           "tiers": {tier: {"decided": n, "share": n / total, "hits": h, "hit_rate": h / n,
                            "wilson95": wilson(h, n)} for tier, (h, n) in sorted(tiers.items())},
           "all_tiers": {"hits": sum(h for h, _ in tiers.values()),
                         "hit_rate": sum(h for h, _ in tiers.values()) / total},
           "strict_fire_rate": len(strict_fires) / total}
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
