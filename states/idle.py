"""IDLE: between intervals. Reconcile official resolutions, then start the interval (or skip it)."""

from __future__ import annotations

from typing import Mapping

from fsm_bot.money import ZERO, pnl
from fsm_bot.observed import IdleSeen
from fsm_bot.ports import slug
from fsm_bot.session import Session
from fsm_bot.steps import Reconciled, Resolution, Skip, Step, Tick, TradeRow
from states import late_resume

TRIGGERS = {"tick", "skip", "reconciled"}


def _other(side: str) -> str:
    return "DOWN" if side == "UP" else "UP"


def provisional_result(row: TradeRow) -> str:
    """The market result the row was settled on: its prediction if it won, the other side if not."""
    return row.prediction if row.outcome == "WIN" else _other(row.prediction)


def reconcile(view: Session, now_ms: int, official: Mapping[int, str | None]) -> tuple[Resolution, ...]:
    """What the official resolutions (interval -> "UP"/"DOWN"/None) change; timeouts become unreconciled."""
    capital, out = view.capital, []
    for k in view.pending:
        row, result = view.trades[k - 1], official.get(k)  # rows are recorded in interval order
        provisional = provisional_result(row)
        if result is None:
            if now_ms < view.interval_end(k) + view.cfg.resolution_timeout_secs * 1000:
                continue
            out.append(Resolution(k, "unreconciled", provisional, None, row.outcome, row.outcome, ZERO, capital))
            continue
        new_outcome = "WIN" if result == row.prediction else "LOSS"
        change = pnl(new_outcome == "WIN", row.shares, row.position_size, row.fee) - row.pnl
        capital += change
        status = "confirmed" if result == provisional else "corrected"
        out.append(Resolution(k, status, provisional, result, row.outcome, new_outcome, change, capital))
    return tuple(out)


def to_redeem(view: Session, results: tuple[Resolution, ...]) -> tuple[str, ...]:
    """The markets whose official result makes the position a winner: their tokens are redeemed (live)."""
    return tuple(slug(view.interval_start(r.interval), view.cfg.interval_minutes)
                 for r in results if r.official is not None and r.new_outcome == "WIN")


def run(view: Session, now_ms: int, seen: IdleSeen) -> Step | None:
    """None when there is nothing to record yet (the session is done and resolutions are awaited).

    A correction or an unreconciled trade is journaled on its own (``reconciled``); official results
    that merely confirm ride on the next ``tick``.
    """
    results = reconcile(view, now_ms, dict(seen.official))
    late = late_resume(view, now_ms, seen.resumed)
    if results and (view.done or any(r.status != "confirmed" for r in results)):
        return Reconciled(results=results, redeem=to_redeem(view, results))
    if view.done:
        return None
    k = view.interval
    if results and (now_ms >= view.interval_end(k) or late):  # a skip would not carry the confirmations
        return Reconciled(results=results, redeem=to_redeem(view, results))
    if now_ms >= view.interval_end(k):
        return Skip(reason="missed", detail=f"the process was down through interval {k}")
    if late:
        return late
    return Tick(start_ms=view.interval_start(k), end_ms=view.interval_end(k), confirmed=results,
                redeem=to_redeem(view, results))
