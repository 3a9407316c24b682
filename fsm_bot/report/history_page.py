"""``fsm-bot history --html``: every session of a state dir on one page (``fsm_bot.page``'s layout): the totals in
the header strip, the cumulative equity on a UTC clock, then a row per session; ``--plot`` is the same chart.

Money of one mode is never added to another's: with sessions of several modes, the header is the most real
mode's (live, then paper, then sim), a small table gives each mode's totals, and the chart draws a line per mode.
Each session's PnL is added to the last one's (its own start capital is not), so the chained equity is the
first session's start capital plus the cumulative PnL.
"""

from __future__ import annotations

import dataclasses
import html
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import timezone
from decimal import Decimal
from typing import Any

from fsm_bot import page as web
from fsm_bot.backtest import wilson
from fsm_bot.exact_risk import breakeven_win_rate
from fsm_bot.history import Entry
from fsm_bot.money import ZERO, max_drawdown, plain, usd
from fsm_bot.page import Cell, Figure, money_cell, number_cell, pct, text_cell
from fsm_bot.report import equity_curve, fee_rate
from fsm_bot.report.chart import MARKS, tex, utc
from fsm_bot.report.views import story

RANK = ("live", "paper", "sim")  # the mode whose money the header shows: the first present
LINES = (("#1f5f9f", "-"), ("#8a4f00", "--"), ("#5f6368", "-."))  # the header's mode first, then the others
MAX_MARKS = 150  # more WIN/LOSS marks than this would hide the line (about 8 sessions of 18)
HEAD = ("session", "mode", "start UTC", "trd", "void", "skip", "hit", "PnL $", "fees $", "gross $", "max DD", "halted")
NUMERIC = (False, False, False, True, True, True, True, True, True, True, True, False)
MODE_HEAD = ("mode", "sessions", "halted", "trd", "hit", "PnL $", "fees $", "gross $")
MODE_NUMERIC = (False, True, True, True, True, True, True, True)


@dataclass
class Chain:
    """One mode's sessions end to end: the cumulative PnL after every interval and correction, in start order."""

    mode: str
    capital0: Decimal  # the first session's start capital
    points: list[tuple[int, Decimal]] = field(default_factory=list)  # (ts_ms, cumulative PnL)
    marks: dict[str, list[tuple[int, Decimal]]] = field(default_factory=lambda: {"WIN": [], "LOSS": []})
    starts: list[int] = field(default_factory=list)
    total: Decimal = ZERO
    fees: Decimal = ZERO

    def add(self, e: Entry) -> None:
        s = e.session
        self.starts.append(s.start_ms)
        self.points += [(p.ts_ms, self.total + p.capital - s.capital0) for p in equity_curve(e.records)]
        for r in s.rows():
            if r.outcome in self.marks:
                self.marks[r.outcome].append((s.interval_end(r.interval_number), self.total + r.capital_after - s.capital0))
        self.total += s.capital - s.capital0
        self.fees += sum((r.fee for r in s.rows()), ZERO)

    def drawdown(self) -> tuple[Decimal, Decimal]:
        """The largest fall of the chained equity from its running peak: as a fraction of the peak, in dollars."""
        equity = [self.capital0 + v for _, v in self.points]
        dollars = max((max(equity[: i + 1]) - v for i, v in enumerate(equity)), default=ZERO)
        return max_drawdown(equity), dollars


def rank(mode: str) -> int:
    return RANK.index(mode) if mode in RANK else len(RANK)


def chains(entries: list[Entry]) -> dict[str, Chain]:
    """Each mode's chain, the most real mode first."""
    out: dict[str, Chain] = {}
    for e in entries:
        out.setdefault(e.session.mode, Chain(e.session.mode, e.session.capital0)).add(e)
    return dict(sorted(out.items(), key=lambda kv: rank(kv[0])))
    return out


def headline(modes: list[str]) -> str | None:
    return min(modes, key=rank, default=None)


def span(entries: list[Entry]) -> str:
    """``2024-03-13 14:00-18:30 UTC``: the first session's start to the last one's end."""
    a = utc(min(e.session.start_ms for e in entries))
    b = utc(max(e.session.interval_end(e.session.intervals) for e in entries))
    return f"{a:%Y-%m-%d %H:%M}-{b.strftime('%H:%M' if a.date() == b.date() else '%Y-%m-%d %H:%M')} UTC"


def figures_of(entries: list[Entry], t: dict[str, Any]) -> dict[str, Any]:
    """One mode's numbers as the session report's ``story`` reads them: money, the hit rate, break-even."""
    rows = [r for e in entries for r in e.session.rows()]
    traded = [r for r in rows if r.outcome in ("WIN", "LOSS")]
    prices = [r.odds for r in traded if r.odds is not None]
    avg = (sum(prices, ZERO) / len(prices)).quantize(Decimal("0.0001")) if prices else None
    rate = fee_rate(entries[-1].session, traded)
    be = breakeven_win_rate(avg, rate) if avg is not None else None
    lo, hi = wilson(t["wins"], t["traded"])
    verdict = None if be is None or not traded else (
        "above" if lo > be else "below" if hi < be else "not distinguishable from")
    return {"trades": t["traded"], "wins": t["wins"], "hit_rate": t["wins"] / t["traded"] if traded else None,
            "hit_rate_wilson95": (lo, hi), "pnl": Decimal(t["pnl"]), "fees": Decimal(t["fees"]),
            "pnl_gross": Decimal(t["pnl_gross"]), "avg_entry_price": avg, "fee_rate": rate,
            "breakeven_hit_rate": be, "vs_breakeven": verdict,
            "skip_reasons": dict(Counter(r.reason for r in rows if r.outcome == "SKIPPED").most_common())}


def state_figure(latest: dict[str, Any]) -> Figure:
    who = f"{latest['session']} ({latest['mode']})"
    if latest["halted"]:
        return Figure("state", "latest session", "HALTED", f"{who}: {latest['halted']}", tone="bad")
    done = latest["state"] == "finished"
    return Figure("state", "latest session", latest["state"].split(" (")[0],
                  f"{who}, {latest['intervals']} intervals" if done else f"{who}: {latest['state']}")


def head(m: dict[str, Any], t: dict[str, Any], data: dict[str, Any], chain: Chain) -> list[Figure]:
    """The header strip: ``m`` and ``t`` are the numbers and the totals of ``chain``'s mode."""
    others = data["totals"]["sessions"] - t["sessions"]
    of = f"{chain.mode} " if others else ""
    (dd, dd_usd), capital0 = chain.drawdown(), chain.capital0
    pnl, fees, gross = m["pnl"], m["fees"], m["pnl_gross"]
    hit = web.hit_figure(m["wins"], m["trades"], m["hit_rate_wilson95"], m["breakeven_hit_rate"])
    return [
        Figure("sessions", f"{of}sessions", str(t["sessions"]), f"{t['halted']} halted"
               + (f"; {others} of other modes, apart below" if others else "; PnL chained in start order")),
        Figure("pnl", f"{of}PnL after fees", usd(pnl, sign=True), f"over {t['traded']} trades", plain(pnl), web.tone(pnl)),
        Figure("fees", f"{of}fees paid", usd(fees), f"{t['void']} void, {t['skipped']} skipped", plain(fees)),
        Figure("gross", f"{of}PnL before fees", usd(gross, sign=True), "gross: PnL + fees", plain(gross),
               web.tone(gross)),
        dataclasses.replace(hit, label=f"{of}{hit.label}"),
        Figure("drawdown", f"{of}max drawdown", pct(dd), f"{usd(dd_usd)} from the running peak; equity chained from "
               f"{usd(capital0)}", tone="bad" if dd else ""),
        state_figure(data["sessions"][-1]),
    ]


def words(m: dict[str, Any], data: dict[str, Any], mode: str) -> str:
    """The header in a sentence or two, and which sessions it counts."""
    by_mode = data["totals"]["by_mode"]
    t = by_mode[mode]
    text = story(m)
    if len(by_mode) > 1:
        rest = ", ".join(f"{k} ({v['sessions']})" for k, v in by_mode.items() if k != mode)
        return (f"The header counts the {t['sessions']} {mode} session(s) only: the sessions of {rest} are not "
                f"added to its money (their totals are in the table below). {text}")
    return f"Over {t['sessions']} {mode} session(s), each one's PnL added to the last. {text}"


def session_cells(r: dict[str, Any]) -> list[Cell]:
    start = r["start"].replace("T", " ")[:16]
    halted = r["halted"] or ("unfinished" if r["state"].startswith("unfinished") else "-")
    return [text_cell(r["session"]), text_cell(r["mode"]),
            Cell(f'<time datetime="{html.escape(r["start"])}">{start}</time>', start),
            number_cell(str(r["traded"])), number_cell(str(r["void"])), number_cell(str(r["skipped"])),
            number_cell(pct(r["hit_rate"])), *money_cells(r),
            number_cell(pct(Decimal(r["max_drawdown_from_peak"]))), text_cell(halted, "bad" if r["halted"] else "muted")]


def money_cells(r: dict[str, Any]) -> list[Cell]:
    return [money_cell(Decimal(r["pnl"]), sign=True), money_cell(Decimal(r["fees"])),
            money_cell(Decimal(r["pnl_gross"]), sign=True)]


def mode_cells(mode: str, t: dict[str, Any]) -> list[Cell]:
    return [text_cell(mode), number_cell(str(t["sessions"])), number_cell(str(t["halted"])),
            number_cell(str(t["traded"])), number_cell(pct(t["hit_rate"])), *money_cells(t)]


def title(entries: list[Entry], cs: dict[str, Chain], phone: bool) -> str:
    what = f"cumulative PnL after fees, {len(entries)} session(s)"
    result = [f"{c.mode}: gross {usd(c.total + c.fees, sign=True)} - fees {usd(c.fees)} = net {usd(c.total, sign=True)}"
              for c in cs.values()]
    return tex("\n".join([what, span(entries), *result] if phone else [f"{what}, {span(entries)}", " · ".join(result)]))


def draw(ax: Any, entries: list[Entry], cs: dict[str, Chain]) -> None:
    """A step line per mode, WIN and LOSS marks (when they are few enough to read), a dotted line where a
    session starts."""
    few = sum(len(v) for c in cs.values() for v in c.marks.values()) <= MAX_MARKS
    for i, c in enumerate(cs.values()):
        colour, style = LINES[min(i, len(LINES) - 1)]
        ax.step([utc(t) for t, _ in c.points], [float(v) for _, v in c.points], where="post", color=colour, ls=style,
                lw=2, zorder=3, label=tex(f"{c.mode}: {usd(c.total, sign=True)}, {len(c.starts)} session(s)"))
        for outcome, at in c.marks.items() if few else ():
            marker, tint, fill = MARKS[outcome]
            count = sum(len(k.marks[outcome]) for k in cs.values())
            ax.plot([utc(t) for t, _ in at], [float(v) for _, v in at], ls="none", marker=marker, ms=6, color=tint,
                    fillstyle=fill, zorder=4, label=f"{outcome} ({count})" if i == 0 else None)
    for e in entries[1:]:
        ax.axvline(utc(e.session.start_ms), color="#5f6368", ls=":", lw=0.8, zorder=1,
                   label="a session starts" if e is entries[1] else None)
    ax.axhline(0, color="#1f1f1f", lw=0.8, zorder=2)


def picture(entries: list[Entry], path: Any, phone: bool = False) -> None:
    """The chained equity as a PNG in ``path`` (a file name or a binary file), on a UTC clock; ``phone=True``
    draws it tall, its legend below."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    cs = chains(entries)
    with plt.rc_context({"font.size": 10 if phone else 9.5}):
        fig, ax = plt.subplots(figsize=(4.6, 5.6) if phone else (9.5, 4.4))
        draw(ax, entries, cs)
        ends = [t for c in cs.values() for t, _ in c.points]
        long = bool(ends) and max(ends) - min(ends) > 86_400_000
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=timezone.utc, minticks=3, maxticks=5 if phone else 10))
        ax.xaxis.set_major_formatter(mdates.DateFormatter(("%m-%d\n%H:%M" if phone else "%m-%d %H:%M") if long
                                                          else "%H:%M", tz=timezone.utc))
        ax.set(xlabel="time, UTC (interval end)", ylabel="cumulative PnL, USD")
        ax.grid(alpha=0.3)
        below = 0.0
        if not entries:
            ax.text(0.5, 0.5, "no session", transform=ax.transAxes, ha="center")
        elif phone:  # the legend under the chart, in a band of its own
            ax.set_title(title(entries, cs, phone), fontsize=9, loc="left")
            legend = fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
            fig.canvas.draw()
            below = legend.get_window_extent().height / fig.bbox.height + 0.01
        else:
            ax.set_title(title(entries, cs, phone), fontsize=10, loc="left")
            ax.legend(fontsize=8, ncol=3, framealpha=0.9, loc="best")
        fig.tight_layout(rect=(0, below, 1, 1))
        fig.savefig(path, dpi=200 if phone else 130, format="png")
        plt.close(fig)


def png(entries: list[Entry], phone: bool) -> bytes:
    out = io.BytesIO()
    picture(entries, out, phone=phone)
    return out.getvalue()


def per_mode(data: dict[str, Any], mode: str) -> str:
    by_mode = data["totals"]["by_mode"]
    if len(by_mode) < 2:
        return ""
    rows = [mode_cells(k, by_mode[k]) for k in sorted(by_mode, key=rank)]
    return ("<h2>Per mode</h2>" + web.table("modes", MODE_HEAD, rows, MODE_NUMERIC)
            + f'<p class="sub">Each mode apart, never added together; the header is {mode}\'s.</p>')


def unreadable(problems: list[str]) -> str:
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    return f"<h2>Not counted</h2><p>These journals could not be read:</p><ul>{items}</ul>" if problems else ""


def page(entries: list[Entry], data: dict[str, Any], where: str) -> str:
    """The page: the header (the totals of the mode that matters), each mode's totals when there are several,
    the chart, the sessions and what could not be read."""
    title_, mode = f"Session history: {where}", headline(list(data["totals"]["by_mode"]))
    if mode is None:
        return web.layout(title_, "no session yet", [Figure("sessions", "sessions", "0", "none in this state dir")],
                          "No session has begun in this state dir or its archive.", [unreadable(data["unreadable"])])
    sections = [
        per_mode(data, mode),
        web.image(png(entries, False), "cumulative PnL after fees across the sessions, on a UTC clock", png(entries, True)),
        "<h2>Sessions</h2>" + web.table("history", HEAD, [session_cells(r) for r in data["sessions"]], NUMERIC)
        + '<p class="sub">Oldest first. Dollars to the cent; each cell holds the exact amount (hover it). '
          "max DD: the largest fall from the session's running peak.</p>",
        unreadable(data["unreadable"]),
    ]
    subtitle = f"{len(entries)} session(s) of {', '.join(sorted(data['totals']['by_mode'], key=rank))}, {span(entries)}"
    t = data["totals"]["by_mode"][mode]
    m = figures_of([e for e in entries if e.session.mode == mode], t)
    return web.layout(title_, subtitle, head(m, t, data, chains(entries)[mode]), words(m, data, mode), sections)
