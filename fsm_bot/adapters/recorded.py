"""``backtest --prices``: the simulated venue quoting Polymarket's recorded prices and settling on the
recorded resolutions, instead of the simulated book and the candles' direction.

Only a price is recorded (the CLOB's ``prices-history``, about one point a minute), not a book. The
book at a decision is the simulated book of the same interval moved onto the recorded price: the same
spread (1, 2 or 3 cents, the sim's first draw from the interval's seeded generator) and the same depth
draws, but centred on the Up token's last recorded price at or before the decision (a Down point ``p``
counts as an Up price ``1 - p``). The Up ask is that price plus half the spread rounded *up* to the
cent, the Up bid the price minus half the spread rounded *down*, so a price between the cents widens
the book by a cent and never narrows it; the ask stays in [0.02, 0.99], the bid in [0.01, ask - 0.01];
the Down book is the Up book's mirror (Down ask = 1 - Up bid), as on the CLOB. A price older than
``PRICE_STALE_SECS`` is not used.

The machine decides ``DECISION_DELAY_SECS`` into each interval (``DecisionClock``), not at its first
instant: the recorded history's first point of a window comes 5-34 s after its start. The delay stays
under a minute, so the decision sees the same closed candles as at the start, and the price it pays was
known when it decided.

What cannot be quoted or settled honestly skips the interval at FETCH, its reason journaled: a window
the file does not list (``no_recorded_market``), no usable price (``no_recorded_price``), and, when the
settlement is the recorded one, a market with no recorded resolution (``unresolved``).
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fsm_bot.adapters.book import BookModel, mirrored
from fsm_bot.adapters.sim import ReplayFeed, SimClock, SimVenue, digest, load_candles as _load_candles
from fsm_bot.candles import not_a_file
from fsm_bot.errors import ConfigError, DataError
from fsm_bot.ports import MINUTE_MS, Book, Market, Outcome, slug, slug_start_ms
from fsm_bot.values import frozen

DECISION_DELAY_SECS = 45
PRICE_STALE_SECS = 60
GRID_MS = 5 * MINUTE_MS
"""Every interval's start and end, of the 5- and of the 15-minute markets, is on this grid."""

SCHEMA: dict[str, Any] = {
    "window_start": pl.Datetime("ms", "UTC"), "window_end": pl.Datetime("ms", "UTC"), "interval_minutes": pl.Int32,
    "slug": pl.String, "condition_id": pl.String, "resolved_outcome": pl.String, "outcome": pl.String,
    "token_id": pl.String, "t": pl.Datetime("ms", "UTC"), "price": pl.Float64}
"""The recorded-prices file: one row per recorded price point of one outcome token of one market; a market
with no point has a placeholder row (``t`` and ``price`` null). ``resolved_outcome``: Up, Down or null."""

QUOTES = ("recorded", "simulated")
SETTLEMENTS = ("recorded", "candles")


def load_candles(path: Path) -> pl.DataFrame:
    """Candles for ``--prices``: the normal schema, or OHLCV only (the recorded samples' candles)."""
    return _load_candles(path, neutral_taker=True)


# -- the recorded prices --------------------------------------------------------------------------------
@frozen
class Window:
    """One market of the file: its ids, its recorded resolution, and its Up price points in time order."""

    slug: str
    condition_id: str
    start_ms: int
    end_ms: int
    resolution: Outcome | None
    up_token: str | None
    down_token: str | None
    times_ms: np.ndarray
    up_prices: np.ndarray

    def up_price(self, at_ms: int, stale_ms: int = PRICE_STALE_SECS * 1000) -> tuple[float, int] | None:
        """(Up price, its time) of the last point at or before ``at_ms`` and at most ``stale_ms`` old."""
        i = int(np.searchsorted(self.times_ms, at_ms, side="right")) - 1
        if i < 0 or at_ms - int(self.times_ms[i]) > stale_ms:
            return None
        return float(self.up_prices[i]), int(self.times_ms[i])


@frozen
class Recording:
    """The windows of one interval length, by start (ms)."""

    minutes: int
    windows: dict[int, Window]

    @property
    def first_ms(self) -> int:
        return min(self.windows)

    @property
    def end_ms(self) -> int:
        return max(w.end_ms for w in self.windows.values())


def intervals(path: Path) -> list[int]:
    """The interval lengths (minutes) the file holds markets of."""
    return sorted(_read(path).get_column("interval_minutes").unique().to_list())


def _read(path: Path) -> pl.DataFrame:
    if not Path(path).is_file():
        raise not_a_file("--prices", path)
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several kinds for a file that is not parquet
        raise ConfigError(f"--prices {path}: not a readable parquet file ({type(exc).__name__})") from None
    missing = [c for c in SCHEMA if c not in frame.columns]
    if missing:
        raise ConfigError(f"--prices {path}: missing column(s) {missing}; need {list(SCHEMA)}")
    try:
        frame = frame.select(*(pl.col(c).cast(t) for c, t in SCHEMA.items()))
    except Exception as exc:
        raise ConfigError(f"--prices {path}: unusable columns ({type(exc).__name__}: {exc})") from None
    for column, allowed in (("outcome", ("Up", "Down")), ("resolved_outcome", ("Up", "Down", None))):
        bad = set(frame.get_column(column).unique().to_list()) - set(allowed)
        if bad:
            raise ConfigError(f"--prices {path}: {column} holds {sorted(map(str, bad))}; expected {allowed}")
    prices = frame.get_column("price").drop_nulls()
    if prices.len() and not (prices.min() >= 0 and prices.max() <= 1):
        raise ConfigError(f"--prices {path}: price outside [0, 1]: min {prices.min()}, max {prices.max()}")
    return frame


def load_prices(path: Path, minutes: int) -> Recording:
    """The file's ``minutes``-long markets, checked (``ConfigError`` naming the column and the value)."""
    frame = _read(path).filter(pl.col("interval_minutes") == minutes).with_columns(
        pl.col("window_start", "window_end", "t").dt.epoch("ms"))
    if frame.is_empty():
        raise ConfigError(f"--prices {path}: no {minutes}-minute market in the file")
    up = pl.col("outcome") == "Up"
    meta = frame.group_by("window_start").agg(
        pl.col("window_end", "slug", "condition_id").first(), pl.col("resolved_outcome").drop_nulls().unique(),
        up_token=pl.col("token_id").filter(up).first(), down_token=pl.col("token_id").filter(~up).first())
    points = (frame.filter(pl.col("t").is_not_null() & pl.col("price").is_not_null())
              .with_columns(up_price=pl.when(up).then(pl.col("price")).otherwise(1 - pl.col("price")),
                            rank=up.cast(pl.Int8))
              .sort("window_start", "t", "rank"))  # an Up point wins a tie with a Down point of the same time
    by_start = {key[0]: part for key, part in points.partition_by("window_start", as_dict=True).items()}
    windows = {}
    for row in meta.iter_rows(named=True):
        start, resolved = row["window_start"], row["resolved_outcome"]
        if len(resolved) > 1 or row["window_end"] - start != minutes * MINUTE_MS:
            raise ConfigError(f"--prices {path}: market {row['slug']}: resolutions {resolved}, window "
                              f"{start}..{row['window_end']} ms: one resolution and a {minutes}-minute window expected")
        part = by_start.get(start)
        times = part.get_column("t").to_numpy() if part is not None else np.empty(0, np.int64)
        values = part.get_column("up_price").to_numpy() if part is not None else np.empty(0)
        windows[start] = Window(row["slug"], row["condition_id"], start, row["window_end"],
                                resolved[0].upper() if resolved else None, row["up_token"], row["down_token"],
                                times, values)
    return Recording(minutes, windows)


# -- the book at a decision -----------------------------------------------------------------------------
def quoted_books(model: BookModel, rng: random.Random, up_price: Decimal) -> tuple[Book, Book]:
    """(Up book, Down book) around ``up_price``: the sim's spread and depth draws, in the sim's order."""
    tick = model.tick
    spread = rng.choices([t for t, _ in model.spread_ticks], weights=[w for _, w in model.spread_ticks])[0] * tick
    rng.gauss(model.mid, model.mid_sd)  # the sim's mid: not used, drawn so the depth draws stay the sim's
    ask = min(max((up_price + spread / 2).quantize(tick, rounding=ROUND_CEILING), 2 * tick), 1 - tick)
    bid = min(max((up_price - spread / 2).quantize(tick, rounding=ROUND_FLOOR), tick), ask - tick)
    up_asks = model._side(rng, [p for i in range(model.levels) if (p := ask + i * tick) <= 1 - tick])
    up_bids = model._side(rng, [p for i in range(model.levels) if (p := bid - i * tick) >= tick])
    return Book(bids=up_bids, asks=up_asks), Book(bids=mirrored(up_asks), asks=mirrored(up_bids))


# -- the adapters ---------------------------------------------------------------------------------------
class RecordedFeed(ReplayFeed):
    """The replayed candles with the recording beside them; with the recorded settlement the candles give no
    result, so AWAIT_SETTLE asks the venue for the official (recorded) one."""

    def __init__(self, frame: pl.DataFrame, recording: Recording, quotes: str = "recorded",
                 settle: str = "recorded") -> None:
        super().__init__(frame)
        if quotes not in QUOTES or settle not in SETTLEMENTS or (quotes, settle) == ("simulated", "candles"):
            raise ConfigError(f"quotes {quotes!r}, settle {settle!r}: one of them must be the recorded one")
        self.recording, self.quotes, self.settle = recording, quotes, settle

    def reference(self, start_ms: int, end_ms: int) -> Outcome | None:
        return super().reference(start_ms, end_ms) if self.settle == "candles" else None

    def adapters(self) -> tuple[type[SimClock], type[SimVenue]]:
        """The recorded venue, deciding ``DECISION_DELAY_SECS`` into each interval."""
        return DecisionClock, RecordedVenue


class DecisionClock(SimClock):
    """The simulated clock, but a sleep to an interval's start or end (a point of ``GRID_MS``) wakes
    ``DECISION_DELAY_SECS`` later: the machine decides that far into each interval."""

    def sleep_until(self, t_ms: int) -> None:
        super().sleep_until(t_ms + DECISION_DELAY_SECS * 1000 if t_ms % GRID_MS == 0 else t_ms)


class RecordedVenue(SimVenue):
    """The simulated venue (limits, fee, FOK fills, ledger) over the recorded markets."""

    feed: RecordedFeed

    def _window(self, start_ms: int) -> Window:
        market_slug = slug(start_ms, self.minutes)
        window = self.feed.recording.windows.get(start_ms)
        if window is None:
            raise DataError(f"{market_slug}: not in the recorded prices", code="no_recorded_market")
        if self.feed.settle == "recorded" and window.resolution is None:
            raise DataError(f"{market_slug}: no recorded resolution", code="unresolved")
        return window

    def _market(self, start_ms: int) -> Market:
        window = self._window(start_ms)
        market = super()._market(start_ms)
        if self.feed.quotes == "recorded":
            now = self.clock.now_ms()
            found = window.up_price(now)
            if found is None:
                raise DataError(f"{market.slug}: no recorded price at or before {now} ms (ms since the epoch) and "
                                f"at most {PRICE_STALE_SECS} s old", code="no_recorded_price")
            up_book, down_book = quoted_books(self.model, random.Random(f"{self.seed}:{start_ms}"),
                                              Decimal(repr(found[0])))
            market = replace(market, up_book=up_book, down_book=down_book)
        return replace(market, condition_id=window.condition_id or market.condition_id,
                       up_token=window.up_token or market.up_token, down_token=window.down_token or market.down_token)

    def resolution(self, market_slug: str) -> Outcome | None:
        if self.feed.settle == "candles":
            return super().resolution(market_slug)
        window = self.feed.recording.windows.get(slug_start_ms(market_slug)[0])
        return window.resolution if window is not None and self.clock.now_ms() >= window.end_ms else None


def replays(data: Path, prices: Path, minutes: int, quotes: str = "recorded",
            settle: str = "recorded") -> list[tuple[dict[str, Any], ReplayFeed]]:
    """``backtest --prices``: (journaled source, replay) of the simulated book, then of the recording, over one
    candle file (``wiring.world`` picks each one's clock and venue by the replay's kind)."""
    frame, recording = load_candles(data), load_prices(prices, minutes)
    taker = "taker_buy_base" in pl.scan_parquet(data).collect_schema()
    plain = {"kind": "replay", "data": str(Path(data).resolve()), "sha256": digest(Path(data)),
             "taker_flow": "recorded" if taker else "absent: taker_buy_base = volume / 2, imbalance 1.0"}
    kept = plain | {"prices": str(Path(prices).resolve()), "prices_sha256": digest(Path(prices)), "quotes": quotes,
                    "settle": settle, "decision_delay_secs": DECISION_DELAY_SECS, "price_stale_secs": PRICE_STALE_SECS}
    return [(plain, ReplayFeed(frame)), (kept, RecordedFeed(frame, recording, quotes, settle))]
