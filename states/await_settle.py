"""AWAIT_SETTLE: the position is held to expiry; the interval's result settles it.

The provisional result is the reference price's (Binance candles: UP if the close of the last
minute >= the open of the first); where it cannot be had, the official resolution is used.
"""

from __future__ import annotations

from fsm_bot.steps import Settled, Step

TRIGGERS = {"settled"}


def run(reference: str | None, official: str | None) -> Step | None:
    """None while neither result is known (the engine waits and asks again)."""
    if reference in ("UP", "DOWN"):
        return Settled(result=reference, source="reference")
    if official in ("UP", "DOWN"):
        return Settled(result=official, source="official")
    return None
