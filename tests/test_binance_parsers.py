"""Property tests of the Binance and CoinGecko parsers: a valid payload round-trips; anything
malformed (a missing field, a wrong type, NaN, a negative, zero or huge value, a wrong shape) is a
``DataError`` -- never a KeyError, TypeError or IndexError escaping into the engine."""

from __future__ import annotations

import itertools
import math
import operator
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm_bot.adapters.binance.parsers import (DEPTH_LIMITS, Kline, depth_limit, parse_depth, parse_kline_event,
                                              parse_kline_row, parse_klines)
from fsm_bot.adapters.coingecko import NEAR_MS, outcome, parse_market_chart, parse_simple_price
from fsm_bot.errors import DataError
from fsm_bot.ports import Depth

M = 60_000
SETTINGS = settings(deadline=None, max_examples=200)
ANY_JSON = settings(deadline=None, max_examples=100)  # arbitrary nested JSON is slow to draw

# -- strategies ----------------------------------------------------------------------------------
open_times = st.integers(1_262_304_000_000 // M, 4_000_000_000_000 // M).map(lambda m: m * M)
price_cents = st.integers(1, 100_000_000)  # $0.01 .. $1,000,000.00
satoshis = st.integers(0, 10**12)  # 0 .. 10,000 BTC


def cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}000000"


def btc_text(sats: int) -> str:
    return f"{sats // 10**8}.{sats % 10**8:08d}"


@st.composite
def candles(draw):
    """(open ms, open, high, low, close, volume, taker buy) as Binance's decimal strings."""
    o, c = draw(price_cents), draw(price_cents)
    h, lo = draw(st.integers(max(o, c), 100_000_000)), draw(st.integers(1, min(o, c)))
    v = draw(satoshis)
    return (draw(open_times), cents_text(o), cents_text(h), cents_text(lo), cents_text(c), btc_text(v),
            btc_text(draw(st.integers(0, v))))


def rest_row(c) -> list:
    t, o, h, lo, cl, v, tb = c
    return [t, o, h, lo, cl, v, t + M - 1, "123.45600000", 17, tb, "67.89000000", "0"]


def stream_event(c, closed: bool) -> dict:
    t, o, h, lo, cl, v, tb = c
    return {"e": "kline", "E": t + 1234, "s": "BTCUSDT", "k": {
        "t": t, "T": t + M - 1, "s": "BTCUSDT", "i": "1m", "f": 100, "L": 200, "o": o, "c": cl, "h": h, "l": lo,
        "v": v, "n": 101, "x": closed, "q": "1.00000000", "V": tb, "Q": "0.50000000", "B": "0"}}


def kline_of(c) -> Kline:
    t, *values = c
    return Kline(t, *(float(x) for x in values))


BAD_PRICES = [None, "", "abc", "NaN", "nan", "Infinity", "inf", "-1.00", "0", "0.00", "1000000.01", "1e3", " 1",
              "1_000", [], {}, True, False, math.nan, math.inf, -5.0, 0, 10**400, 2_000_000.0]
BAD_QTYS = [None, "", "abc", "NaN", "-0.10000000", "1e3", [], {}, True, math.nan, math.inf, -1, 21_000_001,
            "99999999999.0"]
BAD_TIMES = [None, "1710115200000", 1.5, True, -M, 0, 10**30, math.nan, [], 1_710_115_200_001]
junk_json = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=13) | st.dictionaries(st.text(max_size=3), inner, max_size=5),
                         max_leaves=12)

# -- REST klines ---------------------------------------------------------------------------------
@SETTINGS
@given(candles())
def test_a_valid_rest_kline_round_trips(c):
    assert parse_kline_row(rest_row(c)) == kline_of(c)


BAD_REST_FIELDS = st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4]), st.sampled_from(BAD_PRICES)),  # open, high, low, close
    st.tuples(st.sampled_from([5, 9]), st.sampled_from(BAD_QTYS)),  # volume, taker-buy base volume
    st.tuples(st.sampled_from([0, 6]), st.sampled_from(BAD_TIMES)))  # open and close time


@SETTINGS
@given(candles(), BAD_REST_FIELDS)
def test_a_rest_kline_with_a_bad_field_is_a_data_error(c, bad_field):
    index, bad = bad_field
    row = rest_row(c)
    row[index] = bad
    with pytest.raises(DataError):
        parse_kline_row(row)


def cents_of(text: str) -> int:
    whole, frac = text.split(".")
    return int(whole) * 100 + int(frac[:2])


@SETTINGS
@given(candles())
def test_a_high_below_the_body_or_a_low_above_it_is_a_data_error(c):
    t, o, h, lo, cl, v, tb = c
    top, bottom = max(cents_of(o), cents_of(cl)), min(cents_of(o), cents_of(cl))
    with pytest.raises(DataError):
        parse_kline_row(rest_row((t, o, h, cents_text(bottom + 1), cl, v, tb)))
    if top > 1:
        with pytest.raises(DataError):
            parse_kline_row(rest_row((t, o, cents_text(top - 1), lo, cl, v, tb)))


@SETTINGS
@given(candles(), st.integers(1, 10**6))
def test_a_taker_volume_above_the_volume_is_a_data_error(c, excess):
    t, o, h, lo, cl, v, tb = c
    with pytest.raises(DataError):
        parse_kline_row(rest_row((t, o, h, lo, cl, v, btc_text(int(v.replace(".", "")) + excess))))


@SETTINGS
@given(candles(), st.integers(0, 11))
def test_a_truncated_rest_kline_is_a_data_error(c, length):
    with pytest.raises(DataError):
        parse_kline_row(rest_row(c)[:length])


@ANY_JSON
@given(junk_json)
def test_any_json_as_klines_is_klines_or_a_data_error(payload):
    try:
        result = parse_klines(payload)
    except DataError:
        return
    assert all(isinstance(k, Kline) for k in result)


# -- stream events -------------------------------------------------------------------------------
@SETTINGS
@given(candles(), st.booleans(), st.sampled_from(["text", "bytes", "dict"]))
def test_a_valid_stream_event_round_trips(c, closed, form):
    event = stream_event(c, closed)
    message = {"text": orjson.dumps(event).decode(), "bytes": orjson.dumps(event), "dict": event}[form]
    assert parse_kline_event(message) == (kline_of(c), closed)


@SETTINGS
@given(candles(), st.sampled_from(["t", "T", "o", "h", "l", "c", "v", "V", "x", "s", "i"]))
def test_a_stream_event_missing_a_field_is_a_data_error(c, key):
    event = stream_event(c, True)
    del event["k"][key]
    with pytest.raises(DataError):
        parse_kline_event(orjson.dumps(event))


@SETTINGS
@given(candles(), st.sampled_from(["t", "T", "o", "h", "l", "c", "v", "V", "x"]),
       st.sampled_from([None, "", "NaN", "-1", "1e3", "true", [], {}, 10**30, math.nan]))
def test_a_stream_event_with_a_wrong_value_is_a_data_error(c, key, bad):
    event = stream_event(c, True)
    event["k"][key] = bad
    with pytest.raises(DataError):
        parse_kline_event(event)


@SETTINGS
@given(candles(), st.sampled_from(["e", "s", "k"]), st.sampled_from([None, "trade", "ETHUSDT", 1, [], {}]))
def test_a_stream_event_of_another_kind_is_a_data_error(c, key, bad):
    event = stream_event(c, False)
    event[key] = bad
    with pytest.raises(DataError):
        parse_kline_event(event)


@ANY_JSON
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40), junk_json))
def test_any_stream_message_is_an_event_or_a_data_error(message):
    try:
        candle, closed = parse_kline_event(message)
    except DataError:
        return
    assert isinstance(candle, Kline) and isinstance(closed, bool)


# -- depth ---------------------------------------------------------------------------------------
@st.composite
def books(draw):
    """A valid depth payload (best first) and the number of levels asked. The levels' gaps and
    quantities come from a drawn seed: a few draws instead of ~60 keep 200 examples quick."""
    best_bid, spread = draw(st.integers(1_000, 99_000_000)), draw(st.integers(1, 500))
    n_bids, n_asks, rng = draw(st.integers(1, 15)), draw(st.integers(1, 15)), random.Random(draw(st.integers(0, 2**32)))
    bids = list(itertools.accumulate((rng.randint(1, 50) for _ in range(n_bids - 1)), operator.sub, initial=best_bid))
    asks = list(itertools.accumulate((rng.randint(1, 50) for _ in range(n_asks - 1)), operator.add,
                                     initial=best_bid + spread))
    payload = {"lastUpdateId": draw(st.integers(0, 10**12)),
               "bids": [[cents_text(p), btc_text(rng.randint(1, 10**11))] for p in bids],
               "asks": [[cents_text(p), btc_text(rng.randint(1, 10**11))] for p in asks]}
    return payload, draw(st.integers(1, 20))


@SETTINGS
@given(books())
def test_a_valid_depth_sums_its_top_levels(book):
    payload, levels = book
    n = min(levels, len(payload["bids"]), len(payload["asks"]))
    assert parse_depth(payload, levels) == Depth(bid_qty=math.fsum(float(q) for _, q in payload["bids"][:n]),
                                                 ask_qty=math.fsum(float(q) for _, q in payload["asks"][:n]), levels=n)


BAD_LEVELS = [None, [], ["1.00"], ["1.00", "1.0", "2"], "1.00", {"price": "1"}, ["abc", "1.0"], ["NaN", "1.0"],
              ["-1.00", "1.0"], ["0", "1.0"], ["2000000.00", "1.0"], ["1.00", "0"], ["1.00", "-1"], ["1.00", "NaN"],
              ["1.00", None], [None, "1.0"], [True, "1.0"], ["1.00", "99999999.0"]]


@SETTINGS
@given(books(), st.sampled_from(["bids", "asks"]), st.integers(0, 19), st.sampled_from(BAD_LEVELS))
def test_a_depth_with_a_bad_level_is_a_data_error(book, side, index, bad):
    payload, levels = book
    n = min(levels, len(payload["bids"]), len(payload["asks"]))
    payload[side][index % n] = bad
    with pytest.raises(DataError):
        parse_depth(payload, levels)


@SETTINGS
@given(books(), st.sampled_from(["bids", "asks"]))
def test_a_depth_out_of_order_or_crossed_is_a_data_error(book, side):
    payload, levels = book
    n = min(levels, len(payload["bids"]), len(payload["asks"]))
    if n >= 2:
        payload[side][0], payload[side][1] = payload[side][1], payload[side][0]
    else:
        payload["asks"][0] = payload["bids"][0]
    with pytest.raises(DataError):
        parse_depth(payload, levels)


@SETTINGS
@given(books(), st.sampled_from(["bids", "asks", "lastUpdateId"]), st.sampled_from([None, "x", [], {}, -1, True]))
def test_a_depth_missing_or_mistyped_field_is_a_data_error(book, key, bad):
    payload, levels = book
    payload[key] = bad
    with pytest.raises(DataError):
        parse_depth(payload, levels)
    del payload[key]
    with pytest.raises(DataError):
        parse_depth(payload, levels)


@ANY_JSON
@given(junk_json, st.integers(1, 20))
def test_any_json_as_depth_is_a_depth_or_a_data_error(payload, levels):
    try:
        depth = parse_depth(payload, levels)
    except DataError:
        return
    assert isinstance(depth, Depth)


@given(st.integers(1, 5000))
def test_the_depth_limit_is_the_smallest_valid_one_covering_the_levels(levels):
    limit = depth_limit(levels)
    assert limit in DEPTH_LIMITS and limit >= levels
    assert all(smaller < levels for smaller in DEPTH_LIMITS if smaller < limit)


# -- CoinGecko -----------------------------------------------------------------------------------
usd = st.floats(min_value=0.01, max_value=1_000_000, allow_nan=False)


@SETTINGS
@given(usd)
def test_a_valid_simple_price_round_trips(price):
    assert parse_simple_price({"bitcoin": {"usd": price}}) == price


@SETTINGS
@given(st.sampled_from(BAD_PRICES))
def test_a_bad_simple_price_is_a_data_error(bad):
    for payload in ({"bitcoin": {"usd": bad}}, {"bitcoin": bad}, bad):
        with pytest.raises(DataError):
            parse_simple_price(payload)


@SETTINGS
@given(st.lists(st.tuples(st.integers(1_262_304_000_000, 4_000_000_000_000), usd), max_size=20))
def test_a_valid_market_chart_round_trips_sorted(points):
    assert parse_market_chart({"prices": [list(p) for p in points], "market_caps": []}) == sorted(points)


@SETTINGS
@given(st.lists(st.tuples(st.integers(1_262_304_000_000, 4_000_000_000_000), usd), min_size=1, max_size=10),
       st.integers(0, 9), st.sampled_from([None, [], [1], [1, 2, 3], "x", [None, 1.0]] + [[1_710_000_000_000, b] for b in
                                                                                           BAD_PRICES[:12]]))
def test_a_market_chart_with_a_bad_point_is_a_data_error(points, index, bad):
    prices = [list(p) for p in points]
    prices[index % len(prices)] = bad
    with pytest.raises(DataError):
        parse_market_chart({"prices": prices})


@ANY_JSON
@given(junk_json)
def test_any_json_as_coingecko_is_parsed_or_a_data_error(payload):
    for parse in (parse_simple_price, parse_market_chart):
        try:
            parse(payload)
        except DataError:
            pass


@SETTINGS
@given(usd, usd, st.integers(-NEAR_MS, NEAR_MS), st.integers(-NEAR_MS, NEAR_MS))
def test_the_coingecko_outcome_compares_the_prices_nearest_both_ends(first, last, start_off, end_off):
    start_ms, end_ms = 1_710_000_000_000, 1_710_000_300_000
    points = [(start_ms + start_off, first), (end_ms + end_off, last)]
    assert outcome(points, start_ms, end_ms) == ("UP" if last >= first else "DOWN")
    assert outcome(points[:1], start_ms, end_ms) is None  # one point cannot tell a move
    assert outcome([(start_ms - NEAR_MS - 1, first), (end_ms + end_off, last)], start_ms, end_ms) is None
