"""The fake CLOB's trade lifecycle and faults, over real HTTP: what the live adapter is tested against.

Orders are signed by the official SDK (nothing of fsm_bot's adapter is used); reads carry the L2 HMAC
headers the fake checks. Fake time is moved on by shifting the clock's start, never by sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from eth_account import Account
from polymarket import SecureClient
from polymarket._internal.actions.orders.post import build_post_order_request
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment

from fsm_bot.adapters.sim import BUNDLED, load_candles
from tests.servers.base import FakeTime
from tests.servers.polymarket import FakePolymarket
from tests.servers.polymarket_trading import (
    BALANCE_MSG,
    UNITS,
    FakeTrading,
    install_trading,
    l2_headers,
)

CANDLES = load_candles(BUNDLED)
STEP_MS = 300_000
T0 = (int(CANDLES["open_time"][200]) // STEP_MS + 1) * STEP_MS
KEY = "0x" + "6e" * 32
EOA = Account.from_key(KEY).address


class Clob:
    """One wallet's client of the fake: SDK-signed orders posted as raw HTTP, L2-signed reads."""

    def __init__(self, fake: FakePolymarket, trading: FakeTrading, clock: FakeTime) -> None:
        self.fake, self.trading, self.clock = fake, trading, clock
        config = dataclasses.replace(PRODUCTION_CONFIG, clob_url=fake.clob.url, gamma_url=fake.gamma.url,
                                     relayer_url=trading.relayer.url, data_url=trading.data_api.url,
                                     rpc_url=trading.rpc.url)
        self.sdk = SecureClient.create(private_key=KEY, environment=create_environment(name="test", config=config))
        self.acct = trading.account(EOA)
        self.http = requests.Session()

    def close(self) -> None:
        self.sdk.close()
        self.http.close()

    def token(self, side: str = "UP", start_ms: int = T0) -> str:
        m = self.fake.market(f"btc-updown-5m-{start_ms // 1000}")
        return m.up_token if side == "UP" else m.down_token

    def order(self, side: str = "UP", amount: str = "2", start_ms: int = T0) -> dict[str, Any]:
        """The ``POST /order`` body of a signed FOK market BUY."""
        signed = self.sdk.create_market_order(token_id=self.token(side, start_ms), side="BUY", amount=amount,
                                              max_price="0.60", order_type="FOK")
        return build_post_order_request(signed, owner_api_key=self.sdk.credentials.key)[1]

    def post(self, payload: dict[str, Any], timeout: float = 5) -> requests.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return self.http.post(self.fake.clob.url + "/order", data=body, timeout=timeout,
                              headers={**l2_headers(self.acct, "POST", "/order", body),
                                       "Content-Type": "application/json"})

    def buy(self, **kw: Any) -> dict[str, Any]:
        """Post a new order that must be accepted; its reply."""
        reply = self.post(self.order(**kw))
        assert reply.status_code == 200, reply.text
        return reply.json()

    def get(self, path: str, **params: str) -> Any:
        reply = self.http.get(self.fake.clob.url + path, params=params, headers=l2_headers(self.acct, "GET", path),
                              timeout=5)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def trades(self, **params: str) -> list[dict[str, Any]]:
        return self.get("/data/trades", **params)["data"]

    def trade(self, trade_id: str) -> dict[str, Any]:
        [row] = self.trades(id=trade_id)
        return row

    def cached_usd(self) -> Decimal:
        return Decimal(self.get("/balance-allowance", asset_type="COLLATERAL")["balance"]) / UNITS

    def update(self) -> None:
        self.get("/balance-allowance/update", asset_type="COLLATERAL")

    def positions(self) -> dict[str, float]:
        rows = self.http.get(self.trading.data_api.url + "/positions", params={"user": self.acct.wallet}).json()
        return {r["asset"]: r["size"] for r in rows}

    def advance(self, secs: float) -> None:
        self.clock.start_ms += int(secs * 1000)


@pytest.fixture
def clob(request):
    clock = FakeTime(T0 + 5_000)
    fake = FakePolymarket(CANDLES, clock).start()
    trading = install_trading(fake, clock, **getattr(request, "param", {}))
    client = Clob(fake, trading, clock)
    yield client
    client.close()
    stopping = threading.Thread(target=trading.stop)
    stopping.start()
    fake.stop()
    stopping.join()


def cost(clob: Clob, index: int = 0) -> Decimal:
    placed = clob.trading.orders[index]
    return placed["spent_usd"] + placed["fee_usd"]


# -- the lifecycle --------------------------------------------------------------------------------------------
def test_a_trade_is_matched_then_mined_then_confirmed_and_money_moves_only_at_confirmed(clob):
    reply = clob.buy()
    key, [trade_id] = clob.trading.orders[0]["hash"], reply["tradeIDs"]
    assert reply["orderID"] == key and reply["status"] == "matched" and reply["transactionsHashes"] == []
    row = clob.trade(trade_id)
    assert row["status"] == "MATCHED" and row["transaction_hash"] is None and row["last_update"] == row["match_time"]
    assert clob.trading.balance_of(EOA) == 1000 and clob.positions() == {}
    assert clob.cached_usd() == 1000 - cost(clob)  # reserved by the CLOB from the match
    clob.advance(2)
    row = clob.trade(trade_id)
    assert row["status"] == "MINED" and row["transaction_hash"].startswith("0x")
    assert clob.trading.balance_of(EOA) == 1000 and clob.positions() == {}
    clob.advance(4)
    row = clob.trade(trade_id)
    assert row["status"] == "CONFIRMED" and int(row["last_update"]) == int(row["match_time"]) + 6
    shares = clob.trading.orders[0]["shares"]
    for _ in range(2):  # applied exactly once, however often it is read
        assert clob.trading.balance_of(EOA) == clob.cached_usd() == 1000 - cost(clob)
        assert clob.positions() == {clob.token(): float(shares)}
    assert clob.trading.trade_status(key) == "CONFIRMED" and clob.trading.orders[0]["fate"] == "confirmed"


def test_a_failed_trade_retries_then_fails_and_moves_no_money(clob):
    clob.trading.fate("failed")
    clob.buy()
    key = clob.trading.orders[0]["hash"]
    assert clob.trading.trade_status(key) == "MATCHED" and clob.trading.orders[0]["fate"] == "failed"
    clob.advance(2)
    assert clob.trading.trade_status(key) == "RETRYING"
    clob.advance(4)
    [row] = clob.trades(id=key)  # still listed
    assert row["status"] == "FAILED" and row["transaction_hash"] is None
    assert clob.trading.balance_of(EOA) == 1000 and clob.positions() == {}
    clob.buy()  # the fate was for one order only
    assert clob.trading.orders[1]["fate"] == "confirmed"


def test_a_ghost_stays_matched_and_moves_no_money(clob):
    clob.trading.fate("ghost")
    [trade_id] = clob.buy()["tradeIDs"]
    clob.advance(600)
    row = clob.trade(trade_id)
    assert row["status"] == "MATCHED" and row["transaction_hash"] is None and row["last_update"] == row["match_time"]
    assert clob.trading.balance_of(EOA) == 1000 and clob.positions() == {}
    assert clob.cached_usd() == 1000 - cost(clob)  # the CLOB still holds it against the wallet
    clob.update()
    assert clob.cached_usd() == 1000


# -- the cached balance ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("clob", [{"balance_usd": Decimal(3)}], indirect=True)
def test_a_failed_trades_reservation_refuses_orders_until_balance_allowance_update(clob):
    clob.trading.fate("failed")
    clob.buy()
    clob.advance(6)
    assert clob.trading.balance_of(EOA) == 3 and clob.cached_usd() == 3 - cost(clob)
    refused = clob.post(clob.order())
    assert (refused.status_code, refused.json()) == (400, {"error": BALANCE_MSG})
    clob.update()
    assert clob.trading.balance_updates == 1 and clob.cached_usd() == 3
    clob.buy()


@pytest.mark.parametrize("clob", [{"balance_usd": Decimal(3)}], indirect=True)
def test_an_update_frees_no_reservation_of_a_trade_still_settling(clob):
    clob.buy()
    clob.advance(3)
    clob.update()
    assert clob.cached_usd() == 3 - cost(clob)
    assert clob.post(clob.order()).status_code == 400


def test_without_stale_reservations_a_failed_trade_frees_its_money_when_it_fails(clob):
    clob.trading.stale_reservations = False
    clob.trading.fate("failed")
    clob.buy()
    clob.advance(5)
    assert clob.cached_usd() == 1000 - cost(clob)
    clob.advance(1)
    assert clob.cached_usd() == 1000 and clob.trading.balance_updates == 0


def test_lock_balance_refuses_orders_until_an_update(clob):
    clob.trading.lock_balance(count=2)
    for _ in range(2):
        refused = clob.post(clob.order())
        assert (refused.status_code, refused.json()["error"]) == (400, BALANCE_MSG)
    clob.buy()  # the count is spent
    clob.trading.lock_balance(count=5)
    assert clob.post(clob.order()).status_code == 400
    clob.update()  # clears the lock
    clob.buy()
    assert len(clob.trading.orders) == 2 and [m for _, m in clob.trading.refused] == [BALANCE_MSG] * 3


# -- /data/trades ----------------------------------------------------------------------------------------------
def page_through(clob: Clob, **params: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(trade ids, replies) of following ``next_cursor`` from the start to ``LTE=``."""
    ids, replies, cursor = [], [], "MA=="
    while cursor != "LTE=":
        reply = clob.get("/data/trades", **params, next_cursor=cursor)
        ids += [row["id"] for row in reply["data"]]
        replies.append(reply)
        cursor = reply["next_cursor"]
        assert len(replies) < 10
    return ids, replies


@pytest.mark.parametrize("clob", [{"page_size": 1}], indirect=True)
def test_trades_page_by_next_cursor_and_an_empty_first_page_points_at_the_real_one(clob):
    made = [clob.buy(side=side)["tradeIDs"][0] for side in ("UP", "DOWN", "UP")]
    ids, replies = page_through(clob)
    assert ids == made and [r["next_cursor"] for r in replies] == ["MQ==", "Mg==", "LTE="]
    assert all(r["limit"] == 1 and r["count"] == 1 for r in replies)
    assert clob.get("/data/trades")["next_cursor"] == "MQ=="  # no cursor is the first page
    clob.trading.empty_pages()
    ids, replies = page_through(clob)
    assert ids == made and replies[0] == {"data": [], "next_cursor": "MA==", "limit": 1, "count": 0}
    assert page_through(clob)[0] == made  # one hiccup only


def test_trades_filter_by_market_token_maker_and_time(clob):
    first = clob.buy()["tradeIDs"][0]
    clob.advance(10)
    second = clob.buy(side="DOWN", start_ms=T0 + STEP_MS)["tradeIDs"][0]
    m = clob.fake.market(f"btc-updown-5m-{T0 // 1000}")
    later = str(int(clob.trade(second)["match_time"]))
    assert [r["id"] for r in clob.trades(market=m.condition_id)] == [first]
    assert [r["id"] for r in clob.trades(asset_id=clob.token("DOWN", T0 + STEP_MS))] == [second]
    assert [r["id"] for r in clob.trades(after=later)] == [second]
    assert [r["id"] for r in clob.trades(before=later)] == [first]
    assert [r["id"] for r in clob.trades(maker_address=clob.acct.wallet.lower(), asset_id=m.up_token)] == [first]
    assert clob.trades(maker_address="0x" + "00" * 20) == []
    assert clob.trades(id=clob.trading.orders[1]["hash"])[0]["id"] == second  # an order hash finds its trade


def test_hidden_trades_show_only_some_seconds_after_their_match(clob):
    shown = clob.buy()["tradeIDs"][0]
    clob.trading.hide_trades(30)
    late = clob.buy(side="DOWN")["tradeIDs"][0]
    key = clob.trading.orders[1]["hash"]
    assert clob.trades(id=late) == [] and clob.trades(id=key) == [] and [r["id"] for r in clob.trades()] == [shown]
    clob.advance(29)
    assert clob.trades(id=late) == [] and clob.trading.trade_status(key) == "CONFIRMED"  # settled, still unseen
    clob.advance(1)
    assert clob.trade(late)["taker_order_id"] == key


# -- the order reply -------------------------------------------------------------------------------------------
def test_wrong_order_id_replies_another_id_and_records_the_true_hash(clob):
    clob.trading.wrong_order_id()
    reply = clob.buy()
    placed = clob.trading.orders[0]
    assert reply["orderID"] != placed["hash"] and reply["orderID"][:-1] == placed["hash"][:-1]
    assert placed["order_id_replied"] == reply["orderID"] and placed["trade_id"] == reply["tradeIDs"][0]
    assert clob.trades(id=placed["hash"])[0]["taker_order_id"] == placed["hash"]
    assert clob.trades(id=reply["orderID"]) == []
    assert clob.buy()["orderID"] == clob.trading.orders[1]["hash"]


def test_a_slow_reply_is_late_but_the_order_is_placed(clob):
    clob.fake.clob.fault("POST", r"^/order$", "slow", secs=0.3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        clob.post(clob.order(), timeout=0.1)
    assert len(clob.trading.orders) == 1  # it took effect though the answer came too late
    clob.fake.clob.fault("GET", r"^/data/trades$", "slow", secs=0.3)
    began = time.monotonic()
    assert clob.trades()[0]["taker_order_id"] == clob.trading.orders[0]["hash"]
    assert time.monotonic() - began >= 0.3
