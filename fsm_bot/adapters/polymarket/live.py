"""``--live``: the Polymarket venue that places real V2 orders.

The split (the reasons are in the docstrings of ``orders`` and ``errors``):

- **signing** is the SDK's: ``SecureClient.create_market_order`` builds the V2 order (tick,
  6-dp amounts, worst price) and signs it for the wallet the SDK derives (the deposit wallet,
  POLY_1271, by default). ``prepare`` turns it into the exact ``POST /order`` body and the order
  hash, which the engine journals BEFORE anything is posted;
- **posting and lookups** are ours, through ``Http`` with the SDK's L2 HMAC signature: ``Http.post`` (on a
  connection kept open) is never retried and tells "not sent" (``TransientError``) from "sent, no answer"
  (``UnknownOutcome``) -- the SDK's transport folds both into one ``TransportError``, which would blur the
  one distinction a submit must keep. Re-posting after a crash serialises the journaled body again: the
  same signed order, the same hash; the venue refuses a second copy as a duplicate, which ``submit``
  answers by looking the order up, never by re-signing;
- **redeem** is the SDK's gasless redeem through the relayer (it needs a relayer or builder API
  key), after the Data API says a winning position is still redeemable.

The signed-in account (SDK client, L2 headers, collateral) is ``account.ClobAccount``. Only fsm_bot
types leave this module; no secret reaches an exception, a log line, the journal or a repr.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from typing import Callable

from polymarket import SecureClient
from polymarket._internal.actions.orders.context import resolve_order_exchange_address
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
from polymarket._internal.protocol import is_v2_position_id

from fsm_bot import failpoints
from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.adapters.polymarket import errors, orders
from fsm_bot.adapters.polymarket.account import ClobAccount
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.adapters.polymarket.lookups import OrderLookups
from fsm_bot.adapters.polymarket.public import PolymarketPublic
from fsm_bot.config import Config
from fsm_bot.errors import BotError, DataError, EnvironmentFailure
from fsm_bot.money import ZERO, dollars
from fsm_bot.adapters.polymarket.presigned import Presigned
from fsm_bot.ports import (Accepted, Candidates, Clock, Held, Market, OrderIntent, Outcome, Rejected, SignedOrder,
                           SubmitResult, Trade, slug)

BALANCE_REASONS = frozenset({"insufficient_balance", "insufficient_allowance"})
log = logging.getLogger("fsm_bot.venue")


class PreflightFailed(EnvironmentFailure):
    """A start-up check of ``--live`` failed; the message names what and how to fix it (exit 6: an outage may
    pass, so a service manager may try again)."""

    code = "preflight_failed"


class PolymarketVenue:
    """The ``Venue`` of ``--live``."""

    signs_ahead = True  # its signatures cost milliseconds: ``warm`` is given the next interval's candidates
    def __init__(self, public: PolymarketPublic, creds: Credentials, *, clob_url: str, gamma_url: str,
                 relayer_url: str, data_api_url: str, rpc_url: str, now_ms: Callable[[], int],
                 pause: Callable[[float], None], timeout_secs: float = 10.0, backoff: Backoff = Backoff(),
                 default_fee_rate: Decimal = Decimal("0.072"), min_order_usd: Decimal = Decimal(1),
                 relayer_poll_ms: int = 2000) -> None:
        self.public, self.creds = public, creds
        self.now_ms = now_ms  # the injected clock's: the only time this adapter reads (HMAC stamps included)
        self.default_fee_rate, self.min_order_usd = default_fee_rate, min_order_usd
        self.clob = Http(clob_url, name="clob", timeout_secs=timeout_secs, backoff=backoff, pause=pause)
        self.data = Http(data_api_url, name="data-api", timeout_secs=timeout_secs, backoff=backoff, pause=pause)
        config = dataclasses.replace(PRODUCTION_CONFIG, clob_url=clob_url, gamma_url=gamma_url, relayer_url=relayer_url,
                                     data_url=data_api_url, rpc_url=rpc_url, relayer_poll_frequency_ms=relayer_poll_ms)
        self.account = ClobAccount(creds, self.clob, create_environment(name="fsm-bot", config=config), now_ms)
        self.config, self.exchange = config, config.standard_exchange
        self.lookups = OrderLookups(self.account, self.data, public)
        self._balance_refusals = 0
        self._fee_rates: dict[str, Decimal] = {}  # order key -> its market's fee rate
        self.presigned = Presigned()  # the orders signed ahead
        self._balance: Decimal | None = None  # the collateral as last read

    @classmethod
    def from_config(cls, cfg: Config, creds: Credentials, public: PolymarketPublic, clock: Clock) -> "PolymarketVenue":
        return cls(public, creds, clob_url=cfg.clob_url, gamma_url=cfg.gamma_url, relayer_url=cfg.relayer_url,
                   data_api_url=cfg.data_api_url, rpc_url=cfg.rpc_url, timeout_secs=cfg.http_timeout_secs,
                   backoff=Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs),
                   now_ms=clock.now_ms, pause=clock.pause, default_fee_rate=cfg.fee_rate,
                   min_order_usd=cfg.min_order_usd)

    def __repr__(self) -> str:
        return f"PolymarketVenue(clob={self.clob.base_url!r}, creds={self.creds!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.account.secrets

    def sdk(self) -> SecureClient:
        return self.account.sdk()

    def close(self) -> None:
        self.account.close()
        self.clob.close()
        self.data.close()
        self.public.close()

    # -- the Venue port --------------------------------------------------------------------------------
    def market(self, start_ms: int) -> Market:
        return self.public.market(start_ms)

    def warm(self, start_ms: int, candidates: Candidates | None = None) -> None:
        """Ahead of the decision: Gamma's market facts, the market channel following both books, the SDK's order
        metadata of both tokens (two CLOB reads each, primed as ``create_market_order`` would: an internal of
        polymarket-client 0.14, which has no public call; a failure only means the decision fetches it), the
        ``candidates`` signed for ``prepare``, a balance a fill made stale read again, the order's connection opened."""
        info = self.public.warm(start_ms)
        client = self.sdk()
        with errors.sdk_errors("prime the order metadata", self.secrets):
            for token in (info.up_token, info.down_token):
                client._ctx.order_metadata.resolve_market(client._ctx, token_id=token)
        if candidates is not None:
            self.presigned.sign(candidates.intents(info.slug, info.up_token, info.down_token), self._sign)
        self.balance_usd()
        self.clob.prime()

    def resolution(self, market_slug: str) -> Outcome | None:
        return self.public.resolution(market_slug)

    def prepare(self, intent: OrderIntent) -> SignedOrder:
        """The order of ``intent``: signed in advance by ``warm`` (handed out once), else signed now."""
        return self.presigned.take(intent) or self._sign(intent)

    def _sign(self, intent: OrderIntent) -> SignedOrder:
        """Sign a FOK/FAK market BUY of ``amount_usd`` no dearer than ``limit_price`` (on the market's tick),
        keyed by its hash under the exchange the SDK signs it for (standard or neg-risk)."""
        info = self.public.info(intent.slug)
        if intent.token_id not in (info.up_token, info.down_token):
            raise DataError(f"order token {intent.token_id} is not a token of {intent.slug}", code="market_mismatch")
        amount = dollars(intent.amount_usd)
        if amount < self.min_order_usd:
            raise DataError(f"order amount ${amount} is below the ${self.min_order_usd} minimum", code="below_min_order")
        exchange = self._exchange(intent.token_id, intent.slug)
        cap = orders.on_tick(intent.limit_price, info.tick)
        client = self.sdk()
        with errors.sdk_errors(f"sign the order for {intent.slug}", self.secrets):
            signed = client.create_market_order(token_id=intent.token_id, side="BUY", amount=str(amount),
                                                max_price=str(cap), order_type=intent.order_type)
        payload = orders.wire_body(signed, client.credentials.key)
        key = orders.order_hash(payload, exchange=exchange)
        self._fee_rates[key] = self._fee_rate(intent.slug)
        return SignedOrder(key=key, intent=intent, payload=payload)

    def _exchange(self, token_id: str, market_slug: str) -> str:
        """The exchange whose EIP-712 domain the SDK signs this token's orders under, as the SDK decides it from
        the market's metadata; a protocol-v2 position (another struct and domain, version "3") is refused."""
        if is_v2_position_id(token_id):
            raise DataError(f"{market_slug}: a protocol-v2 market (position ids, exchange v3) is not supported",
                            code="unsupported_market")
        client = self.sdk()
        with errors.sdk_errors("read the market's order metadata", self.secrets):
            meta = client._ctx.order_metadata.resolve_market(client._ctx, token_id=token_id)
        return str(resolve_order_exchange_address(self.config, asset_id=token_id, neg_risk=bool(meta.neg_risk)))

    def submit(self, order: SignedOrder) -> SubmitResult:
        """Post the journaled body once. A reply decides; no reply is ``UnknownOutcome``."""
        body = orders.body_bytes(order.payload)
        rate = self._fee_rates.get(order.key) or self._fee_rate(order.intent.slug)
        status, reply = self.clob.post("/order", body, self.account.l2("POST", "/order", body))
        refused = errors.submit_status(status, reply)
        result = (Rejected(key=order.key, reason=refused) if refused
                  else orders.parse_post_reply(reply, order.key, rate, order.payload))
        if isinstance(result, Accepted):
            self._balance = None  # spent: read again before the next stake
            if failpoints.hit("venue.accepted"):
                failpoints.crash()  # the crash tests: the venue holds the order, its answer is never journaled
        if isinstance(result, Rejected) and result.reason in BALANCE_REASONS:
            self._balance_refused(order)
        else:
            self._balance_refusals = 0
        return result

    def _balance_refused(self, order: SignedOrder) -> None:
        """The CLOB refused for balance: refresh its cache (it counts matched orders that never settled), so the
        next read is true; a refusal that persists although the wallet holds enough is reported."""
        self._balance_refusals += 1
        try:
            balance = self.balance_usd(fresh=True)
        except BotError as exc:
            log.warning("the CLOB refused order %s for balance; its balance could not be re-read (%s)", order.key, exc)
            return
        if self._balance_refusals >= 2 and balance >= order.intent.amount_usd:
            log.error("the CLOB refused %d orders in a row for 'not enough balance / allowance' although the wallet "
                      "holds %s pUSD: it counts matched orders that never settled. The bot refreshed the balance "
                      "cache (/balance-allowance/update) after each; if this persists, check the open orders and "
                      "recent trades on polymarket.com, re-approve the exchange's allowance, or wait for the "
                      "venue to release the lock", self._balance_refusals, balance)

    def lookup(self, order: SignedOrder) -> Accepted | Rejected | None:
        return self.lookups.lookup(order, self._fee_rates.get(order.key) or self._fee_rate(order.intent.slug))

    def trades(self, order: SignedOrder, order_id: str, known: tuple[Trade, ...]) -> tuple[Trade, ...]:
        return self.lookups.trades(order, order_id, known)

    def position(self, order: SignedOrder) -> Decimal | None:
        return self.lookups.position(order)

    def holdings(self, market_slugs: tuple[str, ...]) -> tuple[Held, ...]:
        return self.lookups.holdings(market_slugs, self._fee_rate)

    def _fee_rate(self, market_slug: str) -> Decimal:
        """The market's own taker rate; the default when it cannot be read now."""
        try:
            return self.public.fee_rate(self.public.info(market_slug))
        except BotError:
            return self.default_fee_rate

    # -- money -----------------------------------------------------------------------------------------
    def balance_usd(self, fresh: bool = False) -> Decimal | None:
        """The wallet's collateral (pUSD) as the CLOB sees it, in dollars: read once and kept until a fill, a redeem
        or a balance refusal (then read again, before the next interval, by ``warm``); ``fresh``: the CLOB's own
        cache refreshed and read now."""
        if fresh:
            self.account.refresh()
            self._balance = None
        if self._balance is None:
            self._balance = self.account.funds()[0]
        return self._balance

    def redeem(self, market_slug: str) -> str | None:
        """Redeem the wallet's winning tokens of a resolved market (gasless); the transaction hash, or
        None when the market is unresolved or nothing is left to redeem (lost, or redeemed already)."""
        outcome = self.public.resolution(market_slug)
        if outcome is None:
            return None
        info = self.public.info(market_slug)
        if not self._redeemable(info.condition_id, info.up_token if outcome == "UP" else info.down_token):
            return None
        with errors.sdk_errors(f"redeem {market_slug}", self.secrets):
            receipt = self.sdk().redeem_positions(condition_id=info.condition_id).wait()
        self.account.refresh()
        self._balance = None
        return str(receipt.transaction_hash)

    def _redeemable(self, condition_id: str, winning_token: str) -> bool:
        """Whether the Data API shows a redeemable position of ``winning_token`` in the wallet."""
        rows = self.data.get("/positions", {"user": str(self.sdk().wallet), "market": condition_id})
        if not isinstance(rows, list):
            raise DataError(f"data-api /positions: expected a list, got {type(rows).__name__}", code="bad_payload")
        return any(isinstance(r, dict) and str(r.get("asset")) == winning_token and r.get("redeemable") is True
                   and orders.number(r.get("size", 0), "position size") > ZERO for r in rows)

    # -- start-up checks -------------------------------------------------------------------------------
    def preflight(self, next_start_ms: int) -> list[str]:
        """Connectivity, credentials, collateral and allowance, and the next market; ``PreflightFailed``
        names the first check that fails. Returns notes for the operator."""
        self._reachable()
        client = self._signed_in()
        balance, allowances = self._funds()
        if balance <= ZERO:
            raise PreflightFailed(f"preflight: wallet {client.wallet} holds 0 pUSD: deposit pUSD (collateral) first")
        if allowances.get(self.exchange.lower(), 0) <= 0:
            raise PreflightFailed(f"preflight: wallet {client.wallet} has no pUSD allowance for the exchange "
                                  f"{self.exchange}: approve it (SecureClient.setup_trading_approvals)")
        self._next_market(next_start_ms)
        return self._notes(client, balance)

    def _reachable(self) -> None:
        try:
            self.clob.get("/ok")
        except BotError as exc:
            raise PreflightFailed(f"preflight: the CLOB at {self.clob.base_url} is not reachable ({exc})") from None

    def _signed_in(self) -> SecureClient:
        try:
            return self.sdk()
        except BotError as exc:
            raise PreflightFailed(f"preflight: the credentials were refused: {exc}") from None

    def _funds(self) -> tuple[Decimal, dict[str, int]]:
        try:
            self.account.refresh()
            return self.account.funds()
        except BotError as exc:
            raise PreflightFailed(f"preflight: cannot read the collateral balance and allowance ({exc})") from None

    def _next_market(self, next_start_ms: int) -> None:
        market_slug = slug(next_start_ms, self.public.minutes)
        try:
            self.public.warm(next_start_ms)  # its facts, and its books followed from now
        except BotError as exc:
            raise PreflightFailed(f"preflight: the next market {market_slug} is not available on Gamma "
                                  f"at {self.public.gamma.base_url} ({exc})") from None

    def _notes(self, client: SecureClient, balance: Decimal) -> list[str]:
        notes = [f"live: wallet {client.wallet} ({client.wallet_type}), signer {client.signer}, "
                 f"collateral {balance} pUSD"]
        if not self.creds.relayer_api_key:
            notes.append("live: no relayer API key: winning positions will not be redeemed by the bot "
                         "(redeem them yourself, or rely on Polymarket's auto-redeem)")
        return notes
