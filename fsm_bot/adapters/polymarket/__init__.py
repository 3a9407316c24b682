"""Polymarket, cut by job (as NautilusTrader's adapter is):

- ``markets``  Gamma market discovery: parse and check one BTC Up/Down market by slug (``MarketInfo``),
               and the official resolution from ``closed`` + ``outcomePrices``
- ``books``    CLOB public payloads: ``/book`` (best level LAST on the wire, first in ``Book``),
               ``/clob-markets`` (the fee-rate fallback), ``/markets`` (the ``winner`` fallback)
- ``public``   ``PolymarketPublic``: the interval's ``Market`` and its resolution, as fsm_bot types
- ``paper``    ``PaperVenue``: ``--paper``, fills simulated against the real book, its own order ledger
- ``orders``   V2 order building and signing (the SDK), the order hash kept before the POST
- ``live``     ``PolymarketVenue``: ``--live``, posting, lookup, balance, redeem
- ``errors``   the vendor's failures mapped to fsm_bot's error kinds, in one place
"""
