"""The offline world of ``--sim`` and ``backtest``: a replayed candle feed, a simulated clock and a
simulated Polymarket venue with a realistic book, fees, FOK fills and its own durable order ledger.

The book is calibrated against real Polymarket data in ``shared/data`` (``scripts/calibrate_book.py``
prints the figures): near the start of real BTC Up/Down windows the Up book's spread is 1 cent in
78% of snapshots, 2 cents in 16% and 3 in 5%, so the Up and Down asks sum to 1.01 (median), 1.02
(3rd quartile) or 1.03; the Up mid has a median of 0.505; the top five ask levels hold a median of
$1,080 (interquartile $630-$1,660). The simulated book (``fsm_bot/adapters/book.py``) draws each interval
from those figures, seeded by ``(seed, interval start)``, and knows nothing of the outcome.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsm_bot.adapters.book import BookModel
from fsm_bot.adapters.ledger import Chain, OrderLedger, simulated_order
from fsm_bot.candles import BUNDLED, Columns, bundled_columns, digest, load_candles
from fsm_bot.ports import (MINUTE_MS, Accepted, Candidates, Market, OrderIntent, Outcome,
                           Rejected, SignedOrder, SubmitResult, Trade, Held, slug, slug_start_ms, Clock)


# -- the clock ------------------------------------------------------------------------------------
class SimClock:
    """Simulated time: ``sleep_until`` jumps, or waits ``(t - now) / speed`` real seconds when a speed is set."""

    def __init__(self, start_ms: int, speed: float = math.inf, wake: threading.Event | None = None) -> None:
        self._now = start_ms
        self.speed = speed
        self.wake = wake or threading.Event()
        self._sleep: tuple[float, int, int] | None = None  # (wall start, sim start, sim target) of a scaled sleep

    def now_ms(self) -> int:
        return self._now

    def display_ms(self) -> int:
        """For a live view: during a scaled sleep, the simulated time the sleep has reached so far."""
        sleep = self._sleep
        if sleep is None:
            return self._now
        wall0, start, target = sleep
        return min(target, start + int((time.monotonic() - wall0) * 1000 * self.speed))

    def sleep_until(self, t_ms: int) -> None:
        if t_ms <= self._now:
            return
        if math.isfinite(self.speed):
            self._sleep = (time.monotonic(), self._now, t_ms)
            try:
                self.wake.wait((t_ms - self._now) / 1000 / self.speed)
            finally:
                self._sleep = None
            if self.wake.is_set():
                return
        self._now = t_ms

    def pause(self, secs: float) -> None:
        self.sleep_until(self._now + int(secs * 1000))


# -- the feed -------------------------------------------------------------------------------------
def replay(path: Path, sha256: str | None = None) -> "ReplayFeed":
    """The replay of a candle file (``sha256``: its digest, when known): the bundled sample's from its columns
    in numpy's format when they were read from this very file, else the file read by ``load_candles``."""
    kept = bundled_columns(sha256 or digest(path)) if Path(path) == BUNDLED else None
    return ReplayFeed(kept if kept is not None else load_candles(path))


class ReplayFeed:
    """Closed 1-minute candles from a frame, as they were at any moment of the past."""

    def __init__(self, candles: Any) -> None:
        """``candles``: a frame of CANDLE_COLUMNS (``load_candles``) or its ``Columns``."""
        self.columns = Columns.of(candles)
        self._frame = None if isinstance(candles, Columns) else candles
        self.times, self._open, self._close = self.columns.open_time, self.columns.open, self.columns.close
        self._first = int(self.times[0])

    @property
    def frame(self) -> Any:
        """The candles as a polars frame (made, and polars imported, when first asked)."""
        if self._frame is None:
            self._frame = self.columns.frame()
        return self._frame

    @property
    def first_ms(self) -> int:
        return int(self.times[0])

    @property
    def last_ms(self) -> int:
        return int(self.times[-1])

    def candles(self, before_ms: int, count: int) -> Columns:
        end = int(self.times.searchsorted(before_ms - MINUTE_MS, side="right"))
        return self.columns.slice(max(0, end - count), min(count, end))

    def adapters(self) -> tuple[type["SimClock"], type["SimVenue"]]:
        """The clock and the venue a session over this replay runs on."""
        return SimClock, SimVenue

    def wait_closed(self, before_ms: int) -> None:
        return None  # every candle is in already

    def depth(self, levels: int) -> None:
        return None  # no order book in replay: the imbalance uses the taker-flow proxy

    def start(self) -> None:
        pass  # the file is in memory: nothing runs in the background

    def reconnects(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def _row(self, open_ms: int) -> int | None:
        i = (open_ms - self._first) // MINUTE_MS  # where it is when no minute is missing before it
        if not (0 <= i < len(self.times) and self.times[i] == open_ms and (i == 0 or self.times[i - 1] < open_ms)):
            i = int(self.times.searchsorted(open_ms))
        return i if i < len(self.times) and self.times[i] == open_ms else None

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        first, last = self._row(start_ms), self._row(end_ms - MINUTE_MS)
        if first is None or last is None:
            return None
        return "UP" if self._close[last] >= self._open[first] else "DOWN"

    def settlement(self, start_ms: int, end_ms: int) -> Outcome | None:
        """The simulated venue's official result of ``[start, end)``. A real market always resolves, on its own
        price source, whatever Binance missed; here it is the reference's when the interval's first and last
        minutes are in the file, else what the nearest prices before them say: the start's price is the last
        close before it (the first minute's open when that minute is there), the end's the last close before it.
        None only when no candle closes by the end (the file has not reached it)."""
        exact = self.reference(start_ms, end_ms)
        if exact is not None:
            return exact
        before_end = int(self.times.searchsorted(end_ms, side="left")) - 1  # the last minute opened before the end
        if before_end < 0:
            return None
        first = self._row(start_ms)
        before_start = int(self.times.searchsorted(start_ms, side="left")) - 1
        if first is not None:
            start_price = self._open[first]
        elif before_start >= 0:
            start_price = self._close[before_start]
        else:  # the file starts inside the interval: its first minute's open is the earliest price there is
            start_price = self._open[before_start + 1]
        return "UP" if self._close[before_end] >= start_price else "DOWN"


# -- the venue ------------------------------------------------------------------------------------
class SimVenue:
    """Polymarket as the simulation sees it. Orders land in ``venue-orders.jsonl`` (fsynced), as on a real exchange."""

    signs_ahead = False  # its orders are signed in microseconds, when asked

    def __init__(self, feed: ReplayFeed, clock: Clock, ledger: Path | None, seed: int, interval_minutes: int,
                 fee_rate: Decimal, min_order_usd: Decimal, model: BookModel = BookModel(), durable: bool = True,
                 chain: Chain = Chain(), markets: dict[tuple[Any, ...], Market] | None = None) -> None:
        self.feed, self.clock, self.seed = feed, clock, seed
        self.minutes, self.fee_rate, self.min_order_usd = interval_minutes, fee_rate, min_order_usd
        self.model = model
        self.ledger = OrderLedger(ledger, durable, chain)
        self._last_market: Market | None = None
        self._drawn = markets  # the markets drawn so far, shared with the venues of sessions over the same span

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        """The accepted orders by key, as the ledger holds them."""
        return self.ledger.orders

    def close(self) -> None:
        self.ledger.close()

    def _ids(self, start_ms: int) -> tuple[str, str, str]:
        h = hashlib.sha256(f"{self.minutes}:{start_ms}".encode()).hexdigest()
        return "0x" + h, str(int(h[:30], 16)), str(int(h[30:60], 16))

    def warm(self, start_ms: int, candidates: Candidates | None = None) -> None:
        pass  # the simulated market is a pure function of (seed, start)

    def market(self, start_ms: int) -> Market:
        """The interval's market: a pure function of (seed, start), kept for the interval's second ask (and drawn once
        for every venue that shares the ``markets`` store)."""
        if self._last_market is not None and self._last_market.start_ms == start_ms:
            return self._last_market
        self._last_market = self._market(start_ms)
        return self._last_market

    def _market(self, start_ms: int) -> Market:
        if self._drawn is None:
            return self._draw(start_ms)
        key = (self.seed, self.minutes, self.fee_rate, self.min_order_usd, self.model, start_ms)
        market = self._drawn.get(key)
        if market is None:
            market = self._drawn[key] = self._draw(start_ms)
        return market

    def _draw(self, start_ms: int) -> Market:
        condition, up, down = self._ids(start_ms)
        up_book, down_book = self.model.books(random.Random(f"{self.seed}:{start_ms}"))
        return Market(slug=slug(start_ms, self.minutes), condition_id=condition, start_ms=start_ms,
                      end_ms=start_ms + self.minutes * MINUTE_MS, up_token=up, down_token=down, accepting_orders=True,
                      tick=self.model.tick, min_order_usd=self.min_order_usd, fee_rate=self.fee_rate,
                      up_book=up_book, down_book=down_book)

    def prepare(self, intent: OrderIntent) -> SignedOrder:
        return simulated_order(intent)

    def submit(self, order: SignedOrder) -> SubmitResult:
        start_ms, _ = slug_start_ms(order.intent.slug)
        return self.ledger.fill(order, self.market(start_ms), self.clock.now_ms(), self.min_order_usd)

    def lookup(self, order: SignedOrder) -> Accepted | Rejected | None:
        return self.ledger.lookup(order.key, self.clock.now_ms())

    def trades(self, order: SignedOrder, order_id: str, known: tuple[Trade, ...]) -> tuple[Trade, ...]:
        return self.ledger.trades(order.key, self.clock.now_ms())

    def holdings(self, market_slugs: tuple[str, ...]) -> tuple[Held, ...]:
        return self.ledger.holdings(market_slugs, self.clock.now_ms())

    def position(self, order: SignedOrder) -> Decimal | None:
        return self.ledger.position(order.key, self.clock.now_ms())

    def resolution(self, market_slug: str) -> Outcome | None:
        start, minutes = slug_start_ms(market_slug)
        end = start + minutes * MINUTE_MS
        return self.feed.settlement(start, end) if self.clock.now_ms() >= end else None

    def balance_usd(self, fresh: bool = False) -> Decimal | None:
        return None

    def redeem(self, market_slug: str) -> str | None:
        return None  # the simulation pays a win out at settlement

    def preflight(self, next_start_ms: int) -> list[str]:
        return []  # no account, no network: nothing can be missing

