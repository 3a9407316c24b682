"""The real ``BinanceFeed`` against loopback Binance and CoinGecko replaying real candles.

Time: the fakes run on a ``FakeTime`` and the feed on a ``ScaledClock`` started from it, both
``SPEED`` times faster than wall time, so minutes of market pass in a fraction of a second. The
tests only ever wait for the fake clock to reach a moment.
"""

from __future__ import annotations

import re
import threading
import time as wall
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from fsm_bot.adapters.binance.buffer import BUFFER_FILE, load_buffer
from fsm_bot.adapters.binance.feed import BinanceFeed
from fsm_bot.adapters.binance.parsers import parse_depth
from fsm_bot.adapters.clock import ScaledClock
from fsm_bot.adapters.http import Http
from fsm_bot.adapters.sim import BUNDLED, load_candles
from fsm_bot.config import Config
from fsm_bot.errors import DataError
from tests.servers.base import FakeTime
from tests.servers.binance import FakeBinance, FakeCoinGecko

M = 60_000
DATA = load_candles(BUNDLED)
SPEED = 300
START_MS = int(DATA["open_time"][1500]) + 20_000  # 2024-03-12T01:00:20Z, 20 s into a minute
MINUTE0 = START_MS // M * M  # the minute the fake clock starts in; the buffer at start ends just before it


def expected(before_ms: int, count: int) -> pl.DataFrame:
    """The data's last ``count`` candles closed by ``before_ms``."""
    return DATA.filter(pl.col("open_time") + M <= before_ms).tail(count)


def truth(start_ms: int, end_ms: int) -> str:
    first = DATA.filter(pl.col("open_time") == start_ms)["open"][0]
    last = DATA.filter(pl.col("open_time") == end_ms - M)["close"][0]
    return "UP" if last >= first else "DOWN"


@dataclass
class Market:
    tmp: Path
    time: FakeTime = field(init=False)
    clock: ScaledClock = field(init=False)
    binance: FakeBinance = field(init=False)
    coingecko: FakeCoinGecko = field(init=False)
    feeds: list[BinanceFeed] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.time = FakeTime(START_MS, SPEED)
        self.clock = ScaledClock(self.time.now_ms(), SPEED)
        self.binance = FakeBinance(DATA, self.time).start()
        self.coingecko = FakeCoinGecko(DATA, self.time).start()

    def feed(self, stale_secs: float = 30.0) -> BinanceFeed:
        cfg = Config().replace(**self.binance.urls(), **self.coingecko.urls(), http_timeout_secs=0.5,
                               ws_stale_secs=stale_secs, backoff_initial_secs=0.5, backoff_max_secs=4.0, attempts=3)
        feed = BinanceFeed.from_config(cfg, self.clock, self.tmp)
        self.feeds.append(feed)
        return feed

    def running_feed(self, stale_secs: float = 30.0) -> BinanceFeed:
        """A started feed whose stream is up and talking."""
        feed = self.feed(stale_secs)
        feed.start()
        self.wait_for(lambda: feed.stream.messages > 0)
        return feed

    def next_minute(self) -> int:
        """The next minute boundary on the fake clock: tests anchor their moments there, whatever the setup took."""
        return self.time.now_ms() // M * M + M

    def wait_for(self, condition, wall_secs: float = 5.0) -> None:
        deadline = wall.monotonic() + wall_secs
        while not condition():
            assert wall.monotonic() < deadline, "condition not met in time"
            wall.sleep(0.001)

    def wait_until(self, t_ms: int) -> None:
        """Wait (wall time) until the fake clock reaches ``t_ms``."""
        while (left_ms := t_ms - self.time.now_ms()) > 0:
            wall.sleep(self.time.wall_secs(left_ms / 1000))

    def klines_statuses(self) -> list[int]:
        return [status for method, path, status in self.binance.rest.log if path == "/api/v3/klines"]

    def close(self) -> None:
        for feed in self.feeds:
            feed.close()
        self.binance.stop()
        self.coingecko.stop()


@pytest.fixture
def market(tmp_path):
    m = Market(tmp_path)
    yield m
    m.close()


# -- bootstrap and the stream --------------------------------------------------------------------
def test_bootstrap_fills_the_window_with_the_real_candles(market):
    feed = market.feed()
    feed.start()
    now = market.clock.now_ms()
    assert feed.candles(now, 100).equals(expected(now, 100))
    first = market.binance.klines_queries[0]
    assert first["limit"] == "100" and "startTime" not in first


def test_closed_candles_arrive_through_the_stream_not_rest(market):
    # a watchdog of 120 fake seconds (0.4 s of wall time): a busy machine's pause is not a silent stream
    feed = market.running_feed(stale_secs=120.0)
    rest_before, m1 = market.binance.klines_requests, market.next_minute()
    market.wait_until(m1 + 2 * M + 20_000)
    now = market.clock.now_ms()
    frame = feed.candles(now, 100)
    assert frame.equals(expected(now, 100))
    assert frame.open_time[-1] == m1 + M
    assert market.binance.klines_requests == rest_before


def test_the_candle_in_progress_never_enters_the_buffer(market):
    feed = market.running_feed()
    m1 = market.next_minute()
    market.wait_until(m1 + 55_000)
    assert feed.stream.messages >= 6  # in-progress updates came, every 10 s
    buffered = feed.buffer.columns()
    assert buffered.open_time[-1] == m1 - M  # the minute in progress (m1) is not there
    assert buffered.equals(DATA.filter(pl.col("open_time").is_in(buffered.open_time.tolist())))


def test_a_restart_loads_the_buffer_and_backfills_only_the_gap(market):
    first = market.feed()
    first.start()
    first.close()
    saved = load_buffer(market.tmp / BUFFER_FILE, market.clock.now_ms())
    last_ms = first.buffer.last_open_ms()
    # 100 backfilled, and those that closed on the stream before the close (a slow machine)
    assert len(saved) == len(first.buffer) >= 100 and saved[-1].open_ms == last_ms
    market.wait_until(last_ms + 6 * M + 20_000)
    asked = len(market.binance.klines_queries)
    second = market.feed()
    second.start()
    [gap] = market.binance.klines_queries[asked:]
    assert (gap["startTime"], gap["endTime"], gap["limit"]) == (str(last_ms + M), str(last_ms + 5 * M), "5")
    now = market.clock.now_ms()
    assert second.candles(now, 100).equals(expected(now, 100))
    assert len(second.buffer) == len(saved) + 5


def test_an_earlier_releases_buffer_file_is_removed_once_the_buffer_is_saved(market):
    old = market.tmp / "candles-buffer.parquet"
    old.write_bytes(b"PAR1 as an earlier release left it")
    feed = market.feed()
    feed.start()
    feed.close()
    assert not old.exists()
    assert len(load_buffer(market.tmp / BUFFER_FILE, market.clock.now_ms())) == len(feed.buffer) >= 100


def test_an_unreadable_buffer_file_is_ignored_and_refilled(market):
    (market.tmp / BUFFER_FILE).write_bytes(b"not numpy at all")
    feed = market.feed()
    feed.start()
    now = market.clock.now_ms()
    assert feed.candles(now, 100).equals(expected(now, 100))


def test_a_dropped_stream_reconnects_and_misses_no_minute(market):
    feed = market.running_feed()
    m1 = market.next_minute()
    market.wait_until(m1 + 40_000)
    rest_before = market.binance.klines_requests
    assert market.binance.drop_ws(down_secs=45) == 2  # both streams (klines, depth), down across the next minute's close
    market.wait_until(m1 + 2 * M + 30_000)
    assert market.binance.ws_refused >= 1 and market.binance.ws_connections == 2
    assert market.binance.klines_requests == rest_before + 1  # the reconnection backfilled the lost minute
    now = market.clock.now_ms()
    assert feed.candles(now, 100).equals(expected(now, 100))
    assert market.binance.klines_requests == rest_before + 1


def test_a_silent_stream_trips_the_watchdog_which_reconnects_and_backfills(market):
    feed = market.running_feed()
    m1 = market.next_minute()
    market.wait_until(m1 + 45_000)
    rest_before = market.binance.klines_requests
    assert market.binance.silence(600) == 2  # both sockets stay up, pings go on, data stops
    market.wait_until(m1 + M + 50_000)
    assert feed.stream.watchdog_trips == 1 and market.binance.ws_connections == 2
    assert market.binance.klines_requests == rest_before + 1
    now = market.clock.now_ms()
    assert feed.candles(now, 100).equals(expected(now, 100))


def test_a_malformed_stream_message_is_skipped_and_the_stream_goes_on(market):
    feed = market.running_feed()
    market.binance.send_raw('{"e": "kline", "s": "BTCUSDT", "k": {"t": "soon"}}')
    market.binance.send_raw("not json")
    rest_before, m1 = market.binance.klines_requests, market.next_minute()
    market.wait_until(m1 + 20_000)
    assert feed.stream.bad_messages == 2
    assert feed.buffer.last_open_ms() == m1 - M and market.binance.klines_requests == rest_before


# -- REST faults ---------------------------------------------------------------------------------
def test_a_burst_of_5xx_on_klines_is_retried_and_recovers(market):
    market.binance.fault("GET", "/api/v3/klines", "status", count=2, status=503)
    feed = market.feed()
    feed.start()
    assert market.klines_statuses()[:3] == [503, 503, 200]
    assert len(feed.buffer) == 100


def test_429_retry_after_is_waited_on_the_clock(market):
    market.binance.fault("GET", "/api/v3/klines", "status", count=1, status=429, headers={"Retry-After": "20"})
    feed = market.feed()
    before = market.clock.now_ms()
    feed.start()
    waited_ms = market.clock.now_ms() - before
    assert market.klines_statuses()[:2] == [429, 200]
    assert 20_000 <= waited_ms < 60_000  # the backoff alone would have been 0.5 s
    assert len(feed.buffer) == 100


def test_a_hanging_klines_request_times_out_and_is_retried(market):
    hang = market.binance.fault("GET", "/api/v3/klines", "hang", count=1, secs=1.5)
    feed = market.feed()
    started = wall.monotonic()
    feed.start()
    assert hang.count == 0 and wall.monotonic() - started >= 0.5  # the 0.5 s timeout passed, then a retry
    now = market.clock.now_ms()  # the wait took minutes of the fake clock: those closed on the stream are kept too
    assert len(feed.buffer) >= 100 and feed.candles(now, 100).equals(expected(now, 100))


def test_binance_down_makes_candles_raise_a_reason_naming_the_coingecko_price(market):
    feed = market.running_feed()
    market.binance.down()
    m1 = market.next_minute()
    market.wait_until(m1 + 20_000)
    with pytest.raises(DataError) as caught:
        feed.candles(market.clock.now_ms(), 100)
    message = str(caught.value)
    assert caught.value.code == "binance_unreachable" and "99 of the 100" in message
    spot = float(re.search(r"CoinGecko spot ([\d.]+) USD", message).group(1))
    minute = DATA.filter(pl.col("open_time") == m1)
    assert minute["low"][0] <= spot <= minute["high"][0]
    assert "symbol=" not in message


def test_binance_down_at_start_is_logged_and_every_window_skipped(market):
    market.binance.down()
    feed = market.feed()
    feed.start()
    with pytest.raises(DataError) as caught:
        feed.candles(market.clock.now_ms(), 100)
    assert caught.value.code == "binance_unreachable" and "0 of the 100" in str(caught.value)


# -- reference -------------------------------------------------------------------------------------
def test_reference_comes_from_the_buffered_candles(market):
    feed = market.feed()
    feed.start()
    end_ms = MINUTE0
    rest_before = market.binance.klines_requests
    for start_ms in range(end_ms - 60 * M, end_ms, 5 * M):
        assert feed.reference(start_ms, start_ms + 5 * M) == truth(start_ms, start_ms + 5 * M)
    assert market.binance.klines_requests == rest_before


def test_reference_is_none_until_the_last_minute_closes(market):
    feed = market.feed()
    # the interval's last minute closes ten fake minutes (two wall seconds) after the clock starts
    assert feed.reference(MINUTE0 + 5 * M, MINUTE0 + 10 * M) is None


def test_reference_of_an_interval_outside_the_buffer_asks_rest(market):
    feed = market.feed()
    start_ms = MINUTE0 - 300 * M
    assert feed.reference(start_ms, start_ms + 5 * M) == truth(start_ms, start_ms + 5 * M)
    assert [q["startTime"] for q in market.binance.klines_queries] == [str(start_ms), str(start_ms + 4 * M)]


def _biggest_move(first_ms: int, last_ms: int) -> int:
    starts = range(first_ms, last_ms, 5 * M)
    opens = dict(zip(DATA["open_time"], DATA["open"]))
    closes = dict(zip(DATA["open_time"], DATA["close"]))
    return max(starts, key=lambda s: abs(closes[s + 4 * M] - opens[s]))


def test_reference_falls_back_to_coingecko_when_binance_is_down(market):
    market.binance.down()
    feed = market.feed()
    start_ms = _biggest_move(MINUTE0 - 240 * M, MINUTE0 - 120 * M)
    assert feed.reference(start_ms, start_ms + 5 * M) == truth(start_ms, start_ms + 5 * M)
    assert market.coingecko.requests("market_chart/range") == 1


def test_reference_without_any_source_is_a_data_error(market):
    market.binance.down()
    feed = market.feed()
    before_data = int(DATA["open_time"][0]) - 60 * M  # CoinGecko has no points there either
    with pytest.raises(DataError) as caught:
        feed.reference(before_data, before_data + 5 * M)
    assert caught.value.code == "reference_unavailable" and "CoinGecko" in str(caught.value)


# -- depth ------------------------------------------------------------------------------------------
def _sums(payload: dict, levels: int) -> tuple[float, float]:
    return tuple(sum(float(q) for _, q in payload[side][:levels]) for side in ("bids", "asks"))


def test_depth_sums_the_top_levels_of_the_book(market):
    feed = market.feed()
    depth = feed.depth(20)
    bids, asks = _sums(market.binance.last_depth, 20)
    assert (depth.levels, market.binance.depth_limits) == (20, [20])
    assert depth.bid_qty == pytest.approx(bids, rel=1e-12) and depth.ask_qty == pytest.approx(asks, rel=1e-12)
    assert bids != pytest.approx(_sums(market.binance.last_depth, 19)[0])


@pytest.mark.parametrize("levels, limit", [(7, 10), (20, 20), (120, 500), (5000, 5000)])
def test_depth_asks_for_the_smallest_valid_limit(market, levels, limit):
    depth = market.feed().depth(levels)
    assert market.binance.depth_limits == [limit] and depth.levels == levels
    assert depth.bid_qty == pytest.approx(_sums(market.binance.last_depth, levels)[0], rel=1e-12)


def test_a_malformed_depth_payload_is_a_data_error(market):
    market.binance.fault("GET", "/api/v3/depth", "raw", body=b'{"lastUpdateId": 1, "bids": [["x", "1"]], "asks": [["1", "1"]]}')
    with pytest.raises(DataError) as caught:
        market.feed().depth(20)
    assert caught.value.code == "bad_depth" and "bids[0] price" in str(caught.value)


# -- life cycle ----------------------------------------------------------------------------------
def test_close_joins_the_stream_thread_and_persists_the_buffer(market):
    feed = market.running_feed()
    m1 = market.next_minute()
    market.wait_until(m1 + 10_000)
    feed.close()
    assert not [t for t in threading.enumerate() if t.name == "binance-stream"]
    saved = load_buffer(market.tmp / BUFFER_FILE, market.clock.now_ms())
    assert saved[-1].open_ms == m1 - M and [k.row() for k in saved] == feed.buffer.rows()



def test_the_server_time_starts_a_held_fake_clock():
    held = FakeTime(START_MS, SPEED, held=True)
    binance = FakeBinance(DATA, held).start()
    try:
        wall.sleep(0.01)
        assert held.now_ms() == START_MS
        server_ms = Http(binance.urls()["binance_rest_url"], name="binance").get("/api/v3/time")["serverTime"]
        assert START_MS <= server_ms < START_MS + 1000  # released by this very request
        wall.sleep(0.01)
        assert held.now_ms() > START_MS
    finally:
        binance.stop()


def test_depth_comes_from_the_partial_depth_stream_and_from_rest_once_it_is_stale(market):
    """The decision reads the depth stream's newest book (the same payload REST serves, so the same figures);
    once the stream has said nothing for longer than the bound, REST is asked."""
    feed = market.running_feed()
    market.wait_until(market.next_minute() + 10_000)
    rest_before = len(market.binance.depth_limits)
    market.binance.silence(3)  # nothing new arrives while the two are compared
    market.wait_until(market.clock.now_ms() + 200)
    got = feed.depth(20)
    assert len(market.binance.depth_limits) == rest_before and market.binance.depth_messages >= 1
    assert got == parse_depth(market.binance.last_depth_pushed, 20)
    assert feed.depth(50) is not None and len(market.binance.depth_limits) == rest_before + 1  # 50 > 20: REST
    market.binance.silence(60)
    market.wait_until(market.clock.now_ms() + feed.depth_max_age_ms + 3000)
    feed.depth(20)
    assert len(market.binance.depth_limits) == rest_before + 2


def test_a_depth_message_that_cannot_be_read_is_counted_once_and_rest_answers(market):
    """The depth stream's messages are read only when the decision asks, once each: one that does not read is
    counted and warned of once, and REST answers for it as often as it is asked."""
    feed = market.running_feed()
    market.wait_until(market.next_minute() + 10_000)
    market.binance.silence(60)
    market.wait_until(market.clock.now_ms() + 200)  # what was on its way before the silence is in
    came = feed.depth_stream.messages
    market.binance.send_raw('{"lastUpdateId": 1, "bids": [["not a price", "1.0"]], "asks": []}')
    market.wait_until(market.clock.now_ms() + 200)
    assert feed.depth_stream.messages == came + 1 and feed.depth_stream.bad_messages == 0  # kept, not yet read
    rest_before = len(market.binance.depth_limits)
    assert feed.depth(20) == parse_depth(market.binance.last_depth, 20)
    assert feed.depth(20) is not None and len(market.binance.depth_limits) == rest_before + 2
    assert feed.streamed_depth.bad_messages == 1
