"""The one place where dollars, shares, prices and fees are rounded.

Amounts are ``Decimal`` from end to end; nothing a user sees passes through a float. The venue's
rules (Polymarket CLOB, tick 0.01):

- a stake is whole cents, rounded down;
- a market BUY receives shares at 4 decimals, rounded down (the order's taker amount);
- the taker fee is ``shares x rate x p x (1 - p)`` per match, rounded half-up to 5 decimals,
  at least 0.00001 when positive, paid in dollars on top of the stake;
- a WIN pays $1 a share, a LOSS pays nothing.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Iterable

CENT = Decimal("0.01")
SHARE_STEP = Decimal("0.0001")
FEE_STEP = Decimal("0.00001")
ZERO = Decimal(0)
ONE = Decimal(1)


def decimal(value: object, field: str = "value") -> Decimal:
    """A finite Decimal from a str, int or Decimal (floats go through ``repr``); ValueError names the field."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str) and (not value.isascii() or len(value) > 64):
        raise ValueError(f"{field}: expected a plain ASCII number, got {value[:40]!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"{field}: expected a finite number, got {value!r}")
    return d


def dollars(amount: Decimal) -> Decimal:
    """Whole cents, rounded down (a stake never rounds up past a cap)."""
    return amount.quantize(CENT, rounding=ROUND_DOWN)


def shares_for(amount_usd: Decimal, price: Decimal) -> Decimal:
    """Shares a dollar amount buys at one price, before the venue's 4-decimal rounding."""
    with localcontext() as ctx:
        ctx.prec = 40
        return amount_usd / price


def round_shares(shares: Decimal) -> Decimal:
    """The venue's share precision: 4 decimals, rounded down."""
    return shares.quantize(SHARE_STEP, rounding=ROUND_DOWN)


def fee_unrounded(shares: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return shares * rate * price * (ONE - price)


def round_fee(fee: Decimal) -> Decimal:
    """The venue's fee precision: 5 decimals, half-up, never below 0.00001 when there is a fee."""
    if fee <= ZERO:
        return ZERO
    return max(fee.quantize(FEE_STEP, rounding=ROUND_HALF_UP), FEE_STEP)


def fee_bound(stake_usd: Decimal, best_ask: Decimal, rate: Decimal) -> Decimal:
    """The most a stake can pay in fees when every share costs at least ``best_ask``.

    ``fee = (stake / p) x rate x p x (1 - p) = stake x rate x (1 - p)`` falls as p rises, so the
    best ask bounds it; rounded up, it bounds the venue's rounded fee too.
    """
    if stake_usd <= ZERO:
        return ZERO
    raw = stake_usd * rate * (ONE - best_ask)
    return max(raw.quantize(FEE_STEP, rounding=ROUND_CEILING), FEE_STEP)


def pnl(won: bool, shares: Decimal, stake_usd: Decimal, fee_usd: Decimal) -> Decimal:
    """A binary contract's profit: a WIN pays $1 a share, a LOSS nothing; stake and fee are spent either way."""
    payout = shares if won else ZERO
    return payout - stake_usd - fee_usd


def plain(d: Decimal) -> str:
    """A Decimal as a plain decimal literal (no exponent), for files people read."""
    return format(d, "f")


def usd(d: Decimal | None, sign: bool = False) -> str:
    """Dollars for people: ``$12.34`` (``+$``/``-$`` with ``sign``), ``-`` for none."""
    if d is None:
        return "-"
    q = d.quantize(CENT)
    return (f"+${plain(q)}" if q >= 0 else f"-${plain(-q)}") if sign else f"${plain(q)}"


def max_drawdown(capitals: Iterable[Decimal]) -> Decimal:
    """The largest fall from a running peak, as a fraction of that peak; the first capital is the start."""
    peak, worst = None, ZERO
    for capital in capitals:
        peak = capital if peak is None else max(peak, capital)
        worst = max(worst, (peak - capital) / peak)
    return worst
