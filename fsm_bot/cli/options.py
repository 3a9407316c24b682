"""Flags turned into values: the config a command runs with, numbers, times and output paths checked, usage
errors."""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from fsm_bot.errors import BotError, ConfigError, StorageError

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def load_config(args: argparse.Namespace, env: dict[str, str] | None = None, **overrides: object):
    from fsm_bot import config
    flags = {"capital_usd": args.capital, "intervals": args.intervals,
             "interval_minutes": getattr(args, "interval_minutes", None), "policy": getattr(args, "policy", None),
             "seed": getattr(args, "seed", None), **overrides}
    return config.load(args.config, config.environment() if env is None else env, flags)


def numbers(text: str | None, flag: str, low: float, high: float, *, low_ok: bool = False) -> list[str] | None:
    """A comma-separated list of numbers in (low, high) (``[low, high)`` with ``low_ok``), kept as text."""
    if text is None:
        return None
    span = f"{'[' if low_ok else '('}{low:g}, {high:g})"
    values = [v.strip() for v in text.split(",") if v.strip()]
    for v in values:
        try:
            x = float(v) if v.isascii() else math.nan
        except ValueError:
            x = math.nan
        if not ((low <= x if low_ok else low < x) and x < high):
            raise usage(f"{flag}: {v[:40]!r} is not a number in {span}")
    if not values:
        raise usage(f"{flag}: expected one or more numbers in {span}, separated by commas")
    return values


def when(text: str | None, flag: str, interval_secs: int) -> int | None:
    """A time flag (``--from``, ``--to``): a date (its UTC midnight), ISO-8601 UTC or unix seconds on the interval
    grid, as ms."""
    if text is None:
        return None
    from fsm_bot import wiring
    return wiring.parse_start(text + "T00:00:00Z" if DATE.fullmatch(text) else text, interval_secs, flag)


def output(path: Path | None, flag: str, *, folder: bool) -> Path | None:
    """An output folder (``folder``) or file, checked before the work that fills it: refused, naming the flag,
    when a folder is an existing file, a file is an existing folder, or what should hold it is a file or a
    folder this process cannot write in. Missing folders are created when the output is written."""
    if path is None:
        return None
    if folder and path.exists() and not path.is_dir():
        raise usage(f"{flag} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise usage(f"{flag} {path}: is a folder; give a file name")
    home = path if folder else path.parent
    for holder in (home, *home.parents):
        if holder.exists():
            if not holder.is_dir():
                raise usage(f"{flag} {path}: {holder} is a file, not a folder")
            try:  # a file made there and gone: what permissions say, and what they do not (root, /proc, read-only)
                with tempfile.TemporaryFile(dir=holder):
                    pass
            except OSError as exc:
                raise usage(f"{flag} {path}: cannot write in {holder} ({exc.strerror or type(exc).__name__})") \
                    from None
            break
    return path


@contextlib.contextmanager
def writing(path: Path, flag: str, *, folder: bool) -> Iterator[Path]:
    """Create the output folder (or a file's folders), then write: a write the disk refuses (full, read-only,
    no permission) is a ``StorageError`` naming the flag, not a traceback."""
    try:
        (path if folder else path.parent).mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as exc:
        from fsm_bot.storage import ADVICE
        advice = ADVICE.get(exc.errno, "check the disk and the path")
        raise StorageError(f"{flag} {path}: cannot write ({exc.strerror or type(exc).__name__}); {advice}") from None


def usage(message: str) -> BotError:
    return ConfigError(message)


@contextlib.contextmanager
def progress_bar(label: str, shown: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on stderr while the block runs, as a ``progress(done, total)`` callback; None
    when not ``shown`` (not a terminal, or ``--json``)."""
    if not shown:
        yield None
        return
    from rich.progress import Progress
    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
