"""The checks of this machine: Python, packages, Graphviz, the config, ``.env``'s mode, the state dir."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from fsm_bot import wiring
from fsm_bot.config import Config
from fsm_bot.doctor.check import FAIL, OK, WARN, Check
from fsm_bot.errors import BotError
from fsm_bot.statedir import Lock

CORE_PACKAGES = ("polars", "talib", "transitions", "requests", "websocket", "tenacity", "rich", "orjson", "matplotlib")


def python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 11):
        return Check("python", FAIL, f"Python {version}", "fsm-bot needs Python 3.11 or later")
    return Check("python", OK, f"Python {version} ({sys.executable})")


def importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 (a broken install is as missing as an absent one)
        return False
    return True


def packages(live: bool) -> Check:
    missing = [name for name in CORE_PACKAGES if not importable(name)]
    if missing:
        return Check("packages", FAIL, f"cannot import {', '.join(missing)}", "pip install -e .")
    if live and not importable("polymarket"):
        return Check("packages", FAIL, "cannot import polymarket (Polymarket's SDK, polymarket-client), which signs "
                     "--live's orders", "pip install -e '.[live]'")
    return Check("packages", OK, f"the {len(CORE_PACKAGES)} core packages import" +
                 (", and Polymarket's SDK" if live else ""))


def graphviz() -> Check:
    dot = shutil.which("dot")
    if dot is None:
        return Check("graphviz", WARN, "Graphviz `dot` is not on PATH: only the diagram (fsm-bot graph) needs it",
                     "install Graphviz (e.g. apt-get install graphviz) to draw the diagram")
    return Check("graphviz", OK, f"dot at {dot}")


def config(cfg: Config) -> Check:
    return Check("config", OK, f"policy {cfg.policy}, capital ${cfg.capital_usd}, {cfg.intervals} x "
                 f"{cfg.interval_minutes}-minute intervals, stakes ${cfg.base_usd} to ${cfg.cap_usd}")


def dotenv(path: Path) -> Check:
    if not path.exists():
        return Check("dotenv", OK, f"no {path}: settings and keys come from the environment only")
    warning = wiring.dotenv_warning(path)
    if warning:
        return Check("dotenv", WARN, warning.removeprefix("warning: ").removesuffix(f": chmod 600 {path}"),
                     f"chmod 600 {path}")
    return Check("dotenv", OK, f"{path} is mode {path.stat().st_mode & 0o777:o}")


def state_dir(path: Path) -> Check:
    """Writable (a temp file made and removed) and not locked by a running fsm-bot; a dir yet to be made:
    its nearest existing parent writable."""
    if not path.exists():
        parent = next(p for p in path.absolute().parents if p.exists())
        if not os.access(parent, os.W_OK | os.X_OK):
            return Check("state_dir", FAIL, f"{path} does not exist, and {parent} is not writable by this user",
                         "choose a --state-dir you can write to, or fix the owner or mode of its parent")
        return Check("state_dir", OK, f"{path} does not exist yet; it will be made in {parent} (writable)")
    if not path.is_dir():
        return Check("state_dir", FAIL, f"{path} is a file, not a directory", "choose another --state-dir")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fsm-bot-doctor-"):
            pass
    except OSError as exc:
        return Check("state_dir", FAIL, f"{path}: cannot write in it ({exc.strerror})",
                     "fix its owner or mode, or choose another --state-dir")
    try:
        Lock.acquire(path).release()
    except BotError as exc:
        return Check("state_dir", FAIL, str(exc), "stop the fsm-bot that uses it, or choose another --state-dir")
    return Check("state_dir", OK, f"{path} is writable and not locked")
