"""``fsm-bot backtest --prices``: the machine against Polymarket's recorded prices and resolutions (the real
samples of ``shared/data``), beside the simulated book. Fills and results are recomputed here from the
parquet files themselves, not from the code under test."""

import bisect
import io
import itertools
import json
import random
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fsm_bot import cli, engine, journal, wiring
from fsm_bot.adapters import recorded
from fsm_bot.adapters.book import BookModel
from fsm_bot.config import Config
from fsm_bot.research import prices

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEC_CANDLES = DATA / prices.CANDLES["2025-12"]
FEB_CANDLES = DATA / prices.CANDLES["2026-02-5m"]
CENT = Decimal("0.01")
pytestmark = pytest.mark.skipif(not DEC_CANDLES.is_file(), reason="the shared samples are not here")


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def sim_spread(seed: int, start_ms: int) -> Decimal:
    """The simulated book's spread for the interval: 1, 2 or 3 cents (78/16/6%), the first draw of its generator."""
    cum = list(itertools.accumulate([0.78, 0.16, 0.06]))
    return (1 + bisect.bisect(cum, random.Random(f"{seed}:{start_ms}").random() * cum[-1], 0, 2)) * CENT


def candle_direction(candles: pl.DataFrame, start_ms: int, minutes: int) -> str:
    t = candles.get_column("open_time").dt.epoch("ms")
    first = candles.filter(t == start_ms).get_column("open")[0]
    last = candles.filter(t == start_ms + (minutes - 1) * 60_000).get_column("close")[0]
    return "UP" if last >= first else "DOWN"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("recorded")
    for sample in prices.SAMPLES:
        prices.convert(sample, DATA).write_parquet(d / f"{sample}.parquet")
    return d


def run(fsm, out: Path, *argv) -> tuple[dict, pl.DataFrame, pl.DataFrame, str]:
    result = fsm("backtest", *argv, "--out", out, "--decisions", out / "decisions.parquet")
    assert result.code == 0, result.err
    return (json.loads((out / "aggregate.json").read_text()), pl.read_parquet(out / "decisions.parquet"),
            pl.read_parquet(out / "decisions_recorded.parquet"), result.out)


@pytest.fixture(scope="module")
def december(files, tmp_path_factory):
    """The December 15-minute week: recorded prices, settled on the candles (the sample records no resolution)."""
    out, err, d = io.StringIO(), io.StringIO(), tmp_path_factory.mktemp("december")
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in ("backtest", "--data", DEC_CANDLES, "--prices", files / "2025-12.parquet",
                                          "--settle", "candles", "--out", d, "--decisions", d / "decisions.parquet")])
    assert code == 0, err.getvalue()
    return (json.loads((d / "aggregate.json").read_text()), pl.read_parquet(d / "decisions.parquet"),
            pl.read_parquet(d / "decisions_recorded.parquet"), out.getvalue())


def test_the_converter_writes_the_recorded_prices_schema(files):
    from fsm_bot.datasets.polymarket import SCHEMA as DOWNLOADED
    assert recorded.SCHEMA == DOWNLOADED  # the file `fsm-bot data polymarket` writes
    counts = {}
    for sample in prices.SAMPLES:
        frame = pl.read_parquet(files / f"{sample}.parquet")
        assert frame.schema == pl.Schema(recorded.SCHEMA), sample
        markets = frame.group_by("slug").agg(priced=pl.col("t").is_not_null().any(), rows=pl.len(),
                                             resolved=pl.col("resolved_outcome").first())
        assert markets.filter(~pl.col("priced")).get_column("rows").max() in (1, None)  # one placeholder row
        assert frame.filter(pl.col("t").is_null()).get_column("price").null_count() == frame.filter(
            pl.col("t").is_null()).height
        counts[sample] = (markets.height, int(markets.get_column("priced").sum()),
                          dict(markets.get_column("resolved").value_counts().iter_rows()))
    assert counts["2025-12"] == (670, 440, {None: 670})
    assert counts["2026-01"] == (615, 200, {"Up": 303, "Down": 312})
    assert counts["2026-02-5m"] == (2017, 0, {"Up": 1006, "Down": 1010, None: 1})
    assert counts["2026-02-15m"] == (673, 0, {"Up": 347, "Down": 324, None: 2})
    history = pl.read_parquet(DATA / prices.SAMPLES["2025-12"][0])
    december = pl.read_parquet(files / "2025-12.parquet").filter(pl.col("t").is_not_null())
    assert december.height == history.height
    assert sorted(december.get_column("price").to_list()) == sorted(history.get_column("up_price").to_list())


def test_the_script_writes_what_the_function_returns(files, tmp_path):
    out = tmp_path / "dec.parquet"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "recorded_prices.py"), "2025-12", "--out", str(out),
                           "--data-dir", str(DATA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["markets_with_prices"] == 440
    assert pl.read_parquet(out).equals(pl.read_parquet(files / "2025-12.parquet"))


def test_every_fill_is_the_recorded_price_plus_half_the_spread(december, files):
    _, _, rec, _ = december
    points = pl.read_parquet(files / "2025-12.parquet").filter(pl.col("t").is_not_null()).with_columns(
        start=pl.col("window_start").dt.epoch("ms"), t_ms=pl.col("t").dt.epoch("ms"))
    trades = rec.filter(pl.col("action") == "trade")
    assert trades.height > 300
    exact = 0
    for row in trades.iter_rows(named=True):
        start = ms(row["interval_start"])
        decided = start + recorded.DECISION_DELAY_SECS * 1000
        seen = points.filter((pl.col("start") == start) & (pl.col("t_ms") <= decided)).sort("t_ms")
        assert seen.height and decided - seen.get_column("t_ms")[-1] <= recorded.PRICE_STALE_SECS * 1000
        price, spread = Decimal(repr(seen.get_column("price")[-1])), sim_spread(1, start)
        ask = min(max((price + spread / 2).quantize(CENT, ROUND_CEILING), 2 * CENT), 1 - CENT)
        bid = min(max((price - spread / 2).quantize(CENT, ROUND_FLOOR), CENT), ask - CENT)
        best = ask if row["signal"] == "UP" else 1 - bid
        up, down = recorded.quoted_books(BookModel(), random.Random(f"1:{start}"), price)
        first = (up if row["signal"] == "UP" else down).asks[0]
        assert first.price == best
        fill, stake = Decimal(repr(row["fill_price"])), Decimal(repr(row["stake"]))
        if stake <= first.price * first.size:  # the stake fits the first level: filled at the ask itself
            assert fill == best, row
            exact += 1
        else:  # the sim's depth: the stake walks on to the next levels
            assert best < fill <= best + 4 * CENT, row
    assert exact >= 0.9 * trades.height


def test_settlement_on_the_candles_when_asked(december):
    _, _, rec, _ = december
    candles = pl.read_parquet(DEC_CANDLES)
    for row in rec.filter(pl.col("action") == "trade").iter_rows(named=True):
        won = row["signal"] == candle_direction(candles, ms(row["interval_start"]), 15)
        assert row["outcome"] == ("WIN" if won else "LOSS"), row


def test_a_window_without_a_recorded_price_skips_with_its_reason(december, files):
    _, _, rec, _ = december
    frame = pl.read_parquet(files / "2025-12.parquet")
    unpriced = set(frame.filter(pl.col("t").is_null()).get_column("window_start").dt.epoch("ms").to_list())
    starts = rec.get_column("interval_start").map_elements(ms, return_dtype=pl.Int64)
    skipped = rec.filter(starts.is_in(sorted(unpriced)))
    assert skipped.height > 100
    assert set(skipped.get_column("action").to_list()) <= {"skip:no_recorded_price", "halted"}
    listed = set(frame.get_column("window_start").dt.epoch("ms").to_list())
    assert set(rec.filter(~starts.is_in(sorted(listed))).get_column("action").to_list()) <= {
        "skip:no_recorded_market", "halted"}


def test_the_journal_names_the_missing_price(files, tmp_path):
    cfg = Config(interval_minutes=15)
    _, (source, feed) = recorded.replays(DEC_CANDLES, files / "2025-12.parquet", 15, quotes="recorded",
                                         settle="candles")
    unpriced = sorted(w.start_ms for w in feed.recording.windows.values() if not len(w.times_ms))
    start = next(s for s in unpriced if s >= feed.first_ms + 101 * 60_000)
    world = wiring.world("sim", cfg, source, tmp_path, now_ms=start, feed=feed)
    jr = journal.Journal(tmp_path / "journal.jsonl")
    try:
        engine.Engine(engine.begin(jr, "sim", cfg, source, start, start), jr, world.clock, world.feed,
                      world.venue).run()
    finally:
        jr.close()
        world.close()
    first = next(r for r in journal.records(tmp_path / "journal.jsonl") if r["trigger"] == "skip")
    assert first["data"]["reason"] == "no_recorded_price" and first["interval"] == 1
    decided = datetime.fromtimestamp(start / 1000 + recorded.DECISION_DELAY_SECS, timezone.utc)
    assert first["ts"].startswith(decided.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_price_after_the_decision_or_too_old_is_not_used():
    window = recorded.Window("s", "c", 0, 900_000, "UP", "u", "d", np.array([10_000, 50_000]), np.array([0.4, 0.6]))
    assert window.up_price(9_999) is None  # nothing at or before: never the next point
    assert window.up_price(45_000) == (0.4, 10_000)
    assert window.up_price(50_000) == (0.6, 50_000)
    assert window.up_price(110_000) == (0.6, 50_000) and window.up_price(110_001) is None  # 60 s at most


def test_settlement_on_the_recorded_resolution(files, fsm, tmp_path):
    aggregate, _, rec, _ = run(fsm, tmp_path, "--data", FEB_CANDLES, "--prices", files / "2026-02-5m.parquet",
                               "--quotes", "simulated", "--to", "2026-02-24T16:00:00Z")
    resolutions = {s: r.upper() for s, r in pl.read_parquet(files / "2026-02-5m.parquet").select(
        pl.col("window_start").dt.epoch("ms"), "resolved_outcome").iter_rows() if r is not None}
    candles, differ = pl.read_parquet(FEB_CANDLES), 0
    trades = rec.filter(pl.col("action") == "trade")
    assert trades.height > 500
    for row in trades.iter_rows(named=True):
        start = ms(row["interval_start"])
        assert row["outcome"] == ("WIN" if row["signal"] == resolutions[start] else "LOSS"), row
        differ += resolutions[start] != candle_direction(candles, start, 5)
    assert differ > 0  # where Chainlink and Binance disagree, the recorded resolution settled it
    assert aggregate["recorded_prices"]["source"]["settle"] == "recorded"


def test_an_unresolved_market_skips(files, fsm, tmp_path):
    frame = pl.read_parquet(files / "2026-02-15m.parquet")  # 2026-02-25 21:00, inside the candles' week
    start = frame.filter(pl.col("resolved_outcome").is_null()).get_column("window_start")[0]
    first = (start - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _, _, rec, _ = run(fsm, tmp_path, "--data", FEB_CANDLES, "--prices", files / "2026-02-15m.parquet",
                       "--quotes", "simulated", "--from", first, "--to", first)
    actions = rec.filter(pl.col("interval_start") == start.strftime("%Y-%m-%dT%H:%M:%SZ")).get_column("action")
    assert actions.to_list() == ["skip:unresolved"]


def test_the_side_by_side_output_has_both_results(december):
    aggregate, sim, rec, out = december
    for block in (aggregate, aggregate["recorded_prices"]):
        for key in ("sessions", "trades", "hit_rate", "hit_rate_wilson95", "breakeven_hit_rate", "pnl_gross_total",
                    "fees_total", "pnl_total", "halt_share"):
            assert key in block, key
    assert aggregate["trades"] == sim.filter(pl.col("action") == "trade").height
    assert aggregate["recorded_prices"]["trades"] == rec.filter(pl.col("action") == "trade").height
    assert sim.get_column("interval_start").min() == rec.get_column("interval_start").min()  # the same span
    lines = out.splitlines()
    assert "simulated book" in out and "recorded prices" in out
    for label in ("sessions", "trades", "hit rate (95% Wilson)", "break-even hit rate", "PnL before fees (USD)",
                  "fees (USD)", "PnL after fees (USD)", "halt share"):
        row = next(line for line in lines if line.startswith(label))
        assert len(row[24:].split()) >= 2, row  # a value in each column


def test_deciding_later_sees_the_same_candles(december):
    _, sim, rec, _ = december
    both = sim.join(rec, on="interval_start", suffix="_recorded").filter(
        pl.col("rsi").is_not_null() & pl.col("rsi_recorded").is_not_null())
    assert both.height > 400
    for name in ("close", "rsi", "macd", "macd_signal", "signal"):
        assert both.get_column(name).equals(both.get_column(f"{name}_recorded")), name


def test_candles_without_taker_flow_read_as_no_lean(december):
    _, sim, rec, _ = december
    for frame in (sim, rec):
        fetched = frame.filter(pl.col("imbalance").is_not_null())
        assert fetched.height and set(fetched.get_column("imbalance").to_list()) == {1.0}
        assert "strict" not in set(frame.get_column("tier").drop_nulls().to_list())


def test_a_plain_backtest_still_refuses_candles_without_taker_flow(fsm, tmp_path):
    result = fsm("backtest", "--data", DEC_CANDLES, "--out", tmp_path)
    assert result.code == 2 and "taker_buy_base" in result.err
    assert fsm("backtest", "--settle", "candles", "--out", tmp_path).code == 2
