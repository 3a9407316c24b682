"""``start``, ``resume``, ``status``, ``report`` and ``graph``: the session commands' bodies."""

from __future__ import annotations

import argparse
import sys

from fsm_bot.cli.options import load_config, output, usage, writing
from fsm_bot.errors import EnvironmentFailure


def start(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    env = config.environment()
    cfg = load_config(args, env=env)
    warning = wiring.dotenv_warning()
    if warning and args.mode in wiring.REAL_MODES:
        print(warning, file=sys.stderr)
    opts = runner.Options(state_dir=args.state_dir, mode=args.mode or "sim", data=args.data, start=args.start,
                          speed=args.speed, fresh=args.fresh, confirm_live=args.confirm_live, env=env,
                          sessions=None if args.forever else args.sessions, stop_on_halt=args.stop_on_halt,
                          notify=notify_urls(args.notify, env), metrics_port=args.metrics_port,
                          metrics_host=args.metrics_host)
    return runner.start(opts, cfg)


def notify_urls(flags: list[str], env: dict[str, str]) -> tuple[str, ...]:
    """``--notify`` and ``FSM_BOT_NOTIFY_URLS`` (comma-separated), each checked now (exit 2), never printed.
    The notifier (and ``requests`` under it) is loaded only when there is a URL to check."""
    urls = tuple(flags) + tuple(u.strip() for u in env.get("FSM_BOT_NOTIFY_URLS", "").split(",") if u.strip())
    if urls:
        from fsm_bot import alerts
        for url in urls:
            alerts.Endpoint.parse(url)
    return urls


def resume(args: argparse.Namespace) -> int:
    from fsm_bot import config, runner, wiring
    warning = wiring.dotenv_warning()
    if warning:
        print(warning, file=sys.stderr)
    env = config.environment()
    opts = runner.Options(state_dir=args.state_dir, speed=args.speed, confirm_live=args.confirm_live, env=env,
                          notify=notify_urls([], env))
    return runner.resume(opts, mode=args.mode)


def history(args: argparse.Namespace) -> int:
    import json

    from fsm_bot import history
    plot, html = output(args.plot, "--plot", folder=False), output(args.html, "--html", folder=False)
    found, problems = history.scan(args.state_dir)
    data = history.summary(found, problems)
    if plot or html:
        from fsm_bot.report import history_page
    if plot:
        with writing(plot, "--plot", folder=False):
            history_page.picture(found, plot)
    if html:
        text = history_page.page(found, data, str(args.state_dir))
        with writing(html, "--html", folder=False):
            html.write_text(text, encoding="utf-8")
    print(json.dumps(data, indent=2) if args.json else history.render(data))
    for path in (plot, html) if not args.json else ():
        if path:
            print(f"wrote {path}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    import json

    from fsm_bot import config, doctor
    env = config.environment()
    cfg = config.load(args.config, env, {})
    checks = doctor.run(args.mode or "paper", cfg, env, args.state_dir, geoblock_url=args.geoblock_url)
    print(json.dumps(doctor.as_json(checks), indent=2) if args.json else doctor.render(checks))
    return doctor.exit_code(checks)


def status(args: argparse.Namespace) -> int:
    from fsm_bot import status
    return status.status(args.state_dir, args.last, as_json=args.json)


def report(args: argparse.Namespace) -> int:
    from fsm_bot import report
    r = report.load(args.state_dir)
    out = output(args.out or args.state_dir / "report", "--out", folder=True)
    with writing(out, "--out", folder=True):
        written = report.write(r, out)
    for path in written:
        print(f"wrote {path}")
    return 0


def graph(args: argparse.Namespace) -> int:
    """``--out DIR``: ``interval.<format>`` for each of ``--format``; ``--out FILE.svg`` (or .png, .mmd, .dot):
    that one file, in the format its name ends with."""
    from fsm_bot import graph
    given = args.format is not None
    formats = tuple(f.strip() for f in (args.format or ",".join(graph.FORMATS)).split(",") if f.strip())
    unknown = [f for f in formats if f not in graph.FORMATS]
    if unknown or not formats:
        raise usage(f"--format: unknown format(s) {unknown or formats}; choose from {','.join(graph.FORMATS)}")
    one = args.out.suffix[1:].lower()
    if one in graph.FORMATS and not args.out.is_dir():
        if given and formats != (one,):
            raise usage(f"--format {args.format}: --out {args.out} is one {one} file; leave out --format, or give "
                        "--out a folder")
        with writing(output(args.out, "--out", folder=False), "--out", folder=False):
            written, skipped = graph.write({one: args.out})
        if skipped:
            raise EnvironmentFailure(f"--out {args.out}: not written; {skipped[0]}")
    else:
        with writing(output(args.out, "--out", folder=True), "--out", folder=True):
            written, skipped = graph.export(args.out, formats)
    for path in written:
        print(f"wrote {path}")
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    return 0
