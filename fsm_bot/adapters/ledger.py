"""The simulated venues' side of an order (``--sim`` and ``--paper``): its key, its ledger line, its answer.

A simulated venue keeps its own durable order ledger, ``venue-orders.jsonl``, as a real exchange would,
so crash tests can count orders on the venue's side: one JSON line per accepted order, fsynced BEFORE
the venue answers; a torn last line is dropped on load (that order was never accepted).

``Chain`` says how an accepted fill fares on chain. By default every fill is a position at once. With
shares of failed and never-mined fills (``--sim``'s ``sim_failed_share``, ``sim_unmined_share``) each
fill's fate is drawn from the seed and the order's key, recorded on its ledger line, and its one trade
goes MATCHED -> MINED -> CONFIRMED, MATCHED -> RETRYING -> FAILED, or stays MATCHED, on the venue's clock.
"""

from __future__ import annotations

import hashlib
import os
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from fsm_bot import failpoints, journal, matching, storage
from fsm_bot.codec import decode_as, encode
from fsm_bot.errors import JournalCorrupt, StateDirError
from fsm_bot.money import plain
from fsm_bot.ports import Accepted, Fill, Held, Market, OrderIntent, Rejected, SignedOrder, SubmitResult, Trade
from fsm_bot.values import frozen


@frozen
class Chain:
    seed: int = 0
    failed_share: float = 0.0
    unmined_share: float = 0.0
    confirm_secs: float = 20.0

    @property
    def instant(self) -> bool:
        return self.failed_share <= 0 and self.unmined_share <= 0

    def fate(self, key: str) -> str:
        u = random.Random(f"{self.seed}:{key}").random()
        return "failed" if u < self.failed_share else "unmined" if u < self.failed_share + self.unmined_share \
            else "confirmed"

    def status(self, line: dict[str, Any], now_ms: int) -> str:
        age_ms = now_ms - line["ts_ms"]
        stage = 2 if age_ms >= self.confirm_secs * 1000 else 1 if age_ms >= self.confirm_secs * 1000 / 3 else 0
        return _STATUSES[line["fate"]][stage]

    def answer(self, line: dict[str, Any], now_ms: int) -> Accepted:
        """The venue's answer about an accepted order, its trade as it stands at ``now_ms``."""
        fill = decode_as(Fill, line["fill"])
        if "fate" not in line:
            return Accepted(key=line["key"], order_id=line["key"], fill=fill)
        trade = Trade(trade_id=line["trade_id"], status=self.status(line, now_ms), shares=fill.shares,
                      price=fill.avg_price)
        return Accepted(key=line["key"], order_id=line["key"], fill=fill, trades=(trade,), settled=False)


_STATUSES = {"confirmed": ("MATCHED", "MINED", "CONFIRMED"), "failed": ("MATCHED", "RETRYING", "FAILED"),
             "unmined": ("MATCHED", "MATCHED", "MATCHED")}


class OrderLedger:
    """The venue's durable record of accepted orders: one JSON line per order, keyed by ``key`` (no ``path``:
    the orders kept in memory only, a backtest's)."""

    def __init__(self, path: Path | None, durable: bool = True, chain: Chain = Chain()) -> None:
        self.path, self.durable, self.chain = None if path is None else Path(path), durable, chain
        self.orders: dict[str, dict[str, Any]] = {}
        self._fd = -1
        if self.path is not None:
            self._load()
            self._fd = storage.open_append(self.path, durable)

    def _load(self) -> None:
        """The accepted orders; a torn last line is dropped (that order was never accepted), damage before it
        stops everything, as in the journal."""
        if not self.path.exists():
            return
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise StateDirError(f"{self.path}: cannot read the venue's ledger ({exc.strerror})") from None
        lines, good = journal.lines_of(data), 0
        for n, line in enumerate(lines):
            entry = _entry(line)
            if entry is None:
                if n < len(lines) - 1:
                    raise JournalCorrupt(f"{self.path}: line {n + 1} of the venue's order ledger is damaged and "
                                         f"{len(lines) - n - 1} line(s) follow it; nothing will trade until it is "
                                         "repaired by hand")
                break
            self.orders[entry["key"]] = entry
            good += len(line)
        if good < len(data):
            try:
                with open(self.path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            except OSError as exc:
                raise storage.refused(self.path, exc, "cut its torn last line") from None

    def append(self, entry: dict[str, Any]) -> None:
        if self.path is not None:
            line = journal.encode(entry)
            storage.write(self._fd, line, self.path)
            if self.durable:
                storage.fsync(self._fd, self.path)
        self.orders[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        return self.orders.get(key)

    def fill(self, order: SignedOrder, market: Market, now_ms: int, min_order_usd: Decimal,
             **extra: str) -> SubmitResult:
        """A FOK/FAK market BUY filled against ``market``'s book as Polymarket would fill it, refusing what it
        refuses (a repeated order, a market that no longer trades, less than the minimum, a token not of this
        market, a FOK that cannot fill); an accepted order is on the ledger before the answer leaves."""
        intent = order.intent
        side = "UP" if intent.token_id == market.up_token else "DOWN" if intent.token_id == market.down_token else None
        if self.get(order.key) is not None:
            refusal = "duplicate"
        elif now_ms >= market.end_ms or not market.accepting_orders:
            refusal = "market_closed"
        elif intent.amount_usd < max(min_order_usd, market.min_order_usd):
            refusal = "below_min_order"
        elif side is None:
            refusal = "unknown_token"
        else:
            got = matching.market_buy(market.book(side).asks, intent.amount_usd, intent.limit_price,
                                      market.fee_rate, intent.order_type)
            refusal = None if got is not None else "fok_not_filled"
        if refusal is not None:
            return Rejected(key=order.key, reason=refusal)
        assert side is not None and got is not None
        if not self.chain.instant:
            extra |= {"fate": self.chain.fate(order.key), "trade_id": "trade-" + order.key[2:18]}
        line = entry(order, side, got, now_ms, **extra)
        self.append(line)
        if failpoints.hit("venue.accepted"):
            failpoints.crash()  # the crash tests: the venue holds the order, its answer never left
        return self.chain.answer(line, now_ms)

    def lookup(self, key: str, now_ms: int) -> Accepted | None:
        line = self.orders.get(key)
        return self.chain.answer(line, now_ms) if line else None

    def holdings(self, market_slugs: tuple[str, ...], now_ms: int) -> tuple[Held, ...]:
        """The ledger's orders in these markets, each with its answer now."""
        wanted = set(market_slugs)
        return tuple(Held(order=_order_of(line), answer=self.chain.answer(line, now_ms))
                     for line in self.orders.values() if line["slug"] in wanted)

    def trades(self, key: str, now_ms: int) -> tuple[Trade, ...]:
        found = self.lookup(key, now_ms)
        return found.trades if found else ()

    def position(self, key: str, now_ms: int) -> Decimal:
        """The shares the order left in the wallet: its fill once CONFIRMED, else none."""
        found = self.lookup(key, now_ms)
        if found is None:
            return Decimal(0)
        if found.settled:
            return found.fill.shares
        return sum((t.shares or Decimal(0) for t in found.trades if t.status == "CONFIRMED"), Decimal(0))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _entry(line: bytes) -> dict[str, Any] | None:
    """A ledger line's order, its checksum and its fields checked; None when the line is damaged."""
    entry = journal.decode_line(line)
    if entry is None:
        return None
    entry.pop("crc", None)
    try:
        ok = (isinstance(entry.get("key"), str) and isinstance(entry.get("slug"), str) and entry.get("side") in SIDES
              and isinstance(entry.get("ts_ms"), int) and decode_as(Fill, entry["fill"]).shares > 0)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        ok = False
    return entry if ok else None


SIDES = ("UP", "DOWN")


def simulated_order(intent: OrderIntent, **note: str) -> SignedOrder:
    """The order a simulated venue is sent: keyed by a digest of its canonical intent (the same intent,
    the same key, as a signed order's hash is on Polymarket)."""
    body = encode(intent)
    key = "0x" + hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return SignedOrder(key=key, intent=intent, payload={"order": body, "orderType": intent.order_type, **note})


def _order_of(line: dict[str, Any]) -> SignedOrder:
    intent = OrderIntent(session="", interval=0, slug=line["slug"], side=line["side"], token_id=line["token_id"],
                         amount_usd=Decimal(line["amount_usd"]), limit_price=Decimal(line["limit_price"]),
                         order_type=line["order_type"])
    return SignedOrder(key=line["key"], intent=intent)


def entry(order: SignedOrder, side: str, fill: Fill, ts_ms: int, **extra: str) -> dict[str, Any]:
    """The ledger line of an accepted order."""
    intent = order.intent
    return {"key": order.key, "slug": intent.slug, "side": side, "token_id": intent.token_id,
            "amount_usd": plain(intent.amount_usd), "limit_price": plain(intent.limit_price),
            "order_type": intent.order_type, "fill": encode(fill), "ts_ms": ts_ms, **extra}


