"""CLOB public payloads: the order book, the compact market info and the market with its winner flags.

- ``GET /book?token_id=``: on the wire bids ASCEND and asks DESCEND, so the best price is the LAST
  element (reading ``[0]`` gives the 0.01/0.99 "ghost book"). ``parse_book`` returns the fsm_bot
  ``Book``, best level FIRST on both sides, after checking every level: the token is the one asked
  for, prices in (0, 1), sizes > 0 and sane, the wire order strict, the book not crossed.
- ``GET /clob-markets/{condition_id}`` (compact keys: ``t[].t`` tokens, ``mts`` tick, ``nr``
  neg-risk, ``fd.r``/``fd.e`` fee rate and exponent): the fee-rate fallback when Gamma states none.
- ``GET /markets/{condition_id}`` (``tokens[{token_id, outcome, price, winner}]``): the resolution
  fallback when Gamma's ``outcomePrices`` do not settle it.
- the market channel (``/ws/market``): ``book`` (a whole book; its level order is not relied on),
  ``price_change`` (``price_changes[]``: a level's new size, 0 removes it, with the venue's best bid
  and ask after it) and ``tick_size_change`` (the book is taken again); other events carry nothing a
  book needs.

Anything else is a ``DataError`` (``bad_book`` for books, ``bad_market`` for the rest).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fsm_bot.adapters.polymarket.markets import bounded, condition_id, fee_schedule, flag, mapping, tick, token_id
from fsm_bot.errors import DataError
from fsm_bot.ports import Book, Level, Outcome
from fsm_bot.values import frozen

MAX_SIZE = Decimal(1_000_000_000)
MAX_LEVELS = 10_000


@frozen
class ClobMarketInfo:
    """``/clob-markets/{condition_id}``: tokens, tick, and the fee when the CLOB states one."""

    tokens: frozenset[str]
    tick: Decimal
    neg_risk: bool
    fee_rate: Decimal | None


@frozen
class ClobToken:
    token_id: str
    outcome: str
    winner: bool


@frozen
class ClobMarket:
    """``/markets/{condition_id}``: the tokens with their winner flags."""

    condition_id: str
    closed: bool
    tokens: tuple[ClobToken, ...]


# -- /book ----------------------------------------------------------------------------------------
def parse_book(obj: Any, token: str) -> Book:
    """The book of ``token``, best level first (the wire has it last)."""
    obj = mapping(obj, f"book of {token}", code="bad_book")
    if obj.get("asset_id") != token:
        raise DataError(f"book asset_id {obj.get('asset_id')!r:.90}, expected {token}", code="bad_book")
    bids = _levels(obj.get("bids"), f"book of {token} bids")
    asks = _levels(obj.get("asks"), f"book of {token} asks")
    _check_wire_order(bids, ascending=True, what=f"book of {token} bids")
    _check_wire_order(asks, ascending=False, what=f"book of {token} asks")
    book = Book(bids=tuple(reversed(bids)), asks=tuple(reversed(asks)))
    if book.best_bid is not None and book.best_ask is not None and book.best_bid >= book.best_ask:
        raise DataError(f"book of {token} is crossed: bid {book.best_bid} >= ask {book.best_ask}", code="bad_book")
    return book


def _levels(value: Any, what: str) -> list[Level]:
    if not isinstance(value, list) or len(value) > MAX_LEVELS:
        raise DataError(f"{what}: expected a list of levels, got {type(value).__name__}", code="bad_book")
    return [_level(item, f"{what}[{i}]") for i, item in enumerate(value)]


def _level(item: Any, what: str) -> Level:
    item = mapping(item, what, code="bad_book")
    price = bounded(item.get("price"), f"{what}.price", Decimal(0), Decimal(1), code="bad_book")
    if price >= 1:
        raise DataError(f"{what}.price {item.get('price')!r}: outside (0, 1)", code="bad_book")
    size = bounded(item.get("size"), f"{what}.size", Decimal(0), MAX_SIZE, code="bad_book")
    return Level(price=price, size=size)


def _check_wire_order(levels: list[Level], ascending: bool, what: str) -> None:
    for a, b in zip(levels, levels[1:]):
        if (a.price >= b.price) if ascending else (a.price <= b.price):
            raise DataError(f"{what}: prices {a.price} then {b.price}, expected strictly "
                            f"{'ascending' if ascending else 'descending'} (best last)", code="bad_book")


# -- /clob-markets/{condition_id} -----------------------------------------------------------------
def parse_clob_market_info(obj: Any, condition: str) -> ClobMarketInfo:
    """The compact market info; ``fee_rate`` None when ``fd`` is absent (the caller's default applies)."""
    where = f"clob-markets {condition}"
    obj = mapping(obj, where)
    tokens = obj.get("t")
    if not isinstance(tokens, list) or not tokens:
        raise DataError(f"{where} t {tokens!r:.60}: expected a list of tokens", code="bad_market")
    ids = frozenset(token_id(mapping(t, f"{where} t[{i}]").get("t"), f"{where} t[{i}].t") for i, t in enumerate(tokens))
    neg_risk = flag(obj, "nr", where) if "nr" in obj else False
    return ClobMarketInfo(tokens=ids, tick=tick(obj.get("mts"), f"{where} mts"), neg_risk=neg_risk,
                          fee_rate=_fee_details(obj.get("fd"), where))


def _fee_details(value: Any, where: str) -> Decimal | None:
    return fee_schedule(value, f"{where} fd", "r", "e")


# -- /markets/{condition_id} ----------------------------------------------------------------------
def parse_clob_market(obj: Any, condition: str) -> ClobMarket:
    where = f"clob market {condition}"
    obj = mapping(obj, where)
    cid = condition_id(obj.get("condition_id"), where)
    if cid.lower() != condition.lower():
        raise DataError(f"{where}: condition_id {cid}, expected {condition}", code="market_mismatch")
    tokens = obj.get("tokens")
    if not isinstance(tokens, list) or len(tokens) != 2:
        raise DataError(f"{where} tokens {tokens!r:.60}: expected two tokens", code="bad_market")
    return ClobMarket(condition_id=cid, closed=flag(obj, "closed", where),
                      tokens=tuple(_clob_token(t, f"{where} tokens[{i}]") for i, t in enumerate(tokens)))


def _clob_token(value: Any, what: str) -> ClobToken:
    token = mapping(value, what)
    outcome = token.get("outcome")
    if not isinstance(outcome, str) or len(outcome) > 40:
        raise DataError(f"{what}.outcome {outcome!r:.60}: expected a label", code="bad_market")
    return ClobToken(token_id=token_id(token.get("token_id"), f"{what}.token_id"), outcome=outcome,
                     winner=flag(token, "winner", what))


def clob_winner(market: ClobMarket, up_token: str, down_token: str) -> Outcome | None:
    """The side whose token carries ``winner: true``; None while no token does."""
    by_id = {t.token_id: t for t in market.tokens}
    if set(by_id) != {up_token, down_token}:
        raise DataError(f"clob market {market.condition_id}: tokens {sorted(by_id)} are not this market's",
                        code="market_mismatch")
    up, down = by_id[up_token], by_id[down_token]
    if up.outcome != "Up" or down.outcome != "Down":
        raise DataError(f"clob market {market.condition_id}: token labels {up.outcome!r}/{down.outcome!r}, "
                        "expected 'Up'/'Down'", code="market_mismatch")
    if up.winner and down.winner:
        raise DataError(f"clob market {market.condition_id}: both tokens are winners", code="bad_market")
    return "UP" if up.winner else "DOWN" if down.winner else None


# -- the market channel (``/ws/market``) ----------------------------------------------------------
@frozen
class BookTaken:
    """``book``: one token's whole book, best level first (the channel's level order is not relied on)."""

    token: str
    book: Book


@frozen
class LevelChanged:
    """One entry of ``price_change``'s ``price_changes``: a level's new size (0 removes it), and the venue's best
    bid and ask once it applied (None: that side is empty -- "0" and "1" on the wire -- or the field is absent)."""

    token: str
    bids: bool  # side BUY: a bid level; SELL: an ask level
    price: Decimal
    size: Decimal
    best: tuple[Decimal | None, Decimal | None] | None  # (best bid, best ask); None when the message states none


@frozen
class TickChanged:
    """``tick_size_change``: the token's book is to be taken again."""

    token: str


ChannelEvent = BookTaken | LevelChanged | TickChanged


def parse_channel_message(obj: Any) -> list[ChannelEvent]:
    """A message of the market channel -- one event or a list of them -- as the events that change a book;
    trades and the custom events carry nothing a book needs, an unknown event type is passed over."""
    items = obj if isinstance(obj, list) else [obj]
    if len(items) > MAX_LEVELS:
        raise DataError(f"market channel: {len(items)} events in one message", code="bad_book")
    events: list[ChannelEvent] = []
    for i, item in enumerate(items):
        item = mapping(item, f"market channel event [{i}]", code="bad_book")
        kind = item.get("event_type")
        if kind == "book":
            events.append(_book_taken(item))
        elif kind == "price_change":
            events += _level_changes(item)
        elif kind == "tick_size_change":
            events.append(TickChanged(token_id(item.get("asset_id"), "tick_size_change asset_id", code="bad_book")))
    return events


def _book_taken(item: dict[str, Any]) -> BookTaken:
    token = token_id(item.get("asset_id"), "book asset_id", code="bad_book")
    bids = sorted(_levels(item.get("bids"), f"channel book of {token} bids"), key=lambda lv: lv.price, reverse=True)
    asks = sorted(_levels(item.get("asks"), f"channel book of {token} asks"), key=lambda lv: lv.price)
    for side, levels in (("bids", bids), ("asks", asks)):
        if len({lv.price for lv in levels}) != len(levels):
            raise DataError(f"channel book of {token} {side}: a price listed twice", code="bad_book")
    if bids and asks and bids[0].price >= asks[0].price:
        raise DataError(f"channel book of {token} is crossed: bid {bids[0].price} >= ask {asks[0].price}",
                        code="bad_book")
    return BookTaken(token, Book(bids=tuple(bids), asks=tuple(asks)))


def _level_changes(item: dict[str, Any]) -> list[LevelChanged]:
    changes = item.get("price_changes")
    if not isinstance(changes, list) or len(changes) > MAX_LEVELS:
        raise DataError(f"price_change price_changes {changes!r:.60}: expected a list", code="bad_book")
    return [_level_changed(mapping(c, f"price_changes[{i}]", code="bad_book"), f"price_changes[{i}]")
            for i, c in enumerate(changes)]


def _level_changed(c: dict[str, Any], what: str) -> LevelChanged:
    side = c.get("side")
    if side not in ("BUY", "SELL"):
        raise DataError(f"{what}.side {side!r:.20}: expected BUY or SELL", code="bad_book")
    price = bounded(c.get("price"), f"{what}.price", Decimal(0), Decimal(1), code="bad_book")
    size = bounded(c.get("size"), f"{what}.size", Decimal(0), MAX_SIZE, inclusive=True, code="bad_book")
    if price >= 1:
        raise DataError(f"{what}.price {c.get('price')!r}: outside (0, 1)", code="bad_book")
    best = None
    if "best_bid" in c and "best_ask" in c:
        bid = bounded(c["best_bid"], f"{what}.best_bid", Decimal(0), Decimal(1), inclusive=True, code="bad_book")
        ask = bounded(c["best_ask"], f"{what}.best_ask", Decimal(0), Decimal(1), inclusive=True, code="bad_book")
        best = (bid if bid > 0 else None, ask if ask < 1 else None)
    return LevelChanged(token_id(c.get("asset_id"), f"{what}.asset_id", code="bad_book"), side == "BUY", price, size,
                        best)
