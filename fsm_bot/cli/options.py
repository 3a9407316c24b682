"""Flags turned into values: the config a command runs with, numbers and times checked, usage errors."""

from __future__ import annotations

import argparse

from fsm_bot.errors import BotError, ConfigError


def load_config(args: argparse.Namespace, env: dict[str, str] | None = None, **overrides: object):
    from fsm_bot import config
    flags = {"capital_usd": args.capital, "intervals": args.intervals,
             "interval_minutes": getattr(args, "interval_minutes", None), "policy": getattr(args, "policy", None),
             "seed": getattr(args, "seed", None), **overrides}
    return config.load(args.config, config.environment() if env is None else env, flags)


def numbers(text: str | None, flag: str, low: float, high: float) -> list[str] | None:
    if text is None:
        return None
    values = [v.strip() for v in text.split(",") if v.strip()]
    for v in values:
        try:
            ok = low < float(v) < high
        except ValueError:
            ok = False
        if not ok:
            raise usage(f"{flag}: {v!r} is not a number in ({low:g}, {high:g})")
    return values or None


def when(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    from fsm_bot import wiring
    return wiring.parse_start(text, 60, flag)


def usage(message: str) -> BotError:
    return ConfigError(message)
