"""RISK: every rule of SPEC 5 checked before a trade; the first that fails decides.

Drawdown to the floor halts the session; stale data, too little time, volatility, an empty book
or an ask above the price guard skip the interval.
"""

from __future__ import annotations

from fsm_bot.observed import Seen
from fsm_bot.ports import MINUTE_MS
from fsm_bot.session import Session
from fsm_bot.steps import Approved, Halt, Predicted, Skip, Snapshot, Step
from states import late_resume

TRIGGERS = {"approved", "skip", "halt"}


def run(view: Session, now_ms: int, seen: Seen) -> Step:
    c = view.current
    assert c.snapshot is not None and c.prediction is not None, "RISK needs a snapshot and a prediction"
    return late_resume(view, now_ms, seen.resumed) or decide(view, c.snapshot, c.prediction, now_ms)


def decide(view: Session, snapshot: Snapshot, prediction: Predicted, now_ms: int) -> Step:
    cfg = view.cfg
    if view.capital <= view.floor:
        return Halt(cause="drawdown", detail=f"capital {view.capital} at or below the floor {view.floor}")
    age_secs = (now_ms - (snapshot.last_candle_ms + MINUTE_MS)) / 1000
    if age_secs > cfg.stale_secs:
        return Skip(reason="stale_data", detail=f"last closed candle {age_secs:.0f} s old (> {cfg.stale_secs} s)",
                    prediction=prediction.side, confidence=prediction.confidence)
    secs_left = (snapshot.end_ms - now_ms) / 1000
    if secs_left < cfg.entry_cutoff_secs:
        return Skip(reason="too_late", detail=f"{secs_left:.0f} s left (< {cfg.entry_cutoff_secs} s)",
                    prediction=prediction.side, confidence=prediction.confidence)
    if snapshot.range_pct > cfg.volatility_max:
        return Skip(reason="volatility", detail=f"{cfg.volatility_candles}-candle range {snapshot.range_pct:.2%} "
                    f"> {cfg.volatility_max:.2%}", prediction=prediction.side, confidence=prediction.confidence)
    ask = snapshot.ask(prediction.side)
    if ask is None:
        return Skip(reason="no_liquidity", detail=f"no {prediction.side} asks",
                    prediction=prediction.side, confidence=prediction.confidence)
    if ask > cfg.max_entry_price:
        return Skip(reason="price_guard", detail=f"{prediction.side} ask {ask} > {cfg.max_entry_price}",
                    prediction=prediction.side, confidence=prediction.confidence)
    return Approved(ask=ask, range_pct=snapshot.range_pct, secs_left=secs_left, candle_age_secs=age_secs,
                    drawdown=view.drawdown)
