"""The CLOB's market channel (``/ws/market``), held by one background thread, and the books it keeps.

- **Subscribing**: ``follow(tokens)`` names the tokens whose books are kept (the next market's Up and
  Down, warmed before its window opens). The thread connects once there is something to follow and
  sends ``{"assets_ids": [...], "type": "market"}``; a later change is sent on the same connection as
  ``{"assets_ids": [...], "operation": "subscribe" | "unsubscribe"}``, and the books of the tokens no
  longer followed are dropped at once (whether or not the venue honours the unsubscribe).
- **Keeping** (``KeptBooks``): ``book`` events replace a book, ``price_change`` entries set a level;
  ``tick_size_change``, or a change that leaves a book off the venue's stated best prices, marks it
  resyncing; an event that cannot be read marks the books it names (every book, when it names none).
  A text that is not JSON changes no book. PONGs keep the connection but say nothing about the books.
- **Resyncing**: a dropped connection marks every book resyncing. Each (re)connection subscribes
  again, which makes the venue send fresh snapshots; meanwhile, and after any inconsistency, the book
  is read from REST (``GET /book``, on the thread's own HTTP session, one attempt) at once and then at
  most every ``resync_secs`` until the channel or REST has given it whole again. A newly followed
  book waits ``resync_secs`` for its snapshot before REST is asked.
- **Keepalive**: text ``PING`` every ``ping_secs`` (10 s, as the venue asks); a connection silent for
  ``stale_secs`` (no message, no PONG) is closed and opened again with backoff.

All waits are on the session's clock (``ClockPause``), so a test clock X times faster runs them X
times faster, and ``close()`` never waits one out.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING

import orjson
import websocket

from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket.books import (BookTaken, LevelChanged, TickChanged, parse_book,
                                               parse_channel_message)
from fsm_bot.adapters.polymarket.kept_books import KeptBooks
from fsm_bot.adapters.socket_thread import ClockPause, SocketThread
from fsm_bot.errors import BotError, DataError
from fsm_bot.ports import Book, Clock

if TYPE_CHECKING:
    from fsm_bot.config import Config

log = logging.getLogger("fsm_bot.polymarket")
PING_SECS = 10.0


class MarketChannel(SocketThread):
    """The market channel in one background thread: subscribe, keep the books, ping, resync, reconnect."""

    thread_name = "polymarket-channel"

    def __init__(self, url: str, clock: Clock, *, rest: Http | None = None,
                 ping_secs: float = PING_SECS, stale_secs: float = 30.0, resync_secs: float = 2.0,
                 connect_timeout_secs: float = 10.0, backoff_initial_secs: float = 0.5,
                 backoff_max_secs: float = 30.0) -> None:
        pause = ClockPause(clock, threading.Event())
        super().__init__(url, clock, pause, label="Polymarket market channel", component="polymarket", log=log,
                         poll_wall_secs=min(0.25, max(0.002, pause.wall_secs(min(ping_secs, stale_secs)) / 100)),
                         connect_timeout_secs=connect_timeout_secs, backoff_initial_secs=backoff_initial_secs,
                         backoff_max_secs=backoff_max_secs)
        self.rest = rest  # the thread's own session, for resyncs
        self.ping_ms, self.stale_ms = int(ping_secs * 1000), int(stale_secs * 1000)
        self.resync_ms = int(resync_secs * 1000)
        self._following = threading.Event()  # set by follow(): something (else) to subscribe to
        self.books = KeptBooks()
        self.pings = self.pongs = self.messages = self.bad_messages = 0
        self.resyncs = self.resync_failures = 0  # books read whole from REST, and reads that failed
        self._tried_ms: dict[str, int] = {}  # token -> when REST was last asked for its book
        self._failing: set[str] = set()  # tokens whose last REST resync failed

    @classmethod
    def from_config(cls, cfg: "Config", clock: Clock) -> "MarketChannel":
        rest = Http(cfg.clob_url, name="clob", timeout_secs=cfg.http_timeout_secs, backoff=Backoff(attempts=1))
        return cls(cfg.clob_ws_url, clock, rest=rest, stale_secs=cfg.ws_stale_secs,
                   connect_timeout_secs=cfg.http_timeout_secs, backoff_initial_secs=cfg.backoff_initial_secs,
                   backoff_max_secs=max(cfg.backoff_max_secs, 30.0))

    # -- the caller's side -----------------------------------------------------------------------------
    def follow(self, tokens: tuple[str, ...]) -> None:
        """Keep the books of exactly these tokens from now on (the others are dropped); the thread starts with
        the first tokens to follow."""
        if tokens != self.books.tokens():
            self.books.follow(tokens)
            self._following.set()
        if self._thread is None and not self.pause.stop.is_set():
            self.start()

    def book(self, token: str) -> Book | None:
        return self.books.book(token)

    def close(self) -> None:
        self.pause.stop.set()
        self._following.set()
        super().close()
        if self.rest is not None:
            self.rest.close()

    # -- the thread --------------------------------------------------------------------------------------
    def _wanted(self) -> bool:
        if self.books.tokens():
            return True
        self._following.wait(0.25)
        self._following.clear()
        return False

    def _session(self, ws: websocket.WebSocket) -> bool:
        """Subscribe, then listen until the socket drops, goes silent or we stop; True if market data came."""
        self.books.heard(None)
        self._tried_ms.clear()
        return self._listen(ws)

    def _ended(self) -> None:
        self.books.lose()  # whatever was sent meanwhile is lost: every book resyncs

    def _listen(self, ws: websocket.WebSocket) -> bool:
        subscribed: tuple[str, ...] | None = None
        last_frame_ms = last_ping_ms = self.clock.now_ms()
        got_data = False
        while not self.pause.stop.is_set():
            try:
                subscribed = self._subscribe(ws, subscribed)
                self._resync_due()
                frame = self._receive(ws)
                now_ms = self.clock.now_ms()
                if frame is not None and frame[0] == websocket.ABNF.OPCODE_CLOSE:
                    return self._lost("closed by the server", got_data)
                if frame is not None and frame[0] == websocket.ABNF.OPCODE_TEXT:
                    last_frame_ms = now_ms
                    got_data = self._text(frame[1], now_ms) or got_data
                if now_ms - last_frame_ms > self.stale_ms:
                    return self._lost(f"silent for {(now_ms - last_frame_ms) / 1000:.0f} s", got_data)
                if now_ms - last_ping_ms >= self.ping_ms:
                    ws.send("PING")
                    self.pings, last_ping_ms = self.pings + 1, now_ms
            except (websocket.WebSocketException, OSError) as exc:
                return self._lost(f"dropped ({type(exc).__name__})", got_data)
        return got_data

    def _subscribe(self, ws: websocket.WebSocket, subscribed: tuple[str, ...] | None) -> tuple[str, ...]:
        """Tell the venue what is followed now: the whole list on a new connection, then what changed."""
        wanted = self.books.tokens()
        added = [t for t in wanted if subscribed is None or t not in subscribed]
        now_ms = self.clock.now_ms()
        for t in added:  # a book never taken: its snapshot is on the way; REST only if it is late
            if self.books.book(t) is None:
                self._tried_ms[t] = now_ms
        if subscribed is None:
            ws.send(json.dumps({"assets_ids": list(wanted), "type": "market"}))
            return wanted
        dropped = [t for t in subscribed if t not in wanted]
        for tokens, operation in ((added, "subscribe"), (dropped, "unsubscribe")):
            if tokens:
                ws.send(json.dumps({"assets_ids": tokens, "operation": operation}))
        return wanted

    def _text(self, data: bytes | str, now_ms: int) -> bool:
        """One text message; True when it was market data."""
        raw = data.encode() if isinstance(data, str) else data
        if raw.strip() == b"PONG":
            self.pongs += 1
            return False
        self.messages += 1
        try:
            obj = orjson.loads(raw)  # strict UTF-8 as well: the socket leaves the check to the reader
        except orjson.JSONDecodeError:  # not an event (a refusal in words, say): it changed no book
            self.bad_messages += 1
            self._warn(f"a message that is not JSON: {raw[:80].decode('utf-8', 'replace')!r}", "bad_payload")
            return False
        try:
            events = parse_channel_message(obj)
        except DataError as exc:
            self.bad_messages += 1
            named = _named_tokens(obj)
            self.books.lose(named)  # it may have carried a change to the books it names (none named: to any)
            self._warn(f"an event that cannot be read; {'its' if named else 'every'} book resyncs ({str(exc)[:120]})",
                       "bad_book")
            return False
        self.books.heard(now_ms)
        changes = [e for e in events if isinstance(e, LevelChanged)]
        for e in events:
            if isinstance(e, BookTaken):
                self.books.take(e.token, e.book, now_ms)
            elif isinstance(e, TickChanged):
                self.books.lose([e.token])
        if changes and self.books.change(changes):
            self._warn("a change left a book off the venue's best prices; it resyncs", "book_inconsistent")
        return True

    def _resync_due(self) -> None:
        """Read from REST the followed books the channel has not given whole: a book that lost its place at once,
        a new one once its snapshot is ``resync_secs`` late; then once per ``resync_secs`` each."""
        if self.rest is None:
            return
        for token in self.books.unsynced():
            now_ms = self.clock.now_ms()
            if now_ms - self._tried_ms.get(token, now_ms - self.resync_ms) < self.resync_ms:
                continue
            self._tried_ms[token] = now_ms
            try:
                book = parse_book(self.rest.get("/book", {"token_id": token}), token)
            except BotError as exc:
                self.resync_failures += 1
                if token not in self._failing:  # said once until it succeeds; the decision's REST read says more
                    self._failing.add(token)
                    self._warn(f"REST resync of a book failed; tried again every {self.resync_ms} ms ({exc})",
                               exc.code)
                continue
            self._failing.discard(token)
            self.books.take(token, book, self.clock.now_ms())
            self.resyncs += 1


def _named_tokens(obj: object) -> list[str] | None:
    """The asset ids an event (or a list of them) names, its changes' included; None when it names none."""
    named: list[str] = []
    for item in obj if isinstance(obj, list) else [obj]:
        if isinstance(item, dict):
            changes = item.get("price_changes")
            entries = [item] + ([c for c in changes if isinstance(c, dict)] if isinstance(changes, list) else [])
            named += [e["asset_id"] for e in entries if isinstance(e.get("asset_id"), str)]
    return named or None
