"""The ``.env`` file and the process environment: read, and merged in one place (``environment``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from fsm_bot.errors import ConfigError


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file; blank lines, comments and ``export`` prefixes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # unreadable, or not UTF-8
        raise ConfigError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def environment(dotenv: Path | None = Path(".env"), env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment over the ``.env`` file: the one place both are merged."""
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ if env is None else env)
    return merged
