"""Polymarket's public data as fsm_bot types: the interval's ``Market`` and the official resolution.

- ``market(start_ms)``: Gamma ``/markets?slug=btc-updown-<m>m-<start s>`` (read fresh, so
  ``accepting_orders`` is the state at the moment of the decision), then both outcome books from
  the CLOB, fresh on every call. The fee rate is the market's own: Gamma ``feeSchedule.rate``,
  else CLOB ``/clob-markets/{condition_id}`` ``fd.r``, else the configured default; it is worked
  out once per market. A market whose tokens change between two reads is refused.
- ``info(slug)``: the market's Gamma facts (tokens, tick, minimum size), cached once found; the
  live venue signs with them.
- ``resolution(slug)``: Gamma first (``closed`` with ``outcomePrices`` exactly 1 and 0); once the
  market has stopped trading and Gamma does not settle it, the CLOB's ``tokens[].winner``. Never
  cached while unresolved.

Every request goes through ``Http`` (retries, error kinds); only fsm_bot types leave this module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket.books import clob_winner, parse_book, parse_clob_market, parse_clob_market_info
from fsm_bot.adapters.polymarket.markets import MarketInfo, parse_gamma_markets, parse_resolution
from fsm_bot.config import Config
from fsm_bot.errors import DataError
from fsm_bot.ports import Book, Clock, Market, Outcome, slug


class PolymarketPublic:
    """Gamma and CLOB public endpoints, no keys."""

    def __init__(self, gamma: Http, clob: Http, minutes: int, default_fee_rate: Decimal,
                 min_order_usd: Decimal) -> None:
        self.gamma, self.clob, self.minutes = gamma, clob, minutes
        self.default_fee_rate, self.min_order_usd = default_fee_rate, min_order_usd
        self._infos: dict[str, MarketInfo] = {}
        self._fee_rates: dict[str, Decimal] = {}
        self._resolved: dict[str, Outcome] = {}

    @classmethod
    def from_config(cls, cfg: Config, clock: Clock) -> "PolymarketPublic":
        backoff = Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs)
        gamma = Http(cfg.gamma_url, name="gamma", timeout_secs=cfg.http_timeout_secs, backoff=backoff, pause=clock.pause)
        clob = Http(cfg.clob_url, name="clob", timeout_secs=cfg.http_timeout_secs, backoff=backoff, pause=clock.pause)
        return cls(gamma, clob, cfg.interval_minutes, cfg.fee_rate, cfg.min_order_usd)

    def close(self) -> None:
        self.gamma.close()
        self.clob.close()

    # -- the market of an interval ------------------------------------------------------------------
    def market(self, start_ms: int) -> Market:
        info = self._discover(slug(start_ms, self.minutes))
        if info.closed:
            raise DataError(f"market {info.slug} is closed", code="market_closed")
        return Market(slug=info.slug, condition_id=info.condition_id, start_ms=info.start_ms, end_ms=info.end_ms,
                      up_token=info.up_token, down_token=info.down_token, accepting_orders=info.accepting_orders,
                      tick=info.tick, min_order_usd=self.min_order_usd, fee_rate=self.fee_rate(info),
                      up_book=self.book(info.up_token), down_book=self.book(info.down_token))

    def info(self, market_slug: str) -> MarketInfo:
        """The market's facts as first found (tokens, tick, minimum size, fee schedule)."""
        return self._infos.get(market_slug) or self._discover(market_slug)

    def book(self, token_id: str) -> Book:
        payload = _found(self.clob, "/book", {"token_id": token_id})
        if payload is None:
            raise DataError(f"clob has no book for token {token_id}", code="book_not_found")
        return parse_book(payload, token_id)

    def fee_rate(self, info: MarketInfo) -> Decimal:
        """The market's taker fee rate: Gamma's, else the CLOB's, else the default."""
        if info.slug not in self._fee_rates:
            self._fee_rates[info.slug] = info.fee_rate if info.fee_rate is not None else self._clob_fee_rate(info)
        return self._fee_rates[info.slug]

    def _clob_fee_rate(self, info: MarketInfo) -> Decimal:
        payload = _found(self.clob, f"/clob-markets/{info.condition_id}")
        if payload is None:
            return self.default_fee_rate  # not hydrated on the CLOB yet: no stated rate
        clob = parse_clob_market_info(payload, info.condition_id)
        if clob.tokens != {info.up_token, info.down_token}:
            raise DataError(f"clob-markets {info.condition_id}: tokens differ from Gamma's for {info.slug}",
                            code="market_mismatch")
        return clob.fee_rate if clob.fee_rate is not None else self.default_fee_rate

    def _discover(self, market_slug: str) -> MarketInfo:
        """Gamma's market of ``market_slug``, read now; its identity must not change between reads."""
        payload = _found(self.gamma, "/markets", {"slug": market_slug})
        if payload is None:
            raise DataError(f"gamma has no market {market_slug}", code="market_not_found")
        info = parse_gamma_markets(payload, market_slug)
        known = self._infos.setdefault(market_slug, info)
        if (known.condition_id, known.up_token, known.down_token) != (info.condition_id, info.up_token,
                                                                      info.down_token):
            raise DataError(f"gamma market {market_slug}: condition or tokens changed since first seen",
                            code="market_mismatch")
        return info

    # -- the official resolution --------------------------------------------------------------------
    def resolution(self, market_slug: str) -> Outcome | None:
        """UP/DOWN once the market is officially resolved, else None."""
        if market_slug in self._resolved:
            return self._resolved[market_slug]
        info = self._discover(market_slug)
        outcome = parse_resolution(info)
        if outcome is None and not info.accepting_orders:
            outcome = self._clob_resolution(info)
        if outcome is not None:
            self._resolved[market_slug] = outcome
        return outcome

    def _clob_resolution(self, info: MarketInfo) -> Outcome | None:
        payload = _found(self.clob, f"/markets/{info.condition_id}")
        if payload is None:
            return None
        return clob_winner(parse_clob_market(payload, info.condition_id), info.up_token, info.down_token)


def _found(http: Http, path: str, params: dict[str, str] | None = None) -> Any:
    """``GET path``'s JSON, or None when the server says 404 (every other failure raises as ``Http`` does)."""
    try:
        return http.get(path, params)
    except DataError as exc:
        if exc.code != "not_found":
            raise
        return None
