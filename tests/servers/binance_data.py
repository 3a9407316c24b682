"""Loopback Binance for ``fsm-bot data binance``: the REST klines and a data.binance.vision file server, both
serving real candles (a candle file of the project's schema: the dev data or the bundled sample) in the
real formats.

``FakeKlines`` -- ``GET /api/v3/klines`` as Binance answers it: ``symbol``, ``interval`` (1m), ``limit``
(default 500, 1..1000), ``startTime``/``endTime`` on the open time, inclusive; the first ``limit`` klines
from the start. Every answer carries ``X-MBX-USED-WEIGHT-1M``: the weight used in this wall minute (2
per klines request) plus ``weight_base`` (a test sets it near the limit). ``throttle(secs)`` answers
the next request 429 with ``Retry-After: secs``. ``hits`` logs (wall time, query, status) of every klines
request, so a test sees when the client came back. ``down_after(n)``: n more answers, then nothing until
``up()``. A gap is a candle missing from the frame it serves.

``FakeVision`` -- ``/data/spot/{monthly,daily}/klines/BTCUSDT/1m/BTCUSDT-1m-<month|day>.zip`` and their
``.CHECKSUM`` (``<sha256>  <name>``), built at start from the candles: a zip holding one headerless CSV
of 12 columns, prices to 8 decimals, times in ms before 2025 and in MICROseconds from 2025 on, as the
real dump has them. A month or day the candles do not cover wholly, or named in ``unpublished``, is a
404 (S3's ``NoSuchKey`` XML). ``publish(name, lines)`` serves a file with other CSV lines (a duplicate, a
bad candle); ``corrupt(name)`` a zip whose bytes differ from its CHECKSUM.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Self

import numpy as np
import polars as pl

from tests.servers.base import JsonServer, Reply, Request

MINUTE_MS = 60_000
MICROS_SINCE = datetime(2025, 1, 1, tzinfo=timezone.utc)  # the dump's times are microseconds from here on
NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
               b"<Message>The specified key does not exist.</Message></Error>")
MONTH = re.compile(r"BTCUSDT-1m-(\d{4})-(\d{2})")
DAY = re.compile(r"BTCUSDT-1m-(\d{4})-(\d{2})-(\d{2})")


def klines(candles: pl.DataFrame, micro: bool = False) -> pl.DataFrame:
    """Candles as Binance's 12 kline fields (times in ms, or microseconds with ``micro``); the taker buy
    quote volume, which the candle files do not keep, is the taker base volume at the mid of open and close."""
    unit = 1000 if micro else 1
    t = pl.col("open_time").dt.epoch("ms")
    return candles.select((t * unit).alias("open_time"), "open", "high", "low", "close", "volume",
                          ((t + MINUTE_MS) * unit - 1).alias("close_time"), "quote_volume", "trades",
                          "taker_buy_base", (pl.col("taker_buy_base") * (pl.col("open") + pl.col("close")) / 2)
                          .alias("taker_buy_quote"), pl.lit("0").alias("ignore"))


def csv_lines(candles: pl.DataFrame, micro: bool) -> str:
    """The dump's CSV: no header, prices and volumes to 8 decimals."""
    return klines(candles, micro).write_csv(include_header=False, float_precision=8)


def zipped(name: str, text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name + ".csv", text)
    return out.getvalue()


def bounds(name: str) -> tuple[datetime, datetime] | None:
    """[first, end) of a dump file's month or day."""
    if m := DAY.fullmatch(name):
        first = datetime(*map(int, m.groups()), tzinfo=timezone.utc)
        return first, first + timedelta(days=1)
    if m := MONTH.fullmatch(name):
        year, month = map(int, m.groups())
        return datetime(year, month, 1, tzinfo=timezone.utc), datetime(year + month // 12, month % 12 + 1, 1,
                                                                       tzinfo=timezone.utc)
    return None


class Loopback:
    """One ``JsonServer``'s start, stop and URL."""

    server: JsonServer

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url


class FakeKlines(Loopback):
    def __init__(self, candles: pl.DataFrame, weight_base: int = 0) -> None:
        self.candles = candles
        self.times = candles.get_column("open_time").dt.epoch("ms").to_numpy()
        self.weight_base = weight_base
        self.hits: list[tuple[float, dict[str, str], int]] = []
        self._retry_after: str | None = None
        self._answers_left: int | None = None
        self._lock = threading.Lock()
        self.server = JsonServer("binance-klines")
        self.server.route("GET", "/api/v3/klines", self._klines)

    def throttle(self, secs: int) -> None:
        """Answer the next klines request 429 with ``Retry-After: secs``."""
        self._retry_after = str(secs)

    def down_after(self, answers: int) -> None:
        """Answer ``answers`` more requests, then drop every connection unanswered until ``up()``."""
        self._answers_left = answers

    def up(self) -> None:
        with self.server.lock:
            self.server.faults.clear()
        self._answers_left = None

    def _klines(self, req: Request) -> Reply:
        q = req.query
        with self._lock:
            minute = int(time.time() // 60)
            used = self.weight_base + 2 * (1 + sum(1 for t, _, s in self.hits if int(t // 60) == minute and s == 200))
            if self._retry_after is not None:
                after, self._retry_after = self._retry_after, None
                self.hits.append((time.time(), dict(q), 429))
                return Reply(429, {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 "
                                   "requests per minute."}, {"Retry-After": after})
            reply = self._answer(q)
            self.hits.append((time.time(), dict(q), reply.status))
            if self._answers_left is not None:
                self._answers_left -= 1
                if self._answers_left == 0:
                    self.server.fault("GET", "/api/v3/klines", "drop", count=10**9)
        reply.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return reply

    def _answer(self, q: dict[str, str]) -> Reply:
        if q.get("symbol") != "BTCUSDT" or q.get("interval") != "1m":
            return Reply(400, {"code": -1121, "msg": "Invalid symbol."})
        try:
            limit, start, end = int(q.get("limit", 500)), int(q["startTime"]), int(q.get("endTime", 2**62))
        except (KeyError, ValueError):
            return Reply(400, {"code": -1100, "msg": "Illegal characters found in a parameter."})
        if not 1 <= limit <= 1000:
            return Reply(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
        first = int(np.searchsorted(self.times, start))
        last = min(int(np.searchsorted(self.times, end, side="right")), first + limit)
        rows = klines(self.candles.slice(first, last - first)).rows()
        text = [[r[0], *(f"{x:.8f}" for x in r[1:6]), r[6], f"{r[7]:.8f}", r[8], f"{r[9]:.8f}", f"{r[10]:.8f}", r[11]]
                for r in rows]
        return Reply(200, text)


class FakeVision(Loopback):
    def __init__(self, candles: pl.DataFrame, unpublished: tuple[str, ...] = ()) -> None:
        self.candles = candles
        self.unpublished = set(unpublished)
        self.files: dict[str, bytes] = {}
        self.sums: dict[str, str] = {}
        self.server = JsonServer("data.binance.vision")
        self.server.route("GET", r"/data/spot/(?P<kind>monthly|daily)/klines/BTCUSDT/1m/"
                                 r"(?P<name>BTCUSDT-1m-[0-9-]+)\.zip(?P<sum>\.CHECKSUM)?", self._file)

    def covered(self, name: str) -> pl.DataFrame | None:
        """The candles of a month or day the candles cover wholly; None otherwise."""
        span = bounds(name)
        if span is None:
            return None
        rows = self.candles.filter(pl.col("open_time").is_between(*span, closed="left"))
        return rows if rows.height == (span[1] - span[0]) // timedelta(minutes=1) else None

    def lines(self, name: str) -> str:
        """The CSV of a file the candles cover (microseconds from 2025 on, as the real dump)."""
        rows = self.covered(name)
        assert rows is not None, f"the candles do not cover {name}"
        return csv_lines(rows, micro=bounds(name)[0] >= MICROS_SINCE)

    def publish(self, name: str, text: str) -> None:
        """Serve ``name`` with this CSV (a test spoils a file this way), its CHECKSUM to match."""
        self.files[name] = zipped(name, text)
        self.sums[name] = hashlib.sha256(self.files[name]).hexdigest()

    def corrupt(self, name: str) -> None:
        """Serve ``name``'s zip with one bit flipped: its CHECKSUM no longer matches."""
        self._built(name)
        self.files[name] = self.files[name][:-1] + bytes([self.files[name][-1] ^ 1])

    def requested(self, suffix: str = ".zip") -> list[str]:
        """The names of the files served (200), in order."""
        return [p.rsplit("/", 1)[1] for m, p, s in self.server.log if s == 200 and p.endswith(suffix)]

    def _built(self, name: str) -> bool:
        if name not in self.files and self.covered(name) is not None:
            self.publish(name, self.lines(name))
        return name in self.files

    def _file(self, req: Request) -> Reply:
        name = req.match["name"]
        if (req.match["kind"] == "monthly") != bool(MONTH.fullmatch(name)) or name in self.unpublished or \
                not self._built(name):
            return Reply(404, raw=NO_SUCH_KEY)
        if req.match["sum"]:
            return Reply(200, raw=f"{self.sums[name]}  {name}.zip\n".encode())
        return Reply(200, raw=self.files[name])
