"""RECORD: the settled trade's row: binary-contract PnL, capital and streak after it."""

from __future__ import annotations

from fsm_bot.money import pnl
from fsm_bot.observed import Seen
from fsm_bot.session import Session, iso_seconds
from fsm_bot.steps import Recorded, Step, TradeRow

TRIGGERS = {"recorded"}


def run(view: Session, now_ms: int, seen: Seen) -> Step:
    cur = view.current
    assert cur.prediction and cur.submitted and cur.settled, "RECORD needs a prediction, a fill and a result"
    fill, side = cur.submitted.fill, cur.prediction.side
    won = cur.settled.result == side
    profit = pnl(won, fill.shares, fill.spent_usd, fill.fee_usd)
    return Recorded(row=TradeRow(
        timestamp=iso_seconds(view.interval_start(view.interval)), interval_number=view.interval, prediction=side,
        confidence=cur.prediction.confidence, odds=fill.avg_price, position_size=fill.spent_usd, shares=fill.shares,
        fee=fill.fee_usd, outcome="WIN" if won else "LOSS", pnl=profit, capital_after=view.capital + profit,
        win_streak=view.streak + 1 if won else 0, reason=cur.prediction.tier, order_id=cur.submitted.order_id))
