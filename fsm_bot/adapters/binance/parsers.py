"""Binance's payloads and the pure functions that check them: a REST kline row, a stream kline
event, a depth snapshot each become a validated ``Kline`` or ``Depth``, and anything malformed
becomes a ``DataError`` naming the field and the value. Also the wire facts they go with (symbol,
URL paths, request limits)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from fsm_bot.adapters.coingecko import shown, epoch_ms, number, price
from fsm_bot.errors import DataError
from fsm_bot.ports import MINUTE_MS, Depth
from fsm_bot.values import frozen

SYMBOL = "BTCUSDT"
STREAM_PATH = "/btcusdt@kline_1m"
DEPTH_STREAM_PATH = "/btcusdt@depth20@100ms"  # the partial book depth stream: the top 20 levels every 100 ms
DEPTH_STREAM_LEVELS = 20
KLINES_PATH = "/api/v3/klines"
DEPTH_PATH = "/api/v3/depth"
KLINES_MAX = 1000
"""Binance returns at most this many klines per request."""
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
QTY_MAX_BTC = 21_000_000.0
"""A quantity above every bitcoin there will ever be is invalid data."""


@frozen
class Kline:
    """One validated 1-minute candle."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    taker_buy_base: float

    @property
    def close_ms(self) -> int:
        return self.open_ms + MINUTE_MS - 1

    def row(self) -> tuple[int, float, float, float, float, float, float]:
        return (self.open_ms, self.open, self.high, self.low, self.close, self.volume, self.taker_buy_base)


def quantity(value: Any, name: str, code: str) -> float:
    """A BTC quantity in [0, 21,000,000]."""
    result = number(value, name, code)
    if not 0 <= result <= QTY_MAX_BTC:
        raise DataError(f"{name}: quantity {result!r} outside [0, {QTY_MAX_BTC:,.0f}]", code=code)
    return result


def kline(open_ms: Any, close_ms: Any, o: Any, h: Any, lo: Any, c: Any, v: Any, taker: Any, where: str) -> Kline:
    """The checks every candle passes, whatever its source (REST, stream, persisted buffer)."""
    code = "bad_kline"
    t = epoch_ms(open_ms, f"{where} open time", code)
    if t % MINUTE_MS:
        raise DataError(f"{where} open time: {t} ms is not on a minute", code=code)
    if epoch_ms(close_ms, f"{where} close time", code) != t + MINUTE_MS - 1:
        raise DataError(f"{where} close time: {close_ms} ms, expected {t + MINUTE_MS - 1} (a 1-minute candle)", code=code)
    op, hi, low, cl = (price(x, f"{where} {n}", code) for x, n in ((o, "open"), (h, "high"), (lo, "low"), (c, "close")))
    if not (low <= min(op, cl) and hi >= max(op, cl)):
        raise DataError(f"{where}: high {hi} and low {low} do not bracket open {op} and close {cl}", code=code)
    vol, buy = quantity(v, f"{where} volume", code), quantity(taker, f"{where} taker buy volume", code)
    if buy > vol:
        raise DataError(f"{where}: taker buy volume {buy} exceeds volume {vol}", code=code)
    return Kline(t, op, hi, low, cl, vol, buy)


def parse_kline_row(row: Any) -> Kline:
    """One REST kline: ``[openTime, "open", "high", "low", "close", "volume", closeTime,
    "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "ignore"]``."""
    if not isinstance(row, (list, tuple)) or len(row) < 12:
        raise DataError(f"Binance kline: expected a 12-element array, got {shown(row)}", code="bad_kline")
    return kline(row[0], row[6], row[1], row[2], row[3], row[4], row[5], row[9], f"Binance kline {shown(row[0])}")


def parse_klines(payload: Any) -> list[Kline]:
    if not isinstance(payload, list):
        raise DataError(f"Binance klines: expected an array of klines, got {shown(payload)}", code="bad_kline")
    return [parse_kline_row(row) for row in payload]


_EVENT_FIELDS = ("t", "T", "o", "h", "l", "c", "v", "V", "x")


def parse_kline_event(message: Any) -> tuple[Kline, bool]:
    """One stream message (text, bytes or decoded) -> (the candle, whether it has closed)."""
    data = _decode(message)
    if not isinstance(data, dict) or data.get("e") != "kline" or data.get("s") != SYMBOL:
        raise DataError(f"Binance stream: expected a BTCUSDT kline event, got {shown(data)}", code="bad_kline")
    k = data.get("k")
    if not isinstance(k, dict) or k.get("s") != SYMBOL or k.get("i") != "1m":
        raise DataError(f"Binance stream: 'k' is not a BTCUSDT 1m kline: {shown(k)}", code="bad_kline")
    missing = [f for f in _EVENT_FIELDS if f not in k]
    if missing:
        raise DataError(f"Binance stream kline: missing field(s) {missing}", code="bad_kline")
    if not isinstance(k["x"], bool):
        raise DataError(f"Binance stream kline x: expected true or false, got {shown(k['x'])}", code="bad_kline")
    return kline(k["t"], k["T"], k["o"], k["h"], k["l"], k["c"], k["v"], k["V"], "Binance stream kline"), k["x"]


def _decode(message: Any) -> Any:
    if not isinstance(message, (str, bytes, bytearray)):
        return message
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        raise DataError(f"Binance stream: a message that is not JSON: {shown(message)}", code="bad_kline") from None


def parse_depth_event(message: Any, levels: int) -> Depth:
    """A message of the partial book depth stream: the REST depth's payload, as text."""
    return parse_depth(_decode(message), levels)


def depth_limit(levels: int) -> int:
    """The smallest of Binance's valid depth limits that covers ``levels``."""
    return next((limit for limit in DEPTH_LIMITS if limit >= levels), DEPTH_LIMITS[-1])


def parse_depth(payload: Any, levels: int) -> Depth:
    """``{"lastUpdateId": .., "bids": [["price", "qty"], ...], "asks": [...]}`` (best first) ->
    the bid and ask quantity over the top ``levels`` (fewer when the book is thinner)."""
    code = "bad_depth"
    if not isinstance(payload, dict) or not all(isinstance(payload.get(s), list) for s in ("bids", "asks")):
        raise DataError(f"Binance depth: expected {{'bids': [...], 'asks': [...]}}, got {shown(payload)}", code=code)
    update = payload.get("lastUpdateId")
    if not isinstance(update, int) or isinstance(update, bool) or update < 0:
        raise DataError(f"Binance depth lastUpdateId: expected an id, got {shown(update)}", code=code)
    n = min(levels, len(payload["bids"]), len(payload["asks"]))
    if n < 1:
        raise DataError(f"Binance depth: an empty side ({len(payload['bids'])} bids, {len(payload['asks'])} asks)", code=code)
    bids, asks = _side(payload["bids"][:n], "bids", descending=True), _side(payload["asks"][:n], "asks", descending=False)
    if bids[0][0] >= asks[0][0]:
        raise DataError(f"Binance depth: crossed book, best bid {bids[0][0]} >= best ask {asks[0][0]}", code=code)
    return Depth(bid_qty=math.fsum(q for _, q in bids), ask_qty=math.fsum(q for _, q in asks), levels=n)


def _side(levels: list[Any], side: str, descending: bool) -> list[tuple[float, float]]:
    out = [_level(lv, f"Binance depth {side}[{i}]") for i, lv in enumerate(levels)]
    for i in range(1, len(out)):
        if (out[i][0] >= out[i - 1][0]) if descending else (out[i][0] <= out[i - 1][0]):
            raise DataError(f"Binance depth {side}[{i}]: price {out[i][0]} out of order after {out[i - 1][0]}",
                            code="bad_depth")
    return out


def _level(level: Any, where: str) -> tuple[float, float]:
    if not isinstance(level, (list, tuple)) or len(level) != 2:
        raise DataError(f"{where}: expected [price, qty], got {shown(level)}", code="bad_depth")
    qty = quantity(level[1], f"{where} qty", "bad_depth")
    if qty <= 0:
        raise DataError(f"{where} qty: {qty!r}, expected > 0", code="bad_depth")
    return price(level[0], f"{where} price", "bad_depth"), qty
