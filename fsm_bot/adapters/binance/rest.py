"""Binance's REST reads: klines by open time (only those closed on the feed's clock, in requests
of at most ``KLINES_MAX``) for the bootstrap and the gaps, and the order-book depth."""

from __future__ import annotations

from typing import Any

from fsm_bot.adapters.binance.parsers import (DEPTH_PATH, KLINES_MAX, KLINES_PATH, SYMBOL, Kline, depth_limit,
                                              parse_depth, parse_klines)
from fsm_bot.adapters.http import Http
from fsm_bot.errors import DataError, TransientError
from fsm_bot.ports import MINUTE_MS, Clock, Depth


class BinanceRest:
    """The REST reads: klines (closed ones only, judged on the clock) and depth."""

    def __init__(self, http: Http, clock: Clock) -> None:
        self.http, self.clock = http, clock

    def klines(self, *, limit: int, start_ms: int | None = None, end_ms: int | None = None) -> list[Kline]:
        """Klines by open time (``startTime``/``endTime`` as Binance takes them), without the one still open."""
        params: dict[str, Any] = {"symbol": SYMBOL, "interval": "1m", "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        rows = parse_klines(self.http.get(KLINES_PATH, params))
        now_ms = self.clock.now_ms()
        return [k for k in rows if k.close_ms < now_ms]

    def span(self, first_ms: int, last_ms: int) -> list[Kline]:
        """The closed candles opening in [first, last], in requests of at most 1000."""
        got: list[Kline] = []
        while first_ms <= last_ms:
            limit = min(KLINES_MAX, (last_ms - first_ms) // MINUTE_MS + 1)
            rows = self.klines(limit=limit, start_ms=first_ms, end_ms=last_ms)
            got += rows
            if len(rows) < limit:
                break  # Binance has no more: a gap in its data, or the last has not closed
            first_ms = max(k.open_ms for k in rows) + MINUTE_MS
        return got

    def latest(self, last_ms: int, count: int) -> list[Kline]:
        """The ``count`` closed candles up to ``last_ms`` (the bootstrap)."""
        return self.klines(limit=min(KLINES_MAX, count), end_ms=last_ms)

    def depth(self, levels: int) -> Depth:
        try:
            payload = self.http.get(DEPTH_PATH, {"symbol": SYMBOL, "limit": depth_limit(levels)})
        except TransientError as exc:
            raise DataError(f"Binance unreachable ({exc}): no order book", code="binance_unreachable") from None
        return parse_depth(payload, levels)

    def close(self) -> None:
        self.http.close()
