"""A parameter sweep: each trial a backtest through the same machine (``chunks.run_chunk``) over one of the
grid's configs, run once per month chunk on the research executor (this process, local processes or a Dask
cluster) and kept as that chunk's counts and sums (``metrics.measure``).

Every trial-chunk's result is written to ``<out>/chunks/<trial key>/<month>-<first ms>-<end ms>.json`` as it
arrives (written whole, then renamed into place), the trial key a digest of the trial's whole config and of
the data file. A sweep that is stopped or killed continues where it stopped: what the folder holds is read
back, never rerun, and only the rest is run.

``--trials N`` asks Optuna's TPE sampler (seeded, so the same seed proposes the same trials) for N configs
from the grid's ``[search]`` space, one after the other, each scored on the tuning chunks (the first train
window in a walk-forward, which precedes every test window; else the whole span); then every trial proposed
runs on every chunk like a grid's.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from fsm_bot import stopping
from fsm_bot.config import Config
from fsm_bot.errors import EnvironmentFailure
from fsm_bot.research import chunks, metrics
from fsm_bot.research.chunks import Chunk
from fsm_bot.research.executor import cores, executor
from fsm_bot.research.grid import Grid, suggest, trial_key
from fsm_bot.research.walkforward import Results, Trial, result

Progress = Callable[[int, int], None]


def evaluate(source: dict[str, Any], cfg: Config, chunk: Chunk) -> dict[str, Any]:
    """One trial on one chunk, reduced where it ran to what the sweep keeps (a worker sends back a few numbers,
    not the chunk's decisions), with the CPU and wall seconds it took there."""
    started, cpu = time.perf_counter(), time.process_time()
    sessions, decisions = chunks.run_chunk(source, cfg, chunk, share=True)
    return metrics.measure(sessions, decisions, cfg) | {"cpu_s": round(time.process_time() - cpu, 3),
                                                        "wall_s": round(time.perf_counter() - started, 3)}


class Store:
    """The trial-chunk results a sweep folder holds."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / "chunks"

    def path(self, key: str, chunk: Chunk) -> Path:
        return self.folder / key / f"{chunk.label}-{chunk.first_ms}-{chunk.end_ms}.json"

    def read(self, key: str, chunk: Chunk) -> dict[str, Any] | None:
        """A stored result, or None when there is none (or only a file a power cut left unreadable)."""
        try:
            stored = json.loads(self.path(key, chunk).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        complete = isinstance(stored, dict) and all(k in stored for k in (*metrics.COUNTS, *metrics.SUMS))
        return stored if complete else None

    def write(self, trial: Trial, chunk: Chunk, result: dict[str, Any]) -> None:
        path = self.path(trial.key, chunk)
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            (path.parent / "config.json").write_text(json.dumps(trial.cfg.to_json(), indent=1) + "\n")
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(result) + "\n", encoding="utf-8")
        os.replace(tmp, path)


@dataclass
class Sweep:
    trials: list[Trial]
    chunks: list[Chunk]
    results: Results = field(default_factory=dict)
    evaluated: int = 0  # trial-chunks run by this call
    reused: int = 0  # trial-chunks read back from the folder
    cpu_s: float = 0.0  # the CPU seconds the evaluated ones took where they ran


@dataclass
class Runner:
    """Runs trial-chunks on an executor, at most ``limit`` at a time, storing each result as it arrives."""

    ex: cf.Executor
    limit: int
    store: Store
    source: dict[str, Any]
    sweep: Sweep
    progress: Progress | None = None
    total: int = 0

    def run(self, tasks: Sequence[tuple[Trial, Chunk]]) -> None:
        s, pending = self.sweep, []
        for trial, chunk in tasks:
            if (trial.key, chunk.label) in s.results:
                continue
            stored = self.store.read(trial.key, chunk)
            if stored is None:
                pending.append((trial, chunk))
            else:
                s.results[(trial.key, chunk.label)] = stored
                s.reused += 1
        queue, inflight = iter(pending), {}
        try:
            while True:
                while len(inflight) < self.limit and (task := next(queue, None)):
                    inflight[self.ex.submit(evaluate, self.source, task[0].cfg, task[1])] = task
                if not inflight:
                    return
                done, _ = cf.wait(inflight, timeout=chunks.STOP_POLL_SECS, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    trial, chunk = inflight.pop(future)
                    if stopping.STOP.is_set() and future.exception() is not None:
                        continue  # a worker the stop ended (a terminal's Ctrl-C reaches them all): not a failure
                    got = future.result()
                    self.store.write(trial, chunk, got)
                    s.results[(trial.key, chunk.label)] = got
                    s.evaluated += 1
                    s.cpu_s += got.get("cpu_s", 0.0)
                    if self.progress:
                        self.progress(len(s.results), self.total)
                stopping.check()
        except BaseException:
            for future in inflight:
                future.cancel()
            raise


def month_chunks(grid: Grid, feed_first_ms: int, feed_last_ms: int, first_ms: int | None,
                 last_ms: int | None) -> list[Chunk]:
    """The months every trial can run: the span the most demanding config allows (most candles of history,
    longest sessions)."""
    spans = [chunks.span(feed_first_ms, feed_last_ms, cfg, first_ms, last_ms) for cfg in grid.extremes()]
    return chunks.split(max(a for a, _ in spans), min(b for _, b in spans))


def distinct(cfgs: Sequence[Config], sha256: str) -> list[Trial]:
    """The trials of a grid, each config once, in the grid's order."""
    out: dict[str, Trial] = {}
    for cfg in cfgs:
        key = trial_key(cfg, sha256)
        out.setdefault(key, Trial(len(out), key, cfg))
    return list(out.values())


def run(grid: Grid, source: dict[str, Any], months: list[Chunk], folder: Path, *, trials: int | None = None,
        seed: int = 1, objective: str = "pnl", tuning: Sequence[Chunk] | None = None, workers: int | None = None,
        cluster: str | None = None, progress: Progress | None = None, feed: Any = None) -> Sweep:
    """Every trial of the grid (or ``trials`` Optuna trials) on every chunk of ``months``; ``feed``: the source's
    replay if this process holds it already (kept for the chunks it runs itself)."""
    sha = source.get("sha256", "")
    if feed is not None:
        chunks.remember(source, feed)
    limit = 1 if workers == 1 and not cluster else 4 * (workers or cores()) if not cluster else 256
    with executor(workers, cluster) as ex:
        if trials is None:
            sweep = Sweep(distinct(grid.trials(), sha), list(months))
            runner = Runner(ex, limit, Store(folder), source, sweep, progress, len(sweep.trials) * len(months))
        else:
            sweep = Sweep([], list(months))
            runner = Runner(ex, limit, Store(folder), source, sweep, progress, trials * len(months))
            _search(runner, grid, trials, seed, objective, list(tuning or months), sha)
            runner.total = len(sweep.trials) * len(months)
        runner.run([(t, c) for c in months for t in sweep.trials])  # a chunk's trials together: they share
    return sweep


def _search(runner: Runner, grid: Grid, n: int, seed: int, objective: str, tuning: list[Chunk], sha: str) -> None:
    try:
        import optuna
    except ImportError:
        raise EnvironmentFailure("--trials needs Optuna: pip install -e '.[research]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    known = {t.key: t for t in runner.sweep.trials}
    for _ in range(n):
        asked = study.ask()
        cfg = suggest(asked, grid)
        key = trial_key(cfg, sha)
        trial = known.setdefault(key, Trial(len(known), key, cfg))
        if trial.index == len(runner.sweep.trials):
            runner.sweep.trials.append(trial)
        runner.run([(trial, c) for c in tuning])
        value = result(runner.sweep.results, trial, tuning, objective)["objective"]
        if value is None or not math.isfinite(value):
            study.tell(asked, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(asked, value)


def frame(sweep: Sweep, grid: Grid, objective: str, walked: Sequence[dict[str, Any]] = ()) -> pl.DataFrame:
    """The sweep's rows: one per trial x chunk (``kind`` chunk), one per trial over the whole span (trial), and
    the walk-forward's (train, test, baseline); each with the trial's varied settings and its metrics."""
    rows: list[dict[str, Any]] = []
    for t in sweep.trials:
        for c in sweep.chunks:
            rows.append({"kind": "chunk", "window": None, "trial": t.key, "trial_index": t.index,
                         **result(sweep.results, t, [c], objective)})
        rows.append({"kind": "trial", "window": None, "trial": t.key, "trial_index": t.index,
                     **result(sweep.results, t, sweep.chunks, objective)})
    rows.extend(walked)
    by_key = {t.key: t for t in sweep.trials}
    names = grid.varied
    out = [{**r, **{n: float(v) if isinstance(v, Decimal) else v for n in names for v in [getattr(cfg, n)]},
            "config": json.dumps(cfg.to_json(), sort_keys=True)} for r in rows for cfg in [by_key[r["trial"]].cfg]]
    return pl.from_dicts(out, infer_schema_length=None)
