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
    """The fill, or None when FOK cannot fill completely (or FAK finds nothing) within the limit.

    The fee is charged on the shares received: the 4-decimal rounding dust comes off the last level.
    """
    remaining, matches = amount_usd, []
    with localcontext() as ctx:
        ctx.prec = 40
        for level in asks:
            if remaining <= ZERO or level.price > limit_price:
                break
            take = min(remaining, level.price * level.size)
            matches.append([shares_for(take, level.price), level.price])
            remaining -= take
        if not matches or remaining > ZERO and order_type == "FOK":
            return None
        shares = round_shares(sum((got for got, _ in matches), ZERO))
        if shares <= ZERO:
            return None
        matches[-1][0] = shares - sum((got for got, _ in matches[:-1]), ZERO)
        fee = round_fee(sum((fee_unrounded(got, price, fee_rate) for got, price in matches), ZERO))
    spent = amount_usd - remaining
    avg = (spent / shares).quantize(PRICE_STEP, rounding=ROUND_HALF_UP)
    return Fill(shares=shares, spent_usd=spent, avg_price=avg, fee_usd=fee)
