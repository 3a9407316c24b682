"""``fsm-bot report``: a session's result, its equity curve with the drawdown and the floor (PNG), its trades,
skip and halt reasons, corrections and summary numbers, as Markdown and one self-contained HTML page that
reads on a phone (``fsm_bot.page``'s layout: the result first, then the chart, then the table).

Everything is read from the journal (the source of truth), so a report can be made of any session,
finished, halted or interrupted, without taking its lock.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsm_bot import engine, journal
from fsm_bot.backtest import wilson
from fsm_bot.errors import StateDirError
from fsm_bot.exact_risk import breakeven_win_rate
from fsm_bot.money import ZERO, max_drawdown
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


def fee_rate(s: Session, traded: list[TradeRow]) -> Decimal:
    """The taker fee rate the fills paid (fee = shares x rate x p x (1 - p)), else the config's."""
    base = sum((r.shares * r.odds * (1 - r.odds) for r in traded if r.odds is not None), ZERO)
    paid = sum((r.fee for r in traded), ZERO)
    return (paid / base).quantize(Decimal("0.0001")) if base > 0 else s.cfg.fee_rate


def summarise(s: Session, rows: list[TradeRow], equity: list[Point]) -> dict[str, Any]:
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    wins = sum(r.outcome == "WIN" for r in traded)
    lo, hi = wilson(wins, len(traded))
    unreconciled = [r.interval for r in s.resolutions if r.status == "unreconciled"]
    prices = [r.odds for r in traded if r.odds is not None]
    avg_price = (sum(prices, ZERO) / len(prices)).quantize(Decimal("0.0001")) if prices else None
    rate = fee_rate(s, traded)
    fees = sum((r.fee for r in rows), ZERO)
    be = breakeven_win_rate(avg_price, rate) if avg_price is not None else None
    verdict = None if be is None or not traded else (
        "above" if lo > be else "below" if hi < be else "not distinguishable from")
    return {
        "session": s.session, "mode": s.mode, "start": iso_seconds(s.start_ms), "intervals": len(rows),
        "state": "HALTED" if s.halted else ("finished" if s.finished else f"{s.state} (unfinished)"),
        "halted": s.halted, "halt_detail": s.halt_detail,
        "trades": len(traded), "wins": wins, "losses": len(traded) - wins,
        "hit_rate": wins / len(traded) if traded else None, "hit_rate_wilson95": (lo, hi),
        "pnl": s.capital - s.capital0, "fees": fees, "pnl_gross": s.capital - s.capital0 + fees,
        "staked": sum((r.position_size for r in traded), ZERO),
        "fee_rate": rate, "avg_entry_price": avg_price, "breakeven_hit_rate": be, "vs_breakeven": verdict,
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


from fsm_bot.report.chart import picture  # noqa: E402  (they read a Report)
from fsm_bot.report.views import markdown, page, summary_lines  # noqa: E402

__all__ = ["Point", "Report", "load", "summarise", "equity_curve", "picture", "markdown", "page", "summary_lines",
           "write"]


def write(r: Report, out_dir: Path) -> list[Path]:
    """The report's three files in ``out_dir`` (created if missing); the page embeds the chart twice over:
    wide, and tall for a phone's screen."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "equity.png"
    picture(r, png)
    phone = io.BytesIO()
    picture(r, phone, phone=True)
    (out_dir / "report.md").write_text(markdown(r, png.name), encoding="utf-8")
    (out_dir / "report.html").write_text(page(r, png.read_bytes(), phone.getvalue()), encoding="utf-8")
    return [png, out_dir / "report.md", out_dir / "report.html"]
