"""Binance's WebSocket streams, each held by one background thread (``SocketThread``): connect, listen,
reconnect with backoff; pings go both ways; a freshness watchdog closes a socket gone silent. All their
waits are measured on the feed's clock (``ClockPause``), so a faster test clock shortens them and
``close()`` never waits one out.

- ``KlineStream`` (``btcusdt@kline_1m``): catches up through the feed's callback on each connection, and
  hands on closed candles only;
- ``DepthStream`` (``btcusdt@depth20@100ms``, the partial book depth): keeps the newest top of the book with
  the time it came, for the decision to read instead of asking REST."""

from __future__ import annotations

import logging
from typing import Any, Callable

import websocket

from fsm_bot.adapters.binance.parsers import (DEPTH_STREAM_LEVELS, DEPTH_STREAM_PATH, STREAM_PATH, Kline,
                                              parse_depth_event, parse_kline_event)
from fsm_bot.adapters.socket_thread import ClockPause, SocketThread
from fsm_bot.errors import DataError
from fsm_bot.logs import event
from fsm_bot.ports import Clock, Depth

__all__ = ["ClockPause", "DepthStream", "KlineStream"]
log = logging.getLogger("fsm_bot.binance")


class BinanceStream(SocketThread):
    """One raw stream: listen until the socket drops, goes silent or we stop; a subclass reads the messages."""

    path = ""

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, stale_secs: float, ping_secs: float,
                 connect_timeout_secs: float, backoff_initial_secs: float, backoff_max_secs: float) -> None:
        super().__init__(url, clock, pause, label=f"Binance stream {self.path}", component="binance", log=log,
                         poll_wall_secs=min(0.25, max(0.002, pause.wall_secs(stale_secs) / 20)),
                         connect_timeout_secs=connect_timeout_secs, backoff_initial_secs=backoff_initial_secs,
                         backoff_max_secs=backoff_max_secs)
        self.stale_ms, self.ping_ms = int(stale_secs * 1000), int(ping_secs * 1000)
        self.watchdog_trips = 0  # connections closed for silence
        self.messages = 0  # data messages received, in-progress updates included
        self.bad_messages = 0

    def _session(self, ws: websocket.WebSocket) -> bool:
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
            self._read(data)
        except DataError as exc:
            self.bad_messages += 1
            event(log, logging.WARNING, "binance", str(exc), error_code=exc.code)

    def _read(self, data: Any) -> None:
        raise NotImplementedError


class KlineStream(BinanceStream):
    """The kline stream: catch up on each connection, then hand on each closed candle."""

    thread_name = "binance-stream"
    path = STREAM_PATH

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, on_kline: Callable[[Kline], None],
                 on_connect: Callable[[], None], **options: float) -> None:
        super().__init__(url, clock, pause, **options)  # type: ignore[arg-type]
        self.on_kline, self.on_connect = on_kline, on_connect

    def _session(self, ws: websocket.WebSocket) -> bool:
        """Catch up from REST, then listen; True if data came."""
        self.on_connect()
        return self._listen(ws)

    def _read(self, data: Any) -> None:
        candle, closed = parse_kline_event(data)
        if closed:
            self.on_kline(candle)


class DepthStream(BinanceStream):
    """The partial book depth stream: the newest top ``levels`` (at most 20) and when they came, by the clock."""

    thread_name = "binance-depth"
    path = DEPTH_STREAM_PATH

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, levels: int, **options: float) -> None:
        super().__init__(url, clock, pause, **options)  # type: ignore[arg-type]
        self.levels = min(levels, DEPTH_STREAM_LEVELS)
        self._latest: tuple[Depth, int] | None = None

    def latest(self, levels: int, max_age_ms: int) -> Depth | None:
        """The newest depth if it covers ``levels`` and came no more than ``max_age_ms`` ago, else None."""
        kept = self._latest
        if kept is None or levels > self.levels or self.clock.now_ms() - kept[1] > max_age_ms:
            return None
        return kept[0]

    def _ended(self) -> None:
        self._latest = None  # a book we no longer hear of is not current

    def _read(self, data: Any) -> None:
        self._latest = (parse_depth_event(data, self.levels), self.clock.now_ms())
