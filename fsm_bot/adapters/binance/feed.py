"""``BinanceFeed``, the ``Feed`` port over the parts: it fills the candle buffer from the persisted
file, REST and the stream, answers ``candles`` only with a window of consecutive closed minutes
(else ``DataError``), and serves depth and the interval's reference outcome, with CoinGecko as the
reference's last resort and the spot price noted when Binance is unreachable."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from fsm_bot.adapters.binance.buffer import BUFFER_FILE, KEEP_CANDLES, CandleBuffer, load_buffer, save_buffer
from fsm_bot.adapters.binance.parsers import DEPTH_STREAM_PATH, STREAM_PATH, Kline
from fsm_bot.adapters.binance.rest import BinanceRest
from fsm_bot.adapters.binance.stream import ClockPause, StreamedDepth, depth_stream, kline_stream
from fsm_bot.adapters.coingecko import CoinGecko
from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.candles import Columns
from fsm_bot.errors import DataError, TransientError
from fsm_bot.logs import event
from fsm_bot.ports import MINUTE_MS, Clock, Depth, Outcome

if TYPE_CHECKING:
    from fsm_bot.config import Config

log = logging.getLogger("fsm_bot.binance")
CLOSE_WAIT_SECS = 2.0  # how long a decision waits for its closing candle on the stream before asking REST
SAVE_DELAY_SECS = 30.0  # new candles are written to the buffer's file this long after they came in: mid-minute


def last_closed_open(t_ms: int) -> int:
    """The open time of the last 1-minute candle closed by ``t_ms`` (open + 60 s <= t_ms)."""
    return (t_ms // MINUTE_MS) * MINUTE_MS - MINUTE_MS


def iso(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


class BinanceFeed:
    """The ``Feed`` port on Binance spot BTCUSDT, with CoinGecko as the last resort."""

    def __init__(self, rest_url: str, ws_url: str, clock: Clock, buffer_path: Path | None, *,
                 coingecko_url: str | None = None, timeout_secs: float = 10.0, attempts: int = 3,
                 backoff_initial_secs: float = 0.5, backoff_max_secs: float = 4.0, stale_secs: float = 30.0,
                 bootstrap_candles: int = 100, keep_candles: int = KEEP_CANDLES, ping_secs: float | None = None,
                 reconnect_max_secs: float = 30.0, depth_levels: int = 20, depth_max_age_ms: int = 5000) -> None:
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
        self._unsaved = threading.Event()
        self._saver = threading.Thread(target=self._saving, name="binance-buffer-saver", daemon=True)
        options = dict(stale_secs=stale_secs, ping_secs=ping_secs or min(20.0, stale_secs / 2),
                       connect_timeout_secs=timeout_secs, backoff_initial_secs=backoff_initial_secs,
                       backoff_max_secs=max(backoff_max_secs, reconnect_max_secs))
        self.stream = kline_stream(ws_url.rstrip("/") + STREAM_PATH, clock, self.pause, on_kline=self._streamed,
                                   on_connect=self._catch_up_quietly, **options)
        self.streamed_depth = StreamedDepth(clock, depth_levels)
        self.depth_stream = depth_stream(ws_url.rstrip("/") + DEPTH_STREAM_PATH, clock, self.pause,
                                         self.streamed_depth, **options)
        self.depth_max_age_ms = depth_max_age_ms

    @classmethod
    def from_config(cls, cfg: "Config", clock: Clock, state_dir: Path | None) -> "BinanceFeed":
        return cls(cfg.binance_rest_url, cfg.binance_ws_url, clock,
                   Path(state_dir) / BUFFER_FILE if state_dir is not None else None,
                   coingecko_url=cfg.coingecko_url, timeout_secs=cfg.http_timeout_secs, attempts=cfg.attempts,
                   backoff_initial_secs=cfg.backoff_initial_secs, backoff_max_secs=cfg.backoff_max_secs,
                   stale_secs=cfg.ws_stale_secs, bootstrap_candles=cfg.candles,
                   keep_candles=max(KEEP_CANDLES, cfg.candles + 60), depth_levels=cfg.depth_levels,
                   depth_max_age_ms=cfg.book_max_age_ms)

    # -- life cycle ---------------------------------------------------------------------------------
    def reconnects(self) -> int:
        return max(0, self.stream.connections - 1)

    def start(self) -> None:
        """Load the persisted buffer, fill the gap from REST, start the stream. Binance being down is
        logged, not raised: the session goes on and skips the intervals it cannot decide honestly."""
        if self.buffer_path is not None:
            self.buffer.add(load_buffer(self.buffer_path, self.clock.now_ms()))
        try:
            self.catch_up(self.rest)
        except (TransientError, DataError) as exc:
            event(log, logging.ERROR, "binance", f"bootstrap from REST failed: {exc}", error_code=exc.code)
        self._saver.start()
        self.stream.start()
        self.depth_stream.start()

    def close(self) -> None:
        """Stop and join the stream's and the saver's threads, persist the buffer."""
        self._stop.set()
        self._unsaved.set()
        self.stream.close()
        self.depth_stream.close()
        if self._saver.is_alive():
            self._saver.join()
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
            self._unsaved.set()
        return new

    def _saving(self) -> None:
        """The buffer's file, written ``SAVE_DELAY_SECS`` after new candles came in: a candle closes when a
        decision starts, and the file's fsync is no part of it (``close`` saves what is left)."""
        while self._unsaved.wait() and not self._stop.is_set():
            if not self.pause(SAVE_DELAY_SECS):
                return
            self._unsaved.clear()
            self._save()

    def _save(self) -> None:
        if self.buffer_path is None:
            return
        with self._save_lock:
            try:
                save_buffer(self.buffer.columns(), self.buffer_path)
            except OSError as exc:
                event(log, logging.WARNING, "binance", f"{self.buffer_path.name} not saved: {exc}",
                      error_code="buffer_unsaved")

    # -- the port ---------------------------------------------------------------------------------------
    def candles(self, before_ms: int, count: int) -> Columns:
        """The last ``count`` candles closed by ``before_ms``, oldest first; one REST backfill when the
        buffer lacks a minute of that window; ``DataError`` when Binance cannot fill it."""
        last_ms = last_closed_open(before_ms)
        first_ms = last_ms - (count - 1) * MINUTE_MS
        missing = self.buffer.missing(first_ms, last_ms)
        if missing:
            self._backfill(missing[0], first_ms, last_ms)
        return self.buffer.columns(before_ms, count)

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

    def wait_closed(self, before_ms: int) -> float | None:
        """Wait for the candle that closes at ``before_ms`` (on the stream, or a backfill): the wall time it came
        in, or None when it has not within ``CLOSE_WAIT_SECS`` of the clock (``candles`` then asks REST)."""
        return self.buffer.wait_for(last_closed_open(before_ms), self.pause.wall_secs(CLOSE_WAIT_SECS))

    def depth(self, levels: int) -> Depth:
        """The depth stream's newest book when it is no older than the bound; else REST's."""
        return self.streamed_depth.latest(levels, self.depth_max_age_ms) or self.rest.depth(levels)

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
