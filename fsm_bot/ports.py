"""The ports: ``Clock``, ``Feed`` and ``Venue``, and the fsm_bot types they take and return.

Every effect of the machine (time, market data, orders, resolutions) goes through one of these
protocols, so that ``--sim``, ``--paper`` and ``--live`` differ only in the adapters
``wiring.py`` plugs in. No vendor dict crosses a port.
"""

from __future__ import annotations

import threading
from dataclasses import field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fsm_bot.slugs import SLUG, slug, slug_start_ms  # noqa: F401 (the markets' names, part of what the ports speak)
from fsm_bot.values import frozen

if TYPE_CHECKING:  # a window of candles is only named here: what reads a journal needs no numpy
    from fsm_bot.candles import Columns

Side = Literal["UP", "DOWN"]

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "taker_buy_base")
"""The columns a candle frame carries; ``open_time`` is ms since the epoch (UTC), 1-minute candles."""
MINUTE_MS = 60_000
"""A candle's length: every candle the ports carry is one minute."""


@frozen
class Level:
    price: Decimal
    size: Decimal  # shares


@frozen
class Book:
    """One outcome token's book, best level first on both sides (unlike the CLOB's wire order).

    ``as_of_ms``: the clock time at which the venue last knew these levels current (a REST reply's arrival,
    or the market channel's last message since the book was taken); None where a book is read at the moment
    it is asked (the simulated venues). ``resyncing``: the channel lost its place in this book (a dropped
    connection, a change that did not add up) and these are its last known levels."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    as_of_ms: int | None = None
    resyncing: bool = False

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    def ask_depth_usd(self, levels: int = 5) -> Decimal:
        return sum((lv.price * lv.size for lv in self.asks[:levels]), Decimal(0))


@frozen
class Market:
    """The venue's market of one interval: ids, limits, fee and both books at the moment asked."""

    slug: str
    condition_id: str
    start_ms: int
    end_ms: int
    up_token: str
    down_token: str
    accepting_orders: bool
    tick: Decimal
    min_order_usd: Decimal
    fee_rate: Decimal
    up_book: Book
    down_book: Book

    def token(self, side: Side) -> str:
        return self.up_token if side == "UP" else self.down_token

    def book(self, side: Side) -> Book:
        return self.up_book if side == "UP" else self.down_book


@frozen
class Depth:
    """Binance depth summed over the top levels: the live order-book imbalance's input."""

    bid_qty: float
    ask_qty: float
    levels: int


@frozen
class OrderIntent:
    """What SIZE decided to buy: a FOK market BUY of ``amount_usd`` no dearer than ``limit_price``."""

    session: str
    interval: int
    slug: str
    side: Side
    token_id: str
    amount_usd: Decimal
    limit_price: Decimal
    order_type: Literal["FOK", "FAK"] = "FOK"


@frozen
class Candidates:
    """The orders an interval can have, known before it starts: a market BUY of each stake, on either side, no
    dearer than ``limit_price`` (the stake depends only on how the interval before it ends)."""

    session: str
    interval: int
    stakes: tuple[Decimal, ...]
    limit_price: Decimal

    def intents(self, slug: str, up_token: str, down_token: str) -> tuple[OrderIntent, ...]:
        return tuple(OrderIntent(session=self.session, interval=self.interval, slug=slug, side=side, token_id=token,
                                 amount_usd=stake, limit_price=self.limit_price)
                     for stake in self.stakes for side, token in (("UP", up_token), ("DOWN", down_token)))


@frozen
class SignedOrder:
    """An order ready to post; ``key`` is its idempotency key (on Polymarket, the signed order's hash)."""

    key: str
    intent: OrderIntent
    payload: dict[str, Any] = field(default_factory=dict)  # the exact body to post, journaled before posting


@frozen
class Fill:
    shares: Decimal
    spent_usd: Decimal
    avg_price: Decimal
    fee_usd: Decimal


@frozen
class Trade:
    """One trade of an order as the venue reports it. Only CONFIRMED is a position; FAILED never was one
    (the chain reverted: no collateral spent, no token received); MATCHED, MINED and RETRYING are not final."""

    trade_id: str
    status: str  # MATCHED, MINED, CONFIRMED, RETRYING or FAILED
    shares: Decimal | None = None  # what it matched, when the venue says
    price: Decimal | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_TRADE_STATUSES


FINAL_TRADE_STATUSES = frozenset({"CONFIRMED", "FAILED"})


@frozen
class Accepted:
    """The venue matched the order. ``settled``: the fill is a position at once (a simulated venue); else
    its ``trades`` must be followed until the chain has them CONFIRMED or FAILED (Polymarket)."""

    key: str
    order_id: str
    fill: Fill
    trades: tuple[Trade, ...] = ()
    settled: bool = True


@frozen
class Rejected:
    """The venue did not take the order. ``final``: a lookup found it dead (killed, cancelled, unmatched),
    the venue's word about this very order; a refusal of a post says only that this post was refused."""

    key: str
    reason: str
    final: bool = False


@frozen
class Unknown:
    key: str
    detail: str


SubmitResult = Accepted | Rejected | Unknown


@frozen
class Held:
    """An order the venue holds in one of a session's markets, and its fate: what a journal that lost records
    is compared with on resume."""

    order: SignedOrder  # its key, and the intent it bought (market, side, token, amount); payload may be empty
    answer: Accepted
Outcome = Literal["UP", "DOWN"]


class Clock(Protocol):
    """The only source of time, for the engine and the adapters alike. ``wake`` cuts a sleep short (a stop);
    ``speed`` is clock ms per wall ms (1 for the wall clock, infinite for a simulation that jumps)."""

    wake: threading.Event
    speed: float

    def now_ms(self) -> int: ...

    def sleep_until(self, t_ms: int) -> None: ...

    def pause(self, secs: float) -> None:
        """A retry's backoff: ``secs`` of this clock's time."""
        ...

    def display_ms(self) -> int:
        """The time a live view shows: during a scaled sleep, how far the sleep has come."""
        ...


class Feed(Protocol):
    def candles(self, before_ms: int, count: int) -> Columns:
        """The last ``count`` 1-minute candles closed by ``before_ms`` (CANDLE_COLUMNS), oldest first."""
        ...

    def wait_closed(self, before_ms: int) -> float | None:
        """Wait a little for the candle that closes at ``before_ms`` to come in: the wall time (``time.time``) it
        did, or None (not in time, or a replay, where every candle is in already)."""
        ...

    def depth(self, levels: int) -> Depth | None:
        """The spot order book's top levels, or None where there is none (replay)."""
        ...

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        """The provisional outcome: UP if the close of the last minute >= the open of the first; None if not yet known."""
        ...

    def start(self) -> None:
        """Begin what runs in the background (a stream); called once, before the first interval."""
        ...

    def reconnects(self) -> int:
        """How many times its stream had to reconnect (0 where there is none)."""
        ...

    def close(self) -> None: ...


class Venue(Protocol):
    signs_ahead: bool
    """Whether a signature costs enough to be made before the interval (``warm`` is then given its candidates)."""

    def market(self, start_ms: int) -> Market: ...

    def warm(self, start_ms: int, candidates: Candidates | None = None) -> None:
        """Before the interval starts: fetch what will not change in it (the market's ids, tick and fee, the
        signer's order metadata), so that the decision path only reads the books, and sign the ``candidates``
        in advance where signing costs time (``prepare`` hands out a match once, for that interval only).
        Errors are the caller's to log; ``market`` and ``prepare`` do anything still missing."""
        ...

    def prepare(self, intent: OrderIntent) -> SignedOrder: ...

    def submit(self, order: SignedOrder) -> SubmitResult: ...

    def lookup(self, order: SignedOrder) -> Accepted | Rejected | None:
        """The venue's answer about this order: its fate, or None when the venue positively never had it."""
        ...

    def trades(self, order: SignedOrder, order_id: str, known: tuple[Trade, ...]) -> tuple[Trade, ...]:
        """The order's trades as the venue reports them now (``known``: the ones already seen, by id)."""
        ...

    def position(self, order: SignedOrder) -> Decimal | None:
        """The shares of the order's token the wallet holds now, or None where the venue cannot say."""
        ...

    def holdings(self, market_slugs: tuple[str, ...]) -> tuple[Held, ...]:
        """Every order the venue holds in these markets (the wallet's, in live)."""
        ...

    def resolution(self, slug: str) -> Outcome | None: ...

    def balance_usd(self, fresh: bool = False) -> Decimal | None:
        """Collateral available for stakes, or None where the venue does not hold the money (sim, paper).
        ``fresh``: have the venue re-read its cached balance first (the CLOB counts matched orders)."""
        ...

    def redeem(self, market_slug: str) -> str | None:
        """Turn the wallet's winning tokens of a resolved market into collateral (live); a receipt such as
        a transaction id, or None where there is nothing to redeem (sim, paper, a losing or redeemed position)."""
        ...

    def preflight(self, next_start_ms: int) -> list[str]:
        """Everything trading will need, checked before the first interval: notes for the operator, or
        ``FatalError`` naming what to fix."""
        ...

    def close(self) -> None: ...
