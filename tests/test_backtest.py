"""``fsm-bot backtest`` runs the very machine of ``--sim``: its decisions equal those of ``--sim``
sessions started at the same points."""

import json
import re
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from fsm_bot import backtest, engine, journal
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


def test_sessions_run_back_to_back_and_after_a_halt_the_next_starts_at_the_halting_interval(result):
    sessions, _, _ = result
    starts = [parse_start(s, 300) for s in sessions.get_column("start")]
    ran = sessions.get_column("intervals_run").to_list()
    assert starts[0] == FIRST
    for a, b, n in zip(starts, starts[1:], ran):
        assert b == a + n * 300_000
    assert any(h for h in sessions.get_column("halted")) and any(r < 18 for r in ran)


def test_a_backtest_session_makes_the_records_of_the_sim_session_and_replays(result, fsm, tmp_path):
    """The records kept in memory are the ``--sim`` session's journal, record for record after the begin record
    (which names the data and the session's place in a chain), and the replay check re-decides every one."""
    sessions, _, _ = result
    start = sessions.row(-1, named=True)["start"]
    assert fsm("start", "--sim", "--state-dir", tmp_path, "--start", start).code in (0, 3)
    sim = journal.read(tmp_path / "journal.jsonl").records
    source = sim[0]["data"]["source"]
    kept = journal.MemoryJournal()
    final = backtest.sim_session(FEED, Config(), parse_start(start, 300), source=source, jr=kept,
                                 windows=backtest.decision_windows(FEED, Config(), FIRST, LAST))
    mine = kept.records()
    assert final.session == sim[0]["session"] and len(mine) == len(sim)
    assert [{k: v for k, v in r.items() if k != "crc"} for r in mine[1:]] == [
        {k: v for k, v in r.items() if k != "crc"} for r in sim[1:]]
    assert engine.replay_check(mine) == len(mine) - 1


def test_the_summary_counts_only_evaluated_intervals_per_second(fsm, tmp_path):
    result = fsm("backtest", "--capital", "10", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-13T06:00:00Z",
                 "--out", tmp_path / "out", "--decisions", tmp_path / "d.parquet", "--json")
    assert result.code == 0, result.err
    summary, decisions = json.loads(result.out), pl.read_parquet(tmp_path / "d.parquet")
    halted = decisions.filter(pl.col("action") == "halted").height
    assert halted > 0 and summary["evaluated_intervals"] == decisions.height - halted == backtest.evaluated(decisions)
    seconds, evaluated = summary["seconds"], summary["evaluated_intervals"]  # seconds: rounded to 10 ms
    slowest, fastest = evaluated / (seconds + 0.005), evaluated / max(seconds - 0.005, 1e-3)
    assert slowest - 1 <= summary["intervals_per_second"] <= fastest + 1



def test_the_console_reads_evaluated_intervals_skips_and_a_span_the_data_cut(fsm, tmp_path):
    """A halted session's rest is not counted as run, the skips are shown, and a --to past the data's end says
    so; aggregate.json records what ran on what (span, data file and digest, config)."""
    result = fsm("backtest", "--capital", "10", "--from", "2024-03-13T00:00:00Z", "--to", "2024-06-01T00:00:00Z",
                 "--out", tmp_path / "out")
    assert result.code == 0, result.err
    summary = json.loads((tmp_path / "out" / "aggregate.json").read_text())
    halted = summary["intervals"] - summary["evaluated_intervals"]
    assert halted > 0 and f"{summary['evaluated_intervals']:,} intervals evaluated ({halted:,} more a halt" in result.out
    assert "note: --to 2024-06-01T00:00:00Z: sessions run from 2024-03-13T00:00:00Z to" in result.err
    assert "the data covers 2024-03-11T00:00:00Z to 2024-03-15T00:00:00Z" in result.err
    assert summary["span"]["first_session"] == "2024-03-13T00:00:00Z" and summary["span"]["last_session"] < "2024-03-15"
    assert summary["data"]["data"] == "bundled" and len(summary["data"]["sha256"]) == 64
    assert Config.from_json(summary["config"]).capital_usd == Decimal(10)
    skips = summary["skip_reasons"]
    if skips:
        assert f"skipped         {sum(skips.values()):,}: " in result.out
    else:
        assert "skipped" not in result.out


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


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="/proc takes no new file, whoever asks")
@pytest.mark.parametrize("flag", ["--out", "--decisions"])
def test_an_output_nothing_can_be_written_in_is_refused_before_the_run(fsm, tmp_path, flag, monkeypatch):
    """/proc refuses a new file even to root (whom permissions let through): refused at start, naming the flag."""
    ran = []
    monkeypatch.setattr("fsm_bot.research.chunks.run", lambda *a, **k: ran.append(a))
    out = {"--out": ["--out", "/proc/fsm-bot-out"], "--decisions": ["--out", tmp_path / "o", "--decisions",
                                                                     "/proc/fsm-bot-d.csv"]}[flag]
    result = fsm("backtest", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-13T06:00:00Z", *out)
    assert result.code == 2 and f"{flag} /proc/fsm-bot" in result.err and "cannot write in /proc" in result.err
    assert ran == [] and not (tmp_path / "o").exists()


def test_a_span_too_short_for_a_session_is_refused(fsm, tmp_path):
    result = fsm("backtest", "--from", "2024-03-14T23:00:00Z", "--out", tmp_path)
    assert result.code == 2 and "no whole session" in result.err


def test_the_aggregate_money_is_the_exact_sum_of_the_sessions(result):
    sessions, decisions, _ = result
    agg = backtest.aggregate(sessions, decisions, Config())
    pnl = sum((Decimal(repr(x)) for x in sessions.get_column("pnl")), Decimal(0))
    fees = sum((Decimal(repr(x)) for x in sessions.get_column("fees")), Decimal(0))
    assert (Decimal(repr(agg["pnl_total"])), Decimal(repr(agg["fees_total"]))) == (pnl, fees)
    assert Decimal(repr(agg["pnl_gross_total"])) == pnl + fees
    traded = decisions.filter(pl.col("action") == "trade")
    price = (sum(Decimal(repr(x)) for x in traded.get_column("fill_price")) / traded.height).quantize(Decimal("0.0001"))
    assert agg["avg_entry_price"] == float(price)
    assert agg["breakeven_hit_rate"] == float(price * (1 + Decimal("0.072") * (1 - price)))
    lo, hi = agg["hit_rate_wilson95"]
    be = agg["breakeven_hit_rate"]
    assert agg["vs_breakeven"] == ("above" if lo > be else "below" if hi < be else "not distinguishable from")


def test_the_backtest_page_leads_with_the_result(fsm, tmp_path):
    out = tmp_path / "out"
    result = fsm("backtest", "--from", "2024-03-13T00:00:00Z", "--to", "2024-03-13T06:00:00Z", "--out", out, "--json")
    assert result.code == 0, result.err
    agg = json.loads(result.out)
    page = (out / "report.html").read_text()
    assert '<meta name="viewport"' in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/png;base64,") == len(list(out.glob("*.png"))) >= 2
    head = page[page.index('<section id="result">'):page.index("</section>")]
    for name, key in (("pnl", "pnl_total"), ("fees", "fees_total"), ("gross", "pnl_gross_total")):
        exact = re.search(rf'id="{name}">.*?data-exact="([^"]+)"', head, re.S).group(1)
        assert Decimal(exact) == Decimal(repr(agg[key])), name
    median = Decimal(re.search(r'id="median">.*?data-exact="([^"]+)"', head, re.S).group(1))
    finals = sorted(Decimal(repr(x)) for x in pl.read_parquet(out / "sessions.parquet").get_column("final_capital"))
    middle = len(finals) // 2
    assert median == (finals[middle] if len(finals) % 2 else (finals[middle - 1] + finals[middle]) / 2)
    assert f"{agg['sessions']:,}" in re.search(r'id="sessions">.*?</div>', head, re.S).group(0)
    assert f"{agg['hit_rate']:.1%}" in re.search(r'id="hit">.*?</div>', head, re.S).group(0)
    assert page.index('id="result"') < page.index("<img") < page.index('id="quantiles"')
