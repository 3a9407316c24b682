"""CoinGecko, the last resort: a spot price for the journal when Binance is down, and a coarse
reference outcome when Binance cannot say how an interval ended.

CoinGecko is never a candle source: its points are irregular (about every 5 minutes for the last
day, hourly further back) and carry no open, high, low or volume, so indicators computed from
them would be made up. ``BinanceFeed`` uses it only to *name* the market in a skip's message and,
for the provisional outcome, only when points lie close to both ends of the interval.

Endpoints (public, no key): ``GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd`` ->
``{"bitcoin": {"usd": 67000.1}}`` and ``GET /api/v3/coins/bitcoin/market_chart/range?vs_currency=usd
&from=<unix s>&to=<unix s>`` -> ``{"prices": [[ms, price], ...], "market_caps": ..., "total_volumes": ...}``.

The number checks (``number``, ``price``, ``epoch_ms``) are the ones the Binance parsers use too: one
definition of a valid price for both sources.
"""

from __future__ import annotations

import math
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from fsm_bot.adapters.http import Backoff, Http
from fsm_bot.errors import DataError
from fsm_bot.ports import Outcome

if TYPE_CHECKING:
    from fsm_bot.config import Config

PRICE_MAX_USD = 1_000_000.0
"""A BTC price above this is invalid data (SPEC 5)."""

NEAR_MS = 120_000
"""A CoinGecko point stands for an interval's end only if it lies this close to it."""

_EPOCH_MIN_MS = 1_230_768_000_000  # 2009-01-01: no BTC price before
_EPOCH_MAX_MS = 4_102_444_800_000  # 2100-01-01
_DECIMAL = re.compile(r"-?\d{1,20}(\.\d{1,20})?")


def number(value: Any, name: str, code: str) -> float:
    """A finite float from a JSON number or a plain decimal string (Binance sends strings).

    Refuses booleans (``True`` is an int in Python), exponents, ``NaN``/``Infinity`` spellings and
    anything else, so a malformed field is a ``DataError`` naming it, never a TypeError."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:
            result = math.inf
        if math.isfinite(result):
            return result
    raise DataError(f"{name}: expected a finite number, got {shown(value)}", code=code)


def price(value: Any, name: str, code: str) -> float:
    """A BTC price in (0, 1,000,000]."""
    result = number(value, name, code)
    if not 0 < result <= PRICE_MAX_USD:
        raise DataError(f"{name}: price {result!r} outside (0, {PRICE_MAX_USD:,.0f}]", code=code)
    return result


def epoch_ms(value: Any, name: str, code: str) -> int:
    """A timestamp in ms between 2009 and 2100 (an int; CoinGecko's floats are accepted when whole)."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataError(f"{name}: expected a timestamp in ms, got {shown(value)}", code=code)
    if not _EPOCH_MIN_MS <= value < _EPOCH_MAX_MS:
        raise DataError(f"{name}: timestamp {value} ms is not between 2009 and 2100", code=code)
    return value


def shown(value: Any) -> str:
    """A short rendering of a bad value for a message (a huge payload must not flood the log)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- parsers -------------------------------------------------------------------------------------
def parse_simple_price(payload: Any) -> float:
    """``{"bitcoin": {"usd": 67000.1}}`` -> 67000.1."""
    coin = payload.get("bitcoin") if isinstance(payload, dict) else None
    if not isinstance(coin, dict) or "usd" not in coin:
        raise DataError(f"CoinGecko simple/price: expected {{'bitcoin': {{'usd': ...}}}}, got {shown(payload)}",
                        code="bad_coingecko")
    return price(coin["usd"], "CoinGecko bitcoin.usd", "bad_coingecko")


def parse_market_chart(payload: Any) -> list[tuple[int, float]]:
    """``{"prices": [[ms, price], ...]}`` -> [(ms, price), ...] sorted by time."""
    points = payload.get("prices") if isinstance(payload, dict) else None
    if not isinstance(points, list):
        raise DataError(f"CoinGecko market_chart: expected a 'prices' list, got {shown(payload)}", code="bad_coingecko")
    return sorted(_point(p, i) for i, p in enumerate(points))


def _point(point: Any, i: int) -> tuple[int, float]:
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise DataError(f"CoinGecko prices[{i}]: expected [ms, price], got {shown(point)}", code="bad_coingecko")
    return (epoch_ms(point[0], f"CoinGecko prices[{i}][0]", "bad_coingecko"),
            price(point[1], f"CoinGecko prices[{i}][1]", "bad_coingecko"))


def nearest(points: list[tuple[int, float]], t_ms: int, within_ms: int = NEAR_MS) -> tuple[int, float] | None:
    """The point closest to ``t_ms``, if one lies within ``within_ms`` of it."""
    best = min(points, key=lambda p: abs(p[0] - t_ms), default=None)
    return best if best is not None and abs(best[0] - t_ms) <= within_ms else None


def outcome(points: list[tuple[int, float]], start_ms: int, end_ms: int) -> Outcome | None:
    """UP if the price nearest the end >= the price nearest the start; None unless two distinct
    points lie within ``NEAR_MS`` of each end (a single point cannot tell a move)."""
    first, last = nearest(points, start_ms), nearest(points, end_ms)
    if first is None or last is None or first[0] >= last[0]:
        return None
    return "UP" if last[1] >= first[1] else "DOWN"


# -- the client ----------------------------------------------------------------------------------
class CoinGecko:
    """The two CoinGecko reads fsm-bot makes, through the house's retrying JSON client."""

    def __init__(self, base_url: str, *, timeout_secs: float = 10.0, backoff: Backoff = Backoff(),
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.http = Http(base_url, name="coingecko", timeout_secs=timeout_secs, backoff=backoff, pause=pause)

    @classmethod
    def from_config(cls, cfg: "Config", pause: Callable[[float], None]) -> "CoinGecko":
        return cls(cfg.coingecko_url, timeout_secs=cfg.http_timeout_secs, pause=pause,
                   backoff=Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs))

    def spot_usd(self) -> float:
        """Bitcoin's price in USD now. Raises ``TransientError`` or ``DataError``."""
        return parse_simple_price(self.http.get("/api/v3/simple/price", {"ids": "bitcoin", "vs_currencies": "usd"}))

    def prices(self, from_ms: int, to_ms: int) -> list[tuple[int, float]]:
        """The price points between two moments (CoinGecko takes whole unix seconds)."""
        params = {"vs_currency": "usd", "from": from_ms // 1000, "to": -(-to_ms // 1000)}
        return parse_market_chart(self.http.get("/api/v3/coins/bitcoin/market_chart/range", params))

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        """The interval's outcome from the points around its two ends, or None when they are too sparse."""
        return outcome(self.prices(start_ms - NEAR_MS, end_ms + NEAR_MS), start_ms, end_ms)

    def close(self) -> None:
        self.http.close()
