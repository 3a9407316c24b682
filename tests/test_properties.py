"""Property tests over many seeds, start points, capitals and both policies, through the real
engine and simulated venue: no stake breaks the sizing rules, capital never falls below the floor,
and HALTED stops the session."""

from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fsm_bot import engine, journal, steps
from fsm_bot.adapters.sim import ReplayFeed
from fsm_bot.config import Config
from fsm_bot.money import fee_bound
from fsm_bot.backtest import sim_session
from tests.fakes import SAMPLE

FEED = ReplayFeed(SAMPLE)
GRID = 300_000
FIRST = -(-(FEED.first_ms + 100 * 60_000) // GRID) * GRID
LAST = FEED.last_ms - 18 * GRID


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), slot=st.integers(0, (LAST - FIRST) // GRID),
       capital=st.decimals("8", "300", places=2), policy=st.sampled_from(["tiered", "tiered", "strict"]))
def test_sessions_keep_every_risk_rule(tmp_path_factory, seed, slot, capital, policy):
    d = tmp_path_factory.mktemp("s")
    start = FIRST + slot * GRID
    cfg = Config(seed=seed, capital_usd=capital, policy=policy)
    final = sim_session(FEED, cfg, start, d)

    floor = cfg.floor_usd
    for before, after, step, rec in engine.sessions(journal.read(d / "journal.jsonl").records):
        assert after.capital >= floor
        if isinstance(step, steps.Sized):
            s, ask = step.stake_usd, before.current.approval.ask
            assert s == s.quantize(Decimal("0.01")) and s >= cfg.min_order_usd
            assert s <= min(cfg.base_usd * cfg.multiplier ** before.streak, cfg.cap_usd,
                            cfg.capital_fraction * before.capital)
            assert s + fee_bound(s, ask, cfg.fee_rate) <= before.capital - floor
        if isinstance(step, steps.Submitted):
            assert step.fill.spent_usd + step.fill.fee_usd <= before.capital - floor
        if before is not None and before.halted is not None:
            raise AssertionError(f"record {rec['seq']} after the halt")

    rows = final.rows()
    assert [r.interval_number for r in rows] == list(range(1, cfg.intervals + 1))
    assert final.capital == capital + sum((r.pnl for r in rows), Decimal(0))
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    assert len((d / "venue-orders.jsonl").read_text().splitlines()) == len(traded)
    event(f"halted: {final.halted is not None}")
    if final.halted:
        k = final.interval
        assert all(r.reason == f"halted:{final.halted}" and r.outcome == "SKIPPED" for r in rows[k - 1:])
        assert all(r.interval_number < k for r in traded)
