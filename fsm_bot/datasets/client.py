"""GETs for the downloads, with the house's retry rules (``adapters/http.py``) and the answer's headers kept.

- Connection errors, timeouts, 5xx, 429 and 418 are retried by tenacity with exponential backoff, at most
  ``backoff.attempts`` times; a 429 or 418 waits at least its ``Retry-After``. A ``Retry-After`` longer
  than ``max_wait_secs`` (Binance's 418 is an IP ban of minutes to days) is not waited out: it is a
  ``TransientError`` saying how long, at once.
- A 404 is an answer (``None``): a dump file not published yet, a market the server does not know.
- Any other 4xx is a ``DataError`` naming the URL path, the status and the server's short message.
- What still fails after the retries is a ``TransientError`` naming the server and the cause.

Waits go through ``pause(secs)``, so a test can record them instead of sleeping.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Mapping

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from fsm_bot.adapters.coingecko import shown
from fsm_bot.adapters.http import Backoff, RetryLater, _reason, retry_after
from fsm_bot.errors import DataError, TransientError
from fsm_bot.values import frozen

RETRY_STATUSES = frozenset({418, 429, 500, 502, 503, 504})
DOWNLOAD_BACKOFF = Backoff(attempts=5, initial_secs=1.0, max_secs=30.0)


@frozen
class Answer:
    """A 200 answer: its body and headers."""

    body: bytes
    headers: Mapping[str, str]

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise DataError(f"{what}: the body is not JSON ({shown(self.body)})", code="bad_payload") from None


class Fetcher:
    """GETs against one base URL (``name`` is how messages call the server)."""

    def __init__(self, base_url: str, *, name: str, timeout_secs: float = 30.0, backoff: Backoff = DOWNLOAD_BACKOFF,
                 max_wait_secs: float = 600.0, pause: Callable[[float], None] = time.sleep) -> None:
        self.base_url, self.name = base_url.rstrip("/"), name
        self.timeout_secs, self.backoff, self.max_wait_secs, self.pause = timeout_secs, backoff, max_wait_secs, pause
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "fsm-bot"})
        self.waits: list[float] = []  # every pause taken before a retry, in seconds

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer | None:
        """``path``'s answer, or None for a 404; retried on transient failures."""
        retrying = Retrying(stop=stop_after_attempt(self.backoff.attempts), wait=self.backoff.wait,
                            retry=retry_if_exception_type(TransientError), sleep=self._wait, reraise=True)
        try:
            return retrying(self._once, path, params)
        except TransientError as exc:
            if getattr(exc, "code", "") == "banned":
                raise
            tries = self.backoff.attempts
            raise TransientError(f"{exc} (after {tries} attempt{'s' if tries > 1 else ''})", code=exc.code) from None

    def _wait(self, secs: float) -> None:
        self.waits.append(secs)
        self.pause(secs)

    def _once(self, path: str, params: Mapping[str, Any] | None) -> Answer | None:
        what = f"{self.name} GET {path}"
        try:
            response = self.session.get(self.base_url + path, params=params, timeout=self.timeout_secs)
        except requests.Timeout:
            raise TransientError(f"{what}: no answer within {self.timeout_secs:g} s", code="timeout") from None
        except requests.RequestException as exc:
            raise TransientError(f"{what}: {_reason(exc)}", code="network") from None
        status = response.status_code
        if status in RETRY_STATUSES:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None and after > self.max_wait_secs:
                raise TransientError(f"{what}: HTTP {status}, Retry-After {after:g} s (longer than "
                                     f"{self.max_wait_secs:g} s): try again later", code="banned")
            raise RetryLater(f"{what}: HTTP {status}", code="rate_limited" if status in (418, 429) else "server_error",
                             retry_after_secs=after)
        if status == 404:
            return None
        if status >= 400:
            raise DataError(f"{what}: HTTP {status} ({shown(response.text[:200])})", code=f"http_{status}")
        return Answer(response.content, response.headers)
