"""What a finished sweep says: its rows (``sweep.frame``), the best trials over the whole span, and the
walk-forward's windows and in-sample / out-of-sample table, as one JSON-able summary."""

from __future__ import annotations

from typing import Any, Sequence

import polars as pl

from fsm_bot.research import metrics, walkforward as wf
from fsm_bot.research.grid import Grid, shown, trial_key
from fsm_bot.research.sweep import Sweep, frame

BRIEF = ("chunk", "first", "end", "sessions", "trades", "wins", "halts", "pnl", "fees", "hit_rate", "hit_low",
         "hit_high", "pnl_per_session", "pnl_per_session_se", "halt_share", "avg_entry_price", "breakeven", "edge",
         "objective", "first_start", "last_start")


def brief(r: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if r is None else {k: r[k] for k in BRIEF}


def stored_cost(done: Sweep) -> dict[str, Any]:
    """What the sweep's results cost where they ran, whichever run made them: CPU and wall seconds summed
    over the trial-chunks whose result says (results kept by an older release do not)."""
    timed = [r for r in done.results.values() if "cpu_s" in r]
    return {"timed": len(timed), "cpu_s": round(sum(r["cpu_s"] for r in timed), 1),
            "wall_s": round(sum(r["wall_s"] for r in timed), 1),
            "cpu_s_per_trial_chunk": round(sum(r["cpu_s"] for r in timed) / len(timed), 3) if timed else None}


def build(done: Sweep, grid: Grid, source: dict[str, Any], windows: Sequence[wf.Window], objective: str,
          top: int = 10) -> tuple[pl.DataFrame, dict[str, Any], list[dict[str, Any]]]:
    """(the rows, the summary, the walk-forward's rows for the plot) of a finished sweep. The baseline is the
    grid's base config (the defaults and ``[fixed]``) when it is one of the trials."""
    months = done.chunks
    walked = wf.walk(done.results, done.trials, windows, objective)
    base = next((t for t in done.trials if t.key == trial_key(grid.base, source.get("sha256", ""))), None)
    baseline = wf.fixed(done.results, base, windows, objective) if base and windows else []
    rows = frame(done, grid, objective, [*walked, *baseline])
    ranked = rows.filter(pl.col("kind") == "trial").sort(["objective", "trial_index"], descending=[True, False],
                                                         nulls_last=True)
    by_key = {t.key: t for t in done.trials}

    def settings(key: str) -> dict[str, Any]:
        return shown(by_key[key].cfg, grid.varied)

    summary: dict[str, Any] = {
        "grid": str(grid.path), "data": source.get("data"), "sha256": source.get("sha256"), "objective": objective,
        "objective_is": metrics.OBJECTIVES[objective], "varied": grid.varied,
        "span": {"first": wf.iso(months[0].first_ms), "end": wf.iso(months[-1].end_ms)},
        "trials": len(done.trials), "chunks": len(months), "trial_chunks": len(done.trials) * len(months),
        "evaluated": done.evaluated, "reused": done.reused, "cpu_s": round(done.cpu_s, 1),
        "cpu_s_per_trial_chunk": round(done.cpu_s / done.evaluated, 3) if done.evaluated else None,
        "stored": stored_cost(done),
        "baseline_trial": base.index if base else None,
        "top": [{"trial_index": r["trial_index"], "trial": r["trial"], "settings": settings(r["trial"]), **brief(r)}
                for r in ranked.head(top).iter_rows(named=True)],
        "walkforward": None}
    if windows:
        table = wf.summary(walked, grid.base.fee_rate, baseline)
        summary["walkforward"] = {"train_months": len(windows[0].train), "test_months": len(windows[0].test),
                                  "summary": table, "table": wf.describe(table),
                                  "windows": window_rows(windows, [*walked, *baseline], settings)}
    return rows, summary, [*walked, *baseline]


def window_rows(windows: Sequence[wf.Window], walked: Sequence[dict[str, Any]], settings: Any) -> list[dict]:
    by = {(r["kind"], r["window"]): r for r in walked}
    out = []
    for w in windows:
        train = by[("train", w.index)]
        out.append({"window": w.index, "train": wf.label(w.train), "test": wf.label(w.test),
                    "trial_index": train["trial_index"], "trial": train["trial"], "settings": settings(train["trial"]),
                    "in_sample": brief(train), "out_of_sample": brief(by[("test", w.index)]),
                    "baseline": brief(by.get(("baseline", w.index)))})
    return out
