"""Binance's WebSocket streams, each held by one background thread (``BinanceStream``, a ``SocketThread``):
connect, listen, reconnect with backoff; pings go both ways; a freshness watchdog closes a socket gone
silent. All their waits are measured on the feed's clock (``ClockPause``), so a faster test clock shortens
them and ``close()`` never waits one out. What a stream does with its messages is the ``read`` it is given:

- the kline stream (``btcusdt@kline_1m``, ``kline_stream``): catches up through the feed's callback on each
  connection, and hands on closed candles only;
- the partial book depth stream (``btcusdt@depth20@100ms``): ``StreamedDepth`` keeps the newest message and
  when it came, and reads it only when the decision asks, instead of REST."""

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

__all__ = ["BinanceStream", "ClockPause", "StreamedDepth", "depth_stream", "kline_stream"]
log = logging.getLogger("fsm_bot.binance")


class BinanceStream(SocketThread):
    """One raw stream: listen until the socket drops, goes silent or we stop, each data message to ``read``
    (a ``DataError`` it raises is counted and warned of, and the stream goes on); ``on_connect`` runs on each
    connection before listening, ``on_end`` when one is gone."""

    def __init__(self, url: str, clock: Clock, pause: ClockPause, *, path: str, thread_name: str,
                 read: Callable[[Any], None], on_connect: Callable[[], None] | None = None,
                 on_end: Callable[[], None] | None = None, stale_secs: float, ping_secs: float,
                 connect_timeout_secs: float, backoff_initial_secs: float, backoff_max_secs: float) -> None:
        super().__init__(url, clock, pause, label=f"Binance stream {path}", component="binance", log=log,
                         poll_wall_secs=min(0.25, max(0.002, pause.wall_secs(stale_secs) / 20)),
                         connect_timeout_secs=connect_timeout_secs, backoff_initial_secs=backoff_initial_secs,
                         backoff_max_secs=backoff_max_secs)
        self.thread_name, self.read, self.on_connect, self.on_end = thread_name, read, on_connect, on_end
        self.stale_ms, self.ping_ms = int(stale_secs * 1000), int(ping_secs * 1000)
        self.watchdog_trips = 0  # connections closed for silence
        self.messages = 0  # data messages received, in-progress updates included
        self.bad_messages = 0

    def _session(self, ws: websocket.WebSocket) -> bool:
        """Catch up (when told how), then listen; True if data came."""
        if self.on_connect is not None:
            self.on_connect()
        return self._listen(ws)

    def _ended(self) -> None:
        if self.on_end is not None:
            self.on_end()

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
            self.read(data)
        except DataError as exc:
            self.bad_messages += 1
            event(log, logging.WARNING, "binance", str(exc), error_code=exc.code)


def kline_stream(url: str, clock: Clock, pause: ClockPause, *, on_kline: Callable[[Kline], None],
                 on_connect: Callable[[], None], **options: float) -> BinanceStream:
    """The kline stream: catch up on each connection, then hand on each closed candle."""

    def read(data: Any) -> None:
        candle, closed = parse_kline_event(data)
        if closed:
            on_kline(candle)

    return BinanceStream(url, clock, pause, path=STREAM_PATH, thread_name="binance-stream", read=read,
                         on_connect=on_connect, **options)  # type: ignore[arg-type]


class StreamedDepth:
    """The depth stream's newest message and when it came, by the clock. It is read (parsed and checked) only
    when the decision asks for it, once per message: the stream sends ten a second, the decision reads one in
    thousands. A message that cannot be read is counted and warned of, and answers None (REST is asked)."""

    def __init__(self, clock: Clock, levels: int) -> None:
        self.clock, self.levels = clock, min(levels, DEPTH_STREAM_LEVELS)
        self.bad_messages = 0
        self._kept: tuple[Any, int] | None = None  # the newest message, and when it came
        self._read: tuple[Any, Depth | None] | None = None  # the last message read, and what it gave

    def keep(self, data: Any) -> None:
        self._kept = (data, self.clock.now_ms())

    def forget(self) -> None:
        self._kept = None  # a book we no longer hear of is not current

    def latest(self, levels: int, max_age_ms: int) -> Depth | None:
        """The newest depth if it covers ``levels``, came no more than ``max_age_ms`` ago and reads; else None."""
        kept = self._kept
        if kept is None or levels > self.levels or self.clock.now_ms() - kept[1] > max_age_ms:
            return None
        read = self._read
        if read is None or read[0] is not kept[0]:
            read = self._read = (kept[0], self._parse(kept[0]))
        return read[1]

    def _parse(self, data: Any) -> Depth | None:
        try:
            return parse_depth_event(data, self.levels)
        except DataError as exc:
            self.bad_messages += 1
            event(log, logging.WARNING, "binance", f"{exc}; the depth is asked of REST", error_code=exc.code)
            return None


def depth_stream(url: str, clock: Clock, pause: ClockPause, kept: StreamedDepth, **options: float) -> BinanceStream:
    """The partial book depth stream, each message into ``kept``, which forgets it when the connection is gone."""
    return BinanceStream(url, clock, pause, path=DEPTH_STREAM_PATH, thread_name="binance-depth", read=kept.keep,
                         on_end=kept.forget, **options)  # type: ignore[arg-type]
