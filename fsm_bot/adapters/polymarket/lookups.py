"""What the CLOB and the Data API say about one of our orders: the order, its trades on chain, the position.

``/data/order/{id}`` lists active orders only (a FOK order never rests), so an order is found by its
trades: ``/data/trades`` filtered by the order's market, token and window (or by a trade id the post
reply gave), every page followed through ``next_cursor``, matched on ``taker_order_id`` against the
order's hash and the id the venue gave it. A trade in any status, FAILED included, proves the venue had
the order. The Data API's ``/positions`` says what the wallet holds of the token.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from fsm_bot.adapters.http import Http
from fsm_bot.adapters.polymarket import orders
from fsm_bot.adapters.polymarket.account import ClobAccount
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.errors import DataError, TransientError
from fsm_bot.money import ZERO
from fsm_bot.ports import Accepted, Held, OrderIntent, Rejected, SignedOrder, Trade

MAX_PAGES = 50


class OrderLookups:
    def __init__(self, account: ClobAccount, data: Http, public: PolymarketPublic) -> None:
        self.account, self.data, self.public = account, data, public

    def lookup(self, order: SignedOrder, fee_rate: Decimal) -> Accepted | Rejected | None:
        """The order by its hash (``/data/order``, active orders only), then its trades in its market and window,
        every page; None when the venue shows neither."""
        key = order.key
        state = self._order_state(key)
        trades = self._order_trades(order, {key.lower()})
        return orders.lookup_result(key, state, trades, fee_rate)

    def trades(self, order: SignedOrder, order_id: str, known: tuple[Trade, ...]) -> tuple[Trade, ...]:
        """The order's trades now: each known trade by its id, else every trade of the market and window the order
        (by its hash or the venue's id) took."""
        takers = {order.key.lower(), order_id.lower()}
        found: list[orders.TradeFill] = []
        for trade in known:
            found += [t for t in self._pages({"id": trade.trade_id}, takers) if t.trade_id == trade.trade_id]
        if not known or not found:
            found = self._order_trades(order, takers)
        return tuple(t.trade() for t in found)

    def position(self, order: SignedOrder) -> Decimal | None:
        """The wallet's shares of the order's token, as the Data API shows its positions."""
        info = self.public.info(order.intent.slug)
        rows = self.data.get("/positions", {"user": str(self.account.sdk().wallet), "market": info.condition_id})
        if not isinstance(rows, list):
            raise DataError(f"data-api /positions: expected a list, got {type(rows).__name__}", code="bad_payload")
        return sum((orders.number(r.get("size", 0), "position size") for r in rows
                    if isinstance(r, dict) and str(r.get("asset")) == order.intent.token_id), ZERO)

    def holdings(self, market_slugs: tuple[str, ...], fee_rate: Callable[[str], Decimal]) -> tuple[Held, ...]:
        """Every order the wallet took liquidity with in these markets, found by its trades."""
        out = []
        for market_slug in market_slugs:
            info = self.public.info(market_slug)
            rows = self._pages({"market": info.condition_id, "after": str(info.start_ms // 1000 - 60)}, None)
            for key in dict.fromkeys(t.taker_order_id for t in rows):
                trades = [t for t in rows if t.taker_order_id == key]
                answer = orders.lookup_result(key, None, trades, fee_rate(market_slug))
                assert isinstance(answer, Accepted)
                token = trades[0].asset_id
                intent = OrderIntent(session="", interval=0, slug=market_slug, token_id=token,
                                     side="UP" if token == info.up_token else "DOWN", amount_usd=answer.fill.spent_usd,
                                     limit_price=max(t.price for t in trades))
                out.append(Held(order=SignedOrder(key=key, intent=intent), answer=answer))
        return tuple(out)

    def _order_state(self, key: str) -> orders.OrderState | None:
        try:
            return orders.parse_open_order(self.account.get(f"/data/order/{key}"), key)
        except DataError as exc:
            if exc.code != "not_found":
                raise
            return None

    def _order_trades(self, order: SignedOrder, takers: set[str]) -> list[orders.TradeFill]:
        """Every trade of the order's market and token since its window opened (less a minute), every page."""
        info = self.public.info(order.intent.slug)
        after = info.start_ms // 1000 - 60
        return self._pages({"market": info.condition_id, "asset_id": order.intent.token_id, "after": str(after)}, takers)

    def _pages(self, params: dict[str, str], takers: set[str]) -> list[orders.TradeFill]:
        """``/data/trades`` followed through ``next_cursor`` to the end; the rows our orders took."""
        found, cursor = [], None
        for _ in range(MAX_PAGES):
            body = self.account.get("/data/trades", params | ({"next_cursor": cursor} if cursor else {}))
            rows, cursor = orders.trades_page(body, "/data/trades")
            found += orders.parse_trades(rows, takers)
            if cursor is None:
                return found
        raise TransientError(f"/data/trades: more than {MAX_PAGES} pages for {params}", code="too_many_pages")

