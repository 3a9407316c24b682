"""The simulated book of ``--sim`` and ``backtest``: each interval's Up and Down books drawn from the figures
measured on real Polymarket windows (``fsm_bot/adapters/sim.py``'s docstring has them), seeded by
``(seed, interval start)``, knowing nothing of the outcome."""

from __future__ import annotations

import math
import random
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from itertools import accumulate
from typing import Sequence

from fsm_bot.ports import Book, Level
from fsm_bot.values import frozen


@frozen
class BookModel:
    """The simulated book's calibration (see the module's docstring for the measured figures)."""

    mid: float = 0.505
    mid_sd: float = 0.015
    spread_ticks: tuple[tuple[int, float], ...] = ((1, 0.78), (2, 0.16), (3, 0.06))
    depth_usd_median: float = 1080.0
    depth_log_sd: float = 0.7
    levels: int = 5
    tick: Decimal = Decimal("0.01")

    def books(self, rng: random.Random) -> tuple[Book, Book]:
        """(Up book, Down book), mirrored as a binary market's books are."""
        tick, prices = self.tick, _price_grid(self.tick)
        spreads, cum_weights = _spread_choices(self.spread_ticks)
        spread = rng.choices(spreads, cum_weights=cum_weights)[0] * tick
        centre = min(max(rng.gauss(self.mid, self.mid_sd), 0.30), 0.70)
        bid = (Decimal(repr(centre)) - spread / 2).quantize(tick, rounding=ROUND_FLOOR)
        b, n = int(bid / tick), self.levels  # the best bid's and the best ask's place on the grid
        a = b + int(spread / tick)
        if b < n - 1 or a + n > len(prices):
            raise ValueError(f"a book of {n} levels from {bid} / {bid + spread} has prices off 0-1")
        up_asks = self._side(rng, prices[a:a + n])
        up_bids = self._side(rng, prices[b - n + 1:b + 1][::-1])
        return Book(bids=up_bids, asks=up_asks), Book(bids=mirrored(up_asks), asks=mirrored(up_bids))

    def _side(self, rng: random.Random, prices: Sequence[Decimal]) -> tuple[Level, ...]:
        total_usd = min(max(self.depth_usd_median * math.exp(rng.gauss(0, self.depth_log_sd)), 200.0), 8000.0)
        weights = [rng.expovariate(1.0) for _ in prices]
        scale = total_usd / sum(weights)
        return tuple([Level(p, _at_least_min(Decimal(f"{w * scale / float(p):.2f}"))) for p, w in zip(prices, weights)])


@lru_cache(maxsize=4)
def _spread_choices(spread_ticks: tuple[tuple[int, float], ...]) -> tuple[list[int], list[float]]:
    """``rng.choices``' population and cumulative weights for the spread (what it would add up from the weights
    on every draw)."""
    return [t for t, _ in spread_ticks], list(accumulate(w for _, w in spread_ticks))


@lru_cache(maxsize=4)
def _price_grid(tick: Decimal) -> tuple[Decimal, ...]:
    """Every price from 0 to 1 on the tick, with the tick's exponent as the book's arithmetic gives it: ``[i]`` is
    ``i`` ticks."""
    return tuple(i * tick for i in range(int(1 / tick) + 1))


def _at_least_min(size: Decimal) -> Decimal:
    return size if size > _MIN_SIZE else _MIN_SIZE  # as ``max(_MIN_SIZE, size)``: the minimum itself when equal


_MIN_SIZE = Decimal(5)


def mirrored(levels: tuple[Level, ...]) -> tuple[Level, ...]:
    """The other token's side of a binary market: each level at one minus its price."""
    return tuple([Level(1 - lv.price, lv.size) for lv in levels])
