"""The pieces every loopback server shares: a clock that runs X times faster, JSON routing on a
threaded HTTP server bound to 127.0.0.1, and a plan of faults to inject.

A server's time is ``FakeTime``: it starts at ``start_ms`` and runs ``speed`` times faster than
wall time, the same T and X the bot's test clock is given (the bot takes its start from the
Binance server's ``/api/v3/time``). Everything time-based a server does (a candle closing, a
market ending, a resolution appearing, a Retry-After window) is measured on this clock.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


class FakeTime:
    """``held``: the clock stands at ``start_ms`` until ``release()`` (the first time the bot asks the
    server for the time), so a bot process's start-up does not eat into its first interval."""

    def __init__(self, start_ms: int, speed: float = 1.0, held: bool = False) -> None:
        self.start_ms, self.speed = start_ms, speed
        self._wall0: float | None = None if held else time.monotonic()

    def release(self) -> None:
        if self._wall0 is None:
            self._wall0 = time.monotonic()

    def now_ms(self) -> int:
        if self._wall0 is None:
            return self.start_ms
        return self.start_ms + int((time.monotonic() - self._wall0) * 1000 * self.speed)

    def wall_secs(self, sim_secs: float) -> float:
        """How long ``sim_secs`` of this clock take in wall time."""
        return sim_secs / self.speed

    def sleep(self, sim_secs: float) -> None:
        time.sleep(self.wall_secs(sim_secs))


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None
    received_s: float = field(default_factory=time.time)  # wall time when the whole request was read

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of JSON (a malformed payload)


@dataclass
class Fault:
    """What to do to the next ``count`` requests whose method and path match.

    kind: ``status`` (reply ``status`` with ``headers``, e.g. 503, or 429 with Retry-After),
    ``hang`` (say nothing for ``secs`` wall seconds, then close), ``drop`` (close the connection
    without a reply), ``after`` (run the handler -- the request takes effect -- then close without
    replying: a response lost after the server accepted), ``slow`` (run the handler -- the request
    takes effect -- then sleep ``secs`` wall seconds before sending its reply: a late answer, e.g.
    one that arrives after the client's timeout), ``raw`` (reply ``body`` bytes as is).
    """

    method: str
    path: str  # a regex matched against the path
    kind: str
    count: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    secs: float = 5.0
    body: bytes = b""


Route = Callable[[Request], Reply]


class JsonServer:
    """A threaded HTTP server on 127.0.0.1 with regex routes, a request log and a fault plan."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status or -1 for no reply)
        self.lock = threading.Lock()
        self.before_request: Callable[[], None] | None = None  # run first on every request (``World.at``)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"{name}-http", daemon=True)  # stop() returns in 50 ms

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method, re.compile(pattern + "$"), handler))

    def fault(self, method: str, path: str, kind: str, **kw: Any) -> Fault:
        f = Fault(method, path, kind, **kw)
        with self.lock:
            self.faults.append(f)
        return f

    def start(self) -> "JsonServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, method: str, path_regex: str) -> int:
        rx = re.compile(path_regex)
        return sum(1 for m, p, _ in self.log if m == method and rx.search(p))

    # -- serving ------------------------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.count > 0 and f.method == method and re.search(f.path, path):
                    f.count -= 1
                    return f
        return None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        if self.before_request is not None:
            self.before_request()
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(h.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                      {k: v for k, v in h.headers.items()}, body)
        fault = self._take_fault(req.method, req.path)
        if fault is not None and fault.kind in ("hang", "drop"):
            if fault.kind == "hang":
                time.sleep(fault.secs)
            self._record(req, -1)
            h.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            return self._send(h, req, Reply(fault.status, {"error": f"injected {fault.status}"}, fault.headers))
        if fault is not None and fault.kind == "raw":
            return self._send(h, req, Reply(200, raw=fault.body))
        reply = self._dispatch(req)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.secs)
        if fault is not None and fault.kind == "after":
            self._record(req, -1)
            h.close_connection = True
            return
        self._send(h, req, reply)

    def _dispatch(self, req: Request) -> Reply:
        for method, rx, handler in self.routes:
            m = rx.match(req.path)
            if method == req.method and m:
                req.match = m
                try:
                    return handler(req)
                except Exception as exc:  # a bug in a fake must be loud, not a hang
                    return Reply(500, {"error": f"{self.name} fake failed: {type(exc).__name__}: {exc}"})
        return Reply(404, {"error": f"{self.name}: no route for {req.method} {req.path}"})

    def _record(self, req: Request, status: int) -> None:
        with self.lock:
            self.log.append((req.method, req.path, status))

    def _send(self, h: BaseHTTPRequestHandler, req: Request, reply: Reply) -> None:
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        self._record(req, reply.status)
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
