"""SKIPPED: the interval is recorded as not traded, with its reason; capital and streak stay."""

from __future__ import annotations

from fsm_bot.money import ZERO
from fsm_bot.observed import Seen
from fsm_bot.session import Session, iso_seconds
from fsm_bot.steps import Recorded, Step, TradeRow

TRIGGERS = {"recorded"}


def run(view: Session, now_ms: int, seen: Seen) -> Step:
    skip = view.current.skip
    assert skip is not None, "SKIPPED needs the skip that led here"
    return Recorded(row=TradeRow(
        timestamp=iso_seconds(view.interval_start(view.interval)), interval_number=view.interval,
        prediction=skip.prediction, confidence=skip.confidence, odds=None, position_size=ZERO, shares=ZERO, fee=ZERO,
        outcome="SKIPPED", pnl=ZERO, capital_after=view.capital, win_streak=view.streak, reason=skip.reason,
        order_id=None))
