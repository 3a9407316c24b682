"""RECORD: the settled trade's row: binary-contract PnL, capital and streak after it.

A VOID interval (the venue matched the order but the trade never became a position) is recorded with
no stake, shares, fee or PnL and the streak unchanged, its order id kept. Where some of an order's
trades failed and others were confirmed, the position is the confirmed part.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from fsm_bot.money import ZERO, fee_unrounded, pnl, round_fee
from fsm_bot.observed import Seen
from fsm_bot.ports import Fill, Trade
from fsm_bot.session import Session, iso_seconds
from fsm_bot.steps import Recorded, Step, TradeRow

TRIGGERS = {"recorded"}


def held(fill: Fill, trades: tuple[Trade, ...], fee_rate: Decimal) -> Fill:
    """The part of a fill that is a position: all of it unless some trades FAILED and the others say their size."""
    failed = [t for t in trades if t.status == "FAILED"]
    kept = [t for t in trades if t.status != "FAILED"]
    if not failed or not kept or any(t.shares is None or t.price is None for t in kept):
        return fill
    shares = sum((t.shares for t in kept), ZERO)  # type: ignore[misc]
    spent = sum((t.shares * t.price for t in kept), ZERO).quantize(Decimal("0.000001"), ROUND_HALF_UP)  # type: ignore[operator]
    avg = (spent / shares).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    return Fill(shares=shares, spent_usd=spent, avg_price=avg, fee_usd=round_fee(fee_unrounded(shares, spent / shares,
                                                                                               fee_rate)))


def run(view: Session, now_ms: int, seen: Seen) -> Step:
    cur = view.current
    assert cur.prediction and cur.submitted and cur.settled, "RECORD needs a prediction, a fill and a result"
    k = view.interval
    side = cur.sized.order.side if cur.sized and cur.sized.order else cur.prediction.side  # what the order bought
    common = dict(timestamp=iso_seconds(view.interval_start(k)), interval_number=k, prediction=side,
                  confidence=cur.prediction.confidence, order_id=cur.submitted.order_id)
    if cur.settled.void:
        return Recorded(row=TradeRow(**common, odds=None, position_size=ZERO, shares=ZERO, fee=ZERO, outcome="VOID",
                                     pnl=ZERO, capital_after=view.capital, win_streak=view.streak,
                                     reason=cur.settled.void))
    assert cur.snapshot is not None
    fill = held(cur.submitted.fill, cur.trades, cur.snapshot.fee_rate)
    won = cur.settled.result == side
    profit = pnl(won, fill.shares, fill.spent_usd, fill.fee_usd)
    return Recorded(row=TradeRow(**common, odds=fill.avg_price, position_size=fill.spent_usd, shares=fill.shares,
                                 fee=fill.fee_usd, outcome="WIN" if won else "LOSS", pnl=profit,
                                 capital_after=view.capital + profit, win_streak=view.streak + 1 if won else 0,
                                 reason=cur.prediction.tier))
