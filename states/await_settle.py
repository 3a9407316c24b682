"""AWAIT_SETTLE: the position is held to expiry; the interval's result settles it.

The provisional result is the reference price's (Binance candles: UP if the close of the last
minute >= the open of the first); where it cannot be had, the official resolution is used.
"""

from __future__ import annotations

from fsm_bot.observed import SettleSeen
from fsm_bot.session import Session
from fsm_bot.steps import Settled, Step

TRIGGERS = {"settled"}


def run(view: Session, now_ms: int, seen: SettleSeen) -> Step | None:
    """None while neither result is known (the engine waits and asks again): a held position is never
    abandoned."""
    if seen.reference in ("UP", "DOWN"):
        return Settled(result=seen.reference, source="reference")
    if seen.official in ("UP", "DOWN"):
        return Settled(result=seen.official, source="official")
    return None
