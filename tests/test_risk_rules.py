"""RISK (seed LLD 9, test_risk.py), with SPEC 5's rules: the floor is measured from the starting
capital and capital <= 70% of it halts; stale data, too little time, volatility and the price
guard skip."""

import dataclasses
from decimal import Decimal

from fsm_bot.steps import Approved, Halt, Predicted, Skip
from states import risk
from tests.fakes import START, session_at

UP = Predicted(side="UP", confidence=0.51, tier="lean", rule="test")


def snapshot(range_pct=0.01, up_ask="0.51", last_candle_ms=START - 60_000):
    from fsm_bot.steps import Snapshot
    return Snapshot(interval=1, start_ms=START, end_ms=START + 300_000, candle_count=100, last_candle_ms=last_candle_ms,
                    close=70000.0, rsi=45.0, macd=0.0, macd_signal=0.0, imbalance=1.0, imbalance_source="test",
                    range_pct=range_pct, slug="s", condition_id="c", up_token="u", down_token="d",
                    accepting_orders=True, up_bid=None, up_ask=None if up_ask is None else Decimal(up_ask),
                    down_bid=None, down_ask=Decimal("0.50"), up_depth_usd=Decimal(1000), down_depth_usd=Decimal(1000),
                    tick=Decimal("0.01"), min_order_usd=Decimal(1), fee_rate=Decimal("0.072"))


def test_drawdown_within_limit_is_approved():
    # test_drawdown_within_limit: $75 capital -> approved
    assert isinstance(risk.decide(session_at(capital="75"), snapshot(), UP, START), Approved)


def test_capital_at_the_floor_halts():
    # replaces test_drawdown_exceeds_limit ($69 -> rejected): SPEC caps every stake so that capital can
    # never fall below the $70 floor, and capital <= 70% of the start halts the session
    step = risk.decide(session_at(capital="70.00"), snapshot(), UP, START)
    assert isinstance(step, Halt) and step.cause == "drawdown"
    assert isinstance(risk.decide(session_at(capital="70.01"), snapshot(), UP, START), Approved)


def test_volatility_normal_is_approved():
    # test_volatility_normal: 2% range -> approved
    assert isinstance(risk.decide(session_at(), snapshot(range_pct=0.02), UP, START), Approved)


def test_volatility_excessive_skips():
    # test_volatility_excessive: 4% range -> rejected
    step = risk.decide(session_at(), snapshot(range_pct=0.04), UP, START)
    assert isinstance(step, Skip) and step.reason == "volatility" and step.prediction == "UP"


def test_stale_candles_skip():
    fresh = risk.decide(session_at(), snapshot(), UP, START + 120_000)
    stale = risk.decide(session_at(), snapshot(), UP, START + 121_000)
    assert isinstance(fresh, Approved) and isinstance(stale, Skip) and stale.reason == "stale_data"


def test_less_than_a_minute_left_skips():
    assert isinstance(risk.decide(session_at(), snapshot(last_candle_ms=START + 180_000), UP, START + 240_000), Approved)
    step = risk.decide(session_at(), snapshot(last_candle_ms=START + 180_000), UP, START + 240_001)
    assert isinstance(step, Skip) and step.reason == "too_late"


def test_price_guard_skips_an_ask_above_the_cap():
    assert isinstance(risk.decide(session_at(), snapshot(up_ask="0.60"), UP, START), Approved)
    step = risk.decide(session_at(), snapshot(up_ask="0.61"), UP, START)
    assert isinstance(step, Skip) and step.reason == "price_guard"


def test_an_empty_book_skips():
    step = risk.decide(session_at(), snapshot(up_ask=None), UP, START)
    assert isinstance(step, Skip) and step.reason == "no_liquidity"


def test_approval_records_what_was_checked():
    step = risk.decide(dataclasses.replace(session_at(), capital=Decimal(90)), snapshot(), UP, START + 1000)
    assert step == Approved(ask=Decimal("0.51"), range_pct=0.01, secs_left=299.0, candle_age_secs=1.0,
                            drawdown=Decimal("0.1"))
