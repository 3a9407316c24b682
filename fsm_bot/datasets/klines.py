"""Binance's 1-minute klines in the candle schema ``load_candles`` reads, checked a whole file at a time.

A kline is 12 fields, the same in a REST answer (a JSON array) and a dump file (a CSV line without a
header): open_time, open, high, low, close, volume, close_time, quote_asset_volume, number_of_trades,
taker_buy_base_volume, taker_buy_quote_volume, ignore. The dump's files give their times in
MICROseconds since 2025 (the REST API in ms): a time of 10^15 or more is microseconds and becomes ms.

``parse`` refuses what is not a kline -- a field that is not a plain decimal number (no exponent, sign
on a count, NaN or infinity), a time that is not a whole minute between 2009 and 2100, a close time that
is not the open time + 1 minute - 1 unit -- with a ``DataError`` naming the first bad row, its field and
its value. What a kline may honestly say, however odd (a high below the close, a negative volume),
passes here and is reported by ``checks.py``. The checks are polars expressions over the whole file (a
month is 44,640 rows), so REST pages and dump files go through the same ones.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from typing import Any, Sequence

import polars as pl

from fsm_bot.adapters.coingecko import shown
from fsm_bot.errors import DataError
from fsm_bot.ports import MINUTE_MS

FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_asset_volume",
          "number_of_trades", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore")
SCHEMA = {"open_time": pl.Datetime("ms", "UTC"), "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
          "close": pl.Float64, "volume": pl.Float64, "quote_volume": pl.Float64, "trades": pl.Int64,
          "taker_buy_base": pl.Float64}
"""The candle file's columns (the bundled sample's and the dev data's)."""
KEPT = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
        "quote_volume": "quote_asset_volume", "trades": "number_of_trades", "taker_buy_base": "taker_buy_base_volume"}
MICROS_FROM = 10**15
"""An open time at or above this is in microseconds (10^15 ms is the year 33658; 10^15 us is 2001)."""
EPOCH_MS = (1_230_768_000_000, 4_102_444_800_000)  # 2009-01-01, 2100-01-01
WHOLE = (r"^[0-9]{1,18}$", "a whole number >= 0")
DECIMAL = (r"^-?[0-9]{1,20}(\.[0-9]{1,20})?$", "a plain decimal number")
FORMS = {name: WHOLE if name in ("open_time", "close_time", "number_of_trades") else DECIMAL for name in FIELDS[:11]}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def parse(raw: pl.DataFrame, where: str, first_row: int = 1) -> pl.DataFrame:
    """Klines (12 text columns named ``FIELDS``) as a candle frame of ``SCHEMA``, in their order; ``where`` and
    ``first_row`` (the number of the first row) name a bad row in the message."""
    raw = raw.with_row_index("row", offset=first_row)
    for name, (pattern, form) in FORMS.items():
        _refuse(raw, ~pl.col(name).str.contains(pattern).fill_null(False), where, name, f"expected {form}")
    opened, closed = pl.col("open_time").cast(pl.Int64), pl.col("close_time").cast(pl.Int64)
    unit = pl.when(opened >= MICROS_FROM).then(1000).otherwise(1)
    ms = opened // unit
    _refuse(raw, (opened % (unit * MINUTE_MS) != 0) | (ms < EPOCH_MS[0]) | (ms >= EPOCH_MS[1]), where, "open_time",
            "expected a whole minute between 2009 and 2100, in ms or (from 10^15) microseconds")
    _refuse(raw, closed != opened + unit * MINUTE_MS - 1, where, "close_time",
            "expected open_time + 1 minute - 1 unit (a 1-minute kline)")
    return raw.select(ms.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("open_time"),
                      *(pl.col(source).cast(SCHEMA[name]).alias(name) for name, source in KEPT.items()))


def _refuse(raw: pl.DataFrame, bad: pl.Expr, where: str, field: str, expected: str) -> None:
    found = raw.filter(bad)
    if found.height:
        row = found.row(0, named=True)
        raise DataError(f"{where} {row['row']} {field}: {expected}, got {shown(row[field])}", code="bad_kline")


def page(rows: Any, where: str) -> pl.DataFrame:
    """A REST answer (a JSON array of 12-element arrays) as a candle frame."""
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(FIELDS) for r in rows):
        bad = next((r for r in rows if not isinstance(r, list) or len(r) != len(FIELDS)), rows) \
            if isinstance(rows, list) else rows
        raise DataError(f"{where}: expected klines of {len(FIELDS)} fields, got {shown(bad)}", code="bad_kline")
    text = [[_text(v) for v in r] for r in rows]
    return parse(pl.DataFrame(text, schema=dict.fromkeys(FIELDS, pl.String), orient="row"), where, 0)


def _text(value: Any) -> str | None:
    """A JSON value as the CSV would spell it: numbers and strings as text; anything else fails the checks."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return None


def frame(rows: Sequence[Sequence[Any]] = ()) -> pl.DataFrame:
    """(open ms, open, high, low, close, volume, quote volume, trades, taker buy base) rows as a candle frame."""
    raw = pl.DataFrame(list(rows), schema={name: (pl.Int64 if name == "open_time" else dtype)
                                           for name, dtype in SCHEMA.items()}, orient="row")
    return raw.with_columns(pl.col("open_time").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))


def read_zip(data: bytes, name: str) -> tuple[pl.DataFrame, bool]:
    """The candles of a dump file (a zip holding one CSV), and whether its times were microseconds."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.namelist() if m.endswith(".csv")]
        if len(members) != 1:
            raise DataError(f"{name}: expected one CSV file in the zip, found {members[:5]}", code="bad_dump")
        text = archive.read(members[0])
        raw = pl.read_csv(io.BytesIO(text), has_header=False, infer_schema=False, new_columns=list(FIELDS))
    except pl.exceptions.NoDataError:
        return frame(), False
    except (zipfile.BadZipFile, pl.exceptions.PolarsError, EOFError) as exc:
        raise DataError(f"{name}: not a zip of 12-column CSV ({type(exc).__name__})", code="bad_dump") from None
    header = raw.height > 0 and raw.item(0, "open_time") == "open_time"  # some of Binance's dumps carry one
    candles = parse(raw.slice(1) if header else raw, f"{name} line", 2 if header else 1)
    micro = raw.height > header and len(raw.item(int(header), "open_time")) >= len(str(MICROS_FROM))
    return candles, micro


def checksum(text: bytes, name: str) -> str:
    """The sha256 of a ``.CHECKSUM`` file: ``<64 hex digits>  <file name>``."""
    first = text.decode("ascii", "replace").split()
    if not first or not _SHA256.fullmatch(first[0]):
        raise DataError(f"{name}.CHECKSUM: expected a sha256 and the file name, got {shown(text)}", code="bad_dump")
    return first[0].lower()


def verify(data: bytes, expected_sha256: str, name: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected_sha256:
        raise DataError(f"{name}: sha256 {got} differs from its CHECKSUM file's {expected_sha256}", code="checksum")
