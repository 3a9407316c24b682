"""The names of Polymarket's BTC Up/Down markets: ``btc-updown-<minutes>m-<unix start>``."""

from __future__ import annotations

import re

from fsm_bot.errors import DataError

SLUG = re.compile(r"btc-updown-(5|15)m-([0-9]{1,12})")


def slug_start_ms(market_slug: str) -> tuple[int, int]:
    """(window start in ms, minutes) of a ``btc-updown-<m>m-<unix start>`` slug."""
    match = SLUG.fullmatch(market_slug) if isinstance(market_slug, str) else None
    if match is None:
        raise DataError(f"slug {market_slug!r}: not btc-updown-<5|15>m-<unix start>", code="bad_market")
    return int(match.group(2)) * 1000, int(match.group(1))


def slug(start_ms: int, minutes: int) -> str:
    """Polymarket's slug of the BTC Up/Down market whose window starts at ``start_ms``."""
    return f"btc-updown-{minutes}m-{start_ms // 1000}"
