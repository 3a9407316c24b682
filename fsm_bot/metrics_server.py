"""Prometheus metrics of a running session, on a private registry, served over HTTP from a daemon thread.

``Metrics`` is an observer (``on_transition``): it counts what the records say and sets gauges from the
session after each record; it never raises into the engine and costs a few microseconds a record. The
counters count this process's records (a resumed session starts them at 0, as a restarted process does).
``serve(metrics, host, port)`` exposes its registry at ``/metrics`` (any path answers) with
``prometheus_client``'s WSGI app on ``wsgiref``; ``stop(server, thread)`` ends it.

- counters: ``fsm_bot_intervals_total{outcome}`` (WIN, LOSS, SKIPPED, VOID), ``fsm_bot_skips_total{reason}``,
  ``fsm_bot_orders_total{result}`` (submitted, unknown, rejected: a skip whose reason is ``rejected:...``),
  ``fsm_bot_corrections_total{status}`` (corrected, voided, revived);
- gauges: ``fsm_bot_capital_usd``, ``fsm_bot_streak``, ``fsm_bot_drawdown_from_start_ratio``,
  ``fsm_bot_drawdown_from_peak_ratio``, ``fsm_bot_interval``, ``fsm_bot_last_candle_age_seconds`` (at FETCH:
  the record's time less the close of the last closed candle, as the stale-data rule measures it), and
  ``fsm_bot_stream_reconnects_total`` (read from ``reconnects()`` at each scrape);
- histogram ``fsm_bot_decision_seconds``: from the interval's ``tick`` to the venue's fill (``submitted``),
  the decision stages' time and the journal appends, sleeps excluded (``metrics.jsonl``'s ``decision_ms``).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import make_wsgi_app

from fsm_bot.engine.observers import DECISION_STAGES
from fsm_bot.errors import ConfigError
from fsm_bot.logs import event as log_event
from fsm_bot.ports import MINUTE_MS
from fsm_bot.session import CORRECTING, Session
from fsm_bot.steps import Fetched, Reconciled, Recorded, Skip, Submitted, SubmitUnknown, Tick

DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("WIN", "LOSS", "SKIPPED", "VOID")
ORDER_RESULTS = ("submitted", "unknown", "rejected")


class Metrics:
    """The session's Prometheus metrics, in ``registry`` (a new private ``CollectorRegistry`` if None)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, reconnects: Callable[[], int] | None = None,
                 log: logging.Logger | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.log, self.errors = log, 0
        self.intervals = Counter("fsm_bot_intervals_total", "Intervals recorded, by outcome", ["outcome"], registry=r)
        self.skips = Counter("fsm_bot_skips_total", "Intervals skipped, by reason", ["reason"], registry=r)
        self.orders = Counter("fsm_bot_orders_total", "Orders by the venue's answer", ["result"], registry=r)
        self.corrections = Counter("fsm_bot_corrections_total", "Booked PnL corrected, by status", ["status"],
                                   registry=r)
        self.capital = Gauge("fsm_bot_capital_usd", "Capital as booked, USD", registry=r)
        self.streak = Gauge("fsm_bot_streak", "Win streak", registry=r)
        self.drawdown_start = Gauge("fsm_bot_drawdown_from_start_ratio", "Loss from the starting capital, as a "
                                    "fraction", registry=r)
        self.drawdown_peak = Gauge("fsm_bot_drawdown_from_peak_ratio", "Fall from the peak capital, as a fraction",
                                   registry=r)
        self.interval = Gauge("fsm_bot_interval", "The current interval (1-based)", registry=r)
        self.candle_age = Gauge("fsm_bot_last_candle_age_seconds", "Age of the last closed candle at the last "
                                "fetch", registry=r)
        self.reconnects = Gauge("fsm_bot_stream_reconnects_total", "Reconnects of the market data stream",
                                registry=r)
        self.decision = Histogram("fsm_bot_decision_seconds", "An interval's start to the venue's fill, sleeps "
                                  "excluded", buckets=DECISION_BUCKETS, registry=r)
        self._decision_ms = 0.0
        for names, counter in ((OUTCOMES, self.intervals), (ORDER_RESULTS, self.orders),
                               (sorted(CORRECTING), self.corrections)):
            for name in names:  # every known label at 0 from the start, so rate() sees the first increase
                counter.labels(name)
        if reconnects is not None:
            self.reconnects.set_function(_never_raises(reconnects))

    def start_session(self, session: Session) -> None:
        """The gauges at the session's state before its first record here (a start or a resume)."""
        self._session(session)

    def on_transition(self, t: Any) -> None:
        try:
            self._count(t)
            self._session(t.after)
        except Exception as exc:  # an observer never raises into the engine
            self.errors += 1
            if self.errors == 1 and self.log is not None:
                log_event(self.log, logging.WARNING, "metrics", f"metrics: a record was not counted "
                          f"({type(exc).__name__}); later failures are not logged")

    def _count(self, t: Any) -> None:
        step = t.step
        self._time(t)
        if isinstance(step, Recorded):
            self.intervals.labels(step.row.outcome).inc()
        elif isinstance(step, Skip):
            self.skips.labels(step.reason).inc()
            if step.reason.startswith("rejected:"):
                self.orders.labels("rejected").inc()
        elif isinstance(step, Submitted):
            self.orders.labels("submitted").inc()
            self.decision.observe(self._decision_ms / 1000)
        elif isinstance(step, SubmitUnknown):
            self.orders.labels("unknown").inc()
        elif isinstance(step, Fetched):
            closed_ms = step.snapshot.last_candle_ms + MINUTE_MS
            self.candle_age.set(max(0.0, (t.after.ts_ms - closed_ms) / 1000))
        if isinstance(step, (Tick, Reconciled)):
            for r in step.confirmed if isinstance(step, Tick) else step.results:
                if r.status in CORRECTING:
                    self.corrections.labels(r.status).inc()

    def _time(self, t: Any) -> None:
        """The decision's time so far: reset at the interval's tick, summed to the fill."""
        if isinstance(t.step, Tick):
            self._decision_ms = 0.0
        self._decision_ms += sum(t.spent_ms.get(stage, 0.0) for stage in DECISION_STAGES) + t.journal_ms

    def _session(self, s: Session) -> None:
        capital, peak = float(s.capital), float(s.peak)
        self.capital.set(capital)
        self.streak.set(s.streak)
        self.drawdown_start.set(float(s.drawdown))
        self.drawdown_peak.set(max(0.0, (peak - capital) / peak) if peak > 0 else 0.0)
        self.interval.set(min(s.interval, s.intervals))


def _never_raises(read: Callable[[], int]) -> Callable[[], float]:
    """``read`` for a scrape: NaN when it fails (a scrape must not fail on a feed's counter)."""
    def value() -> float:
        try:
            return float(read())
        except Exception:
            return math.nan
    return value


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow scraper holds up no other."""

    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """A scrape is not worth a line on stderr."""


def serve(metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``metrics``' registry on ``host:port`` (0: a free port, ``server.server_port`` says which) from a
    daemon thread; ``ConfigError`` when the address cannot be bound."""
    server_class = _Server6 if ":" in host else _Server
    try:
        server = make_server(host, port, make_wsgi_app(metrics.registry), server_class, _QuietHandler)
    except OSError as exc:
        raise ConfigError(f"--metrics-host {host} --metrics-port {port}: cannot listen there "
                          f"({exc.strerror or exc})") from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="fsm-bot-metrics", daemon=True)
    thread.start()
    return server, thread


def stop(server: WSGIServer, thread: threading.Thread, timeout_secs: float = 5.0) -> None:
    """Stop serving: the listening socket is closed, the thread ends."""
    server.shutdown()
    server.server_close()
    thread.join(timeout_secs)
