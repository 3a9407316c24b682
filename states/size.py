"""SIZE: the stake from the win streak, capped so that a loss cannot take capital below the floor.

``stake = min(base x multiplier^streak, cap, fraction x capital, capital - floor - fee)`` in whole
cents, rounded down; the fee is bounded at the best ask (it only falls as the price rises).
"""

from __future__ import annotations

from decimal import Decimal

from fsm_bot.money import CENT, ZERO, dollars, fee_bound
from fsm_bot.observed import Seen, SizeSeen
from fsm_bot.ports import Candidates, OrderIntent
from fsm_bot.session import Session, replace
from fsm_bot.steps import Approved, Halt, OrderRecord, Predicted, Settled, Sized, Skip, Snapshot, Step
from states import failed, late_resume, record

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


def run(view: Session, now_ms: int, seen: SizeSeen) -> Step:
    """The stake, then the order the venue prepared for it. Without a prepared order (and no failure to
    prepare one) the step is the draft the engine asks the venue to prepare: ``order_intent(view, draft)``."""
    late = late_resume(view, now_ms, seen.resumed)
    if seen.held is not None:  # never a second order for an interval: the venue's is this interval's position
        held = seen.held
        return Sized(stake_usd=held.answer.fill.spent_usd, limit_price=held.order.intent.limit_price,
                     fee_bound_usd=held.answer.fill.fee_usd, order=OrderRecord.of(held.order), adopted=True)
    if late:
        return late
    if seen.balance_failure is not None:
        return failed(view, seen.balance_failure, "collateral balance unavailable")
    c = view.current
    assert c.snapshot is not None and c.prediction is not None and c.approval is not None, "SIZE needs RISK's approval"
    step = decide(view, c.snapshot, c.prediction, c.approval, seen.balance_usd)
    if not isinstance(step, Sized):
        return step
    if seen.prepare_failure is not None:  # nothing was signed, so nothing can have been sent
        return failed(view, seen.prepare_failure, "the order could not be prepared")
    if seen.prepared is None:
        return step
    return replace(step, order=OrderRecord.of(seen.prepared))


def short_of_balance(draft: Step) -> bool:
    """Whether the stake was refused for the balance the venue showed (worth one fresh read)."""
    return isinstance(draft, Skip) and draft.reason == "insufficient_balance"


def order_intent(view: Session, sized: Sized) -> OrderIntent:
    """What the venue is asked to prepare for a stake: a market BUY of the predicted side's token."""
    snap, prediction = view.current.snapshot, view.current.prediction
    assert snap is not None and prediction is not None
    return OrderIntent(session=view.session, interval=view.interval, slug=snap.slug, side=prediction.side,
                       token_id=snap.token(prediction.side), amount_usd=sized.stake_usd, limit_price=sized.limit_price)


def decide(view: Session, snapshot: Snapshot, prediction: Predicted, approval: Approved,
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


def candidates(view: Session, now_ms: int) -> Candidates | None:
    """The stakes the next interval to start can have, for signing its orders before it starts: in IDLE, the
    interval's own stake; while a final fill awaits its result, the next interval's stake after either result
    (the row RECORD would write). Each at the price guard's limit, so ``fee_bound`` is the lowest it can be;
    where the decision's ask makes the stake smaller (the floor cap) no candidate matches and the order is
    signed then. None when no interval follows."""
    cfg = view.cfg
    rate = view.current.snapshot.fee_rate if view.current.snapshot else cfg.fee_rate
    if view.current.submitted is None:
        nexts, k = [view], view.interval
    else:
        k = view.interval + 1
        nexts = []
        for result in ("UP", "DOWN"):
            settled = replace(view, current=replace(view.current, settled=Settled(result=result, source="reference")))
            row = record.run(settled, now_ms, Seen()).row  # type: ignore[attr-defined]
            nexts.append(replace(view, capital=row.capital_after, streak=row.win_streak, interval=k))
    if k > view.intervals:
        return None
    minimum = cfg.min_order_usd
    stakes = sorted({stake for stake in (stake_usd(n, cfg.max_entry_price, rate) for n in nexts) if stake >= minimum})
    return Candidates(session=view.session, interval=k, stakes=tuple(stakes), limit_price=cfg.max_entry_price) \
        if stakes else None
