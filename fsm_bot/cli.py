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

MODES = ("sim",)


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
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sim", action="store_const", dest="mode", const="sim",
                      help="offline: replay real candles against a simulated venue (the default)")
    _state_dir(p)
    p.add_argument("--fresh", action="store_true", help="archive an unfinished session instead of refusing")
    _session_options(p)

    p = sub.add_parser("resume", help="continue the session in the state dir from its journal",
                       description="Replay the journal, reconcile with the venue and continue from the exact state.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sim", action="store_const", dest="mode", const="sim",
                      help="refuse unless the journal's session is a --sim session")
    _state_dir(p)
    p.add_argument("--speed", type=_speed, default=math.inf, metavar="X", help="clock speed (sim)")

    p = sub.add_parser("status", help="where the session stands (read-only; takes no lock)")
    _state_dir(p)
    p.add_argument("--last", type=int, default=5, metavar="N", help="how many of the last trades to show")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("graph", help="export the interval machine's diagram")
    p.add_argument("--out", type=Path, default=Path("diagrams"), metavar="DIR", help="output folder (default diagrams/)")
    p.add_argument("--format", default="svg,png,mmd,dot", metavar="LIST", help="any of svg,png,mmd,dot")
    return top


def _config(args: argparse.Namespace):
    from fsm_bot import config
    overrides = {"capital_usd": args.capital, "intervals": args.intervals, "interval_minutes": args.interval_minutes,
                 "policy": args.policy, "seed": args.seed}
    return config.load(args.config, config.environment(), overrides)


def _start(args: argparse.Namespace) -> int:
    from fsm_bot import runner
    cfg = _config(args)
    opts = runner.Options(state_dir=args.state_dir, mode=args.mode or "sim", data=args.data, start=args.start,
                          speed=args.speed, fresh=args.fresh)
    return runner.start(opts, cfg)


def _resume(args: argparse.Namespace) -> int:
    from fsm_bot import runner
    return runner.resume(runner.Options(state_dir=args.state_dir, speed=args.speed), mode=args.mode)


def _status(args: argparse.Namespace) -> int:
    from fsm_bot import runner
    return runner.status(args.state_dir, args.last, as_json=args.json)


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


COMMANDS = {"start": _start, "resume": _resume, "status": _status, "graph": _graph}


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
