"""The kline WebSocket, held by one background thread (``SocketThread``): connect, catch up (through
the feed's callback), listen, reconnect with backoff. Only closed candles are handed on; pings go both
ways; a freshness watchdog closes a socket gone silent. All its waits are measured on the feed's clock
(``ClockPause``), so a faster test clock shortens them and ``close()`` never waits one out."""

from __future__ import annotations

import logging
from typing import Any, Callable

import websocket

from fsm_bot.adapters.binance.parsers import STREAM_PATH, Kline, parse_kline_event
from fsm_bot.adapters.socket_thread import ClockPause, SocketThread
from fsm_bot.errors import DataError
from fsm_bot.logs import event
from fsm_bot.ports import Clock

__all__ = ["ClockPause", "KlineStream"]
log = logging.getLogger("fsm_bot.binance")


class KlineStream(SocketThread):
    """The kline WebSocket in one background thread: connect, catch up, listen, reconnect."""

    thread_name = "binance-stream"

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, on_kline: Callable[[Kline], None],
                 on_connect: Callable[[], None], stale_secs: float, ping_secs: float, connect_timeout_secs: float,
                 backoff_initial_secs: float, backoff_max_secs: float) -> None:
        super().__init__(url, clock, pause, label=f"Binance stream {STREAM_PATH}", component="binance", log=log,
                         poll_wall_secs=min(0.25, max(0.002, pause.wall_secs(stale_secs) / 20)),
                         connect_timeout_secs=connect_timeout_secs, backoff_initial_secs=backoff_initial_secs,
                         backoff_max_secs=backoff_max_secs)
        self.on_kline, self.on_connect = on_kline, on_connect
        self.stale_ms, self.ping_ms = int(stale_secs * 1000), int(ping_secs * 1000)
        self.watchdog_trips = 0  # connections closed for silence
        self.messages = 0  # data messages received, in-progress updates included
        self.bad_messages = 0

    @property
    def path(self) -> str:
        return STREAM_PATH

    def _session(self, ws: websocket.WebSocket) -> bool:
        """Catch up from REST, then listen until the socket drops, goes stale or we stop; True if data came."""
        self.on_connect()
        return self._listen(ws)

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
