"""HALTED: terminal. The session stops trading; its remaining intervals are written as SKIPPED
``halted:<cause>`` (``Session.rows``), and a restart reports the halt instead of trading."""

from __future__ import annotations

from fsm_bot.money import usd
from fsm_bot.session import Session

TRIGGERS: set[str] = set()


def run(view: Session) -> str:
    """The operator's message for the halt (logged at CRITICAL)."""
    left = view.intervals - view.interval + 1
    return (f"session {view.session} halted in interval {view.interval}: {view.halted} ({view.halt_detail}); "
            f"capital {usd(view.capital)}, {left} interval(s) written as SKIPPED halted:{view.halted}")
