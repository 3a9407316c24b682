"""The typed steps a state handler returns: one frozen dataclass per trigger.

A handler decides; it returns a step naming its trigger and carrying the decision's data. The
engine journals ``encode(step)`` as the record's ``data`` and fires ``step.trigger``; resume reads
the data back with ``decode``. Money is ``Decimal`` and travels as an exact string.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from fsm_bot.codec import decode_as, encode
from fsm_bot.ports import Fill, OrderIntent, SignedOrder, Trade
from fsm_bot.values import frozen

__all__ = ["encode", "decode", "decode_as"]


@frozen
class Snapshot:
    """Everything FETCH saw that a decision depends on; journaled so decisions replay without the network."""

    interval: int
    start_ms: int
    end_ms: int
    candle_count: int
    last_candle_ms: int  # open time of the last closed candle
    close: float
    rsi: float
    macd: float
    macd_signal: float
    imbalance: float
    imbalance_source: str  # "binance_depth_top<N>" or "replay_proxy_taker_flow_<N>c"
    range_pct: float  # (max high - min low) / min low over the volatility window
    slug: str
    condition_id: str
    up_token: str
    down_token: str
    accepting_orders: bool
    up_bid: Decimal | None
    up_ask: Decimal | None
    down_bid: Decimal | None
    down_ask: Decimal | None
    up_depth_usd: Decimal
    down_depth_usd: Decimal
    tick: Decimal
    min_order_usd: Decimal
    fee_rate: Decimal

    def ask(self, side: str) -> Decimal | None:
        return self.up_ask if side == "UP" else self.down_ask

    def token(self, side: str) -> str:
        return self.up_token if side == "UP" else self.down_token


@frozen
class TradeRow:
    """One line of ``trades.jsonl`` (SPEC 4)."""

    timestamp: str
    interval_number: int
    prediction: str
    confidence: float
    odds: Decimal | None
    position_size: Decimal
    shares: Decimal
    fee: Decimal
    outcome: str
    pnl: Decimal
    capital_after: Decimal
    win_streak: int
    reason: str
    order_id: str | None


@frozen
class Resolution:
    """What reconciliation learned of one traded interval: of its market's official result ("confirmed",
    "corrected", "unreconciled") or of its fill on chain, followed after its row was written ("fill_final":
    the booking stands; "voided": the trade failed, its PnL reversed; "revived": a void was held after all;
    "fill_unconfirmed": still not final at the deadline, left as booked)."""

    interval: int
    status: str
    provisional: str
    official: str | None
    old_outcome: str
    new_outcome: str
    pnl_change: Decimal
    capital_after: Decimal


class Step:
    trigger: ClassVar[str]


@frozen
class Begin(Step):
    """The journal's first record: the machine's initialisation into IDLE; names the mode."""

    trigger: ClassVar[str] = "begin"
    mode: str
    session: str
    start_ms: int
    config: dict[str, Any]
    source: dict[str, Any]  # where the session's data comes from (sim: data file and its digest)
    version: str
    chain: dict[str, Any] | None = None  # sessions back to back: {"sessions": N or None (forever), "index", "stop_on_halt"}


@frozen
class Tick(Step):
    trigger: ClassVar[str] = "tick"
    start_ms: int
    end_ms: int
    confirmed: tuple[Resolution, ...] = ()  # official results that agreed, learned while IDLE
    redeem: tuple[str, ...] = ()  # markets whose winning tokens are now redeemable (an observer redeems them)


@frozen
class Reconciled(Step):
    trigger: ClassVar[str] = "reconciled"
    results: tuple[Resolution, ...]
    redeem: tuple[str, ...] = ()


@frozen
class Skip(Step):
    trigger: ClassVar[str] = "skip"
    reason: str
    detail: str = ""
    prediction: str = "SKIP"
    confidence: float = 0.0


@frozen
class Halt(Step):
    trigger: ClassVar[str] = "halt"
    cause: str
    detail: str = ""


@frozen
class Fetched(Step):
    trigger: ClassVar[str] = "fetched"
    snapshot: Snapshot


@frozen
class Predicted(Step):
    trigger: ClassVar[str] = "predicted"
    side: str  # "UP" or "DOWN"
    confidence: float
    tier: str  # "strict", "reversion" or "lean"
    rule: str  # the rule that fired, with the values it saw


@frozen
class Approved(Step):
    trigger: ClassVar[str] = "approved"
    ask: Decimal
    range_pct: float
    secs_left: float
    candle_age_secs: float
    drawdown: Decimal


@frozen
class OrderRecord:
    """The order as journaled before it is posted: its idempotency key and the exact body."""

    key: str
    slug: str
    side: str
    token_id: str
    amount_usd: Decimal
    limit_price: Decimal
    order_type: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, order: SignedOrder) -> "OrderRecord":
        i = order.intent
        return cls(key=order.key, slug=i.slug, side=i.side, token_id=i.token_id, amount_usd=i.amount_usd,
                   limit_price=i.limit_price, order_type=i.order_type, payload=order.payload)

    def signed(self, session: str, interval: int) -> SignedOrder:
        """The order exactly as it was prepared (and signed) before the first post."""
        intent = OrderIntent(session=session, interval=interval, slug=self.slug, side=self.side,  # type: ignore[arg-type]
                             token_id=self.token_id, amount_usd=self.amount_usd, limit_price=self.limit_price,
                             order_type=self.order_type)  # type: ignore[arg-type]
        return SignedOrder(key=self.key, intent=intent, payload=self.payload)


@frozen
class Sized(Step):
    trigger: ClassVar[str] = "sized"
    stake_usd: Decimal
    limit_price: Decimal
    fee_bound_usd: Decimal
    balance_usd: Decimal | None = None
    order: OrderRecord | None = None  # the order the venue prepared (signed) for the stake
    adopted: bool = False  # the order is one the venue already held that the journal had lost: asked, never posted


@frozen
class Submitted(Step):
    """The venue matched the order: a position once its trades are CONFIRMED (at once where ``settled``)."""

    trigger: ClassVar[str] = "submitted"
    key: str
    order_id: str
    fill: Fill
    trades: tuple[Trade, ...] = ()
    settled: bool = True


@frozen
class TradeUpdated(Step):
    """The venue reports the order's trades in a new state (MATCHED -> MINED -> CONFIRMED, or FAILED)."""

    trigger: ClassVar[str] = "trade_updated"
    trades: tuple[Trade, ...]


@frozen
class SubmitUnknown(Step):
    trigger: ClassVar[str] = "submit_unknown"
    key: str
    detail: str


@frozen
class Settled(Step):
    trigger: ClassVar[str] = "settled"
    result: str | None  # the market's result, "UP" or "DOWN" (None: a void learned before it was known)
    source: str  # "reference" (Binance candles), "official", or "venue" (a void)
    void: str = ""  # the position never existed: "trade_failed" or "never_mined"


@frozen
class Recorded(Step):
    trigger: ClassVar[str] = "recorded"
    row: TradeRow


STEPS: dict[str, type[Step]] = {
    cls.trigger: cls
    for cls in (Begin, Tick, Reconciled, Skip, Halt, Fetched, Predicted, Approved, Sized, Submitted,
                SubmitUnknown, TradeUpdated, Settled, Recorded)
}


def decode(trigger: str, data: dict[str, Any]) -> Step:
    """The step a journal record holds."""
    return decode_as(STEPS[trigger], data)
