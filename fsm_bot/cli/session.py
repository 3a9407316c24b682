"""``start``, ``resume``, ``status``, ``report`` and ``graph``: the session commands' bodies."""

from __future__ import annotations

import argparse
import sys

from fsm_bot.cli.options import load_config, usage


def start(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    env = config.environment()
    cfg = load_config(args, env=env)
    warning = wiring.dotenv_warning()
    if warning and args.mode in wiring.REAL_MODES:
        print(warning, file=sys.stderr)
    opts = runner.Options(state_dir=args.state_dir, mode=args.mode or "sim", data=args.data, start=args.start,
                          speed=args.speed, fresh=args.fresh, confirm_live=args.confirm_live, env=env)
    return runner.start(opts, cfg)


def resume(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    warning = wiring.dotenv_warning()
    if warning:
        print(warning, file=sys.stderr)
    opts = runner.Options(state_dir=args.state_dir, speed=args.speed, confirm_live=args.confirm_live,
                          env=config.environment())
    return runner.resume(opts, mode=args.mode)


def status(args: argparse.Namespace) -> int:
    from fsm_bot import runner
    return runner.status(args.state_dir, args.last, as_json=args.json)


def report(args: argparse.Namespace) -> int:
    from fsm_bot import report
    for path in report.write(args.state_dir, args.out or args.state_dir / "report"):
        print(f"wrote {path}")
    return 0


def graph(args: argparse.Namespace) -> int:
    from fsm_bot import graph
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    unknown = [f for f in formats if f not in graph.FORMATS]
    if unknown or not formats:
        raise usage(f"--format: unknown format(s) {unknown or formats}; choose from {','.join(graph.FORMATS)}")
    written, skipped = graph.export(args.out, formats)
    for path in written:
        print(f"wrote {path}")
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    return 0
