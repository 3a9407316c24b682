"""Property tests of the live venue's parsers: whatever Polymarket answers, the result is an fsm_bot
type or an fsm_bot error -- never another exception, never an ``Accepted`` with a bad number."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fsm_bot.adapters.polymarket import errors, orders
from fsm_bot.adapters.polymarket.account import collateral
from fsm_bot.errors import BotError
from fsm_bot.ports import Accepted, Rejected

KEY = "0x" + "ab" * 32
PAYLOAD = {"order": {"salt": 1, "maker": "0x" + "11" * 20, "signer": "0x" + "11" * 20, "tokenId": "123",
                     "makerAmount": "5000000", "takerAmount": "8333300", "side": "BUY", "signatureType": 3,
                     "timestamp": "1", "metadata": "0x" + "00" * 32, "builder": "0x" + "00" * 32,
                     "expiration": "0", "signature": "0x"},
           "owner": "k", "orderType": "FOK", "deferExec": False}
RATE = Decimal("0.072")

weird = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                  st.text(max_size=12), st.sampled_from(["NaN", "inf", "-1", "1e999", "0", "", "5", "8.3333", "0.6"]),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
numbers = st.one_of(  # what a venue's number field can hold: exponents, Unicode digits, huge and tiny values
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.builds(lambda m, e: f"{m}E{e}", st.integers(-99999, 99999), st.integers(-400, 400)),
    st.text(alphabet="0123456789.٠١٢٣٤٥٦٧٨٩０１２３-+eE", min_size=1, max_size=12),
    st.sampled_from(["8.3166E-26", "1E+400", "0.000001", "1e-999999999", "99999999999999999999999", "５",
                     "٣.٥", "1_000", " 5 ", "5\n", "0x10"]))
statuses = st.one_of(st.sampled_from(["matched", "live", "delayed", "unmatched", "MATCHED", ""]), weird)
replies = st.one_of(weird, st.fixed_dictionaries({}, optional={
    "success": st.one_of(st.booleans(), weird), "errorMsg": st.one_of(st.just(""), weird,
                                                                      st.sampled_from([m for m, _ in errors.REJECT_MESSAGES])),
    "orderID": st.one_of(st.just(KEY), weird), "status": statuses,
    "makingAmount": st.one_of(weird, numbers), "takingAmount": st.one_of(weird, numbers),
    "tradeIDs": st.one_of(weird, st.lists(st.one_of(st.text(max_size=8), weird), max_size=3))}))


def assert_sound(result: Accepted | Rejected) -> None:
    if isinstance(result, Accepted):
        f = result.fill
        assert f.shares > 0 and 0 < f.spent_usd <= Decimal(5)
        assert Decimal(0) < f.avg_price < Decimal(1) and f.fee_usd >= 0
        assert f.spent_usd / f.shares <= Decimal(5_000_000) / Decimal(8_333_300) + Decimal("0.0001")
    else:
        assert isinstance(result, Rejected) and result.reason


@settings(deadline=None, max_examples=10_000)
@given(replies)
@example({"success": True, "status": [], "makingAmount": None, "takingAmount": None})  # once a TypeError
@example({"success": True, "status": "matched", "orderID": KEY, "makingAmount": "5",
          "takingAmount": "8.3166E-26"})  # once a decimal.InvalidOperation after the venue accepted
def test_post_reply_parser_never_escapes_or_accepts_a_bad_fill(body):
    try:
        result = orders.parse_post_reply(body, KEY, RATE, PAYLOAD)
    except BotError:
        return
    assert_sound(result)


@settings(deadline=None, max_examples=10_000)
@given(st.integers(100, 599), replies)
def test_post_status_mapping_is_a_reason_or_a_typed_error(status, body):
    try:
        refused = errors.submit_status(status, body)
    except BotError:
        return
    assert refused is None if 200 <= status < 300 else isinstance(refused, str) and refused


trade_rows = st.fixed_dictionaries({}, optional={
    "id": weird, "taker_order_id": st.one_of(st.just(KEY), weird),
    "status": st.one_of(st.sampled_from(["MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"]), weird),
    "size": st.one_of(weird, numbers), "price": st.one_of(weird, numbers),
    "fee_rate_bps": weird})
trade_bodies = st.one_of(weird, st.lists(st.one_of(trade_rows, weird), max_size=4),
                         st.fixed_dictionaries({"data": st.lists(st.one_of(trade_rows, weird), max_size=4)},
                                               optional={"next_cursor": weird}))
order_bodies = st.one_of(weird, st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.just(KEY), weird), "status": st.one_of(st.sampled_from(["LIVE", "MATCHED", "CANCELED",
                                                                               "UNMATCHED"]), weird),
    "size_matched": weird}))


@settings(deadline=None, max_examples=10_000)
@given(order_bodies, trade_bodies)
def test_lookup_parsers_never_escape_or_accept_a_bad_fill(order_body, trades_body):
    try:
        state = orders.parse_open_order(order_body, KEY)
        rows, cursor = orders.trades_page(trades_body, "test")
        trades = orders.parse_trades(rows, {KEY.lower()})
        result = orders.lookup_result(KEY, state, trades, orders.trades_fee_rate(trades) or RATE)
        assert cursor is None or isinstance(cursor, str)
    except BotError:
        return
    if isinstance(result, Accepted):
        f = result.fill
        assert f.shares > 0 and f.spent_usd > 0 and Decimal(0) < f.avg_price < Decimal(1) and f.fee_usd >= 0
        assert not result.settled and all(t.status in orders.TRADE_STATUSES for t in result.trades)
    else:
        assert result is None or (isinstance(result, Rejected) and result.reason)


@settings(deadline=None, max_examples=10_000)
@given(st.one_of(weird, st.fixed_dictionaries({}, optional={"balance": st.one_of(weird, numbers), "allowances": st.one_of(
    weird, st.dictionaries(st.text(max_size=4), st.one_of(weird, numbers), max_size=2))})))
@example({"balance": "٣٠٠٠٠٠٠", "allowances": {}})  # Unicode digits: str.isdigit says yes, the venue never sends them
def test_balance_parser_is_a_non_negative_decimal_or_a_typed_error(body):
    try:
        balance, allowances = collateral(body)
    except BotError:
        return
    assert isinstance(balance, Decimal) and balance.is_finite() and balance >= 0
    assert all(isinstance(v, int) and v >= 0 for v in allowances.values())
    assert str(body["balance"]).isascii()


def test_a_well_formed_matched_reply_is_accepted_with_the_fee_of_money():
    body = {"success": True, "errorMsg": "", "orderID": KEY, "status": "matched", "makingAmount": "5",
            "takingAmount": "10.204"}
    result = orders.parse_post_reply(body, KEY, RATE, PAYLOAD)
    assert isinstance(result, Accepted)
    assert (result.fill.shares, result.fill.spent_usd, result.fill.avg_price) == (Decimal("10.204"), 5, Decimal("0.49"))
    assert result.fill.fee_usd == Decimal("0.18360")


def test_documented_error_strings_map_to_reasons():
    cases = {"order couldn't be fully filled. FOK orders are fully filled or killed.": "fok_not_filled",
             "not enough balance / allowance": "insufficient_balance",
             "the market is not yet ready to process new orders": "market_not_ready",
             "INVALID_ORDER_MIN_SIZE": "below_min_size", "INVALID_ORDER_MIN_TICK_SIZE": "invalid_tick",
             "INVALID_ORDER_DUPLICATED: Same order has already been placed, can't be placed again": "duplicate"}
    for message, code in cases.items():
        assert errors.reason(message) == code, message


@settings(deadline=None, max_examples=10_000)
@given(st.integers(min_value=0, max_value=10 ** 15))
def test_any_whole_balance_in_units_is_read_exactly_in_dollars(units):
    balance, _ = collateral({"balance": str(units), "allowances": {}})
    assert balance == Decimal(units) / Decimal(10 ** 6)  # a $100,000 wallet is 1e11 units, and still fine
