"""Binance spot BTCUSDT: the ``Feed`` of ``--paper`` and ``--live`` (1-minute candles, depth, reference).

Candles come from the kline WebSocket (closed ones only, held by a background thread that pings,
reconnects with backoff and trips a freshness watchdog), with REST ``/api/v3/klines`` for the
bootstrap, the gaps and a late stream; the buffer is persisted in the state dir. If Binance cannot
give a window of consecutive closed minutes, ``candles`` raises ``DataError``
(``binance_unreachable``): CoinGecko's spot price goes into that message but never into a candle.
Everything time-based runs on the clock the feed is given; only HTTP and connect timeouts are wall
time.

The modules, by job: ``parsers`` (payloads -> ``Kline``/``Depth`` or ``DataError``), ``buffer``
(the candle buffer and its parquet file), ``rest``, ``stream``, and ``feed`` (``BinanceFeed``, the port).
"""

from fsm_bot.adapters.binance.feed import BinanceFeed

__all__ = ["BinanceFeed"]
