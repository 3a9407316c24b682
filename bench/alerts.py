"""Alerts cost the decision nothing: the same fake session through the real engine without webhooks, and with
one that hangs and one that answers 500; the engine thread's time in the notifier per record, the decision
path's time per interval (``metrics.jsonl``'s ``decision_ms``) in both runs, and whether the files are equal."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from fsm_bot import engine
from fsm_bot.alerts import Notifier
from tests.fakes import START, FakeClock, FakeFeed, FakeVenue, new_session

FILES = ("journal.jsonl", "trades.jsonl", "equity.csv")


class _Bad(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (the http.server name)
        if self.path.startswith("/hang"):
            time.sleep(3)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Timed:
    def __init__(self, inner: Notifier) -> None:
        self.inner, self.secs = inner, []

    def on_transition(self, t: Any) -> None:
        started = time.perf_counter()
        self.inner.on_transition(t)
        self.secs.append(time.perf_counter() - started)


def _session(d: Path, observer: Any = None) -> list[float]:
    session, jr = new_session(d)
    metrics = engine.Metrics(d / "metrics.jsonl", keep=True)
    observers = engine.session_observers(d, FakeVenue(), logging.getLogger("fsm_bot.quiet")) + (
        [observer] if observer else [])
    engine.Engine(session, jr, FakeClock(START), FakeFeed(lambda k: "UP"), FakeVenue(), observers=observers).run()
    jr.close()
    return [line["decision_ms"] for line in metrics.intervals]


def alerts_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bad)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    log = logging.getLogger("fsm_bot.bench.alerts")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    runs = 3 if quick else 10
    calls: list[float] = []
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(runs):
            plain, noisy = Path(tmp) / f"plain{n}", Path(tmp) / f"noisy{n}"
            plain.mkdir()
            noisy.mkdir()
            _session(plain)
            notifier = Notifier([f"{url}/hang", f"{url}/fail"], log, timeout_secs=2.0, clock_ms=lambda: START)
            timed = _Timed(notifier)
            _session(noisy, timed)
            notifier.close(timeout_secs=0.1)
            calls += timed.secs
            same &= all((plain / f).read_bytes() == (noisy / f).read_bytes() for f in FILES)
    server.shutdown()
    arr = np.array(calls) * 1e6
    return {"records": len(calls), "sessions": runs, "files_identical": same,
            "notifier_per_record_us": {"p50": round(float(np.percentile(arr, 50)), 1),
                                       "p99": round(float(np.percentile(arr, 99)), 1),
                                       "max": round(float(arr.max()), 1)}}
