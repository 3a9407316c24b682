"""Walk-forward: rolling train and test windows of whole month chunks (``--train 6mo --test 1mo``: train on
months 1-6, test on 7; train on 2-7, test on 8; ...). On each train window the trial with the best objective
(``fsm_bot.research.metrics``; ties go to the trial listed first) is chosen, then reported on the test
window that follows it, which it never saw. Every window is a sum of per-chunk results, so a trial runs once
per month however many windows hold that month.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

from fsm_bot.config import Config
from fsm_bot.errors import ConfigError
from fsm_bot.research import metrics
from fsm_bot.research.chunks import Chunk
from fsm_bot.values import frozen

Results = dict[tuple[str, str], dict[str, Any]]
"""(trial key, chunk label) -> that trial's result on that chunk (``metrics.measure``)."""


@frozen
class Window:
    index: int
    train: tuple[Chunk, ...]
    test: tuple[Chunk, ...]


@frozen
class Trial:
    index: int  # its place in the sweep: the grid's order, or the order Optuna asked for it
    key: str
    cfg: Config


def months(text: str, flag: str) -> int:
    """A window length in whole months: ``6mo``, ``1y`` (12 months) or a bare number of months."""
    m = re.fullmatch(r"(\d{1,3})\s*(mo|months?|y|years?)?", text.strip().lower()) if text.isascii() else None
    n = int(m.group(1)) * (12 if m.group(2) and m.group(2).startswith("y") else 1) if m else 0
    if n < 1:
        raise ConfigError(f"{flag} {text[:40]!r}: expected whole months, e.g. 6mo or 1y (a window is months of "
                          "month chunks)")
    return n


def windows(chunks: Sequence[Chunk], train: int, test: int) -> list[Window]:
    """The rolling windows over ``chunks``: each test window follows its train window; windows step by the
    test length; a last test window shorter than ``test`` is not made."""
    if train + test > len(chunks):
        raise ConfigError(f"--train {train}mo --test {test}mo: needs {train + test} months of data, the span holds "
                          f"{len(chunks)} ({chunks[0].label}..{chunks[-1].label})" if chunks else
                          f"--train {train}mo: the span holds no month")
    out, at = [], 0
    while at + train + test <= len(chunks):
        out.append(Window(len(out) + 1, tuple(chunks[at:at + train]), tuple(chunks[at + train:at + train + test])))
        at += test
    return out


def label(part: Sequence[Chunk]) -> str:
    return part[0].label if len(part) == 1 else f"{part[0].label}..{part[-1].label}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def result(results: Results, trial: Trial, part: Sequence[Chunk], objective: str) -> dict[str, Any]:
    """A trial's result over some chunks: the summed counts, the rates and the objective."""
    t = metrics.totals(results[(trial.key, c.label)] for c in part)
    d = metrics.derived(t, trial.cfg.fee_rate)
    return {"chunk": label(part), "first_ms": part[0].first_ms, "end_ms": part[-1].end_ms,
            "first": iso(part[0].first_ms), "end": iso(part[-1].end_ms), **t, **d,
            "objective": metrics.objective(objective, d)}


def best(results: Results, trials: Sequence[Trial], part: Sequence[Chunk], objective: str) -> tuple[Trial, dict]:
    """The trial with the highest objective over ``part`` (ties: the first listed) and its result."""
    scored = [(metrics.ranked(r["objective"]), -t.index, t, r)
              for t in trials for r in [result(results, t, part, objective)]]
    _, _, trial, r = max(scored, key=lambda x: (x[0], x[1]))
    return trial, r


def walk(results: Results, trials: Sequence[Trial], wins: Sequence[Window], objective: str) -> list[dict[str, Any]]:
    """A train row and a test row per window: the chosen trial's result on each."""
    rows = []
    for w in wins:
        trial, train = best(results, trials, w.train, objective)
        test = result(results, trial, w.test, objective)
        for kind, r in (("train", train), ("test", test)):
            rows.append({"kind": kind, "window": w.index, "trial": trial.key, "trial_index": trial.index, **r})
    return rows


def pooled(rows: Sequence[dict[str, Any]], fee_rate: Decimal) -> dict[str, Any]:
    """The sums of several windows' rows and their rates (a month in several train windows counts in each)."""
    t = metrics.totals(rows)
    return {"windows": len(rows), **t, **metrics.derived(t, fee_rate)}


def summary(rows: Sequence[dict[str, Any]], fee_rate: Decimal,
            baseline: Sequence[dict[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """In-sample (the chosen trials on their train windows) against out-of-sample (the same trials on the
    test windows that follow), the gap between them, and a fixed trial on the same test windows if given."""
    ins = pooled([r for r in rows if r["kind"] == "train"], fee_rate)
    out = pooled([r for r in rows if r["kind"] == "test"], fee_rate)
    gap = {k: None if ins[k] is None or out[k] is None else ins[k] - out[k]
           for k in ("hit_rate", "pnl_per_session", "halt_share", "edge")}
    table = {"in_sample": ins, "out_of_sample": out, "gap": gap}
    if baseline:
        table["baseline"] = pooled(baseline, fee_rate)
    return table


def fixed(results: Results, trial: Trial, wins: Sequence[Window], objective: str) -> list[dict[str, Any]]:
    """One trial's rows on every test window (an untuned baseline to read the walk-forward against)."""
    return [{"kind": "baseline", "window": w.index, "trial": trial.key, "trial_index": trial.index,
             **result(results, trial, w.test, objective)} for w in wins]


SUMMARY_HEAD = ["", "windows", "sessions", "trades", "hit rate (95% Wilson)", "PnL after fees / session",
                "halt share"]
SUMMARY_ROWS = {"in_sample": "in-sample (train windows)", "out_of_sample": "out-of-sample (test windows)",
                "baseline": "base config, untuned (test windows)"}


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def usd(x: float | None, sign: bool = True) -> str:
    return "-" if x is None else f"{'-' if x < 0 else '+' if sign else ''}${abs(x):,.3f}"


def describe(table: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The summary as rows of cells (``SUMMARY_HEAD``): in-sample, out-of-sample, the gap, the baseline."""
    rows = []
    for name in ("in_sample", "out_of_sample", "gap", "baseline"):
        r = table.get(name)
        if r is None:
            continue
        if name == "gap":
            rows.append(["gap (in - out)", "", "", "",
                         "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:+.2f} points",
                         usd(r["pnl_per_session"]),
                         "-" if r["halt_share"] is None else f"{r['halt_share'] * 100:+.1f} points"])
            continue
        hit = "-" if r["hit_rate"] is None else f"{pct(r['hit_rate'])} ({pct(r['hit_low'])}-{pct(r['hit_high'])})"
        rows.append([SUMMARY_ROWS[name], str(r["windows"]), f"{r['sessions']:,}", f"{r['trades']:,}", hit,
                     usd(r["pnl_per_session"]), pct(r["halt_share"], 1)])
    return rows
