"""``bot.log``: one JSON object per line (``timestamp``, ``level``, ``component``, ``error_code``,
``message``, ``interval``). API failures that skip an interval are ERROR, a halt CRITICAL, so a
monitor can alert. Every secret the process knows is masked before a line is written.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from fsm_bot.redact import scrub

LOGGER = "fsm_bot"


class Redactor(logging.Filter):
    """Replaces every known secret value with ``***`` in the final message (``redact.scrub``)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self.secrets), None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": getattr(record, "component", record.name.removeprefix(LOGGER + ".") or "bot"),
            "error_code": getattr(record, "error_code", None),
            "message": record.getMessage(),
            "interval": getattr(record, "interval", None),
        }, separators=(",", ":"))


def open_log(path: Path, secrets: Iterable[str] = ()) -> logging.Logger:
    """The bot's logger, writing JSON lines to ``path``; returns the root fsm_bot logger."""
    logger = logging.getLogger(LOGGER)
    close(logger)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redactor(secrets))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def close(logger: logging.Logger | None = None) -> None:
    logger = logger or logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def event(logger: logging.Logger, level: int, component: str, message: str, *, interval: int | None = None,
          error_code: str | None = None) -> None:
    logger.log(level, message, extra={"component": component, "interval": interval, "error_code": error_code})
