"""A backtest runs as month chunks (``fsm_bot.research.chunks``): where the chunks start and end, that each
is a backtest of its own month, and that the result is the same whatever runs the chunks. The data is 15
hours of the dev file around a month's end (``tests/data/btcusdt_1m_2023-04-30_month_end.parquet``): two
chunks of a few sessions each."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fsm_bot import backtest, wiring
from fsm_bot.config import Config
from fsm_bot.errors import StateDirError
from fsm_bot.research import chunks
from fsm_bot.wiring import parse_start

DATA = Path(__file__).resolve().parent / "data" / "btcusdt_1m_2023-04-30_month_end.parquet"
STEP = 300_000
CFG = Config()


def at(text: str) -> int:
    return parse_start(text, 60)


@pytest.fixture(scope="module")
def replay():
    return wiring.replay_source(DATA)


@pytest.fixture(scope="module")
def months(replay):
    _, feed = replay
    return chunks.split(*chunks.span(feed.first_ms, feed.last_ms, CFG, None, None))


@pytest.fixture(scope="module")
def one_worker(replay, months):
    source, feed = replay
    return chunks.run(source, CFG, months, workers=1, feed=feed)


def test_a_span_is_cut_at_each_months_first_midnight_utc():
    got = chunks.split(at("2024-11-15T10:05:00Z"), at("2025-02-02T00:00:00Z"))
    assert [c.label for c in got] == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert [c.first_ms for c in got] == [at("2024-11-15T10:05:00Z"), at("2024-12-01T00:00:00Z"),
                                         at("2025-01-01T00:00:00Z"), at("2025-02-01T00:00:00Z")]
    assert [c.end_ms for c in got] == [c.first_ms for c in got[1:]] + [at("2025-02-02T00:00:00Z")]


def test_the_span_starts_once_a_decision_has_its_candles_and_ends_with_the_data_or_the_last_session(replay):
    _, feed = replay
    first, end = chunks.span(feed.first_ms, feed.last_ms, CFG, None, None)
    assert first == at("2023-04-30T16:40:00Z")  # 15:00 and 100 minutes of candles, on the 5-minute grid
    assert end == feed.last_ms + 60_000 == at("2023-05-01T06:00:00Z")
    last = at("2023-05-01T02:00:00Z")
    assert chunks.span(feed.first_ms, feed.last_ms, CFG, None, last)[1] == last + CFG.intervals * STEP


def test_each_month_starts_fresh_at_its_first_interval_and_its_sessions_end_by_its_end(one_worker, months):
    sessions, decisions = one_worker
    assert [c.label for c in months] == ["2023-04", "2023-05"]
    for chunk in months:
        mine = sessions.filter(pl.col("chunk") == chunk.label)
        starts = [parse_start(s, 300) for s in mine.get_column("start")]
        assert starts[0] == chunk.first_ms
        assert all(s + CFG.intervals * STEP <= chunk.end_ms for s in starts)
        first = mine.row(0, named=True)
        assert first["final_capital"] - first["pnl"] == pytest.approx(float(CFG.capital_usd))
    assert decisions.height == CFG.intervals * sessions.height


def test_a_chunk_is_the_backtest_of_its_span(replay, months, one_worker):
    source, feed = replay
    may = months[1]
    sessions, decisions, _ = backtest.backtest(feed, CFG, may.first_ms, may.end_ms - CFG.intervals * STEP,
                                               source=source)
    got_sessions, got_decisions = chunks.run_chunk(source, CFG, may)
    assert_frame_equal(got_sessions.drop("chunk"), sessions)
    assert_frame_equal(got_decisions, decisions)
    mine = pl.col("session").is_in(sessions.get_column("session").to_list())
    assert_frame_equal(one_worker[1].filter(mine), decisions)


def test_one_and_two_local_workers_give_the_same_frames(replay, months, one_worker):
    source, _ = replay
    sessions, decisions = chunks.run(source, CFG, months, workers=2)
    assert_frame_equal(sessions, one_worker[0])
    assert_frame_equal(decisions, one_worker[1])


def test_a_chunk_too_short_for_a_session_has_no_rows(replay):
    source, _ = replay
    short = chunks.Chunk("2023-05", at("2023-05-01T05:00:00Z"), at("2023-05-01T06:00:00Z"))
    sessions, decisions = chunks.run_chunk(source, CFG, short)
    assert sessions.height == 0 and decisions.height == 0 and decisions.columns == backtest.DECISION_COLUMNS


def test_a_worker_refuses_a_data_file_other_than_the_sources(replay, months):
    source, _ = replay
    with pytest.raises(StateDirError, match="changed since"):
        chunks.run_chunk({**source, "sha256": "0" * 64}, CFG, months[0])


def summary_without_timing(out: Path) -> dict:
    summary = json.loads((out / "aggregate.json").read_text())
    for key in ("seconds", "intervals_per_second"):
        summary.pop(key)
    return summary


def test_the_command_writes_the_same_results_with_one_and_two_workers(fsm, tmp_path):
    for n in (1, 2):
        result = fsm("backtest", "--data", DATA, "--workers", n, "--out", tmp_path / str(n), "--json",
                     "--decisions", tmp_path / f"{n}.parquet")
        assert result.code == 0, result.err
    assert summary_without_timing(tmp_path / "1") == summary_without_timing(tmp_path / "2")
    assert_frame_equal(pl.read_parquet(tmp_path / "1" / "sessions.parquet"),
                       pl.read_parquet(tmp_path / "2" / "sessions.parquet"))
    assert_frame_equal(pl.read_parquet(tmp_path / "1.parquet"), pl.read_parquet(tmp_path / "2.parquet"))
    summary = summary_without_timing(tmp_path / "1")
    decisions = pl.read_parquet(tmp_path / "1.parquet")
    assert summary["evaluated_intervals"] == decisions.filter(pl.col("action") != "halted").height


def test_workers_and_a_cluster_together_are_refused(fsm, tmp_path):
    result = fsm("backtest", "--data", DATA, "--workers", 2, "--cluster", "tcp://127.0.0.1:1", "--out", tmp_path)
    assert result.code == 2 and "--cluster" in result.err
