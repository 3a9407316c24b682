"""One HTTP/1.1 connection kept open to a base URL, for the writes the decision waits on (the order's post).

``requests`` spends about 0.6 ms of Python on each request before its bytes leave (preparing it, merging
the environment's settings, building the response); ``http.client`` on a connection kept open sends the
same bytes in one ``send`` and reads the answer with a fraction of that. What it keeps of ``requests``:

- **a connection known to be open**: before each request an idle connection is polled; one the server has
  closed (or that has bytes nobody asked for) is dropped and a new one opened, as urllib3 does;
- **TLS verified against certifi's bundle**, the one ``requests`` uses;
- **``prime()``** opens the connection ahead of the decision, so the post pays no handshake.

A proxy named by the environment for this URL (``HTTPS_PROXY``, ``NO_PROXY``) is not spoken here:
``KeptConnection.for_url`` answers None and the caller stays with ``requests``, which honours it.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import ssl
import threading
from typing import Mapping
from urllib.parse import urlsplit

import certifi
import requests.utils


class NotSent(Exception):
    """The connection could not be opened: the request never left."""


class KeptConnection:
    def __init__(self, scheme: str, host: str, port: int | None, prefix: str, timeout_secs: float) -> None:
        self.scheme, self.host, self.port, self.prefix = scheme, host, port, prefix.rstrip("/")
        self.timeout_secs = timeout_secs
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.opened = 0  # connections opened (a test reads it: a kept connection is reused)

    @classmethod
    def for_url(cls, base_url: str, timeout_secs: float) -> "KeptConnection | None":
        """The kept connection for ``base_url``, or None where ``requests`` must go on speaking (a proxy)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if requests.utils.get_environ_proxies(base_url):
            return None
        return cls(parts.scheme, parts.hostname, parts.port, parts.path, timeout_secs)

    def prime(self) -> None:
        """Open the connection now if it is not open (a failure is left for the request to meet)."""
        with self._lock, contextlib.suppress(NotSent):
            self._open()

    def request(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """Send once; (status, body). ``NotSent`` when no connection could be opened; ``TimeoutError``,
        ``OSError`` or ``http.client.HTTPException`` once the bytes may have left (the caller cannot know)."""
        with self._lock:
            conn = self._open()
            try:
                conn.request(method, self.prefix + path, body=body, headers=dict(headers))
                response = conn.getresponse()
                data = response.read()
            except BaseException:
                self.close_quietly()
                raise
            if response.will_close:
                self.close_quietly()
            return response.status, data

    def close(self) -> None:
        with self._lock:
            self.close_quietly()

    def close_quietly(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None and not _dropped(conn.sock):
            return conn
        self.close_quietly()
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_secs,
                                               context=ssl.create_default_context(cafile=certifi.where()))
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_secs)
        try:
            conn.connect()
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            raise NotSent(_reason(exc)) from None
        self._conn, self.opened = conn, self.opened + 1
        return conn


def _dropped(sock: object) -> bool:
    """An idle connection the server closed (or wrote to unasked): readable now means it is of no more use."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    return f"{name}: {exc.strerror.lower()}" if isinstance(exc, OSError) and exc.strerror else name
