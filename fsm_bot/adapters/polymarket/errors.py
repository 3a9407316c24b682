"""The one place where Polymarket's failures become fsm_bot's error kinds.

Three sources reach the live venue, and each is mapped here and nowhere else:

- the SDK's exceptions (``polymarket.errors``), raised while it derives credentials, signs an
  order, reads its market metadata or redeems: ``sdk_errors(what)`` turns each class into a
  ``DataError``, ``TransientError`` or ``FatalError`` (``SDK_KINDS`` is the table; a test fails when
  a class the SDK exports is missing from it);
- the HTTP status of a ``POST /order`` answer: ``submit_status(status, body)``. A reply is a proof
  that the venue decided something, so 400/425/429 are refusals (``Rejected``), 401/403 halt, and
  a 5xx (other than a stated cancel-only or post-only mode) may hide a placed order: ``UnknownOutcome``;
- the venue's error strings, in a 4xx body (``{"error": ...}``) or a 200 with ``success: false``
  (``errorMsg``): ``reason(message)`` gives a short reason code for ``Rejected``, or raises
  ``FatalError`` for the ones that mean the account is misconfigured (every later order would fail
  the same way), and ``DUPLICATE`` for "this order is already placed" (the caller looks it up:
  a duplicate is a proof that the order exists, never a rejection).

No message built here carries a secret: ``redact`` removes the values the venue passes in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from polymarket import errors as sdk

from fsm_bot.errors import BotError, DataError, FatalError, TransientError, UnknownOutcome
from fsm_bot.adapters.http import RetryLater

DUPLICATE = "duplicate"

FATAL_MESSAGES: tuple[tuple[str, str], ...] = (
    ("invalid signature", "invalid_signature"),
    ("signer address has to be the address of the api key", "signer_not_api_key"),
    ("maker address not allowed", "deposit_wallet_required"),
    ("order_version_mismatch", "order_version_mismatch"),
    ("invalid order version", "order_version_mismatch"),
    ("invalid api key", "unauthorized"),
    ("unauthorized", "unauthorized"),
    ("restricted in your region", "geoblocked"),
    ("geoblock", "geoblocked"),
)
"""Venue messages that no retry and no later interval can cure: the session halts, naming the cause."""

REJECT_MESSAGES: tuple[tuple[str, str], ...] = (
    ("already been placed", DUPLICATE),
    ("duplicated", DUPLICATE),
    ("fok orders are fully filled or killed", "fok_not_filled"),
    ("couldn't be fully filled", "fok_not_filled"),
    ("no orders found to match with fak", "fak_not_filled"),
    ("not enough balance", "insufficient_balance"),
    ("allowance", "insufficient_allowance"),
    ("not yet ready to process new orders", "market_not_ready"),
    ("market_not_ready", "market_not_ready"),
    ("market is closed", "market_closed"),
    ("closed market", "market_closed"),
    ("post-only mode", "post_only_mode"),
    ("post_only_mode", "post_only_mode"),
    ("cancel-only", "cancel_only"),
    ("invalid_order_min_tick_size", "invalid_tick"),
    ("tick size", "invalid_tick"),
    ("invalid_order_min_size", "below_min_size"),
    ("lower than the minimum", "below_min_size"),
    ("invalid amount for a marketable", "below_min_order"),
    ("min size", "below_min_size"),
    ("invalid nonce", "invalid_nonce"),
    ("invalid expiration", "invalid_expiration"),
    ("execution_error", "execution_error"),
)
"""Venue messages (case-insensitive substrings, first match wins) and their ``Rejected`` reasons."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first, so a key's 0x-less form goes too)."""
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def reason(message: str) -> str:
    """The ``Rejected`` reason of a venue error message; ``FatalError`` for a misconfigured account."""
    low = message.lower()
    for marker, code in FATAL_MESSAGES:
        if marker in low:
            raise FatalError(f"Polymarket refused the order: {message[:200]} ({code})", code=code)
    for marker, code in REJECT_MESSAGES:
        if marker in low:
            return code
    return "venue_rejected"


def error_message(body: Any) -> str:
    """The error text of a venue reply: ``error`` (4xx bodies) or ``errorMsg`` (order responses)."""
    if isinstance(body, dict):
        for field in ("error", "errorMsg", "message"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
    return ""


def submit_status(status: int, body: Any) -> str | None:
    """What a ``POST /order`` status proves: None for 2xx (read the body), else a reason code.

    Raises ``FatalError`` for 401/403 (and fatal messages) and ``UnknownOutcome`` for a 5xx that may
    hide a placed order.
    """
    if 200 <= status < 300:
        return None
    message = error_message(body)
    if status in (401, 403):
        code = "unauthorized" if status == 401 else "forbidden"
        raise FatalError(f"Polymarket POST /order: HTTP {status} ({message[:200] or code})", code=code)
    if status == 425:
        return "engine_restarting"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        stated = reason(message) if message else ""
        if stated in ("cancel_only", "post_only_mode"):
            return stated
        raise UnknownOutcome(f"Polymarket POST /order: HTTP {status}; the order may have been placed")
    return reason(message) if message else f"http_{status}"


def from_http(exc: DataError) -> BotError:
    """A read's ``DataError`` from ``Http``, with auth failures promoted to ``FatalError``."""
    if exc.code in ("http_401", "http_403"):
        return FatalError(f"{exc} (the CLOB API credentials were refused)", code="unauthorized")
    return exc


# -- the SDK's exceptions ---------------------------------------------------------------------------
SDK_KINDS: dict[type[BaseException], type[BotError]] = {
    sdk.UserInputError: DataError,
    sdk.UnexpectedResponseError: DataError,
    sdk.PaginationLimitError: DataError,
    sdk.TransportError: TransientError,
    sdk.PerpsCancelRetryError: DataError,
    sdk.ConnectionLostError: TransientError,
    sdk.RequestRejectedError: DataError,  # refined by status in from_sdk
    sdk.OrderHeartbeatMismatchError: DataError,
    sdk.AutoCancelDailyLimitError: DataError,
    sdk.RateLimitError: TransientError,
    sdk.TimeoutError: TransientError,
    sdk.TransactionFailedError: DataError,
    sdk.CancelledSigningError: FatalError,
    sdk.InsufficientLiquidityError: DataError,
    sdk.SigningError: FatalError,
    sdk.InsufficientAllowanceError: FatalError,
    sdk.PolymarketError: DataError,
}
"""Every exception class ``polymarket.errors`` exports, and the kind it becomes."""

SDK_CODES: dict[type[BaseException], str] = {
    sdk.TransportError: "network",
    sdk.RateLimitError: "rate_limited",
    sdk.TimeoutError: "timeout",
    sdk.TransactionFailedError: "transaction_failed",
    sdk.InsufficientLiquidityError: "no_liquidity",
    sdk.InsufficientAllowanceError: "no_allowance",
    sdk.SigningError: "signing_failed",
    sdk.CancelledSigningError: "signing_failed",
    sdk.UserInputError: "sdk_refused",
    sdk.UnexpectedResponseError: "bad_payload",
}


def from_sdk(exc: BaseException, what: str, secrets: Iterable[str] = ()) -> BotError:
    """The fsm_bot error for one SDK exception raised while doing ``what``."""
    text = redact(f"{what}: {type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, sdk.RequestRejectedError):
        return _rejected(exc, text)
    if isinstance(exc, sdk.RateLimitError):
        return RetryLater(text, code="rate_limited", retry_after_secs=exc.retry_after)
    kind = next((k for cls, k in SDK_KINDS.items() if isinstance(exc, cls)), DataError)
    code = next((c for cls, c in SDK_CODES.items() if isinstance(exc, cls)), None)
    return kind(text, code=code)


def _rejected(exc: sdk.RequestRejectedError, text: str) -> BotError:
    status = exc.status
    if status in (401, 403):
        return FatalError(text, code="unauthorized" if status == 401 else "forbidden")
    if status in (425, 429) or status >= 500:
        code = {425: "engine_restarting", 429: "rate_limited"}.get(status, "server_error")
        return RetryLater(text, code=code, retry_after_secs=exc.retry_after)
    return DataError(text, code=f"http_{status}")


@contextmanager
def sdk_errors(what: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Run an SDK call; its exceptions leave as fsm_bot errors (the SDK's traceback is not chained,
    so no frame holding a key reaches a log)."""
    try:
        yield
    except sdk.PolymarketError as exc:
        raise from_sdk(exc, what, tuple(secrets)) from None
