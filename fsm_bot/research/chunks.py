"""A backtest cut into independent chunks: one per calendar month (UTC) of the span, each a chain of
back-to-back sessions that starts fresh (the configured capital, a new session) at the month's first
interval and whose last session ends by the month's end. A chunk depends on nothing but its data and its
config, so the result is the same whatever runs the chunks, one process, this machine's cores or a
cluster, and in whatever order; chunks are put back in time order.

The boundaries are part of the result:

- the span starts at ``--from`` (default: the data's first interval start with ``cfg.candles`` minutes
  of candles before it) and ends where the data ends, or with the session that starts at ``--to``;
- a chunk is the part of one month (00:00 UTC on its first day to 00:00 UTC on the next month's) inside
  the span, so the first and the last chunk may be cut short;
- its sessions start at its first interval and follow each other as in one ``backtest.backtest`` run
  (after a halt, the next starts at the halting interval); the last one must end by the chunk's end, so
  the last minutes of a month that cannot hold a whole session (up to ``cfg.intervals`` intervals less
  one) are not traded, and a month starts with the configured capital whatever the previous one did.
"""

from __future__ import annotations

import concurrent.futures as cf
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import polars as pl

from fsm_bot import stopping
from fsm_bot.config import Config
from fsm_bot.ports import MINUTE_MS
from fsm_bot.research.executor import cores, executor
from fsm_bot.values import frozen

STOP_POLL_SECS = 0.25  # how often a wait for chunks looks for a stop
_FEEDS: dict[tuple[str, str], Any] = {}  # source's (data, sha256) -> its replay, loaded once per process
_SHARED: dict[tuple[str, str, "Chunk"], Any] = {}  # (data, sha256, chunk) -> what its trials share (``run_chunk``)


@frozen
class Chunk:
    """Sessions start from ``first_ms`` and end by ``end_ms`` (exclusive); ``label`` is the month."""

    label: str
    first_ms: int
    end_ms: int


def month_start(ms: int) -> int:
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return int(datetime(t.year, t.month, 1, tzinfo=timezone.utc).timestamp() * 1000)


def next_month(ms: int) -> int:
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    y, m = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return int(datetime(y, m, 1, tzinfo=timezone.utc).timestamp() * 1000)


def split(first_ms: int, end_ms: int) -> list[Chunk]:
    """The months of ``[first_ms, end_ms)``, the first and last cut to the span."""
    out, at = [], first_ms
    while at < end_ms:
        stop = min(next_month(at), end_ms)
        out.append(Chunk(datetime.fromtimestamp(at / 1000, tz=timezone.utc).strftime("%Y-%m"), at, stop))
        at = stop
    return out


def span(feed_first_ms: int, feed_last_ms: int, cfg: Config, first_ms: int | None, last_ms: int | None) -> tuple[int, int]:
    """[first, end) of a backtest: from ``first_ms`` (default: the data's first point with enough history)
    to the end of the session that starts at ``last_ms`` (default: the data's end)."""
    step = cfg.interval_secs * 1000
    earliest = feed_first_ms + cfg.candles * MINUTE_MS
    first = -(-max(earliest, first_ms or earliest) // step) * step
    data_end = feed_last_ms + MINUTE_MS
    end = data_end if last_ms is None else min(data_end, last_ms + cfg.intervals * step)
    return first, end


def remember(source: dict[str, Any], feed: Any) -> None:
    """Keep ``feed``, already loaded from ``source``, for the chunks this process runs."""
    if len(_FEEDS) >= 2:
        _FEEDS.clear()
    _FEEDS[(source.get("data", "bundled"), source.get("sha256", ""))] = feed


def _feed(source: dict[str, Any]) -> Any:
    """The source's replay, loaded once per process, its digest checked (a worker elsewhere reads its own
    copy of the file: a different one is refused, not backtested)."""
    key = (source.get("data", "bundled"), source.get("sha256", ""))
    if key not in _FEEDS:
        from fsm_bot import wiring
        remember(source, wiring.replay_feed(source))
    return _FEEDS[key]


def run_chunk(source: dict[str, Any], cfg: Config, chunk: Chunk,
              share: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(sessions, decisions) of one chunk; a module-level function, so any executor can run it. ``share``: what
    does not depend on the trial's rules (candle windows, markets) is kept in this process for the next trials
    of the same chunk, and taken from the earlier ones (a sweep)."""
    from fsm_bot import backtest
    feed = _feed(source)
    last_start = chunk.end_ms - cfg.intervals * cfg.interval_secs * 1000
    if last_start < chunk.first_ms:
        return pl.DataFrame(), _no_decisions()
    shared = _shared(source, chunk) if share else None
    sessions, decisions, _ = backtest.backtest(feed, cfg, chunk.first_ms, last_start, source=source, shared=shared)
    return sessions.with_columns(chunk=pl.lit(chunk.label)), decisions


def _shared(source: dict[str, Any], chunk: Chunk) -> Any:
    """This process's store for the chunk's trials, the two chunks asked last kept (a sweep hands a worker the
    trials of one chunk after another, so the one before may still have a trial in flight)."""
    from fsm_bot import backtest
    key = (source.get("data", "bundled"), source.get("sha256", ""), chunk)
    if key not in _SHARED:
        if len(_SHARED) >= 2:
            del _SHARED[next(iter(_SHARED))]
        _SHARED[key] = backtest.Shared()
    return _SHARED[key]


def run(source: dict[str, Any], cfg: Config, chunks: Sequence[Chunk], workers: int | None = None,
        cluster: str | None = None, progress: Callable[[int, int], None] | None = None,
        feed: Any = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every chunk, on ``workers`` local processes (default: every core; 1: this process) or the Dask
    ``cluster``; the frames concatenated in time order. ``progress(done, total)`` after each chunk; ``feed``:
    the source's replay if this process holds it already (kept for the chunks it runs itself)."""
    if feed is not None:
        remember(source, feed)
    if cluster is None:  # no more processes than chunks; one chunk runs here
        workers = min(cores() if workers is None else workers, max(len(chunks), 1))
    parts: list[tuple[pl.DataFrame, pl.DataFrame]] = [(pl.DataFrame(), pl.DataFrame())] * len(chunks)
    with executor(workers, cluster) as ex:
        futures = {ex.submit(run_chunk, source, cfg, c): i for i, c in enumerate(chunks)}
        try:
            waiting, done = set(futures), 0
            while waiting:
                finished, waiting = cf.wait(waiting, timeout=STOP_POLL_SECS, return_when=cf.FIRST_COMPLETED)
                stopping.check()  # a stop (Ctrl-C, SIGTERM) ends the wait, before a worker it killed is read
                for future in finished:
                    parts[futures[future]] = future.result()
                    done += 1
                    if progress:
                        progress(done, len(chunks))
        except BaseException:  # a failed chunk (or a stop) stops the ones not started yet
            for future in futures:
                future.cancel()
            raise
    traded = [s for s, _ in parts if s.height]
    sessions = pl.concat(traded, how="vertical") if traded else pl.DataFrame()
    decisions = pl.concat([d for _, d in parts if d.width], how="vertical") if parts else _no_decisions()
    return sessions, decisions


def _no_decisions() -> pl.DataFrame:
    from fsm_bot import backtest
    return pl.DataFrame(schema={c: backtest._SCHEMA[c] for c in backtest.DECISION_COLUMNS})
