"""``fsm-bot backtest``: the same machine, handlers and simulated venue as ``--sim``, session after
session over a span of history.

Each session is a real ``--sim`` session (the config's intervals and capital, the seed's books) run by
the engine, every trigger fired through the ``transitions`` machine and every record built and folded;
the records are kept in memory (``journal.MemoryJournal``: nothing encoded or written unless read, and
``engine.replay_check`` reads them as it reads a file), the venue's ledger too. Each FETCH is handed
what its candle window shows, computed for the whole span at once (``indicators.Windows``, equal bit
for bit to what FETCH computes from the candles).

Sessions run back to back: the next one starts at the first interval the previous one did not record.
A halt records no row of its own, so after a halt the next session starts at the halting interval
itself. A row per interval of every session is collected from the records as they are made: what FETCH
saw, what PREDICT decided, what RISK and SIZE did, the fill and the outcome. A halted session's
remaining intervals get rows with action ``halted``; they were not evaluated (``evaluated`` counts the
others).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import polars as pl

from fsm_bot import engine, indicators, journal, stopping, wiring
from fsm_bot.config import Config
from fsm_bot.exact_risk import breakeven_win_rate
from fsm_bot.machine import Built
from fsm_bot.money import max_drawdown
from fsm_bot.engine import Observer, Transition
from fsm_bot.adapters.sim import ReplayFeed
from fsm_bot.ports import MINUTE_MS
from fsm_bot.session import Session, iso_seconds, session_id
from fsm_bot.statedir import JOURNAL, LEDGER

DECISION_COLUMNS = ["session", "interval", "interval_start", "close", "rsi", "macd", "macd_signal", "imbalance",
                    "range_pct", "signal", "tier", "action", "stake", "fill_price", "fee", "outcome", "pnl", "capital"]


@dataclass
class Collector:
    """Turns one session's journal records into decision rows and a session summary."""

    session: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, Any] = field(default_factory=dict)

    def on_transition(self, t: Transition) -> None:
        rec, step = t.record, t.step
        trigger = rec["trigger"]
        if trigger == "tick":
            self.current = {"session": self.session, "interval": rec["interval"],
                            "interval_start": iso_seconds(step.start_ms)}  # type: ignore[attr-defined]
        elif trigger == "fetched":
            s = step.snapshot  # type: ignore[attr-defined]
            self.current.update(close=s.close, rsi=s.rsi, macd=s.macd, macd_signal=s.macd_signal,
                                imbalance=s.imbalance, range_pct=s.range_pct)
        elif trigger == "predicted":
            self.current.update(signal=step.side, tier=step.tier)  # type: ignore[attr-defined]
        elif trigger == "sized":
            self.current["stake"] = float(step.stake_usd)  # type: ignore[attr-defined]
        elif trigger == "submitted":
            fill = step.fill  # type: ignore[attr-defined]
            self.current.update(fill_price=float(fill.avg_price), fee=float(fill.fee_usd))
        elif trigger == "skip":
            self.current.setdefault("interval", rec["interval"])
            self.current["action"] = f"skip:{step.reason}"  # type: ignore[attr-defined]
        elif trigger == "recorded":
            row = step.row  # type: ignore[attr-defined]
            self.current.setdefault("interval_start", row.timestamp)
            self.current.setdefault("action", "trade")
            self.current.update(outcome=row.outcome, pnl=float(row.pnl), capital=float(row.capital_after))
            self.rows.append(self.current)
            self.current = {"session": self.session}

    def halted(self, final: Session) -> None:
        for row in final.rows()[len(final.trades):]:
            self.rows.append({"session": self.session, "interval": row.interval_number,
                              "interval_start": row.timestamp, "action": "halted", "outcome": "SKIPPED",
                              "pnl": 0.0, "capital": float(row.capital_after)})


def session_summary(final: Session) -> dict[str, Any]:
    rows = final.rows()
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    max_dd = max_drawdown([final.capital0] + [r.capital_after for r in rows])
    return {"session": final.session, "start": iso_seconds(final.start_ms), "intervals_run": len(final.trades),
            "trades": len(traded), "wins": sum(r.outcome == "WIN" for r in traded),
            "skipped": len(rows) - len(traded), "halted": final.halted or "",
            "final_capital": float(final.capital), "pnl": float(final.capital - final.capital0),
            "fees": float(sum((r.fee for r in rows), Decimal(0))), "max_drawdown": float(max_dd)}


def session_starts(feed: ReplayFeed, cfg: Config, first_ms: int | None, last_ms: int | None) -> tuple[int, int]:
    """(first session start, the last start a whole session still fits before) on the interval grid."""
    step = cfg.interval_secs * 1000
    earliest = feed.first_ms + cfg.candles * MINUTE_MS
    start = max(earliest, first_ms or earliest)
    start = -(-start // step) * step
    data_end = feed.last_ms + MINUTE_MS - cfg.intervals * step
    end = min(data_end, last_ms) if last_ms is not None else data_end
    return start, end


@dataclass
class Shared:
    """What the backtests of one span compute alike whatever their trial's rules, kept for the next one over it
    (a sweep's trials of one chunk): the candle windows for each set of indicator periods, and the markets
    drawn (a pure function of the seed and the interval's start)."""

    windows: dict[tuple[Any, ...], indicators.Windows] = field(default_factory=dict)
    markets: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def windows_for(self, feed: ReplayFeed, cfg: Config, first_start_ms: int, last_start_ms: int) -> indicators.Windows:
        key = (first_start_ms, last_start_ms, cfg.interval_secs, cfg.intervals, indicators.periods(cfg))
        if key not in self.windows:
            self.windows[key] = decision_windows(feed, cfg, first_start_ms, last_start_ms)
        return self.windows[key]


def run(feed: ReplayFeed, cfg: Config, first_ms: int | None = None, last_ms: int | None = None,
        work_dir: Path | None = None, progress: Callable[[int, int], None] | None = None,
        source: dict[str, Any] | None = None,
        shared: Shared | None = None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yield (session summary, decision rows) for each session, back to back from ``first_ms`` (``work_dir``:
    each session's journal and ledger written there, unsynced, instead of kept in memory; ``shared``: what an
    earlier backtest over the same span computed, used and added to)."""
    step = cfg.interval_secs * 1000
    start, end = session_starts(feed, cfg, first_ms, last_ms)
    first, total = start, max(0, (end - start) // step + 1)
    windows = shared.windows_for(feed, cfg, start, end) if shared else decision_windows(feed, cfg, start, end)
    markets, machine = shared.markets if shared else None, engine.reusable_machine()
    while start <= end:
        collector = Collector(session=session_id("sim", start, cfg.seed))
        final = sim_session(feed, cfg, start, work_dir, [collector], source, windows, machine=machine,
                            markets=markets)
        collector.halted(final)
        yield session_summary(final), collector.rows
        start += max(len(final.trades), 1) * step  # a halted session ran up to its halt, which it did not record
        if progress:
            progress(min((start - first) // step, total), total)


def decision_windows(feed: ReplayFeed, cfg: Config, first_start_ms: int, last_start_ms: int) -> indicators.Windows:
    """What the candles show before every interval start of the sessions from ``first_start_ms`` to the one
    from ``last_start_ms``, computed at once."""
    step = cfg.interval_secs * 1000
    return indicators.Windows(feed.columns, np.arange(first_start_ms, last_start_ms + cfg.intervals * step, step), cfg)


def sim_session(feed: ReplayFeed, cfg: Config, start_ms: int, work_dir: Path | None = None,
                observers: Sequence[Observer] = (), source: dict[str, Any] | None = None,
                windows: indicators.Windows | None = None,
                jr: journal.Journal | journal.MemoryJournal | None = None, machine: Built | None = None,
                markets: dict[tuple[Any, ...], Any] | None = None) -> Session:
    """One ``--sim`` session from ``start_ms``, run by the engine: its journal and ledger in memory (``jr``, if
    given, is the journal), or in ``work_dir`` unsynced (they stay there until the next session). ``windows``,
    ``machine`` (``engine.reusable_machine()``) and ``markets`` are what sessions run one after another share."""
    if work_dir is not None:
        for name in (JOURNAL, LEDGER):
            (work_dir / name).unlink(missing_ok=True)
    source = source or {"kind": "replay"}
    world = wiring.world("sim", cfg, source, work_dir, now_ms=start_ms, feed=feed, durable=False, markets=markets)
    if jr is None:
        jr = journal.MemoryJournal() if work_dir is None else journal.Journal(work_dir / JOURNAL, durable=False)
    try:
        session = engine.begin(jr, "sim", cfg, source, start_ms, start_ms)
        return engine.Engine(session, jr, world.clock, world.feed, world.venue, observers=observers,
                             windows=windows, machine=machine, stop=stopping.STOP).run()
    finally:
        jr.close()
        world.close()


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def exact_sum(column: pl.Series) -> Decimal:
    """The exact sum of money carried as floats: each float is a short decimal (a ``Decimal`` made float), so
    its shortest repr is that decimal again; summed as decimals, nothing drifts."""
    return sum((Decimal(repr(x)) for x in column.drop_nulls().to_list()), Decimal(0))


def aggregate(sessions: pl.DataFrame, decisions: pl.DataFrame, cfg: Config) -> dict[str, Any]:
    """The table a trader reads first: sessions, halts, final capital, hit rate, PnL per trade, drawdowns."""
    trades = decisions.filter(pl.col("action") == "trade")
    wins = trades.filter(pl.col("outcome") == "WIN").height
    n = trades.height
    final = sessions.get_column("final_capital")
    dd = sessions.get_column("max_drawdown")
    q = (0.05, 0.25, 0.5, 0.75, 0.95)
    halts = sessions.filter(pl.col("halted") != "")
    pnl, fees = exact_sum(sessions.get_column("pnl")), exact_sum(sessions.get_column("fees"))
    price = (exact_sum(trades.get_column("fill_price")) / n).quantize(Decimal("0.0001")) if n else None
    be = breakeven_win_rate(price, cfg.fee_rate) if price is not None else None
    lo, hi = wilson(wins, n)
    return {
        "sessions": sessions.height, "intervals": decisions.height, "trades": n, "wins": wins,
        "hit_rate": wins / n if n else None, "hit_rate_wilson95": list(wilson(wins, n)),
        "halts": halts.height, "halt_share": halts.height / sessions.height if sessions.height else None,
        "halt_causes": dict(halts.get_column("halted").value_counts().iter_rows()) if halts.height else {},
        "final_capital": {f"p{int(x * 100):02d}": float(final.quantile(x, "nearest")) for x in q}
        | {"mean": float(final.mean()), "median": float(final.median())},
        "sessions_in_profit": float((final > float(cfg.capital_usd)).mean()) if sessions.height else None,
        "pnl_per_trade": float(trades.get_column("pnl").mean()) if n else None,
        "pnl_total": float(pnl), "fees_total": float(fees), "pnl_gross_total": float(pnl + fees),
        "avg_entry_price": float(price) if price is not None else None,
        "breakeven_hit_rate": be, "vs_breakeven": None if be is None else (
            "above" if lo > be else "below" if hi < be else "not distinguishable from"),
        "max_drawdown": {f"p{int(x * 100):02d}": float(dd.quantile(x, "nearest")) for x in q},
        "skip_reasons": dict(decisions.filter(pl.col("action").str.starts_with("skip:"))
                             .get_column("action").value_counts().iter_rows()),
    }


def hit_rate_by_month(decisions: pl.DataFrame) -> pl.DataFrame:
    trades = decisions.filter(pl.col("action") == "trade")
    return (trades.with_columns(month=pl.col("interval_start").str.slice(0, 7))
            .group_by("month").agg(trades=pl.len(), wins=(pl.col("outcome") == "WIN").sum()).sort("month")
            .with_columns(hit_rate=pl.col("wins") / pl.col("trades")))


def plots(sessions: pl.DataFrame, decisions: pl.DataFrame, out: Path, cfg: Config,
          min_trades: int | None = None) -> list[Path]:
    """``final_capital.png`` and ``hit_rate_by_month.png`` in ``out`` (``fsm_bot.report.figures``); a month of
    fewer than ``min_trades`` trades is drawn faded (default ``figures.MIN_TRADES``)."""
    from fsm_bot.report import figures  # here: fsm_bot.report imports this module
    return figures.backtest(sessions, decisions, out, cfg, figures.MIN_TRADES if min_trades is None else min_trades)


def backtest(feed: ReplayFeed, cfg: Config, first_ms: int | None = None, last_ms: int | None = None,
             progress: Callable[[int, int], None] | None = None, source: dict[str, Any] | None = None,
             shared: Shared | None = None) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """(sessions, decisions, seconds) of a whole backtest."""
    started = time.perf_counter()
    schema = {c: _SCHEMA[c] for c in DECISION_COLUMNS}
    summaries, rows, frames = [], [], []
    for summary, decided in run(feed, cfg, first_ms, last_ms, progress=progress, source=source, shared=shared):
        summaries.append(summary)
        rows.extend(decided)
        if len(rows) >= 20_000:  # rows as dicts are large; columns are not
            frames.append(pl.from_dicts(rows, schema=schema))
            rows = []
    frames.append(pl.from_dicts(rows, schema=schema))
    seconds = time.perf_counter() - started
    return pl.DataFrame(summaries), pl.concat(frames), seconds


def evaluated(decisions: pl.DataFrame) -> int:
    """The intervals the machine ran: every row but the placeholders a halted session's rest is given."""
    return decisions.height - int((decisions.get_column("action") == "halted").sum()) if decisions.height else 0


_SCHEMA: dict[str, Any] = {"session": pl.String, "interval": pl.Int64, "interval_start": pl.String, "close": pl.Float64,
                           "rsi": pl.Float64, "macd": pl.Float64, "macd_signal": pl.Float64, "imbalance": pl.Float64,
                           "range_pct": pl.Float64, "signal": pl.String, "tier": pl.String, "action": pl.String,
                           "stake": pl.Float64, "fill_price": pl.Float64, "fee": pl.Float64, "outcome": pl.String,
                           "pnl": pl.Float64, "capital": pl.Float64}
