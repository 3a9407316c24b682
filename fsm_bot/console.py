"""What a person sees while a session runs: a rich live view on a terminal (state, interval k/N,
countdown in the session's clock, capital, streak, drawdown), plain lines otherwise, and a summary
table at the end."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, TextIO

from fsm_bot.money import ZERO, max_drawdown, usd
from fsm_bot.session import Session, iso_seconds
from fsm_bot.steps import TradeRow

if TYPE_CHECKING:
    from fsm_bot.engine import Transition


def row_line(row: TradeRow, intervals: int) -> str:
    width = len(str(intervals))
    if row.outcome == "SKIPPED":
        trade = f"SKIPPED ({row.reason})"
    elif row.outcome == "VOID":
        trade = f"{row.prediction:<4} conf {row.confidence:.2f} -> VOID ({row.reason}): matched, never a position"
    else:
        trade = (f"{row.prediction:<4} conf {row.confidence:.2f} stake {usd(row.position_size)} @ {row.odds} "
                 f"fee {usd(row.fee)} -> {row.outcome} {usd(row.pnl, sign=True)}")
    return (f"[{row.interval_number:>{width}}/{intervals}] {row.timestamp} {trade}  capital {usd(row.capital_after)}"
            f"  streak {row.win_streak}")


def _clock(ms: int) -> str:
    secs = max(0, ms // 1000)
    return f"{secs // 60}:{secs % 60:02d}"


def countdown(s: Session, now_ms: int) -> str:
    """What the clock counts to: the interval's start while waiting for it, else its end."""
    k = min(s.interval, s.intervals)
    if s.done:
        return "done" if not s.following and not s.pending else "awaiting official results"
    if s.state == "IDLE" and now_ms < s.interval_start(k):
        return f"interval {k}/{s.intervals} starts in {_clock(s.interval_start(k) - now_ms)}"
    return f"interval {k}/{s.intervals} ends in {_clock(s.interval_end(k) - now_ms)}"


def position(s: Session, now_ms: int) -> str | None:
    """The open position, if one is held: side, stake, price, shares, time left, what settles it so far."""
    c = s.current
    if c.submitted is None or c.prediction is None:
        return None
    f, side = c.submitted.fill, (c.sized.order.side if c.sized and c.sized.order else c.prediction.side)
    state = ("on chain: " + "/".join(sorted({t.status for t in c.trades}))) if not c.fill_final else "held"
    result = (f"settled {c.settled.result}: {'WIN' if c.settled.result == side else 'LOSS'} provisionally"
              if c.settled and c.settled.result else "result pending")
    return (f"{side} {usd(f.spent_usd)} @ {f.avg_price} for {f.shares} shares ({state}); "
            f"{_clock(s.interval_end(s.interval) - now_ms)} left; {result}")


def summary(s: Session) -> dict[str, Any]:
    rows = s.rows()
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    wins = sum(r.outcome == "WIN" for r in traded)
    voids = sum(r.outcome == "VOID" for r in rows)
    max_dd = max_drawdown([s.capital0] + [r.capital_after for r in rows])
    return {"session": s.session, "mode": s.mode, "intervals": len(rows), "trades": len(traded), "wins": wins,
            "losses": len(traded) - wins, "skipped": len(rows) - len(traded) - voids, "void": voids,
            "hit_rate": (wins / len(traded)) if traded else None, "pnl": s.capital - s.capital0,
            "fees": sum((r.fee for r in rows), ZERO), "capital": s.capital, "max_drawdown": max_dd,
            "halted": s.halted, "corrections": len(s.corrections)}


def _resolution(r: Any) -> str:
    return {"voided": "its trade failed on chain: VOID, its PnL reversed",
            "revived": f"a fill booked VOID was held after all: {r.new_outcome}",
            "fill_unconfirmed": "its fill is still not final on chain (left as booked)"}.get(
        r.status, f"official result {r.official or 'unknown'} ({r.status})")


class Console:
    """The session observer. ``live`` uses rich when stdout is a terminal; plain lines otherwise."""

    def __init__(self, clock_ms: Callable[[], int], out: TextIO | None = None, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live_mode = self.out.isatty() if live is None else live
        self.clock_ms = clock_ms
        self.session: Session | None = None
        self.last: TradeRow | None = None
        self._live: Any = None

    # -- the observer ---------------------------------------------------------------------------
    def start(self, s: Session, note: str = "") -> None:
        self.session = s
        header = (f"fsm-bot {s.mode} session {s.session}: {s.intervals} x {s.cfg.interval_minutes}-minute intervals "
                  f"from {iso_seconds(s.interval_start(1))}, capital {usd(s.capital)}, policy {s.cfg.policy}")
        if self.live_mode:
            from rich.console import Console as RichConsole
            from rich.live import Live
            self._rich = RichConsole(file=self.out)
            for line in filter(None, [note, header]):
                self._rich.print(line, highlight=False)
            self._live = Live(get_renderable=self._render, console=self._rich, refresh_per_second=8, transient=True)
            self._live.start()
        else:
            for line in filter(None, [note, header]):
                self._say(line)

    def on_transition(self, t: Transition) -> None:
        """An observer of the engine (``fsm_bot.engine.Transition``)."""
        after, step = t.after, t.step
        self.session = after
        if step.trigger == "recorded":
            self.last = after.trades[-1]
            self._say(row_line(self.last, after.intervals))
        elif step.trigger == "halt":
            for row in after.rows()[len(after.trades):]:
                self._say(row_line(row, after.intervals))
        elif step.trigger == "reconciled":
            for r in step.results:  # type: ignore[attr-defined]
                if r.status not in ("confirmed", "fill_final"):
                    self._say(f"interval {r.interval}: {_resolution(r)}; PnL change {usd(r.pnl_change, sign=True)}, "
                              f"capital {usd(r.capital_after)}")
        if self._live is not None:
            try:
                self._live.refresh()
            except OSError:
                self.close()
                self.out = None

    def _say(self, line: str) -> None:
        """Print a line; a closed or broken terminal silences the console, never the session."""
        if self.out is None:
            return
        try:
            if self._live is not None:
                self._live.console.print(line, highlight=False)
            else:
                print(line, file=self.out, flush=True)
        except OSError:
            self.close()
            self.out = None

    def _render(self) -> Any:
        from rich.table import Table
        s = self.session
        assert s is not None
        now = self.clock_ms()
        grid = Table.grid(padding=(0, 2))
        for _ in range(5):
            grid.add_column()
        grid.add_row("[b]state[/b]", "[b]countdown[/b]", "[b]capital[/b]", "[b]streak[/b]", "[b]drawdown from start[/b]")
        grid.add_row(s.halted and f"HALTED ({s.halted})" or s.state, countdown(s, now), usd(s.capital), str(s.streak),
                     f"{s.drawdown:.1%}")
        held = position(s, now)
        if held:
            grid.add_row("[b]position[/b]", held, "", "", "")
        return grid

    def close(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            try:
                live.stop()
            except OSError:
                self.out = None

    # -- the end --------------------------------------------------------------------------------
    def finish(self, s: Session, files: str = "") -> None:
        self.close()
        if self.out is None:
            return
        m = summary(s)
        lines = [
            ("session", f"{m['session']} ({m['mode']})"),
            ("result", f"HALTED: {m['halted']}" if m["halted"] else "finished"),
            ("intervals", f"{m['intervals']}: {m['trades']} traded, {m['skipped']} skipped"
             + (f", {m['void']} void (matched, never a position)" if m["void"] else "")),
            ("wins / losses", f"{m['wins']} / {m['losses']}"
             + (f" (hit rate {m['hit_rate']:.1%})" if m["hit_rate"] is not None else "")),
            ("PnL", f"{usd(m['pnl'], sign=True)} after {usd(m['fees'])} of fees "
                    f"({usd(m['pnl'] + m['fees'], sign=True)} before)"),
            ("capital", usd(m["capital"])),
            ("max drawdown from peak", f"{m['max_drawdown']:.2%}"),
            ("corrections", str(m["corrections"])),
        ]
        if files:
            lines.append(("files", files))
        if self.live_mode:
            from rich.table import Table
            table = Table(title="session summary", show_header=False)
            table.add_column(style="bold")
            table.add_column()
            for name, value in lines:
                table.add_row(name, value)
            self._rich.print(table)
        else:
            width = max(len(n) for n, _ in lines)
            for name, value in lines:
                self._say(f"{name:<{width}}  {value}")
