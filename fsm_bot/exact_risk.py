"""``fsm-bot risk``: the risk of the sizing and halt rules on their own, computed exactly.

A session is 18 trades, each a WIN with probability ``win_rate`` at a fixed entry ``price``. Every
one of the 2^18 win/loss sequences is followed at once (numpy, one array lane per sequence) through
the machine's own money rules: the stake from the streak, capped at $25, half the capital, and so
that stake + fee <= capital - floor, in whole cents; shares at 4 decimals rounded down; the fee
``shares x rate x p x (1 - p)`` at 5 decimals half-up; a WIN pays $1 a share; capital at or below the
floor halts, and so does a capped stake below the $1 minimum. Money is integer units of $0.00001, so
every lane's capital is exact. Each sequence's probability is ``w^wins x (1-w)^losses``; the
distribution of final capital, P(halt), P(loss) and the maximum drawdown follow exactly (as
fractions when the win rate is a decimal). A Monte Carlo over the same step function checks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from fsm_bot.config import Config
from fsm_bot.errors import ConfigError
from fsm_bot.values import frozen

UNIT = 100_000  # money units per dollar: $0.00001, the finest step a fee has
CENT = UNIT // 100
SHARE = 10_000  # share units per share (4 decimals)


@frozen
class Rules:
    """The sizing and halt rules of a config, in integer units, for one entry price and fee rate."""

    capital: int
    floor: int
    base_cents: tuple[int, ...]  # the streak stake by streak, in whole cents (rounded down)
    cap_cents: int
    fraction: Fraction
    min_cents: int
    price: Fraction
    rate: Fraction
    intervals: int

    @classmethod
    def of(cls, cfg: Config, price: Decimal, fee_rate: Decimal | None = None) -> "Rules":
        """Raises ``ConfigError`` when the lanes' int64 arithmetic could overflow (see ``check``)."""
        base = [int(cfg.base_usd * cfg.multiplier ** k * 100) for k in range(cfg.intervals + 1)]
        rules = cls(capital=int(cfg.capital_usd * UNIT), floor=int(cfg.floor_usd * UNIT), base_cents=tuple(base),
                    cap_cents=int(cfg.cap_usd * 100), fraction=Fraction(cfg.capital_fraction),
                    min_cents=int(math.ceil(cfg.min_order_usd * 100)), price=Fraction(price),
                    rate=Fraction(cfg.fee_rate if fee_rate is None else fee_rate), intervals=cfg.intervals)
        rules.check()
        return rules

    def check(self) -> None:
        """Every product ``step`` forms, at its largest, fits in an int64 lane; otherwise the figures would wrap
        around silently, so the analysis is refused (a price or fee rate with many decimals, a huge capital)."""
        p, r = self.price, self.rate
        stake = max(self.cap_cents, 1)  # the stake never exceeds the cap (base <= cap)
        shares = stake * 100 * p.denominator // p.numerator
        capital = self.capital + self.intervals * shares * (UNIT // SHARE)  # every interval a win
        k = r.denominator * p.denominator + r.numerator * (p.denominator - p.numerator)
        products = (stake * 100 * p.denominator, capital * r.denominator * p.denominator, capital * k,
                    capital * self.fraction.numerator, stake * r.numerator * (p.denominator - p.numerator) * CENT,
                    2 * shares * 10 * r.numerator * p.numerator * (p.denominator - p.numerator)
                    + r.denominator * p.denominator ** 2)
        if max(products) >= 2 ** 62:
            raise ConfigError(f"price {float(p):g} and fee rate {float(r):g} with capital ${self.capital / UNIT:g} and "
                              f"cap ${self.cap_cents / 100:g}: the exact analysis' integers would overflow; use fewer "
                              "decimals in --price and --fee-rate, or a smaller --capital or cap_usd")

    # -- one step, for all lanes at once ----------------------------------------------------------
    def fee_bound(self, stake_cents: np.ndarray) -> np.ndarray:
        """ceil(stake x rate x (1 - p)) in units, at least one unit for a positive stake (money.fee_bound)."""
        r, p = self.rate, self.price
        num = r.numerator * (p.denominator - p.numerator) * CENT
        den = r.denominator * p.denominator
        bound = -((-stake_cents * num) // den)
        return np.where(stake_cents > 0, np.maximum(bound, 1), 0)

    def stake(self, capital: np.ndarray, streak: np.ndarray) -> np.ndarray:
        """The stake in cents (states.size.stake_usd, in integers)."""
        base = np.asarray(self.base_cents, dtype=np.int64)[np.minimum(streak, len(self.base_cents) - 1)]
        half = (capital * self.fraction.numerator) // (self.fraction.denominator * CENT)
        room = capital - self.floor
        r, p = self.rate, self.price
        # largest s with s + fee_bound(s) <= room: start from room / (1 + r(1-p)) and step down
        k_num = (r.denominator * p.denominator + r.numerator * (p.denominator - p.numerator))
        k_den = r.denominator * p.denominator
        s = np.maximum((room * k_den) // (k_num * CENT), 0)
        for _ in range(3):
            over = (s > 0) & (s * CENT + self.fee_bound(s) > room)
            s = np.where(over, s - 1, s)
        return np.minimum(np.minimum(base, self.cap_cents), np.minimum(half, s))

    def fill(self, stake_cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shares in 1e-4, fee in units) of a stake at the entry price (money.shares_for / round_fee)."""
        p, r = self.price, self.rate
        shares = (stake_cents * 100 * p.denominator) // p.numerator  # stake / p, 4 dp, down
        num = shares * 10 * r.numerator * p.numerator * (p.denominator - p.numerator)
        den = r.denominator * p.denominator * p.denominator
        fee = (2 * num + den) // (2 * den)  # half-up to 5 dp
        return shares, np.where(num > 0, np.maximum(fee, 1), 0)


@dataclass
class Paths:
    """Lanes of sessions: capital, streak, whether halted, wins drawn, running peak, max drawdown, trades."""

    capital: np.ndarray
    streak: np.ndarray
    halted: np.ndarray
    wins: np.ndarray  # WIN draws among all of a lane's draws (those after a halt too: they weigh the lane)
    peak: np.ndarray
    max_drawdown: np.ndarray  # largest fall from a running peak, as a fraction of that peak
    trades: np.ndarray

    @classmethod
    def start(cls, rules: Rules, lanes: int) -> "Paths":
        zeros = np.zeros(lanes, dtype=np.int64)
        capital = np.full(lanes, rules.capital, dtype=np.int64)
        return cls(capital, zeros.copy(), np.zeros(lanes, dtype=bool), zeros.copy(), capital.copy(),
                   np.zeros(lanes), zeros.copy())

    def twice(self) -> "Paths":
        return Paths(*(np.concatenate([a, a]) for a in self.__dict__.values()))


def step(rules: Rules, p: Paths, won: np.ndarray) -> Paths:
    """One interval for every lane: the risk check, the stake, the fill and the outcome ``won``. (As in the
    machine, a lane that reaches the floor halts at the next interval's risk check, not at once.)"""
    halted = p.halted | (p.capital <= rules.floor)
    stake = rules.stake(p.capital, p.streak)
    halted |= stake < rules.min_cents
    live = ~halted
    shares, fee = rules.fill(stake)
    pnl = np.where(won, shares * (UNIT // SHARE) - stake * CENT - fee, -stake * CENT - fee)
    capital = np.where(live, p.capital + pnl, p.capital)
    peak = np.maximum(p.peak, capital)
    return Paths(capital=capital, streak=np.where(live, np.where(won, p.streak + 1, 0), p.streak),
                 halted=halted, wins=p.wins + won, peak=peak,
                 max_drawdown=np.maximum(p.max_drawdown, (peak - capital) / peak), trades=p.trades + live)


def run(rules: Rules, outcomes: np.ndarray) -> Paths:
    """Follow each row of ``outcomes`` (lanes x intervals, True = WIN) through the rules."""
    p = Paths.start(rules, len(outcomes))
    for k in range(outcomes.shape[1]):
        p = step(rules, p, outcomes[:, k])
    return p


def every_sequence(rules: Rules) -> Paths:
    """All 2^n sequences, grown as a tree: each interval doubles the lanes (wins first, then losses)."""
    p = Paths.start(rules, 1)
    for _ in range(rules.intervals):
        m = len(p.capital)
        p = step(rules, p.twice(), np.arange(2 * m) < m)
    return p


def _quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, q * cum[-1])])


def exact(cfg: Config, win_rate: float, price: Decimal, fee_rate: Decimal | None = None) -> dict[str, Any]:
    """The exact distribution over all 2^intervals sequences."""
    rules = Rules.of(cfg, price, fee_rate)
    n = rules.intervals
    if n > 22:
        raise ValueError(f"intervals = {n}: the exact analysis enumerates 2^n sequences; use at most 22")
    paths = every_sequence(rules)
    w = Fraction(str(win_rate))
    by_wins = [w ** k * (1 - w) ** (n - k) for k in range(n + 1)]  # exact probability of one sequence
    weight = np.array([float(x) for x in by_wins])[paths.wins]
    final = paths.capital / UNIT
    start = rules.capital / UNIT

    def exact_p(mask: np.ndarray) -> Fraction:
        counts = np.bincount(paths.wins[mask], minlength=n + 1)
        return sum((int(c) * by_wins[k] for k, c in enumerate(counts)), Fraction(0))

    p_halt, p_loss = exact_p(paths.halted), exact_p(paths.capital < rules.capital)
    expected = Fraction(0)
    for k in range(n + 1):
        lane_sum = int(paths.capital[paths.wins == k].sum())
        expected += Fraction(lane_sum, UNIT) * by_wins[k]
    values, inverse = np.unique(final, return_inverse=True)
    dist = np.bincount(inverse, weights=weight)
    return {
        "win_rate": win_rate, "price": float(price), "fee_rate": float(rules.rate), "intervals": n,
        "capital_usd": start, "floor_usd": rules.floor / UNIT,
        "sequences": int(len(final)), "p_halt": float(p_halt), "p_halt_exact": str(p_halt),
        "p_loss": float(p_loss), "expected_final": float(expected), "expected_pnl": float(expected) - start,
        "median_final": _quantile(final, weight, 0.5), "final_p05": _quantile(final, weight, 0.05),
        "final_p95": _quantile(final, weight, 0.95), "min_final": float(final.min()), "max_final": float(final.max()),
        "max_drawdown_p50": _quantile(paths.max_drawdown, weight, 0.5),
        "max_drawdown_p95": _quantile(paths.max_drawdown, weight, 0.95),
        "expected_trades": float((weight * paths.trades).sum()),
        "distribution": {"capital": values.tolist(), "probability": dist.tolist()},
    }


def monte_carlo(cfg: Config, win_rate: float, price: Decimal, fee_rate: Decimal | None = None,
                sessions: int = 200_000, seed: int = 1) -> dict[str, Any]:
    """The same rules over random sequences: estimates with their standard errors."""
    rules = Rules.of(cfg, price, fee_rate)
    rng = np.random.default_rng(seed)
    paths = run(rules, rng.random((sessions, rules.intervals)) < win_rate)
    final = paths.capital / UNIT
    halt = paths.halted.astype(float)
    return {"sessions": sessions, "seed": seed,
            "p_halt": float(halt.mean()), "p_halt_se": float(halt.std(ddof=1) / math.sqrt(sessions)),
            "expected_final": float(final.mean()), "expected_final_se": float(final.std(ddof=1) / math.sqrt(sessions)),
            "p_loss": float((paths.capital < rules.capital).mean())}


WIN_RATES = tuple(round(0.40 + 0.02 * i, 2) for i in range(11))
PRICES = (Decimal("0.45"), Decimal("0.50"), Decimal("0.51"), Decimal("0.55"), Decimal("0.60"))


def analyse(cfg: Config, win_rates: tuple[float, ...] = WIN_RATES, prices: tuple[Decimal, ...] = PRICES,
            fee_rate: Decimal | None = None, sessions: int = 50_000, seed: int = 1) -> list[dict[str, Any]]:
    """One row per (win rate, price): the exact figures and, beside them, the Monte Carlo's."""
    rows = []
    for price in prices:
        for w in win_rates:
            row = exact(cfg, w, price, fee_rate)
            if sessions:
                mc = monte_carlo(cfg, w, price, fee_rate, sessions, seed)
                row["monte_carlo"] = mc
                row["monte_carlo_agrees"] = (abs(mc["p_halt"] - row["p_halt"]) <= 4 * max(mc["p_halt_se"], 1e-12)
                                             and abs(mc["expected_final"] - row["expected_final"])
                                             <= 4 * max(mc["expected_final_se"], 1e-12))
            rows.append(row)
    return rows


def breakeven_win_rate(price: Decimal, fee_rate: Decimal) -> float:
    """The hit rate at which a trade at ``price`` has zero expected PnL: p x (1 + rate x (1 - p))."""
    return float(price * (1 + fee_rate * (1 - price)))


def plot(rows: list[dict[str, Any]], path: Any) -> None:
    """P(halt) and expected final capital against the win rate, a line per entry price, its break-even marked
    (PNG; ``fsm_bot.report.figures.risk``)."""
    from fsm_bot.report import figures  # here: fsm_bot.report imports this module
    figures.risk(rows, path)
