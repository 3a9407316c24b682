"""Loopback Gamma and CLOB for ``fsm-bot data polymarket``, answering from real recorded markets.

The recorded sets (``shared/data``, its README section 3), each a ``Recorded`` of markets and price points:
- ``fifteen_minute_2026_01()``: ``polymarket_btc15m_markets_2026-01`` and ``..._price_history_2026-01``.
  Slugs, condition ids, both token ids, windows and resolutions (the CLOB's winner flags) are real; so are
  the price points (17 a token, ~1 a minute, for the 200 markets ``has_price_history``; none for the rest).
- ``five_minute_2026_02()``: the 5-minute rows of ``polymarket_btc_updown_resolutions_2026-02-21_to_28``.
  Slugs, windows, Up token ids and resolutions (Gamma ``outcomePrices``; the last market unresolved, at its
  recorded Up price 0.235) are real; condition ids and Down token ids are hashed from the slug
  (illustrative). No price history was recorded.
- ``five_minute_2026_05()``: ``polymarket_btc5m_resolutions_2026-05-17``. Slugs, condition ids, windows,
  resolutions and one price point a token (the Up and Down price 60 s into the window) are real; the token
  ids are real for btc-updown-5m-1779112200 (``tests/payloads/polymarket``), hashed for the others.

``FakePolymarketData``:
- Gamma ``GET /markets?slug=``: ``[market]`` in the shape of ``gamma_markets_btc5m_closed.json`` (``_open``
  while unresolved), ``[]`` for a slug it does not know or one in ``missing``. A slug in ``unsettled``
  is closed with ``outcomePrices ["0","0"]`` (seen on the real Gamma, NautilusTrader PR #4164): only
  the CLOB says who won.
- CLOB ``GET /markets/{condition_id}``: ``clob_market_btc5m_resolved.json``'s shape, ``winner`` from the
  recorded resolution (both false while unresolved).
- CLOB ``GET /prices-history?market=<token>&startTs=&endTs=&fidelity=``: ``{"history": [{"t", "p"}]}``, the
  recorded points in [startTs, endTs]; a 400 ``{"error": ...}`` without a market or with bad numbers.
- Faults: the ``JsonServer`` plans, ``fake.gamma.fault(...)`` and ``fake.clob.fault(...)``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from tests.servers.base import JsonServer, Reply, Request
from tests.servers.polymarket import _closed_time, _iso, _title

SHARED = Path("/work/shared/data")
PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "polymarket"
REAL_5M = "btc-updown-5m-1779112200"  # the market of tests/payloads/polymarket, token ids and all


@dataclass(frozen=True)
class Recorded:
    """``markets``: slug, condition_id, window_start, window_end (ms), resolved_outcome ("Up"/"Down"/null),
    up_token, down_token, up_price (Gamma's Up price while unresolved); ``history``: token_id, t (ms), price."""

    markets: pl.DataFrame
    history: pl.DataFrame
    minutes: int


def _hashed(slug: str, part: str, digits: int) -> str:
    return str(int(hashlib.sha256(f"{slug}:{part}".encode()).hexdigest(), 16) % 10**digits).rjust(digits, "1")


def _ms(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("ms")


def fifteen_minute_2026_01() -> Recorded:
    m = pl.read_parquet(SHARED / "polymarket_btc15m_markets_2026-01.parquet")
    h = pl.read_parquet(SHARED / "polymarket_btc15m_price_history_2026-01.parquet")
    markets = m.select("slug", "condition_id", _ms("window_start").alias("window_start"),
                       _ms("window_end").alias("window_end"), "resolved_outcome", pl.col("up_token_id").alias(
                           "up_token"), pl.col("down_token_id").alias("down_token"), pl.lit(None, pl.Float64)
                       .alias("up_price"))
    tokens = m.select("condition_id", pl.col("up_token_id").alias("Up"), pl.col("down_token_id").alias("Down"))
    history = h.join(tokens, on="condition_id").select(
        pl.when(pl.col("outcome") == "Up").then(pl.col("Up")).otherwise(pl.col("Down")).alias("token_id"),
        _ms("t").alias("t"), "price")
    return Recorded(markets, history, 15)


def five_minute_2026_02() -> Recorded:
    r = pl.read_parquet(SHARED / "polymarket_btc_updown_resolutions_2026-02-21_to_28.parquet").filter(
        pl.col("interval_min") == 5)
    markets = r.select("slug", pl.col("slug").map_elements(lambda s: "0x" + hashlib.sha256(
        f"{s}:condition".encode()).hexdigest(), return_dtype=pl.String).alias("condition_id"),
        _ms("window_start").alias("window_start"), _ms("window_end").alias("window_end"), "resolved_outcome",
        pl.col("up_token_id").alias("up_token"), pl.col("slug").map_elements(lambda s: _hashed(s, "down", 77),
                                                                             return_dtype=pl.String)
        .alias("down_token"), pl.col("up_outcome_price").alias("up_price"))
    return Recorded(markets, pl.DataFrame(schema={"token_id": pl.String, "t": pl.Int64, "price": pl.Float64}), 5)


def five_minute_2026_05() -> Recorded:
    r = pl.read_parquet(SHARED / "polymarket_btc5m_resolutions_2026-05-17.parquet")
    real = json.loads((PAYLOADS / "gamma_markets_btc5m_closed.json").read_text())[0]
    real_up, real_down = json.loads(real["clobTokenIds"])
    token = lambda part, real_id: pl.col("slug").map_elements(  # noqa: E731
        lambda s: real_id if s == REAL_5M else _hashed(s, part, 77), return_dtype=pl.String)
    markets = r.select("slug", "condition_id", _ms("window_start").alias("window_start"),
                       _ms("window_end").alias("window_end"), "resolved_outcome", token("up", real_up).alias(
                           "up_token"), token("down", real_down).alias("down_token"), pl.lit(None, pl.Float64)
                       .alias("up_price"))
    at = (_ms("window_start") + 60_000).alias("t")
    history = pl.concat([r.join(markets.select("slug", "up_token", "down_token"), on="slug").select(
        pl.col(f"{side}_token").alias("token_id"), at, pl.col(f"polymarket_{side}_price").alias("price"))
        for side in ("up", "down")])
    return Recorded(markets, history, 5)


class FakePolymarketData:
    def __init__(self, recorded: Recorded, *, missing: tuple[str, ...] = (), unsettled: tuple[str, ...] = ()) -> None:
        self.recorded, self.missing, self.unsettled = recorded, set(missing), set(unsettled)
        self.by_slug = {m["slug"]: m for m in recorded.markets.iter_rows(named=True)}
        self.by_condition = {m["condition_id"]: m for m in self.by_slug.values()}
        self.points: dict[str, list[tuple[int, float]]] = {}
        for token, t, p in recorded.history.sort("t").iter_rows():
            self.points.setdefault(token, []).append((t, p))
        self.templates = {name: json.loads((PAYLOADS / f"{name}.json").read_text()) for name in (
            "gamma_markets_btc5m_closed", "gamma_markets_btc5m_open", "clob_market_btc5m_resolved")}
        self.gamma, self.clob = JsonServer("gamma"), JsonServer("clob")
        self.gamma.route("GET", r"/markets", self._gamma_markets)
        self.clob.route("GET", r"/markets/(?P<cid>[^/]+)", self._clob_market)
        self.clob.route("GET", r"/prices-history", self._history)

    def start(self) -> "FakePolymarketData":
        self.gamma.start()
        self.clob.start()
        return self

    def stop(self) -> None:
        self.gamma.stop()
        self.clob.stop()

    # -- payloads -----------------------------------------------------------------------------------------
    def gamma_market(self, m: dict[str, Any]) -> dict[str, Any]:
        resolved = m["resolved_outcome"] is not None
        template = "gamma_markets_btc5m_closed" if resolved else "gamma_markets_btc5m_open"
        body = copy.deepcopy(self.templates[template][0])
        window = SimpleNamespace(start_ms=m["window_start"], end_ms=m["window_end"])
        if resolved:
            prices = ["0", "0"] if m["slug"] in self.unsettled else ["1", "0"] if m["resolved_outcome"] == "Up" \
                else ["0", "1"]
            body["closedTime"] = _closed_time(m["window_end"] + 71_000)
        else:
            up = m["up_price"] if m["up_price"] is not None else 0.5
            prices = [str(up), str(round(1 - up, 6))]
            body.update(acceptingOrders=False, bestBid=None, bestAsk=None)
        series = f"btc-up-or-down-{self.recorded.minutes}m"
        body.update(id=str(int(m["condition_id"][2:9], 16)), question=_title(window), conditionId=m["condition_id"],
                    slug=m["slug"], startDate=_iso(m["window_start"] - 86_400_000 + 67_000),
                    endDate=_iso(m["window_end"]), eventStartTime=_iso(m["window_start"]),
                    outcomePrices=json.dumps(prices), clobTokenIds=json.dumps([m["up_token"], m["down_token"]]),
                    events=[{"id": str(int(m["condition_id"][9:15], 16)), "slug": m["slug"],
                             "startTime": _iso(m["window_start"]), "seriesSlug": series}])
        return body

    def clob_market(self, m: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(self.templates["clob_market_btc5m_resolved"])
        won = m["resolved_outcome"]
        body.update(condition_id=m["condition_id"], question=_title(SimpleNamespace(
            start_ms=m["window_start"], end_ms=m["window_end"])), market_slug=m["slug"], closed=won is not None,
            end_date_iso=_iso(m["window_end"]))
        body["tokens"] = [{"token_id": m[f"{label.lower()}_token"], "outcome": label, "price": float(won == label),
                           "winner": won == label} for label in ("Up", "Down")]
        return body

    # -- routes -------------------------------------------------------------------------------------------
    def _gamma_markets(self, req: Request) -> Reply:
        m = self.by_slug.get(req.query.get("slug", ""))
        return Reply(200, [self.gamma_market(m)] if m and m["slug"] not in self.missing else [])

    def _clob_market(self, req: Request) -> Reply:
        m = self.by_condition.get(req.match["cid"])
        return Reply(200, self.clob_market(m)) if m else Reply(404, {"error": "market not found"})

    def _history(self, req: Request) -> Reply:
        q = req.query
        try:
            token, start, end = q["market"], int(q.get("startTs", 0)), int(q.get("endTs", 2**40))
            int(q.get("fidelity", 1))
        except (KeyError, ValueError):
            return Reply(400, {"error": "invalid filters: market, startTs, endTs and fidelity must be numbers"})
        points = [{"t": t // 1000, "p": p} for t, p in self.points.get(token, []) if start <= t // 1000 <= end]
        return Reply(200, {"history": points})
