"""The session's chart: capital after each interval on a UTC clock, the start and the floor marked, every
WIN, LOSS and VOID a marker of its own shape (so it reads in grey scale), any halt shaded, and below it the
drawdown from the running peak in %. Its title says the span, the policy, the fee rate, the capital and the
floor. ``phone=True`` draws it tall and narrow, for a phone's screen."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fsm_bot.money import usd

if TYPE_CHECKING:
    from fsm_bot.report import Report

MARKS = {"WIN": ("^", "#1b7a36", "full"), "LOSS": ("v", "#b3261e", "full"), "VOID": ("o", "#5f6368", "none")}


def tex(text: str) -> str:
    """Dollars as matplotlib shows them: it reads a pair of ``$`` as mathematics."""
    return text.replace("$", r"\$")


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def span(r: "Report") -> str:
    """``2024-03-13 14:00-15:30 UTC``: the session's intervals, start to end."""
    s = r.session
    a, b = utc(s.start_ms), utc(s.interval_end(s.intervals))
    end = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%Y-%m-%d %H:%M")
    return f"{a:%Y-%m-%d %H:%M}-{end} UTC"


def context(r: "Report") -> str:
    m = r.summary
    return (f"policy {r.session.cfg.policy} · fee rate {float(m['fee_rate']):.1%} · start {usd(m['capital_start'])}"
            f" · floor {usd(m['floor'])}")


def title(r: "Report", phone: bool) -> str:
    """What the chart shows, and of what: the span, the policy, fee rate, capital and floor, and the result."""
    m = r.summary
    result = (f"gross {usd(m['pnl_gross'], sign=True)} - fees {usd(m['fees'])} = net {usd(m['pnl'], sign=True)}")
    lines = ([f"{r.session.session}", f"capital after each interval, {span(r)}", context(r), result] if phone
             else [f"{r.session.session}: capital after each interval, {span(r)}", f"{context(r)} · {result}"])
    return tex("\n".join(lines))


def picture(r: "Report", path: Any, phone: bool = False) -> None:
    """The chart as a PNG in ``path`` (a file name or a binary file)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    s, m = r.session, r.summary
    xs = [utc(p.ts_ms) for p in r.equity]
    caps = [float(p.capital) for p in r.equity]
    peaks = [max(caps[: i + 1]) for i in range(len(caps))]
    dd = [(c - pk) / pk for c, pk in zip(caps, peaks)]
    floor, start = float(s.floor), float(s.capital0)
    with plt.rc_context({"font.size": 10 if phone else 9.5}):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.6, 6.4) if phone else (9.5, 5.6), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 1.25]})
        top.step(xs, caps, where="post", color="#1f5f9f", lw=2, label="capital", zorder=3)
        top.axhline(start, color="#5f6368", ls="--", lw=1, label=tex(f"start {usd(s.capital0)}"), zorder=2)
        top.axhline(floor, color="#b3261e", ls=":", lw=2, label=tex(f"floor {usd(s.floor)}"), zorder=4)
        for outcome, (marker, colour, fill) in MARKS.items():
            at = [(utc(s.interval_end(x.interval_number)), float(x.capital_after)) for x in r.rows if x.outcome == outcome]
            if at:
                top.plot([a for a, _ in at], [c for _, c in at], ls="none", marker=marker, ms=7, color=colour,
                         fillstyle=fill, mew=1.5, label=f"{outcome} ({len(at)})", zorder=5)
        if s.halted:
            top.axvspan(utc(s.interval_start(s.interval)), utc(s.interval_end(s.intervals)), color="#b3261e",
                        alpha=0.08, label=f"halted: {s.halted}")
        low, high = min(caps + [floor]), max(caps + [start])
        pad = (high - low) * 0.08 or 1
        top.set_ylim(low - pad, high + pad)
        top.set_ylabel("capital, USD")
        top.set_title(title(r, phone), fontsize=9 if phone else 10, loc="left")
        top.grid(alpha=0.3)
        top.legend(fontsize=8, ncol=2 if phone else 3, loc="best", framealpha=0.9)
        bottom.fill_between(xs, dd, 0, step="post", color="#b3261e", alpha=0.35)
        bottom.set_ylim(min(dd + [-0.01]) * 1.15, 0)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        bottom.set_ylabel("from peak")
        bottom.set_title(f"drawdown from the running peak (max {float(m['max_drawdown']):.1%})", fontsize=9, loc="left")
        long = (xs[-1] - xs[0]).total_seconds() > 86_400 if xs else False
        bottom.xaxis.set_major_locator(mdates.AutoDateLocator(tz=timezone.utc, minticks=4, maxticks=6 if phone else 10))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M" if long else "%H:%M", tz=timezone.utc))
        bottom.set_xlabel("time, UTC (interval end)")
        bottom.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=200 if phone else 130, format="png")
        plt.close(fig)
