"""``Http.post`` on its kept connection, against real servers on 127.0.0.1: one connection for many posts, a
connection the server closed while idle replaced before the bytes go (not an unknown outcome), the house's
error kinds for a refused connection, a lost answer and a silent server, and ``requests`` where a proxy applies."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from fsm_bot.adapters.http import Http
from fsm_bot.errors import TransientError, UnknownOutcome
from tests.servers.base import JsonServer, Reply


@pytest.fixture
def server() -> Iterator[JsonServer]:
    s = JsonServer("clob")
    s.route("POST", r"^/order$", lambda req: Reply(200, {"echo": req.json(), "auth": req.headers.get("POLY_API_KEY")}))
    s.start()
    yield s
    s.stop()


def test_posts_share_one_connection_and_carry_the_headers_and_bytes(server):
    http = Http(server.url, name="clob", timeout_secs=2)
    try:
        http.prime()
        for n in range(3):
            status, reply = http.post("/order", b'{"n":%d}' % n, {"POLY_API_KEY": "k"})
            assert status == 200 and reply == {"echo": {"n": n}, "auth": "k"}
        assert http.kept is not None and http.kept.opened == 1
    finally:
        http.close()


def _one_answer_then_close(listener: socket.socket, answers: list[int], closed: threading.Event) -> None:
    """A server that answers one request per connection and then closes it while the client thinks it is kept
    (no ``Connection: close``): the idle-timeout of a real front end. ``closed`` is set once it has."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            while len(body) < length:
                body += conn.recv(65536)
            answers.append(len(body))
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')
        closed.set()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_post():
    listener = socket.create_server(("127.0.0.1", 0))
    answers: list[int] = []
    closed = threading.Event()
    threading.Thread(target=_one_answer_then_close, args=(listener, answers, closed), daemon=True).start()
    http = Http(f"http://127.0.0.1:{listener.getsockname()[1]}", name="clob", timeout_secs=2)
    try:
        assert http.post("/order", b'{"a":1}') == (200, {})
        assert closed.wait(5)  # idle, and closed by the server (a close racing the send is an unknown outcome)
        assert http.post("/order", b'{"b":22}') == (200, {})  # the closed one is seen, a new one opened: no unknown
        assert answers == [7, 8] and http.kept is not None and http.kept.opened == 2
    finally:
        http.close()
        listener.close()


def test_a_refused_connection_is_not_sent():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once it closes
    http = Http(f"http://127.0.0.1:{port}", name="clob", timeout_secs=1)
    with pytest.raises(TransientError, match="not sent"):
        http.post("/order", b"{}")


def test_an_answer_lost_after_the_bytes_went_is_an_unknown_outcome(server):
    server.fault("POST", r"^/order$", "after")  # the server acts on it, then closes without a word
    http = Http(server.url, name="clob", timeout_secs=2)
    try:
        with pytest.raises(UnknownOutcome, match="sent, but"):
            http.post("/order", b'{"n":1}')
        assert server.count("POST", r"^/order$") == 1
        assert http.post("/order", b'{"n":2}')[0] == 200  # and the next post opens a new connection
    finally:
        http.close()


def test_a_silent_server_is_an_unknown_outcome_within_the_timeout(server):
    server.fault("POST", r"^/order$", "hang", secs=1.0)
    http = Http(server.url, name="clob", timeout_secs=0.2)
    try:
        with pytest.raises(UnknownOutcome, match="no answer within 0.2 s"):
            http.post("/order", b"{}")
    finally:
        http.close()


def test_a_proxy_in_the_environment_leaves_the_post_to_requests(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    http = Http("http://clob.example", name="clob")
    assert http.kept is None  # requests speaks to the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = Http(server.url, name="clob", timeout_secs=2)
    try:
        assert direct.kept is not None and direct.post("/order", b'{"n":0}')[0] == 200
    finally:
        direct.close()
        http.close()
