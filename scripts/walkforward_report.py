"""Regenerate docs/WALKFORWARD.md: the default sweep walked forward over the dev data; every number in it comes
from this run.

    python scripts/walkforward_report.py [--data ../shared/data/btcusdt_1m_dev.parquet] [--work out/walkforward]

It runs ``fsm-bot sweep --grid sweeps/tiered.toml --train 6mo --test 1mo`` (in this process, on every core),
so the first six months only tune and every later month is reported out-of-sample, then writes the document
and copies the sweep's plot to docs/figures/walkforward.png. The sweep's folder (``--work``) keeps every
trial-chunk's result: a run that is stopped continues where it stopped, and a second run reads everything back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fsm_bot import cli  # noqa: E402
from fsm_bot.research import grid as grids  # noqa: E402
from fsm_bot.research.walkforward import SUMMARY_HEAD, pct, usd  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "btcusdt_1m_dev.parquet"


def shown_path(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def months(n: int) -> str:
    return "1 month" if n == 1 else f"{n} months"


def after(n: int) -> str:
    return "the month that follows" if n == 1 else f"the {n} months that follow"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def settings(values: dict[str, Any]) -> str:
    return ", ".join(f"`{k}` {v}" for k, v in values.items())


def hit(r: dict[str, Any]) -> str:
    return "-" if r["hit_rate"] is None else f"{pct(r['hit_rate'])} ({pct(r['hit_low'])}-{pct(r['hit_high'])})"


def windows_table(wf: dict[str, Any]) -> str:
    rows = []
    for w in wf["windows"]:
        i, o, b = w["in_sample"], w["out_of_sample"], w["baseline"]
        rows.append([w["test"], w["train"], f"#{w['trial_index']}: {settings(w['settings'])}",
                     usd(i["pnl_per_session"]), usd(o["pnl_per_session"]), hit(o), pct(o["halt_share"], 1),
                     usd(b["pnl_per_session"]) if b else "-"])
    return table(["test month", "train months", "trial chosen on the train months", "in: PnL / session",
                  "out: PnL / session", "out: hit rate (95%)", "out: halt share", "base config: PnL / session"], rows)


def chosen(wf: dict[str, Any], varied: list[str]) -> str:
    parts = []
    for name in varied:
        counts = Counter(str(w["settings"][name]) for w in wf["windows"])
        parts.append(f"`{name}` " + ", ".join(f"{v} ({n}x)" for v, n in sorted(counts.items(), key=lambda x: -x[1])))
    return "; ".join(parts)


def cost(s: dict[str, Any], run_s: float) -> str:
    """What this run did, and what the results it read back had cost where they ran."""
    done = (f"this run: {run_s:,.0f} s, {s['evaluated']:,} trial-chunks run and {s['reused']:,} read back from the "
            f"sweep's folder on {s['workers']} worker{'s' if s['workers'] != 1 else ''}")
    st = s["stored"]
    if not st["timed"]:
        return done
    minutes = st["cpu_s_per_trial_chunk"] * s["trial_chunks"] / 60
    return (f"{done}; the {st['timed']:,} trial-chunks whose results say took {st['cpu_s']:,.0f} CPU seconds where "
            f"they ran, {st['cpu_s_per_trial_chunk']:.1f} s each: the whole sweep is about "
            f"{minutes:,.0f} CPU minutes, {minutes / 2:,.0f} minutes on two free cores")


def edges(s: dict[str, Any], grid: Any) -> list[str]:
    """A setting chosen in every window at the end of its grid: the best value may lie beyond the grid."""
    lines = []
    for name, values in grid.grid.items():
        picked = {w["settings"][name] for w in s["walkforward"]["windows"]}
        ends = {str(v) if isinstance(v, Decimal) else v for v in (values[0], values[-1])}
        if len(values) > 2 and len(picked) == 1 and picked <= ends:
            lines.append(f"- **At the grid's edge.** Every window chose `{name}` {picked.pop()}, an end of the "
                         f"values swept ({', '.join(str(v) for v in values)}): the best value may lie beyond them.")
    return lines


def reading(s: dict[str, Any]) -> list[str]:
    """What the table says, in sentences whose every number and comparison comes from it."""
    t = s["walkforward"]["summary"]
    ins, out, gap = t["in_sample"], t["out_of_sample"], t["gap"]
    flatters = "In-sample flatters." if gap["pnl_per_session"] > 0 else "In-sample does not flatter."
    lines = [f"- **{flatters}** The chosen trials made {usd(ins['pnl_per_session'])} a session on the "
             f"months they were chosen on and {usd(out['pnl_per_session'])} on the month after: a gap of "
             f"{usd(gap['pnl_per_session'])} a session, and {gap['hit_rate'] * 100:+.2f} points of hit rate "
             f"({pct(ins['hit_rate'])} against {pct(out['hit_rate'])})."]
    be = out["breakeven"]
    side = ("above" if out["hit_low"] > be else "below" if out["hit_high"] < be else "not distinguishable from")
    lines.append(f"- **Out-of-sample against the fees.** The out-of-sample hit rate's 95% interval, "
                 f"{pct(out['hit_low'])}-{pct(out['hit_high'])} over {out['trades']:,} trades, is {side} the "
                 f"break-even hit rate of {pct(be)} at the average entry price paid ({out['avg_entry_price']:.4f}).")
    base = t.get("baseline")
    if base:
        better = out["pnl_per_session"] - base["pnl_per_session"]
        se = (out["pnl_per_session_se"] ** 2 + base["pnl_per_session_se"] ** 2) ** 0.5
        verdict = "more than" if abs(better) > 2 * se else "within"
        lines.append(f"- **Tuning against not tuning.** On the same test months the untuned base config made "
                     f"{usd(base['pnl_per_session'])} a session; the walk-forward's choices made "
                     f"{usd(abs(better), sign=False)} a session {'more' if better >= 0 else 'less'}, {verdict} two "
                     f"standard errors of the difference (one is {usd(se, sign=False)}), and halted in "
                     f"{pct(out['halt_share'], 1)} of sessions against {pct(base['halt_share'], 1)}.")
    return lines


def document(s: dict[str, Any], grid_file: Path, run_s: float) -> str:
    wf = s["walkforward"]
    n_test = len(wf["windows"])
    head = [c or "" for c in SUMMARY_HEAD]
    return "\n".join([
        "# Walk-forward of the default policy", "",
        "Does tuning the tiered policy on past months pick settings that hold up on the next month? This page "
        f"tunes on {months(wf['train_months'])} of the data at a time and reports on {after(wf['test_months'])}, "
        "which the choice never saw. Every number here is regenerated by `python scripts/walkforward_report.py` "
        f"({cost(s, run_s)}).", "",
        "## How", "",
        f"- **Data**: `{Path(s['data']).name}`, sessions starting {s['span']['first'][:16]}Z to before "
        f"{s['span']['end'][:16]}Z, cut into {s['chunks']} month chunks (each a chain of `--sim` sessions "
        "through the machine, starting fresh at the month's first interval).",
        f"- **Trials**: the {s['trials']} combinations of `{shown_path(s['grid'])}`'s grid, each run once per month "
        f"({s['trial_chunks']:,} trial-chunks); every window below is a sum of those per-month results.",
        f"- **Windows**: train on {months(wf['train_months'])}, test on {after(wf['test_months'])}, rolled by "
        f"the test's length: {n_test} window{'s' if n_test != 1 else ''}, so the first "
        f"{months(wf['train_months'])} only tune and each later month is reported once, out-of-sample.",
        "- **Books**: the simulated venue's (README, *The simulated venue*), drawn independently of the candles "
        "and of the outcome: a tighter price guard buys the same hit rate for less there, which a real book, "
        "whose prices move with the odds, need not allow.",
        f"- **Objective**: {s['objective_is']} (`--objective {s['objective']}`): what the account sees, the fees, "
        "the price guard's skips, the streak sizing and the halts included. Ties go to the trial listed first.",
        "", "```toml", grid_file.read_text().strip(), "```", "",
        "## In-sample against out-of-sample", "",
        table(head, wf["table"]), "",
        "In-sample pools the chosen trial of each window over its own train months (a month counts once in each "
        "of the windows that train on it); out-of-sample pools the same trials over the month after each. The "
        "base config is the defaults, one of the grid's trials, never tuned.", "",
        *reading(s), *edges(s, grids.load(grid_file)), "",
        "![walk-forward: in-sample and out-of-sample by test month](figures/walkforward.png)", "",
        "## Window by window", "",
        windows_table(wf), "",
        f"Settings chosen: {chosen(wf, s['varied'])}.", "",
        "## The whole span, in-sample", "",
        "The best trials over all the months at once: the number a sweep without walk-forward would report.", "",
        table(["trial", "settings", "PnL / session", "hit rate (95%)", "halt share"],
              [[f"#{r['trial_index']}", settings(r["settings"]), usd(r["pnl_per_session"]), hit(r),
                pct(r["halt_share"], 1)] for r in s["top"][:5]]), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEV)
    ap.add_argument("--grid", type=Path, default=ROOT / "sweeps" / "tiered.toml")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "walkforward", help="the sweep's folder")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "WALKFORWARD.md")
    ap.add_argument("--train", default="6mo", help="train window (default 6mo)")
    ap.add_argument("--test", default="1mo", help="test window (default 1mo)")
    ap.add_argument("--workers", help="local processes (default: every core)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    argv = ["sweep", "--grid", str(args.grid), "--data", str(args.data), "--train", args.train, "--test", args.test,
            "--out", str(args.work), "--json", *(["--workers", args.workers] if args.workers else [])]
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    if code:
        return code
    summary = json.loads((args.work / "summary.json").read_text())
    figures = args.out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.work / "walkforward.png", figures / "walkforward.png")
    args.out.write_text(document(summary, args.grid, time.perf_counter() - started))
    print(f"wrote {args.out} and {figures / 'walkforward.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
