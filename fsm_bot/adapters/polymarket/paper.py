"""``--paper``: Polymarket's real public data, simulated fills, the real resolution. No keys.

``market()`` is the real market with its real books (``PolymarketPublic``); the venue keeps the
last one it returned, so an order fills against the book seen at the moment of the decision.
``submit()`` fills a FOK (or FAK) market BUY with ``matching.market_buy`` against that book's asks,
at the market's own fee rate, and refuses what Polymarket would refuse: a repeated order, a market
that no longer trades, less than $1, a token not of this market, a FOK that cannot fill.

Accepted orders land in the venue's own ledger, ``venue-orders.jsonl``, one line each, fsynced
BEFORE the answer (as ``SimVenue`` keeps it, so crash tests count orders the same way); a torn
last line is dropped on load, since that order was never accepted. ``lookup(key)`` answers from it.
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import orjson

from fsm_bot import failpoints, matching, steps
from fsm_bot.adapters.polymarket.markets import slug_start_ms
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.money import plain
from fsm_bot.ports import Accepted, Fill, Market, OrderIntent, Outcome, Rejected, SignedOrder, SubmitResult, slug


class OrderLedger:
    """The venue's durable record of accepted orders: one JSON line per order, keyed by ``key``."""

    def __init__(self, path: Path, durable: bool = True) -> None:
        self.path, self.durable = Path(path), durable
        self.orders: dict[str, dict[str, Any]] = {}
        self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            entry = _entry(line)
            if entry is None:
                break  # a torn last line: that order was never accepted
            self.orders[entry["key"]] = entry
            good += len(line)
        if good < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def append(self, entry: dict[str, Any]) -> None:
        os.write(self._fd, orjson.dumps(entry, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE))
        if self.durable:
            os.fsync(self._fd)
        self.orders[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        return self.orders.get(key)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _entry(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("key"), str) else None


class PaperVenue:
    """The ``Venue`` port over real public data, with fills simulated against the real book."""

    def __init__(self, public: PolymarketPublic, ledger: Path, now_ms: Callable[[], int],
                 min_order_usd: Decimal = Decimal(1), durable: bool = True) -> None:
        self.public, self.now_ms, self.min_order_usd = public, now_ms, min_order_usd
        self.ledger = OrderLedger(ledger, durable)
        self._last_market: Market | None = None

    @classmethod
    def from_config(cls, cfg: Any, public: PolymarketPublic, ledger: Path, clock: Any) -> "PaperVenue":
        return cls(public, ledger, clock.now_ms, min_order_usd=cfg.min_order_usd)

    def close(self) -> None:
        self.ledger.close()
        self.public.close()

    def warm(self, start_ms: int) -> None:
        self.public.info(slug(start_ms, self.public.minutes))

    def market(self, start_ms: int) -> Market:
        """The real market and books now; kept as the book of this interval's decision."""
        self._last_market = self.public.market(start_ms)
        return self._last_market

    def prepare(self, intent: OrderIntent) -> SignedOrder:
        body = steps.encode(intent)
        key = "0x" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return SignedOrder(key=key, intent=intent, payload={
            "order": body, "orderType": intent.order_type,
            "paper": "a simulated market BUY, filled against the book seen at the decision"})

    def submit(self, order: SignedOrder) -> SubmitResult:
        if self.ledger.get(order.key) is not None:
            return Rejected(key=order.key, reason="duplicate")
        intent = order.intent
        start_ms, minutes = slug_start_ms(intent.slug)
        if self.now_ms() >= start_ms + minutes * 60_000:
            return Rejected(key=order.key, reason="market_closed")
        market = self._decision_market(intent.slug, start_ms)
        refusal = self._refusal(intent, market)
        if refusal:
            return Rejected(key=order.key, reason=refusal)
        side = "UP" if intent.token_id == market.up_token else "DOWN"
        fill = matching.market_buy(market.book(side).asks, intent.amount_usd, intent.limit_price, market.fee_rate,
                                   intent.order_type)
        if fill is None:
            return Rejected(key=order.key, reason="fok_not_filled")
        entry = {"key": order.key, "slug": intent.slug, "side": side, "token_id": intent.token_id,
                 "amount_usd": plain(intent.amount_usd), "limit_price": plain(intent.limit_price),
                 "order_type": intent.order_type, "fee_rate": plain(market.fee_rate), "fill": steps.encode(fill),
                 "ts_ms": self.now_ms()}
        self.ledger.append(entry)
        if failpoints.hit("venue.accepted"):
            failpoints.crash()
        return _accepted(entry)

    def _decision_market(self, market_slug: str, start_ms: int) -> Market:
        """The market seen at the decision; after a restart, the market as it is now."""
        last = self._last_market
        if last is not None and last.slug == market_slug:
            return last
        return self.market(start_ms)

    def _refusal(self, intent: OrderIntent, market: Market) -> str | None:
        if self.now_ms() >= market.end_ms or not market.accepting_orders:
            return "market_closed"
        if intent.amount_usd < max(self.min_order_usd, market.min_order_usd):
            return "below_min_order"
        if intent.token_id not in (market.up_token, market.down_token):
            return "unknown_token"
        return None

    def lookup(self, key: str) -> Accepted | Rejected | None:
        entry = self.ledger.get(key)
        return _accepted(entry) if entry else None

    def resolution(self, market_slug: str) -> Outcome | None:
        return self.public.resolution(market_slug)

    def balance_usd(self) -> Decimal | None:
        return None  # paper money: the session's capital is the only balance

    def redeem(self, market_slug: str) -> str | None:
        return None  # nothing is held on chain


def _accepted(entry: dict[str, Any]) -> Accepted:
    return Accepted(key=entry["key"], order_id=entry["key"], fill=steps.decode_as(Fill, entry["fill"]))
