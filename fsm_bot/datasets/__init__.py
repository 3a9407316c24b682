"""``fsm-bot data``: real history downloaded into the project's schemas (docs/DATA.md).

- ``binance``: BTCUSDT 1-minute candles from Binance's public dump files or its REST klines, the schema
  ``adapters/sim.py::load_candles`` reads (``klines.py`` parses a row, ``binance.py`` fetches).
- ``polymarket``: every window's market, its official resolution and both tokens' price history, the
  recorded-prices schema (``polymarket.py``).
- ``checks.py`` validates what came (gaps, duplicates, OHLC) and reports it, never fixing anything;
  ``output.py`` owns the output file (the schema of one that exists, atomic checkpoints);
  ``client.py`` the GETs (retries, Retry-After, error kinds).

These are download clients, not trading adapters: nothing here is a port or reaches a session.
"""
