"""The interval machine: its states and its transition table. Nothing else.

This table is the single source of the running machine (``build``) and of its diagram
(``fsm-bot graph``). One interval runs IDLE -> FETCH -> PREDICT -> RISK -> SIZE -> SUBMIT ->
AWAIT_SETTLE -> RECORD -> IDLE (of the next interval); SKIPPED records an interval not traded,
with a reason; HALTED ends the session.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Mapping

from transitions import Machine

IDLE, FETCH, PREDICT, RISK, SIZE, SUBMIT = "IDLE", "FETCH", "PREDICT", "RISK", "SIZE", "SUBMIT"
AWAIT_SETTLE, RECORD, SKIPPED, HALTED = "AWAIT_SETTLE", "RECORD", "SKIPPED", "HALTED"

STATES = [IDLE, FETCH, PREDICT, RISK, SIZE, SUBMIT, AWAIT_SETTLE, RECORD, SKIPPED, HALTED]
INITIAL = IDLE
TERMINAL = {HALTED}

# (trigger, source, dest) in the order an interval meets them.
_ROWS = [
    ("tick", IDLE, FETCH),                 # the interval's start has come
    ("reconciled", IDLE, IDLE),            # official resolutions of earlier intervals arrived
    ("fetched", FETCH, PREDICT),           # candles, indicators and the market's book are in hand
    ("predicted", PREDICT, RISK),          # a side and a confidence
    ("approved", RISK, SIZE),              # every risk rule passed
    ("sized", SIZE, SUBMIT),               # the stake, and the order's intent journaled with its key
    ("submitted", SUBMIT, AWAIT_SETTLE),   # the venue filled the order
    ("submit_unknown", SUBMIT, SUBMIT),    # no answer from the venue: ask it by key, never re-sign
    ("trade_updated", AWAIT_SETTLE, AWAIT_SETTLE),  # the order's trades moved on chain (mined, confirmed, failed)
    ("settled", AWAIT_SETTLE, RECORD),     # the interval ended and its result is known, or the fill never was
    ("recorded", RECORD, IDLE),            # the trade row is written; on to the next interval
    ("recorded", SKIPPED, IDLE),
]
RIDING = frozenset({"settled", "recorded", "tick", "fetched", "predicted", "approved"})
"""Records that announce no action outside the process: they ride on the fsync of the next record that does
(``sized``, before the post, at the latest): from the closing candle to the order, one fsync."""
_SKIP_SOURCES = [IDLE, FETCH, PREDICT, RISK, SIZE, SUBMIT]
_HALT_SOURCES = [s for s in STATES if s not in TERMINAL]  # listed, never '*': HALTED -> HALTED is no edge

TRANSITIONS: list[dict[str, Any]] = (
    [{"trigger": t, "source": s, "dest": d} for t, s, d in _ROWS]
    + [{"trigger": "skip", "source": s, "dest": SKIPPED} for s in _SKIP_SOURCES]
    + [{"trigger": "halt", "source": s, "dest": HALTED} for s in _HALT_SOURCES]
)


class DefinitionError(ValueError):
    """The table is not a machine we can run."""


def edges(transitions: Iterable[Mapping[str, Any]] = TRANSITIONS) -> dict[str, dict[str, str]]:
    """state -> {trigger: dest}."""
    out: dict[str, dict[str, str]] = {s: {} for s in STATES}
    for row in transitions:
        for src in [row["source"]] if isinstance(row["source"], str) else row["source"]:
            out.setdefault(src, {})[row["trigger"]] = row["dest"]
    return out


def validate(states: list[str], transitions: list[dict[str, Any]], initial: str | list[str],
             handler_triggers: Mapping[str, Iterable[str]] | None = None) -> None:
    """Refuse a table that cannot be run; each message lists the offending ids."""
    initials = [initial] if isinstance(initial, str) else list(initial)
    if len(initials) != 1 or initials[0] not in states:
        raise DefinitionError(f"need exactly one initial state among the states, got {initials}")
    graph = edges(transitions)
    unknown = sorted({d for m in graph.values() for d in m.values()} - set(states)
                     | {s for s, m in graph.items() if m and s not in states})
    if unknown:
        raise DefinitionError(f"transitions name unknown states: {unknown}")
    seen, todo = {initials[0]}, deque([initials[0]])
    while todo:
        for dest in graph.get(todo.popleft(), {}).values():
            if dest not in seen:
                seen.add(dest)
                todo.append(dest)
    unreachable = [s for s in states if s not in seen]
    if unreachable:
        raise DefinitionError(f"states unreachable from {initials[0]}: {unreachable}")
    terminal = [s for s in states if not graph.get(s)]
    no_halt = [s for s in states if s not in terminal and "halt" not in graph.get(s, {})]
    if no_halt:
        raise DefinitionError(f"non-terminal states without a 'halt' transition: {no_halt}")
    missing = sorted(f"{s}.{t}" for s, ts in (handler_triggers or {}).items() for t in ts if t not in graph.get(s, {}))
    if missing:
        raise DefinitionError(f"handlers return triggers with no row from their state: {missing}")


class Bot:
    """The machine's model: a plain object. ``journal`` is called before every state change."""

    state: str

    def __init__(self, journal: Callable[[str, str, str, Any], None]) -> None:
        self._journal = journal

    def before_change(self, event: Any) -> None:
        self._journal(event.transition.source, event.transition.dest, event.event.name, event.kwargs.get("step"))


def _unattached(*_: Any) -> None:
    raise RuntimeError("the machine fired a trigger before a session was attached to it")


class Built:
    """The machine built and validated once, for sessions run one after another in one thread (a backtest's):
    ``attach`` hands the next session the same model, its journal hook pointed at that session's engine and
    its state restored with ``set_state`` (no callback fires)."""

    def __init__(self, handler_triggers: Mapping[str, Iterable[str]] | None = None) -> None:
        self.bot = Bot(_unattached)
        self.machine = build(self.bot, INITIAL, handler_triggers)

    def attach(self, journal: Callable[[str, str, str, Any], None], state: str) -> Bot:
        if state not in STATES:
            raise DefinitionError(f"cannot restore unknown state {state!r}")
        self.bot._journal = journal
        self.machine.set_state(state, model=self.bot)
        return self.bot


def build(bot: Bot, state: str = INITIAL, handler_triggers: Mapping[str, Iterable[str]] | None = None) -> Machine:
    """The running machine over ``bot``, validated, at ``state`` (restored without firing callbacks)."""
    validate(STATES, TRANSITIONS, INITIAL, handler_triggers)
    machine = Machine(model=bot, states=STATES, transitions=TRANSITIONS, initial=INITIAL,
                      auto_transitions=False, send_event=True, before_state_change="before_change")
    if state != INITIAL:
        if state not in STATES:
            raise DefinitionError(f"cannot restore unknown state {state!r}")
        machine.set_state(state, model=bot)
    return machine
