"""``fsm-bot backtest`` as it runs: the month chunks of the whole data file (``fsm_bot.research.chunks``),
once in this process (one worker) and once on two local worker processes, against the vectorised
reference (``bench/vectorised.py``: every interval's indicators and signal in one numpy pass).

Figures: wall seconds with one and two workers; evaluated intervals (a halted session's placeholder rows
left out) per second and per core, by wall time and by this process's CPU time (a shared machine's wall
time includes the others' work); the reference's rate and the ratio; and whether one and two workers gave
the same frames and aggregate. ``on_idle_cores_s`` is the one-worker run's CPU seconds halved: what two
workers take on cores no one else uses, start-up aside. ``--quick``: the first two months.

``transitions_floor``: the ``transitions`` machine alone, the one every backtest session runs on
(``engine.reusable_machine()``), firing a traded interval's eight triggers with a journal hook that does
nothing: its microseconds an interval, and that against the reference's whole interval. No backtest through
the machine can go below it, whatever the rest costs. ``transitions_in_session``: one month chunk run here
twice, through the machine and with each trigger taken straight from the table instead (the same hook
before the same change of state: only in this benchmark, to see what the machine's dispatch costs inside
a session, where its code and the session's share the caches); the frames must be equal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from fsm_bot import backtest, wiring
from fsm_bot.config import Config
from fsm_bot.research import chunks


def timed(source: dict[str, Any], cfg: Config, months: list[chunks.Chunk], workers: int,
          feed: Any = None) -> tuple[pl.DataFrame, pl.DataFrame, float, float]:
    """(sessions, decisions, wall seconds, this process's CPU seconds) of the chunks on ``workers``."""
    wall, cpu = time.perf_counter(), time.process_time()
    sessions, decisions = chunks.run(source, cfg, months, workers=workers, feed=feed)
    return sessions, decisions, time.perf_counter() - wall, time.process_time() - cpu


def reference(frame: pl.DataFrame, cfg: Config, first_ms: int, end_ms: int) -> dict[str, Any]:
    from bench.vectorised import decide, interval_rows
    wall, cpu = time.perf_counter(), time.process_time()
    rows = interval_rows(frame.get_column("open_time").to_numpy(), cfg, first_ms, end_ms - 1)
    decide(frame, cfg, rows)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"intervals": len(rows), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "intervals_per_s": round(len(rows) / wall), "intervals_per_cpu_s": round(len(rows) / cpu)}


TRADED = ("tick", "fetched", "predicted", "approved", "sized", "submitted", "settled", "recorded")


def transitions_floor(intervals: int = 20_000) -> dict[str, Any]:
    """The machine's own cost of a traded interval: its triggers fired, the hook doing nothing."""
    from fsm_bot import engine
    from fsm_bot.machine import IDLE
    bot = engine.reusable_machine().attach(lambda *_: None, IDLE)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(intervals):
        for trigger in TRADED:
            bot.trigger(trigger, step=None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"triggers": len(TRADED) * intervals, "us_per_trigger": round(wall / (len(TRADED) * intervals) * 1e6, 2),
            "us_per_interval": round(wall / intervals * 1e6, 1), "us_per_interval_cpu": round(cpu / intervals * 1e6, 1)}


class _TableBot:
    """A trigger applied straight from ``machine.edges()``: the journal hook, then the state (the benchmark's)."""

    def __init__(self) -> None:
        from fsm_bot.machine import edges
        self.edges, self.state = edges(), ""
        self._journal: Any = None

    def attach(self, journal: Any, state: str) -> "_TableBot":
        self._journal, self.state = journal, state
        return self

    def trigger(self, name: str, step: Any) -> None:
        dest = self.edges[self.state][name]
        self._journal(self.state, dest, name, step)
        self.state = dest


def transitions_in_session(source: dict[str, Any], cfg: Config, month: chunks.Chunk) -> dict[str, Any]:
    """(seconds through the machine, seconds without it, its share) of one month chunk run in this process."""
    from fsm_bot import engine
    timed_runs, frames = [], []
    for machine in (engine.reusable_machine, _TableBot):
        saved, engine.reusable_machine = engine.reusable_machine, machine  # backtest.run asks the engine for it
        try:
            started = time.process_time()
            frames.append(chunks.run_chunk(source, cfg, month))
            timed_runs.append(time.process_time() - started)
        finally:
            engine.reusable_machine = saved
    (through, without), ((s1, d1), (s2, d2)) = timed_runs, frames
    ran = backtest.evaluated(d1)
    return {"chunk": month.label, "evaluated_intervals": ran, "cpu_s": round(through, 2),
            "cpu_s_without": round(without, 2), "share": round(1 - without / through, 3),
            "us_per_interval": round((through - without) / ran * 1e6, 1), "frames_equal": s1.equals(s2) and d1.equals(d2)}


def backtest_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    cfg = Config()
    source, feed = wiring.replay_source(data)
    first, end = chunks.span(feed.first_ms, feed.last_ms, cfg, None, None)
    months = chunks.split(first, end)[:2 if quick else None]
    end = months[-1].end_ms
    one = timed(source, cfg, months, 1, feed)
    two = timed(source, cfg, months, 2)
    evaluated = backtest.evaluated(one[1])
    same = one[0].equals(two[0]) and one[1].equals(two[1])
    aggregates_equal = backtest.aggregate(one[0], one[1], cfg) == backtest.aggregate(two[0], two[1], cfg)
    ref = reference(feed.frame, cfg, first, end)
    per_core = evaluated / one[2]
    per_cpu_s = evaluated / one[3]
    floor = transitions_floor()
    floor["vs_vectorised_interval"] = round(floor["us_per_interval"] * ref["intervals_per_s"] / 1e6, 1)
    inside = transitions_in_session(source, cfg, months[-1] if quick else months[len(months) // 2])
    inside["vs_vectorised_interval"] = round(inside["us_per_interval"] * ref["intervals_per_s"] / 1e6, 1)
    return {
        "data": str(data) if data else "bundled sample", "chunks": len(months), "sessions": one[0].height,
        "decision_rows": one[1].height, "evaluated_intervals": evaluated,
        "one_worker": {"wall_s": round(one[2], 2), "cpu_s": round(one[3], 2)},
        "two_workers": {"wall_s": round(two[2], 2),
                        "on_idle_cores_s": round(one[3] / 2, 1)},  # one worker's CPU seconds, split over two cores
        "evaluated_per_s_per_core": round(per_core), "evaluated_per_cpu_s": round(per_cpu_s),
        "evaluated_per_s_two_workers": round(evaluated / two[2]),
        "evaluated_per_s_per_core_two_workers": round(evaluated / two[2] / 2),
        "vectorised": ref,
        "ratio_per_core": round(ref["intervals_per_s"] / per_core, 1),
        "ratio_per_cpu_s": round(ref["intervals_per_cpu_s"] / per_cpu_s, 1),
        "one_and_two_workers_equal": same, "aggregates_equal": aggregates_equal,
        "transitions_floor": floor, "transitions_in_session": inside,
    }
