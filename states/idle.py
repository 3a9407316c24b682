"""IDLE: between intervals. Reconcile official resolutions, then start the interval (or skip it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Mapping

from fsm_bot.money import ZERO, pnl
from fsm_bot.observed import IdleSeen
from fsm_bot.ports import Trade, slug
from fsm_bot.session import Session
from fsm_bot.steps import Halt, Reconciled, Resolution, Skip, Step, Tick, TradeRow
from states import late_resume
from states.record import held

TRIGGERS = {"tick", "skip", "reconciled", "halt"}
QUIET = frozenset({"confirmed", "fill_final"})  # results that change nothing: they ride on the next tick


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


def follow_fills(view: Session, now_ms: int, fills: Mapping[int, tuple[Trade, ...] | None],
                 capital: Decimal) -> tuple[Resolution, ...]:
    """What became of fills that were not final on chain when their rows were written: the booking stands
    ("fill_final": a held fill CONFIRMED, a void FAILED, or a void still unmined at the deadline), a held fill
    that failed is reversed ("voided"), a void that was held after all is booked ("revived"), or a held fill
    is still not final at the deadline ("fill_unconfirmed", left as booked and flagged)."""
    out = []
    for f in view.following:
        row, trades = view.trades[f.interval - 1], fills.get(f.interval)
        provisional = provisional_result(row) if row.outcome in ("WIN", "LOSS") else (f.result or "")
        if not trades or not all(t.final for t in trades):
            deadline = view.interval_end(f.interval) + (view.cfg.settle_grace_secs + view.cfg.resolution_timeout_secs) * 1000
            if now_ms >= deadline:
                status = "fill_final" if row.outcome == "VOID" else "fill_unconfirmed"
                out.append(Resolution(f.interval, status, provisional, None, row.outcome, row.outcome, ZERO, capital))
            continue
        failed, booked_void = all(t.status == "FAILED" for t in trades), row.outcome == "VOID"
        if failed == booked_void or f.result is None:  # as booked, or a held void with no result to book it on
            status = "fill_final" if failed == booked_void else "fill_unconfirmed"
            out.append(Resolution(f.interval, status, provisional, None, row.outcome, row.outcome, ZERO, capital))
            continue
        if failed:
            new_outcome, change = "VOID", -view.booked_pnl(f.interval)
        else:
            fill = held(f.submitted.fill, trades, f.fee_rate)
            new_outcome = "WIN" if f.result == row.prediction else "LOSS"
            change = pnl(new_outcome == "WIN", fill.shares, fill.spent_usd, fill.fee_usd)
        capital += change
        out.append(Resolution(f.interval, "voided" if failed else "revived", provisional, None, row.outcome,
                              new_outcome, change, capital))
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
    results += follow_fills(view, now_ms, dict(seen.fills), results[-1].capital_after if results else view.capital)
    late = late_resume(view, now_ms, seen.resumed)
    if view.mismatch and not view.done:
        return Halt(cause="order_id_mismatch", detail=f"{view.mismatch}: an order's id is not the hash the bot "
                    "journaled, so its lookups cannot be trusted; trading stops (that interval is settled)")
    if results and (view.done or any(r.status not in QUIET for r in results)):
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
