"""Gamma market discovery: one BTC Up/Down market from ``GET /markets?slug=``, checked before use.

Gamma answers a LIST (empty for an unknown slug). ``outcomes``, ``outcomePrices`` and
``clobTokenIds`` are JSON-encoded strings, paired by index; tokens are mapped by the labels
"Up"/"Down", never by position. ``eventStartTime`` is the window's start, ``endDate`` its end.

Anything missing, malformed or not the market asked for (another slug, another window length,
other labels, a repeated token) is a ``DataError`` whose code says why (``market_not_found``,
``market_mismatch``, ``bad_market``) and whose message names the field and the value: the bot
never trades a market it did not ask for. The field readers at the bottom are shared with
``books.py``: every vendor value is read through them, so a bad one is always a ``DataError``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from fsm_bot.errors import DataError
from fsm_bot.money import decimal
from fsm_bot.ports import Outcome, slug_start_ms
from fsm_bot.values import frozen

TOKEN = re.compile(r"[0-9]{1,100}")
CONDITION = re.compile(r"0x[0-9a-fA-F]{64}")
TICKS = frozenset(Decimal(t) for t in ("0.1", "0.01", "0.001", "0.0001"))
WINNER_MIN, LOSER_MAX = Decimal("0.999"), Decimal("0.001")
LABELS = ("Up", "Down")


@frozen
class MarketInfo:
    """A market's static facts and its state when Gamma was asked; prices are (Up, Down)."""

    slug: str
    condition_id: str
    start_ms: int
    end_ms: int
    up_token: str
    down_token: str
    accepting_orders: bool
    tick: Decimal
    min_order_shares: Decimal
    fee_rate: Decimal | None  # feeSchedule.rate; None when Gamma states none
    closed: bool
    outcome_prices: tuple[Decimal, Decimal]
    version: str | None  # "v2" on Protocol-V2 markets


def parse_gamma_markets(payload: Any, expected_slug: str) -> MarketInfo:
    """The market of ``expected_slug`` from Gamma's answer to ``/markets?slug=``."""
    if not isinstance(payload, list):
        raise DataError(f"gamma /markets?slug={expected_slug}: expected a list, got {type(payload).__name__}",
                        code="bad_market")
    if not payload:
        raise DataError(f"gamma has no market {expected_slug}", code="market_not_found")
    found = [m for m in payload if isinstance(m, dict) and m.get("slug") == expected_slug]
    if not found:
        first = payload[0].get("slug") if isinstance(payload[0], dict) else payload[0]
        raise DataError(f"gamma answered slug {first!r} for {expected_slug}", code="market_mismatch")
    if len(found) > 1:
        raise DataError(f"gamma answered {len(found)} markets for {expected_slug}", code="market_mismatch")
    return parse_gamma_market(found[0], expected_slug)


def parse_gamma_market(obj: Any, expected_slug: str) -> MarketInfo:
    """One Gamma market object, checked against the slug asked for."""
    start_ms, minutes = slug_start_ms(expected_slug)
    obj = mapping(obj, "gamma market")
    if obj.get("slug") != expected_slug:
        raise DataError(f"gamma market slug {obj.get('slug')!r}, expected {expected_slug}", code="market_mismatch")
    window = _window(obj, expected_slug, start_ms, minutes)
    up_token, down_token, prices = _outcomes(obj, expected_slug)
    active, closed, accepting, book = (flag(obj, k, expected_slug)
                                       for k in ("active", "closed", "acceptingOrders", "enableOrderBook"))
    return MarketInfo(slug=expected_slug, condition_id=condition_id(obj.get("conditionId"), expected_slug),
                      start_ms=window[0], end_ms=window[1], up_token=up_token, down_token=down_token,
                      accepting_orders=active and not closed and accepting and book,
                      tick=tick(obj.get("orderPriceMinTickSize"), expected_slug),
                      min_order_shares=bounded(obj.get("orderMinSize"), f"{expected_slug} orderMinSize",
                                               Decimal(0), Decimal(1_000_000)),
                      fee_rate=_fee_schedule(obj.get("feeSchedule"), expected_slug), closed=closed,
                      outcome_prices=prices, version=_version(obj.get("version"), expected_slug))


def parse_resolution(info: MarketInfo) -> Outcome | None:
    """The official outcome: only a closed market whose prices are exactly one winner (1) and one loser (0)."""
    if not info.closed:
        return None
    up, down = info.outcome_prices
    if up >= WINNER_MIN and down <= LOSER_MAX:
        return "UP"
    if down >= WINNER_MIN and up <= LOSER_MAX:
        return "DOWN"
    return None


# -- the parts of a market ------------------------------------------------------------------------
def _window(obj: dict[str, Any], where: str, start_ms: int, minutes: int) -> tuple[int, int]:
    start = iso_ms(obj.get("eventStartTime"), f"{where} eventStartTime")
    end = iso_ms(obj.get("endDate"), f"{where} endDate")
    if start != start_ms:
        raise DataError(f"{where} eventStartTime {obj.get('eventStartTime')!r} is not the slug's start",
                        code="market_mismatch")
    if end - start != minutes * 60_000:
        raise DataError(f"{where} endDate {obj.get('endDate')!r}: the window is {(end - start) / 60_000:g} min, "
                        f"expected {minutes}", code="market_mismatch")
    return start, end


def _outcomes(obj: dict[str, Any], where: str) -> tuple[str, str, tuple[Decimal, Decimal]]:
    labels = encoded_list(obj.get("outcomes"), f"{where} outcomes")
    tokens = encoded_list(obj.get("clobTokenIds"), f"{where} clobTokenIds")
    prices = encoded_list(obj.get("outcomePrices"), f"{where} outcomePrices")
    if sorted(map(str, labels)) != sorted(LABELS) or len(labels) != 2:
        raise DataError(f"{where} outcomes {labels!r}: expected 'Up' and 'Down'", code="market_mismatch")
    if len(tokens) != 2 or len(prices) != 2:
        raise DataError(f"{where}: {len(tokens)} clobTokenIds and {len(prices)} outcomePrices for 2 outcomes",
                        code="bad_market")
    by_label = {label: (token_id(t, f"{where} clobTokenIds"),
                        bounded(p, f"{where} outcomePrices", Decimal(0), Decimal(1), inclusive=True))
                for label, t, p in zip(labels, tokens, prices)}
    (up, up_price), (down, down_price) = by_label["Up"], by_label["Down"]
    if up == down:
        raise DataError(f"{where} clobTokenIds: Up and Down share the token {up}", code="market_mismatch")
    return up, down, (up_price, down_price)


def _fee_schedule(value: Any, where: str) -> Decimal | None:
    return fee_schedule(value, f"{where} feeSchedule", "rate", "exponent")


def fee_schedule(value: Any, what: str, rate_key: str, exponent_key: str) -> Decimal | None:
    """A fee schedule's rate (Gamma's ``feeSchedule``, the CLOB's ``fd``), None when the market states none.
    Only ``fee = shares x rate x (p(1 - p))^1`` is modelled, so another exponent is refused."""
    if value is None:
        return None
    schedule = mapping(value, what)
    exponent = schedule.get(exponent_key, 1)
    if exponent is not None and bounded(exponent, f"{what}.{exponent_key}", Decimal(-1), Decimal(10)) != 1:
        raise DataError(f"{what}.{exponent_key} {exponent!r}: only exponent 1 is modelled", code="bad_market")
    return fee_rate(schedule.get(rate_key), f"{what}.{rate_key}")


def _version(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str) and len(value) <= 16:
        return value
    raise DataError(f"{where} version {value!r}: expected a short string", code="bad_market")


# -- field readers (shared with books.py) ---------------------------------------------------------
def mapping(value: Any, what: str, code: str = "bad_market") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{what}: expected an object, got {type(value).__name__}", code=code)
    return value


def flag(obj: dict[str, Any], key: str, where: str, code: str = "bad_market") -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise DataError(f"{where} {key} {value!r}: expected true or false", code=code)
    return value


def number(value: Any, what: str, code: str = "bad_market") -> Decimal:
    """A finite Decimal from a JSON number or numeric string; bools, NaN and infinities are refused."""
    if not isinstance(value, (str, int, float)) or isinstance(value, str) and len(value) > 40:
        raise DataError(f"{what} {value!r:.60}: expected a number", code=code)
    try:
        return decimal(value, what)
    except ValueError:
        raise DataError(f"{what} {value!r:.60}: expected a finite number", code=code) from None


def bounded(value: Any, what: str, low: Decimal, high: Decimal, inclusive: bool = False,
            code: str = "bad_market") -> Decimal:
    """A number in (low, high], or [low, high] when ``inclusive``."""
    d = number(value, what, code)
    if not (low <= d if inclusive else low < d) or d > high or _digits(d) > 10:
        raise DataError(f"{what} {value!r:.60}: outside {'[' if inclusive else '('}{low}, {high}]", code=code)
    return d


def _digits(d: Decimal) -> int:
    """Decimal places of ``d`` once trailing zeros go (a price or size has a handful, never hundreds)."""
    exponent = d.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def fee_rate(value: Any, what: str, code: str = "bad_market") -> Decimal:
    d = bounded(value, what, Decimal(0), Decimal(1), inclusive=True, code=code)
    if d == 1:
        raise DataError(f"{what} {value!r:.60}: a fee rate must be in [0, 1)", code=code)
    return d


def tick(value: Any, what: str, code: str = "bad_market") -> Decimal:
    d = number(value, f"{what} tick size", code)
    if d not in TICKS:
        raise DataError(f"{what} tick size {value!r:.60}: expected one of 0.1, 0.01, 0.001, 0.0001", code=code)
    return d.normalize()


def token_id(value: Any, what: str, code: str = "bad_market") -> str:
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise DataError(f"{what} {value!r:.60}: expected a decimal token id", code=code)
    return value


def condition_id(value: Any, where: str, code: str = "bad_market") -> str:
    if not isinstance(value, str) or not CONDITION.fullmatch(value):
        raise DataError(f"{where} conditionId {value!r:.80}: expected 0x and 64 hex digits", code=code)
    return value


def encoded_list(value: Any, what: str) -> list[Any]:
    """One of Gamma's JSON-encoded string lists (``"[\\"Up\\", \\"Down\\"]"``)."""
    if not isinstance(value, str) or len(value) > 10_000:
        raise DataError(f"{what} {value!r:.60}: expected a JSON-encoded list", code="bad_market")
    try:
        items = json.loads(value)
    except (ValueError, RecursionError):
        raise DataError(f"{what} {value!r:.60}: not JSON", code="bad_market") from None
    if not isinstance(items, list):
        raise DataError(f"{what} {value!r:.60}: expected a list", code="bad_market")
    return items


def iso_ms(value: Any, what: str) -> int:
    """An ISO-8601 time with a zone (``2026-03-12T09:20:00Z``) as ms since the epoch."""
    if not isinstance(value, str) or len(value) > 40:
        raise DataError(f"{what} {value!r:.60}: expected an ISO-8601 time", code="bad_market")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError
        return round(when.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise DataError(f"{what} {value!r}: expected an ISO-8601 time with a zone", code="bad_market") from None
