"""Fakes built from plain functions (like httpx's MockTransport): a clock the test advances, a feed
of real candles whose outcomes the test chooses, and a venue whose answers the test chooses."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import polars as pl

from fsm_bot import engine, journal, steps
from fsm_bot.adapters.sim import BUNDLED, ReplayFeed, load_candles
from fsm_bot.config import Config
from fsm_bot.matching import market_buy
from fsm_bot.ports import (Accepted, Book, Candidates, Level, Market, OrderIntent, Outcome, Rejected, SignedOrder,
                           SubmitResult, slug)
from fsm_bot.session import Session
from fsm_bot.wiring import parse_start

START = parse_start("2024-03-13T14:00:00Z", 300)
SAMPLE = load_candles(BUNDLED)


class FakeClock:
    speed = math.inf

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.wake = threading.Event()

    def now_ms(self) -> int:
        return self.now

    def sleep_until(self, t_ms: int) -> None:
        self.now = max(self.now, t_ms)

    def pause(self, secs: float) -> None:
        self.sleep_until(self.now + int(secs * 1000))

    display_ms = now_ms


class FakeFeed:
    """Real candles from the bundled sample; outcomes from ``outcome(k)`` (k = 1-based interval)."""

    def __init__(self, outcome: Callable[[int], Outcome | None], start_ms: int = START, minutes: int = 5,
                 candles: Callable[[int, int], pl.DataFrame] | None = None) -> None:
        self.replay = ReplayFeed(SAMPLE)
        self.outcome, self.start_ms, self.minutes = outcome, start_ms, minutes
        self._candles = candles or self.replay.candles

    def candles(self, before_ms: int, count: int) -> pl.DataFrame:
        return self._candles(before_ms, count)

    def wait_closed(self, before_ms: int) -> None:
        return None  # every candle is in already

    def depth(self, levels: int) -> None:
        return None

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        return self.outcome((start_ms - self.start_ms) // (self.minutes * 60_000) + 1)

    def start(self) -> None:
        pass

    def reconnects(self) -> int:
        return 0

    def close(self) -> None:
        pass


def book(ask: str, size: str = "1000") -> tuple[Book, Book]:
    """An Up book with best ask ``ask`` one cent over its bid, and its mirrored Down book."""
    a, tick = Decimal(ask), Decimal("0.01")
    up = Book(bids=(Level(a - tick, Decimal(size)),), asks=(Level(a, Decimal(size)),))
    down = Book(bids=(Level(1 - a, Decimal(size)),), asks=(Level(1 - a + tick, Decimal(size)),))
    return up, down


@dataclass
class FakeVenue:
    """``answer(order)`` decides each submit (default: fill against ``books(start)``); orders are counted."""

    answer: Callable[[SignedOrder], SubmitResult] | None = None
    books: Callable[[int], tuple[Book, Book]] = lambda start: book("0.50")
    official: Callable[[str], Outcome | None] = lambda market_slug: None
    fee_rate: Decimal = Decimal("0.072")
    minutes: int = 5
    signs_ahead = False
    orders: list[SignedOrder] = field(default_factory=list)
    accepted: dict[str, Accepted] = field(default_factory=dict)
    redeemed: list[str] = field(default_factory=list)

    def warm(self, start_ms: int, candidates: Candidates | None = None) -> None:
        pass

    def market(self, start_ms: int) -> Market:
        up, down = self.books(start_ms)
        return Market(slug=slug(start_ms, self.minutes), condition_id="0xc", start_ms=start_ms,
                      end_ms=start_ms + self.minutes * 60_000, up_token="111", down_token="222", accepting_orders=True,
                      tick=Decimal("0.01"), min_order_usd=Decimal(1), fee_rate=self.fee_rate, up_book=up,
                      down_book=down)

    def prepare(self, intent: OrderIntent) -> SignedOrder:
        key = "0x" + hashlib.sha256(repr(intent).encode()).hexdigest()
        return SignedOrder(key=key, intent=intent, payload={"order": steps.encode(intent)})

    def fill(self, order: SignedOrder) -> SubmitResult:
        i = order.intent
        market = self.market(int(i.slug.rsplit("-", 1)[1]) * 1000)
        got = market_buy(market.book(i.side).asks, i.amount_usd, i.limit_price, self.fee_rate, i.order_type)
        return Accepted(order.key, order.key, got) if got else Rejected(order.key, "fok_not_filled")

    def submit(self, order: SignedOrder) -> SubmitResult:
        self.orders.append(order)
        result = (self.answer or self.fill)(order)
        if isinstance(result, Accepted):
            self.accepted[order.key] = result
        return result

    def lookup(self, order: SignedOrder) -> Accepted | Rejected | None:
        return self.accepted.get(order.key)

    def trades(self, order: SignedOrder, order_id: str, known: tuple) -> tuple:
        return ()

    def position(self, order: SignedOrder) -> Decimal | None:
        return None

    def holdings(self, market_slugs: tuple[str, ...]) -> tuple:
        return ()

    def resolution(self, market_slug: str) -> Outcome | None:
        return self.official(market_slug)

    def balance_usd(self, fresh: bool = False) -> Decimal | None:
        return None

    def redeem(self, market_slug: str) -> str | None:
        self.redeemed.append(market_slug)
        return f"redeemed {market_slug}"

    def preflight(self, next_start_ms: int) -> list[str]:
        return []

    def close(self) -> None:
        pass


def new_session(tmp: Path, cfg: Config | None = None, start_ms: int = START, mode: str = "sim") -> tuple[Session, journal.Journal]:
    cfg = cfg or Config()
    jr = journal.Journal(tmp / "journal.jsonl", durable=False)
    return engine.begin(jr, mode, cfg, {"kind": "test"}, start_ms, start_ms, session=f"test-{start_ms}"), jr


def run(tmp: Path, feed: FakeFeed, venue: FakeVenue, cfg: Config | None = None, start_ms: int = START) -> Session:
    """A whole session through the real engine with the fakes plugged in."""
    session, jr = new_session(tmp, cfg, start_ms)
    observers = engine.session_observers(tmp, venue, logging.getLogger("fsm_bot.quiet"))
    final = engine.Engine(session, jr, FakeClock(start_ms), feed, venue, observers=observers).run()
    jr.close()
    return final


def records(tmp: Path) -> list[dict]:
    return journal.read(tmp / "journal.jsonl").records


def session_at(cfg: Config | None = None, capital: str | None = None, streak: int = 0) -> Session:
    """A session view for handler tests."""
    import dataclasses
    cfg = cfg or Config()
    s = Session.begin({"data": steps.encode(steps.Begin(mode="sim", session="t", start_ms=START, config=cfg.to_json(),
                                                         source={}, version="t")),
                       "ts": "2024-03-13T14:00:00.000Z"})
    return dataclasses.replace(s, capital=Decimal(capital) if capital else s.capital, streak=streak)
