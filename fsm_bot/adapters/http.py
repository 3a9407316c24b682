"""HTTP for the real adapters: one JSON client with the house's retry rules and error kinds.

- Reads (``get``) are retried by tenacity on transient failures -- connection errors, timeouts,
  5xx, 429 (honouring ``Retry-After``) and 425 (Polymarket's matching engine restarting) -- at most
  ``attempts`` times with exponential backoff; what still fails is a ``TransientError``.
- Writes (``post``) are never retried here: a request that never left (the connection was refused)
  is a ``TransientError``; one that may have reached the server but got no answer (read timeout,
  reset after sending) is an ``UnknownOutcome``, so the caller looks it up instead of re-sending.
  They go on a connection kept open for them (``keepalive``), a fraction of ``requests``' cost.
- Any other 4xx, and a body that is not JSON, is a ``DataError`` naming the URL and the status.

Backoff waits go through ``pause(secs)``, so a test clock that runs X times faster scales them too.
Messages carry the method, path and status, never headers or bodies (where credentials travel).
"""

from __future__ import annotations

import email.utils
import http.client
import time
from typing import Any, Callable, Mapping

import orjson
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from fsm_bot.adapters.keepalive import KeptConnection, NotSent
from fsm_bot.errors import DataError, TransientError, UnknownOutcome
from fsm_bot.values import frozen

RETRY_STATUSES = frozenset({425, 429, 500, 502, 503, 504})


class RetryLater(TransientError):
    """A transient failure that told us when to come back (``Retry-After``)."""

    def __init__(self, message: str, *, code: str, retry_after_secs: float | None) -> None:
        super().__init__(message, code=code)
        self.retry_after_secs = retry_after_secs


@frozen
class Backoff:
    attempts: int = 3
    initial_secs: float = 0.5
    max_secs: float = 4.0

    def wait(self, state: RetryCallState) -> float:
        """Exponential (initial, 2x initial, ... up to max), or the server's Retry-After when it is longer."""
        secs = min(self.initial_secs * 2 ** (state.attempt_number - 1), self.max_secs)
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after_secs", None)
        return max(secs, after) if after is not None else secs


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        secs = when.timestamp() - time.time()
    if secs != secs or secs < 0:
        return 0.0 if secs < 0 else None
    return min(secs, 3600.0)


class Http:
    """A JSON client for one base URL."""

    def __init__(self, base_url: str, *, name: str, timeout_secs: float = 10.0, backoff: Backoff = Backoff(),
                 pause: Callable[[float], None] = time.sleep, session: requests.Session | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.name, self.timeout_secs, self.backoff, self.pause = name, timeout_secs, backoff, pause
        self.session = session or requests.Session()
        self.write_headers = {"Accept": "application/json", "User-Agent": "fsm-bot", **(headers or {})}
        self.session.headers.update(self.write_headers)
        self.kept = KeptConnection.for_url(self.base_url, timeout_secs)

    def close(self) -> None:
        self.session.close()
        if self.kept is not None:
            self.kept.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- reads ------------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` and return its JSON, retried on transient failures."""
        retrying = Retrying(stop=stop_after_attempt(self.backoff.attempts), wait=self.backoff.wait,
                            retry=retry_if_exception_type(TransientError), sleep=self.pause, reraise=True)
        return retrying(self._get_once, path, params, headers)

    def _get_once(self, path: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None) -> Any:
        what = f"{self.name} GET {path}"
        try:
            response = self.session.get(self.url(path), params=params, headers=headers, timeout=self.timeout_secs)
        except requests.Timeout:
            raise TransientError(f"{what}: no answer within {self.timeout_secs:g} s", code="timeout") from None
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {_reason(exc)}", code="network") from None
        return self._json(what, response)

    # -- writes -----------------------------------------------------------------------------------
    def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """POST ``body`` once; returns (status, JSON). Never retried: see the module's docstring. It goes on the
        connection kept open for writes (``KeptConnection``) unless a proxy applies."""
        what = f"{self.name} POST {path}"
        sent = {**self.write_headers, "Content-Type": "application/json", **(headers or {})}
        if self.kept is None:
            return self._post_via_requests(what, path, body, sent)
        try:
            status, data = self.kept.request("POST", path, body, sent)
        except NotSent as exc:
            raise TransientError(f"{what}: not sent ({exc})", code="network") from None
        except TimeoutError:
            raise UnknownOutcome(f"{what}: sent, but no answer within {self.timeout_secs:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise UnknownOutcome(f"{what}: sent, but the connection failed before an answer "
                                 f"({type(exc).__name__})") from None
        try:
            payload = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            payload = None
        return status, payload

    def prime(self) -> None:
        """Open the write connection ahead of a post that must not wait for a handshake."""
        if self.kept is not None:
            self.kept.prime()

    def _post_via_requests(self, what: str, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
        try:
            response = self.session.post(self.url(path), data=body, timeout=self.timeout_secs, headers=headers)
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise TransientError(f"{what}: not sent ({_reason(exc)})", code="network") from None
            raise UnknownOutcome(f"{what}: sent, but the connection failed before an answer ({_reason(exc)})") from None
        except requests.Timeout:
            raise UnknownOutcome(f"{what}: sent, but no answer within {self.timeout_secs:g} s") from None
        except requests.RequestException as exc:
            raise UnknownOutcome(f"{what}: sent, but {_reason(exc)}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return response.status_code, payload

    # -- responses ----------------------------------------------------------------------------------
    def _json(self, what: str, response: requests.Response) -> Any:
        status = response.status_code
        if status in RETRY_STATUSES:
            code = {425: "engine_restarting", 429: "rate_limited"}.get(status, "server_error")
            raise RetryLater(f"{what}: HTTP {status}", code=code,
                             retry_after_secs=retry_after(response.headers.get("Retry-After")))
        if status == 404:
            raise DataError(f"{what}: HTTP 404 (not found)", code="not_found")
        if status >= 400:
            raise DataError(f"{what}: HTTP {status}", code=f"http_{status}")
        try:
            return response.json()
        except ValueError:
            raise DataError(f"{what}: the body is not JSON", code="bad_payload") from None


def _never_sent(exc: requests.ConnectionError) -> bool:
    """A refused or unresolvable connection: the request cannot have reached the server."""
    text = repr(exc)
    return any(marker in text for marker in ("NewConnectionError", "ConnectTimeout", "Connection refused",
                                             "Name or service not known", "Failed to resolve"))


def _reason(exc: BaseException) -> str:
    """A short cause without URLs' query strings or headers."""
    name = type(exc).__name__
    for marker in ("Connection refused", "RemoteDisconnected", "Connection reset", "Read timed out",
                   "Connection aborted", "IncompleteRead", "Name or service not known"):
        if marker in repr(exc):
            return f"{name}: {marker.lower()}"
    return name
