"""Loopback Binance (REST and the kline WebSocket) and CoinGecko, replaying real candles at their real
timestamps on a ``FakeTime``, in the exact payload shapes of the real APIs.

``FakeBinance``:
- ``GET /api/v3/klines`` honours ``symbol``, ``interval`` (1m), ``limit`` (default 500, 1..1000),
  ``startTime`` and ``endTime`` (both on the open time, inclusive) as Binance does: with a start, the
  first ``limit`` klines from it; without, the last ``limit`` up to the end (or now). The candle in
  progress is included with its partial values (interpolated from the real candle, so a closed
  candle always equals the data exactly); nothing after now exists. Bad parameters get Binance's
  400 ``{"code": -11xx, "msg": ...}``.
- ``GET /api/v3/depth`` serves a deterministic book per 5 s of fake time: a real snapshot summary
  (``tests/payloads/binance/book_summaries.csv``: spread and top-100 totals) centred on the candle's
  current price. ``GET /api/v3/time`` and ``GET /api/v3/ping`` as Binance (the first
  ``/api/v3/time`` releases a held ``FakeTime``: the bot's test clock starts from that answer).
- ``ws://.../ws/btcusdt@kline_1m``: on connecting, an update of the candle in progress; then one
  every ``update_secs`` of fake time, and the closed candle (``"x": true``) ``close_delay_ms`` after
  each minute boundary. A new connection never replays a minute closed before it. Server pings.
- ``ws://.../ws/btcusdt@depth20@100ms``: the REST depth's payload for 20 levels, on connecting and then
  every ``DEPTH_PUSH_MS`` of fake time.
- Faults: the ``JsonServer`` plan (``fault(...)``) for REST; ``drop_ws(down_secs)`` cuts every
  connection at once (no close frame) and refuses new ones for ``down_secs``; ``silence(secs)``
  keeps the current connections open but sends them nothing; ``send_raw(text)`` pushes a message;
  ``down()`` makes all of Binance unreachable.

``FakeCoinGecko``: ``/api/v3/simple/price`` and ``/api/v3/coins/bitcoin/market_chart/range`` from the
same candles (one price point a minute, at an irregular second, as CoinGecko's are).
"""

from __future__ import annotations

import contextlib
import csv
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from fsm_bot.ports import CANDLE_COLUMNS
from tests.servers.base import FakeTime, JsonServer, Reply, Request
from tests.servers.sockets import SocketEndpoint

MINUTE_MS = 60_000
SYMBOL = "BTCUSDT"
WS_PATH = "/ws/btcusdt@kline_1m"
DEPTH_WS_PATH = "/ws/btcusdt@depth20@100ms"
DEPTH_PUSH_MS = 2000  # the partial depth stream's period on the fake clock (Binance's is 100 ms: compressed 20x)
BOOK_SUMMARIES = Path(__file__).resolve().parent.parent / "payloads" / "binance" / "book_summaries.csv"


def text(x: float) -> str:
    """Binance's decimal strings: 8 places."""
    return f"{x:.8f}"


# -- the candles ---------------------------------------------------------------------------------
class CandleTape:
    """The real candles a fake replays, and what each looked like at any moment of its minute."""

    def __init__(self, candles: pl.DataFrame) -> None:
        self.times = candles.get_column("open_time").to_numpy().astype(np.int64)
        self.values = candles.select(CANDLE_COLUMNS[1:]).to_numpy().astype(float)

    def index(self, open_ms: int) -> int | None:
        i = int(np.searchsorted(self.times, open_ms))
        return i if i < len(self.times) and self.times[i] == open_ms else None

    def current(self, now_ms: int) -> int | None:
        """The candle whose minute contains ``now_ms``."""
        return self.index(now_ms // MINUTE_MS * MINUTE_MS)

    def at(self, i: int, now_ms: int) -> tuple[float, float, float, float, float, float]:
        """(open, high, low, close, volume, taker buy) of candle ``i`` as of ``now_ms``: the real
        values once closed; before, the way there (high and low widen, volume grows)."""
        o, h, lo, c, v, tb = self.values[i]
        f = (now_ms - int(self.times[i])) / MINUTE_MS
        if f >= 1:
            return o, h, lo, c, v, tb
        f = max(f, 0.0)
        cp = o + (c - o) * f
        hp = max(o, cp) + (h - max(o, c)) * f
        lp = min(o, cp) - (min(o, c) - lo) * f
        return o, round(hp, 2), round(lp, 2), round(cp, 2), round(v * f, 5), round(tb * f, 5)

    def price(self, now_ms: int) -> float | None:
        i = self.current(now_ms)
        return None if i is None else self.at(i, now_ms)[3]

    def upto(self, now_ms: int) -> int:
        """How many candles have opened by ``now_ms``."""
        return int(np.searchsorted(self.times, now_ms, side="right"))


def _trades(volume: float) -> int:
    return max(1, int(volume * 40))


def kline_array(tape: CandleTape, i: int, now_ms: int) -> list[Any]:
    """A REST kline, as ``GET /api/v3/klines`` returns it."""
    open_ms = int(tape.times[i])
    o, h, lo, c, v, tb = tape.at(i, now_ms)
    mid = (o + c) / 2
    return [open_ms, text(o), text(h), text(lo), text(c), text(v), open_ms + MINUTE_MS - 1, text(v * mid),
            _trades(v), text(tb), text(tb * mid), "0"]


def kline_event(tape: CandleTape, i: int, now_ms: int, event_ms: int) -> dict[str, Any]:
    """A stream message of ``btcusdt@kline_1m``."""
    open_ms = int(tape.times[i])
    o, h, lo, c, v, tb = tape.at(i, now_ms)
    mid, first_id = (o + c) / 2, open_ms // 10
    return {"e": "kline", "E": event_ms, "s": SYMBOL, "k": {
        "t": open_ms, "T": open_ms + MINUTE_MS - 1, "s": SYMBOL, "i": "1m", "f": first_id,
        "L": first_id + _trades(v) - 1, "o": text(o), "c": text(c), "h": text(h), "l": text(lo), "v": text(v),
        "n": _trades(v), "x": now_ms >= open_ms + MINUTE_MS, "q": text(v * mid), "V": text(tb), "Q": text(tb * mid),
        "B": "0"}}


# -- the book ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BookSummary:
    spread: float
    bid_qty: float  # BTC over the top 100 levels
    ask_qty: float


def load_summaries(path: Path = BOOK_SUMMARIES) -> list[BookSummary]:
    with open(path, newline="") as f:
        return [BookSummary(max(0.01, round(float(r["best_ask"]) - float(r["best_bid"]), 2)),
                            float(r["bid_volume"]), float(r["ask_volume"])) for r in csv.DictReader(f)]


def book_side(best: float, step: int, total_qty: float, levels: int, seed: str) -> list[list[str]]:
    """``levels`` levels from ``best`` (step -1: bids, +1: asks) whose top 100 hold ``total_qty`` BTC;
    the same seed gives the same levels whatever the limit (a deeper book extends a shallower one)."""
    weights_rng, gaps_rng = random.Random(seed + ":w"), random.Random(seed + ":g")
    weights = [weights_rng.expovariate(1.0) for _ in range(max(levels, 100))]
    scale = total_qty / sum(weights[:100])
    out, cents = [], round(best * 100)
    for w in weights[:levels]:
        out.append([text(cents / 100), text(max(round(w * scale, 5), 0.00001))])
        cents += step * gaps_rng.choice((1, 1, 1, 2, 3, 5, 8))
    return out


# -- Binance -------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Stream:
    conn: ServerConnection
    announced_ms: int  # the last minute whose closed candle this connection has had (or will never get)
    silent_until_ms: int = 0


def quick_to_stop(server: JsonServer) -> JsonServer:
    """Serve with a 20 ms shutdown poll instead of socketserver's 0.5 s, so each test's teardown is
    quick (``JsonServer.start`` takes no poll interval)."""
    server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                     name=f"{server.name}-http", daemon=True)
    return server


def _bad(code: int, msg: str) -> Reply:
    return Reply(400, {"code": code, "msg": msg})


class _BadParam(Exception):
    pass


def _int_param(query: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 20:
        raise _BadParam(name)
    return int(value)


class FakeBinance:
    def __init__(self, candles: pl.DataFrame, time: FakeTime, *, update_secs: float = 10.0,
                 close_delay_ms: int = 500, ping_secs: float = 20.0) -> None:
        self.tape, self.time = CandleTape(candles), time
        self.update_ms, self.close_delay_ms = int(update_secs * 1000), close_delay_ms
        self.summaries = load_summaries()
        self.rest = quick_to_stop(JsonServer("binance"))
        for path, handler in (("/api/v3/klines", self._klines), ("/api/v3/depth", self._depth),
                              ("/api/v3/time", self._time), ("/api/v3/ping", lambda req: Reply(200, {}))):
            self.rest.route("GET", path, handler)
        self.klines_queries: list[dict[str, str]] = []
        self.depth_limits: list[int] = []
        self.last_depth: dict[str, Any] | None = None
        self.depth_messages = self.depth_connections = 0
        self.last_depth_pushed: dict[str, Any] | None = None
        self.ws = SocketEndpoint(time, (WS_PATH, DEPTH_WS_PATH), self._serve_ws, "fake-binance-ws",
                                 ping_interval=time.wall_secs(ping_secs),
                                 ping_timeout=max(2.0, time.wall_secs(3 * ping_secs)))

    # -- control --------------------------------------------------------------------------------------
    def start(self) -> "FakeBinance":
        self.rest.start()
        self.ws.start()
        return self

    def down(self) -> None:
        """Binance becomes unreachable: every REST request is dropped unanswered (keep-alive connections
        included, which a server shutdown would leave serving) and every WebSocket cut and refused."""
        self.fault("GET", r".*", "drop", count=10**9)
        self.drop_ws(down_secs=10**9)

    def stop(self) -> None:
        """Shut both servers down (the end of a test)."""
        if self.ws.stopped.is_set():
            return
        self.rest.stop()
        self.ws.stop()

    def urls(self) -> dict[str, str]:
        return {"binance_rest_url": self.rest.url, "binance_ws_url": f"ws://127.0.0.1:{self.ws.port}/ws"}

    @property
    def ws_connections(self) -> int:
        """Connections to the kline stream (the depth stream's are ``depth_connections``)."""
        return self.ws.connections - self.depth_connections

    @property
    def ws_refused(self) -> int:
        return self.ws.refused

    def fault(self, method: str, path: str, kind: str, **kw: Any) -> Any:
        return self.rest.fault(method, path, kind, **kw)

    @property
    def klines_requests(self) -> int:
        """Every ``GET /api/v3/klines`` that reached the server, faults included."""
        return self.rest.count("GET", r"^/api/v3/klines$")

    def drop_ws(self, down_secs: float = 0.0) -> int:
        """Cut every connection now, without a close frame; refuse new ones for ``down_secs`` of fake time."""
        return self.ws.drop(down_secs)

    def silence(self, sim_secs: float) -> int:
        """The connections open now stay open but get nothing for ``sim_secs`` (pings go on)."""
        until_ms = self.time.now_ms() + int(sim_secs * 1000)
        streams = self.ws.items()
        for s in streams:
            s.silent_until_ms = until_ms
        return len(streams)

    def send_raw(self, message: str) -> None:
        self.ws.send_raw(message)

    # -- REST -------------------------------------------------------------------------------------------
    def _time(self, req: Request) -> Reply:
        """The bot's test clock starts from this answer, so a held ``FakeTime`` starts running now."""
        release = getattr(self.time, "release", None)
        if release is not None:
            release()
        return Reply(200, {"serverTime": self.time.now_ms()})

    def _klines(self, req: Request) -> Reply:
        q = req.query
        self.klines_queries.append(dict(q))
        if q.get("symbol") != SYMBOL:
            return _bad(-1121, "Invalid symbol.")
        if q.get("interval") != "1m":
            return _bad(-1120, "Invalid interval.")
        try:
            limit, start, end = _int_param(q, "limit", 500), _int_param(q, "startTime"), _int_param(q, "endTime")
        except _BadParam as exc:
            return _bad(-1100, f"Illegal characters found in parameter '{exc}'; legal range is '^[0-9]{{1,20}}$'.")
        if not 1 <= limit <= 1000:
            return _bad(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return _bad(-1023, "Start time is greater than end time.")
        now_ms = self.time.now_ms()
        return Reply(200, [kline_array(self.tape, i, now_ms) for i in self._select(now_ms, limit, start, end)])

    def _select(self, now_ms: int, limit: int, start: int | None, end: int | None) -> range:
        top = self.tape.upto(min(now_ms, end) if end is not None else now_ms)  # opened by now and by end
        if start is None:
            return range(max(0, top - limit), top)
        first = int(np.searchsorted(self.tape.times, start))
        return range(first, min(top, first + limit))

    def _depth(self, req: Request) -> Reply:
        if req.query.get("symbol") != SYMBOL:
            return _bad(-1121, "Invalid symbol.")
        try:
            limit = _int_param(req.query, "limit", 100)
        except _BadParam as exc:
            return _bad(-1100, f"Illegal characters found in parameter '{exc}'; legal range is '^[0-9]{{1,20}}$'.")
        if limit < 1:
            return _bad(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, 5000)
        self.depth_limits.append(limit)
        self.last_depth = self.book(self.time.now_ms(), limit)
        return Reply(200, self.last_depth)

    def book(self, now_ms: int, limit: int) -> dict[str, Any]:
        """The depth payload at ``now_ms``: one snapshot per 5 s of fake time."""
        snap = now_ms // 5000
        summary = self.summaries[snap % len(self.summaries)]
        mid = self.tape.price(now_ms) or float(self.tape.values[-1][3])
        bid = round(mid - summary.spread / 2, 2)
        return {"lastUpdateId": 40_000_000_000 + snap,
                "bids": book_side(bid, -1, summary.bid_qty, limit, f"{snap}:bids"),
                "asks": book_side(round(bid + summary.spread, 2), +1, summary.ask_qty, limit, f"{snap}:asks")}

    # -- WebSocket --------------------------------------------------------------------------------------
    def _serve_ws(self, conn: ServerConnection) -> None:
        now_ms = self.time.now_ms()
        stream = _Stream(conn, announced_ms=now_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS)
        self.ws.enter(stream)
        try:
            if conn.request is not None and conn.request.path == DEPTH_WS_PATH:
                self.depth_connections += 1
                self._push_depth(stream)
            else:
                self._push(stream)
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.ws.leave(stream)
            with contextlib.suppress(Exception):
                conn.close()

    def _push(self, stream: _Stream) -> None:
        due_ms = self.time.now_ms()
        while self._wait_until(due_ms):
            now_ms = self.time.now_ms()
            if now_ms >= stream.silent_until_ms:
                for message in self._messages(stream, now_ms):
                    stream.conn.send(orjson.dumps(message).decode())
            due_ms = ((now_ms - self.close_delay_ms) // self.update_ms + 1) * self.update_ms + self.close_delay_ms

    def _push_depth(self, stream: _Stream) -> None:
        """``btcusdt@depth20@100ms``: the top 20 levels of the book (the REST depth's payload), every
        ``DEPTH_PUSH_MS`` of fake time."""
        due_ms = self.time.now_ms()
        while self._wait_until(due_ms):
            now_ms = self.time.now_ms()
            if now_ms >= stream.silent_until_ms:
                self.last_depth_pushed = self.book(now_ms, 20)
                stream.conn.send(orjson.dumps(self.last_depth_pushed).decode())
                self.depth_messages += 1
            due_ms = (now_ms // DEPTH_PUSH_MS + 1) * DEPTH_PUSH_MS

    def _messages(self, stream: _Stream, now_ms: int) -> list[dict[str, Any]]:
        """The closed candle of the minute just ended (once per connection), then the one in progress."""
        out = []
        minute_ms = now_ms // MINUTE_MS * MINUTE_MS
        if minute_ms - MINUTE_MS > stream.announced_ms:
            stream.announced_ms = minute_ms - MINUTE_MS
            i = self.tape.index(stream.announced_ms)
            if i is not None:
                out.append(kline_event(self.tape, i, now_ms, now_ms))
        i = self.tape.index(minute_ms)
        if i is not None:
            out.append(kline_event(self.tape, i, now_ms, now_ms))
        return out

    def _wait_until(self, t_ms: int) -> bool:
        """Wait on the fake clock; False once the server stops."""
        while not self.ws.stopped.is_set():
            left_ms = t_ms - self.time.now_ms()
            if left_ms <= 0:
                return True
            self.ws.stopped.wait(min(self.time.wall_secs(left_ms / 1000), 0.02))
        return False


# -- CoinGecko -----------------------------------------------------------------------------------
class FakeCoinGecko:
    def __init__(self, candles: pl.DataFrame, time: FakeTime) -> None:
        self.tape, self.time = CandleTape(candles), time
        self.rest = quick_to_stop(JsonServer("coingecko"))
        self.rest.route("GET", "/api/v3/simple/price", self._price)
        self.rest.route("GET", "/api/v3/coins/bitcoin/market_chart/range", self._range)
        self.rest.route("GET", "/api/v3/ping", lambda req: Reply(200, {"gecko_says": "(V3) To the Moon!"}))

    def start(self) -> "FakeCoinGecko":
        self.rest.start()
        return self

    def stop(self) -> None:
        self.rest.stop()

    def urls(self) -> dict[str, str]:
        return {"coingecko_url": self.rest.url}

    def fault(self, method: str, path: str, kind: str, **kw: Any) -> Any:
        return self.rest.fault(method, path, kind, **kw)

    def requests(self, path_regex: str) -> int:
        return self.rest.count("GET", path_regex)

    def _price(self, req: Request) -> Reply:
        if req.query.get("ids") != "bitcoin" or req.query.get("vs_currencies") != "usd":
            return Reply(200, {})
        price = self.tape.price(self.time.now_ms())
        return Reply(200, {} if price is None else {"bitcoin": {"usd": price}})

    def point(self, i: int) -> tuple[int, float]:
        """Candle ``i``'s price point: at an irregular second of its minute, the price then."""
        t_ms = int(self.tape.times[i]) + (int(self.tape.times[i]) // MINUTE_MS * 7919) % 30 * 1000 + 417
        return t_ms, self.tape.at(i, t_ms)[3]

    def _range(self, req: Request) -> Reply:
        try:
            from_ms, to_ms = float(req.query["from"]) * 1000, float(req.query["to"]) * 1000
        except (KeyError, ValueError):
            return Reply(400, {"error": "Missing or invalid from/to parameter"})
        if req.query.get("vs_currency") != "usd":
            return Reply(400, {"error": "invalid vs_currency"})
        now_ms = self.time.now_ms()
        first = int(np.searchsorted(self.tape.times, from_ms - MINUTE_MS))
        points = [p for p in (self.point(i) for i in range(first, self.tape.upto(min(to_ms, now_ms))))
                  if from_ms <= p[0] <= min(to_ms, now_ms)]
        return Reply(200, {"prices": [[t, p] for t, p in points],
                           "market_caps": [[t, round(p * 19_650_000, 2)] for t, p in points],
                           "total_volumes": [[t, round(p * 410_000, 2)] for t, p in points]})
