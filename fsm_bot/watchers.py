"""What watches a session from outside the state dir: the webhooks (``--notify``, ``FSM_BOT_NOTIFY_URLS``) and
the Prometheus endpoint (``--metrics-port``), as observers of the engine, opened and closed around a run."""

from __future__ import annotations

import logging
from typing import Any

from fsm_bot.session import Session
from fsm_bot.wiring import World


class Watchers:
    """What watches a session from outside: the webhooks (``--notify``) and the Prometheus endpoint
    (``--metrics-port``). Neither can delay a decision: the notifier sends from a queue of its own."""

    def __init__(self, notify: tuple[str, ...], metrics_port: int | None, metrics_host: str, world: World,
                 log: logging.Logger) -> None:
        self.notifier: Any = None
        self.metrics: Any = None
        self.served: Any = None
        self.observers: list[Any] = []
        if notify:
            from fsm_bot import alerts
            self.notifier = alerts.Notifier(notify, log, clock_ms=world.clock.now_ms)
            self.observers.append(self.notifier)
        if metrics_port is not None:
            from fsm_bot import metrics_server
            self.metrics = metrics_server.Metrics(reconnects=world.feed.reconnects, log=log)
            self.served = metrics_server.serve(self.metrics, metrics_host, metrics_port)
            self.observers.append(self.metrics)

    def start(self, session: Session, resumed: bool) -> None:
        if self.notifier is not None:
            self.notifier.start_session(session, resumed=resumed)
        if self.metrics is not None:
            self.metrics.start_session(session)

    def end(self, final: Session, summary: dict[str, Any]) -> None:
        if self.notifier is not None:
            self.notifier.end_session(final, summary)

    def __enter__(self) -> "Watchers":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.notifier is not None:
            self.notifier.close(timeout_secs=5.0)
        if self.served is not None:
            from fsm_bot import metrics_server
            metrics_server.stop(*self.served)
