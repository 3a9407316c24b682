"""What each state's handler is given besides the session and the time: the ports' answers.

The engine gathers one of these per step (``fsm_bot/engine/inputs.py``) and journals it with the
step it led to (the record's ``inputs``), so replay hands today's handler exactly what the ports
answered then and checks that it decides the same. A port call that failed is a ``Failure``: the
handler decides what it means (skip, halt, ask again), never the engine. ``resumed`` is true on the
first step after a restart.
"""

from __future__ import annotations

from decimal import Decimal

from fsm_bot.candles import Columns
from fsm_bot.errors import BotError, DataError, FatalError, TransientError, UnknownOutcome
from fsm_bot.indicators import Window
from fsm_bot.ports import Depth, Held, Market, Outcome, SignedOrder, SubmitResult, Trade
from fsm_bot.values import frozen

_KINDS = ((UnknownOutcome, "unknown"), (FatalError, "fatal"), (TransientError, "transient"), (DataError, "data"))


@frozen
class Failure:
    """A port call that raised: the error's kind (data, transient, fatal, unknown), code and message."""

    kind: str
    code: str
    detail: str

    @classmethod
    def of(cls, exc: BotError) -> "Failure":
        kind = next((name for err, name in _KINDS if isinstance(exc, err)), "data")
        return cls(kind=kind, code=exc.code, detail=str(exc))

    def __str__(self) -> str:
        return self.detail


@frozen
class Seen:
    """Nothing from the ports (PREDICT, RISK, RECORD, SKIPPED)."""

    resumed: bool = False


@frozen
class IdleSeen:
    official: tuple[tuple[int, Outcome | None], ...] = ()  # (interval, official result) of each pending trade
    fills: tuple[tuple[int, tuple[Trade, ...] | None], ...] = ()  # (interval, its trades now) of each fill followed
    resumed: bool = False


@frozen
class FetchSeen:
    candles: Columns | None = None
    depth: Depth | None = None
    market: Market | None = None
    failure: Failure | None = None
    resumed: bool = False
    window: Window | None = None  # what the candles show, computed beforehand (a backtest); never journaled

    def __eq__(self, other: object) -> bool:  # candles compare by value
        if not isinstance(other, FetchSeen):
            return NotImplemented
        same_candles = (self.candles is None) == (other.candles is None) and (
            self.candles is None or self.candles.equals(other.candles))  # type: ignore[union-attr]
        return same_candles and (self.depth, self.market, self.failure, self.resumed) == (
            other.depth, other.market, other.failure, other.resumed)

    __hash__ = None  # type: ignore[assignment]


@frozen
class SizeSeen:
    """The collateral balance and the venue's prepared (signed) order, or what failed. The order itself
    is journaled once, in the ``sized`` step it ends up in (``Sized.order``)."""

    balance_usd: Decimal | None = None
    balance_failure: Failure | None = None
    prepared: SignedOrder | None = None
    prepare_failure: Failure | None = None
    held: Held | None = None  # an order of this market the venue holds and the journal does not know (resume)
    resumed: bool = False


@frozen
class SubmitSeen:
    """The venue's answer about the journaled order -- to a lookup by its key or to posting it, whichever
    gave one; None when it never saw the order and it was not (or no longer) to be posted -- or what failed."""

    answer: SubmitResult | None = None
    lookup_failure: Failure | None = None
    send_failure: Failure | None = None
    resumed: bool = False


@frozen
class SettleSeen:
    reference: Outcome | None = None  # the provisional result from the reference price
    official: Outcome | None = None  # the venue's official resolution, asked only without a reference
    trades: tuple[Trade, ...] | None = None  # the fill's trades now, while they are not final (None: not asked)
    position: Decimal | None = None  # the wallet's shares of the token, asked once the grace is over
    resumed: bool = False
