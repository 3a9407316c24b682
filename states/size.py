"""SIZE: the stake from the win streak, capped so that a loss cannot take capital below the floor.

``stake = min(base x multiplier^streak, cap, fraction x capital, capital - floor - fee)`` in whole
cents, rounded down; the fee is bounded at the best ask (it only falls as the price rises).
"""

from __future__ import annotations

from decimal import Decimal

from fsm_bot.money import CENT, ZERO, dollars, fee_bound
from fsm_bot.session import Session
from fsm_bot.steps import Approved, Halt, Predicted, Sized, Skip, Snapshot, Step

TRIGGERS = {"sized", "skip", "halt"}


def floor_capped(room: Decimal, ask: Decimal, rate: Decimal) -> Decimal:
    """The largest whole-cent stake whose stake + fee fits in ``room`` (capital - floor)."""
    if room <= ZERO:
        return ZERO
    stake = dollars(room / (1 + rate * (1 - ask)))
    while stake > ZERO and stake + fee_bound(stake, ask, rate) > room:
        stake -= CENT
    return max(stake, ZERO)


def stake_usd(view: Session, ask: Decimal, rate: Decimal) -> Decimal:
    cfg = view.cfg
    streak_stake = cfg.base_usd * cfg.multiplier ** view.streak
    return dollars(min(streak_stake, cfg.cap_usd, cfg.capital_fraction * view.capital,
                       floor_capped(view.capital - view.floor, ask, rate)))


def run(view: Session, snapshot: Snapshot, prediction: Predicted, approval: Approved,
        balance_usd: Decimal | None = None) -> Step:
    rate, ask = snapshot.fee_rate, approval.ask
    stake = stake_usd(view, ask, rate)
    minimum = max(snapshot.min_order_usd, view.cfg.min_order_usd)
    if stake < minimum:
        return Halt(cause="below_min_order", detail=f"stake {stake} below the venue's minimum {minimum} "
                    f"(capital {view.capital}, floor {view.floor})")
    fee = fee_bound(stake, ask, rate)
    if balance_usd is not None and balance_usd < stake + fee:
        return Skip(reason="insufficient_balance", detail=f"balance {balance_usd} < stake {stake} + fee {fee}",
                    prediction=prediction.side, confidence=prediction.confidence)
    return Sized(stake_usd=stake, limit_price=view.cfg.max_entry_price, fee_bound_usd=fee, balance_usd=balance_usd)
