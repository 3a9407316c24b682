"""Money is exact: property tests of the one rounding module and of the fills it rounds."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fsm_bot.matching import market_buy
from fsm_bot.money import FEE_STEP, dollars, fee_bound, pnl, round_fee, round_shares
from fsm_bot.ports import Level
from fsm_bot.views import number

prices = st.decimals("0.01", "0.99", places=2)
levels = st.lists(st.tuples(prices, st.decimals("5", "5000", places=2)), min_size=1, max_size=6)


def book(raw):
    return tuple(Level(p, s) for p, s in sorted(raw))  # best (lowest) ask first


@given(st.decimals("0", "100000", places=6))
def test_dollars_round_down_to_the_cent(x):
    d = dollars(x)
    assert d <= x < d + Decimal("0.01") and d == d.quantize(Decimal("0.01"))


@given(st.decimals("0.000001", "1000", places=8))
def test_fee_rounds_half_up_to_five_places_and_never_to_zero(raw):
    f = round_fee(raw)
    assert f >= FEE_STEP and f == f.quantize(FEE_STEP) and abs(f - raw) <= max(FEE_STEP / 2, FEE_STEP - raw)


@settings(max_examples=300)
@given(levels, st.decimals("1", "500", places=2), st.decimals("0.01", "0.99", places=2),
       st.decimals("0", "0.2", places=3), st.sampled_from(["FOK", "FAK"]))
def test_a_market_buy_spends_at_most_its_amount_within_its_limit(raw, amount, limit, rate, kind):
    asks = book(raw)
    fill = market_buy(asks, amount, limit, rate, kind)
    within = [lv for lv in asks if lv.price <= limit]
    available = sum((lv.price * lv.size for lv in within), Decimal(0))
    if kind == "FOK" and available < amount or not within:
        assert fill is None
        return
    assert fill is not None
    assert fill.spent_usd == (amount if kind == "FOK" else min(amount, available))
    assert fill.shares == round_shares(fill.shares) and fill.shares > 0
    assert within[0].price - Decimal("0.0001") <= fill.avg_price <= limit + Decimal("0.0001")
    assert fill.fee_usd <= fee_bound(fill.spent_usd, asks[0].price, rate) or rate == 0


@given(st.decimals("0.0001", "1000", places=4), st.decimals("1", "25", places=2), st.decimals("0", "5", places=5))
def test_binary_pnl_pays_a_dollar_a_share_on_a_win_and_nothing_on_a_loss(shares, stake, fee):
    assert pnl(True, shares, stake, fee) - pnl(False, shares, stake, fee) == shares
    assert pnl(False, shares, stake, fee) == -(stake + fee)


@given(st.decimals("-100000", "100000", places=5))
def test_money_survives_as_a_json_number(d):
    assert Decimal(repr(number(d))) == d
