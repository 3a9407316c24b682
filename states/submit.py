"""SUBMIT: only the venue's answer about the journaled order decides: filled, refused, or not known yet.

Before the first answer a refusal is a refusal. Once the order may be at the venue (its answer was
lost, or the process restarted after journaling it), nothing but the venue's word about *this* order
decides: a lookup that finds it, or a "duplicate" refusal of the same bytes (a proof the venue holds
it). Any other refusal of a re-post (429, 5xx, 401, 425) and any failed lookup say nothing: the handler
waits and asks again, never skips and never halts with a position possibly held. The interval is given
up (``submit_lost``, or ``late_resume`` after a restart) only when the venue shows no such order after
the window closed and the settlement grace passed.
"""

from __future__ import annotations

from fsm_bot.observed import Failure, SubmitSeen
from fsm_bot.ports import Accepted, Rejected, Unknown
from fsm_bot.session import Session
from fsm_bot.steps import Halt, Skip, Step, Submitted, SubmitUnknown

TRIGGERS = {"submitted", "submit_unknown", "skip", "halt"}
DUPLICATE = "duplicate"


def must_ask(view: Session, resumed: bool) -> bool:
    """Whether the venue must be asked for the order by its key before anything is posted: after a
    restart (the post may have reached it), after an unknown answer, or for an order adopted from the venue."""
    sized = view.current.sized
    return resumed or view.current.unknown is not None or (sized is not None and sized.adopted)


def may_send(view: Session, now_ms: int) -> bool:
    """Whether the order may (still) be posted: the interval's entry window is open."""
    return view.entry_open(now_ms)


def run(view: Session, now_ms: int, seen: SubmitSeen) -> Step | None:
    """None while the venue has not said what became of the order (the engine asks again)."""
    sized = view.current.sized
    assert sized is not None and sized.order is not None, "SUBMIT needs the journaled order"
    uncertain = must_ask(view, seen.resumed)
    if seen.lookup_failure is not None:
        return None  # the venue could not be asked: ask again (a 401 had the adapter re-derive its key once)
    if seen.send_failure is not None:
        return _failed(view, seen.send_failure, uncertain, sized.order.key)
    answer = seen.answer
    if isinstance(answer, Accepted):
        return Submitted(key=answer.key, order_id=answer.order_id, fill=answer.fill, trades=answer.trades,
                         settled=answer.settled)
    if isinstance(answer, Unknown):
        return _unknown(view, answer.key, answer.detail)
    if isinstance(answer, Rejected):
        if answer.reason == DUPLICATE:  # the venue holds these very bytes: its fate is to be looked up
            return _unknown(view, answer.key, "the venue refused a second copy as a duplicate: it holds the order")
        if uncertain and not answer.final:
            return None  # a refused re-post says nothing about the copy the venue may hold
        return _skip(view, f"rejected:{answer.reason}", "the venue refused the order")
    if now_ms < view.interval_end(view.interval) + view.cfg.settle_grace_secs * 1000:
        return None  # not seen (yet): trades can show late, so ask until the window is over and the grace too
    reason = "late_resume" if view.current.unknown is None else "submit_lost"
    return _skip(view, reason, "the venue never had the order and its window has closed")


def _failed(view: Session, failure: Failure, uncertain: bool, key: str) -> Step | None:
    if failure.kind == "unknown":
        return _unknown(view, key, failure.detail)
    if uncertain:
        return None  # a refused or unsent re-post proves nothing about the copy the venue may hold
    if failure.kind == "fatal":
        return Halt(cause=failure.code, detail=failure.detail)
    return _skip(view, f"rejected:{failure.code}", "the venue refused the order")  # it never reached the venue


def _unknown(view: Session, key: str, detail: str) -> Step | None:
    """The order may be at the venue: journal that once; after that, keep asking."""
    return SubmitUnknown(key=key, detail=detail) if view.current.unknown is None else None


def _skip(view: Session, reason: str, detail: str) -> Skip:
    prediction = view.current.prediction
    side, confidence = (prediction.side, prediction.confidence) if prediction else ("SKIP", 0.0)
    return Skip(reason=reason, detail=detail, prediction=side, confidence=confidence)
