"""PREDICT (seed LLD 9, test_prediction.py). SPEC 5 adds the imbalance to the seed's strict rule and
a tiered default; the seed's tests follow SPEC here, each saying which one it replaces."""

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from fsm_bot.config import Config
from fsm_bot.steps import Predicted, Skip
from states import predict

STRICT = Config(policy="strict")
TIERED = Config()


def snap(rsi: float, macd: float = 0.0, signal: float = 0.0, imbalance: float = 1.0):
    return SimpleNamespace(rsi=rsi, macd=macd, macd_signal=signal, imbalance=imbalance)


def test_strict_up_needs_oversold_rising_macd_and_buying_pressure():
    # replaces test_generate_signal_up (RSI=25, MACD bullish -> UP): SPEC also asks imbalance > 1.1
    step = predict.decide(snap(25, macd=1.0, signal=0.5, imbalance=1.2), STRICT)
    assert isinstance(step, Predicted) and (step.side, step.tier) == ("UP", "strict")


def test_strict_down_needs_overbought_falling_macd_and_selling_pressure():
    # replaces test_generate_signal_down (RSI=75, MACD bearish -> DOWN)
    step = predict.decide(snap(75, macd=-1.0, signal=-0.5, imbalance=0.8), STRICT)
    assert isinstance(step, Predicted) and step.side == "DOWN"


def test_strict_skips_a_neutral_market():
    # test_generate_signal_skip: RSI=50, neutral -> SKIP
    step = predict.decide(snap(50), STRICT)
    assert isinstance(step, Skip) and step.reason == "no_signal" and step.prediction == "SKIP"


def test_strict_does_not_fire_without_the_imbalance():
    assert isinstance(predict.decide(snap(25, macd=1.0, signal=0.5, imbalance=1.05), STRICT), Skip)
    assert isinstance(predict.decide(snap(75, macd=-1.0, signal=-0.5, imbalance=0.95), STRICT), Skip)


def test_strict_signals_carry_the_seeds_confidence():
    # test_confidence_scores: valid signals return 0.75
    assert predict.decide(snap(25, 1.0, 0.5, 1.2), STRICT).confidence == 0.75
    assert predict.decide(snap(75, -1.0, -0.5, 0.8), TIERED).confidence == 0.75


def test_tiered_falls_back_to_reversion_then_lean():
    assert (predict.decide(snap(32), TIERED).side, predict.decide(snap(32), TIERED).tier) == ("UP", "reversion")
    assert (predict.decide(snap(68), TIERED).side, predict.decide(snap(68), TIERED).tier) == ("DOWN", "reversion")
    assert (predict.decide(snap(45), TIERED).side, predict.decide(snap(45), TIERED).tier) == ("UP", "lean")
    assert (predict.decide(snap(50), TIERED).side, predict.decide(snap(50), TIERED).tier) == ("DOWN", "lean")
    assert predict.decide(snap(32), TIERED).confidence == TIERED.confidence_reversion
    assert predict.decide(snap(45), TIERED).confidence == TIERED.confidence_lean


@given(st.floats(0, 100), st.floats(-500, 500), st.floats(-500, 500), st.floats(0.001, 1000))
def test_tiered_decides_every_interval_and_strict_comes_first(rsi, macd, signal, imbalance):
    s = snap(rsi, macd, signal, imbalance)
    step = predict.decide(s, TIERED)
    assert isinstance(step, Predicted) and step.side in ("UP", "DOWN") and 0 < step.confidence < 1
    strict_step = predict.decide(s, STRICT)
    if isinstance(strict_step, Predicted):
        assert step == strict_step
    assert predict.decide(s, TIERED) == step  # deterministic
