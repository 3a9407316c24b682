"""``fsm-bot backtest`` runs the very machine of ``--sim``: its decisions equal those of ``--sim``
sessions started at the same points."""

import json
from decimal import Decimal

import polars as pl
import pytest

from fsm_bot import backtest
from fsm_bot.adapters.sim import BUNDLED, ReplayFeed, load_candles
from fsm_bot.config import Config
from fsm_bot.wiring import parse_start

FEED = ReplayFeed(load_candles(BUNDLED))
FIRST, LAST = parse_start("2024-03-12T00:00:00Z", 300), parse_start("2024-03-12T16:00:00Z", 300)


@pytest.fixture(scope="module")
def result():
    return backtest.backtest(FEED, Config(), FIRST, LAST)


def trades(d):
    return [json.loads(line, parse_float=Decimal) for line in (d / "trades.jsonl").read_text().splitlines()]


def test_backtest_decisions_equal_sim_sessions_started_at_the_same_points(result, fsm, tmp_path):
    sessions, decisions, _ = result
    halted = sessions.filter(pl.col("halted") != "")
    sample = {sessions.row(0, named=True)["session"], sessions.row(-1, named=True)["session"]}
    if halted.height:
        sample.add(halted.row(0, named=True)["session"])
    for row in sessions.filter(pl.col("session").is_in(sorted(sample))).iter_rows(named=True):
        d = tmp_path / row["session"]
        assert fsm("start", "--sim", "--state-dir", d, "--start", row["start"]).code in (0, 3)
        sim = trades(d)
        mine = decisions.filter(pl.col("session") == row["session"]).sort("interval").to_dicts()
        assert len(sim) == len(mine) == 18
        for s, b in zip(sim, mine):
            assert s["timestamp"] == b["interval_start"] and s["interval_number"] == b["interval"]
            assert s["outcome"] == b["outcome"]
            assert Decimal(str(b["capital"])) == s["capital_after"] and Decimal(str(b["pnl"])) == s["pnl"]
            if s["outcome"] == "SKIPPED":
                assert b["action"] == ("halted" if s["reason"].startswith("halted:") else f"skip:{s['reason']}")
            else:
                assert (b["action"], b["signal"]) == ("trade", s["prediction"])
                assert Decimal(str(b["stake"])) == s["position_size"] and Decimal(str(b["fill_price"])) == s["odds"]


def test_sessions_run_back_to_back_and_a_halt_starts_the_next_at_the_following_interval(result):
    sessions, _, _ = result
    starts = [parse_start(s, 300) for s in sessions.get_column("start")]
    ran = sessions.get_column("intervals_run").to_list()
    assert starts[0] == FIRST
    for a, b, n in zip(starts, starts[1:], ran):
        assert b == a + n * 300_000
    assert any(h for h in sessions.get_column("halted")) and any(r < 18 for r in ran)


def test_every_interval_of_every_session_has_a_decision_row(result):
    sessions, decisions, _ = result
    assert decisions.height == 18 * sessions.height
    counts = decisions.group_by("session").len()
    assert set(counts.get_column("len")) == {18}
    halted_rows = decisions.filter(pl.col("action") == "halted")
    assert halted_rows.height == sum(18 - n for n in sessions.get_column("intervals_run"))
    traded = decisions.filter(pl.col("action") == "trade")
    assert traded.select(pl.col("rsi").is_not_null().all(), pl.col("stake").is_not_null().all()).row(0) == (True, True)


def test_the_aggregate_reports_what_a_trader_needs(result):
    sessions, decisions, _ = result
    agg = backtest.aggregate(sessions, decisions, Config())
    assert agg["sessions"] == sessions.height and agg["trades"] == decisions.filter(pl.col("action") == "trade").height
    lo, hi = agg["hit_rate_wilson95"]
    assert lo < agg["hit_rate"] < hi
    assert agg["final_capital"]["p05"] <= agg["final_capital"]["p50"] <= agg["final_capital"]["p95"]
    assert agg["halts"] == sessions.filter(pl.col("halted") != "").height
    assert abs(agg["pnl_total"] - float(decisions.get_column("pnl").sum())) < 1e-6


def test_the_backtest_command_writes_its_files(fsm, tmp_path):
    out = tmp_path / "out"
    result = fsm("backtest", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-13T06:00:00Z", "--out", out,
                 "--decisions", tmp_path / "d.csv", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["sessions"] >= 4 and (out / "sessions.parquet").exists()
    assert (out / "final_capital.png").read_bytes()[:4] == b"\x89PNG" and (out / "hit_rate_by_month.png").exists()
    assert pl.read_csv(tmp_path / "d.csv").columns == backtest.DECISION_COLUMNS


def test_a_span_too_short_for_a_session_is_refused(fsm, tmp_path):
    result = fsm("backtest", "--from", "2024-03-14T23:00:00Z", "--out", tmp_path)
    assert result.code == 2 and "no whole session" in result.err
