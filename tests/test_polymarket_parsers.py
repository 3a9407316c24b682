"""Polymarket's payload parsers: recorded payloads parse to the right values; anything broken is a
``DataError`` (never another exception), whatever the field, type or value."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsm_bot.adapters.polymarket.books import (clob_winner, parse_book, parse_clob_market, parse_clob_market_info)
from fsm_bot.adapters.polymarket.markets import parse_gamma_market, parse_gamma_markets, parse_resolution
from fsm_bot.errors import DataError

PAYLOADS = Path(__file__).resolve().parent / "payloads" / "polymarket"
SLUG = "btc-updown-5m-1779112200"
CID = "0xd3e325007c6a94f0e1b597683931a39f5968e05ce2e4f86f7ff8e86c9f440a86"
UP = "14351411727222566587144877801557826031628530147732994933174913118178804704978"
DOWN = "62009811697833338590365893072715059852559689365262758252132789117642023254465"
PROPERTY = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


GAMMA_OPEN, GAMMA_CLOSED = load("gamma_markets_btc5m_open.json")[0], load("gamma_markets_btc5m_closed.json")[0]
BOOK = load("clob_book_btc5m_up.json")
CLOB_INFO = load("clob_markets_info_btc5m.json")
CLOB_MARKET = load("clob_market_btc5m_resolved.json")

PARSERS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "gamma": (GAMMA_OPEN, lambda obj: parse_gamma_market(obj, SLUG)),
    "book": (BOOK, lambda obj: parse_book(obj, UP)),
    "clob_info": (CLOB_INFO, lambda obj: parse_clob_market_info(obj, CID)),
    "clob_market": (CLOB_MARKET, lambda obj: clob_winner(parse_clob_market(obj, CID), UP, DOWN)),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
bad_numbers = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", "-1", "0", "1e400", "", "0x10",
                     "1e-400", None, True, False, [], {}, "0.5 0.5"]),
    st.floats(max_value=0), st.integers(max_value=0), st.integers(min_value=10**10), st.text(max_size=6).filter(
        lambda t: not _is_number(t)))
bad_prices = st.one_of(bad_numbers, st.floats(min_value=1), st.decimals(min_value=1, allow_nan=False).map(str))


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except ArithmeticError:
        return False


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            found += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += paths(v, prefix + (i,))
    return found


def replaced(obj: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    out = copy.deepcopy(obj)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


# -- the recorded payloads parse to the right values ----------------------------------------------
def test_the_recorded_gamma_market_parses():
    info = parse_gamma_markets([GAMMA_OPEN], SLUG)
    assert (info.slug, info.condition_id, info.up_token, info.down_token) == (SLUG, CID, UP, DOWN)
    assert (info.start_ms, info.end_ms) == (1_779_112_200_000, 1_779_112_500_000)
    assert info.accepting_orders and not info.closed and info.version is None
    assert (info.tick, info.min_order_shares, info.fee_rate) == (Decimal("0.01"), Decimal(5), Decimal("0.072"))
    assert info.outcome_prices == (Decimal("0.645"), Decimal("0.355")) and parse_resolution(info) is None


def test_the_recorded_closed_market_resolves_up():
    info = parse_gamma_market(GAMMA_CLOSED, SLUG)
    assert info.closed and not info.accepting_orders and parse_resolution(info) == "UP"


def test_the_recorded_book_parses_best_first():
    book = parse_book(BOOK, UP)
    assert (book.best_bid, book.best_ask) == (Decimal("0.64"), Decimal("0.65"))
    assert [lv.price for lv in book.asks] == [Decimal(p) for p in ("0.65", "0.66", "0.67", "0.68", "0.69")]
    assert book.asks[0].size == Decimal("427.66") and book.bids[-1].price == Decimal("0.6")


def test_the_recorded_clob_payloads_parse():
    info = parse_clob_market_info(CLOB_INFO, CID)
    assert (info.tokens, info.tick, info.fee_rate, info.neg_risk) == (frozenset({UP, DOWN}), Decimal("0.01"),
                                                                     Decimal("0.072"), False)
    assert PARSERS["clob_market"][1](CLOB_MARKET) == "UP"


def test_an_empty_gamma_list_is_market_not_found():
    with pytest.raises(DataError) as exc:
        parse_gamma_markets([], SLUG)
    assert exc.value.code == "market_not_found"


def test_another_slug_in_the_gamma_list_is_a_mismatch():
    other = dict(GAMMA_OPEN, slug="btc-updown-5m-1779112500")
    with pytest.raises(DataError) as exc:
        parse_gamma_markets([other], SLUG)
    assert exc.value.code == "market_mismatch"


# -- anything broken is a DataError ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PARSERS))
@PROPERTY
@given(junk=json_values)
def test_any_json_at_all_is_parsed_or_refused_with_a_data_error(name, junk):
    try:
        PARSERS[name][1](junk)
    except DataError:
        pass


@pytest.mark.parametrize("name", sorted(PARSERS))
@PROPERTY
@given(data=st.data(), junk=json_values | bad_numbers)
def test_any_field_replaced_or_dropped_is_parsed_or_refused_with_a_data_error(name, data, junk):
    payload, parse = PARSERS[name]
    path = data.draw(st.sampled_from(paths(payload)))
    mutated = replaced(payload, path, junk, delete=data.draw(st.booleans()))
    try:
        parse(mutated)
    except DataError:
        pass


REQUIRED_GAMMA = ["slug", "conditionId", "eventStartTime", "endDate", "outcomes", "outcomePrices", "clobTokenIds",
                  "active", "closed", "acceptingOrders", "enableOrderBook", "orderPriceMinTickSize", "orderMinSize"]


@pytest.mark.parametrize("key", REQUIRED_GAMMA)
def test_a_gamma_market_missing_a_required_field_is_refused(key):
    with pytest.raises(DataError):
        parse_gamma_market(replaced(GAMMA_OPEN, (key,), None, delete=True), SLUG)


@PROPERTY
@given(key=st.sampled_from(["orderPriceMinTickSize", "orderMinSize"]), value=bad_numbers)
def test_bad_gamma_numbers_are_refused(key, value):
    with pytest.raises(DataError):
        parse_gamma_market(replaced(GAMMA_OPEN, (key,), value), SLUG)


@PROPERTY
@given(rate=bad_prices.filter(lambda v: not (isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0
                                            or v == "0")))
def test_a_bad_fee_rate_is_refused(rate):
    with pytest.raises(DataError):
        parse_gamma_market(replaced(GAMMA_OPEN, ("feeSchedule", "rate"), rate), SLUG)


@PROPERTY
@given(index=st.integers(0, 1), price=st.one_of(st.floats(min_value=1.0001), st.floats(max_value=-0.0001),
                                                 st.sampled_from(["NaN", "inf", "-0.5", "1.5", "abc", ""])))
def test_outcome_prices_outside_zero_one_are_refused(index, price):
    prices = ["0.5", "0.5"]
    prices[index] = price if isinstance(price, str) else repr(price)
    with pytest.raises(DataError):
        parse_gamma_market(dict(GAMMA_OPEN, outcomePrices=json.dumps(prices)), SLUG)


@pytest.mark.parametrize("change", [
    {"slug": "btc-updown-5m-1779112500"}, {"eventStartTime": "2026-05-18T13:55:00Z"},
    {"endDate": "2026-05-18T14:05:00Z"}, {"outcomes": json.dumps(["Yes", "No"])},
    {"outcomes": json.dumps(["Up", "Up"])}, {"clobTokenIds": json.dumps([UP, UP])},
    {"clobTokenIds": json.dumps([UP])}, {"clobTokenIds": json.dumps([UP, "0x12"])},
    {"conditionId": "0x1234"}, {"feeSchedule": {"exponent": 2, "rate": 0.25}}, {"endDate": "2026-05-18 13:55"},
    {"outcomes": '["Up", "Down"'}, {"outcomes": ["Up", "Down"]}, {"active": "true"}])
def test_a_wrong_or_inconsistent_gamma_market_is_refused(change):
    with pytest.raises(DataError):
        parse_gamma_market(dict(GAMMA_OPEN, **change), SLUG)


def test_labels_not_positions_pick_the_tokens():
    swapped = dict(GAMMA_OPEN, outcomes=json.dumps(["Down", "Up"]), clobTokenIds=json.dumps([DOWN, UP]),
                   outcomePrices=json.dumps(["0.355", "0.645"]))
    info = parse_gamma_market(swapped, SLUG)
    assert (info.up_token, info.down_token, info.outcome_prices) == (UP, DOWN, (Decimal("0.645"), Decimal("0.355")))


# -- books ----------------------------------------------------------------------------------------
@st.composite
def wire_books(draw):
    """A valid CLOB book on the wire: bids ascending below asks descending, prices on a 0.01 grid."""
    cut = draw(st.integers(2, 98))
    bids = sorted(draw(st.sets(st.integers(1, cut - 1), max_size=8)))
    asks = sorted(draw(st.sets(st.integers(cut, 99), max_size=8)), reverse=True)
    size = st.decimals(min_value="0.01", max_value="100000", places=2)
    level = lambda ticks: {"price": str(Decimal(ticks) / 100), "size": str(draw(size))}  # noqa: E731
    return dict(BOOK, bids=[level(t) for t in bids], asks=[level(t) for t in asks])


@PROPERTY
@given(book=wire_books())
def test_a_valid_book_parses_best_first_on_both_sides(book):
    parsed = parse_book(book, UP)
    for side in ("asks", "bids"):
        got = [(str(lv.price), str(lv.size)) for lv in getattr(parsed, side)]
        assert got == [(x["price"], x["size"]) for x in book[side][::-1]]
    assert all(a.price < b.price for a, b in zip(parsed.asks, parsed.asks[1:]))
    assert all(a.price > b.price for a, b in zip(parsed.bids, parsed.bids[1:]))


@PROPERTY
@given(book=wire_books().filter(lambda b: b["asks"] and b["bids"]), data=st.data())
def test_a_bad_price_or_size_anywhere_in_a_book_is_refused(book, data):
    side = data.draw(st.sampled_from(["bids", "asks"]))
    index = data.draw(st.integers(0, len(book[side]) - 1))
    key = data.draw(st.sampled_from(["price", "size"]))
    value = data.draw(bad_prices if key == "price" else bad_numbers | st.just("1e12"))
    with pytest.raises(DataError) as exc:
        parse_book(replaced(book, (side, index, key), value), UP)
    assert exc.value.code == "bad_book"


@PROPERTY
@given(book=wire_books().filter(lambda b: len(b["asks"]) >= 2))
def test_a_book_in_the_wrong_order_is_refused(book):
    flipped = dict(book, asks=book["asks"][::-1])  # best FIRST: not what the CLOB sends
    with pytest.raises(DataError):
        parse_book(flipped, UP)


def test_a_book_of_another_token_is_refused():
    with pytest.raises(DataError) as exc:
        parse_book(BOOK, DOWN)
    assert exc.value.code == "bad_book"


def test_a_crossed_book_is_refused():
    with pytest.raises(DataError):
        parse_book(dict(BOOK, bids=[{"price": "0.66", "size": "10"}]), UP)


# -- the CLOB fallbacks ---------------------------------------------------------------------------
def test_clob_market_info_without_fee_details_states_no_rate():
    assert parse_clob_market_info({k: v for k, v in CLOB_INFO.items() if k != "fd"}, CID).fee_rate is None


@PROPERTY
@given(rate=bad_prices.filter(lambda v: v not in (0, "0") or isinstance(v, bool)))
def test_a_bad_clob_fee_rate_is_refused(rate):
    with pytest.raises(DataError):
        parse_clob_market_info(replaced(CLOB_INFO, ("fd", "r"), rate), CID)


@PROPERTY
@given(up=st.booleans(), down=st.booleans())
def test_the_clob_winner_is_the_one_flagged_token(up, down):
    market = copy.deepcopy(CLOB_MARKET)
    market["tokens"][0]["winner"], market["tokens"][1]["winner"] = up, down
    if up and down:
        with pytest.raises(DataError):
            PARSERS["clob_market"][1](market)
    else:
        assert PARSERS["clob_market"][1](market) == ("UP" if up else "DOWN" if down else None)


def test_clob_tokens_of_another_market_are_refused():
    with pytest.raises(DataError) as exc:
        clob_winner(parse_clob_market(CLOB_MARKET, CID), UP, "123")
    assert exc.value.code == "market_mismatch"


# -- resolution -----------------------------------------------------------------------------------
@PROPERTY
@given(closed=st.booleans(), up=st.decimals(min_value=0, max_value=1, places=4),
       down=st.decimals(min_value=0, max_value=1, places=4))
def test_resolution_is_official_only_for_a_closed_market_with_one_winner_and_one_loser(closed, up, down):
    obj = dict(GAMMA_CLOSED, closed=closed, outcomePrices=json.dumps([str(up), str(down)]))
    outcome = parse_resolution(parse_gamma_market(obj, SLUG))
    win, lose = Decimal("0.999"), Decimal("0.001")
    expected = None
    if closed:
        expected = "UP" if up >= win and down <= lose else "DOWN" if down >= win and up <= lose else None
    assert outcome == expected


@pytest.mark.parametrize("prices, expected", [(["1", "0"], "UP"), (["0", "1"], "DOWN"), (["0", "0"], None),
                                              (["0.5", "0.5"], None), (["1", "1"], None), (["0.9995", "0.0005"], "UP")])
def test_resolution_of_recorded_shapes(prices, expected):
    info = parse_gamma_market(dict(GAMMA_CLOSED, outcomePrices=json.dumps(prices)), SLUG)
    assert parse_resolution(info) == expected


@st.composite
def gamma_markets(draw):
    """A valid Gamma market of any 5m or 15m window, outcomes in either order."""
    minutes = draw(st.sampled_from([5, 15]))
    start_s = draw(st.integers(1_700_000_000 // 900, 1_900_000_000 // 900)) * 900
    up, down = draw(st.lists(st.from_regex(r"[1-9][0-9]{20,77}", fullmatch=True), min_size=2, max_size=2, unique=True))
    up_price = draw(st.decimals(min_value=0, max_value=1, places=3))
    tick = draw(st.sampled_from(["0.1", "0.01", "0.001", "0.0001"]))
    rate = draw(st.decimals(min_value=0, max_value="0.25", places=4))
    pairs = [("Up", up, str(up_price)), ("Down", down, str(1 - up_price))]
    if draw(st.booleans()):
        pairs.reverse()
    iso = lambda s: f"{datetime.fromtimestamp(s, timezone.utc):%Y-%m-%dT%H:%M:%SZ}"  # noqa: E731
    obj = dict(GAMMA_OPEN, slug=f"btc-updown-{minutes}m-{start_s}", eventStartTime=iso(start_s),
               endDate=iso(start_s + minutes * 60), outcomes=json.dumps([p[0] for p in pairs]),
               clobTokenIds=json.dumps([p[1] for p in pairs]), outcomePrices=json.dumps([p[2] for p in pairs]),
               orderPriceMinTickSize=float(tick), feeSchedule={"exponent": 1, "rate": str(rate)})
    return obj, (minutes, start_s, up, down, up_price, Decimal(tick), rate)


@PROPERTY
@given(case=gamma_markets())
def test_a_valid_gamma_market_parses_to_its_values(case):
    obj, (minutes, start_s, up, down, up_price, tick, rate) = case
    info = parse_gamma_market(obj, obj["slug"])
    assert (info.start_ms, info.end_ms) == (start_s * 1000, (start_s + minutes * 60) * 1000)
    assert (info.up_token, info.down_token, info.tick, info.fee_rate) == (up, down, tick, rate)
    assert info.outcome_prices == (up_price, 1 - up_price)
