"""``fsm-bot backtest``: the same machine, handlers and simulated venue as ``--sim``, session after
session over a span of history.

Each session is a real ``--sim`` session (the config's intervals and capital, the seed's books) run
by the engine with a journal that is not fsynced per record; the next session starts at the first
interval the previous one did not record (after a halt: the halting interval itself, since a halt
records no row of its own). A row per interval of every session is collected from the journal
records as they are written: what FETCH saw, what PREDICT decided, what RISK and SIZE did, the fill
and the outcome. A halted session's remaining intervals get rows with action ``halted``.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl

from fsm_bot import engine, journal, wiring
from fsm_bot.config import Config
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


def run(feed: ReplayFeed, cfg: Config, first_ms: int | None = None, last_ms: int | None = None,
        work_dir: Path | None = None, progress: Callable[[int, int], None] | None = None,
        source: dict[str, Any] | None = None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yield (session summary, decision rows) for each session, back to back from ``first_ms``."""
    step = cfg.interval_secs * 1000
    start, end = session_starts(feed, cfg, first_ms, last_ms)
    first, total = start, max(0, (end - start) // step + 1)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        tmp_dir = Path(tmp)
        while start <= end:
            collector = Collector(session=session_id("sim", start, cfg.seed))
            final = sim_session(feed, cfg, start, tmp_dir, [collector], source)
            collector.halted(final)
            yield session_summary(final), collector.rows
            start += max(len(final.trades), 1) * step  # a halted session ran up to its halt, which it did not record
            if progress:
                progress(min((start - first) // step, total), total)


def sim_session(feed: ReplayFeed, cfg: Config, start_ms: int, work_dir: Path, observers: list[Observer] = (),
                source: dict[str, Any] | None = None) -> Session:
    """One ``--sim`` session from ``start_ms``, run by the engine in ``work_dir`` with an unsynced journal and
    ledger (what a backtest runs back to back); its journal stays there until the next session."""
    for name in (JOURNAL, LEDGER):
        (work_dir / name).unlink(missing_ok=True)
    source = source or {"kind": "replay"}
    world = wiring.world("sim", cfg, source, work_dir, now_ms=start_ms, feed=feed, durable=False)
    jr = journal.Journal(work_dir / JOURNAL, durable=False)
    try:
        session = engine.begin(jr, "sim", cfg, source, start_ms, start_ms)
        return engine.Engine(session, jr, world.clock, world.feed, world.venue, observers=observers).run()
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


def aggregate(sessions: pl.DataFrame, decisions: pl.DataFrame, cfg: Config) -> dict[str, Any]:
    """The table a trader reads first: sessions, halts, final capital, hit rate, PnL per trade, drawdowns."""
    trades = decisions.filter(pl.col("action") == "trade")
    wins = trades.filter(pl.col("outcome") == "WIN").height
    n = trades.height
    final = sessions.get_column("final_capital")
    dd = sessions.get_column("max_drawdown")
    q = (0.05, 0.25, 0.5, 0.75, 0.95)
    halts = sessions.filter(pl.col("halted") != "")
    return {
        "sessions": sessions.height, "intervals": decisions.height, "trades": n, "wins": wins,
        "hit_rate": wins / n if n else None, "hit_rate_wilson95": list(wilson(wins, n)),
        "halts": halts.height, "halt_share": halts.height / sessions.height if sessions.height else None,
        "halt_causes": dict(halts.get_column("halted").value_counts().iter_rows()) if halts.height else {},
        "final_capital": {f"p{int(x * 100):02d}": float(final.quantile(x, "nearest")) for x in q}
        | {"mean": float(final.mean())},
        "sessions_in_profit": float((final > float(cfg.capital_usd)).mean()) if sessions.height else None,
        "pnl_per_trade": float(trades.get_column("pnl").mean()) if n else None,
        "pnl_total": float(sessions.get_column("pnl").sum()), "fees_total": float(sessions.get_column("fees").sum()),
        "max_drawdown": {f"p{int(x * 100):02d}": float(dd.quantile(x, "nearest")) for x in q},
        "skip_reasons": dict(decisions.filter(pl.col("action").str.starts_with("skip:"))
                             .get_column("action").value_counts().iter_rows()),
    }


def hit_rate_by_month(decisions: pl.DataFrame) -> pl.DataFrame:
    trades = decisions.filter(pl.col("action") == "trade")
    return (trades.with_columns(month=pl.col("interval_start").str.slice(0, 7))
            .group_by("month").agg(trades=pl.len(), wins=(pl.col("outcome") == "WIN").sum()).sort("month")
            .with_columns(hit_rate=pl.col("wins") / pl.col("trades")))


def plots(sessions: pl.DataFrame, decisions: pl.DataFrame, out: Path, cfg: Config) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(sessions.get_column("final_capital").to_numpy(), bins=60, color="#4878a8")
    ax.axvline(float(cfg.capital_usd), color="black", lw=1, ls="--", label=f"start (${cfg.capital_usd})")
    ax.axvline(float(cfg.floor_usd), color="firebrick", lw=1, ls=":", label=f"floor (${cfg.floor_usd})")
    ax.set(title=f"final capital of {sessions.height:,} back-to-back {cfg.intervals}-interval sessions", xlabel="USD",
           ylabel="sessions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "final_capital.png", dpi=110)
    plt.close(fig)
    written.append(out / "final_capital.png")

    monthly = hit_rate_by_month(decisions)
    fig, ax = plt.subplots(figsize=(10, 4))
    rates = monthly.get_column("hit_rate").to_numpy()
    bounds = [wilson(w, n) for w, n in zip(monthly.get_column("wins"), monthly.get_column("trades"))]
    ax.errorbar(range(len(rates)), rates, yerr=[[r - lo for r, (lo, _) in zip(rates, bounds)],
                                                [hi - r for r, (_, hi) in zip(rates, bounds)]], fmt="o", capsize=2)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(rates)), monthly.get_column("month").to_list(), rotation=60, fontsize=7)
    ax.set(title="hit rate of traded intervals by month (95% Wilson intervals)", ylabel="hit rate")
    fig.tight_layout()
    fig.savefig(out / "hit_rate_by_month.png", dpi=110)
    plt.close(fig)
    written.append(out / "hit_rate_by_month.png")
    return written


def backtest(feed: ReplayFeed, cfg: Config, first_ms: int | None = None, last_ms: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             source: dict[str, Any] | None = None) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    """(sessions, decisions, seconds) of a whole backtest."""
    started = time.perf_counter()
    schema = {c: _SCHEMA[c] for c in DECISION_COLUMNS}
    summaries, rows, frames = [], [], []
    for summary, decided in run(feed, cfg, first_ms, last_ms, progress=progress, source=source):
        summaries.append(summary)
        rows.extend(decided)
        if len(rows) >= 20_000:  # rows as dicts are large; columns are not
            frames.append(pl.from_dicts(rows, schema=schema))
            rows = []
    frames.append(pl.from_dicts(rows, schema=schema))
    seconds = time.perf_counter() - started
    return pl.DataFrame(summaries), pl.concat(frames), seconds


_SCHEMA: dict[str, Any] = {"session": pl.String, "interval": pl.Int64, "interval_start": pl.String, "close": pl.Float64,
                           "rsi": pl.Float64, "macd": pl.Float64, "macd_signal": pl.Float64, "imbalance": pl.Float64,
                           "range_pct": pl.Float64, "signal": pl.String, "tier": pl.String, "action": pl.String,
                           "stake": pl.Float64, "fill_price": pl.Float64, "fee": pl.Float64, "outcome": pl.String,
                           "pnl": pl.Float64, "capital": pl.Float64}
