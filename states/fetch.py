"""FETCH: turn the candles, the spot book and the venue's market into one journaled snapshot."""

from __future__ import annotations

import math

import numpy as np

from fsm_bot import indicators
from fsm_bot.candles import ColumnError, Columns
from fsm_bot.money import ZERO
from fsm_bot.observed import FetchSeen
from fsm_bot.ports import MINUTE_MS, Book, Depth, Market, slug
from fsm_bot.session import Session
from fsm_bot.steps import Fetched, Skip, Snapshot, Step
from states import failed, late_resume

TRIGGERS = {"fetched", "skip", "halt"}


def _bad_prices(w: indicators.Shape, price_max: float) -> str | None:
    """A description of the first unusable column, or None. (A NaN makes min and max NaN, and every
    comparison with NaN is false, so the range checks catch NaN and infinities too.)"""
    for name, lo, hi in zip(indicators.RANGED, w.lows, w.highs):
        if name in ("volume", "taker_buy_base"):
            if not (lo >= 0 and hi < np.inf):
                return f"{name} has NaN, infinite or negative values"
        elif not (lo > 0 and hi <= price_max):
            return f"{name} outside (0, {price_max:g}] or not a number: min {lo}, max {hi}"
    return None


def _bad_book(book: Book) -> str | None:
    for level in book.bids + book.asks:
        if not (ZERO < level.price < 1) or level.size <= 0:
            return f"level {level.price} x {level.size} outside (0, 1) or not positive"
    return None


def _unusable_book(market: Market, now_ms: int, max_age_ms: int) -> Skip | None:
    """A book the venue lost its place in, or one last known current longer before the decision than the bound."""
    for side, book in (("Up", market.up_book), ("Down", market.down_book)):
        age = f"{now_ms - book.as_of_ms} ms" if book.as_of_ms is not None else "?"
        if book.resyncing:
            return Skip(reason="book_resyncing", detail=f"the {side} book is being resynced (last current {age} "
                                                         "before the decision)")
        if book.as_of_ms is not None and now_ms - book.as_of_ms > max_age_ms:
            return Skip(reason="book_stale", detail=f"the {side} book was last current {age} before the decision "
                                                     f"(> {max_age_ms} ms)")
    return None


def run(view: Session, now_ms: int, seen: FetchSeen) -> Step:
    """The snapshot of the candles, the spot book and the market, or why they cannot be used."""
    late = late_resume(view, now_ms, seen.resumed)
    if late:
        return late
    if seen.failure is not None:
        return failed(view, seen.failure)
    assert seen.candles is not None and seen.market is not None
    return snapshot(view, now_ms, seen.candles, seen.depth, seen.market, seen.window)


def snapshot(view: Session, now_ms: int, candles: Columns, depth: Depth | None, market: Market,
             known: indicators.Window | None = None) -> Step:
    """``known``: what the candles show, when it was computed beforehand (a backtest computes every window of
    its span at once); otherwise it is computed here from the candles."""
    cfg = view.cfg
    k, start, end = view.interval, view.interval_start(view.interval), view.interval_end(view.interval)
    if len(candles) < cfg.candles:
        return Skip(reason="insufficient_candles", detail=f"{len(candles)} of {cfg.candles} closed candles")
    w = known
    if w is None:
        try:
            w = indicators.window(Columns.of(candles), cfg)
        except ColumnError as exc:
            return Skip(reason="bad_candles", detail=str(exc))
    shape = w.shape
    if shape.last_open_ms + MINUTE_MS > now_ms or not shape.consecutive:
        return Skip(reason="bad_candles", detail="candles are not consecutive minutes closed before the decision")
    problem = _bad_prices(shape, cfg.price_max_usd)
    if problem:
        return Skip(reason="invalid_price", detail=problem)
    problem = indicators.no_movement(shape)
    if problem:
        return Skip(reason="flat_data", detail=problem)
    expected = slug(start, cfg.interval_minutes)
    if market.slug != expected or market.start_ms != start or market.end_ms != end:
        return Skip(reason="market_mismatch", detail=f"venue gave {market.slug} for {expected}")
    if not market.accepting_orders:
        return Skip(reason="market_closed", detail=f"{market.slug} does not accept orders")
    unusable = _unusable_book(market, now_ms, cfg.book_max_age_ms)
    if unusable:
        return unusable
    problem = _bad_book(market.up_book) or _bad_book(market.down_book)
    if problem:
        return Skip(reason="invalid_odds", detail=problem)
    if depth is not None and not (math.isfinite(depth.bid_qty) and math.isfinite(depth.ask_qty)
                                  and depth.bid_qty >= 0 and depth.ask_qty >= 0):
        return Skip(reason="invalid_depth", detail=f"bid {depth.bid_qty}, ask {depth.ask_qty}")
    ind = w.indicators(depth, cfg)
    values = (ind.rsi, ind.macd, ind.macd_signal, ind.imbalance, ind.range_pct)
    if not all(math.isfinite(v) for v in values):
        return Skip(reason="indicators_unavailable", detail=f"rsi {ind.rsi}, macd {ind.macd}/{ind.macd_signal}")
    up, down = market.up_book, market.down_book
    return Fetched(snapshot=Snapshot(
        interval=k, start_ms=start, end_ms=end, candle_count=len(candles), last_candle_ms=shape.last_open_ms,
        close=ind.close, rsi=ind.rsi, macd=ind.macd, macd_signal=ind.macd_signal, imbalance=ind.imbalance,
        imbalance_source=ind.imbalance_source, range_pct=ind.range_pct, slug=market.slug,
        condition_id=market.condition_id, up_token=market.up_token, down_token=market.down_token,
        accepting_orders=market.accepting_orders, up_bid=up.best_bid, up_ask=up.best_ask, down_bid=down.best_bid,
        down_ask=down.best_ask, up_depth_usd=up.ask_depth_usd(), down_depth_usd=down.ask_depth_usd(),
        tick=market.tick, min_order_usd=market.min_order_usd, fee_rate=market.fee_rate))
