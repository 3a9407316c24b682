"""The driver loop: clock -> effects through the ports -> the state's handler -> journal -> trigger.

The engine is the only importer of ``states/``. For each step it reads the clock once, gathers
the handler's inputs through the ports, lets the handler decide, and fires the step's trigger;
the machine's ``before_state_change`` hook appends the journal record (fsynced) before the state
changes, and only then do the views and the console learn of it. Resume folds the journal back
into the same ``Session`` and restores the machine's state without running any callback.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from fsm_bot import journal as journal_mod
from fsm_bot import steps, views
from fsm_bot.errors import (DataError, FatalError, Interrupted, ReplayMismatch, StateDirError, TransientError,
                            UnknownOutcome)
from fsm_bot.logs import event
from fsm_bot.machine import (AWAIT_SETTLE, FETCH, HALTED, IDLE, PREDICT, RECORD, RISK, SIZE, SKIPPED, SUBMIT,
                             Bot, build)
from fsm_bot.ports import Accepted, Clock, Feed, OrderIntent, Rejected, SignedOrder, SubmitResult, Unknown, Venue, slug
from fsm_bot.session import Session, fold, iso, parse_iso
from fsm_bot.steps import Halt, OrderRecord, Sized, Skip, Step
from states import await_settle, fetch, halted, idle, predict, record, risk, size, skipped, submit

HANDLERS = {IDLE: idle, FETCH: fetch, PREDICT: predict, RISK: risk, SIZE: size, SUBMIT: submit,
            AWAIT_SETTLE: await_settle, RECORD: record, SKIPPED: skipped, HALTED: halted}
HANDLER_TRIGGERS = {state: module.TRIGGERS | ({"halt"} if module.TRIGGERS else set())
                    for state, module in HANDLERS.items()}

QUIET = logging.getLogger("fsm_bot.quiet")
"""The engine's log when it is given none (backtests, tests): it goes nowhere."""
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False

RESOLUTION_POLL_SECS = 30
RETRY_PAUSE_SECS = (1, 2, 4, 8, 15, 30)


class Observer(Protocol):
    def on_record(self, before: Session, after: Session, step: Step) -> None: ...


class _Silent:
    def on_record(self, before: Session, after: Session, step: Step) -> None:
        pass


DECISION_STAGES = ("fetch", "indicators", "predict", "risk", "size", "submit")


@dataclass
class Metrics:
    """Where an interval's time went, in ms, sleeps excluded: one stage per state (FETCH split into the
    port calls, ``fetch``, and the handler's indicators), and the journal appends of the decision path
    (from the interval's ``tick`` to the order's answer) apart. ``decision_ms`` is the interval start to
    the venue's answer: what a trader waits for."""

    path: Path | None
    spent: dict[str, float] = field(default_factory=dict)
    journal_ms: float = 0.0  # appends of the records from tick to submitted
    other_journal_ms: float = 0.0
    intervals: list[dict[str, Any]] = field(default_factory=list)
    keep: bool = False  # keep each interval's line in ``intervals`` (benchmarks read them)

    def add(self, stage: str, ms: float) -> None:
        self.spent[stage] = self.spent.get(stage, 0.0) + ms

    def add_journal(self, src: str, ms: float) -> None:
        if src in (IDLE, FETCH, PREDICT, RISK, SIZE, SUBMIT):
            self.journal_ms += ms
        else:
            self.other_journal_ms += ms

    def flush(self, row: steps.TradeRow) -> None:
        decision = sum(self.spent.get(stage, 0.0) for stage in DECISION_STAGES) + self.journal_ms
        line = {"interval": row.interval_number, "outcome": row.outcome,
                **{f"{stage}_ms": round(ms, 3) for stage, ms in self.spent.items()},
                "journal_ms": round(self.journal_ms, 3), "decision_ms": round(decision, 3),
                "total_ms": round(sum(self.spent.values()) + self.journal_ms + self.other_journal_ms, 3)}
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        if self.keep:
            self.intervals.append(line)
        self.spent, self.journal_ms, self.other_journal_ms = {}, 0.0, 0.0


class Engine:
    def __init__(self, session: Session, journal: journal_mod.Journal, clock: Clock, feed: Feed, venue: Venue, *,
                 view_files: views.Views | None = None, observer: Observer | None = None,
                 log: logging.Logger | None = None, metrics_path: Path | None = None,
                 stop: threading.Event | None = None, resumed: bool = False,
                 on_record: Callable[[dict[str, Any], Step], None] | None = None) -> None:
        self.session, self.journal, self.clock, self.feed, self.venue = session, journal, clock, feed, venue
        self.views = view_files
        self.observer = observer or _Silent()
        self.log = log or QUIET
        self.metrics = Metrics(metrics_path)
        self.stop = stop or threading.Event()
        self.resumed = resumed
        self.on_record = on_record
        self.now = clock.now_ms()
        self._slept = self._sub = 0.0
        self.bot = Bot(self._journal)
        self.machine = build(self.bot, session.state, HANDLER_TRIGGERS)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> Session:
        while not self.session.finished:
            self._check_stop()
            state = self.session.state
            started, self._slept, self._sub = time.perf_counter(), 0.0, 0.0
            step = self._decide(state)
            self._check_stop()
            self.metrics.add(state.lower(), (time.perf_counter() - started - self._slept - self._sub) * 1000)
            if step is None:
                self._sleep_until(self.now + RESOLUTION_POLL_SECS * 1000)
                continue
            self._fire(step)
            self.resumed = False
        if self.session.halted is not None:
            event(self.log, logging.CRITICAL, "engine", halted.run(self.session), interval=self.session.interval,
                  error_code=self.session.halted)
        return self.session

    def _decide(self, state: str) -> Step | None:
        try:
            return getattr(self, "_" + state.lower())()
        except FatalError as exc:
            if state in (AWAIT_SETTLE, RECORD):
                raise  # a held position is never abandoned by a halt; the process stops and resume settles it
            event(self.log, logging.CRITICAL, "engine", str(exc), interval=self.session.interval, error_code=exc.code)
            return Halt(cause=exc.code, detail=str(exc))

    def _fire(self, step: Step) -> None:
        before = self.session
        started = time.perf_counter()
        self.bot.trigger(step.trigger, step=step)
        self.metrics.add_journal(before.state, (time.perf_counter() - started) * 1000)
        if self.views is not None:
            self.views.append(views.lines(before, self.session, step))
        if step.trigger == "recorded":
            row = self.session.trades[-1]
            self.metrics.flush(row)
            event(self.log, logging.INFO, "engine", f"interval {row.interval_number}: {row.outcome} ({row.reason}), "
                  f"pnl {row.pnl}, capital {row.capital_after}, streak {row.win_streak}, seq {self.session.seq - 1}",
                  interval=row.interval_number)
        self.observer.on_record(before, self.session, step)
        self._redeem(step)

    def _redeem(self, step: Step) -> None:
        """Once an official WIN is journaled, the venue turns the winning tokens into collateral (live only);
        a failure is logged, and the next redeem call sweeps what is still redeemable."""
        if step.trigger not in ("reconciled", "tick"):
            return
        for r in step.results if isinstance(step, steps.Reconciled) else step.confirmed:
            if r.official is not None and r.new_outcome == "WIN":
                market = slug(self.session.interval_start(r.interval), self.session.cfg.interval_minutes)
                receipt = self._quietly(lambda: self.venue.redeem(market), "venue")
                if receipt:
                    event(self.log, logging.INFO, "venue", f"interval {r.interval}: redeemed {market} ({receipt})",
                          interval=r.interval)

    def _journal(self, src: str, dst: str, trigger: str, step: Step) -> None:
        """The machine's before_state_change hook: the record is durable before the state changes."""
        s = self.session
        rec = self.journal.append({"ts": iso(self.now), "session": s.session, "interval": min(s.interval, s.intervals),
                                   "src": src, "dst": dst, "trigger": trigger, "data": steps.encode(step)})
        self.session = s.apply(rec, step, self.now)
        if self.on_record is not None:
            self.on_record(rec, step)

    # -- time -----------------------------------------------------------------------------------
    def _read_clock(self) -> int:
        self.now = self.clock.now_ms()
        return self.now

    def _sleep_until(self, t_ms: int) -> None:
        started = time.perf_counter()
        self.clock.sleep_until(t_ms)
        self._slept += time.perf_counter() - started
        self._check_stop()

    def _pause(self, attempt: int) -> None:
        wait_secs = RETRY_PAUSE_SECS[min(attempt, len(RETRY_PAUSE_SECS) - 1)]
        self._sleep_until(self.clock.now_ms() + wait_secs * 1000)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("interrupted; the journal is intact: `fsm-bot resume` continues")

    def _late(self) -> Skip | None:
        """On resume, an interval whose entry window has closed is skipped rather than entered late."""
        if self.resumed and not self.session.entry_open(self.now):
            prediction = self.session.current.prediction
            return Skip(reason="late_resume", detail=f"{self.session.secs_left(self.now):.0f} s left at resume",
                        prediction=prediction.side if prediction else "SKIP",
                        confidence=prediction.confidence if prediction else 0.0)
        return None

    # -- one method per state: gather the inputs, let the handler decide -------------------------
    def _idle(self) -> Step | None:
        s = self.session
        if not s.done:
            start = s.interval_start(s.interval)
            if self.clock.now_ms() < start:
                self._quietly(lambda: self.venue.warm(start), "venue")
            self._sleep_until(start)
        now = self._read_clock()
        official = {k: self._official(s.interval_start(k)) for k in s.pending}
        return idle.run(s, now, official, self.resumed)

    def _fetch(self) -> Step:
        s = self.session
        now = self._read_clock()
        late = self._late()
        if late:
            return late
        start = s.interval_start(s.interval)
        try:
            candles = self.feed.candles(now, s.cfg.candles)
            depth = self.feed.depth(s.cfg.depth_levels)
            market = self.venue.market(start)
        except (DataError, TransientError) as exc:
            event(self.log, logging.ERROR, "fetch", f"interval {s.interval} skipped: {exc}", interval=s.interval,
                  error_code=exc.code)
            return fetch.run(s, now, None, None, None, failure=exc)
        started = time.perf_counter()
        step = fetch.run(s, now, candles, depth, market)
        self._sub = time.perf_counter() - started
        self.metrics.add("indicators", self._sub * 1000)
        return step

    def _predict(self) -> Step:
        self._read_clock()
        return self._late() or predict.run(self.session.current.snapshot, self.session.cfg)

    def _risk(self) -> Step:
        s = self.session
        now = self._read_clock()
        return self._late() or risk.run(s, s.current.snapshot, s.current.prediction, now)

    def _size(self) -> Step:
        s = self.session
        self._read_clock()
        late = self._late()
        if late:
            return late
        try:
            balance = self.venue.balance_usd()
        except (DataError, TransientError) as exc:
            return self._venue_skip(exc, "collateral balance unavailable")
        step = size.run(s, s.current.snapshot, s.current.prediction, s.current.approval, balance)
        if not isinstance(step, Sized):
            return step
        snap, side = s.current.snapshot, s.current.prediction.side
        intent = OrderIntent(session=s.session, interval=s.interval, slug=snap.slug, side=side,
                             token_id=snap.token(side), amount_usd=step.stake_usd, limit_price=step.limit_price)
        try:
            signed = self.venue.prepare(intent)
        except (DataError, TransientError) as exc:  # nothing was signed, nothing can have been sent
            return self._venue_skip(exc, "the order could not be prepared")
        return dataclasses.replace(step, order=OrderRecord(
            key=signed.key, slug=intent.slug, side=side, token_id=intent.token_id, amount_usd=intent.amount_usd,
            limit_price=intent.limit_price, order_type=intent.order_type, payload=signed.payload))

    def _venue_skip(self, exc: DataError | TransientError, what: str) -> Skip:
        s = self.session
        event(self.log, logging.ERROR, "venue", f"interval {s.interval} skipped: {what}: {exc}", interval=s.interval,
              error_code=exc.code)
        return Skip(reason=exc.code, detail=f"{what}: {exc}", prediction=s.current.prediction.side,
                    confidence=s.current.prediction.confidence)

    def _submit(self) -> Step:
        s = self.session
        order = _signed(s)
        now = self._read_clock()
        result: SubmitResult | None = None
        if self.resumed or s.current.unknown is not None:
            result = self._lookup(order.key)
        if result is None and submit.may_send(s, now):
            result = self._send(order)
        return submit.run(s, result, self.resumed)

    def _await_settle(self) -> Step:
        s = self.session
        start, end = s.interval_start(s.interval), s.interval_end(s.interval)
        self._sleep_until(end)
        for attempt in itertools.count():
            self._read_clock()
            reference = self._quietly(lambda: self.feed.reference(start, end), "feed")
            official = None if reference else self._official(start)
            step = await_settle.run(reference, official)
            if step is not None:
                return step
            if attempt % 6 == 5:
                event(self.log, logging.ERROR, "settle", f"interval {s.interval}: no result yet for {slug(start, s.cfg.interval_minutes)}",
                      interval=s.interval, error_code="settlement_pending")
            self._pause(attempt)
        raise AssertionError("unreachable")

    def _record(self) -> Step:
        self._read_clock()
        return record.run(self.session)

    def _skipped(self) -> Step:
        self._read_clock()
        return skipped.run(self.session)

    # -- venue calls with their error kinds mapped -----------------------------------------------
    def _quietly(self, call: Callable[[], Any], component: str) -> Any:
        try:
            return call()
        except (DataError, TransientError) as exc:
            event(self.log, logging.WARNING, component, str(exc), interval=self.session.interval, error_code=exc.code)
            return None

    def _official(self, start_ms: int) -> str | None:
        return self._quietly(lambda: self.venue.resolution(slug(start_ms, self.session.cfg.interval_minutes)), "venue")

    def _lookup(self, key: str) -> Accepted | Rejected | None:
        """Ask the venue by key until it answers: the order's fate is never guessed."""
        for attempt in itertools.count():
            try:
                return self.venue.lookup(key)
            except (TransientError, UnknownOutcome, DataError) as exc:
                event(self.log, logging.WARNING, "venue", f"lookup of {key} failed: {exc}", interval=self.session.interval,
                      error_code=exc.code)
                self._pause(attempt)
        raise AssertionError("unreachable")

    def _send(self, order: SignedOrder) -> SubmitResult:
        try:
            return self.venue.submit(order)
        except UnknownOutcome as exc:
            event(self.log, logging.ERROR, "venue", f"order {order.key}: outcome unknown ({exc})",
                  interval=self.session.interval, error_code=exc.code)
            return Unknown(key=order.key, detail=str(exc))
        except (TransientError, DataError) as exc:  # the request never reached the venue
            event(self.log, logging.ERROR, "venue", f"order {order.key} not sent: {exc}",
                  interval=self.session.interval, error_code=exc.code)
            return Rejected(key=order.key, reason=exc.code)


def _signed(s: Session) -> SignedOrder:
    """The journaled order, exactly as it was prepared (and signed) before the first post."""
    o = s.current.sized.order
    intent = OrderIntent(session=s.session, interval=s.interval, slug=o.slug, side=o.side, token_id=o.token_id,
                         amount_usd=o.amount_usd, limit_price=o.limit_price, order_type=o.order_type)
    return SignedOrder(key=o.key, intent=intent, payload=o.payload)


# -- the journal, read back ---------------------------------------------------------------------
def sessions(records: list[dict[str, Any]]) -> Iterator[tuple[Session | None, Session, Step, dict[str, Any]]]:
    """(session before, session after, step, record) for every record, the 'begin' record first."""
    first = Session.begin(records[0])
    yield None, first, steps.decode("begin", records[0]["data"]), records[0]
    s = first
    for rec in records[1:]:
        step = steps.decode(rec["trigger"], rec["data"])
        after = s.apply(rec, step)
        yield s, after, step, rec
        s = after


_PURE = {
    PREDICT: lambda s, now: predict.run(s.current.snapshot, s.cfg),
    RISK: lambda s, now: risk.run(s, s.current.snapshot, s.current.prediction, now),
    RECORD: lambda s, now: record.run(s),
    SKIPPED: lambda s, now: skipped.run(s),
}


def replay_check(records: list[dict[str, Any]]) -> int:
    """Recompute every pure decision from the journal; a difference raises ``ReplayMismatch``.

    Returns how many decisions were checked. SIZE is checked on its stake (the order it carries was
    prepared by the venue).
    """
    checked = 0
    for before, _after, step, rec in sessions(records):
        src = rec["src"]
        if before is None or getattr(step, "reason", None) == "late_resume":
            continue  # the begin record, and the engine's own late-resume skips, decide nothing to recompute
        if src in _PURE:
            again = _PURE[src](before, parse_iso(rec["ts"]))
        elif src == SIZE and isinstance(step, Sized):
            c = before.current
            again = dataclasses.replace(size.run(before, c.snapshot, c.prediction, c.approval, step.balance_usd),
                                        order=step.order)
        else:
            continue
        if again != step:
            raise ReplayMismatch(rec["seq"], src, steps.encode(step), steps.encode(again))
        checked += 1
    return checked


def begin(journal: journal_mod.Journal, step: steps.Begin, ts_ms: int) -> Session:
    """Append the session's first record and return the session it starts."""
    rec = journal.append({"ts": iso(ts_ms), "session": step.session, "interval": 0, "src": None, "dst": IDLE,
                          "trigger": "begin", "data": steps.encode(step)})
    return Session.begin(rec)


def load(path: Path) -> tuple[journal_mod.Journal, journal_mod.Contents, Session]:
    """Open a journal for resuming: the torn tail cut, the session folded, every decision re-checked."""
    jr, contents = journal_mod.Journal.recover(path)
    if not contents.records:
        jr.close()
        raise StateDirError(f"{path}: the session never began (its first record was torn); `fsm-bot start` begins one")
    replay_check(contents.records)
    return jr, contents, fold(contents.records)
