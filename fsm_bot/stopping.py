"""Ctrl-C and SIGTERM, from the process's first line to its last: a stop is a flag, never an exception
raised inside whatever happens to run (an import of native code, a journal append).

``install()`` (the console script's first act) makes both signals set ``STOP`` and wake every sleep
registered with ``wake_on_stop``; the commands call ``check()`` between their steps, and the engine checks
``STOP`` between transitions and in its sleeps. So a stop at any moment ends with the journal whole, the
lock released, exit 130 and the resume hint.
"""

from __future__ import annotations

import signal
import threading

from fsm_bot.errors import Interrupted

STOP = threading.Event()
_wakes: list[threading.Event] = []
_received: list[str] = []


def _handler(signum: int, frame: object) -> None:
    _received.append(signal.Signals(signum).name)
    STOP.set()
    for wake in list(_wakes):
        wake.set()


def install() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)


def wake_on_stop(event: threading.Event) -> None:
    """Have a stop cut ``event``'s waits short (a clock's sleeps)."""
    _wakes.append(event)
    if STOP.is_set():
        event.set()


def check() -> None:
    """Raise ``Interrupted`` once a stop has arrived."""
    if STOP.is_set():
        raise Interrupted(f"interrupted by {_received[0] if _received else 'a stop'}")
