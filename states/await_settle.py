"""AWAIT_SETTLE: the position is held to expiry; the interval's result settles it -- once the fill is one.

A fill the venue matched is not yet a position: its trades go MATCHED -> MINED -> CONFIRMED on chain,
or RETRYING -> FAILED (reverted: nothing spent, nothing received), and some are never mined. While the
fill is not final, every change the venue reports is journaled (``trade_updated``). All trades FAILED:
the interval is VOID (``trade_failed``), whenever it is learned. At the interval's end a CONFIRMED fill
settles on the result: the reference price's (Binance candles: UP if the close of the last minute >=
the open of the first), else the official resolution. A fill still not final after the settlement grace
is VOID (``never_mined``) if none of its trades was mined and the venue shows no position; otherwise (mined,
a position shows, or the venue cannot say) the interval settles as held, and its trades are followed after
the row: a failure learned then reverses its PnL in a correction.
"""

from __future__ import annotations

from fsm_bot.observed import SettleSeen
from fsm_bot.session import Session
from fsm_bot.steps import Settled, Step, TradeUpdated

TRIGGERS = {"settled", "trade_updated"}


def following(view: Session) -> bool:
    """Whether the fill's trades must still be asked after (its position is not final)."""
    return not view.current.fill_final


def needs_position(view: Session, now_ms: int) -> bool:
    """Whether the venue must be asked what the wallet holds: the fill is still not final after the grace."""
    return following(view) and now_ms >= _grace_end(view)


def _grace_end(view: Session) -> int:
    return view.interval_end(view.interval) + view.cfg.settle_grace_secs * 1000


def run(view: Session, now_ms: int, seen: SettleSeen) -> Step | None:
    """None while nothing is known yet (the engine waits and asks again): a held position is never abandoned."""
    cur = view.current
    if seen.trades is not None and seen.trades != cur.trades:
        return TradeUpdated(trades=seen.trades)
    if cur.trades and all(t.status == "FAILED" for t in cur.trades):
        return Settled(result=None, source="venue", void="trade_failed")
    if now_ms < view.interval_end(view.interval):
        return None
    result, source = ((seen.reference, "reference") if seen.reference in ("UP", "DOWN") else
                      (seen.official, "official") if seen.official in ("UP", "DOWN") else (None, ""))
    if following(view):
        if now_ms < _grace_end(view):
            return None
        unmined = all(t.status in ("MATCHED", "RETRYING") for t in cur.trades)
        if unmined and seen.position is not None and seen.position <= 0:
            return Settled(result=result, source=source or "venue", void="never_mined")
        # mined, or a position shows, or the venue cannot say: settled as held, its trades followed after the row
    if result is None:
        return None
    return Settled(result=result, source=source)
