"""``fsm-bot risk``: the exact analysis follows the machine's own rules to the last unit, and the
Monte Carlo agrees with it within its standard error."""

import json
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fsm_bot import exact_risk as risk
from fsm_bot.config import Config
from fsm_bot.matching import market_buy
from fsm_bot.ports import Book, Level
from states import size
from tests.fakes import FakeFeed, FakeVenue, run, session_at

CFG = Config()


@settings(max_examples=300)
@given(capital=st.decimals("70", "400", places=5), streak=st.integers(0, 15),
       price=st.decimals("0.01", "0.99", places=2), rate=st.decimals("0", "0.2", places=3))
def test_the_stake_is_the_machines(capital, streak, price, rate):
    rules = risk.Rules.of(CFG, price, rate)
    mine = rules.stake(np.array([int(capital * risk.UNIT)]), np.array([streak]))[0]
    assert Decimal(int(mine)) / 100 == size.stake_usd(session_at(CFG, str(capital), streak), price, rate)


@given(stake=st.integers(100, 2500), price=st.decimals("0.01", "0.99", places=2), rate=st.decimals("0", "0.2", places=3))
def test_the_fill_is_the_matching_engines(stake, price, rate):
    shares, fee = risk.Rules.of(CFG, price, rate).fill(np.array([stake]))
    fill = market_buy((Level(price, Decimal(10**9)),), Decimal(stake) / 100, Decimal("0.99"), rate)
    assert (Decimal(int(shares[0])) / risk.SHARE, Decimal(int(fee[0])) / risk.UNIT) == (fill.shares, fill.fee_usd)


def engine_session(tmp_path, sequence, price, cfg):
    """The real engine, every trade at ``price``, the outcome of interval k forced to sequence[k]."""
    deep = Book(bids=(), asks=(Level(price, Decimal(10**7)),))
    venue, outcomes = FakeVenue(books=lambda start: (deep, deep), fee_rate=cfg.fee_rate), {}
    original = venue.submit

    def force(order):
        side, k = order.intent.side, order.intent.interval
        outcomes[k] = side if sequence[k - 1] else ("DOWN" if side == "UP" else "UP")
        return original(order)
    venue.submit = force
    return run(tmp_path, FakeFeed(lambda k: outcomes.get(k, "UP")), venue, cfg)


@settings(max_examples=12, deadline=None)
@given(sequence=st.lists(st.booleans(), min_size=18, max_size=18), price=st.sampled_from(["0.45", "0.51", "0.60"]))
def test_a_sequence_through_the_engine_ends_where_the_analysis_says(tmp_path_factory, sequence, price):
    cfg = Config(volatility_max=0.99)  # every interval trades, as the analysis assumes
    final = engine_session(tmp_path_factory.mktemp("e"), sequence, Decimal(price), cfg)
    lane = risk.run(risk.Rules.of(cfg, Decimal(price)), np.array([sequence]))
    assert Decimal(int(lane.capital[0])) / risk.UNIT == final.capital
    assert bool(lane.halted[0]) == (final.halted is not None)
    assert int(lane.trades[0]) == sum(r.outcome != "SKIPPED" for r in final.trades)


def test_every_sequence_is_counted_once():
    r = risk.exact(CFG, 0.5, Decimal("0.51"))
    assert r["sequences"] == 2 ** 18
    assert abs(sum(r["distribution"]["probability"]) - 1) < 1e-12
    assert r["min_final"] >= 70 and 0 < r["p_halt"] < 1 and r["p_loss"] > r["p_halt"]


def test_the_monte_carlo_agrees_within_its_standard_error():
    for w, price in [(0.5, "0.51"), (0.42, "0.45"), (0.58, "0.60")]:
        exact = risk.exact(CFG, w, Decimal(price))
        mc = risk.monte_carlo(CFG, w, Decimal(price), sessions=200_000, seed=7)
        assert abs(mc["p_halt"] - exact["p_halt"]) <= 4 * mc["p_halt_se"]
        assert abs(mc["expected_final"] - exact["expected_final"]) <= 4 * mc["expected_final_se"]


def test_halt_probability_is_an_exact_fraction_at_a_decimal_win_rate():
    r = risk.exact(CFG, 0.5, Decimal("0.51"))
    num, den = map(int, r["p_halt_exact"].split("/"))
    assert num / den == r["p_halt"] and den == 2 ** 16  # a dyadic rational: sequences counted, not sampled


def test_a_better_price_or_a_higher_win_rate_never_hurts():
    rows = risk.analyse(CFG, (0.45, 0.55), (Decimal("0.45"), Decimal("0.55")), sessions=0)
    by = {(r["win_rate"], r["price"]): r for r in rows}
    assert by[(0.55, 0.45)]["expected_final"] > by[(0.45, 0.45)]["expected_final"]
    assert by[(0.45, 0.45)]["expected_final"] > by[(0.45, 0.55)]["expected_final"]
    assert by[(0.55, 0.45)]["p_halt"] < by[(0.55, 0.55)]["p_halt"]


def test_the_risk_command_prints_json(fsm, tmp_path):
    result = fsm("risk", "--win-rate", "0.5", "--price", "0.51", "--json", "--plot", tmp_path / "r.png")
    rows = json.loads(result.out)
    assert result.code == 0 and len(rows) == 1
    assert {"win_rate", "price", "p_halt", "p_loss", "expected_final", "median_final",
            "max_drawdown_p95"} <= set(rows[0]) and rows[0]["monte_carlo_agrees"]
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_the_risk_command_refuses_a_bad_number(fsm):
    result = fsm("risk", "--win-rate", "1.5")
    assert result.code == 2 and "--win-rate" in result.err
