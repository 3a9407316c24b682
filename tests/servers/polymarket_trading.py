"""The trading side of the fake Polymarket: what ``--live`` and the official SDK talk to.

``install_trading(fake, time)`` adds to ``fake.clob`` the authenticated routes (L1 API-key
create/derive verifying the ``ClobAuth`` EIP-712 signature; L2 HMAC checked on every private
route), ``POST /order``, ``/data/order/{id}``, ``/data/trades``, ``/balance-allowance`` (and
``/update``), the public ``/ok``, ``/markets-by-token`` and ``/clob-markets`` the SDK reads before it
signs; Gamma's ``/markets/keyset?condition_ids=`` (the SDK's redeem reads it); and three servers of its
own: a relayer (wallet ``/deployed``, nonce params, ``/submit`` and transaction status for the gasless
redeem), a Data API (``/positions``) and a JSON-RPC node (``eth_getBlockByNumber``).

``POST /order`` checks a V2 order the way the venue would, independently of the SDK's helpers:
the order struct's EIP-712 hash under the exchange domain ("Polymarket CTF Exchange", "2", 137,
the standard exchange) is recomputed with eth_abi/keccak; for signature type 3 (deposit wallet) the
ERC-7739 wrapping the SDK produces (ECDSA || app domain separator || contents hash || contents
type || its length) is unpacked, each part checked, and the EOA recovered from the
``TypedDataSign`` digest must own the API key and derive (Polymarket's CREATE2 rule, the one thing
taken from the SDK) the deposit wallet that is the order's maker; type 0 recovers the maker from
the order hash. Then decimals, the $1 minimum, a closed market, balance and allowance, a duplicate
hash, and a FOK/FAK fill with ``matching.market_buy`` against the fake market's asks, consumed
under ``fake.lock``. Refusals use the real shape: HTTP 400 ``{"error": "<venue message>"}``.

**Settlement, as the real venue since V2** (all on the fake clock, computed lazily by ``settle(t)``
at the start of every handler; no threads). An accepted order makes one trade, ``MATCHED``; its
*fate* decides the rest: ``confirmed`` (default) is ``MINED`` ``mine_secs`` after the match (a
``transaction_hash`` appears) and ``CONFIRMED`` at ``confirm_secs``; ``failed`` is ``RETRYING`` then
``FAILED`` (listed, nothing moves); ``ghost`` stays ``MATCHED`` forever. Only at ``CONFIRMED`` does the
wallet's on-chain collateral fall by spent + fee and the position appear (once). ``/balance-allowance``
answers the CLOB's cached balance: on-chain minus what matched trades still reserve. A trade reserves
from its match until ``CONFIRMED``; a failed or ghost trade's reservation sticks (``stale_reservations``)
until ``GET /balance-allowance/update`` clears every reservation at least ``confirm_secs`` old, like the
venue's "sum of matched orders" refusing BUYs it should take.

**Faults** (each for the next ``count`` occurrences): ``fate(kind)`` for upcoming accepted orders;
``lock_balance()`` refuses ``POST /order`` with ``BALANCE_MSG`` until ``/balance-allowance/update``;
``empty_pages()`` answers a ``/data/trades`` first page with no rows and a cursor back to it;
``hide_trades(secs)`` keeps trades matched from now on out of ``/data/trades`` for ``secs`` after their
match; ``wrong_order_id()`` replies an ``orderID`` that is not the order's hash. ``/data/trades`` filters
``id`` (a trade id or the taker order hash), ``market``, ``asset_id``, ``maker_address``, ``after`` and
``before`` and pages ``page_size`` rows by ``next_cursor`` (base64 offsets, ``MA==`` .. ``LTE=``).
Transport faults (``slow``, ``after``, ``status``...) are ``fake.clob.fault(...)`` (``base.Fault``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from polymarket._internal.environment import PRODUCTION_CONFIG
from polymarket._internal.wallet import derive_beacon_deposit_wallet_address

from fsm_bot.matching import market_buy
from fsm_bot.ports import Level
from tests.servers.base import FakeTime, JsonServer, Reply, Request

UNITS = Decimal(10) ** 6
SIZE_STEP = Decimal("0.01")
CHAIN_ID = 137
EXCHANGE = PRODUCTION_CONFIG.standard_exchange
DERIVATION = PRODUCTION_CONFIG.wallet_derivation
ORDER_TYPE = ("Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
              "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)")
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
TDS_TYPE = ("TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,"
            "bytes32 salt)" + ORDER_TYPE)
FOK_MSG = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_MSG = "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
BALANCE_MSG = "not enough balance / allowance"
DUPLICATE_MSG = "INVALID_ORDER_DUPLICATED: Same order has already been placed, can't be placed again"
AMOUNT_DP = {Decimal("0.1"): (2, 3), Decimal("0.01"): (2, 4), Decimal("0.001"): (2, 5), Decimal("0.0001"): (2, 6)}
MAX_ALLOWANCE = str(2**256 - 1)
FIRST_CURSOR, END_CURSOR = "MA==", "LTE="  # base64 of "0" and of "-1"
LIFECYCLES = {  # fate -> status at the match, from mine_secs, from confirm_secs
    "confirmed": ("MATCHED", "MINED", "CONFIRMED"),
    "failed": ("MATCHED", "RETRYING", "FAILED"),
    "ghost": ("MATCHED", "MATCHED", "MATCHED"),
}


class Refused(Exception):
    """A venue refusal: HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Account_:
    """One API user: the EOA, its deposit wallet, its CLOB API key and its money."""

    signer: str
    wallet: str
    api_key: str
    secret: str
    passphrase: str
    balance_units: int
    allowance: bool
    positions: dict[str, Decimal] = field(default_factory=dict)  # token -> shares held


@dataclass
class Trade:
    """One trade's bookkeeping; ``row`` is the ``/data/trades`` row, kept current by ``settle``."""

    row: dict[str, Any]
    acct: Account_
    fate: str
    stages_ms: tuple[int, int, int]  # fake ms of the match, of mine_secs and of confirm_secs after it
    visible_ms: int  # from when /data/trades shows it
    cost_units: int  # spent + fee, 6-dp
    shares: Decimal
    reserved: bool = True  # counted against the CLOB's cached balance
    applied: bool = False  # the on-chain effects (collateral out, shares in) are done

    def status_at(self, now_ms: int) -> tuple[str, int]:
        """(status, fake ms when it took that status) at ``now_ms``."""
        statuses = LIFECYCLES[self.fate]
        stage = sum(1 for ms in self.stages_ms[1:] if now_ms >= ms)
        first = statuses.index(statuses[stage])
        return statuses[stage], self.stages_ms[first]

    def releasable(self, now_ms: int) -> bool:
        """Final, or as old as a final trade would be: what ``/balance-allowance/update`` lets go."""
        return now_ms >= self.stages_ms[2]


@dataclass
class FakeTrading:
    fake: Any
    time: FakeTime
    balance_usd: Decimal
    allowance: bool
    relayer: JsonServer = field(default_factory=lambda: JsonServer("relayer"))
    data_api: JsonServer = field(default_factory=lambda: JsonServer("data-api"))
    rpc: JsonServer = field(default_factory=lambda: JsonServer("rpc"))
    accounts: dict[str, Account_] = field(default_factory=dict)  # by lowercase signer
    orders: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    redeems: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (order hash or "", message)
    accept_unknown_signers: bool = True
    mine_secs: float = 2.0  # MATCHED -> MINED (or RETRYING), fake seconds after the match
    confirm_secs: float = 6.0  # -> CONFIRMED (or FAILED)
    stale_reservations: bool = True  # failed/ghost reservations stick until /balance-allowance/update
    page_size: int = 100  # /data/trades rows per page
    balance_updates: int = 0  # GET /balance-allowance/update calls
    ledger: list[Trade] = field(default_factory=list)  # t.trades' bookkeeping, same order
    fates_queued: list[str] = field(default_factory=list)  # the fates of the next accepted orders
    balance_locks: int = 0  # POST /order refused with BALANCE_MSG until an update
    empty_pages_left: int = 0
    hide_secs: float = 0.0
    wrong_ids_left: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)  # one handler at a time

    # -- faults -----------------------------------------------------------------------------------------
    def fate(self, kind: str, count: int = 1) -> None:
        """The next ``count`` accepted orders (after those already given a fate) settle as ``kind``."""
        assert kind in LIFECYCLES, f"unknown fate {kind!r}; one of {tuple(LIFECYCLES)}"
        with self.lock:
            self.fates_queued += [kind] * count

    def lock_balance(self, count: int = 1) -> None:
        """Refuse the next ``count`` ``POST /order`` with ``BALANCE_MSG``, until ``/balance-allowance/update``."""
        self._arm(balance_locks=count)

    def empty_pages(self, count: int = 1) -> None:
        """The next ``count`` non-empty first pages of ``/data/trades`` come back empty, pointing at themselves."""
        self._arm(empty_pages_left=count)

    def hide_trades(self, secs: float) -> None:
        """Trades matched from now on show in ``/data/trades`` only ``secs`` after their match (0: at once)."""
        self._arm(hide_secs=secs)

    def wrong_order_id(self, count: int = 1) -> None:
        """The next ``count`` accepted orders' replies carry an ``orderID`` that is not the order's hash."""
        self._arm(wrong_ids_left=count)

    def _arm(self, **counters: Any) -> None:
        with self.lock:
            for name, value in counters.items():
                setattr(self, name, value)

    def trade_status(self, key: str) -> str:
        """The current status of the trade of the order whose hash is ``key``."""
        with self.lock:
            settle(self)
            return next(x.row["status"] for x in self.ledger if x.row["taker_order_id"] == key)

    def urls(self) -> dict[str, str]:
        return {"relayer_url": self.relayer.url, "data_api_url": self.data_api.url, "rpc_url": self.rpc.url}

    def start(self) -> "FakeTrading":
        for server in (self.relayer, self.data_api, self.rpc):
            server.start()
        return self

    def stop(self) -> None:
        """Stop the three servers at once (each ``shutdown`` waits out a 0.5 s poll)."""
        stopping = [threading.Thread(target=s.stop) for s in (self.relayer, self.data_api, self.rpc)]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()

    # -- accounts ---------------------------------------------------------------------------------
    def account(self, signer: str) -> Account_ | None:
        return self.accounts.get(signer.lower())

    def add_account(self, signer: str, balance_usd: Decimal | None = None, allowance: bool | None = None) -> Account_:
        signer = to_checksum_address(signer)
        acct = Account_(signer=signer, wallet=derive_beacon_deposit_wallet_address(signer, DERIVATION),
                        api_key=_uuid(signer), secret=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                        passphrase=secrets.token_hex(16), balance_units=int((balance_usd or self.balance_usd) * UNITS),
                        allowance=self.allowance if allowance is None else allowance)
        self.accounts[signer.lower()] = acct
        return acct

    def by_api_key(self, key: str) -> Account_ | None:
        return next((a for a in self.accounts.values() if a.api_key == key), None)

    def by_wallet(self, wallet: str) -> Account_ | None:
        return next((a for a in self.accounts.values() if a.wallet.lower() == wallet.lower()), None)

    def balance_of(self, signer: str) -> Decimal:
        """The wallet's on-chain collateral (CONFIRMED trades paid, redeems received)."""
        acct = self.account(signer)
        return Decimal(acct.balance_units) / UNITS if acct else Decimal(0)

    def cached_units(self, acct: Account_) -> int:
        """What the CLOB believes ``acct`` may spend: on-chain collateral minus its trades' reservations."""
        with self.lock:
            return acct.balance_units - sum(x.cost_units for x in self.ledger if x.acct is acct and x.reserved)


def settle(t: FakeTrading) -> None:
    """Bring every trade to its status now: apply a CONFIRMED trade's on-chain effects exactly once, and
    drop the reservations the venue lets go by itself."""
    with t.lock:
        now = t.time.now_ms()
        for trade in t.ledger:
            _advance(t, trade, now)


def _advance(t: FakeTrading, trade: Trade, now_ms: int) -> None:
    status, since_ms = trade.status_at(now_ms)
    if status != trade.row["status"]:
        mined = status in ("MINED", "CONFIRMED")
        trade.row.update(status=status, last_update=str(since_ms // 1000),
                         transaction_hash="0x" + keccak(trade.row["id"].encode()).hex() if mined else None)
    if status == "CONFIRMED" and not trade.applied:
        token = trade.row["asset_id"]
        trade.acct.balance_units -= trade.cost_units
        trade.acct.positions[token] = trade.acct.positions.get(token, Decimal(0)) + trade.shares
        trade.applied, trade.reserved = True, False
    elif not t.stale_reservations and trade.releasable(now_ms):
        trade.reserved = False


def install_trading(fake: Any, time: FakeTime, *, balance_usd: Decimal = Decimal("1000"),
                    allowance: bool = True, **settings: Any) -> FakeTrading:
    """Add the trading routes to ``fake.clob`` and start the relayer, Data API and RPC fakes.
    ``settings`` are ``FakeTrading`` fields (``mine_secs``, ``confirm_secs``, ``stale_reservations``, ``page_size``)."""
    t = FakeTrading(fake=fake, time=time, balance_usd=balance_usd, allowance=allowance, **settings)
    _clob_routes(t)
    _gamma_routes(t)
    _relayer_routes(t)
    _routes(t, t.data_api, [("GET", "/positions", lambda r: _positions(t, r))])
    t.rpc.route("POST", "/.*", _rpc)
    return t.start()


def _routes(t: FakeTrading, server: JsonServer, table: list[tuple[str, str, Any]]) -> None:
    for method, pattern, handler in table:
        server.route(method, pattern, _guard(t, handler))


def _guard(t: FakeTrading, handler: Any) -> Any:
    """One request at a time, trades settled to now first; a ``Refused`` in the venue's shape."""
    def run(req: Request) -> Reply:
        with t.lock:
            settle(t)
            try:
                return handler(req)
            except Refused as exc:
                return Reply(exc.status, {"error": str(exc)})
    return run


def _clob_routes(t: FakeTrading) -> None:
    _routes(t, t.fake.clob, [
        ("GET", "/ok", lambda r: Reply(200, "OK")),
        ("POST", "/auth/api-key", lambda r: _create_key(t, r)),
        ("GET", "/auth/derive-api-key", lambda r: _derive_key(t, r)),
        ("GET", "/auth/api-keys", lambda r: Reply(200, {"apiKeys": [_l2(t, r).api_key]})),
        ("POST", "/order", lambda r: _post_order(t, r)),
        ("GET", "/data/order/(?P<id>[^/]+)", lambda r: _get_order(t, r)),
        ("GET", "/data/trades", lambda r: _get_trades(t, r)),
        ("GET", "/balance-allowance", lambda r: _balance(t, r)),
        ("GET", "/balance-allowance/update", lambda r: _update(t, r)),
        ("GET", "/markets-by-token/(?P<token>[0-9]+)", lambda r: _by_token(t, r)),
        ("GET", "/clob-markets/(?P<cid>0x[0-9a-fA-F]+)", lambda r: _clob_market(t, r)),
    ])


# -- L1 and L2 auth -----------------------------------------------------------------------------------
def _uuid(signer: str) -> str:
    h = hashlib.sha256(b"fake-api-key" + signer.lower().encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _l1_signer(t: FakeTrading, req: Request) -> str:
    """The address a ``ClobAuth`` EIP-712 signature in the L1 headers proves control of."""
    h = {k.upper(): v for k, v in req.headers.items()}
    address, ts, nonce, sig = (h.get(k) for k in ("POLY_ADDRESS", "POLY_TIMESTAMP", "POLY_NONCE", "POLY_SIGNATURE"))
    if not (address and ts and nonce is not None and sig):
        raise Refused("Unauthorized/Invalid api key", 401)
    typed = {"domain": {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID},
             "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                        {"name": "chainId", "type": "uint256"}],
                       "ClobAuth": [{"name": "address", "type": "address"}, {"name": "timestamp", "type": "string"},
                                    {"name": "nonce", "type": "uint256"}, {"name": "message", "type": "string"}]},
             "primaryType": "ClobAuth",
             "message": {"address": address, "timestamp": ts, "nonce": int(nonce),
                         "message": "This message attests that I control the given wallet"}}
    try:
        recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=sig)
    except Exception:
        raise Refused("Unauthorized/Invalid api key", 401) from None
    if recovered.lower() != address.lower():
        raise Refused("Unauthorized/Invalid api key", 401)
    return recovered


def _known_signer(t: FakeTrading, signer: str) -> Account_:
    acct = t.account(signer)
    if acct is None and t.accept_unknown_signers:
        acct = t.add_account(signer)
    if acct is None:
        raise Refused("Unauthorized/Invalid api key", 401)
    return acct


def _create_key(t: FakeTrading, req: Request) -> Reply:
    signer = _l1_signer(t, req)
    if t.account(signer) is not None:
        raise Refused("Could not create api key")  # exists: the SDK derives it instead
    return _creds(_known_signer(t, signer))


def _derive_key(t: FakeTrading, req: Request) -> Reply:
    return _creds(_known_signer(t, _l1_signer(t, req)))


def _creds(acct: Account_) -> Reply:
    return Reply(200, {"apiKey": acct.api_key, "secret": acct.secret, "passphrase": acct.passphrase})


def _l2(t: FakeTrading, req: Request) -> Account_:
    """The account whose L2 headers sign this request (HMAC over ts + method + path + body)."""
    h = {k.upper(): v for k, v in req.headers.items()}
    acct = t.by_api_key(h.get("POLY_API_KEY", ""))
    if acct is None or h.get("POLY_PASSPHRASE") != acct.passphrase or \
            h.get("POLY_ADDRESS", "").lower() != acct.signer.lower():
        raise Refused("Unauthorized/Invalid api key", 401)
    expected = l2_signature(acct, h.get("POLY_TIMESTAMP", ""), req.method, req.path, req.body)
    if not hmac.compare_digest(expected, h.get("POLY_SIGNATURE", "")):
        raise Refused("Unauthorized/Invalid api key", 401)
    return acct


def l2_signature(acct: Account_, ts: str, method: str, path: str, body: bytes = b"") -> str:
    """The L2 HMAC: urlsafe base64 of HMAC-SHA256(secret, ts + method + path + body)."""
    secret = base64.urlsafe_b64decode(acct.secret + "=" * (-len(acct.secret) % 4))
    message = f"{ts}{method}{path}".encode() + body
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def l2_headers(acct: Account_, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    """The headers a client of ``acct`` sends on a private route (for tests that speak HTTP themselves)."""
    ts = str(int(_time.time()))
    return {"POLY_ADDRESS": acct.signer, "POLY_API_KEY": acct.api_key, "POLY_PASSPHRASE": acct.passphrase,
            "POLY_TIMESTAMP": ts, "POLY_SIGNATURE": l2_signature(acct, ts, method, path, body)}


# -- the order's hash and signature, recomputed -------------------------------------------------------------
def domain_separator() -> bytes:
    return keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                             [keccak(DOMAIN_TYPE.encode()), keccak(b"Polymarket CTF Exchange"), keccak(b"2"),
                              CHAIN_ID, EXCHANGE]))


def struct_hash(o: dict[str, Any]) -> bytes:
    return keccak(abi_encode(
        ["bytes32", "uint256", "address", "address", "uint256", "uint256", "uint256", "uint8", "uint8", "uint256",
         "bytes32", "bytes32"],
        [keccak(ORDER_TYPE.encode()), int(o["salt"]), o["maker"], o["signer"], int(o["tokenId"]), int(o["makerAmount"]),
         int(o["takerAmount"]), 0 if o["side"] == "BUY" else 1, int(o["signatureType"]), int(o["timestamp"]),
         bytes.fromhex(o["metadata"][2:]), bytes.fromhex(o["builder"][2:])]))


def order_hash(o: dict[str, Any]) -> str:
    """The venue's order id: keccak(0x1901 || domain separator || hashStruct(Order))."""
    return "0x" + keccak(b"\x19\x01" + domain_separator() + struct_hash(o)).hex()


def recover_signer(o: dict[str, Any]) -> str:
    """The EOA behind the order's signature (type 0: plain ECDSA; type 3: the SDK's ERC-7739 wrapping)."""
    sig = bytes.fromhex(str(o["signature"]).removeprefix("0x"))
    if int(o["signatureType"]) == 0:
        return Account._recover_hash(bytes.fromhex(order_hash(o)[2:]), signature=sig)
    if int(o["signatureType"]) != 3 or len(sig) < 65 + 64 + 2:
        raise Refused("invalid signature")
    ecdsa, app_domain, contents = sig[:65], sig[65:97], sig[97:129]
    type_len = int.from_bytes(sig[-2:], "big")
    if sig[129:-2] != ORDER_TYPE.encode() or type_len != len(ORDER_TYPE):
        raise Refused("invalid signature")
    if app_domain != domain_separator() or contents != struct_hash(o):
        raise Refused("invalid signature")
    tds = keccak(abi_encode(["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
                            [keccak(TDS_TYPE.encode()), contents, keccak(b"DepositWallet"), keccak(b"1"), CHAIN_ID,
                             o["signer"], b"\x00" * 32]))
    return Account._recover_hash(keccak(b"\x19\x01" + app_domain + tds), signature=ecdsa)


def _verify(t: FakeTrading, acct: Account_, o: dict[str, Any]) -> None:
    try:
        eoa = recover_signer(o)
    except Refused:
        raise
    except Exception:
        raise Refused("invalid signature") from None
    if eoa.lower() != acct.signer.lower():
        raise Refused("invalid signature")
    wallet = acct.wallet if int(o["signatureType"]) == 3 else acct.signer
    if o["maker"].lower() != wallet.lower() or o["signer"].lower() != (wallet if int(o["signatureType"]) == 3
                                                                        else acct.signer).lower():
        raise Refused("the order signer address has to be the address of the API KEY")


# -- POST /order ------------------------------------------------------------------------------------------------
def _post_order(t: FakeTrading, req: Request) -> Reply:
    acct = _l2(t, req)
    body = req.json()
    o = body.get("order") if isinstance(body, dict) else None
    if not isinstance(o, dict) or body.get("owner") != acct.api_key:
        raise Refused("Invalid order payload")
    key = _checked_hash(o)
    try:
        _verify(t, acct, o)
        market = t.fake.by_token(str(o["tokenId"]))  # takes fake.lock itself
        with t.fake.lock:
            reply = _place(t, acct, key, o, market, str(body.get("orderType")))
            t.orders[-1]["received_s"] = req.received_s  # when the order's bytes were in (the decision bench)
            t.orders[-1]["body"] = req.body  # the bytes as posted
            return reply
    except Refused as exc:
        t.refused.append((key, str(exc)))
        raise


def _checked_hash(o: dict[str, Any]) -> str:
    try:
        return order_hash(o)
    except Exception:
        raise Refused("Invalid order payload") from None


def _place(t: FakeTrading, acct: Account_, key: str, o: dict[str, Any], market: Any, order_type: str) -> Reply:
    if any(x["hash"] == key for x in t.orders):
        raise Refused(DUPLICATE_MSG)
    if market is None:
        raise Refused("the market is not yet ready to process new orders")
    if t.time.now_ms() >= market.end_ms:
        raise Refused("market is closed: orders are not accepted")
    maker, taker = int(o["makerAmount"]), int(o["takerAmount"])
    _check_amounts(market, maker, taker, order_type)
    got = market_buy(tuple(Level(p, s) for p, s in market.asks[str(o["tokenId"])]), Decimal(maker) / UNITS,
                     Decimal(maker) / Decimal(taker), market.fee_rate, order_type)
    if got is None:
        raise Refused(FOK_MSG if order_type == "FOK" else FAK_MSG)
    if _take(t, "balance_locks") or not acct.allowance or (got.spent_usd + got.fee_usd) * UNITS > t.cached_units(acct):
        raise Refused(BALANCE_MSG)
    _consume(market, str(o["tokenId"]), Decimal(maker) / UNITS, Decimal(maker) / Decimal(taker))
    return _record(t, acct, key, o, market, got)


def _check_amounts(market: Any, maker: int, taker: int, order_type: str) -> None:
    if order_type not in ("FOK", "FAK"):
        raise Refused(f"order type {order_type} is not supported by this fake")
    size_dp, amount_dp = AMOUNT_DP.get(market.tick, (2, 4))
    if maker <= 0 or taker <= 0 or maker % 10 ** (6 - size_dp) or taker % 10 ** (6 - amount_dp):
        raise Refused(f"invalid amounts, the market's tick size is {market.tick}")
    price = Decimal(maker) / Decimal(taker)
    if not market.tick <= price <= 1 - market.tick + Decimal("0.0001"):
        raise Refused(f"invalid price ({price}), the market's tick size is {market.tick}")
    if Decimal(maker) / UNITS < 1:
        raise Refused(f"invalid amount for a marketable BUY order (${Decimal(maker) / UNITS}), min size: $1")


def _consume(market: Any, token: str, amount_usd: Decimal, limit: Decimal) -> None:
    """Take what the fill took off the fake's asks (best first)."""
    remaining, left = amount_usd, []
    for price, size in market.asks[token]:
        if remaining > 0 and price <= limit:
            take = min(remaining, price * size)
            remaining -= take
            size = (size - take / price).quantize(SIZE_STEP, ROUND_DOWN)  # the CLOB shows sizes to the cent
        if size > 0:
            left.append((price, size))
    market.asks[token] = left


_ids = itertools.count(1)


def _take(t: FakeTrading, counter: str) -> bool:
    """Use up one of a fault's remaining ``count``: True when there was one left."""
    left = getattr(t, counter)
    if left > 0:
        setattr(t, counter, left - 1)
    return left > 0


def _record(t: FakeTrading, acct: Account_, key: str, o: dict[str, Any], market: Any, got: Any) -> Reply:
    """The accepted order, its one MATCHED trade (nothing moves on chain yet) and the venue's reply."""
    token, trade_id, now = str(o["tokenId"]), f"trade-{next(_ids)}", t.time.now_ms()
    fate = t.fates_queued.pop(0) if t.fates_queued else "confirmed"
    replied = key[:-1] + ("1" if key[-1] == "0" else "0") if _take(t, "wrong_ids_left") else key
    t.orders.append({"hash": key, "token": token, "slug": market.slug, "maker_amount": int(o["makerAmount"]),
                     "taker_amount": int(o["takerAmount"]), "spent_usd": got.spent_usd, "shares": got.shares,
                     "fee_usd": got.fee_usd, "wallet": acct.wallet, "fate": fate, "trade_id": trade_id,
                     "order_id_replied": replied})
    row = {"id": trade_id, "taker_order_id": key, "market": market.condition_id, "asset_id": token, "side": "BUY",
           "size": str(got.shares), "price": str(got.spent_usd / got.shares),
           "fee_rate_bps": str(market.fee_rate * 10_000), "status": "MATCHED", "trader_side": "TAKER",
           "maker_address": acct.wallet, "match_time": str(now // 1000), "last_update": str(now // 1000),
           "transaction_hash": None, "maker_orders": []}
    t.trades.append(row)
    t.ledger.append(Trade(row=row, acct=acct, fate=fate, visible_ms=now + int(t.hide_secs * 1000),
                          stages_ms=(now, now + int(t.mine_secs * 1000), now + int(t.confirm_secs * 1000)),
                          cost_units=int((got.spent_usd + got.fee_usd) * UNITS), shares=got.shares))
    return Reply(200, {"success": True, "errorMsg": "", "orderID": replied, "status": "matched",
                       "makingAmount": str(got.spent_usd), "takingAmount": str(got.shares),
                       "tradeIDs": [trade_id], "transactionsHashes": []})


# -- reads ------------------------------------------------------------------------------------------------------
def _get_order(t: FakeTrading, req: Request) -> Reply:
    """Only active orders are listed, like the venue: a FOK order never rests, so this is null."""
    _l2(t, req)
    return Reply(200, None)


def _secs(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Refused(f"invalid unix time {value[:40]!r}") from None


TRADE_FILTERS: dict[str, Callable[[dict[str, Any], str], bool]] = {  # query param -> does a row pass
    "id": lambda x, v: v in (x["id"], x["taker_order_id"]),
    "market": lambda x, v: x["market"].lower() == v.lower(),
    "asset_id": lambda x, v: x["asset_id"] == v,
    "maker_address": lambda x, v: x["maker_address"].lower() == v.lower(),
    "after": lambda x, v: int(x["match_time"]) >= _secs(v),
    "before": lambda x, v: int(x["match_time"]) < _secs(v),
}


def _get_trades(t: FakeTrading, req: Request) -> Reply:
    """The account's visible trades passing every filter given, one page of them."""
    acct, now = _l2(t, req), t.time.now_ms()
    rows = [x.row for x in t.ledger if x.acct is acct and x.visible_ms <= now]
    for name, keep in TRADE_FILTERS.items():
        if name in req.query:
            rows = [x for x in rows if keep(x, req.query[name])]
    return Reply(200, _page(t, rows, req.query.get("next_cursor")))


def _page(t: FakeTrading, rows: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    offset = _offset(cursor)
    offset = len(rows) if offset < 0 else offset
    if offset == 0 and rows and _take(t, "empty_pages_left"):
        page, after = [], FIRST_CURSOR  # a hiccup: nothing here, and a cursor back to the real first page
    else:
        page = rows[offset:offset + t.page_size]
        end = offset + len(page)
        after = base64.b64encode(str(end).encode()).decode() if end < len(rows) else END_CURSOR
    return {"data": [dict(x) for x in page], "next_cursor": after, "limit": t.page_size, "count": len(page)}


def _offset(cursor: str | None) -> int:
    """The row offset a ``next_cursor`` stands for (base64 of a decimal; -1, ``LTE=``, is past the end)."""
    try:
        offset = int(base64.b64decode(cursor or FIRST_CURSOR, validate=True).decode())
    except (ValueError, UnicodeDecodeError):
        raise Refused("invalid next_cursor") from None
    if offset < -1:
        raise Refused("invalid next_cursor")
    return offset


def _balance(t: FakeTrading, req: Request) -> Reply:
    """The CLOB's cached collateral: on-chain minus the reservations of matched trades."""
    acct = _l2(t, req)
    if req.query.get("asset_type") != "COLLATERAL":
        raise Refused("this fake serves COLLATERAL balances only")
    allowances = {EXCHANGE: MAX_ALLOWANCE if acct.allowance else "0",
                  PRODUCTION_CONFIG.neg_risk_exchange: MAX_ALLOWANCE if acct.allowance else "0"}
    return Reply(200, {"balance": str(t.cached_units(acct)), "allowances": allowances})


def _update(t: FakeTrading, req: Request) -> Reply:
    """``/balance-allowance/update``: re-read the chain, which frees every reservation at least
    ``confirm_secs`` old (stale ones of failed and ghost trades too) and lifts ``lock_balance``."""
    acct, now = _l2(t, req), t.time.now_ms()
    t.balance_updates += 1
    t.balance_locks = 0
    for trade in t.ledger:
        if trade.acct is acct and trade.releasable(now):
            trade.reserved = False
    return Reply(200, "")


def _by_token(t: FakeTrading, req: Request) -> Reply:
    m = t.fake.by_token(req.match.group("token"))
    if m is None:
        raise Refused("market not found", 404)
    return Reply(200, {"condition_id": m.condition_id, "primary_token_id": m.up_token, "secondary_token_id": m.down_token})


def _clob_market(t: FakeTrading, req: Request) -> Reply:
    m = _by_condition(t, req.match.group("cid"))
    return Reply(200, {"c": m.condition_id, "t": [{"t": m.up_token, "o": "Up"}, {"t": m.down_token, "o": "Down"}],
                       "mts": float(m.tick), "nr": False, "fd": {"r": float(m.fee_rate), "e": 1}})


def _by_condition(t: FakeTrading, cid: str) -> Any:
    m = t.fake.by_condition(cid)
    if m is None:
        raise Refused("market not found", 404)
    return m


# -- Gamma, for the SDK's redeem -------------------------------------------------------------------------------
def _gamma_routes(t: FakeTrading) -> None:
    """Gamma's keyset listing, which the SDK's redeem reads by condition id."""
    def markets(req: Request) -> Reply:
        m = _resolved_market(t, req.query.get("condition_ids", ""))
        return Reply(200, {"markets": [m] if m else [], "next_cursor": None})
    t.fake.gamma.route("GET", "/markets/keyset", markets)


def _resolved_market(t: FakeTrading, cid: str) -> dict[str, Any] | None:
    try:
        m = _by_condition(t, cid)
    except Refused:
        return None
    won = m.outcome == "UP"
    return {"id": str(abs(hash(m.slug)) % 10**7), "slug": m.slug, "conditionId": m.condition_id, "version": "v1",
            "question": m.slug, "outcomes": '["Up", "Down"]', "clobTokenIds": f'["{m.up_token}", "{m.down_token}"]',
            "outcomePrices": '["1", "0"]' if won else '["0", "1"]', "closed": _resolved(t, m), "active": True,
            "negRisk": False, "acceptingOrders": False, "enableOrderBook": True}


def _resolved(t: FakeTrading, m: Any) -> bool:
    return t.fake.resolved(m)


# -- the relayer, the Data API and the RPC node ------------------------------------------------------------------
def _relayer_routes(t: FakeTrading) -> None:
    _routes(t, t.relayer, [
        ("GET", "/deployed", lambda r: Reply(200, {"deployed": t.by_wallet(r.query.get("address", "")) is not None})),
        ("GET", "/v1/account/transactions/params", lambda r: Reply(200, {"address": r.query.get("address"),
                                                                         "nonce": str(len(t.redeems))})),
        ("POST", "/submit", lambda r: _submit(t, r)),
        ("GET", "/v1/account/transactions/(?P<id>[^/]+)", lambda r: _transaction(t, r)),
    ])


def _submit(t: FakeTrading, req: Request) -> Reply:
    """A deposit-wallet batch of CTF ``redeemPositions`` calls: pay 1 pUSD per winning share held."""
    if not {k.upper() for k in req.headers} >= {"RELAYER_API_KEY", "RELAYER_API_KEY_ADDRESS"}:
        raise Refused("relayer API key required", 401)
    body = req.json()
    acct = t.account(str(body.get("from", "")))
    params = body.get("depositWalletParams") or {}
    if acct is None or str(params.get("depositWallet", "")).lower() != acct.wallet.lower():
        raise Refused("unknown wallet")
    paid = sum((_redeem_call(t, acct, c) for c in params.get("calls", [])), Decimal(0))
    tx = {"id": f"relay-{len(t.redeems) + 1}", "hash": "0x" + secrets.token_hex(32), "paid_usd": paid,
          "wallet": acct.wallet}
    t.redeems.append(tx)
    return Reply(200, {"transactionID": tx["id"], "transactionHash": tx["hash"], "state": "STATE_NEW"})


def _redeem_call(t: FakeTrading, acct: Account_, call: dict[str, Any]) -> Decimal:
    data = bytes.fromhex(str(call.get("data", "")).removeprefix("0x"))
    cid = "0x" + data[4 + 64:4 + 96].hex()  # redeemPositions(address collateral, bytes32 parent, bytes32 cid, ...)
    m = _by_condition(t, cid)
    if not _resolved(t, m):
        raise Refused("condition not resolved")
    winner = m.up_token if m.outcome == "UP" else m.down_token
    paid = acct.positions.pop(winner, Decimal(0))
    acct.positions.pop(m.down_token if winner == m.up_token else m.up_token, None)
    acct.balance_units += int(paid * UNITS)
    return paid


def _transaction(t: FakeTrading, req: Request) -> Reply:
    tx = next((x for x in t.redeems if x["id"] == req.match.group("id")), None)
    if tx is None:
        return Reply(404, {"error": "transaction not found"})
    return Reply(200, {"transaction_id": tx["id"], "transaction_hash": tx["hash"], "state": "STATE_CONFIRMED"})


def _positions(t: FakeTrading, req: Request) -> Reply:
    acct = t.by_wallet(req.query.get("user", ""))
    rows = []
    for token, shares in (acct.positions.items() if acct else ()):
        m = t.fake.by_token(token)
        if m is None or ("market" in req.query and m.condition_id.lower() != req.query["market"].lower()):
            continue
        won = (token == m.up_token) == (m.outcome == "UP")
        rows.append({"proxyWallet": acct.wallet, "asset": token, "conditionId": m.condition_id, "size": float(shares),
                     "redeemable": _resolved(t, m), "curPrice": 1 if won else 0, "slug": m.slug,
                     "outcome": "Up" if token == m.up_token else "Down"})
    return Reply(200, rows)


def _rpc(req: Request) -> Reply:
    call = req.json()
    if call.get("method") == "eth_blockNumber":
        return Reply(200, {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(60_000_000)})
    if call.get("method") == "eth_getBlockByNumber":
        return Reply(200, {"jsonrpc": "2.0", "id": call.get("id"), "result": {"timestamp": hex(int(_time.time()))}})
    return Reply(200, {"jsonrpc": "2.0", "id": call.get("id"), "error": {"code": -32601, "message": "not served"}})
