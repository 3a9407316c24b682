"""The files a user reads, as views of the journal: ``trades.jsonl``, ``equity.csv`` and
``corrections.jsonl``.

``lines`` says what one journal record adds to each file; a live run appends those lines as it
goes, and ``rebuild`` regenerates every file from the journal (on resume), so a crash between a
record and its view costs nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from fsm_bot import storage
from fsm_bot.session import Session, iso_seconds
from fsm_bot.steps import Reconciled, Step, TradeRow

TRADES, EQUITY, CORRECTIONS = "trades.jsonl", "equity.csv", "corrections.jsonl"
FILES = (TRADES, EQUITY, CORRECTIONS)
EQUITY_HEADER = "interval_number,timestamp,capital\n"
CAUSES = {"corrected": "official_result", "voided": "trade_failed", "revived": "fill_held"}
"""The resolutions that change a booked PnL, and the cause each correction line names."""


def number(d: Decimal | None) -> float | None:
    """A Decimal as a JSON number with the same digits (exact for the <= 15 significant digits money has)."""
    if d is None:
        return None
    f = float(d)
    assert Decimal(repr(f)) == d, f"{d} does not survive as a JSON number"
    return f


def trade_json(row: TradeRow) -> str:
    out: dict[str, Any] = {}
    for name, value in row.__dict__.items():
        out[name] = number(value) if isinstance(value, Decimal) else value
    return json.dumps(out, separators=(", ", ": ")) + "\n"


def equity_line(k: int, ts_ms: int, capital: Decimal) -> str:
    return f"{k},{iso_seconds(ts_ms)},{number(capital)!r}\n"


def lines(before: Session | None, after: Session, step: Step) -> dict[str, list[str]]:
    """What the record that turned ``before`` into ``after`` adds to each view."""
    out: dict[str, list[str]] = {}
    if before is None:  # the 'begin' record
        out = {TRADES: [], CORRECTIONS: [], EQUITY: [EQUITY_HEADER, equity_line(0, after.start_ms, after.capital0)]}
    elif step.trigger == "recorded":
        row = after.trades[-1]
        out[TRADES] = [trade_json(row)]
        out[EQUITY] = [equity_line(row.interval_number, after.interval_end(row.interval_number), after.capital)]
    elif step.trigger == "halt":
        rows = after.rows()[len(after.trades):]
        out[TRADES] = [trade_json(r) for r in rows]
        out[EQUITY] = [equity_line(r.interval_number, after.interval_end(r.interval_number), after.capital) for r in rows]
    elif isinstance(step, Reconciled):
        out[CORRECTIONS] = [json.dumps({"interval": r.interval, "provisional": r.provisional, "official": r.official,
                                        "old_outcome": r.old_outcome, "new_outcome": r.new_outcome,
                                        "pnl_change": number(r.pnl_change), "capital_after": number(r.capital_after),
                                        "cause": CAUSES[r.status]},
                                       separators=(", ", ": ")) + "\n"
                            for r in step.results if r.status in CAUSES]
    return out


class Views:
    """Appends each record's lines to the view files of a state dir."""

    def __init__(self, state_dir: Path, enabled: bool = True) -> None:
        self.dir = Path(state_dir)
        self.enabled = enabled

    def append(self, added: dict[str, list[str]]) -> None:
        if not self.enabled:
            return
        for name, new in added.items():
            if new:
                storage.append(self.dir / name, "".join(new).encode())

    def rebuild(self, sessions: Iterable[tuple[Session | None, Session, Step]]) -> None:
        """Rewrite every view from the journal's sessions (each file replaced atomically; the temporaries of an
        interrupted rebuild removed first)."""
        storage.clean_temporaries(self.dir)
        content: dict[str, list[str]] = {name: [] for name in FILES}
        for before, after, step in sessions:
            for name, new in lines(before, after, step).items():
                content[name].extend(new)
        for name, new in content.items():
            storage.replace(self.dir / name, "".join(new).encode())
