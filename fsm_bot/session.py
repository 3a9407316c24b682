"""The session folded from the journal: capital, streak, interval, machine state, open position.

``Session.apply(record)`` is the only way a session changes, in a live run and in a resume alike,
so a resumed session is the same object the uncrashed run held at that record.
"""

from __future__ import annotations

from dataclasses import field
from functools import lru_cache
from decimal import Decimal
from typing import Any, Iterable

import orjson

from fsm_bot import steps
from fsm_bot.config import Config
from fsm_bot.machine import HALTED, IDLE
from fsm_bot.money import ZERO
from fsm_bot.ports import Trade
from fsm_bot.steps import (Approved, Fetched, Predicted, Recorded, Reconciled, Resolution, Settled, Sized, Skip,
                           Submitted, SubmitUnknown, TradeRow)
from fsm_bot.timestamps import iso, iso_seconds, parse_iso, session_id  # noqa: F401 (also read from here)
from fsm_bot.values import frozen


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for the fold's frozen records, without re-running ``__init__`` (it is hot)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


@frozen
class Interval:
    """What the current interval has decided so far."""

    snapshot: steps.Snapshot | None = None
    prediction: Predicted | None = None
    approval: Approved | None = None
    sized: Sized | None = None
    unknown: SubmitUnknown | None = None
    submitted: Submitted | None = None
    trades: tuple[Trade, ...] = ()  # the fill's trades as the venue last reported them
    settled: Settled | None = None
    skip: Skip | None = None

    @property
    def fill_final(self) -> bool:
        """Whether the fill is what it will stay: settled at once, or every trade CONFIRMED or FAILED."""
        sub = self.submitted
        return sub is not None and (sub.settled or bool(self.trades) and all(t.final for t in self.trades))


@frozen
class Follow:
    """A recorded interval whose fill was not final on chain when its row was written: its trades are
    followed while later intervals run (``settled.result`` is the market's, for a void that comes back)."""

    interval: int
    submitted: Submitted
    order: steps.OrderRecord
    trades: tuple[Trade, ...]
    result: str | None
    fee_rate: Decimal


@frozen
class Session:
    mode: str
    session: str
    start_ms: int
    cfg: Config
    source: dict[str, Any]
    capital: Decimal
    streak: int = 0
    peak: Decimal = ZERO
    interval: int = 1
    state: str = IDLE
    seq: int = 1  # the next record's seq
    ts_ms: int = 0  # the last record's time
    current: Interval = field(default_factory=Interval)
    trades: tuple[TradeRow, ...] = ()
    pending: tuple[int, ...] = ()  # traded intervals awaiting official resolution
    following: tuple[Follow, ...] = ()  # recorded intervals whose fill is not final on chain yet
    mismatch: str = ""  # an order the venue accepted under another id than its hash: trading stops
    resolutions: tuple[Resolution, ...] = ()
    halted: str | None = None
    halt_detail: str = ""
    chain: dict[str, Any] | None = None  # its place in sessions run back to back (the begin record's)

    # -- derived --------------------------------------------------------------------------------
    @property
    def intervals(self) -> int:
        return self.cfg.intervals

    @property
    def interval_secs(self) -> int:
        return self.cfg.interval_secs

    @property
    def capital0(self) -> Decimal:
        return self.cfg.capital_usd

    @property
    def floor(self) -> Decimal:
        return self.cfg.floor_usd

    @property
    def drawdown(self) -> Decimal:
        """Loss from the starting capital, as a fraction (the halt rule's measure)."""
        return max(ZERO, (self.capital0 - self.capital) / self.capital0)

    def interval_start(self, k: int) -> int:
        return self.start_ms + (k - 1) * self.interval_secs * 1000

    def interval_end(self, k: int) -> int:
        return self.interval_start(k) + self.interval_secs * 1000

    def secs_left(self, now_ms: int) -> float:
        return (self.interval_end(self.interval) - now_ms) / 1000

    def entry_open(self, now_ms: int) -> bool:
        """Whether the current interval still allows an entry (the entry cut-off has not passed)."""
        return self.secs_left(now_ms) >= self.cfg.entry_cutoff_secs

    @property
    def done(self) -> bool:
        """Every interval has its row (or the session halted)."""
        return self.halted is not None or self.interval > self.intervals

    @property
    def finished(self) -> bool:
        """Nothing is left to do: done, and no official resolution or fill on chain is still awaited."""
        return self.halted is not None or (self.done and not self.pending and not self.following)

    def booked_pnl(self, k: int) -> Decimal:
        """Interval ``k``'s PnL as the books stand: its row's, plus every correction of it."""
        return self.trades[k - 1].pnl + sum((r.pnl_change for r in self.resolutions if r.interval == k), ZERO)

    @property
    def corrections(self) -> tuple[Resolution, ...]:
        """What changed a booked PnL: a disagreeing official result, a fill that failed, a void that was held."""
        return tuple(r for r in self.resolutions if r.status in CORRECTING)

    # -- the fold -------------------------------------------------------------------------------
    @classmethod
    def begin(cls, record: dict[str, Any]) -> "Session":
        b = steps.decode("begin", record["data"])
        cfg = _config(orjson.dumps(b.config, option=orjson.OPT_SORT_KEYS))
        return cls(mode=b.mode, session=b.session, start_ms=b.start_ms, cfg=cfg, source=b.source,
                   capital=cfg.capital_usd, peak=cfg.capital_usd, ts_ms=parse_iso(record["ts"]), chain=b.chain)

    def apply(self, record: dict[str, Any], step: steps.Step | None = None, ts_ms: int | None = None) -> "Session":
        """The session after one more journal record (its decoded step and time, if at hand)."""
        trigger = record["trigger"]
        step = step if step is not None else steps.decode(trigger, record["data"])
        moved = {"state": record["dst"], "seq": record["seq"] + 1,
                 "ts_ms": parse_iso(record["ts"]) if ts_ms is None else ts_ms}
        return _APPLY[trigger](self, step, moved)

    def row_for_halted(self, k: int) -> TradeRow:
        return TradeRow(timestamp=iso_seconds(self.interval_start(k)), interval_number=k, prediction="SKIP",
                        confidence=0.0, odds=None, position_size=ZERO, shares=ZERO, fee=ZERO, outcome="SKIPPED",
                        pnl=ZERO, capital_after=self.capital, win_streak=self.streak,
                        reason=f"halted:{self.halted}", order_id=None)

    def rows(self) -> list[TradeRow]:
        """``trades.jsonl``: the recorded rows, and after a halt one SKIPPED row per remaining interval."""
        rows = list(self.trades)
        if self.halted is not None:
            rows += [self.row_for_halted(k) for k in range(self.interval, self.intervals + 1)]
        return rows


@lru_cache(maxsize=8)
def _config(text: bytes) -> Config:
    """A begin record's config, parsed and validated once per process (a chain or a backtest of sessions
    begins each with the same one; a ``Config`` is frozen, so they share it)."""
    return Config.from_json(orjson.loads(text))


# Each fold function takes the session, the record's step and ``moved`` (the record's state, seq and time).
def _at(field_name: str):
    def apply(s: Session, step: Any, moved: dict[str, Any]) -> Session:
        return replace(s, current=replace(s.current, **{field_name: step}), **moved)
    return apply


_NOTHING_YET = Interval()  # a new interval's (frozen: every session shares it)


def _tick(s: Session, step: steps.Tick, moved: dict[str, Any]) -> Session:
    return _resolved(s, step.confirmed, current=_NOTHING_YET, **moved)


def _fetched(s: Session, step: Fetched, moved: dict[str, Any]) -> Session:
    return replace(s, current=replace(s.current, snapshot=step.snapshot), **moved)


def _submitted(s: Session, step: Submitted, moved: dict[str, Any]) -> Session:
    mismatch = s.mismatch or (f"interval {s.interval}: the venue accepted order {step.key} as {step.order_id}"
                              if step.order_id.lower() != step.key.lower() else "")
    return replace(s, current=replace(s.current, submitted=step, trades=step.trades), mismatch=mismatch, **moved)


def _trade_updated(s: Session, step: steps.TradeUpdated, moved: dict[str, Any]) -> Session:
    return replace(s, current=replace(s.current, trades=step.trades), **moved)


def _recorded(s: Session, step: Recorded, moved: dict[str, Any]) -> Session:
    row, cur = step.row, s.current
    pending = s.pending + ((row.interval_number,) if row.order_id and row.outcome in ("WIN", "LOSS") else ())
    following = s.following
    if cur.submitted is not None and cur.sized is not None and cur.sized.order is not None and (
            not cur.fill_final or row.reason == "never_mined"):
        following += (Follow(row.interval_number, cur.submitted, cur.sized.order, cur.trades,
                             cur.settled.result if cur.settled else None,
                             cur.snapshot.fee_rate if cur.snapshot else s.cfg.fee_rate),)
    return replace(s, trades=s.trades + (row,), capital=row.capital_after, streak=row.win_streak,
                   peak=max(s.peak, row.capital_after), interval=s.interval + 1, current=_NOTHING_YET,
                   pending=pending, following=following, **moved)


CORRECTING = frozenset({"corrected", "voided", "revived"})
FILL_STATUSES = frozenset({"fill_final", "voided", "revived", "fill_unconfirmed"})


def _resolved(s: Session, results: tuple[Resolution, ...], **moved: Any) -> Session:
    if not results:
        return replace(s, **moved)
    capital = s.capital + sum((r.pnl_change for r in results), ZERO)
    official = {r.interval for r in results if r.status not in FILL_STATUSES}
    fills = {r.interval for r in results if r.status in FILL_STATUSES}
    voided = {r.interval for r in results if r.status == "voided"}
    return replace(s, capital=capital, peak=max(s.peak, capital), resolutions=s.resolutions + results,
                   pending=tuple(k for k in s.pending if k not in official | voided),
                   following=tuple(f for f in s.following if f.interval not in fills), **moved)


def _reconciled(s: Session, step: Reconciled, moved: dict[str, Any]) -> Session:
    return _resolved(s, step.results, **moved)


def _halt(s: Session, step: steps.Halt, moved: dict[str, Any]) -> Session:
    return replace(s, halted=step.cause, halt_detail=step.detail, **moved)


_APPLY = {
    "tick": _tick,
    "fetched": _fetched,
    "predicted": _at("prediction"),
    "approved": _at("approval"),
    "sized": _at("sized"),
    "submit_unknown": _at("unknown"),
    "submitted": _submitted,
    "trade_updated": _trade_updated,
    "settled": _at("settled"),
    "skip": _at("skip"),
    "recorded": _recorded,
    "reconciled": _reconciled,
    "halt": _halt,
}


def fold(records: Iterable[dict[str, Any]]) -> Session:
    """The session a journal's records describe."""
    it = iter(records)
    first = next(it, None)
    if first is None or first.get("trigger") != "begin":
        raise ValueError("a journal starts with its 'begin' record")
    s = Session.begin(first)
    for record in it:
        s = s.apply(record)
    return s


def describe_state(s: Session) -> str:
    if s.halted:
        return f"{HALTED} ({s.halted})"
    if s.finished:
        return "finished"
    return f"{s.state}, interval {min(s.interval, s.intervals)}/{s.intervals}"

