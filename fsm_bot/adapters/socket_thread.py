"""A WebSocket held by one background thread, what the Binance kline stream and Polymarket's market
channel share: connect, serve the connection until it drops or we stop, reconnect with backoff.

All its waits are measured on the session's clock (``ClockPause``), so a faster test clock shortens
them, and ``close()`` (after the owner sets ``pause.stop``) never waits one out.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from typing import Any

import websocket

from fsm_bot.logs import event
from fsm_bot.ports import Clock


class ClockPause:
    """Waits ``secs`` of the clock's time (a clock X times faster waits X times less wall time),
    cut short when ``stop`` is set, so ``close()`` never waits out a backoff."""

    def __init__(self, clock: Clock, stop: threading.Event) -> None:
        self.clock, self.stop = clock, stop
        speed = float(clock.speed)
        self.speed = speed if math.isfinite(speed) and speed > 0 else 1.0

    def __call__(self, secs: float) -> bool:
        """True when the time passed, False when stopped first."""
        until_ms = self.clock.now_ms() + int(secs * 1000)
        while not self.stop.is_set():
            left_ms = until_ms - self.clock.now_ms()
            if left_ms <= 0:
                return True
            self.stop.wait(min(self.wall_secs(left_ms / 1000), 0.25))
        return False

    def wall_secs(self, secs: float) -> float:
        return secs / self.speed


class SocketThread:
    """The thread and its reconnect loop; a subclass serves one connection (``_session``) and says when there
    is something to connect for (``_wanted``)."""

    thread_name = "socket"

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, label: str, component: str,
                 log: logging.Logger, poll_wall_secs: float, connect_timeout_secs: float,
                 backoff_initial_secs: float, backoff_max_secs: float) -> None:
        self.url, self.clock, self.pause = url, clock, pause
        self.label, self.component, self.log = label, component, log
        self.poll_wall_secs, self.connect_timeout_secs = poll_wall_secs, connect_timeout_secs
        self.backoff_initial_secs, self.backoff_max_secs = backoff_initial_secs, backoff_max_secs
        self.connections = 0  # connections opened
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the thread (the caller has set ``pause.stop``) and waits for it."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.abort()
        if self._thread is not None:
            self._thread.join()

    # -- what a subclass does -------------------------------------------------------------------------
    def _wanted(self) -> bool:
        """Whether to connect now; a subclass that waits for something to do waits here (briefly)."""
        return True

    def _session(self, ws: websocket.WebSocket) -> bool:
        """Serve one connection until it drops, goes silent or we stop; True if data came."""
        raise NotImplementedError

    def _ended(self) -> None:
        """The connection is gone (whatever the reason)."""

    # -- the loop ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        delay_secs = self.backoff_initial_secs
        while not self.pause.stop.is_set():
            if not self._wanted():
                continue
            ws = self._connect()
            if ws is not None and self._serve(ws):
                delay_secs = self.backoff_initial_secs
            if not self.pause(delay_secs):
                return
            delay_secs = min(max(delay_secs, 0.001) * 2, self.backoff_max_secs)

    def _connect(self) -> websocket.WebSocket | None:
        try:
            # the payload's own reader checks its text (orjson, a decode); websocket-client's check, in Python, costs
            # more than the parse, and a frame that is not UTF-8 is then a bad message, not a lost connection
            ws = websocket.create_connection(self.url, timeout=self.connect_timeout_secs, skip_utf8_validation=True)
        except (websocket.WebSocketException, OSError) as exc:
            self._warn(f"cannot connect ({type(exc).__name__})", "stream_down")
            return None
        ws.settimeout(self.poll_wall_secs)
        self._ws = ws
        self.connections += 1
        return ws

    def _serve(self, ws: websocket.WebSocket) -> bool:
        try:
            return self._session(ws)
        finally:
            self._ws = None
            self._ended()
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close(timeout=self.poll_wall_secs)

    def _receive(self, ws: websocket.WebSocket) -> tuple[int, Any] | None:
        """The next frame (pings are answered inside), or None when the poll interval passed quietly."""
        try:
            return ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return None

    def _lost(self, why: str, got_data: bool) -> bool:
        if not self.pause.stop.is_set():
            self._warn(f"{why}; reconnecting", "stream_lost")
        return got_data

    def _warn(self, what: str, code: str) -> None:
        event(self.log, logging.WARNING, self.component, f"{self.label}: {what}", error_code=code)
