"""A marketable BUY against a book: what the venue's matching engine would fill.

Used by the simulated venue and by paper trading (real book, simulated fill). The order spends
``amount_usd`` from the best ask upward, never past ``limit_price``; FOK fills completely or not at
all, FAK keeps what it could get. Rounding follows ``money``: shares once (4 dp, down), the fee
once over all matches (5 dp, half-up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from fsm_bot.money import ZERO, fee_unrounded, round_fee, round_shares, shares_for
from fsm_bot.ports import Fill, Level

PRICE_STEP = Decimal("0.0001")


def market_buy(asks: tuple[Level, ...], amount_usd: Decimal, limit_price: Decimal, fee_rate: Decimal,
               order_type: str = "FOK") -> Fill | None:
    """The fill, or None when FOK cannot fill completely (or FAK finds nothing) within the limit."""
    remaining, shares, fee = amount_usd, ZERO, ZERO
    with localcontext() as ctx:
        ctx.prec = 40
        for level in asks:
            if remaining <= ZERO or level.price > limit_price:
                break
            take = min(remaining, level.price * level.size)
            got = shares_for(take, level.price)
            shares += got
            fee += fee_unrounded(got, level.price, fee_rate)
            remaining -= take
    if remaining > ZERO and (order_type == "FOK" or remaining == amount_usd):
        return None
    shares = round_shares(shares)
    if shares <= ZERO:
        return None
    spent = amount_usd - remaining
    avg = (spent / shares).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    return Fill(shares=shares, spent_usd=spent, avg_price=avg, fee_usd=round_fee(fee))
