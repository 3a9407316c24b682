"""Alerts: what a person watching a session should hear, POSTed to webhooks off the engine's thread.

``Notifier`` is an observer: ``on_transition`` puts a record's events (JSON-ready dicts) on a bounded queue,
never blocking, raising or touching the network (a full queue drops the event: ``dropped``). One daemon
thread POSTs each event to every endpoint in the form its URL names: Telegram (``/bot<token>/sendMessage``:
``{"chat_id", "text"}``, the URL's query moved into the body), Discord (``/api/webhooks/``: ``{"content"}``),
Slack (``hooks.slack.com`` or ``/services/...``: ``{"text"}``), else the event itself. Transient failures
(connection errors, timeouts, 5xx, 429 with Retry-After up to a cap) are retried with backoff up to
``attempts``, then given up; a failing endpoint is logged once (WARNING) until it recovers (INFO). A webhook
URL is a secret: an endpoint is only ever named by scheme, host and form. Backoff and ``close``'s timeout
are wall time: a webhook lives in the real world even when the session's clock is simulated.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
import time
from dataclasses import field
from decimal import Decimal
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests

from fsm_bot.config import is_loopback
from fsm_bot.errors import ConfigError
from fsm_bot.logs import event as log_event
from fsm_bot.money import usd
from fsm_bot.session import CORRECTING, Session, iso, iso_seconds
from fsm_bot.steps import Halt, Reconciled, Recorded, Skip, Submitted, SubmitUnknown, Tick
from fsm_bot.values import frozen

ORDINARY_SKIPS = frozenset({"no_signal", "volatility", "price_guard", "too_late", "stale_data", "no_liquidity",
                            "late_resume", "missed"})
"""Skip reasons that are the strategy or the clock at work, not an error: they raise no alert."""
INFO, ERROR, CRITICAL = "info", "error", "critical"
TEXT_LIMIT = 1900  # Discord's content holds 2000 characters, Telegram's text 4096
_TELEGRAM_PATH = re.compile(r"/bot[^/]+/sendMessage/?")
_HEADERS = {"User-Agent": "fsm-bot alerts"}
_STOP = object()


@frozen
class Endpoint:
    """Where one URL's alerts go: the URL posted to, the body's form, and the name a log line may show."""

    post_url: str = field(repr=False)  # a secret
    form: str  # "telegram", "discord", "slack" or "generic"
    name: str  # scheme://host[:port], nothing of the path or the query
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # Telegram: the URL's query (chat_id, ...)

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        """The endpoint of ``url``; ``ConfigError`` (the URL masked) when it cannot be one."""
        try:
            parts = urlsplit(url := url.strip())
            name, path = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.hostname else "***", parts.path
            parts.port  # noqa: B018 (a port that is not a number raises)
        except ValueError:
            raise ConfigError("notify URL ***: not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or (
                parts.scheme == "http" and not is_loopback(url)):
            raise ConfigError(f"notify URL {name}: must be an https:// URL (plain http:// only on a loopback host)")
        form = ("telegram" if _TELEGRAM_PATH.fullmatch(path) else "discord" if "/api/webhooks/" in path else
                "slack" if parts.hostname == "hooks.slack.com" or path.startswith("/services/") else "generic")
        if form != "telegram":
            return cls(url, form, name)
        params = tuple(parse_qsl(parts.query))
        if "chat_id" not in dict(params):
            raise ConfigError(f"notify URL {name} (telegram): needs its chat id, as in .../sendMessage?chat_id=123")
        return cls(urlunsplit((parts.scheme, parts.netloc, path, "", "")), form, name, params)

    def body(self, event: dict[str, Any]) -> dict[str, Any]:
        """What is POSTed for ``event``."""
        if self.form == "generic":
            return event
        text = text_of(event)[:TEXT_LIMIT]
        if self.form == "telegram":
            return {**dict(self.params), "text": text}
        return {"content": text} if self.form == "discord" else {"text": text}


def _plain(value: Any) -> Any:
    """``value`` as JSON holds it: a Decimal as its exact string, no NaN, containers walked."""
    if isinstance(value, (dict, list, tuple)):
        return {str(k): _plain(v) for k, v in value.items()} if isinstance(value, dict) else [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if value is None or isinstance(value, (str, int, bool)) else str(value)


def _event(name: str, level: str, s: Session, interval: int, ts: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "level": level, "session": s.session, "mode": s.mode, "interval": interval, "ts": ts,
            **{k: _plain(v) for k, v in fields.items()}}


def events(t: Any) -> list[dict[str, Any]]:
    """A record's events (most have none): trade, settled, skip, halt, submit_unknown, correction."""
    step, s = t.step, t.after
    at = (s, t.record["interval"], t.record["ts"])
    if isinstance(step, Submitted):
        f, sized, predicted = step.fill, s.current.sized, s.current.prediction
        side = sized.order.side if sized is not None and sized.order else predicted.side if predicted else None
        return [_event("trade", INFO, *at, side=side, stake=f.spent_usd, price=f.avg_price, shares=f.shares,
                       fee=f.fee_usd, order_id=step.order_id)]
    if isinstance(step, Recorded) and step.row.outcome in ("WIN", "LOSS", "VOID"):
        r = step.row
        return [_event("settled", ERROR if r.outcome == "VOID" else INFO, *at, outcome=r.outcome, reason=r.reason,
                       side=r.prediction, pnl=r.pnl, capital=r.capital_after, streak=r.win_streak)]
    if isinstance(step, Skip) and step.reason not in ORDINARY_SKIPS:
        return [_event("skip", ERROR, *at, reason=step.reason, detail=step.detail)]
    if isinstance(step, Halt):
        return [_event("halt", CRITICAL, *at, cause=step.cause, detail=step.detail)]
    if isinstance(step, SubmitUnknown):
        return [_event("submit_unknown", ERROR, *at, key=step.key, detail=step.detail)]
    if isinstance(step, (Tick, Reconciled)):
        results = step.confirmed if isinstance(step, Tick) else step.results
        return [_event("correction", ERROR, s, r.interval, t.record["ts"], status=r.status, official=r.official,
                       old_outcome=r.old_outcome, new_outcome=r.new_outcome, pnl_change=r.pnl_change,
                       capital=r.capital_after) for r in results if r.status in CORRECTING]
    return []


_TEXT = {  # the text form: one short line per event
    "session_start": "session {begun} ({mode}): {intervals} intervals from {start}, capital {capital$}, "
                     "policy {policy}",
    "trade": "interval {interval} bought {side} {stake$} @ {price} ({shares} shares), order {order_id:.12}",
    "settled": "interval {interval} {outcome} {pnl+$}, capital {capital$}, streak {streak}",
    "void": "interval {interval} VOID ({reason}), capital {capital$}",
    "skip": "interval {interval} skipped: {reason} ({detail})",
    "halt": "session HALTED at interval {interval}: {cause} ({detail})",
    "submit_unknown": "interval {interval} order {key:.12} answer unknown: {detail}",
    "correction": ("interval {interval} corrected ({status}): {old_outcome} -> {new_outcome}, PnL {pnl_change+$}, "
                   "capital {capital$}"),
    "session_end": ("session {ended}: {trades} traded of {intervals} intervals, {wins} won / {losses} lost, "
                    "PnL {pnl+$}, capital {capital$}, max drawdown {max_drawdown%}"),
}


class _Fields(dict):
    """An event's fields for ``_TEXT``: ``{x$}`` dollars, ``{x+$}`` signed dollars, ``{x%}`` a percentage."""

    def __missing__(self, key: str) -> str:
        value = self.get(key.rstrip("+$%"))
        if value is None or key[-1] not in "$%":
            return "?"
        return f"{Decimal(str(value)):.2%}" if key.endswith("%") else usd(Decimal(str(value)), key.endswith("+$"))


def text_of(e: dict[str, Any]) -> str:
    """The one human line of an event, e.g. ``fsm-bot sim-...: interval 3 WIN +$4.09, capital $104.09, streak 1``."""
    level = "" if e["level"] == INFO else f"{e['level'].upper()}: "
    form = "void" if e["event"] == "settled" and e.get("outcome") == "VOID" else e["event"]
    fields = _Fields(e, begun=f"resumed at interval {e['interval']}" if e.get("resumed") else "start",
                     ended=f"halted ({e['halted']})" if e.get("halted") else "finished")
    return f"fsm-bot {e['session']}: {level}" + _TEXT[form].format_map(fields)


# -- the notifier ---------------------------------------------------------------------------------------
class Notifier:
    """An observer that sends a session's events to webhooks from one background thread (see the module)."""

    def __init__(self, urls: Iterable[str], log: logging.Logger, *, timeout_secs: float = 5.0, attempts: int = 3,
                 queue_size: int = 1000, clock_ms: Callable[[], int], backoff_secs: float = 0.5,
                 retry_after_max_secs: float = 30.0) -> None:
        self.endpoints = [Endpoint.parse(u) for u in urls]
        self.log, self.clock_ms = log, clock_ms
        self.timeout_secs, self.attempts = timeout_secs, max(1, attempts)
        self.backoff_secs, self.retry_after_max_secs = backoff_secs, retry_after_max_secs
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.dropped = self.unsent = self.sent = self.given_up = 0  # events dropped, left at close; deliveries
        self._failing: dict[int, int] = {}  # endpoint index -> events given up since it began failing
        self._complained: set[str] = set()
        self._stop = threading.Event()
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._drain, name="fsm-bot-alerts", daemon=True)
        if self.endpoints:
            self._thread.start()

    def on_transition(self, t: Any) -> None:
        self._emit(lambda: events(t))

    def start_session(self, session: Session, resumed: bool = False) -> None:
        """``session_start``: the session's capital, intervals, policy and start (``resumed``: a resume)."""
        s = session
        self._emit(lambda: [_event("session_start", INFO, s, min(s.interval, s.intervals), iso(self.clock_ms()),
                                   capital=s.capital, intervals=s.intervals, interval_minutes=s.cfg.interval_minutes,
                                   policy=s.cfg.policy, start=iso_seconds(s.start_ms), resumed=resumed)])

    def end_session(self, session: Session, summary: dict[str, Any]) -> None:
        """``session_end`` with ``summary``'s fields (e.g. ``console.summary(session)``)."""
        s = session
        self._emit(lambda: [{**_plain(summary), **_event("session_end", CRITICAL if s.halted else INFO, s,
                                                         min(s.interval, s.intervals), iso(self.clock_ms()))}])

    def _emit(self, build: Callable[[], list[dict[str, Any]]]) -> None:
        """Queue the events ``build`` makes, on the engine's thread: never blocks (a full queue drops the
        event), never raises (whatever goes wrong is logged once)."""
        if not self.endpoints or self._stop.is_set():
            return
        try:
            built = build()
        except Exception as exc:
            return self._complain("event", f"an alert could not be built ({type(exc).__name__})")
        for e in built:
            try:
                self.queue.put_nowait(e)
            except queue.Full:
                self.dropped += 1
                self._complain("full", f"alert queue full ({self.queue.maxsize} events): events are dropped")

    def close(self, timeout_secs: float = 5.0) -> None:
        """Wait up to ``timeout_secs`` for the queue to drain, then stop the thread (what is left: ``unsent``)."""
        if self._stop.is_set():
            return
        deadline, q = time.monotonic() + timeout_secs, self.queue
        with q.all_tasks_done:
            while q.unfinished_tasks and self._thread.is_alive() and deadline > time.monotonic():
                q.all_tasks_done.wait(deadline - time.monotonic())
            self.unsent = q.unfinished_tasks if self._thread.is_alive() else 0
        self._stop.set()
        with contextlib.suppress(queue.Full):  # full: the thread sees the stop after the event in hand
            q.put_nowait(_STOP)
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            self._http.close()
        if self.dropped or self.unsent:
            log_event(self.log, logging.WARNING, "alerts", f"alerts: {self.dropped} events dropped (queue full), "
                      f"{self.unsent} still queued at close")

    def _drain(self) -> None:
        while True:
            e = self.queue.get()
            try:
                if e is _STOP or self._stop.is_set():
                    return
                for i, endpoint in enumerate(self.endpoints):
                    if not self._stop.is_set():
                        self._deliver(i, endpoint, e)
            except Exception as exc:  # the thread outlives any one event
                self._complain("send", f"an alert could not be sent ({type(exc).__name__})")
            finally:
                self.queue.task_done()

    def _deliver(self, i: int, endpoint: Endpoint, e: dict[str, Any]) -> None:
        body = endpoint.body(e)
        for attempt in range(1, self.attempts + 1):
            problem, wait = self._post(endpoint, body, attempt)
            if problem is None or wait is None or attempt == self.attempts or self._stop.wait(wait):
                break
        self._outcome(i, endpoint, problem and f"{problem} (attempt {attempt} of {self.attempts})")

    def _post(self, endpoint: Endpoint, body: dict[str, Any], attempt: int) -> tuple[str | None, float | None]:
        """(None, None) if delivered, else (the problem, secs before a retry or None); no exception's text."""
        backoff = min(self.backoff_secs * 2 ** (attempt - 1), self.retry_after_max_secs)
        try:
            r = self._http.post(endpoint.post_url, json=body, timeout=self.timeout_secs, headers=_HEADERS,
                                allow_redirects=False)
        except requests.Timeout:
            return "timed out", backoff
        except requests.ConnectionError:
            return "connection failed", backoff
        except requests.RequestException as exc:
            return type(exc).__name__, None
        r.close()
        if r.status_code < 300:
            return None, None
        if r.status_code == 429:  # Retry-After in seconds (an HTTP date: the backoff), at most the cap
            after = r.headers.get("Retry-After", "").strip()
            wait = float(after) if re.fullmatch(r"\d{1,6}(\.\d*)?", after) else backoff
            return "HTTP 429", min(wait, self.retry_after_max_secs)
        return f"HTTP {r.status_code}", backoff if r.status_code >= 500 else None

    def _outcome(self, i: int, endpoint: Endpoint, problem: str | None) -> None:
        """Count a delivery (``problem`` None) or a give-up; log an endpoint's first failure and its recovery."""
        who = f"alerts to {endpoint.name} ({endpoint.form})"
        if problem is None:
            self.sent += 1
            if i in self._failing:
                log_event(self.log, logging.INFO, "alerts", f"{who} recovered; {self._failing.pop(i)} events were "
                          "not delivered to it")
            return
        self.given_up += 1
        self._failing[i] = self._failing.get(i, 0) + 1
        if self._failing[i] == 1:
            log_event(self.log, logging.WARNING, "alerts", f"{who} failing: {problem}; the event was given up; not "
                      "logged again until it recovers")

    def _complain(self, kind: str, message: str) -> None:
        """Log ``message`` the first time only (a broken alert must not flood the log)."""
        if kind not in self._complained:
            self._complained.add(kind)
            log_event(self.log, logging.WARNING, "alerts", message)

