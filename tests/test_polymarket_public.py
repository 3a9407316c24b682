"""The real Polymarket public adapter and the paper venue, over real HTTP against ``FakePolymarket``."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest
import requests

from fsm_bot import matching
from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket.markets import parse_gamma_market
from fsm_bot.adapters.polymarket.paper import PaperVenue
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.adapters.sim import BUNDLED, load_candles
from fsm_bot.errors import DataError, TransientError
from fsm_bot.money import round_fee, round_shares
from fsm_bot.ports import Accepted, Level, OrderIntent, Rejected, slug
from tests.servers.base import FakeTime
from tests.servers.polymarket import FakePolymarket

CANDLES = load_candles(BUNDLED)
STEP_MS = 300_000
T0 = (int(CANDLES["open_time"][200]) // STEP_MS + 1) * STEP_MS  # a grid start well inside the candles
DEFAULT_FEE = Decimal("0.07")  # distinct from the fake's 0.072, so a test sees which one was used


def reference(start_ms: int) -> str:
    """UP if the close of the window's last minute >= the open of its first (read straight from the candles)."""
    times = CANDLES["open_time"].to_list()
    first, last = times.index(start_ms), times.index(start_ms + STEP_MS - 60_000)
    return "UP" if CANDLES["close"][last] >= CANDLES["open"][first] else "DOWN"


def advance(clock: FakeTime, secs: float) -> None:
    """Move the fake clock on without sleeping."""
    clock.start_ms += int(secs * 1000)


@pytest.fixture
def world():
    clock = FakeTime(T0 + 5_000)
    overrides = {slug(T0 + STEP_MS, 5): "DOWN" if reference(T0 + STEP_MS) == "UP" else "UP"}
    fake = FakePolymarket(CANDLES, clock, resolution_delay_secs=60, overrides=overrides).start()
    pauses: list[float] = []
    backoff = Backoff(attempts=3, initial_secs=0.1, max_secs=1.0)
    urls = fake.urls()
    # no fault here makes the client wait for its timeout, so it is long: a busy machine's stall is not a timeout
    gamma, clob = (Http(urls[f"{name}_url"], name=name, timeout_secs=5, backoff=backoff, pause=pauses.append)
                   for name in ("gamma", "clob"))
    public = PolymarketPublic(gamma, clob, 5, DEFAULT_FEE, Decimal(1))
    yield fake, clock, public, pauses
    public.close()
    fake.stop()


# -- discovery ------------------------------------------------------------------------------------
def test_market_is_the_slug_asked_for_with_tokens_mapped_by_label(world):
    fake, _, public, _ = world
    fake.make_bad(slug(T0, 5), "down_first")  # Gamma lists Down first: the label, not the position, decides
    market = public.market(T0)
    fm = fake.market(slug(T0, 5))
    assert (market.slug, market.start_ms, market.end_ms) == (slug(T0, 5), T0, T0 + STEP_MS)
    assert (market.up_token, market.down_token, market.condition_id) == (fm.up_token, fm.down_token, fm.condition_id)
    assert market.accepting_orders and market.tick == Decimal("0.01") and market.min_order_usd == 1
    assert json.loads(fake.gamma_market(fm)["outcomes"]) == ["Down", "Up"]


def test_best_ask_is_the_last_element_on_the_wire(world):
    fake, _, public, _ = world
    market = public.market(T0)
    wire = requests.get(f"{fake.clob.url}/book", params={"token_id": market.up_token}, timeout=2).json()
    assert market.up_book.best_ask == Decimal(wire["asks"][-1]["price"]) < Decimal(wire["asks"][0]["price"])
    assert market.up_book.best_bid == Decimal(wire["bids"][-1]["price"]) > Decimal(wire["bids"][0]["price"])
    fm = fake.market(market.slug)
    assert [(lv.price, lv.size) for lv in market.down_book.asks] == fm.asks[fm.down_token]


def test_books_look_like_real_5m_books(world):
    fake, _, public, _ = world
    market = public.market(T0)
    total = market.up_book.best_ask + market.down_book.best_ask
    assert Decimal("1.01") <= total <= Decimal("1.03")
    assert market.up_book.best_ask - market.up_book.best_bid <= Decimal("0.03")
    assert Decimal(100) < market.up_book.ask_depth_usd() < Decimal(10_000)


def test_books_are_read_fresh_on_every_call(world):
    fake, _, public, _ = world
    public.market(T0)
    fm = fake.market(slug(T0, 5))
    with fake.lock:
        fm.asks[fm.up_token] = [(Decimal("0.55"), Decimal(40))]
    assert public.market(T0).up_book.asks == (Level(Decimal("0.55"), Decimal(40)),)
    assert fake.clob.count("GET", r"^/book$") == 4


def test_fee_rate_comes_from_the_fee_schedule(world):
    fake, _, public, _ = world
    fake.market(slug(T0, 5)).fee_rate = Decimal("0.05")
    assert public.market(T0).fee_rate == Decimal("0.05")
    assert fake.clob.count("GET", r"^/clob-markets/") == 0


def test_fee_rate_falls_back_to_the_clob_market_info(world):
    fake, _, public, _ = world
    fm = fake.market(slug(T0, 5))
    fm.gamma_fee, fm.fee_rate = False, Decimal("0.06")
    assert public.market(T0).fee_rate == Decimal("0.06")
    assert public.market(T0).fee_rate == Decimal("0.06")
    assert fake.clob.count("GET", r"^/clob-markets/") == 1  # worked out once per market


def test_fee_rate_falls_back_to_the_default_when_no_one_states_it(world):
    fake, _, public, _ = world
    fm = fake.market(slug(T0, 5))
    fm.gamma_fee = fm.clob_fee = False
    assert public.market(T0).fee_rate == DEFAULT_FEE


def test_an_unknown_market_is_not_found(world):
    _, _, public, _ = world
    with pytest.raises(DataError) as exc:
        public.market(int(CANDLES["open_time"][-1]) + 10 * STEP_MS)
    assert exc.value.code == "market_not_found"


@pytest.mark.parametrize("kind, code", [
    ("closed", "market_closed"), ("wrong_slug", "market_mismatch"), ("wrong_interval", "market_mismatch"),
    ("wrong_labels", "market_mismatch"), ("duplicate_tokens", "market_mismatch"), ("missing_tokens", "bad_market"),
    ("bad_odds", "bad_market"), ("bad_book", "bad_book"), ("crossed_book", "bad_book")])
def test_a_bad_market_is_a_data_error_with_its_reason(world, kind, code):
    fake, _, public, _ = world
    fake.make_bad(slug(T0, 5), kind)
    with pytest.raises(DataError) as exc:
        public.market(T0)
    assert exc.value.code == code


def test_a_market_that_stopped_trading_is_not_accepting(world):
    fake, _, public, _ = world
    fake.make_bad(slug(T0, 5), "not_accepting")
    assert public.market(T0).accepting_orders is False


# -- resolution -----------------------------------------------------------------------------------
def test_resolution_appears_only_after_the_delay_and_matches_the_candles(world):
    fake, clock, public, _ = world
    name = slug(T0, 5)
    assert public.resolution(name) is None  # trading
    advance(clock, 300)
    assert public.resolution(name) is None  # ended, not yet resolved
    advance(clock, 60)
    assert public.resolution(name) == reference(T0)
    assert json.loads(fake.gamma_market(fake.market(name))["outcomePrices"]) in (["1", "0"], ["0", "1"])


def test_an_override_makes_the_official_resolution_disagree_with_the_candles(world):
    _, clock, public, _ = world
    advance(clock, 2 * 300 + 60)
    official = public.resolution(slug(T0 + STEP_MS, 5))
    assert official is not None and official != reference(T0 + STEP_MS)


def test_zero_prices_fall_back_to_the_clob_winner(world):
    fake, clock, public, _ = world
    name = slug(T0, 5)
    fake.make_bad(name, "zero_prices")
    advance(clock, 360)
    assert json.loads(fake.gamma_market(fake.market(name))["outcomePrices"]) == ["0", "0"]
    assert public.resolution(name) == reference(T0)
    assert fake.clob.count("GET", r"^/markets/0x") == 1


# -- transient failures ---------------------------------------------------------------------------
def test_a_burst_of_5xx_on_gamma_is_retried(world):
    fake, _, public, pauses = world
    fake.gamma.fault("GET", r"^/markets$", "status", count=2, status=503)
    assert public.market(T0).slug == slug(T0, 5)
    assert fake.gamma.count("GET", r"^/markets$") == 3 and len(pauses) == 2


def test_429_on_gamma_honours_retry_after(world):
    fake, _, public, pauses = world
    fake.gamma.fault("GET", r"^/markets$", "status", count=1, status=429, headers={"Retry-After": "3"})
    assert public.market(T0).slug == slug(T0, 5)
    assert pauses == [3.0]


def test_gamma_down_for_longer_than_the_attempts_is_transient(world):
    fake, _, public, _ = world
    fake.gamma.fault("GET", r"^/markets$", "status", count=3, status=502)
    with pytest.raises(TransientError):
        public.market(T0)


# -- the paper venue ------------------------------------------------------------------------------
@pytest.fixture
def paper(world, tmp_path):
    fake, clock, public, _ = world
    venue = PaperVenue(public, tmp_path / "venue-orders.jsonl", clock.now_ms)
    yield venue, fake, clock
    venue.ledger.close()


def intent(market, side="UP", amount="3.00", limit="0.60", interval=1) -> OrderIntent:
    return OrderIntent(session="paper-test", interval=interval, slug=market.slug, side=side,
                       token_id=market.token(side), amount_usd=Decimal(amount), limit_price=Decimal(limit))


def set_asks(fake, side, levels) -> None:
    fm = fake.market(slug(T0, 5))
    with fake.lock:
        fm.asks[fm.up_token if side == "UP" else fm.down_token] = [(Decimal(p), Decimal(s)) for p, s in levels]


def test_paper_fills_a_fok_against_the_real_book_at_the_markets_fee(paper):
    venue, fake, _ = paper
    set_asks(fake, "UP", [("0.50", "10"), ("0.51", "100")])
    fake.market(slug(T0, 5)).fee_rate = Decimal("0.05")
    market = venue.market(T0)
    result = venue.submit(venue.prepare(intent(market, amount="10.00")))
    assert isinstance(result, Accepted)
    shares = round_shares(Decimal(10) + Decimal(5) / Decimal("0.51"))  # 10 at 0.50 ($5), the rest at 0.51
    assert (result.fill.shares, result.fill.spent_usd) == (shares, Decimal("10.00"))
    fee = round_fee(Decimal(10) * Decimal("0.05") * Decimal("0.25")
                    + (shares - 10) * Decimal("0.05") * Decimal("0.51") * Decimal("0.49"))
    assert result.fill.fee_usd == fee


def test_paper_fills_against_the_book_seen_at_the_decision(paper):
    venue, fake, _ = paper
    market = venue.market(T0)
    set_asks(fake, "UP", [("0.59", "1000")])  # the book moves after the decision
    result = venue.submit(venue.prepare(intent(market)))
    expected = matching.market_buy(market.up_book.asks, Decimal(3), Decimal("0.60"), market.fee_rate)
    assert isinstance(result, Accepted) and result.fill == expected


def test_paper_refuses_a_fok_the_book_cannot_fill(paper):
    venue, fake, _ = paper
    market = venue.market(T0)
    result = venue.submit(venue.prepare(intent(market, limit=str(market.up_book.best_ask - Decimal("0.01")))))
    assert result == Rejected(key=result.key, reason="fok_not_filled")
    assert venue.ledger.path.read_bytes() == b""


@pytest.mark.parametrize("change, reason", [("small", "below_min_order"), ("token", "unknown_token"),
                                            ("late", "market_closed")])
def test_paper_refuses_what_polymarket_would(paper, change, reason):
    venue, _, clock = paper
    market = venue.market(T0)
    order = intent(market, amount="0.99" if change == "small" else "3.00")
    if change == "token":
        order = OrderIntent(**{**order.__dict__, "token_id": "123"})
    if change == "late":
        advance(clock, 300)
    assert venue.submit(venue.prepare(order)).reason == reason


def test_paper_writes_one_ledger_line_per_accepted_order_and_refuses_a_duplicate(paper):
    venue, _, _ = paper
    market = venue.market(T0)
    first, second = venue.prepare(intent(market)), venue.prepare(intent(market, side="DOWN", interval=2))
    assert isinstance(venue.submit(first), Accepted) and isinstance(venue.submit(second), Accepted)
    assert venue.submit(first) == Rejected(key=first.key, reason="duplicate")
    lines = [json.loads(x) for x in venue.ledger.path.read_text().splitlines()]
    assert [(x["key"], x["side"], x["slug"]) for x in lines] == [(first.key, "UP", market.slug),
                                                                (second.key, "DOWN", market.slug)]


def test_paper_lookup_after_a_restart_reads_the_ledger(paper):
    venue, _, clock = paper
    order = venue.prepare(intent(venue.market(T0)))
    accepted = venue.submit(order)
    venue.ledger.close()
    again = PaperVenue(venue.public, venue.ledger.path, clock.now_ms)
    assert again.lookup(order) == accepted
    assert again.submit(order).reason == "duplicate"
    assert again.lookup(dataclasses.replace(order, key="0x" + "0" * 64)) is None
    again.ledger.close()


def test_paper_drops_a_torn_last_ledger_line(paper):
    venue, _, clock = paper
    order = venue.prepare(intent(venue.market(T0)))
    accepted = venue.submit(order)
    good = venue.ledger.path.read_bytes()
    with open(venue.ledger.path, "ab") as f:
        f.write(b'{"key":"0xtorn","slug":"btc-up')
    reopened = PaperVenue(venue.public, venue.ledger.path, clock.now_ms)
    assert reopened.lookup(order) == accepted and reopened.lookup(dataclasses.replace(order, key="0xtorn")) is None
    assert venue.ledger.path.read_bytes() == good
    reopened.ledger.close()


def test_paper_settles_with_the_real_resolution(paper):
    venue, _, clock = paper
    assert venue.resolution(slug(T0, 5)) is None
    advance(clock, 360)
    assert venue.resolution(slug(T0, 5)) == reference(T0)
    assert venue.balance_usd() is None and venue.redeem(slug(T0, 5)) is None



# -- the fake's other public endpoints ------------------------------------------------------------
def test_gamma_events_nest_the_same_market(world):
    fake, _, _, _ = world
    events = requests.get(f"{fake.gamma.url}/events", params={"slug": slug(T0, 5)}, timeout=2).json()
    info = parse_gamma_market(events[0]["markets"][0], slug(T0, 5))
    assert info.up_token == fake.market(slug(T0, 5)).up_token and len(info.up_token) == 77


def test_clob_utility_endpoints_answer_in_their_real_shapes(world):
    fake, clock, _, _ = world
    token = fake.market(slug(T0, 5)).up_token
    get = lambda path, **params: requests.get(fake.clob.url + path, params=params, timeout=2).json()  # noqa: E731
    assert get("/tick-size", token_id=token) == {"minimum_tick_size": 0.01}
    assert get("/neg-risk", token_id=token) == {"neg_risk": False}
    assert get("/time") == clock.now_ms() // 1000 and get("/ok") == "OK"
