"""What every check returns, and the guard that turns a check's exception into a ``fail``."""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import requests

from fsm_bot.errors import BotError
from fsm_bot.values import frozen

OK, WARN, FAIL = "ok", "warn", "fail"


@frozen
class Check:
    name: str  # "python", "endpoint:clob_url", "clock:binance", ...
    status: str  # ok | warn | fail
    detail: str  # what was seen, with the round trip where one was measured
    fix: str = ""  # what to do, for warn and fail


def guarded(name: str, check: Callable[..., Check], *args: Any, fix: str = "") -> Check:
    """``check(*args)``; whatever it raises is a fail with the error's message (and ``fix``)."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 (the doctor reports; it never stops half-way)
        return Check(name, FAIL, message(exc), fix)


def message(exc: BaseException) -> str:
    """An error in a line: the house's errors as they are (they name no secret), others short."""
    if isinstance(exc, BotError):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    text = found.group(1) if found else (str(exc) or type(exc).__name__)
    return f"{type(exc).__name__}: {text[:160]}"


def timed(method: str, url: str, timeout: float, **kw: Any) -> tuple[requests.Response, int]:
    """One request, never retried: (response, round trip in ms)."""
    t0 = time.monotonic()
    response = requests.request(method, url, timeout=timeout, **kw)
    return response, since(t0)


def since(t0: float) -> int:
    """Milliseconds since the monotonic ``t0``."""
    return round((time.monotonic() - t0) * 1000)
