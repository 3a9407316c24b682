"""``fsm-bot history``: every session of a state dir and of its archive, one row each, the totals, and per mode
the totals and the cumulative PnL; ``--plot`` draws the cumulative equity across sessions and ``--html`` writes
the page a trader reads (both in ``fsm_bot.report.history_page``).

Each row is read from its session's journal (the source of truth its files are views of), so the totals
equal the sum of the sessions' own files to the cent: money stays ``Decimal`` and travels as exact strings.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fsm_bot import journal
from fsm_bot.errors import JournalCorrupt, StateDirError
from fsm_bot.money import ZERO, max_drawdown, plain, usd
from fsm_bot.session import Session, fold, iso_seconds
from fsm_bot.statedir import ARCHIVE, JOURNAL
from fsm_bot.values import frozen


@frozen
class Entry:
    path: Path  # the folder holding the session's journal
    session: Session
    records: list[dict[str, Any]]  # the journal's, for the equity curve


def scan(state_dir: Path) -> tuple[list[Entry], list[str]]:
    """The sessions of ``state_dir`` and its archive, oldest first, and what could not be read (a damaged
    journal is reported, not counted; one that holds no whole record is no session)."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        raise StateDirError(f"--state-dir {state_dir}: no such directory")
    folders = [state_dir] + sorted(p for p in (state_dir / ARCHIVE).glob("*") if p.is_dir() and not p.name.startswith("."))
    found, problems = [], []
    for folder in folders:
        path = folder / JOURNAL
        if not path.is_file():
            continue
        try:
            records = journal.read(path).records
        except (JournalCorrupt, StateDirError) as exc:
            problems.append(str(exc))
            continue
        if records:
            found.append(Entry(folder, fold(records), records))
    found.sort(key=lambda e: (e.session.start_ms, e.session.session))
    return found, problems


def row(e: Entry) -> dict[str, Any]:
    """One session, as a trader reads it (money as exact decimal strings)."""
    s = e.session
    rows = s.rows()
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    wins = sum(r.outcome == "WIN" for r in traded)
    fees = sum((r.fee for r in rows), ZERO)
    return {"session": s.session, "mode": s.mode, "start": iso_seconds(s.start_ms), "folder": str(e.path),
            "state": "halted" if s.halted else "finished" if s.finished else f"unfinished ({s.state})",
            "intervals": len(rows), "traded": len(traded), "void": sum(r.outcome == "VOID" for r in rows),
            "skipped": sum(r.outcome == "SKIPPED" for r in rows), "wins": wins,
            "hit_rate": round(wins / len(traded), 4) if traded else None,
            "capital_start": plain(s.capital0), "capital_end": plain(s.capital), "pnl": plain(s.capital - s.capital0),
            "fees": plain(fees), "pnl_gross": plain(s.capital - s.capital0 + fees),
            "max_drawdown_from_peak": plain(max_drawdown([s.capital0] + [r.capital_after for r in rows])),
            "halted": s.halted or "", "halt_detail": s.halt_detail, "corrections": len(s.corrections)}


def money_sum(rows: list[dict[str, Any]], key: str) -> str:
    return plain(sum((Decimal(r[key]) for r in rows), ZERO))


def sums(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sessions, halts, intervals and money summed over ``rows``."""
    traded = sum(r["traded"] for r in rows)
    wins = sum(r["wins"] for r in rows)
    return {"sessions": len(rows), "halted": sum(bool(r["halted"]) for r in rows),
            "intervals": sum(r["intervals"] for r in rows), "traded": traded, "wins": wins,
            "void": sum(r["void"] for r in rows), "skipped": sum(r["skipped"] for r in rows),
            "hit_rate": round(wins / traded, 4) if traded else None, "pnl": money_sum(rows, "pnl"),
            "fees": money_sum(rows, "fees"), "pnl_gross": money_sum(rows, "pnl_gross")}


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over the sessions, and per mode the same sums and the PnL, cumulative in start order (a sim's
    PnL is no live money: read the mode's own)."""
    by_mode: dict[str, list[str]] = {}
    for r in rows:
        previous = Decimal(by_mode[r["mode"]][-1]) if r["mode"] in by_mode else ZERO
        by_mode.setdefault(r["mode"], []).append(plain(previous + Decimal(r["pnl"])))
    return sums(rows) | {"corrections": sum(r["corrections"] for r in rows), "cumulative_pnl_by_mode": by_mode,
                         "by_mode": {m: sums([r for r in rows if r["mode"] == m]) for m in by_mode}}


def summary(found: list[Entry], problems: list[str]) -> dict[str, Any]:
    """What ``--json`` prints: the rows, the totals and what could not be read."""
    rows = [row(e) for e in found]
    return {"sessions": rows, "totals": totals(rows), "unreadable": problems}


def report(state_dir: Path) -> dict[str, Any]:
    return summary(*scan(state_dir))


def render(data: dict[str, Any]) -> str:
    """The table a trader reads: one line per session, then the totals; with sessions of several modes, the
    money per mode only (a sim's PnL is not added to a live one)."""
    lines = [f"{'session':<28} {'mode':<5} {'start':<20} {'trd':>4} {'void':>4} {'skip':>4} {'hit':>6} "
             f"{'PnL':>10} {'fees':>8} {'gross':>10} {'maxDD':>6}  halted"]
    for r in data["sessions"]:
        lines.append(f"{r['session']:<28} {r['mode']:<5} {r['start']:<20} {r['traded']:>4} {r['void']:>4} "
                     f"{r['skipped']:>4} {hit(r):>6} {usd(Decimal(r['pnl']), sign=True):>10} "
                     f"{usd(Decimal(r['fees'])):>8} {usd(Decimal(r['pnl_gross']), sign=True):>10} "
                     f"{float(r['max_drawdown_from_peak']):>6.1%}  {r['halted']}")
    t = data["totals"]
    counts = (f"{t['sessions']} session(s), {t['halted']} halted: {t['traded']} traded ({hit(t)} won), {t['void']} "
              f"void, {t['skipped']} skipped")
    several = len(t["by_mode"]) > 1
    lines.append(f"{counts}; {'money per mode below' if several else money(t)}; {t['corrections']} correction(s)")
    for mode, cumulative in t["cumulative_pnl_by_mode"].items():
        m = t["by_mode"][mode]
        lines.append(f"  {mode}: cumulative PnL {usd(Decimal(cumulative[-1]), sign=True)} over {len(cumulative)} "
                     "session(s)" + (f", {m['traded']} traded ({hit(m)} won); {money(m)}" if several else ""))
    lines += [f"unreadable: {p}" for p in data["unreadable"]]
    return "\n".join(lines)


def hit(r: dict[str, Any]) -> str:
    return f"{r['hit_rate']:.1%}" if r["hit_rate"] is not None else "-"


def money(t: dict[str, Any]) -> str:
    return (f"PnL {usd(Decimal(t['pnl']), sign=True)} after {usd(Decimal(t['fees']))} of fees "
            f"({usd(Decimal(t['pnl_gross']), sign=True)} before)")
