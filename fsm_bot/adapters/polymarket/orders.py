"""V2 orders on the wire: the ``POST /order`` body, its EIP-712 hash, and the parsers of what comes back.

The SDK builds and signs the order (``SecureClient.create_market_order``; EIP-712 typed data of
``Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256
takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)``
under the domain ``{"Polymarket CTF Exchange", "2", 137, exchange}``; for the deposit wallet,
signature type 3, the signer is the wallet and the EOA's signature is ERC-7739-wrapped). This module
never signs. It turns the SDK's signed order into the exact wire body (``wire_body``, the SDK's own
builder), serialises it (``body_bytes``) and computes the order's id, the EIP-712 hash of the order
struct (``order_hash``), from that body alone -- so the journaled payload determines both the bytes
re-posted after a crash and the key they are looked up by.

Parsers take the venue's JSON and return fsm_bot types or raise fsm_bot errors, never anything
else: a malformed success reply is an ``UnknownOutcome`` (the venue may hold the order; look it
up), a malformed lookup a ``DataError``; no ``Accepted`` leaves with a number that is missing, not
finite, negative, a price outside (0, 1), or more than the signed order could spend.

Amounts: ``makerAmount``/``takerAmount`` in the signed order are 6-dp integer units (BUY: maker =
pUSD offered, taker = shares wanted); ``makingAmount``/``takingAmount`` in a reply are decimal
strings in dollars and shares (what was actually spent and received).
"""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from polymarket._internal.actions.orders.post import build_post_order_request
from polymarket._internal.environment import PRODUCTION_CONFIG
from polymarket.models.clob.orders import SignedOrder as SdkSignedOrder

from fsm_bot.adapters.polymarket.errors import error_message, reason
from fsm_bot.errors import DataError, TransientError, UnknownOutcome
from fsm_bot.money import ONE, ZERO, decimal, fee_unrounded, round_fee
from fsm_bot.ports import Accepted, Fill, Rejected, Trade
from fsm_bot.values import frozen

CHAIN_ID = 137
STANDARD_EXCHANGE = PRODUCTION_CONFIG.standard_exchange
UNITS = Decimal(10) ** 6  # pUSD and shares: 6-dp integer units on chain and in signed orders
PRICE_STEP = Decimal("0.0001")
MIN_PRICE, MAX_PRICE = PRICE_STEP, ONE - PRICE_STEP
MAX_SHARES = Decimal(10) ** 9
MIN_AMOUNT = Decimal(1) / UNITS  # the chain's smallest unit of pUSD and of shares
ACCEPTED_STATUSES = frozenset({"matched", "live", "delayed"})
DEAD_PREFIXES = ("CANCELED", "CANCELLED", "UNMATCHED", "INVALID", "KILLED")

EIP712_DOMAIN = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
ORDER_FIELDS = [{"name": n, "type": t} for n, t in (
    ("salt", "uint256"), ("maker", "address"), ("signer", "address"), ("tokenId", "uint256"),
    ("makerAmount", "uint256"), ("takerAmount", "uint256"), ("side", "uint8"), ("signatureType", "uint8"),
    ("timestamp", "uint256"), ("metadata", "bytes32"), ("builder", "bytes32"))]


# -- the wire body and its hash ------------------------------------------------------------------------
def wire_body(signed: SdkSignedOrder, owner_api_key: str) -> dict[str, Any]:
    """The exact ``POST /order`` body for one SDK-signed order (the SDK's own builder)."""
    _, payload = build_post_order_request(signed, owner_api_key=owner_api_key)
    return payload


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes posted (and HMAC-signed): compact JSON, as the SDK's transport sends it."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def order_struct(payload: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 ``Order`` message of a wire body; ``DataError`` when a field is missing or malformed."""
    order = payload.get("order") if isinstance(payload, dict) else None
    if not isinstance(order, dict):
        raise DataError("order payload: no 'order' object", code="bad_payload")
    try:
        return {"salt": int(order["salt"]), "maker": str(order["maker"]), "signer": str(order["signer"]),
                "tokenId": int(order["tokenId"]), "makerAmount": int(order["makerAmount"]),
                "takerAmount": int(order["takerAmount"]), "side": 0 if order["side"] == "BUY" else 1,
                "signatureType": int(order["signatureType"]), "timestamp": int(order["timestamp"]),
                "metadata": str(order["metadata"]), "builder": str(order["builder"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"order payload: field {exc} missing or malformed", code="bad_payload") from None


def order_hash(payload: dict[str, Any], *, exchange: str = STANDARD_EXCHANGE, chain_id: int = CHAIN_ID) -> str:
    """The order's id on Polymarket: the EIP-712 hash of its ``Order`` struct (0x, lowercase hex)."""
    typed = {"types": {"EIP712Domain": EIP712_DOMAIN, "Order": ORDER_FIELDS}, "primaryType": "Order",
             "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": chain_id,
                        "verifyingContract": exchange},
             "message": order_struct(payload)}
    try:
        signable = encode_typed_data(full_message=typed)
    except (TypeError, ValueError) as exc:
        raise DataError(f"order payload: not an EIP-712 order ({type(exc).__name__})", code="bad_payload") from None
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def max_spend_usd(payload: dict[str, Any]) -> Decimal:
    """What a signed BUY can spend at most: its maker amount, in dollars."""
    return Decimal(order_struct(payload)["makerAmount"]) / UNITS


def price_cap(payload: dict[str, Any]) -> Decimal:
    """The signed BUY's worst price, maker / taker (a hair above the requested cap, below the next tick)."""
    s = order_struct(payload)
    if s["takerAmount"] <= 0:
        raise DataError("order payload: takerAmount must be > 0", code="bad_payload")
    return Decimal(s["makerAmount"]) / Decimal(s["takerAmount"])


def on_tick(price: Decimal, tick: Decimal) -> Decimal:
    """A worst price on the market's tick grid, rounded down, within [tick, 1 - tick]."""
    snapped = (price / tick).to_integral_value(rounding=ROUND_DOWN) * tick
    return min(max(snapped, tick), ONE - tick)


# -- numbers from the venue --------------------------------------------------------------------------
def number(value: Any, field: str) -> Decimal:
    """A finite, non-negative Decimal from a venue field; ``DataError`` naming the field otherwise."""
    if value is None or value == "":
        raise DataError(f"{field}: missing", code="bad_payload")
    try:
        d = decimal(value, field)
    except ValueError as exc:
        raise DataError(str(exc), code="bad_payload") from None
    if d < ZERO or d > MAX_SHARES * 10:
        raise DataError(f"{field}: {value!r} is out of range", code="bad_payload")
    return d


def fill(spent_usd: Decimal, shares: Decimal, fee_rate: Decimal, max_spend: Decimal | None = None,
         cap: Decimal | None = None) -> Fill:
    """A checked fill: spent and shares > 0, average price in (0, 1) (and within ``cap``), spend within
    ``max_spend``; the fee per ``money`` at the average price and the market's rate."""
    if not (MIN_AMOUNT <= spent_usd <= MAX_SHARES and MIN_AMOUNT <= shares <= MAX_SHARES):
        raise DataError(f"fill: spent {spent_usd} for {shares} shares is not a fill", code="bad_payload")
    if max_spend is not None and spent_usd > max_spend:
        raise DataError(f"fill: spent {spent_usd} exceeds the order's {max_spend}", code="bad_payload")
    with localcontext() as ctx:
        ctx.prec = 40
        exact = spent_usd / shares
        avg = exact.quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    if not MIN_PRICE <= avg <= MAX_PRICE or (cap is not None and exact > cap + PRICE_STEP):
        raise DataError(f"fill: average price {avg} is outside (0, 1) or above the order's cap", code="bad_payload")
    if not ZERO <= fee_rate < ONE:
        raise DataError(f"fee rate {fee_rate} is outside [0, 1)", code="bad_payload")
    return Fill(shares=shares, spent_usd=spent_usd, avg_price=avg,
                fee_usd=round_fee(fee_unrounded(shares, exact, fee_rate)))


# -- POST /order replies ----------------------------------------------------------------------------
def parse_post_reply(body: Any, key: str, fee_rate: Decimal, payload: dict[str, Any]) -> Accepted | Rejected:
    """A 2xx ``POST /order`` body. Accepted only when success, no errorMsg, an orderID and a status
    in {matched, live, delayed} with a well-formed fill; a refusal is ``Rejected`` (reason
    ``duplicate`` when the venue already holds this order); anything else ``UnknownOutcome``."""
    if not isinstance(body, dict):
        raise UnknownOutcome(f"order {key}: the venue answered 2xx without an order response")
    message = error_message(body)
    if body.get("success") is not True or message:
        return Rejected(key=key, reason=reason(message) if message else _status_reason(body))
    status, order_id = body.get("status"), body.get("orderID")
    if not isinstance(status, str) or status not in ACCEPTED_STATUSES or not isinstance(order_id, str) or not order_id:
        raise UnknownOutcome(f"order {key}: success without a usable status/orderID ({str(status)[:40]!r})")
    try:
        got = fill(number(body.get("makingAmount"), "makingAmount"), number(body.get("takingAmount"), "takingAmount"),
                   fee_rate, max_spend_usd(payload), price_cap(payload))
    except DataError as exc:
        raise UnknownOutcome(f"order {key}: accepted ({status}) but its fill is unreadable: {exc}") from None
    ids = body.get("tradeIDs")
    trades = tuple(Trade(trade_id=t, status="MATCHED") for t in ids if isinstance(t, str) and 0 < len(t) <= 200) \
        if isinstance(ids, list) else ()
    return Accepted(key=key, order_id=order_id, fill=got, trades=trades, settled=False)


def _status_reason(body: dict[str, Any]) -> str:
    status = body.get("status")
    return "unmatched" if status == "unmatched" else "venue_rejected"


# -- lookups: GET /data/order/{id} and GET /data/trades ----------------------------------------------
@frozen
class OrderState:
    """What ``/data/order/{id}`` says of one order."""

    order_id: str
    status: str
    size_matched: Decimal


@frozen
class TradeFill:
    """One trade of ``/data/trades`` in which our order took liquidity, with its status on chain."""

    trade_id: str
    taker_order_id: str
    asset_id: str
    status: str
    shares: Decimal
    price: Decimal
    fee_rate_bps: Decimal | None

    def trade(self) -> Trade:
        return Trade(trade_id=self.trade_id, status=self.status, shares=self.shares, price=self.price)


TRADE_STATUSES = frozenset({"MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"})


def parse_open_order(body: Any, key: str) -> OrderState | None:
    """The order's state, or None when the venue returns nothing (it lists only active orders)."""
    if body in (None, "", {}, []):
        return None
    if not isinstance(body, dict):
        raise DataError(f"order {key}: /data/order returned a {type(body).__name__}", code="bad_payload")
    order_id, status = body.get("id"), body.get("status")
    if not isinstance(order_id, str) or order_id.lower() != key.lower() or not isinstance(status, str) or not status:
        raise DataError(f"order {key}: /data/order returned another or malformed order", code="bad_payload")
    return OrderState(order_id=order_id, status=status.upper(),
                      size_matched=number(body.get("size_matched", "0"), "size_matched"))


def trades_page(body: Any, where: str) -> tuple[list[Any], str | None]:
    """(rows, next cursor or None at the end) of one ``/data/trades`` page."""
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise DataError(f"{where}: /data/trades returned a {type(body).__name__}", code="bad_payload")
    rows, cursor = body.get("data"), body.get("next_cursor")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise DataError(f"{where}: /data/trades did not return a list", code="bad_payload")
    if cursor in (None, "", END_CURSOR):
        return rows, None
    if not isinstance(cursor, str) or len(cursor) > 200:
        raise DataError(f"{where}: /data/trades next_cursor is malformed", code="bad_payload")
    return rows, cursor


END_CURSOR = "LTE="


def parse_trades(rows: list[Any], takers: set[str] | None) -> list[TradeFill]:
    """The rows in which one of the orders ``takers`` (lowercase ids; None: any of ours) was the taker, in any
    status."""
    return [t for row in rows if (t := _trade(row, takers)) is not None]


def _trade(row: Any, takers: set[str] | None) -> TradeFill | None:
    if not isinstance(row, dict):
        raise DataError(f"a /data/trades row is a {type(row).__name__}", code="bad_payload")
    taker = row.get("taker_order_id")
    if not isinstance(taker, str) or (takers is not None and taker.lower() not in takers) or (
            takers is None and row.get("trader_side") != "TAKER"):
        return None
    status = str(row.get("status", "")).upper().removeprefix("TRADE_STATUS_")
    if status not in TRADE_STATUSES:
        raise DataError(f"trade {str(row.get('id'))[:80]}: status {status[:40]!r} is not a trade status",
                        code="bad_payload")
    trade_id = row.get("id")
    if not isinstance(trade_id, str) or not trade_id or len(trade_id) > 200:
        raise DataError("a /data/trades row has no usable id", code="bad_payload")
    bps = row.get("fee_rate_bps")
    price = number(row.get("price"), "trade price")
    if not ZERO < price < ONE:
        raise DataError(f"trade {trade_id}: price {price} is outside (0, 1)", code="bad_payload")
    shares = number(row.get("size"), "trade size")
    if shares <= ZERO:
        raise DataError(f"trade {trade_id}: size {shares} is not positive", code="bad_payload")
    return TradeFill(trade_id=trade_id, taker_order_id=taker, asset_id=str(row.get("asset_id", "")), status=status,
                     shares=shares, price=price,
                     fee_rate_bps=None if bps in (None, "") else number(bps, "fee_rate_bps"))


def trades_fee_rate(trades: list[TradeFill]) -> Decimal | None:
    """The fee rate the trades state (basis points / 10,000), when they state one."""
    rates = [t.fee_rate_bps for t in trades if t.fee_rate_bps is not None]
    return rates[0] / Decimal(10_000) if rates else None


def lookup_result(key: str, order: OrderState | None, trades: list[TradeFill],
                  fee_rate: Decimal) -> Accepted | Rejected | None:
    """The venue's answer about ``key``: its trades (in any status: a FAILED trade is still an order the venue
    had) make it Accepted, to be followed on chain; a dead order Rejected (final: the venue's word about it);
    a known order without trades yet a ``TransientError`` (ask again); nothing at all None (never seen)."""
    if trades:
        with localcontext() as ctx:
            ctx.prec = 40
            shares = sum((t.shares for t in trades), ZERO)
            spent = sum((t.shares * t.price for t in trades), ZERO).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        order_id = order.order_id if order else trades[0].taker_order_id
        return Accepted(key=key, order_id=order_id, fill=fill(spent, shares, fee_rate),
                        trades=tuple(t.trade() for t in trades), settled=False)
    if order is None:
        return None
    if order.status.startswith(DEAD_PREFIXES) and order.size_matched == ZERO:
        return Rejected(key=key, reason=order.status.lower()[:60], final=True)
    raise TransientError(f"order {key}: {order.status} with {order.size_matched} matched, trades not visible yet",
                         code="order_pending")
