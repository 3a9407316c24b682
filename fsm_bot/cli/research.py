"""``backtest`` and ``risk``: the research commands' bodies (parse, call, print)."""

from __future__ import annotations

import argparse

from fsm_bot.cli.options import load_config, numbers, output, usage, when, writing


def backtest(args: argparse.Namespace) -> int:
    import json
    import sys as _sys

    from fsm_bot import backtest, wiring
    from fsm_bot.ports import MINUTE_MS
    from fsm_bot.report import backtest_page
    from fsm_bot.timestamps import iso_seconds, parse_iso
    if args.prices is not None:
        return recorded_backtest(args)
    if args.quotes or args.settle:
        raise usage("--quotes/--settle: they say how --prices FILE is used; give --prices")
    cfg = load_config(args)
    first, last = when(args.first, "--from", cfg.interval_secs), when(args.last, "--to", cfg.interval_secs)
    if first is not None and last is not None and last < first:
        raise usage(f"--to {args.last}: before --from {args.first}")
    output(args.out, "--out", folder=True)
    output(args.decisions, "--decisions", folder=False)
    if args.workers and args.cluster:
        raise usage(f"--workers {args.workers} --cluster {args.cluster}: the cluster's workers run the chunks; "
                    "give one of them")
    source, feed = wiring.replay_source(args.data)
    progress = None
    if _sys.stderr.isatty() and not args.json:
        from rich.progress import Progress
        bar = Progress(transient=True)
        task = bar.add_task("backtest (month chunks)", total=None)
        bar.start()
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
    import time

    from fsm_bot.research import chunks
    started = time.perf_counter()
    try:
        months = chunks.split(*chunks.span(feed.first_ms, feed.last_ms, cfg, first, last))
        sessions, decisions = chunks.run(source, cfg, months, args.workers, args.cluster, progress, feed)
    finally:
        if progress:
            bar.stop()
    seconds = time.perf_counter() - started
    data_span = f"the data covers {iso_seconds(feed.first_ms)} to {iso_seconds(feed.last_ms + MINUTE_MS)}"
    if sessions.height == 0:
        raise usage(f"--from/--to: no whole session fits in that span of the data ({data_span})")
    starts = sessions.get_column("start")
    cut = [f"{flag} {text}" for flag, text, given, at in (("--from", args.first, first, starts[0]),
                                                          ("--to", args.last, last, starts[-1]))
           if given is not None and abs(parse_iso(at) - given) > 86_400_000]  # a day off: the data ends sooner
    if cut and not args.json:
        print(f"note: {', '.join(cut)}: sessions run from {starts[0]} to {starts[-1]} ({data_span})",
              file=_sys.stderr)
    summary = backtest.aggregate(sessions, decisions, cfg)
    summary |= {"seconds": round(seconds, 2), "evaluated_intervals": backtest.evaluated(decisions),
                "intervals_per_second": round(backtest.evaluated(decisions) / max(seconds, 1e-9)),
                "span": {"first_session": starts[0], "last_session": starts[-1]},
                "data": {k: v for k, v in source.items() if k != "kind"}, "config": cfg.to_json()}
    with writing(args.out, "--out", folder=True):
        sessions.write_parquet(args.out / "sessions.parquet")
        (args.out / "aggregate.json").write_text(json.dumps(summary, indent=2) + "\n")
        plots = backtest.plots(sessions, decisions, args.out, cfg)
        span = f"starting {starts[0][:16].replace('T', ' ')} to {starts[-1][:16].replace('T', ' ')} UTC"
        (args.out / "report.html").write_text(backtest_page.page(summary, cfg, plots, span), encoding="utf-8")
    if args.decisions:
        from fsm_bot.research import compare
        with writing(args.decisions, "--decisions", folder=False):
            compare.write_decisions(decisions, args.decisions)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    fc, dd = summary["final_capital"], summary["max_drawdown"]
    lo, hi = summary["hit_rate_wilson95"]
    after_halts = summary["intervals"] - summary["evaluated_intervals"]
    print(f"{summary['sessions']:,} sessions, {summary['evaluated_intervals']:,} intervals evaluated"
          + (f" ({after_halts:,} more a halt left unrun)" if after_halts else "")
          + f", {summary['trades']:,} trades in {seconds:.1f} s ({summary['intervals_per_second']:,} evaluated "
          f"intervals/s)")
    print(f"hit rate        {summary['hit_rate']:.2%} (95% {lo:.2%}-{hi:.2%})" if summary["hit_rate"] is not None
          else "hit rate        no trades")
    print(f"halts           {summary['halts']:,} ({summary['halt_share']:.1%}) {summary['halt_causes']}")
    print(f"final capital   p05 {fc['p05']:.2f}  p25 {fc['p25']:.2f}  median {fc['p50']:.2f}  p75 {fc['p75']:.2f}  "
          f"p95 {fc['p95']:.2f}  mean {fc['mean']:.2f}")
    print(f"in profit       {summary['sessions_in_profit']:.1%} of sessions")
    if summary["pnl_per_trade"] is not None:
        print(f"PnL             {summary['pnl_gross_total']:+.2f} USD before fees, {summary['fees_total']:.2f} of "
              f"fees, {summary['pnl_total']:+.2f} after ({summary['pnl_per_trade']:+.4f} a trade)")
    if summary["breakeven_hit_rate"] is not None:
        print(f"break-even      {summary['breakeven_hit_rate']:.2%} at the average entry price "
              f"{summary['avg_entry_price']:.4f}: the hit rate is {summary['vs_breakeven']} it")
    print(f"max drawdown    p50 {dd['p50']:.1%}  p95 {dd['p95']:.1%}")
    skips = sorted(summary["skip_reasons"].items(), key=lambda kv: -kv[1])
    if skips:
        print(f"skipped         {sum(n for _, n in skips):,}: "
              + ", ".join(f"{reason.removeprefix('skip:')} {n:,}" for reason, n in skips[:4])
              + (f" and {len(skips) - 4} more reasons (aggregate.json)" if len(skips) > 4 else ""))
    print(f"wrote {args.out / 'report.html'}, {args.out / 'sessions.parquet'}, {args.out / 'aggregate.json'}, "
          + ", ".join(str(p) for p in plots) + (f", {args.decisions}" if args.decisions else ""))
    return 0


def recorded_backtest(args: argparse.Namespace) -> int:
    """``backtest --prices``: the simulated book and the recorded prices over one span, side by side."""
    import json

    from fsm_bot.adapters import recorded
    from fsm_bot.research import compare
    minutes = compare.minutes(args.prices, None if args.interval_minutes is None else load_config(args).interval_minutes)
    cfg = load_config(args, interval_minutes=str(minutes))
    first, last = when(args.first, "--from", cfg.interval_secs), when(args.last, "--to", cfg.interval_secs)
    if first is not None and last is not None and last < first:
        raise usage(f"--to {args.last}: before --from {args.first}")
    output(args.out, "--out", folder=True)
    output(args.decisions, "--decisions", folder=False)
    if args.data is None:
        raise usage("--prices: give --data, the candles of the days the prices file covers")
    replays = recorded.replays(args.data, args.prices, cfg.interval_minutes, quotes=args.quotes or "recorded",
                               settle=args.settle or "recorded")
    result = compare.run(replays, cfg, first, last)
    summary = compare.summary(result, cfg)
    sim, rec = (result[side] for side in compare.SIDES)
    with writing(args.out, "--out", folder=True):
        sim["sessions"].write_parquet(args.out / "sessions.parquet")
        rec["sessions"].write_parquet(args.out / "sessions_recorded.parquet")
        (args.out / "aggregate.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.decisions:
        with writing(args.decisions, "--decisions", folder=False):
            compare.write_decisions(sim["decisions"], args.decisions)
            compare.write_decisions(rec["decisions"], compare.decisions_path(args.decisions))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print("\n".join(compare.table(summary, cfg.policy, cfg.seed)))
    extra = f", {args.decisions}, {compare.decisions_path(args.decisions)}" if args.decisions else ""
    print(f"wrote {args.out / 'aggregate.json'} (the recorded side: recorded_prices), {args.out / 'sessions.parquet'}, "
          f"{args.out / 'sessions_recorded.parquet'}{extra}")
    return 0


def risk(args: argparse.Namespace) -> int:
    import json
    from decimal import Decimal

    from fsm_bot import exact_risk as risk
    cfg = load_config(args, seed=None)
    if cfg.intervals > 22:
        raise usage(f"--intervals {cfg.intervals}: the exact analysis enumerates 2^intervals sequences; at most 22")
    win_rates = tuple(float(w) for w in numbers(args.win_rate, "--win-rate", 0, 1) or risk.WIN_RATES)
    prices = tuple(Decimal(p) for p in numbers(args.price, "--price", 0, 1) or risk.PRICES)
    fees = numbers(args.fee_rate, "--fee-rate", 0, 1, low_ok=True)
    if fees is not None and len(fees) > 1:
        raise usage(f"--fee-rate {args.fee_rate}: one rate, not a list")
    fee = Decimal(fees[0]) if fees else cfg.fee_rate
    output(args.plot, "--plot", folder=False)
    rows = risk.analyse(cfg, win_rates, prices, fee, args.monte_carlo, args.seed)
    if args.plot:
        with writing(args.plot, "--plot", folder=False):
            risk.plot(rows, args.plot)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "distribution"} for r in rows], indent=2))
        return 0
    print(f"{cfg.intervals}-interval sessions from ${cfg.capital_usd}, floor ${cfg.floor_usd}, fee rate {fee}; "
          f"every trade at the entry price; {2 ** cfg.intervals:,} sequences each")
    head = f"{'win':>5} {'price':>5} {'P(halt)':>8} {'P(loss)':>8} {'E[final]':>9} {'median':>8} {'p05':>7} " \
           f"{'p95':>8} {'maxDD95':>8}  Monte Carlo P(halt), E[final]"
    print(head)
    for r in rows:
        mc = r.get("monte_carlo")
        check = (f"  {mc['p_halt']:.4f}+-{mc['p_halt_se']:.4f}, {mc['expected_final']:.2f}+-"
                 f"{mc['expected_final_se']:.2f} {'ok' if r['monte_carlo_agrees'] else 'DISAGREES'}") if mc else ""
        print(f"{r['win_rate']:>5.2f} {r['price']:>5.2f} {r['p_halt']:>8.4f} {r['p_loss']:>8.4f} "
              f"{r['expected_final']:>9.2f} {r['median_final']:>8.2f} {r['final_p05']:>7.2f} {r['final_p95']:>8.2f} "
              f"{r['max_drawdown_p95']:>8.1%}{check}")
    for price in prices:
        print(f"break-even win rate at {price}: {risk.breakeven_win_rate(price, fee):.4f}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
