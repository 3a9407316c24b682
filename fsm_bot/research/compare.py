"""``backtest --prices``: the simulated book and the recorded prices, the same machine over the same span,
reported side by side, so a trader sees whether the edge survives the market's own price.

The span is the recording's (its first window to the end of its last), cut to ``--from``/``--to`` and to
the candles; both runs are ``backtest.backtest`` over it, one with the plain simulated venue, one with
``fsm_bot.adapters.recorded``'s. Each is summed up by ``backtest.aggregate``; ``aggregate.json`` holds the
simulated book's aggregate with the recorded one as its ``recorded_prices`` block.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import polars as pl

from fsm_bot import backtest
from fsm_bot.adapters import recorded
from fsm_bot.adapters.sim import ReplayFeed
from fsm_bot.config import Config
from fsm_bot.errors import ConfigError
from fsm_bot.session import iso_seconds

SIDES = ("simulated book", "recorded prices")


def minutes(path: Any, asked: int | None) -> int:
    """The interval length to run: ``--interval-minutes``, else the one the prices file holds."""
    held = recorded.intervals(path)
    if asked is not None:
        return asked
    if len(held) != 1:
        raise ConfigError(f"--prices {path}: holds {held}-minute markets; say which with --interval-minutes")
    return held[0]


def span(feed: recorded.RecordedFeed, cfg: Config, first_ms: int | None, last_ms: int | None) -> tuple[int, int]:
    """(first, last session start): the recording's span, cut to ``--from``/``--to`` (the candles cut it too,
    in ``backtest.session_starts``)."""
    step = cfg.interval_secs * 1000
    rec = feed.recording
    first = max(rec.first_ms, first_ms if first_ms is not None else rec.first_ms)
    first = -(-first // step) * step
    last = rec.end_ms - cfg.intervals * step
    last = min(last, last_ms) if last_ms is not None else last
    start, end = backtest.session_starts(feed, cfg, first, last)
    if end < start:
        raise ConfigError(f"--prices: the recording covers {iso_seconds(rec.first_ms)} to {iso_seconds(rec.end_ms)}; "
                          f"with the candles and --from/--to no whole session of {cfg.intervals} x "
                          f"{cfg.interval_minutes} minutes fits")
    return start, start + (end - start) // step * step


def run(replays: list[tuple[dict[str, Any], ReplayFeed]], cfg: Config, first_ms: int | None, last_ms: int | None,
        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Both backtests over one span: per side its source, sessions, decisions and seconds, and the span."""
    (plain_source, plain), (kept_source, kept) = replays
    assert isinstance(kept, recorded.RecordedFeed)
    first, last = span(kept, cfg, first_ms, last_ms)
    out: dict[str, Any] = {"span": (first, last)}
    for side, source, feed in ((SIDES[0], plain_source, plain), (SIDES[1], kept_source, kept)):
        sessions, decisions, seconds = backtest.backtest(feed, cfg, first, last, progress, source)
        out[side] = {"source": source, "sessions": sessions, "decisions": decisions, "seconds": seconds}
    return out


def summary(result: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """The simulated book's aggregate, with the recorded prices' as its ``recorded_prices`` block."""
    sim, rec = ({**backtest.aggregate(result[s]["sessions"], result[s]["decisions"], cfg),
                 "seconds": round(result[s]["seconds"], 2)} for s in SIDES)
    for side in (sim, rec):  # no trade: no interval (JSON has no NaN)
        side["hit_rate_wilson95"] = [None if math.isnan(x) else x for x in side["hit_rate_wilson95"]]
    first, last = result["span"]
    kept = result[SIDES[1]]["source"]
    rec |= {"source": {k: v for k, v in kept.items() if k not in ("data", "sha256")},
            "model": {"ask": "recorded Up price + half the sim's spread, up to the cent (bid: down); Down = mirror",
                      "depth": "the sim's", "decision_delay_secs": recorded.DECISION_DELAY_SECS,
                      "price_stale_secs": recorded.PRICE_STALE_SECS}}
    return sim | {"span": {"first_session": iso_seconds(first), "last_session": iso_seconds(last),
                           "interval_minutes": cfg.interval_minutes}, "taker_flow": kept["taker_flow"],
                  "recorded_prices": rec, "both_traded": both_traded(*(result[s]["decisions"] for s in SIDES))}


def both_traded(sim: pl.DataFrame, rec: pl.DataFrame) -> dict[str, Any]:
    """The intervals both sides traded: the same decisions (the same candles), so what differs is the price paid
    and, with the recorded settlement, the result."""
    def traded(d: pl.DataFrame) -> pl.DataFrame:
        return d.filter(pl.col("action") == "trade").select("interval_start", win=pl.col("outcome") == "WIN",
                                                             price="fill_price")
    both = traded(sim).join(traded(rec), on="interval_start", suffix="_recorded")

    def mean(column: str) -> float | None:
        return float(both.get_column(column).mean()) if both.height else None
    return {"intervals": both.height, "hit_rate": mean("win"), "hit_rate_recorded": mean("win_recorded"),
            "avg_entry_price": mean("price"), "avg_entry_price_recorded": mean("price_recorded")}


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def _column(a: dict[str, Any]) -> dict[str, str]:
    lo, hi = a["hit_rate_wilson95"]
    money = (lambda k: "n/a" if a.get(k) is None or not a["trades"] else f"{a[k]:+.2f}")  # noqa: E731
    return {
        "sessions": f"{a['sessions']:,}", "intervals": f"{a['intervals']:,}", "trades": f"{a['trades']:,}",
        "hit rate (95% Wilson)": "n/a" if a["hit_rate"] is None else f"{a['hit_rate']:.1%} ({_pct(lo)}-{_pct(hi)})",
        "average entry price": "n/a" if a["avg_entry_price"] is None else f"{a['avg_entry_price']:.4f}",
        "break-even hit rate": _pct(a["breakeven_hit_rate"]),
        "hit rate vs break-even": a["vs_breakeven"] or "n/a",
        "PnL before fees (USD)": money("pnl_gross_total"), "fees (USD)": f"{a['fees_total']:.2f}",
        "PnL after fees (USD)": money("pnl_total"),
        "halt share": f"{_pct(a['halt_share'])} ({a['halts']})"}


def table(s: dict[str, Any], policy: str, seed: int) -> list[str]:
    """The terminal's lines: the span and the model, then the two columns, then the recorded side's skips."""
    rec, sp = s["recorded_prices"], s["span"]
    how = rec["source"]
    quotes = (f"the recorded price at most {recorded.PRICE_STALE_SECS} s old, decided "
              f"{recorded.DECISION_DELAY_SECS} s into the interval" if how["quotes"] == "recorded"
              else "the simulated book")
    lines = [f"{sp['interval_minutes']}-minute sessions starting {sp['first_session'][:16]}Z to "
             f"{sp['last_session'][:16]}Z (the prices file, the candles, --from/--to), policy {policy}, seed {seed}",
             f"recorded side: quotes {quotes}; settled on the {'recorded resolution' if how['settle'] == 'recorded' else 'candles'}",
             f"taker flow: {s['taker_flow']}"]
    left, right = _column(s), _column(rec)
    lines.append(f"{'':24}{SIDES[0]:>26}{SIDES[1] if how['quotes'] == 'recorded' else 'recorded results':>26}")
    lines += [f"{name:24}{left[name]:>26}{right[name]:>26}" for name in left]
    both = s["both_traded"]
    if both["intervals"]:
        lines.append(f"{'traded by both':24}{both['intervals']:,} intervals: hit rate {both['hit_rate']:.1%} and "
                     f"{both['hit_rate_recorded']:.1%}, average entry price {both['avg_entry_price']:.4f} and "
                     f"{both['avg_entry_price_recorded']:.4f}")
    skips = sorted(rec["skip_reasons"].items(), key=lambda kv: -kv[1])
    lines.append("skips, recorded side: " + (", ".join(f"{k.removeprefix('skip:')} {v}" for k, v in skips) or "none"))
    if not rec["trades"] and skips and skips[0][0] == "skip:unresolved":
        lines.append("the prices file records no resolution for these markets: --settle candles settles on the candles")
    return lines


def decisions_path(path: Any) -> Any:
    """Where the recorded side's decisions go beside ``--decisions FILE``: ``FILE``'s stem + ``_recorded``."""
    return path.with_name(f"{path.stem}_recorded{path.suffix}")


def write_decisions(frame: pl.DataFrame, path: Any) -> None:
    frame.write_csv(path) if path.suffix.lower() == ".csv" else frame.write_parquet(path)
