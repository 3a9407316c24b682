"""The research figures, each saying what it shows and of what: a backtest's final capital per session and its
hit rate by month (``fsm-bot backtest``), and the exact risk of the sizing and halt rules (``fsm-bot risk
--plot``). Titles name the span (UTC), the policy, the fee rate, the starting capital and the floor; break-even,
``p x (1 + rate x (1 - p))`` at the entry price, is drawn where it is. The numbers a figure draws come from the
small functions here (``capital_marks``, ``monthly``, ``average_entry``, ``breakeven``, ``span``), which the tests
check against the frames on their own.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fsm_bot.backtest import exact_sum, hit_rate_by_month, wilson
from fsm_bot.config import Config
from fsm_bot.exact_risk import breakeven_win_rate
from fsm_bot.money import usd
from fsm_bot.report.chart import tex
from fsm_bot.values import frozen

MIN_TRADES = 100  # a month with fewer trades is drawn faded: its interval is too wide to read against the others
DPI = 110
SIZES = {"final_capital.png": (9.0, 4.8), "hit_rate_by_month.png": (10.0, 5.6), "risk.png": (11.5, 5.0)}
BLUE, PALE, RED, GREY = "#1f5f9f", "#e8a29c", "#b3261e", "#5f6368"
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@frozen
class Month:
    """One month of traded intervals (UTC, by the interval's start)."""

    month: str  # 2024-03
    trades: int
    wins: int
    rate: float
    low: float  # the 95% Wilson interval of the rate
    high: float
    faded: bool  # fewer than the figure's minimum of trades


@frozen
class Marks:
    """What the final-capital histogram marks besides the start and the floor."""

    sessions: int
    median: float | None  # final capital, USD
    halted: int
    halt_share: float | None


def monthly(decisions: pl.DataFrame, min_trades: int = MIN_TRADES) -> list[Month]:
    return [Month(r["month"], r["trades"], r["wins"], r["hit_rate"], *wilson(r["wins"], r["trades"]),
                  faded=r["trades"] < min_trades) for r in hit_rate_by_month(decisions).iter_rows(named=True)]


def average_entry(decisions: pl.DataFrame) -> Decimal | None:
    """The average fill price of the traded intervals, to 4 decimals; ``None`` without a trade."""
    prices = decisions.filter(pl.col("action") == "trade").get_column("fill_price").drop_nulls()
    return (exact_sum(prices) / len(prices)).quantize(Decimal("0.0001")) if len(prices) else None


def breakeven(decisions: pl.DataFrame, cfg: Config) -> float | None:
    """The hit rate at which the traded intervals' average entry has zero expected PnL after the fee."""
    price = average_entry(decisions)
    return None if price is None else breakeven_win_rate(price, cfg.fee_rate)


def capital_marks(sessions: pl.DataFrame) -> Marks:
    n = sessions.height
    if n == 0:
        return Marks(0, None, 0, None)
    halted = sessions.filter(pl.col("halted") != "").height
    return Marks(n, float(sessions.get_column("final_capital").median()), halted, halted / n)


def span(decisions: pl.DataFrame) -> str:
    """``2023-04-01 to 2025-03-31 UTC``: the first and the last interval's start (with the times within a day)."""
    starts = decisions.get_column("interval_start").drop_nulls()
    if len(starts) == 0:
        return "no intervals"
    first, last = starts.min(), starts.max()
    if first[:10] == last[:10]:
        return f"{first[:10]} {first[11:16]}-{last[11:16]} UTC"
    return f"{first[:10]} to {last[:10]} UTC"


def context(fee_rate: float, capital_usd: Decimal, floor_usd: Decimal) -> str:
    return f"fee rate {fee_rate:.1%} · start {usd(capital_usd)} · floor {usd(floor_usd)}"


def about(cfg: Config) -> str:
    return f"policy {cfg.policy} · {context(float(cfg.fee_rate), cfg.capital_usd, cfg.floor_usd)}"


def capital_title(sessions: pl.DataFrame, decisions: pl.DataFrame, cfg: Config) -> str:
    return tex(f"final capital of {sessions.height:,} back-to-back {cfg.intervals}-interval sessions, "
               f"{span(decisions)}\n{about(cfg)}")


def monthly_title(decisions: pl.DataFrame, cfg: Config) -> str:
    return tex(f"hit rate of the traded intervals by month, {span(decisions)}\n{about(cfg)}")


def risk_title(rows: list[dict[str, Any]]) -> str:
    r = rows[0]
    money = context(r["fee_rate"], Decimal(repr(r["capital_usd"])), Decimal(repr(r["floor_usd"])))
    return tex(f"exact risk of the sizing and halt rules: {r['intervals']}-interval sessions, every trade at one entry "
               f"price, all {r['sequences']:,} win/loss sequences\n{money} · dotted: each entry price's break-even")


def month_labels(months: list[str]) -> list[str]:
    """``Apr`` over ``2023`` where the year is new to the row of labels, else the month alone."""
    years = [None] + [m[:4] for m in months]
    return [MONTHS[int(m[5:7]) - 1] + (f"\n{m[:4]}" if m[:4] != before else "") for m, before in zip(months, years)]


def nice(x: float) -> float:
    """The largest of 1, 2, 2.5, 5 x a power of ten that is at most ``x`` (a bin width people read)."""
    if x <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(x))
    return max(k * power for k in (1, 2, 2.5, 5, 10) if k * power <= x * (1 + 1e-9))


def pyplot() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def percent(axis: Any) -> None:
    """Ticks in %, with as many decimals as their step needs, so that no two read the same."""
    from matplotlib.ticker import FuncFormatter

    def label(x: float, _: Any) -> str:
        step = min(np.diff(axis.get_majorticklocs()), default=0.01) * 100
        return f"{x * 100:.{max(0, math.ceil(-math.log10(step) - 1e-9)) if step > 0 else 0}f}%"
    axis.set_major_formatter(FuncFormatter(label))


def whole(axis: Any, prefix: str = "") -> None:
    """Ticks as whole numbers with thousands separators after ``prefix``: ``10,000``, ``$100``."""
    from matplotlib.ticker import FuncFormatter
    axis.set_major_formatter(FuncFormatter(lambda x, _: tex(f"{prefix}{x:,.0f}")))


def save(fig: Any, path: Any) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")  # whatever the file's name ends in
    pyplot().close(fig)


def backtest(sessions: pl.DataFrame, decisions: pl.DataFrame, out: Path, cfg: Config,
             min_trades: int = MIN_TRADES) -> list[Path]:
    """``final_capital.png`` and ``hit_rate_by_month.png`` in ``out``."""
    final_capital(sessions, decisions, cfg, out / "final_capital.png")
    hit_rate(decisions, cfg, out / "hit_rate_by_month.png", min_trades)
    return [out / "final_capital.png", out / "hit_rate_by_month.png"]


def final_capital(sessions: pl.DataFrame, decisions: pl.DataFrame, cfg: Config, path: Any) -> None:
    """The final capital of every session as a share of sessions, halted sessions stacked apart, with the
    start, the floor and the median marked."""
    m = capital_marks(sessions)
    fig, ax = pyplot().subplots(figsize=SIZES["final_capital.png"])
    width = capital_bars(ax, sessions, m, cfg) if m.sessions else 1.0
    ax.axvline(float(cfg.capital_usd), color=GREY, ls="--", lw=1.3, zorder=4,
               label=tex(f"start {usd(cfg.capital_usd)}"))
    ax.axvline(float(cfg.floor_usd), color=RED, ls=":", lw=2.4, zorder=5, label=tex(f"floor {usd(cfg.floor_usd)}"))
    ax.set_xlabel("capital at the end of the session, USD")
    ax.set_ylabel(tex(f"share of sessions per ${width:g}"))
    whole(ax.xaxis, "$")
    percent(ax.yaxis)
    ax.grid(alpha=0.3, zorder=0)
    ax.legend(fontsize=9, framealpha=0.95)
    ax.set_title(capital_title(sessions, decisions, cfg), fontsize=10, loc="left")
    save(fig, path)


def capital_bars(ax: Any, sessions: pl.DataFrame, m: Marks, cfg: Config) -> float:
    """The stacked bars, the median and the largest final capital; returns the bars' width in USD."""
    final, halted = sessions.get_column("final_capital"), sessions.get_column("halted") != ""
    low, high = min(float(final.min()), float(cfg.floor_usd)), max(float(final.max()), float(cfg.capital_usd))
    width = nice((high - low) / min(80, max(10, m.sessions)))  # fewer sessions, wider bars
    edges = [low + width * k for k in range(math.ceil((high - low) / width) + 2)]
    ran, stopped = final.filter(~halted).to_numpy(), final.filter(halted).to_numpy()
    ax.hist([ran, stopped], bins=edges, stacked=True, color=[BLUE, PALE], zorder=2,
            weights=[np.full(len(ran), 1 / m.sessions), np.full(len(stopped), 1 / m.sessions)],
            label=[f"not halted ({m.sessions - m.halted:,})", f"halted ({m.halted:,}: {m.halt_share:.1%} of sessions)"])
    ax.axvline(m.median, color="black", lw=1.6, zorder=4, label=tex(f"median {usd(Decimal(repr(m.median)))}"))
    ax.set_xlim(low - (high - low) * 0.03 - width, high + (high - low) * 0.03 + width)
    most = float(final.max())
    ax.annotate(tex(f"largest {usd(Decimal(repr(most)))}"), xy=(most, 0), xytext=(most, 0.06 * ax.get_ylim()[1]),
                ha="right", fontsize=8.5, color=GREY, arrowprops={"arrowstyle": "->", "color": GREY})
    return width


def hit_rate(decisions: pl.DataFrame, cfg: Config, path: Any, min_trades: int = MIN_TRADES) -> None:
    """The hit rate of each month with its 95% interval against break-even, the trades of each month below."""
    months = monthly(decisions, min_trades)
    fig, (top, bottom) = pyplot().subplots(2, 1, sharex=True, figsize=SIZES["hit_rate_by_month.png"],
                                           gridspec_kw={"height_ratios": [3, 1.1]})
    rates_panel(top, months, decisions, cfg, min_trades)
    top.set_title(monthly_title(decisions, cfg), fontsize=10, loc="left")
    trades_strip(bottom, months)
    save(fig, path)


def rates_panel(ax: Any, months: list[Month], decisions: pl.DataFrame, cfg: Config, min_trades: int) -> None:
    be, price = breakeven(decisions, cfg), average_entry(decisions)
    faded = sum(m.faded for m in months)
    thin = f"under {min_trades} trades ({faded} month{'' if faded == 1 else 's'}), faded"
    for pick, alpha, label in ((False, 1.0, "hit rate, 95% Wilson interval"), (True, 0.35, thin)):
        mine = [(x, m) for x, m in enumerate(months) if m.faded == pick]
        ax.errorbar([x for x, _ in mine], [m.rate for _, m in mine], yerr=[[m.rate - m.low for _, m in mine],
                                                                           [m.high - m.rate for _, m in mine]],
                    fmt="o", capsize=2.5, color=BLUE, alpha=alpha, mfc="white" if pick else BLUE, label=label, zorder=3)
    ax.axhline(0.5, color=GREY, lw=0.9, ls="--", label="coin flip 50%", zorder=2)
    marks = [0.5]
    if be is not None:
        marks.append(be)
        ax.axhline(be, color=RED, lw=1.5, zorder=2,
                   label=f"break-even {be:.2%} (average entry {price}, fee rate {float(cfg.fee_rate):.1%})")
    if not months:
        ax.text(0.5, 0.5, "no trades in this span", transform=ax.transAxes, ha="center", va="center", color=GREY)
    low, high = min([m.low for m in months] + marks), max([m.high for m in months] + marks)
    ax.set_ylim(max(0.0, low - (high - low) * 0.05 - 0.002),
                min(1.0, high + (high - low) * 0.32 + 0.01))  # room on top for the legend
    ax.set_ylabel("hit rate")
    percent(ax.yaxis)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, ncol=2, loc="upper center", framealpha=0.95)


def trades_strip(ax: Any, months: list[Month]) -> None:
    """The trades of each month as bars, their count above them, the months named below."""
    trades = [m.trades for m in months]
    ax.bar(range(len(months)), trades, color=[PALE if m.faded else BLUE for m in months], width=0.7)
    if len(months) <= 36:
        for x, n in enumerate(trades):
            ax.text(x, n, f"{n / 1000:.1f}k" if n >= 1000 and len(months) > 18 else f"{n:,}", ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylim(0, max(trades, default=1) * 1.35)
    room = max(0.0, (6 - len(months)) / 2)  # a month or two are not drawn a page wide
    ax.set_xlim(-0.5 - room, len(months) - 0.5 + room)
    ax.set_ylabel("trades")
    whole(ax.yaxis)
    ax.yaxis.get_major_locator().set_params(integer=True)
    every = max(1, math.ceil(len(months) / 30))
    ax.set_xticks(range(0, len(months), every), month_labels([m.month for m in months][::every]), fontsize=8.5)
    ax.set_xlabel("month, UTC (by the interval's start)")


def risk(rows: list[dict[str, Any]], path: Any) -> None:
    """P(halt) and expected final capital against the win rate, a line per entry price, its break-even dotted."""
    plt = pyplot()
    fee, capital, floor = (Decimal(repr(rows[0][k])) for k in ("fee_rate", "capital_usd", "floor_usd"))
    prices, rates = sorted({r["price"] for r in rows}), sorted({r["win_rate"] for r in rows})
    bes = [breakeven_win_rate(Decimal(str(price)), fee) for price in prices]
    near = [w for w in rates + bes if rates[0] - 0.05 <= w <= rates[-1] + 0.05]  # a far break-even only in the legend
    pad = max((max(near) - min(near)) * 0.04, 0.01)
    lo, hi = min(near) - pad, max(near) + pad
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=SIZES["risk.png"])
    for k, (price, be) in enumerate(zip(prices, bes)):
        mine = sorted((r for r in rows if r["price"] == price), key=lambda r: r["win_rate"])
        ws, colour = [r["win_rate"] for r in mine], f"C{k}"
        ax1.plot(ws, [r["p_halt"] for r in mine], marker="o", color=colour,
                 label=f"entry {price:.2f}, break-even {be:.1%}")
        ax2.plot(ws, [r["expected_final"] for r in mine], marker="o", color=colour)
        for ax in (ax1, ax2):
            if lo <= be <= hi:
                ax.axvline(be, color=colour, ls=":", lw=1.3)
    ax2.axhline(float(capital), color=GREY, lw=1, ls="--", label=tex(f"start {usd(capital)}"))
    ax2.axhline(float(floor), color=RED, lw=1.2, ls=":", label=tex(f"floor {usd(floor)}"))
    ax2.set_ylim(bottom=min(float(floor), min(r["expected_final"] for r in rows)) - 3)
    ax1.set_ylim(bottom=0)
    ax1.set(title="probability that the session halts", ylabel="P(halt)")
    ax2.set(title="expected capital at the end of the session", ylabel="expected final capital, USD")
    for ax in (ax1, ax2):
        ax.set_xlim(lo, hi)
        if 3 <= len(rates) <= 12:
            ax.set_xticks(rates)
        ax.set_xlabel("win rate of the trades")
        percent(ax.xaxis)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, framealpha=0.95)
    percent(ax1.yaxis)
    whole(ax2.yaxis, "$")
    fig.suptitle(risk_title(rows), fontsize=10, x=0.01, ha="left")
    save(fig, path)
