"""A loopback Polymarket that speaks the real public payloads: Gamma discovery and the CLOB's books.

Markets exist for every grid start inside the candles and are made lazily and deterministically
from the slug: ~77-digit token ids and a condition id hashed from it, the outcome from the candles
(Up if the close of the last minute >= the open of the first) unless ``overrides[slug]`` says
otherwise (an official resolution that disagrees with the reference price).

On the fake clock a market accepts orders until its end; ``resolution_delay_secs`` after it, Gamma
says ``closed`` with ``outcomePrices`` 1/0 and ``umaResolutionStatus: "resolved"``, and the CLOB's
``/markets/{cid}`` marks the winner. Payload shapes follow ``tests/payloads/polymarket/`` (Gamma's
JSON-encoded strings, the CLOB book with its best level LAST).

Books are calibrated to real 5m books: each market draws (seeded by its slug) one real top-of-book
snapshot from ``btc5m_top_of_book_2026-05-18.json`` for its spreads (in ticks), its Up+Down ask sum
(1.01-1.03) and its best sizes; deeper levels take real best-level sizes from the same sample. The
mid is drawn near 0.505 (sd 0.015), the figure ``SimVenue``'s calibration measured at the start of
real windows (the sample's own snapshots are taken late in their windows, far from 0.5).

The CLOB's market channel (``/ws/market``, ``tests/servers/polymarket_ws.py``) streams the same books:
snapshots on subscribing, then the changes, with faults of its own (``fake.channel``).

Faults come from each server's fault plan (``fake.gamma.fault(...)``); ``make_bad(slug, kind)``
serves a malformed or inconsistent market (see ``BAD_KINDS``; ``down_first`` is valid, only
listing Down before Up, as nothing promises the order). The trading fake consumes liquidity
from ``FakeMarket.asks`` under ``fake.lock``; ``/book`` shows what is left.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from tests.servers.base import FakeTime, JsonServer, Reply, Request
from tests.servers.polymarket_ws import FakeMarketChannel

SAMPLE = Path(__file__).resolve().parent.parent / "payloads" / "polymarket" / "btc5m_top_of_book_2026-05-18.json"
MINUTE_MS = 60_000
TICK = Decimal("0.01")
LEVELS = 6
BAD_KINDS = ("wrong_slug", "missing_tokens", "bad_odds", "wrong_labels", "duplicate_tokens", "wrong_interval",
             "not_accepting", "closed", "zero_prices", "bad_book", "crossed_book", "down_first")
NO_BOOK = {"error": "No orderbook exists for the requested token id"}
Quotes = list[tuple[Decimal, Decimal]]


@dataclass
class FakeMarket:
    slug: str
    condition_id: str
    start_ms: int
    end_ms: int
    up_token: str
    down_token: str
    tick: Decimal
    min_size: Decimal
    fee_rate: Decimal
    outcome: str  # "UP"/"DOWN"
    asks: dict[str, Quotes]  # token -> asks best-first (price, size)
    bids: dict[str, Quotes]
    gamma_fee: bool = True  # Gamma carries feeSchedule
    clob_fee: bool = True  # /clob-markets carries fd
    bad: set[str] = field(default_factory=set)

    def label(self, token: str) -> str:
        return "Up" if token == self.up_token else "Down"

    @property
    def winner(self) -> str:
        return self.up_token if self.outcome == "UP" else self.down_token


# -- the calibration sample -----------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """One real snapshot, in ticks and shares: what a market's top of book looks like."""

    up_spread: int
    down_spread: int
    overround: int  # Up ask + Down ask - 1, in ticks
    sizes: tuple[Decimal, Decimal, Decimal, Decimal]  # up bid, up ask, down bid, down ask


def load_shapes(path: Path = SAMPLE) -> tuple[list[Shape], list[Decimal]]:
    """The sample's usable snapshots (spreads 1-3 ticks, ask sum 1.01-1.03) and all its best-level sizes."""
    shapes, sizes = [], []
    for snap in json.loads(path.read_text())["snapshots"]:
        ub, ubs, ua, uas = map(Decimal, snap["up"])
        db, dbs, da, das = map(Decimal, snap["down"])
        sizes += [ubs, uas, dbs, das]
        su, sd, over = (ua - ub) / TICK, (da - db) / TICK, (ua + da - 1) / TICK
        if 1 <= su <= 3 and 1 <= sd <= 3 and 1 <= over <= min(3, su + sd):
            shapes.append(Shape(int(su), int(sd), int(over), (ubs, uas, dbs, das)))
    return shapes, sizes


def draw_books(rng: random.Random, shapes: list[Shape], sizes: list[Decimal]) -> tuple[Quotes, Quotes, Quotes, Quotes]:
    """(up asks, up bids, down asks, down bids), best first."""
    shape = rng.choice(shapes)
    mid = Decimal(repr(min(max(rng.gauss(0.505, 0.015), 0.35), 0.65)))
    up_bid = (mid - shape.up_spread * TICK / 2).quantize(TICK, rounding=ROUND_FLOOR)
    up_ask = up_bid + shape.up_spread * TICK
    down_ask = 1 + shape.overround * TICK - up_ask
    down_bid = down_ask - shape.down_spread * TICK

    def side(best: Decimal, step: Decimal, best_size: Decimal) -> Quotes:
        depth = [max(Decimal(5), best_size)] + [max(Decimal(5), rng.choice(sizes)) for _ in range(LEVELS - 1)]
        return [(best + i * step, size) for i, size in enumerate(depth)]

    ubs, uas, dbs, das = shape.sizes
    return side(up_ask, TICK, uas), side(up_bid, -TICK, ubs), side(down_ask, TICK, das), side(down_bid, -TICK, dbs)


# -- the server -----------------------------------------------------------------------------------
class FakePolymarket:
    def __init__(self, candles: pl.DataFrame, time: FakeTime, minutes: int = 5, resolution_delay_secs: float = 60,
                 overrides: dict[str, str] | None = None) -> None:
        self.time, self.minutes, self.resolution_delay_secs = time, minutes, resolution_delay_secs
        self.overrides = dict(overrides or {})
        self.times = candles.get_column("open_time").to_numpy()
        self._open = candles.get_column("open").to_numpy()
        self._close = candles.get_column("close").to_numpy()
        self.shapes, self.sizes = load_shapes()
        self.lock = threading.Lock()
        self._markets: dict[str, FakeMarket] = {}
        self._by_token: dict[str, str] = {}
        self._by_condition: dict[str, str] = {}
        self.gamma, self.clob = JsonServer("gamma"), JsonServer("clob")
        self.channel = FakeMarketChannel(self, time)  # the CLOB's market channel, /ws/market
        self.geoblock: dict[str, Any] = {"blocked": False, "country": "XX"}  # polymarket.com/api/geoblock's answer
        self._routes()

    def start(self) -> "FakePolymarket":
        self.gamma.start()
        self.clob.start()
        self.channel.start()
        return self

    def stop(self) -> None:
        self.gamma.stop()
        self.clob.stop()
        self.channel.stop()

    def urls(self) -> dict[str, str]:
        return {"gamma_url": self.gamma.url, "clob_url": self.clob.url, "clob_ws_url": self.channel.url}

    @property
    def geoblock_url(self) -> str:
        """Where this fake answers ``https://polymarket.com/api/geoblock`` (from the Gamma server): ``geoblock``."""
        return self.gamma.url + "/api/geoblock"

    # -- the registry -----------------------------------------------------------------------------
    def market(self, market_slug: str) -> FakeMarket | None:
        with self.lock:
            if market_slug not in self._markets:
                made = self._make(market_slug)
                if made is None:
                    return None
                self._register(made)
            return self._markets[market_slug]

    def by_token(self, token_id: str) -> FakeMarket | None:
        with self.lock:
            found = self._by_token.get(token_id)
            return self._markets[found] if found else None

    def by_condition(self, condition_id: str) -> FakeMarket | None:
        with self.lock:
            found = self._by_condition.get(condition_id)
            return self._markets[found] if found else None

    def make_bad(self, market_slug: str, kind: str) -> FakeMarket:
        """Serve ``market_slug`` broken in one way of ``BAD_KINDS`` (several may be combined)."""
        assert kind in BAD_KINDS, f"unknown kind {kind!r}; one of {BAD_KINDS}"
        m = self.market(market_slug)
        assert m is not None, f"{market_slug} is not inside the candles"
        m.bad.add(kind)
        return m

    def resolved(self, m: FakeMarket) -> bool:
        return self.time.now_ms() >= m.end_ms + self.resolution_delay_secs * 1000

    def _register(self, m: FakeMarket) -> None:
        self._markets[m.slug] = m
        self._by_token[m.up_token] = self._by_token[m.down_token] = m.slug
        self._by_condition[m.condition_id] = m.slug

    def _make(self, market_slug: str) -> FakeMarket | None:
        prefix = f"btc-updown-{self.minutes}m-"
        start_s = market_slug.removeprefix(prefix)
        if not market_slug.startswith(prefix) or not start_s.isdigit():
            return None
        start_ms = int(start_s) * 1000
        end_ms = start_ms + self.minutes * MINUTE_MS
        outcome = self.overrides.get(market_slug) or self._reference(start_ms, end_ms)
        if start_ms % (self.minutes * MINUTE_MS) or outcome is None:
            return None
        ids = [int(hashlib.sha256(f"{market_slug}:{part}".encode()).hexdigest(), 16) for part in ("up", "down")]
        up, down = (str(i % 10**77).rjust(77, "1") for i in ids)
        up_asks, up_bids, down_asks, down_bids = draw_books(random.Random(market_slug), self.shapes, self.sizes)
        condition = "0x" + hashlib.sha256(f"{market_slug}:condition".encode()).hexdigest()
        return FakeMarket(slug=market_slug, condition_id=condition,
                          start_ms=start_ms, end_ms=end_ms, up_token=up, down_token=down, tick=TICK,
                          min_size=Decimal(5), fee_rate=Decimal("0.072"), outcome=outcome,
                          asks={up: up_asks, down: down_asks}, bids={up: up_bids, down: down_bids})

    def _reference(self, start_ms: int, end_ms: int) -> str | None:
        first = int(np.searchsorted(self.times, start_ms))
        last = int(np.searchsorted(self.times, end_ms - MINUTE_MS))
        if last >= len(self.times) or self.times[first] != start_ms or self.times[last] != end_ms - MINUTE_MS:
            return None
        return "UP" if self._close[last] >= self._open[first] else "DOWN"

    # -- routes -------------------------------------------------------------------------------------
    def _routes(self) -> None:
        self.gamma.route("GET", r"/markets", self._gamma_markets)
        self.gamma.route("GET", r"/events", self._gamma_events)
        self.gamma.route("GET", r"/api/geoblock", lambda r: Reply(200, self.geoblock))
        self.clob.route("GET", r"/book", self._book)
        self.clob.route("GET", r"/clob-markets/(?P<cid>[^/]+)", self._clob_market_info)
        self.clob.route("GET", r"/markets/(?P<cid>[^/]+)", self._clob_market)
        self.clob.route("GET", r"/tick-size",
                        lambda r: self._per_token(r, lambda m: {"minimum_tick_size": float(m.tick)}))
        self.clob.route("GET", r"/neg-risk", lambda r: self._per_token(r, lambda m: {"neg_risk": False}))
        self.clob.route("GET", r"/fee-rate", lambda r: self._per_token(r, lambda m: {"base_fee": 1000}))
        self.clob.route("GET", r"/time", lambda r: Reply(200, self.time.now_ms() // 1000))
        self.clob.route("GET", r"/ok", lambda r: Reply(200, "OK"))

    def _gamma_markets(self, req: Request) -> Reply:
        m = self.market(req.query.get("slug", ""))
        return Reply(200, [self.gamma_market(m)] if m else [])

    def _gamma_events(self, req: Request) -> Reply:
        m = self.market(req.query.get("slug", ""))
        if m is None:
            return Reply(200, [])
        market = self.gamma_market(m)
        return Reply(200, [{"id": market["id"][:6], "slug": m.slug, "title": market["question"],
                            "startTime": market["eventStartTime"], "endDate": market["endDate"],
                            "active": True, "closed": market["closed"], "seriesSlug": f"btc-up-or-down-{self.minutes}m",
                            "markets": [market]}])

    def _book(self, req: Request) -> Reply:
        m = self.by_token(req.query.get("token_id", ""))
        if m is None or self.resolved(m):
            return Reply(404, NO_BOOK)
        return Reply(200, self.clob_book(m, req.query["token_id"]))

    def _clob_market_info(self, req: Request) -> Reply:
        m = self.by_condition(req.match["cid"])
        if m is None:
            return Reply(404, {"error": "market not found"})
        body: dict[str, Any] = {"c": m.condition_id,
                                "t": [{"t": m.up_token, "o": "Up"}, {"t": m.down_token, "o": "Down"}],
                                "mts": float(m.tick), "nr": False}
        if m.clob_fee:
            body["fd"] = {"r": float(m.fee_rate), "e": 1}
        return Reply(200, body)

    def _clob_market(self, req: Request) -> Reply:
        m = self.by_condition(req.match["cid"])
        if m is None:
            return Reply(404, {"error": "market not found"})
        return Reply(200, self.clob_market(m))

    def _per_token(self, req: Request, answer: Any) -> Reply:
        m = self.by_token(req.query.get("token_id", ""))
        return Reply(200, answer(m)) if m else Reply(404, NO_BOOK)

    # -- payloads -----------------------------------------------------------------------------------
    def gamma_market(self, m: FakeMarket) -> dict[str, Any]:
        """The market as Gamma's ``/markets?slug=`` shows it now (field shapes of polymarket-api.md §1)."""
        now, resolved = self.time.now_ms(), self.resolved(m)
        up_mid, down_mid = (self._mid(m, t) for t in (m.up_token, m.down_token))
        won = ["1", "0"] if m.outcome == "UP" else ["0", "1"]
        prices = won if resolved else [up_mid, down_mid]
        body: dict[str, Any] = {
            "id": str(int(m.condition_id[2:9], 16)), "question": _title(m), "conditionId": m.condition_id,
            "slug": m.slug,
            "resolutionSource": "https://data.chain.link/streams/btc-usd",
            "startDate": _iso(m.start_ms - 86_400_000 + 67_000), "endDate": _iso(m.end_ms),
            "eventStartTime": _iso(m.start_ms), "outcomes": json.dumps(["Up", "Down"]),
            "outcomePrices": json.dumps(prices), "clobTokenIds": json.dumps([m.up_token, m.down_token]),
            "active": True, "closed": resolved, "acceptingOrders": now < m.end_ms, "enableOrderBook": True,
            "orderPriceMinTickSize": float(m.tick), "orderMinSize": int(m.min_size), "negRisk": False,
            "feesEnabled": True, "feeType": "crypto_fees", "takerBaseFee": 1000, "umaResolutionStatuses": "[]",
            "events": [{"id": str(int(m.condition_id[9:15], 16)), "slug": m.slug, "startTime": _iso(m.start_ms),
                        "seriesSlug": f"btc-up-or-down-{self.minutes}m"}]}
        if m.gamma_fee:
            body["feeSchedule"] = {"exponent": 1, "rate": float(m.fee_rate), "rebateRate": 0.2, "takerOnly": True}
        if resolved:
            body.update(umaResolutionStatus="resolved",
                        closedTime=_closed_time(m.end_ms + self.resolution_delay_secs * 1000))
        return _spoil(body, m) if m.bad else body

    def clob_book(self, m: FakeMarket, token: str) -> dict[str, Any]:
        """``/book`` on the wire: bids ascending, asks descending, the best LAST."""
        with self.lock:
            bids = [{"price": str(p), "size": str(s)} for p, s in reversed(m.bids[token]) if s > 0]
            asks = [{"price": str(p), "size": str(s)} for p, s in reversed(m.asks[token]) if s > 0]
        if "bad_book" in m.bad and asks:
            asks[-1]["price"] = "1.5"
        if "crossed_book" in m.bad and bids and asks:
            bids[-1]["price"] = asks[-1]["price"]
        body = {"market": m.condition_id, "asset_id": token, "timestamp": str(self.time.now_ms()), "hash": "",
                "bids": bids, "asks": asks, "min_order_size": str(m.min_size), "tick_size": str(m.tick),
                "neg_risk": False, "last_trade_price": self._mid(m, token)}
        body["hash"] = hashlib.sha1(json.dumps(body, separators=(",", ":")).encode()).hexdigest()
        return body

    def clob_market(self, m: FakeMarket) -> dict[str, Any]:
        """CLOB ``/markets/{cid}``: the tokens, with ``winner`` once resolved."""
        resolved = self.resolved(m)
        tokens = [{"token_id": t, "outcome": m.label(t), "winner": resolved and t == m.winner,
                   "price": (1 if t == m.winner else 0) if resolved else float(self._mid(m, t))}
                  for t in (m.up_token, m.down_token)]
        return {"condition_id": m.condition_id, "question": _title(m), "market_slug": m.slug, "active": True,
                "closed": resolved, "accepting_orders": self.time.now_ms() < m.end_ms,
                "minimum_order_size": int(m.min_size),
                "minimum_tick_size": float(m.tick), "neg_risk": False, "seconds_delay": 0,
                "end_date_iso": _iso(m.end_ms), "tokens": tokens}

    def _mid(self, m: FakeMarket, token: str) -> str:
        with self.lock:
            bids, asks = m.bids[token], m.asks[token]
            return str((bids[0][0] + asks[0][0]) / 2) if bids and asks else "0.5"


def _spoil(body: dict[str, Any], m: FakeMarket) -> dict[str, Any]:
    """A Gamma market broken the ways ``m.bad`` names (``down_first`` before the others reorder it)."""
    spoil = {"wrong_slug": lambda b: b.update(slug=m.slug.rsplit("-", 1)[0] + f"-{m.end_ms // 1000}"),
             "missing_tokens": lambda b: b.pop("clobTokenIds"),
             "bad_odds": lambda b: b.update(outcomePrices=json.dumps(["1.5", "-0.5"])),
             "wrong_labels": lambda b: b.update(outcomes=json.dumps(["Yes", "No"])),
             "duplicate_tokens": lambda b: b.update(clobTokenIds=json.dumps([m.up_token, m.up_token])),
             "wrong_interval": lambda b: b.update(endDate=_iso(m.start_ms + 15 * MINUTE_MS)),
             "not_accepting": lambda b: b.update(acceptingOrders=False),
             "closed": lambda b: b.update(closed=True, acceptingOrders=False),
             "zero_prices": lambda b: b.update(outcomePrices=json.dumps(["0", "0"])) if b["closed"] else None,
             "down_first": lambda b: b.update({k: json.dumps(json.loads(b[k])[::-1])
                                               for k in ("outcomes", "clobTokenIds", "outcomePrices")})}
    for kind in sorted(m.bad, key=lambda k: (k != "down_first", k)):
        if kind in spoil:
            spoil[kind](body)
    return body


def _iso(ms: int | float) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _closed_time(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def _title(m: FakeMarket) -> str:
    """Gamma's question, in US Eastern time: "Bitcoin Up or Down - May 18, 9:50AM-9:55AM ET"."""
    et = ZoneInfo("America/New_York")
    start, end = (datetime.fromtimestamp(t / 1000, timezone.utc).astimezone(et) for t in (m.start_ms, m.end_ms))
    clock = lambda t: t.strftime("%I:%M%p").lstrip("0")  # noqa: E731
    return f"Bitcoin Up or Down - {start:%B} {start.day}, {clock(start)}-{clock(end)} ET"
