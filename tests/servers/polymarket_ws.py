"""The loopback CLOB's market channel, ``ws://.../ws/market``, in the real payload shapes
(docs.polymarket.com market-channel; NautilusTrader's captured ``ws_book_snapshot_captured.json`` and
``ws_market_price_change_msg.json``), on the fake clock, over the fake's own books (``FakeMarket``):

- ``{"assets_ids": [...], "type": "market"}`` subscribes a new connection; ``{"assets_ids": [...],
  "operation": "subscribe" | "unsubscribe"}`` changes it. Each subscription is answered with the
  assets' ``book`` snapshots in one message (a JSON list), levels in the REST wire order. The
  keepalive is the venue's text PING/PONG (no protocol pings from this side).
- every ``update_secs`` of fake time, one ``price_change`` per market followed: each level that
  differs from what this connection was last told (size ``"0"``: gone); when nothing changed, the best
  bid re-stated as it is. Each entry carries its asset's best bid and ask after the message (``"0"`` /
  ``"1"`` for an empty side) and a hash of the book.
- text ``PING`` is answered ``PONG``; the fake-clock time of every PING is kept in ``pings``.

Faults: ``drop(down_secs)`` cuts every connection (no close frame) and refuses new ones for
``down_secs``; ``silence(secs, pong=True)`` sends the open connections no market data (and, with
``pong=False``, no PONG) for ``secs``; ``skew(token)`` makes the next change of ``token`` state a best
bid its book does not have (a message the client missed); ``send_raw(text)``; ``snapshots = False``
answers subscriptions with nothing (only REST can give a book whole).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from tests.servers.base import FakeTime
from tests.servers.sockets import SocketEndpoint

if TYPE_CHECKING:
    from tests.servers.polymarket import FakeMarket, FakePolymarket

PATH = "/ws/market"
Levels = dict[Decimal, Decimal]


@dataclass(eq=False)
class _Sub:
    conn: ServerConnection
    told: dict[str, tuple[Levels, Levels]] = field(default_factory=dict)  # token -> (bids, asks) as last sent
    assets: list[str] = field(default_factory=list)
    quiet_until_ms: int = 0
    mute_until_ms: int = 0  # no PONG before this


class FakeMarketChannel:
    def __init__(self, fake: "FakePolymarket", time: FakeTime, update_secs: float = 2.0) -> None:
        self.fake, self.time, self.update_ms = fake, time, int(update_secs * 1000)
        self.snapshots = True
        self.pings: list[int] = []
        self.requests: list[dict[str, Any]] = []  # every subscription message, in order
        self._skewed: set[str] = set()
        self._lock = threading.Lock()
        self.ws = SocketEndpoint(time, PATH, self._serve, "fake-clob-ws", ping_interval=None)
        self.drop, self.send_raw = self.ws.drop, self.ws.send_raw

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws.port}{PATH}"

    @property
    def connections(self) -> int:
        return self.ws.connections

    def start(self) -> "FakeMarketChannel":
        self.ws.start()
        return self

    def stop(self) -> None:
        self.ws.stop()

    # -- faults (and ``drop``, ``send_raw``) -------------------------------------------------------
    def silence(self, secs: float, pong: bool = True) -> int:
        until_ms = self.time.now_ms() + int(secs * 1000)
        subs = self.ws.items()
        for s in subs:
            s.quiet_until_ms = until_ms
            if not pong:
                s.mute_until_ms = until_ms
        return len(subs)

    def skew(self, token: str) -> None:
        with self._lock:
            self._skewed.add(token)

    # -- serving ----------------------------------------------------------------------------------
    def _serve(self, conn: ServerConnection) -> None:
        sub = _Sub(conn)
        self.ws.enter(sub)
        try:
            due_ms = self.time.now_ms() + self.update_ms
            while not self.ws.stopped.is_set():
                left_secs = self.time.wall_secs(max(0, due_ms - self.time.now_ms()) / 1000)
                with contextlib.suppress(TimeoutError):
                    self._message(sub, conn.recv(timeout=min(left_secs, 0.02)))
                now_ms = self.time.now_ms()
                if now_ms >= due_ms:
                    if now_ms >= sub.quiet_until_ms:
                        self._publish(sub, now_ms)
                    due_ms = now_ms + self.update_ms
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.ws.leave(sub)
            with contextlib.suppress(Exception):
                conn.close()

    def _message(self, sub: _Sub, text: Any) -> None:
        now_ms = self.time.now_ms()
        if text == "PING":
            self.pings.append(now_ms)
            if now_ms >= sub.mute_until_ms:
                sub.conn.send("PONG")
            return
        try:
            obj = json.loads(text)
            ids = [str(t) for t in obj["assets_ids"]]
        except (ValueError, KeyError, TypeError):
            return
        self.requests.append(obj)
        if str(obj.get("operation", "")).lower() == "unsubscribe":
            sub.assets = [t for t in sub.assets if t not in ids]
            for t in ids:
                sub.told.pop(t, None)
            return
        if str(obj.get("type", "")).lower() == "market" or str(obj.get("operation", "")).lower() == "subscribe":
            sub.assets += [t for t in ids if t not in sub.assets]
            if now_ms >= sub.quiet_until_ms:
                self._snapshots(sub, now_ms)

    # -- payloads ---------------------------------------------------------------------------------
    def _levels(self, m: "FakeMarket", token: str) -> tuple[Levels, Levels]:
        with self.fake.lock:
            return ({p: s for p, s in m.bids[token] if s > 0}, {p: s for p, s in m.asks[token] if s > 0})

    def _snapshots(self, sub: _Sub, now_ms: int) -> None:
        """The ``book`` of every asset subscribed to and not yet sent, in one message."""
        if self.snapshots:
            books = [b for b in (self._snapshot(sub, t, now_ms) for t in sub.assets if t not in sub.told) if b]
            if books:
                sub.conn.send(json.dumps(books))

    def _snapshot(self, sub: _Sub, token: str, now_ms: int) -> dict[str, Any] | None:
        m = self.fake.by_token(token)
        if m is None:
            return None
        body = self.fake.clob_book(m, token)
        sub.told[token] = self._levels(m, token)
        return {"market": body["market"], "asset_id": token, "timestamp": str(now_ms), "hash": body["hash"],
                "bids": body["bids"], "asks": body["asks"], "tick_size": body["tick_size"], "event_type": "book",
                "last_trade_price": body["last_trade_price"]}

    def _publish(self, sub: _Sub, now_ms: int) -> None:
        """One ``price_change`` per market followed: what changed since this connection was last told."""
        self._snapshots(sub, now_ms)  # those held back while the channel was quiet
        by_market: dict[str, list[dict[str, Any]]] = {}
        for token in list(sub.told):
            m = self.fake.by_token(token)
            if m is None or now_ms >= m.end_ms:
                continue
            bids, asks = self._levels(m, token)
            entries = _diff(sub.told[token][0], bids, "BUY") + _diff(sub.told[token][1], asks, "SELL")
            if not entries and bids:
                best = max(bids)
                entries = [(best, bids[best], "BUY")]
            sub.told[token] = (bids, asks)
            with self._lock:
                skewed = token in self._skewed
                self._skewed.discard(token)
            best_bid = str(max(bids)) if bids else "0"
            if skewed:
                best_bid = str(max(bids) - m.tick) if bids else "0.01"
            digest = hashlib.sha1(json.dumps([token, sorted(map(str, bids.items())), sorted(map(str, asks.items()))])
                                  .encode()).hexdigest()
            by_market.setdefault(m.condition_id, []).extend(
                {"asset_id": token, "price": str(p), "size": str(s), "side": side, "hash": digest,
                 "best_bid": best_bid, "best_ask": str(min(asks)) if asks else "1"} for p, s, side in entries)
        for condition, changes in by_market.items():
            if changes:
                sub.conn.send(json.dumps({"market": condition, "price_changes": changes, "timestamp": str(now_ms),
                                          "event_type": "price_change"}))


def _diff(before: Levels, after: Levels, side: str) -> list[tuple[Decimal, Decimal, str]]:
    gone = [(p, Decimal(0), side) for p in before if p not in after]
    return gone + [(p, s, side) for p, s in after.items() if before.get(p) != s]
