"""What each state's handler is given, gathered through the ports: one function per state.

``STAGES`` maps a state to its ``Stage``: the handler module, the function that gathers the
handler's inputs (``fsm_bot.observed``) through the ports, and how those inputs are journaled and
read back, so that the live loop and the replay hand the handler the same thing. A gatherer applies
no rule: where what to ask depends on a rule (SIZE asks the venue to prepare the stake's order,
SUBMIT looks the order up before posting it), it asks the handler's module.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from fsm_bot.codec import decode_as
from fsm_bot.errors import DataError, FatalError, Interrupted, TransientError, UnknownOutcome
from fsm_bot.indicators import Windows
from fsm_bot.logs import event
from fsm_bot.machine import AWAIT_SETTLE, FETCH, HALTED, IDLE, PREDICT, RECORD, RISK, SIZE, SKIPPED, SUBMIT
from fsm_bot.observed import FetchSeen, Failure, IdleSeen, Seen, SettleSeen, SizeSeen, SubmitSeen
from fsm_bot.ports import Clock, Feed, Held, SignedOrder, Venue, slug
from fsm_bot.session import Session, replace
from fsm_bot.steps import Sized, Step, Submitted
from fsm_bot.values import frozen
from states import await_settle, fetch, halted, idle, predict, record, risk, size, skipped, submit

RESOLUTION_POLL_SECS = (30,)
READ_AHEAD_SECS = 60
PORT_ERRORS = (DataError, TransientError, UnknownOutcome, FatalError)
RETRY_PAUSE_SECS = (1, 2, 4, 8, 15, 30)


class Ports:
    """The clock, the feed and the venue as the gatherers use them: sleeps that a stop cuts short (and
    that the metrics leave out), and port calls whose errors become ``Failure`` values, logged once."""

    def __init__(self, clock: Clock, feed: Feed, venue: Venue, log: logging.Logger, stop: threading.Event) -> None:
        self.clock, self.feed, self.venue, self.log, self.stop = clock, feed, venue, log, stop
        self.slept_secs = self.feed_wait_secs = 0.0
        self.candle_arrived: float | None = None  # wall time the last awaited candle came in (None: it was in)
        self.ahead: Ahead | None = None  # IDLE's reads, made before the boundary
        self.interval = 0
        self.adopt: dict[str, Held] = {}  # orders the venue holds that the journal lost, by market (resume)
        self.windows: Windows | None = None  # what the feed's candle windows show, computed beforehand (backtest)
        self.before_waiting: Callable[[], None] = lambda: None  # the engine's: observers hear what they have not

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("interrupted; the journal is intact: `fsm-bot resume` continues")

    def sleep_until(self, t_ms: int) -> None:
        if t_ms > self.clock.now_ms():
            self.before_waiting()
        started = time.perf_counter()
        self.clock.sleep_until(t_ms)
        self.slept_secs += time.perf_counter() - started
        self.check_stop()

    def candle_closed(self, before_ms: int) -> None:
        """Wait for the candle that closes at ``before_ms``: what the interval's decision starts on. The wait is
        the feed's latency, not the bot's: left out like a sleep, and kept apart (``feed_wait_secs``)."""
        started = time.perf_counter()
        self.candle_arrived = self.feed.wait_closed(before_ms)
        waited = time.perf_counter() - started
        self.slept_secs += waited
        self.feed_wait_secs += waited

    def ask(self, call: Callable[[], Any], component: str, what: str,
            level: int = logging.ERROR) -> tuple[Any, Failure | None]:
        """(answer, None), or (None, the failure) when the port raised one of the four error kinds (a storage or
        state error is not the venue's answer: it stops the session)."""
        try:
            return call(), None
        except PORT_ERRORS as exc:
            event(self.log, level, component, f"interval {self.interval}: {what}: {exc}", interval=self.interval,
                  error_code=exc.code)
            return None, Failure.of(exc)

    def quietly(self, call: Callable[[], Any], component: str) -> Any:
        """The answer of a read whose failure only means "not known yet": logged (a warning for bad data or an
        outage, an error for a refused key), and asked again later."""
        try:
            return call()
        except PORT_ERRORS as exc:
            level = logging.WARNING if isinstance(exc, (DataError, TransientError)) else logging.ERROR
            event(self.log, level, component, str(exc), interval=self.interval, error_code=exc.code)
            return None

    def official(self, s: Session, k: int) -> Any:
        market = slug(s.interval_start(k), s.cfg.interval_minutes)
        return self.quietly(lambda: self.venue.resolution(market), "venue")


Gather = Callable[[Ports, Session, bool], tuple[int, Any]]


@frozen
class Stage:
    """One state's handler and how its inputs are had: gathered live, or read back from a record."""

    handler: ModuleType
    seen: type
    gather: Gather
    waits_secs: tuple[int, ...] = RETRY_PAUSE_SECS  # pauses before asking again when the handler returns None
    metric: str = ""  # the metrics' name for the gathering (default: the state's); the handler's is ``decide_metric``
    decide_metric: str = ""

    def journaled(self, seen: Any, step: Step, s: Session, now_ms: int) -> Any:
        """The inputs as the record keeps them (the journal encodes them): what the ports answered, and
        ``resumed`` only where it made the handler decide otherwise (so a resumed session journals the bytes an
        uninterrupted one would)."""
        if seen.resumed and self.handler.run(s, now_ms, dataclasses.replace(seen, resumed=False)) == step:
            seen = dataclasses.replace(seen, resumed=False)
        if isinstance(seen, SizeSeen) and seen.prepared is not None:  # journaled once, in the step it ends up in
            seen = replace(seen, prepared=None)
        elif isinstance(seen, FetchSeen) and seen.window is not None:  # the candles are; replay recomputes it
            seen = replace(seen, window=None)
        return seen

    def restored(self, raw: dict[str, Any], step: Step, s: Session) -> Any:
        seen = decode_as(self.seen, raw)
        if isinstance(step, Sized) and step.order is not None:
            seen = dataclasses.replace(seen, prepared=step.order.signed(s.session, s.interval))
        return seen

    def wait_secs(self, attempt: int) -> int:
        return self.waits_secs[min(attempt, len(self.waits_secs) - 1)]


# -- one gatherer per state ------------------------------------------------------------------------
def _idle(p: Ports, s: Session, resumed: bool) -> tuple[int, IdleSeen]:
    if not s.done:
        start = s.interval_start(s.interval)
        now = p.clock.now_ms()
        if now < start:
            _ready(p, s, start)
        p.sleep_until(start)
    now = p.clock.now_ms()
    ahead = p.ahead if p.ahead is not None and p.ahead.start_ms == s.interval_start(s.interval) and not s.done \
        else Ahead(-1)
    p.ahead = None
    fills = tuple((f.interval, ahead.fills[f.interval] if f.interval in ahead.fills else _trades(p, s, f))
                  for f in s.following)
    official = tuple((k, ahead.official[k] if k in ahead.official else p.official(s, k)) for k in s.pending)
    return now, IdleSeen(official=official, fills=fills, resumed=resumed)


@dataclass
class Ahead:
    """IDLE's reads for the interval starting at ``start_ms``, made ``READ_AHEAD_SECS`` before it starts."""

    start_ms: int
    official: dict[int, Any] = dataclasses.field(default_factory=dict)
    fills: dict[int, Any] = dataclasses.field(default_factory=dict)


def _ready(p: Ports, s: Session, start_ms: int) -> None:
    """``READ_AHEAD_SECS`` before the interval starting at ``start_ms``: its market warmed and the orders it can
    have signed (``Venue.warm``), and the official results and followed fills IDLE reconciles with read, so
    that its boundary only waits for the closing candle (an interval settled at the boundary is asked then)."""
    p.sleep_until(start_ms - READ_AHEAD_SECS * 1000)
    now = p.clock.now_ms()
    candidates = size.candidates(s, now) if p.venue.signs_ahead else None
    p.quietly(lambda: p.venue.warm(start_ms, candidates), "venue")
    p.ahead = Ahead(start_ms, {k: p.official(s, k) for k in s.pending},
                    {f.interval: _trades(p, s, f) for f in s.following})


def _trades(p: Ports, s: Session, f: Any) -> Any:
    return p.quietly(lambda: p.venue.trades(f.order.signed(s.session, f.interval), f.submitted.order_id, f.trades),
                     "venue")


def _fetch(p: Ports, s: Session, resumed: bool) -> tuple[int, FetchSeen]:
    p.candle_closed(p.clock.now_ms())
    now = p.clock.now_ms()
    start = s.interval_start(s.interval)
    candles, failure = p.ask(lambda: p.feed.candles(now, s.cfg.candles), "fetch", "skipped: candles")
    depth = market = None
    if failure is None:
        depth, failure = p.ask(lambda: p.feed.depth(s.cfg.depth_levels), "fetch", "skipped: depth")
    if failure is None:
        market, failure = p.ask(lambda: p.venue.market(start), "fetch", "skipped: market")
    if failure is not None:
        return now, FetchSeen(failure=failure, resumed=resumed)
    window = p.windows.at(now, s.cfg) if p.windows is not None else None
    return now, FetchSeen(candles=candles, depth=depth, market=market, resumed=resumed, window=window)


def _nothing(p: Ports, s: Session, resumed: bool) -> tuple[int, Seen]:
    return p.clock.now_ms(), Seen(resumed=resumed)


def _size(p: Ports, s: Session, resumed: bool) -> tuple[int, SizeSeen]:
    now = p.clock.now_ms()
    held = p.adopt.get(s.current.snapshot.slug) if s.current.snapshot else None
    if held is not None:
        return now, SizeSeen(held=held, resumed=resumed)
    balance, failure = p.ask(p.venue.balance_usd, "venue", "skipped: collateral balance unavailable")
    seen = SizeSeen(balance_usd=balance, balance_failure=failure, resumed=resumed)
    draft = size.run(s, now, seen)
    if size.short_of_balance(draft):  # the venue's cached balance may count matched orders: re-read it fresh
        balance, failure = p.ask(lambda: p.venue.balance_usd(fresh=True), "venue",
                                 "skipped: collateral balance unavailable")
        seen = SizeSeen(balance_usd=balance, balance_failure=failure, resumed=resumed)
        draft = size.run(s, now, seen)
    if isinstance(draft, Sized):
        intent = size.order_intent(s, draft)
        prepared, failure = p.ask(lambda: p.venue.prepare(intent), "venue", "skipped: the order could not be prepared")
        seen = replace(seen, prepared=prepared, prepare_failure=failure)
    return now, seen


def _submit(p: Ports, s: Session, resumed: bool) -> tuple[int, SubmitSeen]:
    assert s.current.sized is not None and s.current.sized.order is not None
    order = s.current.sized.order.signed(s.session, s.interval)
    now = p.clock.now_ms()
    if submit.must_ask(s, resumed):
        found, failure = p.ask(lambda: p.venue.lookup(order), "venue", f"lookup of {order.key} failed")
        if failure is not None or found is not None:
            return now, SubmitSeen(answer=found, lookup_failure=failure, resumed=resumed)
    if not submit.may_send(s, now):
        return now, SubmitSeen(resumed=resumed)
    sent, failure = p.ask(lambda: p.venue.submit(order), "venue", f"order {order.key}: no fill")
    return now, SubmitSeen(answer=sent, send_failure=failure, resumed=resumed)


def _await_settle(p: Ports, s: Session, resumed: bool) -> tuple[int, SettleSeen]:
    start, end = s.interval_start(s.interval), s.interval_end(s.interval)
    following = await_settle.following(s)
    if not following:
        if s.interval < s.intervals and p.clock.now_ms() < end:  # the next interval, made ready before it opens
            _ready(p, s, end)
        p.sleep_until(end)
    now = p.clock.now_ms()
    trades = position = reference = official = None
    if following:
        order, submitted = _held_order(s)
        trades = p.quietly(lambda: p.venue.trades(order, submitted.order_id, s.current.trades), "venue")
        if await_settle.needs_position(s, now):
            position = p.quietly(lambda: p.venue.position(order), "venue")
    if now >= end:
        p.candle_closed(end)
        reference = p.quietly(lambda: p.feed.reference(start, end), "feed")
        official = None if reference else p.official(s, s.interval)
    return now, SettleSeen(reference=reference, official=official, trades=trades, position=position,
                           resumed=resumed)


def _held_order(s: Session) -> tuple[SignedOrder, Submitted]:
    c = s.current
    assert c.sized is not None and c.sized.order is not None and c.submitted is not None
    return c.sized.order.signed(s.session, s.interval), c.submitted


STAGES: dict[str, Stage] = {
    IDLE: Stage(idle, IdleSeen, _idle, waits_secs=RESOLUTION_POLL_SECS),
    FETCH: Stage(fetch, FetchSeen, _fetch, metric="fetch", decide_metric="indicators"),
    PREDICT: Stage(predict, Seen, _nothing),
    RISK: Stage(risk, Seen, _nothing),
    SIZE: Stage(size, SizeSeen, _size),
    SUBMIT: Stage(submit, SubmitSeen, _submit),
    AWAIT_SETTLE: Stage(await_settle, SettleSeen, _await_settle),
    RECORD: Stage(record, Seen, _nothing),
    SKIPPED: Stage(skipped, Seen, _nothing),
}
HANDLER_TRIGGERS = {state: stage.handler.TRIGGERS | {"halt"} for state, stage in STAGES.items()} | {
    HALTED: halted.TRIGGERS}
