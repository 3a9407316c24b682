"""The books kept current from the CLOB's market channel (``fsm_bot/adapters/polymarket/stream.py``): the real
client against the loopback channel (``tests/servers/polymarket_ws.py``), the public side's choice between the
channel and REST, FETCH's ``book_stale`` / ``book_resyncing`` skips re-checked by replay, and whole ``--paper``
sessions with ``GET /book`` down from start to end."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from decimal import Decimal

import pytest

from fsm_bot import engine, journal
from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket.books import BookTaken, LevelChanged, TickChanged, parse_channel_message
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.adapters.polymarket.stream import MarketChannel
from fsm_bot.config import Config
from fsm_bot.errors import DataError, ReplayMismatch
from fsm_bot.ports import Book, Level, slug
from fsm_bot.session import parse_iso
from tests.fakes import START, FakeFeed, FakeVenue, book, records, run
from tests.servers.base import FakeTime
from tests.servers.polymarket import FakePolymarket
from tests.servers.world import CANDLES, START_MS, read_jsonl, world
from tests.test_replay import rewrite

BOUND_MS = Config().book_max_age_ms
TOKEN_A, TOKEN_B = "1" * 77, "2" * 77


class TimeClock:
    """The session's clock read from the servers' ``FakeTime``, so the client and the fake agree on "now"."""

    def __init__(self, t: FakeTime) -> None:
        self.t, self.speed, self.wake = t, t.speed, threading.Event()

    def now_ms(self) -> int:
        return self.t.now_ms()

    def sleep_until(self, t_ms: int) -> None:
        while self.now_ms() < t_ms:
            time.sleep(0.001)

    def pause(self, secs: float) -> None:
        self.sleep_until(self.now_ms() + int(secs * 1000))

    display_ms = now_ms


def until(condition, wall_secs: float = 5.0):
    deadline = time.monotonic() + wall_secs
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.002)
    raise AssertionError("not reached in time")


@pytest.fixture
def channel_world():
    t = FakeTime(START_MS - 60_000, speed=50.0)
    fake = FakePolymarket(CANDLES, t).start()
    clock = TimeClock(t)
    channel = MarketChannel(fake.channel.url, clock, rest=Http(fake.clob.url, name="clob", backoff=Backoff(1)),
                            stale_secs=600)  # a busy machine's pause is not a silent channel
    market = fake.market(slug(START_MS, 5))
    yield fake, clock, channel, market
    channel.close()
    fake.stop()


def follow(channel, market):
    channel.follow((market.up_token, market.down_token))
    return until(lambda: channel.book(market.up_token) and channel.book(market.down_token))


# -- the payloads --------------------------------------------------------------------------------
def test_a_book_event_is_taken_whole_whatever_the_order_of_its_levels():
    message = [{"event_type": "book", "asset_id": TOKEN_A, "market": "0x" + "a" * 64, "timestamp": "1786604072222",
                "hash": "ed47eb91", "bids": [{"price": "0.48", "size": "30"}, {"price": "0.50", "size": "15"}],
                "asks": [{"price": "0.53", "size": "60"}, {"price": "0.52", "size": "25"}], "tick_size": "0.01",
                "last_trade_price": "0.51"}]
    (taken,) = parse_channel_message(message)
    assert taken == BookTaken(TOKEN_A, Book(bids=(Level(Decimal("0.50"), Decimal(15)), Level(Decimal("0.48"), 30)),
                                            asks=(Level(Decimal("0.52"), Decimal(25)), Level(Decimal("0.53"), 60))))


def test_a_price_change_carries_each_level_and_the_best_prices_after_it():
    message = {"event_type": "price_change", "market": "0x" + "a" * 64, "timestamp": "1757908892351",
               "price_changes": [
                   {"asset_id": TOKEN_A, "price": "0.5", "size": "200", "side": "BUY", "hash": "5662",
                    "best_bid": "0.5", "best_ask": "1"},
                   {"asset_id": TOKEN_B, "price": "0.5", "size": "0", "side": "SELL", "hash": "1895",
                    "best_bid": "0", "best_ask": "0.51"}]}
    assert parse_channel_message(message) == [
        LevelChanged(TOKEN_A, True, Decimal("0.5"), Decimal(200), (Decimal("0.5"), None)),
        LevelChanged(TOKEN_B, False, Decimal("0.5"), Decimal(0), (None, Decimal("0.51")))]


def test_trades_and_unknown_events_change_no_book_and_a_tick_change_retakes_it():
    assert parse_channel_message([{"event_type": "last_trade_price", "asset_id": TOKEN_A, "price": "0.456"},
                                  {"event_type": "settlement_preview", "sequence": 2},
                                  {"event_type": "tick_size_change", "asset_id": TOKEN_B, "old_tick_size": "0.01",
                                   "new_tick_size": "0.001"}]) == [TickChanged(TOKEN_B)]


@pytest.mark.parametrize("change", [{"side": "HOLD"}, {"price": "1.2"}, {"size": "-3"}, {"asset_id": "0xabc"}])
def test_a_change_that_cannot_be_read_is_refused(change):
    entry = {"asset_id": TOKEN_A, "price": "0.5", "size": "1", "side": "BUY"} | change
    with pytest.raises(DataError):
        parse_channel_message({"event_type": "price_change", "price_changes": [entry]})


# -- the client against the loopback channel -----------------------------------------------------
def test_the_books_are_the_venues_and_follow_its_changes(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    kept = channel.book(market.up_token)
    assert kept.best_ask == market.asks[market.up_token][0][0] and not kept.resyncing
    assert [str(lv.price) for lv in kept.bids] == [lv["price"] for lv in fake.clob_book(market, market.up_token)["bids"][::-1]]
    best_price = market.asks[market.up_token][0][0]
    with fake.lock:  # liquidity taken at the best ask: the next price_change says so
        market.asks[market.up_token][0] = (best_price, Decimal(0))
    until(lambda: channel.book(market.up_token).best_ask > best_price)
    assert not channel.book(market.up_token).resyncing


def test_a_book_is_as_current_as_the_channels_last_message(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    time.sleep(0.2)  # 10 s of fake time, a change every 2 s
    assert 0 <= clock.now_ms() - channel.book(market.up_token).as_of_ms <= 2_500
    fake.channel.silence(20)  # PONGs go on; market data does not
    time.sleep(0.2)
    kept = channel.book(market.up_token)
    assert clock.now_ms() - kept.as_of_ms > BOUND_MS and not kept.resyncing


def test_ping_is_sent_every_10_s_of_the_clock_and_answered(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    until(lambda: len(fake.channel.pings) >= 5)
    gaps = sorted(b - a for a, b in zip(fake.channel.pings, fake.channel.pings[1:]))
    assert 9_800 <= gaps[len(gaps) // 2] <= 10_800, gaps  # as the fake heard them: a busy machine adds jitter
    assert channel.pongs >= 3


def test_a_dropped_connection_resyncs_every_book_and_the_reconnect_reads_them_from_rest(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    fake.channel.snapshots = False  # from now on only REST can give a book whole
    books_before, resyncs_before = fake.clob.count("GET", r"^/book$"), channel.resyncs
    fake.channel.drop(down_secs=3)
    assert until(lambda: channel.book(market.up_token).resyncing)
    until(lambda: channel.connections == 2 and not channel.book(market.up_token).resyncing
          and not channel.book(market.down_token).resyncing)
    assert channel.resyncs - resyncs_before == 2 and fake.clob.count("GET", r"^/book$") - books_before == 2
    assert fake.channel.requests[-1]["type"] == "market"  # subscribed again on the new connection


def test_a_channel_that_answers_nothing_not_even_pong_is_opened_again(channel_world):
    fake, clock, _, market = channel_world
    channel = MarketChannel(fake.channel.url, clock, stale_secs=25)
    try:
        follow(channel, market)
        fake.channel.silence(120, pong=False)
        until(lambda: channel.connections >= 2)  # the new connection is not the silent one: snapshots come again
        until(lambda: not channel.book(market.up_token).resyncing)
    finally:
        channel.close()


def test_a_change_that_does_not_add_up_resyncs_its_book_from_rest(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    resyncs = channel.resyncs
    fake.channel.skew(market.down_token)  # the venue's stated best bid is not the book's: a message was missed
    until(lambda: channel.resyncs == resyncs + 1)
    kept = channel.book(market.down_token)
    assert not kept.resyncing and kept.best_bid == market.bids[market.down_token][0][0]  # taken whole again


def test_an_event_that_cannot_be_read_resyncs_the_books_it_names_and_plain_words_change_none(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    fake.channel.send_raw("INVALID OPERATION")
    until(lambda: channel.bad_messages == 1)
    assert not channel.book(market.up_token).resyncing
    fake.clob.fault("GET", r"^/book$", "status", status=503, count=10**6)  # no REST resync to hide it
    fake.channel.send_raw(json.dumps({"event_type": "price_change", "price_changes": [
        {"asset_id": market.up_token, "price": "7", "size": "1", "side": "BUY"}]}))
    until(lambda: channel.book(market.up_token).resyncing)
    assert not channel.book(market.down_token).resyncing
    fake.channel.send_raw(json.dumps({"event_type": "book", "bids": "all of them"}))  # names no book: any may be off
    until(lambda: channel.book(market.down_token).resyncing)


def test_following_the_next_market_unsubscribes_and_drops_the_old(channel_world):
    fake, clock, channel, market = channel_world
    follow(channel, market)
    nxt = fake.market(slug(START_MS + 300_000, 5))
    follow(channel, nxt)
    assert channel.book(market.up_token) is None and channel.book(market.down_token) is None
    until(lambda: {r["operation"] for r in fake.channel.requests if "operation" in r} >= {"subscribe", "unsubscribe"})
    ops = {r["operation"]: set(r["assets_ids"]) for r in fake.channel.requests if "operation" in r}
    assert ops == {"subscribe": {nxt.up_token, nxt.down_token}, "unsubscribe": {market.up_token, market.down_token}}


# -- the public side: the channel's book when current, else REST, else the channel's as it is -------
@dataclasses.dataclass
class StubChannel:
    kept: Book | None
    followed: tuple[str, ...] = ()

    def follow(self, tokens):
        self.followed = tokens

    def book(self, token):
        return self.kept

    def close(self):
        pass


@pytest.fixture
def public_world():
    t = FakeTime(START_MS + 5_000, speed=1.0)
    fake = FakePolymarket(CANDLES, t).start()
    # one attempt, and no fault here waits for the timeout: a long one, so a busy machine's stall is not a failure
    http = [Http(u, name=n, timeout_secs=5, backoff=Backoff(1)) for n, u in (("gamma", fake.gamma.url),
                                                                              ("clob", fake.clob.url))]
    channel = StubChannel(None)
    public = PolymarketPublic(*http, 5, Decimal("0.072"), Decimal(1), now_ms=t.now_ms, channel=channel,
                              book_max_age_ms=BOUND_MS)
    yield fake, t, public, channel
    public.close()
    fake.stop()


def test_warming_a_market_follows_its_two_books(public_world):
    fake, t, public, channel = public_world
    info = public.warm(START_MS)
    assert channel.followed == (info.up_token, info.down_token)


def test_a_current_channel_book_is_used_without_asking_rest(public_world):
    fake, t, public, channel = public_world
    channel.kept = dataclasses.replace(book("0.45")[0], as_of_ms=t.now_ms() - 1_000)
    market = public.market(START_MS)
    assert market.up_book == channel.kept and fake.clob.count("GET", r"^/book$") == 0


@pytest.mark.parametrize("kept", ["stale", "resyncing", "none"])
def test_without_a_current_channel_book_rest_answers_stamped_with_its_arrival(public_world, kept):
    fake, t, public, channel = public_world
    channel.kept = None if kept == "none" else dataclasses.replace(
        book("0.45")[0], as_of_ms=t.now_ms() - (BOUND_MS + 1 if kept == "stale" else 0), resyncing=kept == "resyncing")
    before = t.now_ms()
    market = public.market(START_MS)
    assert market.up_book.best_ask == fake.market(slug(START_MS, 5)).asks[market.up_token][0][0]
    assert before <= market.up_book.as_of_ms <= t.now_ms() and not market.up_book.resyncing


def test_when_rest_fails_too_the_channels_last_book_goes_to_the_decision_as_it_is(public_world):
    fake, t, public, channel = public_world
    fake.clob.fault("GET", r"^/book$", "status", status=503, count=10)
    channel.kept = dataclasses.replace(book("0.45")[0], as_of_ms=t.now_ms() - 60_000)
    assert public.market(START_MS).up_book == channel.kept
    channel.kept = None
    with pytest.raises(Exception, match="503"):
        public.market(START_MS)


# -- FETCH decides, replay re-checks -----------------------------------------------------------------
def aged(start_ms: int) -> tuple[Book, Book]:
    """Interval 1's books are 1 s old at its start, interval 2's Down book 6 s, interval 3's Up book resyncing."""
    k = (start_ms - START) // 300_000 + 1
    up, down = book("0.50")
    up = dataclasses.replace(up, as_of_ms=start_ms - 1_000, resyncing=k == 3)
    down = dataclasses.replace(down, as_of_ms=start_ms - (6_000 if k == 2 else 1_000))
    return up, down


def test_a_stale_or_resyncing_book_skips_with_its_reason_and_replay_rechecks_it(tmp_path):
    final = run(tmp_path, FakeFeed(lambda k: "UP"), FakeVenue(books=aged), Config(intervals=3))
    assert [(r.outcome, r.reason) for r in final.trades][1:] == [("SKIPPED", "book_stale"),
                                                                 ("SKIPPED", "book_resyncing")]
    assert final.trades[0].outcome in ("WIN", "LOSS")
    recs = records(tmp_path)
    assert engine.replay_check(recs) == len(recs) - 1
    stale = next(r for r in recs if r["trigger"] == "skip" and r["data"]["reason"] == "book_stale")
    assert stale["data"]["detail"] == f"the Down book was last current 6000 ms before the decision (> {BOUND_MS} ms)"
    stale["inputs"]["market"]["down_book"]["as_of_ms"] = parse_iso(stale["ts"]) - 1_000  # forged fresh
    rewrite(tmp_path / "journal.jsonl", recs)
    with pytest.raises(ReplayMismatch, match=r"\(FETCH\)"):
        engine.load(tmp_path / "journal.jsonl")


# -- whole --paper sessions with GET /book down ---------------------------------------------------
def fetch_records(state):
    return [r for r in read_jsonl(state / "journal.jsonl") if r["src"] == "FETCH"]


def book_ages(record) -> list[int]:
    """How long before the decision (the record's time) each book was last known current."""
    market = record["inputs"]["market"]
    return [parse_iso(record["ts"]) - market[side]["as_of_ms"] for side in ("up_book", "down_book")]


def test_with_rest_books_down_all_session_every_decision_uses_a_channel_book_within_its_bound(tmp_path):
    w = world()
    w.polymarket.clob.fault("GET", r"^/book$", "status", status=503, count=10**9)
    state = tmp_path / "state"
    try:
        code, out, err = w.run(*w.start_args("paper", state), cwd=tmp_path)
    finally:
        w.stop()
    assert code in (0, 3), err
    fetched = [r for r in fetch_records(state) if r["trigger"] == "fetched"]
    assert len(fetched) >= 12, [r["data"].get("reason") for r in fetch_records(state)]  # as test_paper: a busy
    # machine can make a decision late, and a channel starved of time goes stale: skipped, never traded
    assert all(age <= BOUND_MS for r in fetched for age in book_ages(r)), [book_ages(r) for r in fetched]
    assert not any(r["inputs"]["market"][side].get("resyncing") for r in fetched for side in ("up_book", "down_book"))
    assert {s for _, p, s in w.polymarket.clob.log if p == "/book"} <= {503}  # REST gave no book all session
    gaps = [b - a for a, b in zip(w.polymarket.channel.pings, w.polymarket.channel.pings[1:])]
    assert gaps and sorted(gaps)[len(gaps) // 2] in range(9_500, 10_600)  # PING every 10 s of the clock
    recs = journal.read(state / "journal.jsonl").records
    assert engine.replay_check(recs) == len(recs) - 1  # every decision re-checked from its journaled books


def test_a_silent_or_dropped_channel_skips_the_interval_with_its_reason(tmp_path):
    w = world()
    w.polymarket.clob.fault("GET", r"^/book$", "status", status=503, count=10**9)
    w.at(3, -20, lambda: w.polymarket.channel.silence(100))  # no market data across interval 3's decision
    w.at(5, -5, lambda: w.polymarket.channel.drop(down_secs=60))  # no connection across interval 5's
    state = tmp_path / "state"
    try:
        code, out, err = w.run(*w.start_args("paper", state, "--intervals", "6"), cwd=tmp_path)
    finally:
        w.stop()
    assert code in (0, 3), err
    by_interval = {r["interval"]: r for r in fetch_records(state)}
    assert by_interval[3]["data"]["reason"] == "book_stale", by_interval[3]["data"]
    assert by_interval[5]["data"]["reason"] == "book_resyncing", by_interval[5]["data"]
    assert all(by_interval[k]["trigger"] == "fetched" for k in (2, 4, 6))  # before and after: the channel's books
    rows = read_jsonl(state / "trades.jsonl")
    assert [rows[k - 1]["reason"] for k in (3, 5)] == ["book_stale", "book_resyncing"]
    assert w.polymarket.channel.connections >= 2  # it reconnected once the channel was back
