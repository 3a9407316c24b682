"""Binance spot BTCUSDT: the ``Feed`` of ``--paper`` and ``--live`` (1-minute candles, depth, reference).

Where the candles come from, in order of preference:

1. The kline WebSocket (``<binance_ws_url>/btcusdt@kline_1m``), held by a background thread. Only
   closed candles (``"x": true``) enter the buffer; the in-progress one never does. The thread
   answers the server's pings (websocket-client does), sends its own, reconnects with exponential
   backoff on any drop, and a freshness watchdog closes a socket that has said nothing for
   ``stale_secs`` (a connection can stay up while its data stops). Every (re)connection first
   backfills the gap from REST, so a drop costs no minute.
2. REST ``GET /api/v3/klines``: the bootstrap, the gap after a restart (the buffer is persisted in
   the state dir, so a restart does not wait 100 minutes) and the fallback when the stream is late.
3. Nothing else. If Binance cannot give a window of consecutive minutes ending in the last closed
   one, ``candles`` raises ``DataError`` (``binance_unreachable``) and the interval is skipped: its
   indicators are never computed on made-up data. CoinGecko's spot price goes into that message
   so the journal shows what the market was, but it is never used as a candle.

Time: everything time-based (watchdog, ping interval, reconnect backoff, retry backoff, which
candle has closed) is measured on the clock this feed is given, so under a test clock running
200x faster a 30 s watchdog takes 0.15 s. Only the HTTP and connect timeouts are wall time.

Parsers (``parse_kline_row``, ``parse_kline_event``, ``parse_depth``) are small pure functions
that turn anything malformed into a ``DataError`` naming the field and the value. Messages name
URL paths only, never query strings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson
import polars as pl
import websocket

from fsm_bot.adapters.coingecko import CoinGecko, shown, epoch_ms, number, price
from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.errors import DataError, TransientError
from fsm_bot.logs import event
from fsm_bot.ports import CANDLE_COLUMNS, Clock, Depth, Outcome

if TYPE_CHECKING:
    from fsm_bot.config import Config

MINUTE_MS = 60_000
SYMBOL = "BTCUSDT"
STREAM_PATH = "/btcusdt@kline_1m"
KLINES_PATH = "/api/v3/klines"
DEPTH_PATH = "/api/v3/depth"
KLINES_MAX = 1000
"""Binance returns at most this many klines per request."""
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
QTY_MAX_BTC = 21_000_000.0
"""A quantity above every bitcoin there will ever be is invalid data."""
BUFFER_FILE = "candles-buffer.parquet"
KEEP_CANDLES = 300

log = logging.getLogger("fsm_bot.binance")
SCHEMA = {"open_time": pl.Int64, **{c: pl.Float64 for c in CANDLE_COLUMNS[1:]}}


# -- parsers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kline:
    """One validated 1-minute candle."""

    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    taker_buy_base: float

    @property
    def close_ms(self) -> int:
        return self.open_ms + MINUTE_MS - 1

    def row(self) -> tuple[int, float, float, float, float, float, float]:
        return (self.open_ms, self.open, self.high, self.low, self.close, self.volume, self.taker_buy_base)


def quantity(value: Any, name: str, code: str) -> float:
    """A BTC quantity in [0, 21,000,000]."""
    result = number(value, name, code)
    if not 0 <= result <= QTY_MAX_BTC:
        raise DataError(f"{name}: quantity {result!r} outside [0, {QTY_MAX_BTC:,.0f}]", code=code)
    return result


def kline(open_ms: Any, close_ms: Any, o: Any, h: Any, lo: Any, c: Any, v: Any, taker: Any, where: str) -> Kline:
    """The checks every candle passes, whatever its source (REST, stream, persisted buffer)."""
    code = "bad_kline"
    t = epoch_ms(open_ms, f"{where} open time", code)
    if t % MINUTE_MS:
        raise DataError(f"{where} open time: {t} ms is not on a minute", code=code)
    if epoch_ms(close_ms, f"{where} close time", code) != t + MINUTE_MS - 1:
        raise DataError(f"{where} close time: {close_ms} ms, expected {t + MINUTE_MS - 1} (a 1-minute candle)", code=code)
    op, hi, low, cl = (price(x, f"{where} {n}", code) for x, n in ((o, "open"), (h, "high"), (lo, "low"), (c, "close")))
    if not (low <= min(op, cl) and hi >= max(op, cl)):
        raise DataError(f"{where}: high {hi} and low {low} do not bracket open {op} and close {cl}", code=code)
    vol, buy = quantity(v, f"{where} volume", code), quantity(taker, f"{where} taker buy volume", code)
    if buy > vol:
        raise DataError(f"{where}: taker buy volume {buy} exceeds volume {vol}", code=code)
    return Kline(t, op, hi, low, cl, vol, buy)


def parse_kline_row(row: Any) -> Kline:
    """One REST kline: ``[openTime, "open", "high", "low", "close", "volume", closeTime,
    "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "ignore"]``."""
    if not isinstance(row, (list, tuple)) or len(row) < 12:
        raise DataError(f"Binance kline: expected a 12-element array, got {shown(row)}", code="bad_kline")
    return kline(row[0], row[6], row[1], row[2], row[3], row[4], row[5], row[9], f"Binance kline {shown(row[0])}")


def parse_klines(payload: Any) -> list[Kline]:
    if not isinstance(payload, list):
        raise DataError(f"Binance klines: expected an array of klines, got {shown(payload)}", code="bad_kline")
    return [parse_kline_row(row) for row in payload]


_EVENT_FIELDS = ("t", "T", "o", "h", "l", "c", "v", "V", "x")


def parse_kline_event(message: Any) -> tuple[Kline, bool]:
    """One stream message (text, bytes or decoded) -> (the candle, whether it has closed)."""
    data = _decode(message)
    if not isinstance(data, dict) or data.get("e") != "kline" or data.get("s") != SYMBOL:
        raise DataError(f"Binance stream: expected a BTCUSDT kline event, got {shown(data)}", code="bad_kline")
    k = data.get("k")
    if not isinstance(k, dict) or k.get("s") != SYMBOL or k.get("i") != "1m":
        raise DataError(f"Binance stream: 'k' is not a BTCUSDT 1m kline: {shown(k)}", code="bad_kline")
    missing = [f for f in _EVENT_FIELDS if f not in k]
    if missing:
        raise DataError(f"Binance stream kline: missing field(s) {missing}", code="bad_kline")
    if not isinstance(k["x"], bool):
        raise DataError(f"Binance stream kline x: expected true or false, got {shown(k['x'])}", code="bad_kline")
    return kline(k["t"], k["T"], k["o"], k["h"], k["l"], k["c"], k["v"], k["V"], "Binance stream kline"), k["x"]


def _decode(message: Any) -> Any:
    if not isinstance(message, (str, bytes, bytearray)):
        return message
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        raise DataError(f"Binance stream: a message that is not JSON: {shown(message)}", code="bad_kline") from None


def depth_limit(levels: int) -> int:
    """The smallest of Binance's valid depth limits that covers ``levels``."""
    return next((limit for limit in DEPTH_LIMITS if limit >= levels), DEPTH_LIMITS[-1])


def parse_depth(payload: Any, levels: int) -> Depth:
    """``{"lastUpdateId": .., "bids": [["price", "qty"], ...], "asks": [...]}`` (best first) ->
    the bid and ask quantity over the top ``levels`` (fewer when the book is thinner)."""
    code = "bad_depth"
    if not isinstance(payload, dict) or not all(isinstance(payload.get(s), list) for s in ("bids", "asks")):
        raise DataError(f"Binance depth: expected {{'bids': [...], 'asks': [...]}}, got {shown(payload)}", code=code)
    update = payload.get("lastUpdateId")
    if not isinstance(update, int) or isinstance(update, bool) or update < 0:
        raise DataError(f"Binance depth lastUpdateId: expected an id, got {shown(update)}", code=code)
    n = min(levels, len(payload["bids"]), len(payload["asks"]))
    if n < 1:
        raise DataError(f"Binance depth: an empty side ({len(payload['bids'])} bids, {len(payload['asks'])} asks)", code=code)
    bids, asks = _side(payload["bids"][:n], "bids", descending=True), _side(payload["asks"][:n], "asks", descending=False)
    if bids[0][0] >= asks[0][0]:
        raise DataError(f"Binance depth: crossed book, best bid {bids[0][0]} >= best ask {asks[0][0]}", code=code)
    return Depth(bid_qty=math.fsum(q for _, q in bids), ask_qty=math.fsum(q for _, q in asks), levels=n)


def _side(levels: list[Any], side: str, descending: bool) -> list[tuple[float, float]]:
    out = [_level(lv, f"Binance depth {side}[{i}]") for i, lv in enumerate(levels)]
    for i in range(1, len(out)):
        if (out[i][0] >= out[i - 1][0]) if descending else (out[i][0] <= out[i - 1][0]):
            raise DataError(f"Binance depth {side}[{i}]: price {out[i][0]} out of order after {out[i - 1][0]}",
                            code="bad_depth")
    return out


def _level(level: Any, where: str) -> tuple[float, float]:
    if not isinstance(level, (list, tuple)) or len(level) != 2:
        raise DataError(f"{where}: expected [price, qty], got {shown(level)}", code="bad_depth")
    qty = quantity(level[1], f"{where} qty", "bad_depth")
    if qty <= 0:
        raise DataError(f"{where} qty: {qty!r}, expected > 0", code="bad_depth")
    return price(level[0], f"{where} price", "bad_depth"), qty


# -- time ----------------------------------------------------------------------------------------
def last_closed_open(t_ms: int) -> int:
    """The open time of the last 1-minute candle closed by ``t_ms`` (open + 60 s <= t_ms)."""
    return (t_ms // MINUTE_MS) * MINUTE_MS - MINUTE_MS


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


class ClockPause:
    """Waits ``secs`` of the clock's time (a clock X times faster waits X times less wall time),
    cut short when ``stop`` is set, so ``close()`` never waits out a backoff."""

    def __init__(self, clock: Clock, stop: threading.Event) -> None:
        self.clock, self.stop = clock, stop
        speed = float(getattr(clock, "speed", 1.0))
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


# -- the buffer ----------------------------------------------------------------------------------
class CandleBuffer:
    """The last ``keep`` closed candles by open time, shared by the stream's thread and the engine's."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._rows: dict[int, Kline] = {}
        self._lock = threading.Lock()

    def add(self, klines: Iterable[Kline]) -> int:
        """Adds (or replaces) candles; returns how many minutes were new."""
        with self._lock:
            before = len(self._rows)
            self._rows.update((k.open_ms, k) for k in klines)
            new = len(self._rows) - before
            for t in sorted(self._rows)[:max(0, len(self._rows) - self.keep)]:
                del self._rows[t]
        return new

    def get(self, open_ms: int) -> Kline | None:
        with self._lock:
            return self._rows.get(open_ms)

    def last_open_ms(self) -> int | None:
        with self._lock:
            return max(self._rows, default=None)

    def missing(self, first_ms: int, last_ms: int) -> list[int]:
        """The minutes in [first, last] the buffer lacks, oldest first."""
        with self._lock:
            return [t for t in range(first_ms, last_ms + 1, MINUTE_MS) if t not in self._rows]

    def frame(self, before_ms: int | None = None, count: int | None = None) -> pl.DataFrame:
        """The last ``count`` candles closed by ``before_ms`` (all when None), oldest first, as CANDLE_COLUMNS."""
        with self._lock:
            times = sorted(t for t in self._rows if before_ms is None or t + MINUTE_MS <= before_ms)
            if count is not None:
                times = times[-count:] if count > 0 else []
            rows = [self._rows[t].row() for t in times]
        return pl.DataFrame(rows, schema=SCHEMA, orient="row")

    def __len__(self) -> int:
        return len(self._rows)


def save_frame(frame: pl.DataFrame, path: Path) -> None:
    """Atomically: a temp file in the same folder, fsynced, then renamed over the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            frame.write_parquet(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_frame(path: Path, now_ms: int) -> list[Kline]:
    """The persisted buffer's candles closed by ``now_ms``, checked like any input; none when the
    file is absent or unusable (it is a cache: REST refills it)."""
    if not path.is_file():
        return []
    try:
        frame = pl.read_parquet(path, columns=list(CANDLE_COLUMNS))
        rows = [_stored(r, path.name) for r in frame.iter_rows()]
    except DataError as exc:
        event(log, logging.WARNING, "binance", f"{path.name} ignored: {exc}", error_code="bad_buffer")
        return []
    except Exception as exc:  # polars raises several kinds for a file that is not parquet
        event(log, logging.WARNING, "binance", f"{path.name} ignored: {type(exc).__name__}", error_code="bad_buffer")
        return []
    return [k for k in rows if k.open_ms + MINUTE_MS <= now_ms]


def _stored(row: tuple[Any, ...], name: str) -> Kline:
    open_ms = row[0]
    close_ms = open_ms + MINUTE_MS - 1 if isinstance(open_ms, int) else None
    return kline(open_ms, close_ms, *row[1:], where=f"{name} row")


# -- REST ----------------------------------------------------------------------------------------
class BinanceRest:
    """The REST reads: klines (closed ones only, judged on the clock) and depth."""

    def __init__(self, http: Http, clock: Clock) -> None:
        self.http, self.clock = http, clock

    def klines(self, *, limit: int, start_ms: int | None = None, end_ms: int | None = None) -> list[Kline]:
        """Klines by open time (``startTime``/``endTime`` as Binance takes them), without the one still open."""
        params: dict[str, Any] = {"symbol": SYMBOL, "interval": "1m", "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        if end_ms is not None:
            params["endTime"] = end_ms
        rows = parse_klines(self.http.get(KLINES_PATH, params))
        now_ms = self.clock.now_ms()
        return [k for k in rows if k.close_ms < now_ms]

    def span(self, first_ms: int, last_ms: int) -> list[Kline]:
        """The closed candles opening in [first, last], in requests of at most 1000."""
        got: list[Kline] = []
        while first_ms <= last_ms:
            limit = min(KLINES_MAX, (last_ms - first_ms) // MINUTE_MS + 1)
            rows = self.klines(limit=limit, start_ms=first_ms, end_ms=last_ms)
            got += rows
            if len(rows) < limit:
                break  # Binance has no more: a gap in its data, or the last has not closed
            first_ms = max(k.open_ms for k in rows) + MINUTE_MS
        return got

    def latest(self, last_ms: int, count: int) -> list[Kline]:
        """The ``count`` closed candles up to ``last_ms`` (the bootstrap)."""
        return self.klines(limit=min(KLINES_MAX, count), end_ms=last_ms)

    def depth(self, levels: int) -> Depth:
        try:
            payload = self.http.get(DEPTH_PATH, {"symbol": SYMBOL, "limit": depth_limit(levels)})
        except TransientError as exc:
            raise DataError(f"Binance unreachable ({exc}): no order book", code="binance_unreachable") from None
        return parse_depth(payload, levels)

    def close(self) -> None:
        self.http.close()


# -- the stream ----------------------------------------------------------------------------------
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


# -- the feed ------------------------------------------------------------------------------------
class BinanceFeed:
    """The ``Feed`` port on Binance spot BTCUSDT, with CoinGecko as the last resort."""

    def __init__(self, rest_url: str, ws_url: str, clock: Clock, buffer_path: Path | None, *,
                 coingecko_url: str | None = None, timeout_secs: float = 10.0, attempts: int = 3,
                 backoff_initial_secs: float = 0.5, backoff_max_secs: float = 4.0, stale_secs: float = 30.0,
                 bootstrap_candles: int = 100, keep_candles: int = KEEP_CANDLES, ping_secs: float | None = None,
                 reconnect_max_secs: float = 30.0) -> None:
        self.clock, self.buffer_path, self.bootstrap_candles = clock, buffer_path, bootstrap_candles
        self._stop = threading.Event()
        self.pause = ClockPause(clock, self._stop)
        backoff = Backoff(attempts, backoff_initial_secs, backoff_max_secs)

        def http(url: str, name: str) -> Http:
            return Http(url, name=name, timeout_secs=timeout_secs, backoff=backoff, pause=self.pause)

        self.rest = BinanceRest(http(rest_url, "Binance"), clock)
        self.stream_rest = BinanceRest(http(rest_url, "Binance"), clock)  # the stream thread's own session
        self.coingecko = CoinGecko(coingecko_url, timeout_secs=timeout_secs, backoff=backoff, pause=self.pause) \
            if coingecko_url else None
        self.buffer = CandleBuffer(max(keep_candles, bootstrap_candles))
        self._save_lock = threading.Lock()
        self.stream = KlineStream(ws_url.rstrip("/") + STREAM_PATH, clock, self.pause, on_kline=self._streamed,
                                  on_connect=self._catch_up_quietly, stale_secs=stale_secs,
                                  ping_secs=ping_secs or min(20.0, stale_secs / 2), connect_timeout_secs=timeout_secs,
                                  backoff_initial_secs=backoff_initial_secs,
                                  backoff_max_secs=max(backoff_max_secs, reconnect_max_secs))

    @classmethod
    def from_config(cls, cfg: "Config", clock: Clock, state_dir: Path | None) -> "BinanceFeed":
        return cls(cfg.binance_rest_url, cfg.binance_ws_url, clock,
                   Path(state_dir) / BUFFER_FILE if state_dir is not None else None,
                   coingecko_url=cfg.coingecko_url, timeout_secs=cfg.http_timeout_secs, attempts=cfg.attempts,
                   backoff_initial_secs=cfg.backoff_initial_secs, backoff_max_secs=cfg.backoff_max_secs,
                   stale_secs=cfg.ws_stale_secs, bootstrap_candles=cfg.candles,
                   keep_candles=max(KEEP_CANDLES, cfg.candles + 60))

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the persisted buffer, fill the gap from REST, start the stream. Binance being down is
        logged, not raised: the session goes on and skips the intervals it cannot decide honestly."""
        if self.buffer_path is not None:
            self.buffer.add(load_frame(self.buffer_path, self.clock.now_ms()))
        try:
            self.catch_up(self.rest)
        except (TransientError, DataError) as exc:
            event(log, logging.ERROR, "binance", f"bootstrap from REST failed: {exc}", error_code=exc.code)
        self.stream.start()

    def close(self) -> None:
        """Stop and join the stream's thread, persist the buffer."""
        self._stop.set()
        self.stream.close()
        self._save()
        for part in (self.rest, self.stream_rest, self.coingecko):
            if part is not None:
                part.close()

    # -- filling the buffer ---------------------------------------------------------------------------
    def catch_up(self, rest: BinanceRest) -> int:
        """REST klines for the minutes after the buffer's newest up to the last closed one; how many were new."""
        last_ms = last_closed_open(self.clock.now_ms())
        newest_ms = self.buffer.last_open_ms()
        if newest_ms is not None and newest_ms >= last_ms:
            return 0
        if newest_ms is None or last_ms - newest_ms > self.buffer.keep * MINUTE_MS:
            return self._take(rest.latest(last_ms, self.bootstrap_candles))
        return self._take(rest.span(newest_ms + MINUTE_MS, last_ms))

    def _catch_up_quietly(self) -> None:
        """On each (re)connection: a failed backfill is logged; ``candles`` retries when it needs it."""
        try:
            self.catch_up(self.stream_rest)
        except (TransientError, DataError) as exc:
            event(log, logging.WARNING, "binance", f"backfill after connecting failed: {exc}", error_code=exc.code)

    def _streamed(self, candle: Kline) -> None:
        self._take([candle])

    def _take(self, candles: list[Kline]) -> int:
        new = self.buffer.add(candles)
        if new:
            self._save()
        return new

    def _save(self) -> None:
        if self.buffer_path is None:
            return
        with self._save_lock:
            try:
                save_frame(self.buffer.frame(), self.buffer_path)
            except OSError as exc:
                event(log, logging.WARNING, "binance", f"{self.buffer_path.name} not saved: {exc}",
                      error_code="buffer_unsaved")

    # -- the port ---------------------------------------------------------------------------------------
    def candles(self, before_ms: int, count: int) -> pl.DataFrame:
        """The last ``count`` candles closed by ``before_ms``, oldest first; one REST backfill when the
        buffer lacks a minute of that window; ``DataError`` when Binance cannot fill it."""
        last_ms = last_closed_open(before_ms)
        first_ms = last_ms - (count - 1) * MINUTE_MS
        missing = self.buffer.missing(first_ms, last_ms)
        if missing:
            self._backfill(missing[0], first_ms, last_ms)
        return self.buffer.frame(before_ms, count)

    def _backfill(self, from_ms: int, first_ms: int, last_ms: int) -> None:
        try:
            self._take(self.rest.span(from_ms, last_ms))
        except TransientError as exc:
            if self.buffer.missing(first_ms, last_ms):  # else the stream filled it meanwhile
                raise self._unreachable(exc, first_ms, last_ms) from None
        except DataError:
            if self.buffer.missing(first_ms, last_ms):
                raise

    def _unreachable(self, exc: BaseException, first_ms: int, last_ms: int) -> DataError:
        count = (last_ms - first_ms) // MINUTE_MS + 1
        have = count - len(self.buffer.missing(first_ms, last_ms))
        return DataError(f"Binance unreachable ({exc}): {have} of the {count} closed minutes up to {iso(last_ms)} "
                         f"in the buffer; {self._spot_note()}", code="binance_unreachable")

    def _spot_note(self) -> str:
        if self.coingecko is None:
            return "no CoinGecko configured"
        try:
            return f"CoinGecko spot {self.coingecko.spot_usd():.2f} USD (for the record; never used as a candle)"
        except (TransientError, DataError) as exc:
            return f"CoinGecko unavailable too ({exc})"

    def depth(self, levels: int) -> Depth:
        return self.rest.depth(levels)

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        """UP if the close of the minute at end-60 s >= the open of the minute at start; None until it closes."""
        if self.clock.now_ms() < end_ms:
            return None
        try:
            first, last = self._candle(start_ms), self._candle(end_ms - MINUTE_MS)
        except (TransientError, DataError) as exc:
            return self._reference_elsewhere(start_ms, end_ms, exc)
        if first is None or last is None:
            return None
        return "UP" if last.close >= first.open else "DOWN"

    def _candle(self, open_ms: int) -> Kline | None:
        found = self.buffer.get(open_ms)
        if found is None:
            found = next((k for k in self.rest.klines(limit=1, start_ms=open_ms, end_ms=open_ms)
                          if k.open_ms == open_ms), None)
        return found

    def _reference_elsewhere(self, start_ms: int, end_ms: int, exc: BaseException) -> Outcome:
        what = f"reference {iso(start_ms)}..{iso(end_ms)}"
        if self.coingecko is None:
            raise DataError(f"{what}: Binance failed ({exc}), no CoinGecko configured", code="reference_unavailable")
        try:
            result = self.coingecko.reference(start_ms, end_ms)
        except (TransientError, DataError) as cg:
            raise DataError(f"{what}: Binance failed ({exc}), CoinGecko too ({cg})", code="reference_unavailable") from None
        if result is None:
            raise DataError(f"{what}: Binance failed ({exc}); CoinGecko has no prices within 2 minutes of both ends",
                            code="reference_unavailable")
        event(log, logging.WARNING, "binance", f"{what} from CoinGecko ({result}): Binance failed ({exc})",
              error_code="reference_coingecko")
        return result
