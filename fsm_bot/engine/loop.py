"""The driver loop: gather the current state's inputs through the ports, let its handler decide,
journal the step, fire its trigger, tell the observers. It names no state and applies no rule.

The machine's ``before_state_change`` hook appends the record before the state changes (fsynced, or riding
on the next record's fsync when it announces no outside action: ``machine.RIDING``),
so a failed append leaves the state where it was; only then do the observers hear of it: at once, but, where
the decision's latency matters (``decision_first``: paper, live), for the records from the closing candle to
the order's answer (those that ride, and those of the deciding states), which they hear together once the
order is answered or the engine waits. A stop
(Ctrl-C, SIGTERM) is honoured between steps and during sleeps, never between a decision and its
record: an answer the venue gave is journaled before the process stops.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Iterable

from fsm_bot import journal as journal_mod
from fsm_bot.engine.inputs import HANDLER_TRIGGERS, STAGES, Ports
from fsm_bot.engine.observers import DECIDING, Observer, Transition
from fsm_bot.indicators import Windows
from fsm_bot.machine import RIDING, Bot, Built, build
from fsm_bot.ports import Clock, Feed, Held, Venue
from fsm_bot.session import Session, iso
from fsm_bot.steps import Step

QUIET = logging.getLogger("fsm_bot.quiet")
"""The engine's log when it is given none (backtests, tests): it goes nowhere."""
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


_METRICS = {state: (stage.metric or state.lower(), stage.decide_metric or state.lower())
            for state, stage in STAGES.items()}  # each state's names for its gathering and its handler's time


def reusable_machine() -> Built:
    """The machine for sessions run one after another in this thread (``Engine(..., machine=)``)."""
    return Built(HANDLER_TRIGGERS)


class Audience:
    """Who hears the engine's transitions: ``prompt`` observers each at once (a test's stop, say); the others at
    once too, unless ``decision_first`` (paper, live), where the records from the closing candle to the order's
    answer wait for the answer, or for the engine's next wait, and are then heard together, in order."""

    def __init__(self, observers: list[Observer], prompt: list[Observer], decision_first: bool) -> None:
        self.observers, self.prompt, self.decision_first = observers, prompt, decision_first
        self.unheard: list[Transition] = []

    def hear(self, t: Transition) -> None:
        for observer in self.prompt:
            observer.on_transition(t)
        if not self.decision_first:
            for observer in self.observers:
                observer.on_transition(t)
            return
        self.unheard.append(t)
        if t.step.trigger not in RIDING and t.after.state not in DECIDING:
            self.tell()

    def tell(self) -> None:
        unheard, self.unheard = self.unheard, []
        for t in unheard:
            for observer in self.observers:
                observer.on_transition(t)


class Engine:
    def __init__(self, session: Session, journal: journal_mod.Journal | journal_mod.MemoryJournal, clock: Clock,
                 feed: Feed, venue: Venue, *,
                 observers: Iterable[Observer] = (), prompt: Iterable[Observer] = (), decision_first: bool = False,
                 log: logging.Logger | None = None, stop: threading.Event | None = None, resumed: bool = False,
                 adopt: Iterable[Held] = (), windows: Windows | None = None, machine: Built | None = None) -> None:
        self.session, self.journal = session, journal
        self.audience = Audience(list(observers), list(prompt), decision_first)
        self.ports = Ports(clock, feed, venue, log or QUIET, stop or threading.Event())
        self.ports.adopt = {h.order.intent.slug: h for h in adopt}
        self.ports.windows = windows  # the feed's candle windows, computed beforehand (a backtest's span)
        self.resumed = resumed
        if machine is None:
            self.bot = Bot(self._journal)
            build(self.bot, session.state, HANDLER_TRIGGERS)
        else:  # one machine for the sessions a backtest runs one after another
            self.bot = machine.attach(self._journal, session.state)
        self._spent: dict[str, float] = {}
        self._pending: tuple[Step, Any, int] | None = None
        self.ports.before_waiting = self.audience.tell  # the audience's own method: no cycle back to the engine

    def run(self) -> Session:
        """Step until the session is finished (done, resolutions in, or halted)."""
        attempt = 0
        try:
            while not self.session.finished:
                self.ports.check_stop()
                stage = STAGES[self.session.state]
                step, now_ms, seen = self._decide(stage)
                if step is None:  # nothing to decide yet: wait, then ask the ports again
                    self.ports.sleep_until(now_ms + stage.wait_secs(attempt) * 1000)
                    attempt += 1
                    continue
                self._fire(step, stage.journaled(seen, step, self.session, now_ms), now_ms)
                self.resumed, attempt = False, 0
        finally:
            self.audience.tell()
        return self.session

    def _decide(self, stage: Any) -> tuple[Step | None, int, Any]:
        ports, state = self.ports, self.session.state
        ports.slept_secs, ports.interval = 0.0, self.session.interval
        started = time.perf_counter()
        now_ms, seen = stage.gather(ports, self.session, self.resumed)
        gathered = time.perf_counter()
        step = stage.handler.run(self.session, now_ms, seen)
        decided = time.perf_counter()
        gather_metric, decide_metric = _METRICS[state]
        self._spend(gather_metric, gathered - started - ports.slept_secs)
        self._spend(decide_metric, decided - gathered)
        if ports.feed_wait_secs:  # the wait for the closing candle: the feed's latency, apart from ours
            self._spend("feed_wait", ports.feed_wait_secs)
            ports.feed_wait_secs = 0.0
        return step, now_ms, seen

    def _spend(self, stage: str, secs: float) -> None:
        self._spent[stage] = self._spent.get(stage, 0.0) + secs * 1000

    def _fire(self, step: Step, inputs: Any, now_ms: int) -> None:
        before = self.session
        self._pending = (step, inputs, now_ms)
        started = time.perf_counter()
        self.bot.trigger(step.trigger, step=step)
        journal_ms = (time.perf_counter() - started) * 1000
        self.audience.hear(Transition(before, self.session, step, self._record, self._spent, journal_ms))
        self._spent = {}

    def _journal(self, src: str, dst: str, trigger: str, step: Step) -> None:
        """The machine's before_state_change hook: the record is durable before the state changes."""
        assert self._pending is not None and self._pending[0] is step
        _, inputs, now_ms = self._pending
        s = self.session
        self._record = self.journal.append_step({
            "ts": iso(now_ms), "session": s.session, "interval": min(s.interval, s.intervals), "src": src,
            "dst": dst, "trigger": trigger}, step, inputs, trigger not in RIDING)
        self.session = s.apply(self._record, step, now_ms)
