"""The benchmarks themselves: each takes (data file or None, quick) and returns a dict of figures."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fsm_bot import engine, journal
from fsm_bot.adapters.sim import BUNDLED, ReplayFeed, load_candles
from fsm_bot.config import Config
from fsm_bot.session import fold, iso_seconds
from fsm_bot.backtest import sim_session

EXE = str(Path(sys.executable).with_name("fsm-bot"))
ROOT = Path(__file__).resolve().parents[1]


def stats_us(samples_ns: list[int]) -> dict[str, float]:
    arr = np.array(samples_ns) / 1000
    return {"n": len(arr), "p50_us": round(float(np.percentile(arr, 50)), 1),
            "p99_us": round(float(np.percentile(arr, 99)), 1), "mean_us": round(float(arr.mean()), 1)}


def wall(cmd: list[str], runs: int, env: dict | None = None, setup: Callable[[], None] | None = None) -> dict:
    """Median wall time of a whole command over ``runs`` runs (each preceded by ``setup``)."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - started)
    return {"runs": runs, "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}


def long_session(data: Path | None, intervals: int, d: Path) -> tuple[Path, float]:
    """One sim session of ``intervals`` intervals through the real engine (no fsync); (journal, seconds)."""
    feed = ReplayFeed(load_candles(data or BUNDLED))
    step = 300_000
    start = -(-(feed.first_ms + 100 * 60_000) // step) * step
    intervals = min(intervals, (feed.last_ms - start) // step - 1)
    cfg = Config(intervals=intervals, capital_usd=Decimal(10) ** 9)  # no halt: every interval runs the machine
    started = time.perf_counter()
    sim_session(feed, cfg, start, d)
    seconds = time.perf_counter() - started
    return d / "journal.jsonl", seconds


# -- journal --------------------------------------------------------------------------------------
def journal_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "sample").mkdir()
        path, _ = long_session(None, 3, tmp / "sample")
        record = next(r for r in journal.read(path).records if r["trigger"] == "fetched")
        record = {k: v for k, v in record.items() if k not in ("crc", "seq", "v")}
        n = 300 if quick else 3000
        jr = journal.Journal(tmp / "append.jsonl")
        line = journal.encode({**record, "seq": 0, "v": journal.SCHEMA})
        fd = os.open(tmp / "bare.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        ours, bare = [], []
        for _ in range(n):  # interleaved, so both see the same disk
            t = time.perf_counter_ns()
            jr.append(record)
            ours.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            os.write(fd, line)
            os.fsync(fd)
            bare.append(time.perf_counter_ns() - t)
        jr.close()
        os.close(fd)
        a, b = stats_us(ours), stats_us(bare)
        out = {"record_bytes": len(line), "append_fsync": a, "bare_write_fsync": b,
               "ratio_p50": round(a["p50_us"] / b["p50_us"], 3), "ratio_p99": round(a["p99_us"] / b["p99_us"], 3)}
        target_records = 10_000 if quick else 100_000
        (tmp / "long").mkdir()
        long_path, _ = long_session(data, math.ceil(target_records / 8.1), tmp / "long")
        started = time.perf_counter()
        contents = journal.read(long_path)
        read_s = time.perf_counter() - started
        session = fold(contents.records)
        fold_s = time.perf_counter() - started - read_s
        checked = engine.replay_check(contents.records)
        total_s = time.perf_counter() - started
        out["replay"] = {"records": len(contents.records), "bytes": long_path.stat().st_size,
                         "read_s": round(read_s, 3), "fold_s": round(fold_s, 3),
                         "read_fold_check_s": round(total_s, 3), "decisions_rechecked": checked,
                         "final_interval": session.interval - 1}
        return out


# -- memory ---------------------------------------------------------------------------------------
def peak_rss_mb(cmd: list[str]) -> float:
    """Peak RSS of a command, read by a fresh parent so that no other child's peak counts."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
             "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    return round(int(done.stdout.strip()) / 1024, 1)


def memory_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = {"sim_session_peak_rss_mb": peak_rss_mb([EXE, "start", "--sim", "--state-dir", str(Path(tmp) / "s")])}
        span = ["--to", "2024-03-12T00:00:00Z"] if quick or data is None else []
        cmd = [EXE, "backtest", "--out", str(Path(tmp) / "bt"), "--json", *span]
        out["backtest_peak_rss_mb"] = peak_rss_mb(cmd + (["--data", str(data)] if data else []))
        out["backtest_data"] = str(data) if data else "bundled sample"
        return out


# -- throughput -----------------------------------------------------------------------------------
def throughput_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    """The backtest (the full machine, session after session) against the vectorised reference."""
    from bench.vectorised import decide, interval_rows
    from fsm_bot import backtest
    frame = load_candles(data or BUNDLED)
    if quick:
        frame = frame.head(20_000)
    cfg = Config()
    sessions, decisions, machine_s = backtest.backtest(ReplayFeed(frame), cfg)
    decided = decisions.filter(decisions["signal"].is_not_null())
    ran = backtest.evaluated(decisions)  # intervals the machine ran
    started = time.perf_counter()
    times = frame.get_column("open_time").to_numpy()
    rows = interval_rows(times, cfg)
    ref = decide(frame, cfg, rows)
    vector_s = time.perf_counter() - started
    by_start = {iso_seconds(int(t)): (str(side), str(tier)) for t, side, tier in zip(ref.start_ms, ref.side, ref.tier)}
    agree = sum(by_start.get(start) == (signal, tier) for start, signal, tier in
                decided.select("interval_start", "signal", "tier").iter_rows())
    return {"sessions": sessions.height, "intervals_run": ran, "machine_s": round(machine_s, 2),
            "machine_intervals_per_s": round(ran / machine_s), "vectorised_intervals": len(rows),
            "vectorised_s": round(vector_s, 3), "vectorised_intervals_per_s": round(len(rows) / vector_s),
            "ratio": round((len(rows) / vector_s) / (ran / machine_s), 1),
            "decisions_compared": decided.height, "decisions_agree": agree,
            "decisions_agree_share": agree / decided.height if decided.height else None}


def risk_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 7
    return {"exact_one_cell": wall([EXE, "risk", "--win-rate", "0.5", "--price", "0.51", "--monte-carlo", "0",
                                    "--json"], runs),
            "exact_and_monte_carlo_one_cell": wall([EXE, "risk", "--win-rate", "0.5", "--price", "0.51", "--json"],
                                                   runs)}


def startup_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.startup import startup_bench as run
    return run(data, quick)


def decision_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.decision import decision_bench as run
    return run(data, quick)


def alerts_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.alerts import alerts_bench as run
    return run(data, quick)


def sweep_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.sweep import sweep_bench as run
    return run(data, quick)


def backtest_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.backtest import backtest_bench as run
    return run(data, quick)


def suite_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.suite import suite_bench as run
    return run(data, quick)


BENCHES: dict[str, Callable[[Path | None, bool], dict[str, Any]]] = {
    "decision": decision_bench,
    "journal": journal_bench,
    "startup": startup_bench,
    "memory": memory_bench,
    "throughput": throughput_bench,
    "risk": risk_bench,
    "alerts": alerts_bench,
    "sweep": sweep_bench,
    "backtest": backtest_bench,
    "suite": suite_bench,
}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    return {name: {"value": value, "target": target, "met": met} for name, value, target, met in rows(results)}


def rows(results: dict[str, Any]) -> list[tuple[str, Any, str, bool | None]]:
    out: list[tuple[str, Any, str, bool | None]] = []
    d = results.get("decision")
    if d:
        e2e = d["candle_to_order_bytes"]
        out.append(("decision: closing candle -> order bytes p50 (ms)", e2e["p50_ms"], "<= 5 ms", e2e["p50_ms"] <= 5))
        out.append(("decision: closing candle -> order bytes p99 (ms)", e2e["p99_ms"], "<= 10 ms", e2e["p99_ms"] <= 10))
        for stage, figures in d["split"].items():
            out.append((f"  {stage} p50 / p99 (ms)", f"{figures['p50_ms']} / {figures['p99_ms']}", "", None))
        out.append(("  floor: fsync + loopback POST p50 / p99 (ms)", f"{d['floor']['p50_ms']} / {d['floor']['p99_ms']}",
                    "", None))
        out.append(("  decision / floor, p50", d["ratio_p50"], "", None))
        out.append(("  feed: boundary -> closing candle p50 / p99 (ms)",
                    f"{d['feed_wait']['p50_ms']} / {d['feed_wait']['p99_ms']}", "", None))
    a = results.get("alerts")
    if a:
        p99 = a["notifier_per_record_us"]["p99"]
        out.append(("alerts: notifier per record, hanging + 500 webhooks, p99 (us)", p99, "<= 5000 us", p99 <= 5000))
        out.append(("alerts: session files identical with and without", a["files_identical"], "True",
                    bool(a["files_identical"])))
    j = results.get("journal")
    if j:
        out.append(("journal append+fsync p50 (us)", j["append_fsync"]["p50_us"], "", None))
        out.append(("bare write+fsync p50 (us)", j["bare_write_fsync"]["p50_us"], "", None))
        out.append(("journal / bare, p50", j["ratio_p50"], "<= 1.5x", j["ratio_p50"] <= 1.5))
        out.append((f"replay of {j['replay']['records']:,} records (s)", j["replay"]["read_fold_check_s"], "", None))
    s = results.get("startup")
    if s:
        out.append(("fsm-bot --help (s)", s["help"]["median_s"], "<= 0.3 s", s["help"]["median_s"] <= 0.3))
        r = s["resume_to_first_action"]
        out.append(("fsm-bot resume to its first action, median (s)", r["median_s"], "<= 0.25 s", r["median_s"] <= 0.25))
        out.append(("  p90 (s)", r["p90_s"], "", None))
        out.append(("fsm-bot status (s)", s["status"]["median_s"], "", None))
        out.append(("fsm-bot start --sim, 18 intervals (s)", s["sim_session_18_intervals"]["median_s"], "< 60 s",
                    s["sim_session_18_intervals"]["median_s"] < 60))
    t = results.get("suite")
    if t:
        whole = t["command"] == "pytest"  # --quick runs two files: a smoke run, not the suite's figure
        out.append((f"test suite{'' if whole else ' (--quick: two files)'}, {t['workers']} xdist workers on "
                    f"{t['cores']} cores (s)", t["wall_s"], "<= 300 s", t["passed"] and t["wall_s"] <= 300 if whole
                    else None))
        out.append(("  its outcome", ", ".join(f"{n} {w}" for w, n in t["counts"].items()) or "no summary", "", None))
        out.append(("  CPU of its processes, user / system (s)", f"{t['user_cpu_s']} / {t['system_cpu_s']}", "", None))
    m = results.get("memory")
    if m:
        out.append(("peak RSS, start --sim (MB)", m["sim_session_peak_rss_mb"], "<= 512 MB",
                    m["sim_session_peak_rss_mb"] <= 512))
        out.append(("peak RSS, backtest (MB)", m["backtest_peak_rss_mb"], "<= 512 MB", m["backtest_peak_rss_mb"] <= 512))
    k = results.get("risk")
    if k:
        out.append(("fsm-bot risk, exact, one cell (s)", k["exact_one_cell"]["median_s"], "<= 1 s",
                    k["exact_one_cell"]["median_s"] <= 1))
    w = results.get("sweep")
    if w:
        out.append((f"sweep: {w['trials']} trials x {w['chunks']} months (s)", w["wall_s"], "", None))
        out.append(("sweep: trial-chunks per second", w["trial_chunks_per_s"], "", None))
        out.append(("sweep: CPU seconds per trial-chunk", w["cpu_s_per_trial_chunk"], "", None))
        out.append((f"sweep: {w['trials']} x {w['data_months']} months at that rate (s)", w["full_wall_s_projected"],
                    f"<= {w['target_full_s']} s", w["full_wall_s_projected"] <= w["target_full_s"]))
        out.append(("  the same on idle cores (s)", w["full_wall_s_on_idle_cores"], f"<= {w['target_full_s']} s",
                    w["full_wall_s_on_idle_cores"] <= w["target_full_s"]))
    b = results.get("backtest")
    if b:
        out.append((f"backtest, {b['chunks']} month chunks, 1 / 2 workers (s)",
                    f"{b['one_worker']['wall_s']} / {b['two_workers']['wall_s']}", "<= 60 s with 2",
                    b["two_workers"]["wall_s"] <= 60))
        out.append(("  2 workers on idle cores (s)", b["two_workers"]["on_idle_cores_s"], "<= 60 s",
                    b["two_workers"]["on_idle_cores_s"] <= 60))
        out.append(("backtest evaluated intervals/s per core (wall / CPU)",
                    f"{b['evaluated_per_s_per_core']:,} / {b['evaluated_per_cpu_s']:,}", "", None))
        out.append(("vectorised reference / machine, per core", b["ratio_per_core"], "<= 20x", b["ratio_per_core"] <= 20))
        f = b["transitions_floor"]
        out.append(("  transitions alone, a traded interval (us / x ref)",
                    f"{f['us_per_interval']} / {f['vs_vectorised_interval']}x", "", None))
        i = b["transitions_in_session"]
        out.append((f"  transitions in the session, {i['chunk']} (share, us / x ref)",
                    f"{i['share']:.0%}, {i['us_per_interval']} / {i['vs_vectorised_interval']}x", "frames equal",
                    i["frames_equal"]))
        out.append(("backtest: 1 and 2 workers give equal frames and aggregate",
                    b["one_and_two_workers_equal"] and b["aggregates_equal"], "True",
                    b["one_and_two_workers_equal"] and b["aggregates_equal"]))
    t = results.get("throughput")
    if t:
        out.append(("backtest intervals/s (full machine)", t["machine_intervals_per_s"], ">= 5,000/s",
                    t["machine_intervals_per_s"] >= 5000))
        out.append(("backtest wall time (s)", t["machine_s"], "", None))
        out.append(("vectorised reference intervals/s", t["vectorised_intervals_per_s"], "", None))
        out.append(("vectorised / machine", t["ratio"], "<= 50x", t["ratio"] <= 50))
        out.append(("decisions that agree", f"{t['decisions_agree_share']:.2%}", "100%", t["decisions_agree_share"] == 1))
    return out
