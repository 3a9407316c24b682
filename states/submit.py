"""SUBMIT: the venue's answer to the journaled order decides: filled, rejected, or unknown.

An unknown answer is never a failure: the handler journals ``submit_unknown`` and the venue is then
asked by the order's key until it answers. The same signed order is posted again only when the venue
says it never saw it and the interval still allows an entry; otherwise the interval is skipped.
"""

from __future__ import annotations

from fsm_bot.observed import SubmitSeen
from fsm_bot.ports import Accepted, Rejected, Unknown
from fsm_bot.session import Session
from fsm_bot.steps import Halt, Skip, Step, Submitted, SubmitUnknown

TRIGGERS = {"submitted", "submit_unknown", "skip", "halt"}


def must_ask(view: Session, resumed: bool) -> bool:
    """Whether the venue must be asked for the order by its key before anything is posted: after a
    restart (the post may have reached it) or after an unknown answer."""
    return resumed or view.current.unknown is not None


def may_send(view: Session, now_ms: int) -> bool:
    """Whether the order may (still) be posted: the interval's entry window is open."""
    return view.entry_open(now_ms)


def run(view: Session, now_ms: int, seen: SubmitSeen) -> Step | None:
    """None while the venue could not be asked (the engine asks again)."""
    prediction, sized = view.current.prediction, view.current.sized
    assert sized is not None and sized.order is not None, "SUBMIT needs the journaled order"
    side, confidence = (prediction.side, prediction.confidence) if prediction else ("SKIP", 0.0)
    if seen.lookup_failure is not None:
        failure = seen.lookup_failure
        return Halt(cause=failure.code, detail=failure.detail) if failure.kind == "fatal" else None
    if seen.send_failure is not None:
        failure = seen.send_failure
        if failure.kind == "unknown":
            return SubmitUnknown(key=sized.order.key, detail=failure.detail)
        if failure.kind == "fatal":
            return Halt(cause=failure.code, detail=failure.detail)
        # the request never reached the venue
        return Skip(reason=f"rejected:{failure.code}", detail="the venue refused the order",
                    prediction=side, confidence=confidence)
    result = seen.answer
    if isinstance(result, Accepted):
        return Submitted(key=result.key, order_id=result.order_id, fill=result.fill)
    if isinstance(result, Unknown):
        return SubmitUnknown(key=result.key, detail=result.detail)
    if isinstance(result, Rejected):
        return Skip(reason=f"rejected:{result.reason}", detail="the venue refused the order",
                    prediction=side, confidence=confidence)
    reason = "late_resume" if seen.resumed or view.current.unknown is None else "submit_lost"
    return Skip(reason=reason, detail="the venue never saw the order and the entry window has closed",
                prediction=side, confidence=confidence)
