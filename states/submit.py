"""SUBMIT: the venue's answer to the journaled order decides: filled, rejected, or unknown.

An unknown answer is never a failure: the engine journals ``submit_unknown`` and asks the venue
by the order's key until it answers. The same signed order is posted again only when the venue
says it never saw it and the interval still allows an entry; otherwise the interval is skipped.
"""

from __future__ import annotations

from fsm_bot.ports import Accepted, Rejected, SubmitResult, Unknown
from fsm_bot.session import Session
from fsm_bot.steps import Skip, Step, Submitted, SubmitUnknown

TRIGGERS = {"submitted", "submit_unknown", "skip"}


def may_send(view: Session, now_ms: int) -> bool:
    """Whether the order may (still) be posted: the interval's entry window is open."""
    return view.entry_open(now_ms)


def run(view: Session, result: SubmitResult | None, resumed: bool = False) -> Step:
    """``result`` is None when the venue never saw the order and the window had closed, so nothing was sent."""
    prediction = view.current.prediction
    side, confidence = (prediction.side, prediction.confidence) if prediction else ("SKIP", 0.0)
    if isinstance(result, Accepted):
        return Submitted(key=result.key, order_id=result.order_id, fill=result.fill)
    if isinstance(result, Unknown):
        return SubmitUnknown(key=result.key, detail=result.detail)
    if isinstance(result, Rejected):
        return Skip(reason=f"rejected:{result.reason}", detail="the venue refused the order",
                    prediction=side, confidence=confidence)
    reason = "late_resume" if resumed or view.current.unknown is None else "submit_lost"
    return Skip(reason=reason, detail="the venue never saw the order and the entry window has closed",
                prediction=side, confidence=confidence)
