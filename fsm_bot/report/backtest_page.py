"""``fsm-bot backtest``'s page: the aggregate a trader reads first, in the session report's layout (the result
in a header strip, then the plots, then the tables), as ``report.html`` beside ``aggregate.json``.

The money here comes from ``backtest.aggregate``, whose totals are exact sums of the sessions' own amounts;
the page shows them as dollars with cents and keeps each exact amount in ``data-exact``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

from fsm_bot import page as web
from fsm_bot.config import Config
from fsm_bot.money import plain, usd
from fsm_bot.page import Figure, pct

QUANTILES = (("p05", "5%"), ("p25", "25%"), ("p50", "median"), ("p75", "75%"), ("p95", "95%"))


def dollars(x: float | None) -> Decimal | None:
    """A float the aggregate carries back to the short decimal it was made from."""
    return None if x is None else Decimal(repr(x))


def money_figure(id: str, label: str, amount: float, note: str, sign: bool = True) -> Figure:
    d = dollars(amount)
    return Figure(id, label, usd(d, sign=sign), note, plain(d), web.tone(d) if sign else "")


def head(a: dict[str, Any], cfg: Config) -> list[Figure]:
    fc, dd, start = a["final_capital"], a["max_drawdown"], cfg.capital_usd
    median = dollars(round(fc["median"], 6))
    halts = f"{a['halts']:,} halted ({pct(a['halt_share'])})" if a["sessions"] else "none"
    per_trade = f"{usd(dollars(round(a['pnl_per_trade'], 4)), sign=True)} a trade" if a["pnl_per_trade"] is not None \
        else "no trade"
    wins, n = a["wins"], a["trades"]
    return [
        Figure("sessions", "sessions", f"{a['sessions']:,}", f"{halts}; {pct(a['sessions_in_profit'])} in profit"),
        Figure("median", "median final capital", usd(median), f"5%-95%: {usd(dollars(fc['p05']))}-"
               f"{usd(dollars(fc['p95']))}; from {usd(start)}, floor {usd(cfg.floor_usd)}", plain(median),
               web.tone(median - start)),
        money_figure("pnl", "PnL after fees", a["pnl_total"], f"all sessions; {per_trade}"),
        money_figure("fees", "fees paid", a["fees_total"], f"{n:,} trades", sign=False),
        money_figure("gross", "PnL before fees", a["pnl_gross_total"], "gross: PnL + fees"),
        web.hit_figure(wins, n, tuple(a["hit_rate_wilson95"]), a["breakeven_hit_rate"]),
        Figure("drawdown", "max drawdown", pct(dd["p50"]), f"median session; 95% of sessions under {pct(dd['p95'])}",
               tone="bad" if dd["p50"] else ""),
    ]


def story(a: dict[str, Any]) -> str:
    if not a["trades"]:
        return "No interval traded."
    gross, fees, net = (dollars(a[k]) for k in ("pnl_gross_total", "fees_total", "pnl_total"))
    text = f"Before fees the trades made {usd(gross, sign=True)}; {usd(fees)} of fees left {usd(net, sign=True)}."
    if a["breakeven_hit_rate"] is not None:
        lo, hi = a["hit_rate_wilson95"]
        text += (f" Break-even is a hit rate of {pct(a['breakeven_hit_rate'])} at the average entry price "
                 f"{a['avg_entry_price']:.4f}; the hit rate, {pct(a['hit_rate'])} over {a['trades']:,} trades (95% "
                 f"Wilson {pct(lo)}-{pct(hi)}), is {a['vs_breakeven']} break-even.")
    return text


def counts_table(id: str, title: str, counts: dict[str, int], total: int) -> str:
    if not counts:
        return ""
    rows = [[web.text_cell(k), web.number_cell(f"{v:,}"), web.number_cell(pct(v / total) if total else "-")]
            for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return f"<h2>{title}</h2>" + web.table(id, ("reason", "count", "share"), rows, (False, True, True))


def quantile_table(a: dict[str, Any]) -> str:
    fc, dd = a["final_capital"], a["max_drawdown"]
    rows = [[web.text_cell(name), web.money_cell(dollars(fc[k])), web.number_cell(pct(dd[k]))] for k, name in QUANTILES]
    rows.append([web.text_cell("mean"), web.money_cell(dollars(round(fc["mean"], 6))), web.number_cell("-")])
    return ("<h2>Sessions, by quantile</h2>"
            + web.table("quantiles", ("quantile", "final capital $", "max drawdown"), rows, (False, True, True)))


def page(a: dict[str, Any], cfg: Config, plots: Sequence[Path], span: str) -> str:
    """The page of one backtest; ``plots`` are embedded (the PNG files stay beside it)."""
    images = [web.image(p.read_bytes(), p.stem.replace("_", " ")) for p in plots]
    sections = [*images, quantile_table(a),
                counts_table("halts", "Halts", a["halt_causes"], a["sessions"]),
                counts_table("skips", "Skipped intervals", a["skip_reasons"], a["intervals"])]
    subtitle = (f"{a['sessions']:,} back-to-back {cfg.intervals}-interval sessions, {span}; policy {cfg.policy} · "
                f"fee rate {float(cfg.fee_rate):.1%} · start {usd(cfg.capital_usd)} · floor {usd(cfg.floor_usd)}")
    return web.layout("Backtest report", subtitle, head(a, cfg), story(a), sections)
