"""The simulated book's draw: its tick grid and precomputed spread weights give, level for level and digit for
digit, what the plain arithmetic gives from the same random draws."""

from __future__ import annotations

import math
import random
from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import given, settings, strategies as st

from fsm_bot.adapters.book import BookModel
from fsm_bot.ports import Book, Level


def arithmetic_books(model: BookModel, rng: random.Random) -> tuple[Book, Book]:
    """The draw written out plainly: every price by addition from the best bid and ask."""
    tick = model.tick
    spread = rng.choices([t for t, _ in model.spread_ticks], weights=[w for _, w in model.spread_ticks])[0] * tick
    centre = min(max(rng.gauss(model.mid, model.mid_sd), 0.30), 0.70)
    bid = (Decimal(repr(centre)) - spread / 2).quantize(tick, rounding=ROUND_FLOOR)
    ask = bid + spread

    def side(prices: list[Decimal]) -> tuple[Level, ...]:
        total = min(max(model.depth_usd_median * math.exp(rng.gauss(0, model.depth_log_sd)), 200.0), 8000.0)
        weights = [rng.expovariate(1.0) for _ in prices]
        scale = total / sum(weights)
        return tuple(Level(p, max(Decimal(5), Decimal(f"{w * scale / float(p):.2f}"))) for p, w in zip(prices, weights))

    asks = side([ask + i * tick for i in range(model.levels)])
    bids = side([bid - i * tick for i in range(model.levels)])
    mirror = lambda levels: tuple(Level(1 - lv.price, lv.size) for lv in levels)  # noqa: E731
    return Book(bids=bids, asks=asks), Book(bids=mirror(asks), asks=mirror(bids))


def text(books: tuple[Book, Book]) -> list[str]:
    """Every level as its digits (``Decimal('0.5')`` and ``Decimal('0.50')`` are equal but journal differently)."""
    return [f"{lv.price}x{lv.size}" for book in books for lv in book.bids + book.asks]


@settings(max_examples=300)
@given(st.integers(0, 2**31), st.integers(0, 10**13), st.sampled_from([
    BookModel(), BookModel(mid=0.30, mid_sd=0.2), BookModel(levels=3, spread_ticks=((2, 0.5), (4, 0.5))),
    BookModel(depth_usd_median=50.0)]))
def test_the_grid_draw_is_the_arithmetic_draw(seed, start_ms, model):
    key = f"{seed}:{start_ms}"
    got, want = model.books(random.Random(key)), arithmetic_books(model, random.Random(key))
    assert got == want and text(got) == text(want)


def test_a_book_whose_levels_would_leave_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="off 0-1"):
        BookModel(levels=60).books(random.Random("0:0"))
