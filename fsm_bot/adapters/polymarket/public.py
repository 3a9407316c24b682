"""Polymarket's public data as fsm_bot types: the interval's ``Market`` and the official resolution.

- ``market(start_ms)``: Gamma ``/markets?slug=btc-updown-<m>m-<start s>`` (read fresh, so
  ``accepting_orders`` is the state at the moment of the decision), then both outcome books: the
  market channel's (``stream.MarketChannel``) when it has one current within ``book_max_age_ms``,
  else ``GET /book``; when REST fails too, the channel's last book as it is (stale, or resyncing), so
  that FETCH skips with the reason. Every book says when it was last known current (``as_of_ms``).
  The fee rate is the market's own: Gamma ``feeSchedule.rate``, else CLOB
  ``/clob-markets/{condition_id}`` ``fd.r``, else the configured default; it is worked out once per
  market. A market whose tokens change between two reads is refused.
- ``info(slug)``: the market's Gamma facts (tokens, tick, minimum size), cached once found; the
  live venue signs with them. ``warm(start_ms)``: the same, and the channel follows its two books
  from then on (the previous market's are dropped).
- ``resolution(slug)``: Gamma first (``closed`` with ``outcomePrices`` exactly 1 and 0); once the
  market has stopped trading and Gamma does not settle it, the CLOB's ``tokens[].winner``. Never
  cached while unresolved.

Every request goes through ``Http`` (retries, error kinds); only fsm_bot types leave this module.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from typing import Any, Callable, Protocol

from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket.books import clob_winner, parse_book, parse_clob_market, parse_clob_market_info
from fsm_bot.adapters.polymarket.markets import MarketInfo, parse_gamma_markets, parse_resolution
from fsm_bot.config import Config
from fsm_bot.errors import DataError, TransientError
from fsm_bot.logs import event
from fsm_bot.ports import Book, Clock, Market, Outcome, slug, slug_start_ms

log = logging.getLogger("fsm_bot.polymarket")
RESOLVED_AFTER_SECS = 30  # a market's official result is not asked for sooner after its end (it takes a minute or more)


class Channel(Protocol):
    """What the public side needs of the market channel (``stream.MarketChannel``)."""

    def follow(self, tokens: tuple[str, ...]) -> None: ...

    def book(self, token: str) -> Book | None: ...

    def close(self) -> None: ...


class PolymarketPublic:
    """Gamma and CLOB public endpoints, no keys; the books kept current by the market channel when given one."""

    def __init__(self, gamma: Http, clob: Http, minutes: int, default_fee_rate: Decimal,
                 min_order_usd: Decimal, *, now_ms: Callable[[], int] | None = None, channel: Channel | None = None,
                 book_max_age_ms: int = 5000) -> None:
        self.gamma, self.clob, self.minutes = gamma, clob, minutes
        self.default_fee_rate, self.min_order_usd = default_fee_rate, min_order_usd
        self.now_ms, self.channel, self.book_max_age_ms = now_ms, channel, book_max_age_ms
        self._infos: dict[str, MarketInfo] = {}
        self._warmed: dict[str, MarketInfo] = {}  # facts read shortly before the market's decision, used by it once
        self._fee_rates: dict[str, Decimal] = {}
        self._resolved: dict[str, Outcome] = {}

    @classmethod
    def from_config(cls, cfg: Config, clock: Clock, channel: Channel | None = None) -> "PolymarketPublic":
        backoff = Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs)
        gamma = Http(cfg.gamma_url, name="gamma", timeout_secs=cfg.http_timeout_secs, backoff=backoff, pause=clock.pause)
        clob = Http(cfg.clob_url, name="clob", timeout_secs=cfg.http_timeout_secs, backoff=backoff, pause=clock.pause)
        return cls(gamma, clob, cfg.interval_minutes, cfg.fee_rate, cfg.min_order_usd, now_ms=clock.now_ms,
                   channel=channel, book_max_age_ms=cfg.book_max_age_ms)

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.gamma.close()
        self.clob.close()

    # -- the market of an interval ------------------------------------------------------------------
    def market(self, start_ms: int) -> Market:
        """The market with its books now; its facts as warmed before the interval (Gamma is asked if it was not)."""
        market_slug = slug(start_ms, self.minutes)
        info = self._warmed.pop(market_slug, None) or self._discover(market_slug)
        if info.closed:
            raise DataError(f"market {info.slug} is closed", code="market_closed")
        return Market(slug=info.slug, condition_id=info.condition_id, start_ms=info.start_ms, end_ms=info.end_ms,
                      up_token=info.up_token, down_token=info.down_token, accepting_orders=info.accepting_orders,
                      tick=info.tick, min_order_usd=self.min_order_usd, fee_rate=self.fee_rate(info),
                      up_book=self.current_book(info.up_token), down_book=self.current_book(info.down_token))

    def info(self, market_slug: str) -> MarketInfo:
        """The market's facts as first found (tokens, tick, minimum size, fee schedule)."""
        return self._infos.get(market_slug) or self._discover(market_slug)

    def warm(self, start_ms: int) -> MarketInfo:
        """The facts of the market starting at ``start_ms``, read now and kept for its decision (``market``); from
        now on the channel keeps its two books."""
        market_slug = slug(start_ms, self.minutes)
        info = self._warmed[market_slug] = self._discover(market_slug)
        if self.channel is not None:
            self.channel.follow((info.up_token, info.down_token))
        return info

    def current_book(self, token_id: str) -> Book:
        """The channel's book when it is current within the bound; else REST's; else the channel's as it is."""
        kept = self.channel.book(token_id) if self.channel is not None else None
        if kept is not None and not kept.resyncing and self.now_ms is not None and kept.as_of_ms is not None \
                and self.now_ms() - kept.as_of_ms <= self.book_max_age_ms:
            return kept
        try:
            return self.book(token_id)
        except (DataError, TransientError) as exc:
            if kept is None:
                raise
            event(log, logging.WARNING, "polymarket", f"book of {token_id}: REST failed ({exc}); the channel's "
                  f"{'resyncing' if kept.resyncing else 'last'} book goes to the decision", error_code=exc.code)
            return kept

    def book(self, token_id: str) -> Book:
        """``GET /book``, stamped with the time its answer arrived."""
        payload = _found(self.clob, "/book", {"token_id": token_id})
        if payload is None:
            raise DataError(f"clob has no book for token {token_id}", code="book_not_found")
        book = parse_book(payload, token_id)
        return dataclasses.replace(book, as_of_ms=self.now_ms()) if self.now_ms is not None else book

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
        """UP/DOWN once the market is officially resolved, else None (without asking, in the first
        ``RESOLVED_AFTER_SECS`` after its end: the resolver has not reported yet, and an interval's boundary is
        when the next decision runs)."""
        if market_slug in self._resolved:
            return self._resolved[market_slug]
        start_ms, minutes = slug_start_ms(market_slug)
        if self.now_ms is not None and self.now_ms() < start_ms + (minutes * 60 + RESOLVED_AFTER_SECS) * 1000:
            return None
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
