"""``fsm-bot report``: a session's equity curve with its drawdown and the floor (PNG), its trades,
skip and halt reasons, corrections and summary numbers, as Markdown and one self-contained HTML page.

Everything is read from the journal (the source of truth), so a report can be made of any session,
finished, halted or interrupted, without taking its lock.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsm_bot import engine, journal
from fsm_bot.backtest import wilson
from fsm_bot.errors import StateDirError
from fsm_bot.money import max_drawdown, plain
from fsm_bot.session import Session, fold, iso_seconds
from fsm_bot.statedir import JOURNAL
from fsm_bot.steps import Reconciled, TradeRow


@dataclass
class Point:
    interval: int
    ts_ms: int
    capital: Decimal


@dataclass
class Report:
    session: Session
    rows: list[TradeRow]
    equity: list[Point]
    summary: dict[str, Any]


def equity_curve(records: list[dict[str, Any]]) -> list[Point]:
    """Capital after every interval (and after every correction), from the journal."""
    points: list[Point] = []
    for before, after, step, rec in engine.sessions(records):
        if before is None:
            points.append(Point(0, after.start_ms, after.capital))
        elif step.trigger == "recorded":
            k = after.trades[-1].interval_number
            points.append(Point(k, after.interval_end(k), after.capital))
        elif step.trigger == "halt":
            for k in range(after.interval, after.intervals + 1):
                points.append(Point(k, after.interval_end(k), after.capital))
        elif isinstance(step, Reconciled) and after.capital != before.capital:
            points.append(Point(before.interval - 1, after.ts_ms, after.capital))
    return points


def brier(pairs: list[tuple[float, int]]) -> float | None:
    return sum((f - y) ** 2 for f, y in pairs) / len(pairs) if pairs else None


def summarise(s: Session, rows: list[TradeRow], equity: list[Point]) -> dict[str, Any]:
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    wins = sum(r.outcome == "WIN" for r in traded)
    lo, hi = wilson(wins, len(traded))
    unreconciled = [r.interval for r in s.resolutions if r.status == "unreconciled"]
    return {
        "session": s.session, "mode": s.mode, "start": iso_seconds(s.start_ms), "intervals": len(rows),
        "state": "HALTED" if s.halted else ("finished" if s.finished else f"{s.state} (unfinished)"),
        "halted": s.halted, "halt_detail": s.halt_detail,
        "trades": len(traded), "wins": wins, "losses": len(traded) - wins,
        "hit_rate": wins / len(traded) if traded else None, "hit_rate_wilson95": (lo, hi),
        "pnl": s.capital - s.capital0, "fees": sum((r.fee for r in rows), Decimal(0)),
        "capital_start": s.capital0, "capital_end": s.capital, "floor": s.floor,
        "max_drawdown": max_drawdown(p.capital for p in equity),
        "brier_entry_price": brier([(float(r.odds), r.outcome == "WIN") for r in traded if r.odds is not None]),
        "brier_confidence": brier([(r.confidence, r.outcome == "WIN") for r in traded]),
        "skip_reasons": dict(Counter(r.reason for r in rows if r.outcome == "SKIPPED").most_common()),
        "corrections": [{"interval": r.interval, "old": r.old_outcome, "new": r.new_outcome,
                         "pnl_change": r.pnl_change, "capital_after": r.capital_after} for r in s.corrections],
        "unreconciled": unreconciled + list(s.pending),
    }


def load(state_dir: Path) -> Report:
    path = Path(state_dir) / JOURNAL
    if not path.exists():
        raise StateDirError(f"{state_dir} holds no session to report on (no {JOURNAL})")
    records = journal.read(path).records
    if not records:
        raise StateDirError(f"{path}: the session never began")
    s = fold(records)
    rows = s.rows()
    equity = equity_curve(records)
    return Report(s, rows, equity, summarise(s, rows, equity))


def picture(r: Report, path: Path) -> None:
    """The equity curve, the floor and the start marked, with the drawdown from the running peak below."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    xs = [p.interval for p in r.equity]
    caps = [float(p.capital) for p in r.equity]
    peaks = [max(caps[: i + 1]) for i in range(len(caps))]
    dd = [(c - pk) / pk * 100 for c, pk in zip(caps, peaks)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    top.step(xs, caps, where="post", color="#1f5f9f", lw=2, label="capital")
    top.axhline(float(r.session.capital0), color="grey", ls="--", lw=1, label=f"start ${r.session.capital0}")
    top.axhline(float(r.session.floor), color="firebrick", ls=":", lw=1.5, label=f"floor ${r.session.floor}")
    for row in r.rows:
        if row.outcome in ("WIN", "LOSS"):
            top.plot(row.interval_number, float(row.capital_after), "o", ms=4,
                     color="seagreen" if row.outcome == "WIN" else "crimson")
    if r.session.halted:
        k = r.session.interval
        top.axvspan(k - 0.5, r.session.intervals + 0.5, color="firebrick", alpha=0.08,
                    label=f"halted: {r.session.halted}")
    top.set(ylabel="USD", title=f"{r.session.session}: equity after each interval")
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="best")
    bottom.fill_between(xs, dd, 0, step="post", color="crimson", alpha=0.35)
    bottom.set(xlabel="interval", ylabel="from peak, %")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, Decimal):
        return plain(value)  # exact: a report shows the journal's money, not a rounding of it
    return str(value)


def summary_lines(m: dict[str, Any]) -> list[tuple[str, str]]:
    lo, hi = m["hit_rate_wilson95"]
    hit = "-" if m["hit_rate"] is None else f"{m['hit_rate']:.1%} (95% Wilson {lo:.1%}-{hi:.1%})"
    return [
        ("session", f"{m['session']} ({m['mode']}), from {m['start']}"),
        ("state", m["state"] + (f": {m['halted']} ({m['halt_detail']})" if m["halted"] else "")),
        ("intervals", f"{m['intervals']}: {m['trades']} traded, {m['intervals'] - m['trades']} skipped"),
        ("wins / losses", f"{m['wins']} / {m['losses']}"),
        ("hit rate", hit),
        ("PnL", f"{m['pnl']:+.2f} USD (fees {m['fees']:.2f})"),
        ("capital", f"{m['capital_start']:.2f} -> {m['capital_end']:.2f} (floor {m['floor']:.2f})"),
        ("max drawdown", f"{m['max_drawdown']:.2%}"),
        ("Brier score, entry prices", "-" if m["brier_entry_price"] is None else f"{m['brier_entry_price']:.4f}"),
        ("Brier score, confidence", "-" if m["brier_confidence"] is None else f"{m['brier_confidence']:.4f}"),
        ("skip reasons", ", ".join(f"{k} x{v}" for k, v in m["skip_reasons"].items()) or "none"),
        ("corrections", str(len(m["corrections"]))),
        ("unreconciled", ", ".join(map(str, m["unreconciled"])) or "none"),
    ]


TRADE_COLUMNS = ("interval_number", "timestamp", "prediction", "confidence", "odds", "position_size", "shares", "fee",
                 "outcome", "pnl", "capital_after", "win_streak", "reason")


def markdown(r: Report, image: str) -> str:
    out = [f"# Session report: {r.session.session}", "", f"![equity and drawdown]({image})", "", "## Summary", "",
           "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in summary_lines(r.summary)]
    out += ["", "The Brier scores compare each trade's entry price (the market's probability of the chosen side) "
            "and the strategy's confidence with the outcome (1 for a WIN): lower is better, 0.25 is a coin flip.", ""]
    if r.summary["corrections"]:
        out += ["## Corrections", "", "| interval | old | new | PnL change | capital after |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {c['interval']} | {c['old']} | {c['new']} | {c['pnl_change']:+.5f} | {c['capital_after']:.2f} |"
                for c in r.summary["corrections"]]
        out.append("")
    out += ["## Trades", "", "| " + " | ".join(TRADE_COLUMNS) + " |", "|" + " --- |" * len(TRADE_COLUMNS)]
    out += ["| " + " | ".join(_fmt(getattr(row, c)) for c in TRADE_COLUMNS) + " |" for row in r.rows]
    return "\n".join(out) + "\n"


def page(r: Report, png: bytes) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(getattr(row, c)))}</td>" for c in TRADE_COLUMNS) + "</tr>"
                   for row in r.rows)
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary_lines(r.summary))
    fixes = "".join(f"<tr><td>{c['interval']}</td><td>{c['old']}</td><td>{c['new']}</td><td>{c['pnl_change']:+.5f}"
                    f"</td><td>{c['capital_after']:.2f}</td></tr>" for c in r.summary["corrections"])
    corrections = (f"<h2>Corrections</h2><table><tr><th>interval</th><th>old</th><th>new</th><th>PnL change</th>"
                   f"<th>capital after</th></tr>{fixes}</table>") if fixes else ""
    head = "".join(f"<th>{c}</th>" for c in TRADE_COLUMNS)
    title = html.escape(r.session.session)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fsm-bot report: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Session report: {title}</h1>
<img alt="equity and drawdown" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Summary</h2><table>{facts}</table>
<p>The Brier scores compare each trade's entry price (the market's probability of the chosen side) and the
strategy's confidence with the outcome (1 for a WIN): lower is better, 0.25 is a coin flip.</p>
{corrections}
<h2>Trades</h2><table><tr>{head}</tr>{rows}</table>
</body></html>
"""


def write(r: Report, out_dir: Path) -> list[Path]:
    """The report's three files in ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "equity.png"
    picture(r, png)
    (out_dir / "report.md").write_text(markdown(r, png.name), encoding="utf-8")
    (out_dir / "report.html").write_text(page(r, png.read_bytes()), encoding="utf-8")
    return [png, out_dir / "report.md", out_dir / "report.html"]
