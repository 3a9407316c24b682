"""One module per state of the interval machine, and the rules several of them share.

Each module names the triggers its handler may return (``TRIGGERS``) and a pure
``run(view, now_ms, seen)``: no I/O, no clock, no globals, no randomness. ``view`` is the session
folded from the journal, ``now_ms`` the engine's one clock reading for the step, ``seen`` what the
ports answered (``fsm_bot.observed``). The result is a typed step from ``fsm_bot.steps``, or None
where the state has nothing to decide yet (the engine waits and asks the ports again). Only
``fsm_bot.engine`` imports this package.
"""

from __future__ import annotations

from fsm_bot.observed import Failure
from fsm_bot.session import Session
from fsm_bot.steps import Halt, Skip, Step


def _side(view: Session) -> tuple[str, float]:
    prediction = view.current.prediction
    return (prediction.side, prediction.confidence) if prediction else ("SKIP", 0.0)


def late_resume(view: Session, now_ms: int, resumed: bool) -> Skip | None:
    """On resume, an interval whose entry window has closed is skipped rather than entered late."""
    if not resumed or view.entry_open(now_ms):
        return None
    side, confidence = _side(view)
    return Skip(reason="late_resume", detail=f"{view.secs_left(now_ms):.0f} s left at resume", prediction=side,
                confidence=confidence)


def failed(view: Session, failure: Failure, what: str = "") -> Step:
    """A port call that failed before anything could reach the venue: a fatal error (auth, a refused key)
    halts the session; bad data or an outage skips the interval with the error's code as the reason."""
    if failure.kind == "fatal":
        return Halt(cause=failure.code, detail=failure.detail)
    side, confidence = _side(view)
    return Skip(reason=failure.code, detail=f"{what}: {failure.detail}" if what else failure.detail,
                prediction=side, confidence=confidence)
