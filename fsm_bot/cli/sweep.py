"""``sweep``: the command's body (parse, call, write, print)."""

from __future__ import annotations

import argparse
from typing import Any

from fsm_bot.cli.options import output, progress_bar, usage, when, writing


def sweep(args: argparse.Namespace) -> int:
    import json
    import sys
    import time

    from fsm_bot import wiring
    from fsm_bot.errors import Interrupted
    from fsm_bot.research import figure, grid as grids, summary as summaries, sweep as sweeps, walkforward as wf
    from fsm_bot.research.executor import cores
    g = grids.load(args.grid)
    if args.trials is None and not g.grid:
        raise usage(f"--grid {args.grid}: only [search] ranges, no [grid] lists: give --trials N to draw from them")
    if args.test and not args.train:
        raise usage(f"--test {args.test}: needs --train (the window it follows)")
    train = wf.months(args.train, "--train") if args.train else None
    test = wf.months(args.test, "--test") if args.test else 1
    first, last = when(args.first, "--from", g.base.interval_secs), when(args.last, "--to", g.base.interval_secs)
    if first is not None and last is not None and last < first:
        raise usage(f"--to {args.last}: before --from {args.first}")
    output(args.out, "--out", folder=True)
    if args.workers and args.cluster:
        raise usage(f"--workers {args.workers} --cluster {args.cluster}: the cluster's workers run the chunks; "
                    "give one")
    source, feed = wiring.replay_source(args.data)
    months = sweeps.month_chunks(g, feed.first_ms, feed.last_ms, first, last)
    if not months:
        raise usage("--from/--to: no whole session fits in that span of the data")
    windows = wf.windows(months, train, test) if train else []
    started = time.perf_counter()
    try:
        with writing(args.out, "--out", folder=True), \
                progress_bar("sweep (trial-chunks)", sys.stderr.isatty() and not args.json) as progress:
            done = sweeps.run(g, source, months, args.out, trials=args.trials, seed=args.search_seed,
                              objective=args.objective, tuning=windows[0].train if windows else None,
                              workers=args.workers, cluster=args.cluster, progress=progress, feed=feed)
    except Interrupted as exc:
        raise Interrupted(f"{exc}; what was done is in {args.out / 'chunks'}: the same command continues from "
                          "there") from None
    seconds = time.perf_counter() - started
    frame, summary, walked = summaries.build(done, g, source, windows, args.objective)
    tuned_on = wf.label(windows[0].train if windows else months)
    summary |= {"search": None if args.trials is None else
                {"trials_asked": args.trials, "seed": args.search_seed, "tuned_on": tuned_on},
                "workers": "cluster" if args.cluster else args.workers or cores(), "seconds": round(seconds, 2),
                "trial_chunks_per_second": round(done.evaluated / seconds, 4) if done.evaluated else None}
    files = [args.out / "sweep.parquet", args.out / "summary.json"]
    with writing(args.out, "--out", folder=True):
        frame.write_parquet(files[0])
        if windows:
            files.append(figure.walkforward(walked, args.out / "walkforward.png", objective=args.objective,
                                            trials=len(done.trials), train=train, test=test,
                                            span=wf.label(months)))
        summary["files"] = [str(f) for f in files]
        files[1].write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        show(summary)
    return 0


def show(s: dict[str, Any]) -> None:
    from fsm_bot.research.walkforward import SUMMARY_HEAD, pct, usd
    rate = f"{s['trial_chunks_per_second']:.3f} trial-chunks/s" if s["trial_chunks_per_second"] else "nothing run"
    print(f"{s['trials']} trials x {s['chunks']} months = {s['trial_chunks']:,} trial-chunks: {s['evaluated']:,} "
          f"run, {s['reused']:,} read back, in {s['seconds']:.1f} s ({rate}, {s['workers']} workers)")
    print(f"best over {s['span']['first'][:10]}..{s['span']['end'][:10]} (in-sample) by {s['objective_is']}:")
    for r in s["top"][:5]:
        score = "-" if r["objective"] is None else f"{r['objective']:+.4f}"
        print(f"  #{r['trial_index']:<4} {settings(r['settings'])}: {score}; {usd(r['pnl_per_session'])} a session, "
              f"hit rate {pct(r['hit_rate'])} ({pct(r['hit_low'])}-{pct(r['hit_high'])}), "
              f"halts {pct(r['halt_share'], 1)}")
    w = s["walkforward"]
    if w:
        print(f"walk-forward: {w['train_months']}-month train, {w['test_months']}-month test, "
              f"{len(w['windows'])} windows; the trial chosen on each train window, on the test window after it")
        print(f"  {'test':<17} {'trial':<6} {'in: PnL/session':>16} {'out: PnL/session':>17} {'out: hit rate':>14}  "
              "settings")
        for x in w["windows"]:
            i, o = x["in_sample"], x["out_of_sample"]
            print(f"  {x['test']:<17} #{x['trial_index']:<5} {usd(i['pnl_per_session']):>16} "
                  f"{usd(o['pnl_per_session']):>17} {pct(o['hit_rate']):>14}  {settings(x['settings'])}")
        rows = [SUMMARY_HEAD, *w["table"]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_HEAD))]
        for row in rows:
            print("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    print("wrote " + ", ".join(s["files"]))


def settings(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
