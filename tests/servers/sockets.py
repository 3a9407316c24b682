"""What the loopback WebSocket endpoints share (Binance's kline stream, the CLOB's market channel): a
``websockets`` server on 127.0.0.1 whose handshake answers 404 off its path and 503 while it is down or
stopped, the connections open now, and the faults every stream has -- cut them all, push a raw message.

A fake serves each connection in ``handler(conn)`` (its own thread) and keeps, while it serves, one item
per connection whose ``conn`` is the connection (``enter`` / ``leave``)."""

from __future__ import annotations

import contextlib
import socket
import threading
from http import HTTPStatus
from typing import Any, Callable

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.servers.base import FakeTime


class SocketEndpoint:
    def __init__(self, time: FakeTime, path: str | tuple[str, ...], handler: Callable[[ServerConnection], None],
                 name: str, **serve_options: Any) -> None:
        self.time, self.paths = time, (path,) if isinstance(path, str) else path
        self.connections = self.refused = 0  # accepted, and refused while down
        self.open: set[Any] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.down_until_ms = 0
        self.server = serve(handler, "127.0.0.1", 0, process_request=self._handshake, **serve_options)
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return self.server.socket.getsockname()[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if not self.stopped.is_set():
            self.stopped.set()
            self.server.shutdown()
            self.drop()
            self._thread.join()

    def enter(self, item: Any) -> None:
        with self.lock:
            self.connections += 1
            self.open.add(item)

    def leave(self, item: Any) -> None:
        with self.lock:
            self.open.discard(item)

    def items(self) -> list[Any]:
        with self.lock:
            return list(self.open)

    def drop(self, down_secs: float = 0.0) -> int:
        """Cut every connection now, without a close frame; refuse new ones for ``down_secs`` of fake time."""
        self.down_until_ms = self.time.now_ms() + int(down_secs * 1000)
        items = self.items()
        for item in items:
            with contextlib.suppress(OSError):
                item.conn.socket.shutdown(socket.SHUT_RDWR)
        return len(items)

    def send_raw(self, text: str) -> None:
        for item in self.items():
            with contextlib.suppress(ConnectionClosed):
                item.conn.send(text)

    def _handshake(self, conn: ServerConnection, request: Any) -> Any:
        if request.path not in self.paths:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self.stopped.is_set() or self.time.now_ms() < self.down_until_ms:
            self.refused += 1
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None
