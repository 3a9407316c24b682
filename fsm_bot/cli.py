"""``fsm-bot``: commands only. Parse the flags, call the command, map error kinds to exit codes.

Exit codes: 0 done, 1 unexpected error, 2 bad flag/config or state dir, 3 the session halted,
4 the journal needs a human, 5 the state dir is locked by another process, 130 interrupted.
Heavy modules are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

from fsm_bot import __version__
from fsm_bot.errors import BotError

MODES = ("sim", "paper", "live")


def _speed(text: str) -> float:
    if text in ("max", "inf"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'max', got {text!r}") from None
    if not value > 0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'max', got {text!r}")
    return value


def _session_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("session")
    g.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (see README, Configuration)")
    g.add_argument("--capital", metavar="USD", help="starting capital (default 100)")
    g.add_argument("--intervals", metavar="N", help="intervals in the session (default 18)")
    g.add_argument("--interval-minutes", metavar="M", help="5, or 15 for the 15-minute markets (default 5)")
    g.add_argument("--policy", choices=("tiered", "strict"), help="prediction policy (default tiered)")
    g.add_argument("--seed", metavar="N", help="seed of the simulated venue's book (default 1)")
    g.add_argument("--data", type=Path, metavar="FILE",
                   help="parquet of 1-minute BTCUSDT candles to replay (default: the bundled sample)")
    g.add_argument("--start", metavar="T",
                   help="first interval start: ISO-8601 UTC or unix seconds on the grid (default: a fixed point "
                        "of the data)")
    g.add_argument("--speed", type=_speed, default=math.inf, metavar="X",
                   help="run the clock X times faster than wall time (default: as fast as possible)")


def _modes(p: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    group = p.add_mutually_exclusive_group()
    for mode, text in helps.items():
        group.add_argument(f"--{mode}", action="store_const", dest="mode", const=mode, help=text)


def _state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=Path("state"), metavar="DIR",
                   help="where the journal and the session's files live (default ./state)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fsm-bot", description="A crash-safe trading bot for Polymarket's Bitcoin Up or "
                                  "Down markets: an explicit finite-state machine whose every transition is journaled.")
    top.add_argument("--version", action="version", version=f"fsm-bot {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("start", help="start a new session", description="Start a new session. A finished session in "
                       "the state dir is archived first; an unfinished one makes start refuse (resume it, or --fresh).")
    _modes(p, {"sim": "offline: replay real candles against a simulated venue (the default)",
               "paper": "real Binance and Polymarket public data, simulated fills against the real book; no keys",
               "live": "real orders with real money: needs credentials in the environment and --confirm-live"})
    _state_dir(p)
    p.add_argument("--fresh", action="store_true", help="archive an unfinished session instead of refusing")
    p.add_argument("--confirm-live", action="store_true", help="with --live: yes, place real orders")
    _session_options(p)

    p = sub.add_parser("resume", help="continue the session in the state dir from its journal",
                       description="Replay the journal, reconcile with the venue and continue from the exact state.")
    _modes(p, {m: f"refuse unless the journal's session is a --{m} session" for m in MODES})
    _state_dir(p)
    p.add_argument("--confirm-live", action="store_true", help="resuming a --live session: yes, place real orders")
    p.add_argument("--speed", type=_speed, default=math.inf, metavar="X",
                   help="clock speed of a resumed --sim session (a test clock keeps the speed it began with)")

    p = sub.add_parser("status", help="where the session stands (read-only; takes no lock)")
    _state_dir(p)
    p.add_argument("--last", type=int, default=5, metavar="N", help="how many of the last trades to show")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("backtest", help="run the machine over real history, session after session",
                       description="The same machine, handlers and simulated venue as --sim, 18-interval session "
                       "after session over a span of candles; per-session results, decisions, an aggregate and plots.")
    p.add_argument("--data", type=Path, metavar="FILE", help="parquet of 1-minute candles (default: the bundled sample)")
    p.add_argument("--from", dest="first", metavar="T", help="first session start (ISO-8601 UTC or unix seconds)")
    p.add_argument("--to", dest="last", metavar="T", help="last session start")
    p.add_argument("--policy", choices=("tiered", "strict"), help="prediction policy (default tiered)")
    p.add_argument("--seed", metavar="N", help="seed of the simulated venue's books (default 1)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings")
    p.add_argument("--capital", metavar="USD", help="starting capital of each session (default 100)")
    p.add_argument("--intervals", metavar="N", help="intervals per session (default 18)")
    p.add_argument("--out", type=Path, default=Path("backtest"), metavar="DIR",
                   help="where sessions.parquet, aggregate.json and the plots go (default ./backtest)")
    p.add_argument("--decisions", type=Path, metavar="FILE", help="write one row per interval (parquet, or CSV by suffix)")
    p.add_argument("--json", action="store_true", help="print the aggregate as JSON only")

    p = sub.add_parser("risk", help="the sizing and halt rules' risk: exact outcome distribution and Monte Carlo",
                       description="Every win/loss sequence of a session, followed exactly through the machine's "
                       "sizing, fee and halt rules, for each win rate and entry price; checked by a Monte Carlo.")
    p.add_argument("--win-rate", metavar="W[,W...]", help="win rates (default 0.40,0.42,...,0.60)")
    p.add_argument("--price", metavar="P[,P...]", help="entry prices (default 0.45,0.50,0.51,0.55,0.60)")
    p.add_argument("--fee-rate", metavar="R", help="taker fee rate (default: the config's, 0.072)")
    p.add_argument("--monte-carlo", type=int, default=50_000, metavar="N", help="Monte Carlo sessions per cell (0: none)")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="the Monte Carlo's seed")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write P(halt) and expected capital as a PNG")
    p.add_argument("--json", action="store_true", help="print JSON (one object per win rate and price)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (sizing, floor, intervals)")
    p.add_argument("--capital", metavar="USD", help="starting capital (default 100)")
    p.add_argument("--intervals", metavar="N", help="intervals in the session (default 18, at most 22)")

    p = sub.add_parser("report", help="equity curve, drawdown, trades and summary of a session (PNG, Markdown, HTML)")
    _state_dir(p)
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default <state-dir>/report)")

    p = sub.add_parser("graph", help="export the interval machine's diagram")
    p.add_argument("--out", type=Path, default=Path("diagrams"), metavar="DIR", help="output folder (default diagrams/)")
    p.add_argument("--format", default="svg,png,mmd,dot", metavar="LIST", help="any of svg,png,mmd,dot")
    return top


def _config(args: argparse.Namespace, env: dict[str, str] | None = None, **overrides: object):
    from fsm_bot import config
    flags = {"capital_usd": args.capital, "intervals": args.intervals,
             "interval_minutes": getattr(args, "interval_minutes", None), "policy": getattr(args, "policy", None),
             "seed": getattr(args, "seed", None), **overrides}
    return config.load(args.config, config.environment() if env is None else env, flags)


def _numbers(text: str | None, flag: str, low: float, high: float) -> list[str] | None:
    if text is None:
        return None
    values = [v.strip() for v in text.split(",") if v.strip()]
    for v in values:
        try:
            ok = low < float(v) < high
        except ValueError:
            ok = False
        if not ok:
            raise _usage(f"{flag}: {v!r} is not a number in ({low:g}, {high:g})")
    return values or None


def _when(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    from fsm_bot import wiring
    return wiring.parse_start(text, 60)


def _backtest(args: argparse.Namespace) -> int:
    import json
    import sys as _sys

    from fsm_bot import backtest, wiring
    from fsm_bot.adapters import sim
    cfg = _config(args)
    first, last = _when(args.first, "--from"), _when(args.last, "--to")
    source = wiring.sim_source(args.data)
    feed = sim.ReplayFeed(sim.load_candles(sim.BUNDLED if args.data is None else args.data))
    if first is not None and last is not None and last < first:
        raise _usage(f"--to {args.last}: before --from {args.first}")
    progress = None
    if _sys.stderr.isatty() and not args.json:
        from rich.progress import Progress
        bar = Progress(transient=True)
        task = bar.add_task("backtest", total=None)
        bar.start()
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
    try:
        sessions, decisions, seconds = backtest.backtest(feed, cfg, first, last, progress, source)
    finally:
        if progress:
            bar.stop()
    if sessions.height == 0:
        raise _usage("--from/--to: no whole session fits in that span of the data")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = backtest.aggregate(sessions, decisions)
    summary |= {"seconds": round(seconds, 2), "intervals_per_second": round(len(decisions) / seconds)}
    sessions.write_parquet(args.out / "sessions.parquet")
    (args.out / "aggregate.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots = backtest.plots(sessions, decisions, args.out)
    if args.decisions:
        if args.decisions.suffix == ".csv":
            decisions.write_csv(args.decisions)
        else:
            decisions.write_parquet(args.decisions)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    fc, dd = summary["final_capital"], summary["max_drawdown"]
    lo, hi = summary["hit_rate_wilson95"]
    print(f"{summary['sessions']:,} sessions, {summary['intervals']:,} intervals, {summary['trades']:,} trades in "
          f"{seconds:.1f} s ({summary['intervals_per_second']:,} intervals/s)")
    print(f"hit rate        {summary['hit_rate']:.2%} (95% {lo:.2%}-{hi:.2%})" if summary["hit_rate"] is not None
          else "hit rate        no trades")
    print(f"halts           {summary['halts']:,} ({summary['halt_share']:.1%}) {summary['halt_causes']}")
    print(f"final capital   p05 {fc['p05']:.2f}  p25 {fc['p25']:.2f}  median {fc['p50']:.2f}  p75 {fc['p75']:.2f}  "
          f"p95 {fc['p95']:.2f}  mean {fc['mean']:.2f}")
    print(f"in profit       {summary['sessions_in_profit']:.1%} of sessions")
    if summary["pnl_per_trade"] is not None:
        print(f"PnL per trade   {summary['pnl_per_trade']:+.4f} USD; total {summary['pnl_total']:+.2f}, "
              f"fees {summary['fees_total']:.2f}")
    print(f"max drawdown    p50 {dd['p50']:.1%}  p95 {dd['p95']:.1%}")
    print(f"wrote {args.out / 'sessions.parquet'}, {args.out / 'aggregate.json'}, "
          + ", ".join(str(p) for p in plots) + (f", {args.decisions}" if args.decisions else ""))
    return 0


def _risk(args: argparse.Namespace) -> int:
    import json
    from decimal import Decimal

    from fsm_bot import risk
    cfg = _config(args, seed=None)
    if cfg.intervals > 22:
        raise _usage(f"--intervals {cfg.intervals}: the exact analysis enumerates 2^intervals sequences; at most 22")
    win_rates = tuple(float(w) for w in _numbers(args.win_rate, "--win-rate", 0, 1) or risk.WIN_RATES)
    prices = tuple(Decimal(p) for p in _numbers(args.price, "--price", 0, 1) or risk.PRICES)
    fee = Decimal(_numbers(args.fee_rate, "--fee-rate", -1e-12, 1)[0]) if args.fee_rate else cfg.fee_rate
    if args.monte_carlo < 0:
        raise _usage(f"--monte-carlo {args.monte_carlo}: must be >= 0")
    rows = risk.analyse(cfg, win_rates, prices, fee, args.monte_carlo, args.seed)
    if args.plot:
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


def _start(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    env = config.environment()
    cfg = _config(args, env=env)
    warning = wiring.dotenv_warning()
    if warning and args.mode in wiring.REAL_MODES:
        print(warning, file=sys.stderr)
    opts = runner.Options(state_dir=args.state_dir, mode=args.mode or "sim", data=args.data, start=args.start,
                          speed=args.speed, fresh=args.fresh, confirm_live=args.confirm_live, env=env)
    return runner.start(opts, cfg)


def _resume(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    warning = wiring.dotenv_warning()
    if warning:
        print(warning, file=sys.stderr)
    opts = runner.Options(state_dir=args.state_dir, speed=args.speed, confirm_live=args.confirm_live,
                          env=config.environment())
    return runner.resume(opts, mode=args.mode)


def _status(args: argparse.Namespace) -> int:
    from fsm_bot import runner
    return runner.status(args.state_dir, args.last, as_json=args.json)


def _report(args: argparse.Namespace) -> int:
    from fsm_bot import report
    for path in report.write(args.state_dir, args.out or args.state_dir / "report"):
        print(f"wrote {path}")
    return 0


def _graph(args: argparse.Namespace) -> int:
    from fsm_bot import graph
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    unknown = [f for f in formats if f not in graph.FORMATS]
    if unknown or not formats:
        raise _usage(f"--format: unknown format(s) {unknown or formats}; choose from {','.join(graph.FORMATS)}")
    written, skipped = graph.export(args.out, formats)
    for path in written:
        print(f"wrote {path}")
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    return 0


def _usage(message: str) -> BotError:
    from fsm_bot.errors import ConfigError
    return ConfigError(message)


COMMANDS = {"start": _start, "resume": _resume, "status": _status, "graph": _graph, "risk": _risk,
            "backtest": _backtest, "report": _report}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BotError as exc:
        print(f"fsm-bot {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"fsm-bot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
