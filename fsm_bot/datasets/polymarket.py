"""``fsm-bot data polymarket``: every window's market, official resolution and price history, one file.

For each window start on the interval grid in [first, end):
- the market: Gamma ``GET /markets?slug=btc-updown-<m>m-<window start unix s>`` (a list; empty when
  Gamma has no such market), checked as the venue adapter checks it (``parse_gamma_markets``);
- its official resolution, as polymarket-api.md section 6 documents it: Gamma ``closed`` with
  ``outcomePrices`` exactly one winner (>= 0.999) and one loser (<= 0.001); else, once the window has
  ended, the CLOB's ``GET /markets/{condition_id}`` ``tokens[].winner``; else none yet (null);
- both tokens' price history: CLOB ``GET /prices-history?market=<token id>&startTs&endTs&fidelity=1``
  (``{"history": [{"t": unix s, "p": price}, ...]}``) from ``lead`` before the window to its end.

One row per price point (schema ``SCHEMA``, docs/DATA.md). A market with no point for either token gets
ONE placeholder row (its Up token, ``t`` and ``price`` null); a missing market gets no row. Both are
listed in the report, never invented. Resumable: windows already in the file with a resolution are
skipped; windows there without one are fetched again and replace their rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from fsm_bot.adapters.binance.feed import iso
from fsm_bot.adapters.coingecko import number, shown
from fsm_bot.adapters.polymarket.books import clob_winner, parse_clob_market
from fsm_bot.adapters.polymarket.markets import MarketInfo, parse_gamma_markets, parse_resolution
from fsm_bot.datasets import output
from fsm_bot.datasets.client import Fetcher
from fsm_bot.errors import ConfigError, DataError
from fsm_bot.ports import MINUTE_MS, slug

TIME = pl.Datetime("ms", "UTC")
SCHEMA = {"window_start": TIME, "window_end": TIME, "interval_minutes": pl.Int32, "slug": pl.String,
          "condition_id": pl.String, "resolved_outcome": pl.String, "outcome": pl.String, "token_id": pl.String,
          "t": TIME, "price": pl.Float64}
"""The recorded-prices file's columns (``backtest --prices`` reads exactly these)."""
LABEL = {"UP": "Up", "DOWN": "Down"}
CHECKPOINT_ROWS = 5_000
Progress = Callable[[int, int], None]


@dataclass
class Findings:
    """What the windows turned out to be, for the report."""

    markets: int = 0
    missing: list[str] = field(default_factory=list)
    unusable: list[dict[str, str]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    resolved: dict[str, int] = field(default_factory=lambda: {"Up": 0, "Down": 0})
    resolved_by: dict[str, int] = field(default_factory=lambda: {"gamma": 0, "clob": 0})
    without_history: list[str] = field(default_factory=list)
    tokens_without_history: list[str] = field(default_factory=list)
    price_points: int = 0


def parse_history(payload: Any, token: str) -> list[tuple[int, float]]:
    """``{"history": [{"t": unix s, "p": price}, ...]}`` as (t ms, price) sorted by time; prices in [0, 1]."""
    points = payload.get("history") if isinstance(payload, dict) else None
    if not isinstance(points, list):
        raise DataError(f"clob prices-history of {token}: expected {{'history': [...]}}, got {shown(payload)}")
    out = []
    for i, point in enumerate(points):
        what = f"clob prices-history of {token} point {i}"
        t = point.get("t") if isinstance(point, dict) else None
        if isinstance(t, float) and t.is_integer():
            t = int(t)
        if not isinstance(t, int) or isinstance(t, bool) or not 1_230_768_000 <= t < 4_102_444_800:
            raise DataError(f"{what}: t {shown(t)} is not unix seconds between 2009 and 2100", code="bad_history")
        price = number(point.get("p"), f"{what} p", "bad_history")
        if not 0 <= price <= 1:
            raise DataError(f"{what}: p {price!r} outside [0, 1]", code="bad_history")
        out.append((t * 1000, price))
    return sorted(out, key=lambda p: p[0])


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows (times in ms) as a frame of ``SCHEMA``."""
    times = ("window_start", "window_end", "t")
    raw = pl.DataFrame(rows, schema={k: (pl.Int64 if k in times else v) for k, v in SCHEMA.items()}, orient="row")
    return raw.with_columns(pl.col(c).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC") for c in times)


class Markets:
    """Gamma and the CLOB, read window by window."""

    def __init__(self, gamma: Fetcher, clob: Fetcher, minutes: int, lead_minutes: int, now_ms: int) -> None:
        self.gamma, self.clob, self.minutes, self.now_ms = gamma, clob, minutes, now_ms
        self.lead_ms = lead_minutes * MINUTE_MS
        self.found = Findings()

    def window(self, start_ms: int) -> list[dict[str, Any]]:
        """The rows of the window starting at ``start_ms``; none for a missing or unusable market."""
        market_slug = slug(start_ms, self.minutes)
        try:
            info = self.market(market_slug)
            if info is None:
                self.found.missing.append(market_slug)
                return []
            outcome = self.resolution(info)
            points = {label: self.history(token, start_ms - self.lead_ms, info.end_ms)
                      for label, token in (("Up", info.up_token), ("Down", info.down_token))}
        except DataError as exc:
            self.found.unusable.append({"slug": market_slug, "reason": str(exc)})
            return []
        return self.rows(info, outcome, points)

    def market(self, market_slug: str) -> MarketInfo | None:
        answer = self.gamma.get("/markets", {"slug": market_slug})
        if answer is None:  # Gamma answers a slug it does not know with [], never 404: this is another server
            raise ConfigError(f"--gamma-url {self.gamma.base_url}: GET /markets answered 404 (not found): is it "
                              "Polymarket's Gamma API?")
        payload = answer.json(f"gamma GET /markets?slug={market_slug}")
        if payload == []:
            return None
        return parse_gamma_markets(payload, market_slug)

    def resolution(self, info: MarketInfo) -> str | None:
        """"Up"/"Down" once officially resolved (Gamma first, then the CLOB's winner flags), else None."""
        outcome, by = parse_resolution(info), "gamma"
        if outcome is None and info.end_ms <= self.now_ms:
            answer = self.clob.get(f"/markets/{info.condition_id}")
            if answer is not None:
                clob = parse_clob_market(answer.json(f"clob GET /markets/{info.condition_id}"), info.condition_id)
                outcome, by = clob_winner(clob, info.up_token, info.down_token), "clob"
        if outcome is None:
            self.found.unresolved.append(info.slug)
            return None
        self.found.resolved_by[by] += 1
        self.found.resolved[LABEL[outcome]] += 1
        return LABEL[outcome]

    def history(self, token: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        params = {"market": token, "startTs": start_ms // 1000, "endTs": end_ms // 1000, "fidelity": 1}
        answer = self.clob.get("/prices-history", params)
        if answer is None:  # the CLOB answers a token without history with an empty one, never 404
            raise ConfigError(f"--clob-url {self.clob.base_url}: GET /prices-history answered 404 (not found): is it "
                              "Polymarket's CLOB API?")
        return parse_history(answer.json(f"clob GET /prices-history of {token}"), token)

    def rows(self, info: MarketInfo, outcome: str | None, points: dict[str, list[tuple[int, float]]]) -> list[
            dict[str, Any]]:
        self.found.markets += 1
        base = {"window_start": info.start_ms, "window_end": info.end_ms, "interval_minutes": self.minutes,
                "slug": info.slug, "condition_id": info.condition_id, "resolved_outcome": outcome}
        tokens = {"Up": info.up_token, "Down": info.down_token}
        rows = [base | {"outcome": label, "token_id": tokens[label], "t": t, "price": p}
                for label in ("Up", "Down") for t, p in points[label]]
        self.found.price_points += len(rows)
        if rows:
            self.found.tokens_without_history += [f"{info.slug} {label}" for label in tokens if not points[label]]
        else:
            self.found.without_history.append(info.slug)
            rows = [base | {"outcome": "Up", "token_id": info.up_token, "t": None, "price": None}]
        return rows


def download(markets: Markets, out: Path, first_ms: int, end_ms: int, *, flag: str = "--out",
             progress: Progress | None = None) -> dict[str, Any]:
    """Add the windows of [first, end) that ``out`` lacks (or holds unresolved); the report."""
    kept = output.existing(out, SCHEMA, flag, "the recorded-prices schema")
    kept = kept if kept is not None else frame([])
    step = markets.minutes * MINUTE_MS
    span = range(first_ms, end_ms, step)
    mine = kept.get_column("interval_minutes") == markets.minutes  # a file may hold both lengths: only this one's
    starts = kept.get_column("window_start").dt.epoch("ms")
    done = set(starts.filter(mine & kept.get_column("resolved_outcome").is_not_null()).to_list())
    again = {w for w in set(starts.filter(mine).to_list()) - done if first_ms <= w < end_ms}
    kept = kept.filter(~(mine & starts.is_in(sorted(again))))
    windows = [w for w in span if w not in done]
    book = output.Checkpoints(out, kept, CHECKPOINT_ROWS, flag, sort_by=("window_start", "outcome", "t"))
    try:
        for n, start_ms in enumerate(windows, 1):
            book.add(frame(markets.window(start_ms)))
            if progress:
                progress(n, len(windows))
    finally:
        book.flush()
    f = markets.found
    return {"file": str(out), "from": iso(first_ms), "to": iso(end_ms), "interval_minutes": markets.minutes,
            "windows": len(span), "already_in_file": len(span) - len(windows), "fetched_again_unresolved": len(again),
            "markets": f.markets, "missing_markets": f.missing, "unusable_markets": f.unusable,
            "resolved": f.resolved, "resolved_by": f.resolved_by, "unresolved": f.unresolved,
            "without_history": f.without_history, "tokens_without_history": f.tokens_without_history,
            "price_points": f.price_points, "rows": book.frame.height}
