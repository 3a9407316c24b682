"""Candles as the machine carries them: a window of 1-minute candles as numpy arrays (``Columns``), what the
feeds hand FETCH and what its record keeps; and the candle files a replay reads (``load_candles``), the
bundled sample among them.

polars reads the files; a window of candles needs only numpy, so a session that replays the bundled sample
(from its columns in numpy's format, ``bundled_columns``) or that trades live never imports polars.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fsm_bot.errors import ConfigError
from fsm_bot.ports import CANDLE_COLUMNS
from fsm_bot.values import frozen

if TYPE_CHECKING:
    import polars as pl

BUNDLED = Path(__file__).resolve().parent / "data" / "btcusdt_1m_sample.parquet"
BUNDLED_COLUMNS = BUNDLED.with_suffix(".npz")
"""The bundled sample's columns in numpy's own format, with the sha256 of the parquet they were read from
(``scripts/bundle_sample.py`` writes it): a replay of the sample reads them, and needs no polars (whose import
takes 0.15-0.45 s), whenever that sha256 is the parquet's."""


@frozen(eq=False)
class Columns:
    """A window of candles (``CANDLE_COLUMNS``) as numpy arrays, oldest first: what the feeds hand FETCH and what
    its record keeps (each column as a list of numbers)."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker_buy_base: np.ndarray

    @classmethod
    def of(cls, candles: Any) -> "Columns":
        """``candles`` as columns: a ``Columns`` as it is, a frame's columns taken out once. Raises
        ``ColumnError`` for a missing or non-numeric column."""
        if isinstance(candles, Columns):
            return candles
        try:
            first = candles.get_column(CANDLE_COLUMNS[0]).to_numpy().astype(np.int64, copy=False)
            rest = [candles.get_column(name).to_numpy().astype(np.float64, copy=False) for name in CANDLE_COLUMNS[1:]]
        except _frame_errors() as exc:
            raise ColumnError(f"unusable candle frame: {exc}") from None
        return cls(first, *rest)

    @classmethod
    def rows(cls, rows: Any) -> "Columns":
        """From (open_time, open, high, low, close, volume, taker_buy_base) tuples, oldest first."""
        table = np.array(rows, dtype=np.float64).reshape(-1, len(CANDLE_COLUMNS)).T  # a ms time is exact in a float
        return cls(table[0].astype(np.int64), *(np.ascontiguousarray(col) for col in table[1:]))

    @classmethod
    def decoded(cls, raw: dict[str, Any]) -> "Columns":
        """Read back from a record (``codec``): a missing number (a NaN, which JSON cannot hold) is NaN again."""
        try:
            first = np.array(raw[CANDLE_COLUMNS[0]], dtype=np.int64)
        except TypeError:
            first = np.array(raw[CANDLE_COLUMNS[0]], dtype=np.float64).astype(np.int64)
        return cls(first, *(np.array(raw[name], dtype=np.float64) for name in CANDLE_COLUMNS[1:]))

    def __len__(self) -> int:
        return len(self.open_time)

    def slice(self, offset: int, length: int) -> "Columns":
        """Rows ``offset`` to ``offset + length`` (views, no copy)."""
        return Columns(*(getattr(self, name)[offset:offset + length] for name in CANDLE_COLUMNS))

    def equals(self, other: Any) -> bool:
        o = Columns.of(other)
        return all(np.array_equal(getattr(self, n), getattr(o, n), equal_nan=n != CANDLE_COLUMNS[0])
                   for n in CANDLE_COLUMNS)

    def frame(self) -> Any:
        """As a polars frame (imports polars)."""
        import polars as pl
        return pl.DataFrame({name: getattr(self, name) for name in CANDLE_COLUMNS})


def _frame_errors() -> tuple[type[BaseException], ...]:
    pl = sys.modules.get("polars")  # a frame exists only once polars is loaded
    return (TypeError, ValueError, AttributeError) + ((pl.exceptions.PolarsError,) if pl is not None else ())


class ColumnError(ValueError):
    """A candle frame whose columns are missing or not numbers."""


def load_candles(path: Path, neutral_taker: bool = False) -> pl.DataFrame:
    """A candle file of the dev data's schema, as CANDLE_COLUMNS with ``open_time`` in ms.

    Only those columns are read (a lazy scan), so two years of candles take about 60 MB. ``neutral_taker``
    (``backtest --prices``) accepts an OHLCV-only file: ``taker_buy_base`` is then ``volume / 2``, so the
    taker-flow proxy reads exactly 1.0, no lean.
    """
    import polars as pl  # here: what needs no file needs no polars

    if not Path(path).is_file():
        raise not_a_file("--data", path)
    try:
        lazy = pl.scan_parquet(path)
        schema = lazy.collect_schema()
    except Exception as exc:  # polars raises several kinds for a file that is not parquet
        raise ConfigError(f"--data {path}: not a readable parquet file ({type(exc).__name__})") from None
    missing = [c for c in CANDLE_COLUMNS if c not in schema]
    if neutral_taker and missing == ["taker_buy_base"]:
        lazy, missing = lazy.with_columns(taker_buy_base=pl.col("volume").cast(pl.Float64) / 2), []
    if missing:
        hint = ("; an OHLCV file has no taker flow for the imbalance: `fsm-bot data binance` downloads candles with "
                "it (only `backtest --prices` reads a file without it, as half the volume)"
                if missing == ["taker_buy_base"] else "")
        raise ConfigError(f"--data {path}: missing column(s) {missing}; need {list(CANDLE_COLUMNS)}{hint}")
    times = pl.col("open_time")
    if schema["open_time"] != pl.Int64:
        times = times.dt.epoch("ms") if isinstance(schema["open_time"], pl.Datetime) else times.cast(pl.Int64)
    try:
        frame = lazy.select(times.alias("open_time"), *(pl.col(c).cast(pl.Float64) for c in CANDLE_COLUMNS[1:])).collect()
    except Exception as exc:
        raise ConfigError(f"--data {path}: unusable candle columns ({type(exc).__name__}: {exc})") from None
    if frame.height < 2 or not frame.get_column("open_time").is_sorted():
        raise ConfigError(f"--data {path}: open_time must increase")
    return frame.rechunk()


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundled_columns(sha256: str) -> Columns | None:
    """The bundled sample's columns, if they were read from the parquet whose digest is ``sha256``."""
    if not BUNDLED_COLUMNS.is_file():
        return None
    with np.load(BUNDLED_COLUMNS) as kept:
        if str(kept["parquet_sha256"]) != sha256:
            return None
        return Columns(*(kept[name] for name in CANDLE_COLUMNS))


def not_a_file(flag: str, path: Path | str) -> ConfigError:
    """The error for a ``--data`` or ``--prices`` that names no file: a folder, or nothing."""
    return ConfigError(f"{flag} {path}: " + ("a folder, not a file" if Path(path).is_dir() else "no such file"))
