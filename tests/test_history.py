"""The history checker (tests/history.py) over simulated runs whose fills fail on chain or are never mined:
the bot's books keep its three rules, and a deliberately broken adapter that reports a FAILED trade as
CONFIRMED (so a void is booked as a win or a loss) is caught."""

import dataclasses
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot import engine, journal, wiring
from fsm_bot.adapters.ledger import Chain
from fsm_bot.adapters.sim import SimClock, SimVenue
from fsm_bot.config import Config
from fsm_bot.statedir import JOURNAL, LEDGER
from tests import history

CHAIN_CFG = Config(sim_failed_share=0.3, sim_unmined_share=0.2)


class ReportsFailedAsConfirmed(SimVenue):
    """A broken adapter: the chain says FAILED, it says CONFIRMED."""

    def trades(self, order, order_id, known):
        return tuple(dataclasses.replace(t, status="CONFIRMED") if t.status == "FAILED" else t
                     for t in super().trades(order, order_id, known))


def run(d: Path, cfg: Config, venue_class=SimVenue):
    source, feed = wiring.replay_source(None)
    start = wiring.first_sim_start(feed, cfg, None, True)
    clock = SimClock(start)
    chain = Chain(cfg.seed, cfg.sim_failed_share, cfg.sim_unmined_share, cfg.sim_confirm_secs)
    venue = venue_class(feed, clock, d / LEDGER, cfg.seed, cfg.interval_minutes, cfg.fee_rate, cfg.min_order_usd,
                        chain=chain)
    jr = journal.Journal(d / JOURNAL)
    session = engine.begin(jr, "sim", cfg, source, start, start)
    observers = engine.session_observers(d, venue, logging.getLogger("fsm_bot.quiet"))
    final = engine.Engine(session, jr, clock, feed, venue, observers=observers).run()
    jr.close()
    venue.close()
    return final, chain, feed


def won(feed):
    def result(market_slug: str, side: str):
        start = int(market_slug.rsplit("-", 1)[1]) * 1000
        outcome = feed.reference(start, start + 300_000)
        return None if outcome is None else outcome == side
    return result


def test_a_session_whose_fills_fail_on_chain_keeps_every_rule(tmp_path):
    final, chain, feed = run(tmp_path, CHAIN_CFG)
    rows = history.rows(tmp_path)
    reasons = {r["reason"] for r in rows if r["outcome"] == "VOID"}
    assert reasons == {"trade_failed", "never_mined"}, reasons
    assert all(r["position_size"] == r["pnl"] == r["shares"] == r["fee"] == 0 and r["order_id"] for r in rows
               if r["outcome"] == "VOID")
    venue = history.sim_orders(tmp_path, chain)
    assert {o.status for o in venue} == {"CONFIRMED", "FAILED", "MATCHED"}
    assert history.check(tmp_path, venue, won(feed)) == []
    assert final.capital == Decimal(100) + sum((Decimal(str(r["pnl"])) for r in rows), Decimal(0))


def test_a_void_does_not_move_the_streak(tmp_path):
    run(tmp_path, CHAIN_CFG)
    rows = history.rows(tmp_path)
    for before, row in zip(rows, rows[1:]):
        if row["outcome"] == "VOID":
            assert row["win_streak"] == before["win_streak"]


def test_the_checker_catches_an_adapter_that_books_a_failed_trade_as_held(tmp_path):
    run(tmp_path, CHAIN_CFG, ReportsFailedAsConfirmed)
    venue = history.sim_orders(tmp_path, Chain(1, 0.3, 0.2, 20.0))
    failed = [o for o in venue if o.status == "FAILED"]
    problems = history.check(tmp_path, venue, won(feed=wiring.replay_source(None)[1]))
    assert failed and any("ended FAILED on chain but is booked" in p for p in problems)
    assert any(p.startswith("capital ") for p in problems)


def test_every_record_of_a_session_with_voids_replays(tmp_path):
    run(tmp_path, CHAIN_CFG)
    recs = journal.read(tmp_path / JOURNAL).records
    assert {"trade_updated", "settled"} <= {r["trigger"] for r in recs}
    assert engine.replay_check(recs) == len(recs) - 1
    updates = [r["data"]["trades"][0]["status"] for r in recs if r["trigger"] == "trade_updated"]
    assert {"MINED", "CONFIRMED", "RETRYING", "FAILED"} <= set(updates)


@pytest.mark.parametrize("share", ["failed", "unmined"])
def test_the_chain_shares_are_checked_at_start(share):
    from fsm_bot.config import validated
    from fsm_bot.errors import ConfigError
    with pytest.raises(ConfigError, match=f"sim_{share}_share"):
        validated(Config(**{f"sim_{share}_share": 1.5}))


def test_the_ledger_records_each_fate(tmp_path):
    run(tmp_path, CHAIN_CFG)
    fates = [json.loads(line)["fate"] for line in (tmp_path / LEDGER).read_text().splitlines()]
    assert set(fates) == {"confirmed", "failed", "unmined"}
