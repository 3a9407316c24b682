"""``--paper``: Polymarket's real public data, simulated fills, the real resolution. No keys.

``market()`` is the real market with its real books (``PolymarketPublic``: the market channel's,
REST as the fallback); the venue keeps the last one it returned, so an order fills against the book
seen at the moment of the decision.
``submit()`` fills a FOK (or FAK) market BUY against that book's asks at the market's own fee rate
(``OrderLedger.fill``, as ``--sim`` does), refusing what Polymarket would refuse.

Accepted orders land in the venue's own ledger, ``venue-orders.jsonl``, one line each, fsynced
BEFORE the answer (as ``SimVenue`` keeps it, so crash tests count orders the same way); a torn
last line is dropped on load, since that order was never accepted. ``lookup(key)`` answers from it.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Callable

from fsm_bot.adapters import ledger
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.config import Config
from fsm_bot.errors import BotError
from fsm_bot.money import plain
from fsm_bot.ports import (MINUTE_MS, Accepted, Candidates, Clock, Market, OrderIntent, Outcome, Rejected, SignedOrder,
                           SubmitResult, Trade, Held, slug_start_ms)


class PaperVenue:
    """The ``Venue`` port over real public data, with fills simulated against the real book."""

    signs_ahead = False  # nothing is signed

    def __init__(self, public: PolymarketPublic, path: Path, now_ms: Callable[[], int],
                 min_order_usd: Decimal = Decimal(1), durable: bool = True) -> None:
        self.public, self.now_ms, self.min_order_usd = public, now_ms, min_order_usd
        self.ledger = ledger.OrderLedger(path, durable)
        self._last_market: Market | None = None

    @classmethod
    def from_config(cls, cfg: Config, public: PolymarketPublic, path: Path, clock: Clock) -> "PaperVenue":
        return cls(public, path, clock.now_ms, min_order_usd=cfg.min_order_usd)

    def close(self) -> None:
        self.ledger.close()
        self.public.close()

    def warm(self, start_ms: int, candidates: Candidates | None = None) -> None:
        self.public.warm(start_ms)

    def market(self, start_ms: int) -> Market:
        """The real market and books now; kept as the book of this interval's decision."""
        self._last_market = self.public.market(start_ms)
        return self._last_market

    def prepare(self, intent: OrderIntent) -> SignedOrder:
        return ledger.simulated_order(intent, paper="a simulated market BUY, filled against the book seen at the "
                                                    "decision")

    def submit(self, order: SignedOrder) -> SubmitResult:
        start_ms, minutes = slug_start_ms(order.intent.slug)
        now = self.now_ms()
        if self.ledger.get(order.key) is None and now >= start_ms + minutes * MINUTE_MS:
            return Rejected(key=order.key, reason="market_closed")  # its book is gone: nothing to read
        market = self._decision_market(order.intent.slug, start_ms)
        return self.ledger.fill(order, market, now, self.min_order_usd, fee_rate=plain(market.fee_rate))

    def _decision_market(self, market_slug: str, start_ms: int) -> Market:
        """The market seen at the decision; after a restart, the market as it is now."""
        last = self._last_market
        if last is not None and last.slug == market_slug:
            return last
        return self.market(start_ms)

    def lookup(self, order: SignedOrder) -> Accepted | Rejected | None:
        return self.ledger.lookup(order.key, self.now_ms())

    def trades(self, order: SignedOrder, order_id: str, known: tuple[Trade, ...]) -> tuple[Trade, ...]:
        return ()  # a simulated fill is a position at once

    def holdings(self, market_slugs: tuple[str, ...]) -> tuple[Held, ...]:
        return self.ledger.holdings(market_slugs, self.now_ms())

    def position(self, order: SignedOrder) -> Decimal | None:
        return None

    def resolution(self, market_slug: str) -> Outcome | None:
        return self.public.resolution(market_slug)

    def balance_usd(self, fresh: bool = False) -> Decimal | None:
        return None  # paper money: the session's capital is the only balance

    def redeem(self, market_slug: str) -> str | None:
        return None  # nothing is held on chain

    def preflight(self, next_start_ms: int) -> list[str]:
        """Paper money needs no account, balance or allowance; the first market's books are followed from now
        (a failure only means the first decision reads them from REST)."""
        with contextlib.suppress(BotError):
            self.public.warm(next_start_ms)
        return []

