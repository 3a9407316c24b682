"""A history checker in the manner of Jepsen: what the venue holds (its ledger, each order's final state on
chain, each market's result) against what the bot booked (``trades.jsonl``, ``corrections.jsonl``).

It holds a run to three rules, and returns every violation it finds (an empty list means the run kept them):

1. at most one order per interval (market) at the venue, and every venue order booked in exactly one row;
2. the bot's booked fills are the venue's confirmed trades: an order CONFIRMED on chain is booked WIN/LOSS
   with the venue's shares, spend and fee, WIN exactly when its side won; an order FAILED or never mined is
   booked VOID (in its row or by a correction);
3. capital = start + Σ PnL of the confirmed trades, as the venue's results pay them, to the cent and beyond.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable

HELD = "CONFIRMED"


@dataclass(frozen=True)
class VenueOrder:
    """One order as the venue ends up holding it."""

    key: str
    slug: str
    side: str  # "UP" or "DOWN"
    status: str  # the final state of its trade: CONFIRMED, FAILED, or MATCHED (never mined)
    shares: Decimal
    spent_usd: Decimal
    fee_usd: Decimal


def rows(state: Path) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in (state / "trades.jsonl").read_text().splitlines()]


def corrections(state: Path) -> list[dict]:
    path = state / "corrections.jsonl"
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()] if path.exists() else []


def booked(state: Path) -> dict[str, dict]:
    """Each booked order's row, its outcome as corrected last."""
    by_interval = {r["interval_number"]: dict(r) for r in rows(state)}
    for c in corrections(state):
        by_interval[c["interval"]]["outcome"] = c["new_outcome"]
    return {r["order_id"]: r for r in by_interval.values() if r["order_id"]}


def check(state: Path, venue: list[VenueOrder], won: Callable[[str, str], bool | None],
          capital0: Decimal = Decimal(100)) -> list[str]:
    """Every violation of the three rules by the run in ``state`` against the venue's ``orders``; ``won(slug,
    side)`` is the market's result for that side (None while unknown)."""
    problems: list[str] = []
    slugs = [o.slug for o in venue]
    problems += [f"{s}: {slugs.count(s)} orders at the venue" for s in sorted(set(slugs)) if slugs.count(s) > 1]
    books = booked(state)
    problems += [f"order {k} is booked but the venue never had it" for k in books if k not in {o.key for o in venue}]
    expected = capital0
    for o in venue:
        row = books.get(o.key)
        if row is None:
            problems.append(f"order {o.key} ({o.slug}, {o.status}) is at the venue but in no row of trades.jsonl")
            continue
        result = won(o.slug, o.side)
        if o.status == HELD:
            problems += _held(o, row, result)
            if result is not None:
                expected += (o.shares if result else Decimal(0)) - o.spent_usd - o.fee_usd
        elif row["outcome"] != "VOID":
            problems.append(f"order {o.key} ({o.slug}) ended {o.status} on chain but is booked {row['outcome']}")
    capital = capital0 + sum((Decimal(str(r["pnl"])) for r in rows(state)), Decimal(0)) + sum(
        (Decimal(str(c["pnl_change"])) for c in corrections(state)), Decimal(0))
    if capital != expected:
        problems.append(f"capital {capital} is not start + the confirmed trades' PnL, {expected}")
    return problems


def _held(o: VenueOrder, row: dict, result: bool | None) -> list[str]:
    if row["outcome"] not in ("WIN", "LOSS"):
        return [f"order {o.key} ({o.slug}) is CONFIRMED on chain but booked {row['outcome']}"]
    out = []
    if (Decimal(str(row["shares"])), Decimal(str(row["position_size"])), Decimal(str(row["fee"]))) != (
            o.shares, o.spent_usd, o.fee_usd):
        out.append(f"order {o.key}: booked {row['shares']} shares for {row['position_size']} + {row['fee']}, "
                   f"the venue filled {o.shares} for {o.spent_usd} + {o.fee_usd}")
    if result is not None and (row["outcome"] == "WIN") != result:
        out.append(f"order {o.key} ({o.slug}): booked {row['outcome']} but its side {'won' if result else 'lost'}")
    return out


def sim_orders(state: Path, chain) -> list[VenueOrder]:
    """The simulated venue's ledger, each order's trade at its final state."""
    out = []
    for line in (state / "venue-orders.jsonl").read_text().splitlines():
        entry = json.loads(line)
        status = chain.status(entry, entry["ts_ms"] + 10**12) if "fate" in entry else HELD
        fill = entry["fill"]
        out.append(VenueOrder(entry["key"], entry["slug"], entry["side"], status, Decimal(fill["shares"]),
                              Decimal(fill["spent_usd"]), Decimal(fill["fee_usd"])))
    return out
