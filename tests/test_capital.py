"""SIZE (seed LLD 9, test_capital.py) and the money it moves: the streak stake, its caps, the floor
cap with the fee included, and the venue's rounding."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fsm_bot.config import Config
from fsm_bot.matching import market_buy
from fsm_bot.money import fee_bound
from fsm_bot.ports import Level
from fsm_bot.steps import Approved, Halt, Predicted, Sized, Skip
from states import size
from tests.fakes import session_at
from tests.test_risk_rules import snapshot

UP = Predicted(side="UP", confidence=0.51, tier="lean", rule="test")


def approval(ask="0.50"):
    return Approved(ask=Decimal(ask), range_pct=0.0, secs_left=300.0, candle_age_secs=0.0, drawdown=Decimal(0))


def stake(streak=0, capital=None, ask="0.50"):
    step = size.decide(session_at(capital=capital, streak=streak), snapshot(up_ask=ask), UP, approval(ask))
    assert isinstance(step, Sized), step
    return step.stake_usd


def test_base_position_no_streak():
    assert stake(0) == Decimal("5.00")


def test_position_with_streak():
    assert stake(2) == Decimal("11.25")


def test_streak_stake_rounds_down_to_the_cent():
    assert stake(3) == Decimal("16.87")  # 5 x 1.5^3 = 16.875


def test_position_cap():
    assert stake(5) == Decimal("25.00")


def test_half_of_capital_caps_the_stake():
    cfg = Config(capital_usd=Decimal(30), floor_fraction=Decimal("0.1"))  # streak 4 wants 25.31; half is 15
    assert size.decide(session_at(cfg, streak=4), snapshot(), UP, approval()).stake_usd == Decimal("15.00")


def test_floor_cap_binds_before_half_of_capital():
    cfg = Config(capital_usd=Decimal(40))  # floor 28: (40 - 28) / (1 + 0.072 x 0.5) = 11.583
    assert size.decide(session_at(cfg, streak=4), snapshot(), UP, approval()).stake_usd == Decimal("11.58")


def test_floor_cap_keeps_stake_plus_fee_above_the_floor():
    s = stake(4, capital="72.00")
    assert s == Decimal("1.93") and s + fee_bound(s, Decimal("0.50"), Decimal("0.072")) <= Decimal(2)


def test_stake_below_the_minimum_order_halts():
    step = size.decide(session_at(capital="70.90"), snapshot(), UP, approval())
    assert isinstance(step, Halt) and step.cause == "below_min_order"


def test_insufficient_balance_skips():
    step = size.decide(session_at(), snapshot(), UP, approval(), balance_usd=Decimal("5.10"))
    assert isinstance(step, Skip) and step.reason == "insufficient_balance"
    assert isinstance(size.decide(session_at(), snapshot(), UP, approval(), balance_usd=Decimal("5.19")), Sized)


@settings(max_examples=300)
@given(capital=st.decimals("70.01", "500", places=2), streak=st.integers(0, 12),
       ask=st.decimals("0.01", "0.60", places=2), rate=st.decimals("0", "0.2", places=3))
def test_no_stake_breaks_the_sizing_rules(capital, streak, ask, rate):
    cfg = Config()
    view = session_at(cfg, capital=str(capital), streak=streak)
    s = size.stake_usd(view, ask, rate)
    assert s == s.quantize(Decimal("0.01"))
    assert s <= cfg.base_usd * cfg.multiplier ** streak and s <= cfg.cap_usd and s <= capital / 2
    room = capital - cfg.floor_usd
    assert s + fee_bound(s, ask, rate) <= room
    if s >= 1:  # what the venue actually charges never exceeds the bound, whatever the book
        fill = market_buy((Level(ask, Decimal(10_000)),), s, Decimal("0.60"), rate)
        assert fill is not None and fill.spent_usd == s and s + fill.fee_usd <= room
        assert capital + (-(s + fill.fee_usd)) >= cfg.floor_usd  # a loss stays above the floor
