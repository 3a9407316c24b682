"""The kline WebSocket, held by one background thread: connect, catch up (through the feed's
callback), listen, reconnect with backoff. Only closed candles are handed on; pings go both ways;
a freshness watchdog closes a socket gone silent. All its waits are measured on the feed's clock
(``ClockPause``), so a faster test clock shortens them and ``close()`` never waits one out."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from typing import Any, Callable

import websocket

from fsm_bot.adapters.binance.parsers import STREAM_PATH, Kline, parse_kline_event
from fsm_bot.errors import DataError
from fsm_bot.logs import event
from fsm_bot.ports import Clock

log = logging.getLogger("fsm_bot.binance")


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


class KlineStream:
    """The kline WebSocket in one background thread: connect, catch up, listen, reconnect."""

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, on_kline: Callable[[Kline], None],
                 on_connect: Callable[[], None], stale_secs: float, ping_secs: float, connect_timeout_secs: float,
                 backoff_initial_secs: float, backoff_max_secs: float) -> None:
        self.url, self.clock, self.pause = url, clock, pause
        self.on_kline, self.on_connect = on_kline, on_connect
        self.stale_ms, self.ping_ms = int(stale_secs * 1000), int(ping_secs * 1000)
        self.connect_timeout_secs = connect_timeout_secs
        self.backoff_initial_secs, self.backoff_max_secs = backoff_initial_secs, backoff_max_secs
        self.poll_wall_secs = min(0.25, max(0.002, pause.wall_secs(stale_secs) / 20))
        self.connections = 0  # connections opened
        self.watchdog_trips = 0  # connections closed for silence
        self.messages = 0  # data messages received, in-progress updates included
        self.bad_messages = 0
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return STREAM_PATH

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="binance-stream", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the thread (the caller has set ``pause.stop``) and waits for it."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.abort()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        delay_secs = self.backoff_initial_secs
        while not self.pause.stop.is_set():
            ws = self._connect()
            if ws is not None and self._serve(ws):
                delay_secs = self.backoff_initial_secs
            if not self.pause(delay_secs):
                return
            delay_secs = min(max(delay_secs, 0.001) * 2, self.backoff_max_secs)

    def _connect(self) -> websocket.WebSocket | None:
        try:
            ws = websocket.create_connection(self.url, timeout=self.connect_timeout_secs)
        except (websocket.WebSocketException, OSError) as exc:
            event(log, logging.WARNING, "binance", f"Binance stream {self.path}: cannot connect ({type(exc).__name__})",
                  error_code="stream_down")
            return None
        ws.settimeout(self.poll_wall_secs)
        self._ws = ws
        self.connections += 1
        return ws

    def _serve(self, ws: websocket.WebSocket) -> bool:
        """Catch up from REST, then listen until the socket drops, goes stale or we stop; True if data came."""
        try:
            self.on_connect()
            return self._listen(ws)
        finally:
            self._ws = None
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close(timeout=self.poll_wall_secs)

    def _listen(self, ws: websocket.WebSocket) -> bool:
        last_data_ms = last_ping_ms = self.clock.now_ms()
        got_data = False
        while not self.pause.stop.is_set():
            try:
                frame = self._receive(ws)
                now_ms = self.clock.now_ms()
                if frame is not None and frame[0] == websocket.ABNF.OPCODE_CLOSE:
                    return self._lost("closed by the server", got_data)
                if frame is not None and frame[0] in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    last_data_ms, got_data = now_ms, True
                    self._message(frame[1])
                if now_ms - last_data_ms > self.stale_ms:
                    self.watchdog_trips += 1
                    return self._lost(f"silent for {(now_ms - last_data_ms) / 1000:.0f} s", got_data)
                if now_ms - last_ping_ms >= self.ping_ms:
                    ws.ping()
                    last_ping_ms = now_ms
            except (websocket.WebSocketException, OSError) as exc:
                return self._lost(f"dropped ({type(exc).__name__})", got_data)
        return got_data

    def _receive(self, ws: websocket.WebSocket) -> tuple[int, Any] | None:
        """The next frame (pings are answered inside), or None when the poll interval passed quietly."""
        try:
            return ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return None

    def _lost(self, why: str, got_data: bool) -> bool:
        if not self.pause.stop.is_set():
            event(log, logging.WARNING, "binance", f"Binance stream {self.path}: {why}; reconnecting",
                  error_code="stream_lost")
        return got_data

    def _message(self, data: Any) -> None:
        self.messages += 1
        try:
            candle, closed = parse_kline_event(data)
        except DataError as exc:
            self.bad_messages += 1
            event(log, logging.WARNING, "binance", str(exc), error_code=exc.code)
            return
        if closed:
            self.on_kline(candle)
