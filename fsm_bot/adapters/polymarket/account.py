"""The ``--live`` account on the CLOB: the signed-in SDK client, the L2 headers of our own requests, and the
wallet's collateral as the CLOB sees it.

The SDK client is created on first use (``preflight`` does it at start), because creating it talks to the
relayer and derives or validates the CLOB API key. No secret reaches an exception, a log line or a repr.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from polymarket import SecureClient
from polymarket._internal.hmac import build_hmac_signature
from polymarket._internal.wallet import signature_type_for
from polymarket.auth import RelayerApiKey
from polymarket.models.clob import ApiKeyCreds

from fsm_bot.adapters.http import Http
from fsm_bot.adapters.polymarket import errors, orders
from fsm_bot.adapters.polymarket.credentials import SIGNATURE_TYPES, Credentials
from fsm_bot.errors import DataError, FatalError


class ClobAccount:
    """The wallet's CLOB session: the SDK client, signed requests, collateral."""

    def __init__(self, creds: Credentials, clob: Http, environment: Any, now_ms: Callable[[], int]) -> None:
        self.creds, self.clob, self.environment, self.now_ms = creds, clob, environment, now_ms
        self._client: SecureClient | None = None

    def __repr__(self) -> str:
        return f"ClobAccount(clob={self.clob.base_url!r}, creds={self.creds!r})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def secrets(self) -> tuple[str, ...]:
        derived = self._client.credentials if self._client is not None else None
        extra = (derived.secret, derived.passphrase) if derived is not None else ()
        return self.creds.secrets + tuple(v for v in extra if v)

    def sdk(self) -> SecureClient:
        """The signed-in SDK client (created once: relayer wallet check, CLOB API key derive/validate)."""
        if self._client is None:
            self._client = self._sign_in()
        return self._client

    def _sign_in(self, derive: bool = False) -> SecureClient:
        c = self.creds
        given = ApiKeyCreds(key=c.api_key, secret=c.api_secret, passphrase=c.api_passphrase) \
            if c.api_key and not derive else None
        relayer = (RelayerApiKey(key=c.relayer_api_key, address=c.relayer_address)
                   if c.relayer_api_key and c.relayer_address else None)
        try:
            with errors.sdk_errors("sign in to Polymarket", self.creds.secrets):
                client = SecureClient.create(private_key=c.private_key, wallet=self._wallet(), credentials=given,
                                             environment=self.environment, api_key=relayer)
        except DataError as exc:
            raise FatalError(f"{exc} (check FSM_BOT_PRIVATE_KEY, FSM_BOT_WALLET and the CLOB API credentials)",
                             code="bad_credentials") from None
        self._check_signature_type(client)
        return client

    def _wallet(self) -> str | None:
        if self.creds.wallet is not None or self.creds.signature_type != 0:
            return self.creds.wallet
        from eth_account import Account
        return Account.from_key(self.creds.private_key).address  # an EOA trades for itself

    def _check_signature_type(self, client: SecureClient) -> None:
        got = signature_type_for(client.wallet_type)
        if got != self.creds.signature_type:
            client.close()
            raise FatalError(f"wallet {client.wallet} is a {client.wallet_type} (signature type {got}), but "
                             f"FSM_BOT_SIGNATURE_TYPE is {self.creds.signature_type} "
                             f"({SIGNATURE_TYPES.get(self.creds.signature_type, '?')})", code="bad_credentials")

    def l2(self, method: str, path: str, body: bytes | None = None) -> dict[str, str]:
        """The CLOB's L2 headers for one request (the SDK's HMAC over ts + method + path + body)."""
        client = self.sdk()
        creds, ts = client.credentials, self.now_ms() // 1000
        with errors.sdk_errors("sign a CLOB request", self.secrets):
            signature = build_hmac_signature(secret=creds.secret, timestamp=ts, method=method, path=path,
                                             body=body.decode("utf-8") if body is not None else None)
        return {"POLY_ADDRESS": str(client.signer), "POLY_API_KEY": creds.key, "POLY_PASSPHRASE": creds.passphrase,
                "POLY_SIGNATURE": signature, "POLY_TIMESTAMP": str(ts)}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """An authenticated CLOB read, retried by ``Http``. A refused key (401/403) is derived again from the
        private key once and the read asked again; refused again, it is a ``FatalError``."""
        try:
            return self._get(path, params)
        except FatalError as exc:
            if exc.code != "unauthorized":
                raise
            self.rederive()
            return self._get(path, params)

    def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        try:
            return self.clob.get(path, params, headers=self.l2("GET", path))
        except DataError as exc:
            raise errors.from_http(exc) from None

    def rederive(self) -> None:
        """Sign in again, the CLOB API credentials derived afresh from the private key."""
        if self._client is not None:
            self._client.close()
        self._client = self._sign_in(derive=True)

    def collateral_params(self) -> dict[str, Any]:
        return {"asset_type": "COLLATERAL", "signature_type": signature_type_for(self.sdk().wallet_type)}

    def funds(self) -> tuple[Decimal, dict[str, int]]:
        """(collateral in dollars, allowances by lowercase spender) as the CLOB sees them now."""
        return collateral(self.get("/balance-allowance", self.collateral_params()))

    def refresh(self) -> None:
        """Ask the CLOB to re-read the wallet's on-chain balance and allowance (it caches them)."""
        self.get("/balance-allowance/update", self.collateral_params())


def collateral(body: Any) -> tuple[Decimal, dict[str, int]]:
    """(balance in dollars, allowances by lowercase spender in 6-dp units) of ``/balance-allowance``."""
    if not isinstance(body, dict):
        raise DataError(f"/balance-allowance: expected an object, got {type(body).__name__}", code="bad_payload")
    units = Decimal(_units(body.get("balance"), "balance"))  # 6-dp units: $100,000 is 1e11, past any share bound
    raw = body.get("allowances") or {}
    if not isinstance(raw, dict):
        raise DataError("/balance-allowance: allowances is not an object", code="bad_payload")
    return units / orders.UNITS, {str(k).lower(): _units(v, f"allowance {k}") for k, v in raw.items()}


def _units(value: Any, field: str) -> int:
    """A non-negative whole number of 6-dp units (an allowance may be 2**256 - 1)."""
    text = str(value)
    if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or len(text) > 78:
        raise DataError(f"/balance-allowance: {field} = {text[:80]!r} is not a whole number of units", code="bad_payload")
    return int(text)
