"""Crash points for the crash tests: ``FSM_BOT_FAILPOINT=<name>:<n>`` kills the process (SIGKILL)
the n-th time the named point is passed. Names: ``journal.torn`` (half a record written),
``journal.appended`` (a record written, nothing done after it), ``journal.power_cut`` (the same, the journal
cut back to its last fsync first: what a power cut may lose), ``venue.accepted`` (the venue holds the
order, its answer never left). Unset, every call is one dict lookup.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("FSM_BOT_FAILPOINT", "")
_name, _, _nth = _spec.partition(":")
_armed = {_name: int(_nth)} if _name and _nth.isdigit() else {}
_counts: dict[str, int] = {}


def armed(name: str) -> bool:
    return name in _armed


def hit(name: str) -> bool:
    """True on the configured call of an armed point (the caller may act first), else False."""
    if name not in _armed:
        return False
    _counts[name] = _counts.get(name, 0) + 1
    return _counts[name] == _armed[name]


def crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
