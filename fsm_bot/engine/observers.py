"""Who hears of a journaled transition, in one list: the view files, the console, the metrics, the
log, the redeemer, a backtest's collector. An observer acts on what a record says; it decides nothing
(a decision, such as which markets to redeem, arrives in the step). A failing observer never undoes
a record: the journal is already durable when observers hear of it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import field
from pathlib import Path
from typing import Any, Iterable, Protocol

from fsm_bot import storage, views
from fsm_bot.errors import DataError, TransientError
from fsm_bot.logs import event
from fsm_bot.machine import FETCH, IDLE, PREDICT, RISK, SIZE, SUBMIT
from fsm_bot.ports import Venue
from fsm_bot.session import Session
from fsm_bot.steps import Reconciled, Recorded, Step, Tick
from fsm_bot.values import frozen
from states import halted

DECISION_STAGES = ("fetch", "indicators", "predict", "risk", "size", "submit")
_DECISION_STATES = (IDLE, FETCH, PREDICT, RISK, SIZE, SUBMIT)
DECIDING = _DECISION_STATES[1:]  # from the tick to the order's answer


@frozen
class Transition:
    """One journaled record and what it did: the session before and after, the step, the record, and where
    the time went since the last record (ms per stage, sleeps excluded; ``journal_ms`` the append)."""

    before: Session
    after: Session
    step: Step
    record: dict[str, Any]
    spent_ms: dict[str, float] = field(default_factory=dict)
    journal_ms: float = 0.0


class Observer(Protocol):
    def on_transition(self, t: Transition) -> None: ...


class ViewFiles:
    """``trades.jsonl``, ``equity.csv`` and ``corrections.jsonl``, appended as records arrive."""

    def __init__(self, state_dir: Path) -> None:
        self.views = views.Views(state_dir)

    def on_transition(self, t: Transition) -> None:
        self.views.append(views.lines(t.before, t.after, t.step))


class Metrics:
    """``metrics.jsonl``: where an interval's time went, in ms, sleeps excluded, one line per interval.

    One stage per state (FETCH split into the port calls, ``fetch``, and the handler's ``indicators``),
    and the journal appends of the decision path (from the interval's ``tick`` to the order's answer)
    apart. ``decision_ms`` is the interval start to the venue's answer: what a trader waits for.
    """

    def __init__(self, path: Path | None = None, keep: bool = False) -> None:
        self.path, self.keep = path, keep  # ``keep``: each line also kept in ``intervals`` (benchmarks)
        self.intervals: list[dict[str, Any]] = []
        self._reset()

    def _reset(self) -> None:
        self.spent: dict[str, float] = {}
        self.journal_ms = self.other_journal_ms = 0.0

    def on_transition(self, t: Transition) -> None:
        for stage, ms in t.spent_ms.items():
            self.spent[stage] = self.spent.get(stage, 0.0) + ms
        if t.before.state in _DECISION_STATES:
            self.journal_ms += t.journal_ms
        else:
            self.other_journal_ms += t.journal_ms
        if isinstance(t.step, Recorded):
            self._flush(t.step)

    def _flush(self, step: Recorded) -> None:
        decision = sum(self.spent.get(stage, 0.0) for stage in DECISION_STAGES) + self.journal_ms
        line = {"interval": step.row.interval_number, "outcome": step.row.outcome,
                **{f"{stage}_ms": round(ms, 3) for stage, ms in self.spent.items()},
                "journal_ms": round(self.journal_ms, 3), "decision_ms": round(decision, 3),
                "total_ms": round(sum(self.spent.values()) + self.journal_ms + self.other_journal_ms, 3)}
        if self.path is not None:
            storage.append(self.path, (json.dumps(line, separators=(",", ":")) + "\n").encode())
        if self.keep:
            self.intervals.append(line)
        self._reset()


class Log:
    """``bot.log``'s account of the session: each interval's row, and a halt at CRITICAL."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log

    def on_transition(self, t: Transition) -> None:
        if isinstance(t.step, Recorded):
            row = t.step.row
            event(self.log, logging.INFO, "engine", f"interval {row.interval_number}: {row.outcome} ({row.reason}), "
                  f"pnl {row.pnl}, capital {row.capital_after}, streak {row.win_streak}, seq {t.record['seq']}",
                  interval=row.interval_number)
        elif t.step.trigger == "halt":
            event(self.log, logging.CRITICAL, "engine", halted.run(t.after), interval=t.after.interval,
                  error_code=t.after.halted)


class Redeemer:
    """Turns the winning tokens of the markets a step names into collateral (``--live``); a failure is
    logged, and a later redeem of the market sweeps what is still redeemable. A redeem named by ``tick`` waits
    until the interval's decision is over (its order answered, or the interval skipped): it is no part of it."""

    def __init__(self, venue: Venue, log: logging.Logger) -> None:
        self.venue, self.log = venue, log
        self.due: tuple[str, ...] = ()

    def on_transition(self, t: Transition) -> None:
        if isinstance(t.step, (Tick, Reconciled)):
            self.due += t.step.redeem
        if self.due and t.after.state not in DECIDING:
            self._redeem()

    def _redeem(self) -> None:
        markets, self.due = self.due, ()
        for market in markets:
            try:
                receipt = self.venue.redeem(market)
            except (DataError, TransientError) as exc:
                event(self.log, logging.WARNING, "venue", f"redeem of {market} failed: {exc}", error_code=exc.code)
                continue
            if receipt:
                event(self.log, logging.INFO, "venue", f"redeemed {market} ({receipt})")


def session_observers(state_dir: Path, venue: Venue, log: logging.Logger,
                      extra: Iterable[Observer] = ()) -> list[Observer]:
    """What hears a session's records: its view files, metrics, log and redeemer, then ``extra``."""
    return [ViewFiles(state_dir), Metrics(state_dir / "metrics.jsonl"), Log(log), Redeemer(venue, log), *extra]
