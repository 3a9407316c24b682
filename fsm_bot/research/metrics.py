"""What a sweep keeps of a trial's month, and what it reads from any span of months.

A chunk's result is counts and sums only (sessions, halts, trades, wins, PnL, fees, entry prices), so the
result of any window of months is the sum of its chunks' and no chunk is ever run twice; hit rates, their
Wilson intervals, PnL per session and the objectives are derived from the sums.

The objectives a walk-forward picks the best trial of a train window by:

- ``pnl`` (the default): PnL after fees per session, USD. It is what the account sees: the hit rate, the
  entry prices and their fees, the price guard's skips, the streak sizing and the halts all end up in it.
- ``edge``: the lower end of the hit rate's 95% Wilson interval minus the break-even hit rate at the trial's
  average entry price. It asks for a hit rate that clears the fees with confidence, so a trial that trades
  rarely ranks low; it ignores the sizing and the halts, which decide the dollars.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Iterable

import polars as pl

from fsm_bot.backtest import exact_sum, wilson
from fsm_bot.config import Config
from fsm_bot.exact_risk import breakeven_win_rate

TIERS = ("strict", "reversion", "lean")
COUNTS = ("sessions", "halts", "trades", "wins", "intervals", "in_profit",
          *(f"{k}_{tier}" for tier in TIERS for k in ("trades", "wins")))
SUMS = ("pnl", "fees", "entry_price_sum", "pnl_sq", "drawdown_sum")
OBJECTIVES = {"pnl": "PnL after fees per session (USD)",
              "edge": "Wilson 95% lower bound of the hit rate minus break-even"}


def measure(sessions: pl.DataFrame, decisions: pl.DataFrame, cfg: Config) -> dict[str, Any]:
    """The counts and sums of one chunk's sessions and decisions."""
    if sessions.height == 0:
        return {**dict.fromkeys(COUNTS, 0), **dict.fromkeys(SUMS, 0.0), "first_start": None, "last_start": None}
    trades = decisions.filter(pl.col("action") == "trade")
    pnl = sessions.get_column("pnl")
    by_tier = {tier: trades.filter(pl.col("tier") == tier) for tier in TIERS}
    return {**{f"trades_{tier}": t.height for tier, t in by_tier.items()},
            **{f"wins_{tier}": int((t.get_column("outcome") == "WIN").sum()) for tier, t in by_tier.items()},
            "sessions": sessions.height, "halts": int((sessions.get_column("halted") != "").sum()),
            "trades": trades.height, "wins": int((trades.get_column("outcome") == "WIN").sum()),
            "intervals": decisions.height,
            "in_profit": int((sessions.get_column("final_capital") > float(cfg.capital_usd)).sum()),
            "pnl": float(exact_sum(pnl)), "fees": float(exact_sum(sessions.get_column("fees"))),
            "entry_price_sum": float(exact_sum(trades.get_column("fill_price"))),
            "pnl_sq": float((pnl * pnl).sum()), "drawdown_sum": float(sessions.get_column("max_drawdown").sum()),
            "first_start": sessions.get_column("start").min(), "last_start": sessions.get_column("start").max()}


def totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sums of several chunks' results: a window's result."""
    rows = list(rows)
    out: dict[str, Any] = {k: sum(r[k] for r in rows) for k in COUNTS}
    out |= {k: math.fsum(r[k] for r in rows) for k in SUMS}
    starts = [r["first_start"] for r in rows if r["first_start"]]
    lasts = [r["last_start"] for r in rows if r["last_start"]]
    return out | {"first_start": min(starts, default=None), "last_start": max(lasts, default=None)}


def derived(t: dict[str, Any], fee_rate: Decimal) -> dict[str, Any]:
    """Rates of a result: hit rate and its 95% Wilson interval, PnL per session (and its standard error),
    halt share, break-even hit rate at the average entry price, and both objectives (None when undefined)."""
    n, s = t["trades"], t["sessions"]
    lo, hi = wilson(t["wins"], n)
    price = Decimal(repr(t["entry_price_sum"] / n)).quantize(Decimal("0.0001")) if n else None
    be = breakeven_win_rate(price, fee_rate) if price is not None else None
    mean = t["pnl"] / s if s else None
    se = math.sqrt(max(t["pnl_sq"] / s - mean * mean, 0.0) / (s - 1)) if s > 1 else None
    return {"hit_rate": t["wins"] / n if n else None, "hit_low": lo if n else None, "hit_high": hi if n else None,
            "pnl_per_session": mean, "pnl_per_session_se": se, "halt_share": t["halts"] / s if s else None,
            "avg_entry_price": float(price) if price is not None else None, "breakeven": be,
            "edge": lo - be if be is not None else None, "fees_per_session": t["fees"] / s if s else None,
            "drawdown_mean": t["drawdown_sum"] / s if s else None}


def objective(name: str, d: dict[str, Any]) -> float | None:
    """The objective ``name`` of a derived result (higher is better)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}")
    return d["pnl_per_session"] if name == "pnl" else d["edge"]


def ranked(value: float | None) -> float:
    """An objective as a sort key: undefined ranks below every number."""
    return -math.inf if value is None else value
