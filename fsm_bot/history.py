"""``fsm-bot history``: every session of a state dir and of its archive, one row each, the totals, and per mode
the cumulative PnL; ``--plot`` draws the cumulative equity across sessions.

Each row is read from its session's journal (the source of truth its files are views of), so the totals
equal the sum of the sessions' own files to the cent: money stays ``Decimal`` and travels as exact strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fsm_bot import journal
from fsm_bot.errors import JournalCorrupt, StateDirError
from fsm_bot.money import ZERO, max_drawdown, plain, usd
from fsm_bot.session import Session, fold, iso_seconds
from fsm_bot.statedir import ARCHIVE, JOURNAL


@dataclass(frozen=True)
class Entry:
    path: Path  # the folder holding the session's journal
    session: Session


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
            found.append(Entry(folder, fold(records)))
    found.sort(key=lambda e: (e.session.start_ms, e.session.session))
    return found, problems


def row(e: Entry) -> dict[str, Any]:
    """One session, as a trader reads it (money as exact decimal strings)."""
    s = e.session
    rows = s.rows()
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    wins = sum(r.outcome == "WIN" for r in traded)
    return {"session": s.session, "mode": s.mode, "start": iso_seconds(s.start_ms), "folder": str(e.path),
            "state": "halted" if s.halted else "finished" if s.finished else f"unfinished ({s.state})",
            "intervals": len(rows), "traded": len(traded), "void": sum(r.outcome == "VOID" for r in rows),
            "skipped": sum(r.outcome == "SKIPPED" for r in rows), "wins": wins,
            "hit_rate": round(wins / len(traded), 4) if traded else None,
            "capital_start": plain(s.capital0), "capital_end": plain(s.capital), "pnl": plain(s.capital - s.capital0),
            "fees": plain(sum((r.fee for r in rows), ZERO)),
            "max_drawdown_from_peak": plain(max_drawdown([s.capital0] + [r.capital_after for r in rows])),
            "halted": s.halted or "", "halt_detail": s.halt_detail, "corrections": len(s.corrections)}


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over the sessions, and per mode their PnL, cumulative in start order."""
    traded = sum(r["traded"] for r in rows)
    wins = sum(r["wins"] for r in rows)
    by_mode: dict[str, list[str]] = {}
    for r in rows:
        previous = Decimal(by_mode[r["mode"]][-1]) if r["mode"] in by_mode else ZERO
        by_mode.setdefault(r["mode"], []).append(plain(previous + Decimal(r["pnl"])))
    return {"sessions": len(rows), "halted": sum(bool(r["halted"]) for r in rows),
            "intervals": sum(r["intervals"] for r in rows), "traded": traded, "wins": wins,
            "void": sum(r["void"] for r in rows), "skipped": sum(r["skipped"] for r in rows),
            "hit_rate": round(wins / traded, 4) if traded else None,
            "pnl": plain(sum((Decimal(r["pnl"]) for r in rows), ZERO)),
            "fees": plain(sum((Decimal(r["fees"]) for r in rows), ZERO)),
            "corrections": sum(r["corrections"] for r in rows),
            "cumulative_pnl_by_mode": by_mode}


def report(state_dir: Path) -> dict[str, Any]:
    found, problems = scan(state_dir)
    rows = [row(e) for e in found]
    return {"sessions": rows, "totals": totals(rows), "unreadable": problems}


def render(data: dict[str, Any]) -> str:
    """The table a trader reads: one line per session, then the totals."""
    lines = [f"{'session':<28} {'mode':<5} {'start':<20} {'trd':>4} {'void':>4} {'skip':>4} {'hit':>6} "
             f"{'PnL':>10} {'fees':>8} {'maxDD':>6}  halted"]
    for r in data["sessions"]:
        hit = f"{r['hit_rate']:.1%}" if r["hit_rate"] is not None else "-"
        lines.append(f"{r['session']:<28} {r['mode']:<5} {r['start']:<20} {r['traded']:>4} {r['void']:>4} "
                     f"{r['skipped']:>4} {hit:>6} {usd(Decimal(r['pnl']), sign=True):>10} "
                     f"{usd(Decimal(r['fees'])):>8} {float(r['max_drawdown_from_peak']):>6.1%}  {r['halted']}")
    t = data["totals"]
    hit = f"{t['hit_rate']:.1%}" if t["hit_rate"] is not None else "-"
    lines.append(f"{t['sessions']} session(s), {t['halted']} halted: {t['traded']} traded ({hit} won), {t['void']} "
                 f"void, {t['skipped']} skipped; PnL {usd(Decimal(t['pnl']), sign=True)} after "
                 f"{usd(Decimal(t['fees']))} of fees; {t['corrections']} correction(s)")
    for mode, cumulative in t["cumulative_pnl_by_mode"].items():
        lines.append(f"  {mode}: cumulative PnL {usd(Decimal(cumulative[-1]), sign=True)} over {len(cumulative)} "
                     "session(s)")
    lines += [f"unreadable: {p}" for p in data["unreadable"]]
    return "\n".join(lines)


def plot(state_dir: Path, path: Path) -> Path:
    """The capital after every interval of every session, chained: each session's PnL added to the last."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    total, xs, ys, starts = ZERO, [0], [0.0], []
    for e in scan(state_dir)[0]:
        s = e.session
        starts.append(len(xs) - 1)
        for r in s.rows():
            xs.append(len(xs))
            ys.append(float(total + r.capital_after - s.capital0))
        total += s.capital - s.capital0
    ax.step(xs, ys, where="post", color="#1f5f8b", lw=1.4, label="cumulative PnL")
    for x in starts[1:]:
        ax.axvline(x, color="grey", lw=0.5, ls=":")
    ax.axhline(0, color="black", lw=0.8)
    ax.set(title=f"cumulative PnL over {len(starts)} session(s) (dotted: a new session)", xlabel="interval",
           ylabel="USD")
    ax.legend(loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
