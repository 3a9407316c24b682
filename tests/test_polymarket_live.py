"""The real ``--live`` venue against the fake Polymarket (public + trading side) over real HTTP.

Orders are signed by the official SDK and verified by the fake with its own EIP-712 code; nothing of
fsm_bot is mocked. Time is the fake's clock, moved on without sleeping.
"""

from __future__ import annotations

import inspect
import json
import threading
from decimal import Decimal

import pytest
from eth_account import Account
from polymarket import errors as sdk

from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket import errors as venue_errors
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.adapters.polymarket.live import PolymarketVenue, PreflightFailed
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.adapters.sim import BUNDLED, load_candles
from fsm_bot.errors import BotError, FatalError, UnknownOutcome
from fsm_bot.ports import Accepted, OrderIntent, Rejected, SignedOrder, slug
from tests.servers.base import FakeTime
from tests.servers.polymarket import FakePolymarket
from tests.servers.polymarket_trading import install_trading, order_hash, recover_signer

CANDLES = load_candles(BUNDLED)
STEP_MS = 300_000
T0 = (int(CANDLES["open_time"][200]) // STEP_MS + 1) * STEP_MS
KEY = "0x" + "4c" * 32
EOA = Account.from_key(KEY).address
RELAYER_KEY = "relayer-key-0123456789"


def advance(clock: FakeTime, secs: float) -> None:
    clock.start_ms += int(secs * 1000)


def make_venue(fake, trading, clock, pauses, creds: Credentials | None = None) -> PolymarketVenue:
    urls = {**fake.urls(), **trading.urls()}
    backoff = Backoff(attempts=3, initial_secs=0.1, max_secs=1.0)
    public = PolymarketPublic(Http(urls["gamma_url"], name="gamma", timeout_secs=2, backoff=backoff, pause=pauses.append),
                              Http(urls["clob_url"], name="clob", timeout_secs=2, backoff=backoff, pause=pauses.append),
                              5, Decimal("0.07"), Decimal(1))
    creds = creds or Credentials(private_key=KEY, relayer_api_key=RELAYER_KEY, relayer_address=EOA)
    return PolymarketVenue(public, creds, clob_url=urls["clob_url"], gamma_url=urls["gamma_url"],
                           relayer_url=urls["relayer_url"], data_api_url=urls["data_api_url"], rpc_url=urls["rpc_url"],
                           timeout_secs=2, backoff=backoff, now_ms=clock.now_ms, pause=pauses.append,
                           default_fee_rate=Decimal("0.07"), relayer_poll_ms=10)


@pytest.fixture
def world(request):
    clock = FakeTime(T0 + 5_000)
    fake = FakePolymarket(CANDLES, clock).start()
    options = getattr(request, "param", {})
    trading = install_trading(fake, clock, **options)
    pauses: list[float] = []
    venue = make_venue(fake, trading, clock, pauses)
    yield fake, trading, clock, venue, pauses
    venue.close()
    stopping = threading.Thread(target=trading.stop)
    stopping.start()
    fake.stop()
    stopping.join()


def intent_for(venue: PolymarketVenue, side: str = "UP", amount: str = "5", limit: str = "0.60",
               start_ms: int = T0) -> OrderIntent:
    market = venue.market(start_ms)
    return OrderIntent(session="s", interval=1, slug=market.slug, side=side, token_id=market.token(side),
                       amount_usd=Decimal(amount), limit_price=Decimal(limit))


def order_posts(fake) -> int:
    return fake.clob.count("POST", r"^/order$")


# -- prepare ------------------------------------------------------------------------------------------------
def test_prepared_order_verifies_in_the_fake_and_its_key_is_the_venues_hash(world):
    fake, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    wire = order.payload["order"]
    assert order.key == order_hash(wire)  # the fake's own EIP-712 code agrees with orders.order_hash
    assert recover_signer(wire) == EOA
    assert wire["maker"] == wire["signer"] == str(venue.sdk().wallet) != EOA  # the deposit wallet
    assert wire["signatureType"] == 3 and order.payload["orderType"] == "FOK"
    assert (int(wire["makerAmount"]), int(wire["takerAmount"])) == (5_000_000, 8_333_300)
    assert order_posts(fake) == 0  # prepare signs; it posts nothing


def test_prepare_snaps_the_worst_price_to_the_tick(world):
    _, _, _, venue, _ = world
    wire = venue.prepare(intent_for(venue, limit="0.609")).payload["order"]
    assert Decimal(wire["makerAmount"]) / Decimal(wire["takerAmount"]) < Decimal("0.6001")


def test_tampered_payload_is_refused_by_the_fake(world):
    fake, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    forged = json.loads(json.dumps(order.payload))
    forged["order"]["makerAmount"] = "9000000"  # more money, same signature
    with pytest.raises(FatalError) as caught:
        venue.submit(SignedOrder(key=order.key, intent=order.intent, payload=forged))
    assert caught.value.code == "invalid_signature"
    assert trading.orders == [] and trading.refused[-1][1] == "invalid signature"


# -- submit ---------------------------------------------------------------------------------------------------
def test_submit_fills_fok_and_the_fake_records_exactly_one_order(world):
    fake, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    result = venue.submit(order)
    assert isinstance(result, Accepted) and result.order_id == order.key
    [placed] = trading.orders
    assert placed["hash"] == order.key and placed["slug"] == slug(T0, 5)
    assert result.fill.spent_usd == placed["spent_usd"] == Decimal(5)
    assert result.fill.shares == placed["shares"] and result.fill.fee_usd == placed["fee_usd"]
    assert Decimal(0) < result.fill.avg_price <= Decimal("0.60")


def test_lost_response_is_unknown_then_lookup_finds_it_and_a_resubmit_is_a_duplicate(world):
    fake, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    fake.clob.fault("POST", r"^/order$", "after")  # the venue takes it; the answer is lost
    with pytest.raises(UnknownOutcome):
        venue.submit(order)
    found = venue.lookup(order)
    assert isinstance(found, Accepted) and found.fill.shares == trading.orders[0]["shares"] and not found.settled
    again = venue.submit(order)  # the same bytes: the venue refuses a second copy, which proves it holds the order
    assert again == Rejected(order.key, "duplicate")
    assert len(trading.orders) == 1 and "DUPLICATED" in trading.refused[-1][1]


def test_lookup_of_a_never_posted_key_is_none_then_submit_works(world):
    _, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    assert venue.lookup(order) is None
    assert isinstance(venue.submit(order), Accepted) and len(trading.orders) == 1


def test_fok_that_cannot_fill_is_rejected_with_a_reason(world):
    _, trading, _, venue, _ = world
    best = venue.market(T0).up_book.best_ask
    result = venue.submit(venue.prepare(intent_for(venue, limit=str(best - Decimal("0.05")))))
    assert result == Rejected(key=result.key, reason="fok_not_filled") and trading.orders == []


@pytest.mark.parametrize("world", [{"balance_usd": Decimal("3")}], indirect=True)
def test_insufficient_balance_is_rejected(world):
    _, trading, _, venue, _ = world
    result = venue.submit(venue.prepare(intent_for(venue)))
    assert isinstance(result, Rejected) and result.reason == "insufficient_balance"


def test_425_on_submit_is_a_refusal_and_the_same_order_can_go_later(world):
    fake, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    fake.clob.fault("POST", r"^/order$", "status", status=425)
    assert venue.submit(order) == Rejected(key=order.key, reason="engine_restarting")
    assert trading.orders == [] and order_posts(fake) == 1  # posted once, never retried or re-signed
    assert isinstance(venue.submit(order), Accepted) and len(trading.orders) == 1


def test_5xx_on_submit_is_an_unknown_outcome(world):
    fake, _, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    fake.clob.fault("POST", r"^/order$", "status", status=500)
    with pytest.raises(UnknownOutcome):
        venue.submit(order)
    assert order_posts(fake) == 1


def test_auth_failure_on_submit_halts(world):
    _, trading, _, venue, _ = world
    order = venue.prepare(intent_for(venue))
    trading.account(EOA).passphrase = "rotated-elsewhere"
    with pytest.raises(FatalError) as caught:
        venue.submit(order)
    assert caught.value.code == "unauthorized"


def test_closed_market_is_rejected(world):
    _, _, clock, venue, _ = world
    order = venue.prepare(intent_for(venue))
    advance(clock, 300)
    assert venue.submit(order).reason == "market_closed"


# -- reads ------------------------------------------------------------------------------------------------------
def test_balance_reads_collateral_and_retries_5xx_and_429(world):
    fake, _, _, venue, pauses = world
    venue.sdk()
    fake.clob.fault("GET", r"^/balance-allowance$", "status", status=503)
    fake.clob.fault("GET", r"^/balance-allowance$", "status", status=429, headers={"Retry-After": "2"})
    assert venue.balance_usd() == Decimal(1000)
    assert pauses[-2:] == [0.1, 2.0]


def test_balance_falls_by_stake_and_fee(world):
    _, _, _, venue, _ = world
    result = venue.submit(venue.prepare(intent_for(venue)))
    assert venue.balance_usd() == Decimal(1000) - result.fill.spent_usd - result.fill.fee_usd


# -- redeem -----------------------------------------------------------------------------------------------------
def test_redeem_of_a_won_market_pays_the_shares_once(world):
    fake, trading, clock, venue, _ = world
    won = fake.market(slug(T0, 5)).outcome
    result = venue.submit(venue.prepare(intent_for(venue, side=won)))
    assert venue.redeem(slug(T0, 5)) is None  # not resolved yet
    advance(clock, 300 + 61)
    before = venue.balance_usd()
    receipt = venue.redeem(slug(T0, 5))
    assert receipt == trading.redeems[0]["hash"] and receipt.startswith("0x")
    assert venue.balance_usd() == before + result.fill.shares
    assert venue.redeem(slug(T0, 5)) is None and len(trading.redeems) == 1


def test_redeem_of_a_lost_market_is_none(world):
    fake, trading, clock, venue, _ = world
    lost = "DOWN" if fake.market(slug(T0, 5)).outcome == "UP" else "UP"
    venue.submit(venue.prepare(intent_for(venue, side=lost)))
    advance(clock, 300 + 61)
    assert venue.redeem(slug(T0, 5)) is None and trading.redeems == []


# -- preflight --------------------------------------------------------------------------------------------------
def test_preflight_passes_with_notes(world):
    _, _, _, venue, _ = world
    notes = venue.preflight(T0)
    assert "collateral 1000 pUSD" in notes[0] and "DEPOSIT_WALLET" in notes[0]


@pytest.mark.parametrize("world", [{"balance_usd": Decimal(0)}], indirect=True)
def test_preflight_refuses_an_empty_wallet(world):
    _, _, _, venue, _ = world
    with pytest.raises(PreflightFailed, match="holds 0 pUSD"):
        venue.preflight(T0)


@pytest.mark.parametrize("world", [{"allowance": False}], indirect=True)
def test_preflight_refuses_a_wallet_without_allowance(world):
    _, _, _, venue, _ = world
    with pytest.raises(PreflightFailed, match="no pUSD allowance for the exchange"):
        venue.preflight(T0)


def test_preflight_refuses_a_missing_next_market(world):
    _, _, _, venue, _ = world
    with pytest.raises(PreflightFailed, match="next market btc-updown-5m-.* is not available"):
        venue.preflight(int(CANDLES["open_time"][-1]) + 10 * STEP_MS)


def test_preflight_refuses_bad_credentials(world):
    fake, trading, clock, _, pauses = world
    trading.accept_unknown_signers = False
    venue = make_venue(fake, trading, clock, pauses, Credentials(private_key="0x" + "5d" * 32))
    with pytest.raises(PreflightFailed, match="credentials were refused"):
        venue.preflight(T0)
    venue.close()


def test_preflight_refuses_a_signature_type_that_does_not_fit_the_wallet(world):
    fake, trading, clock, _, pauses = world
    venue = make_venue(fake, trading, clock, pauses, Credentials(private_key=KEY, signature_type=1))
    with pytest.raises(PreflightFailed, match="signature type 3"):
        venue.preflight(T0)
    venue.close()


def test_preflight_refuses_an_unreachable_clob(world):
    fake, trading, clock, _, pauses = world
    fake.clob.fault("GET", r"^/ok$", "status", status=503, count=5)
    venue = make_venue(fake, trading, clock, pauses)
    with pytest.raises(PreflightFailed, match="CLOB at .* is not reachable"):
        venue.preflight(T0)
    venue.close()


# -- secrets and the error table ------------------------------------------------------------------------------
def test_no_secret_reaches_exception_text_payloads_or_reprs(world):
    fake, trading, clock, _, pauses = world
    given = Credentials(private_key=KEY, api_key="not-a-key", api_secret="c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
                        api_passphrase="pass-phrase-secret", relayer_api_key=RELAYER_KEY, relayer_address=EOA)
    venue = make_venue(fake, trading, clock, pauses, given)
    texts = [repr(given), str(given), repr(venue)]
    order = venue.prepare(intent_for(venue))  # the given API key is refused; the SDK derives the real one
    texts.append(json.dumps(order.payload))
    trading.account(EOA).passphrase = "rotated"
    with pytest.raises(BotError) as caught:  # a post refused for its key is never posted again with another
        venue.submit(order)
    texts += [str(caught.value), repr(caught.value)]
    assert venue.balance_usd() > 0 and venue.lookup(order) is None  # a read derives the key again, once, and asks again
    fake.clob.fault("GET", r"^/balance-allowance$", "status", status=401, count=2)
    with pytest.raises(BotError) as caught:  # refused again after the new key: fatal
        venue.balance_usd(fresh=True)  # (a plain read is served from the balance read above)
    texts += [str(caught.value), repr(caught.value)]
    derived = venue.sdk().credentials
    for secret in (*given.secrets, KEY.removeprefix("0x"), derived.secret, "rotated"):
        assert all(secret not in text for text in texts), secret
    assert derived.key == order.payload["owner"]  # the API key id travels, as the wire format says
    venue.close()


def sdk_exception_classes() -> list[type[BaseException]]:
    return [c for _, c in inspect.getmembers(sdk, inspect.isclass) if issubclass(c, sdk.PolymarketError)]


def sample(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, sdk.OrderHeartbeatMismatchError):
        return cls("hb")
    if issubclass(cls, sdk.RequestRejectedError):
        return cls("nope", status=400)
    if cls is sdk.ConnectionLostError:
        return cls("gone", code=1006, reason="")
    if cls is sdk.PerpsCancelRetryError:
        return cls("retry", results=(), pending_indexes=())
    return cls("boom")


@pytest.mark.parametrize("cls", sdk_exception_classes(), ids=lambda c: c.__name__)
def test_every_sdk_exception_is_mapped(cls):
    assert cls in venue_errors.SDK_KINDS, f"{cls.__name__} has no fsm_bot kind in errors.SDK_KINDS"
    mapped = venue_errors.from_sdk(sample(cls), "test", secrets=("boom",))
    assert isinstance(mapped, venue_errors.SDK_KINDS[cls] if not issubclass(cls, sdk.RequestRejectedError) else BotError)
    assert "boom" not in str(mapped)


@pytest.mark.parametrize("status,kind", [(401, FatalError), (403, FatalError), (425, BotError), (500, BotError)])
def test_sdk_rejections_map_by_status(status, kind):
    mapped = venue_errors.from_sdk(sdk.RequestRejectedError("x", status=status), "read")
    assert isinstance(mapped, kind)
    assert (mapped.code == "engine_restarting") == (status == 425)


def test_warming_before_the_interval_leaves_only_the_books_for_the_decision(world):
    fake, trading, clock, venue, pauses = world
    venue.preflight(T0)
    venue.warm(T0 + STEP_MS)
    assert fake.clob.count("GET", r"^/markets-by-token/") >= 1  # the order metadata, ahead of time
    seen = len(fake.clob.log)
    venue.prepare(intent_for(venue, start_ms=T0 + STEP_MS))  # the decision: books, then the signing
    decision_paths = [path for _, path, _ in fake.clob.log[seen:]]
    assert "/book" in decision_paths
    assert not [p for p in decision_paths if p.startswith(("/markets-by-token/", "/clob-markets/"))]


def test_without_warming_the_signing_fetches_the_metadata_itself(world):
    fake, trading, clock, venue, pauses = world
    venue.preflight(T0)
    seen = len(fake.clob.log)
    venue.prepare(intent_for(venue, start_ms=T0 + STEP_MS))
    assert any(path.startswith("/markets-by-token/") for _, path, _ in fake.clob.log[seen:])


def test_the_balance_is_read_once_and_again_after_a_fill(world):
    """The collateral is read from the CLOB once and kept (the decision does not wait for it), read again
    before the next stake after a fill, and at once when fresh."""
    fake, trading, clock, _, pauses = world
    venue = make_venue(fake, trading, clock, pauses)
    def reads() -> int:
        return fake.clob.count("GET", r"^/balance-allowance$")

    first = venue.balance_usd()
    before = reads()
    assert venue.balance_usd() == first and reads() == before  # kept
    order = venue.prepare(intent_for(venue))
    assert isinstance(venue.submit(order), Accepted)
    venue.warm(T0 + STEP_MS)  # before the next interval: the spent balance is read again
    assert reads() == before + 1 and venue.balance_usd() < first
    venue.balance_usd(fresh=True)
    assert reads() == before + 2
    venue.close()
