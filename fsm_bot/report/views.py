"""The report as people read it: the result first (the header strip: final capital, PnL after fees, the fees,
PnL before fees, the hit rate against break-even, the drawdown, the state), the chart, then the trades
(short headers with units, dollars with cents, prices at one precision, outcomes marked in shape and
colour) and the details; as Markdown and as the page."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from fsm_bot import page as web
from fsm_bot.money import plain, usd
from fsm_bot.page import Cell, Figure, money_cell, pct

if TYPE_CHECKING:
    from fsm_bot.report import Report

HEAD = ("#", "time UTC", "side", "conf", "price", "stake $", "fee $", "PnL $", "capital $", "outcome", "reason")
NUMERIC = (True, False, False, True, True, True, True, True, True, False, False)
BRIER = ("The Brier scores compare each trade's entry price (the market's probability of the chosen side) and the "
         "strategy's confidence with the outcome (1 for a WIN): lower is better, 0.25 is a coin flip.")


def trade_cells(r: "Report") -> list[list[Cell]]:
    fmt = web.price_format(row.odds for row in r.rows)
    one_day = len({row.timestamp[:10] for row in r.rows}) <= 1
    out = []
    for row in r.rows:
        ts = row.timestamp
        clock = ts[11:16] if one_day else f"{ts[5:10]} {ts[11:16]}"
        decided = row.prediction in ("UP", "DOWN")
        out.append([
            web.number_cell(str(row.interval_number)),
            Cell(f'<time datetime="{html.escape(ts)}">{clock}</time>', clock),
            web.text_cell(row.prediction if decided else "-"),
            web.number_cell(f"{row.confidence:.2f}" if decided else "-"),
            web.number_cell("-" if row.odds is None else format(row.odds, fmt)),
            money_cell(row.position_size, blank_zero=True), money_cell(row.fee, blank_zero=True),
            money_cell(row.pnl, sign=True, blank_zero=row.outcome == "SKIPPED"), money_cell(row.capital_after),
            web.outcome_cell(row.outcome), web.text_cell(row.reason, "muted" if row.outcome == "SKIPPED" else ""),
        ])
    return out


def state_figure(m: dict[str, Any]) -> Figure:
    traded = f"{m['intervals']} intervals, {m['trades']} traded"
    if m["halted"]:
        why = f"{m['halted']}: {m['halt_detail']}" if m["halt_detail"] else m["halted"]
        return Figure("state", "state", "HALTED", f"{why}; {traded}", tone="bad")
    return Figure("state", "state", m["state"].split(" (")[0], traded if m["state"] == "finished" else m["state"])


def head(m: dict[str, Any]) -> list[Figure]:
    start, end, pnl, fees, gross = m["capital_start"], m["capital_end"], m["pnl"], m["fees"], m["pnl_gross"]
    staked = f"{pct(fees / m['staked'])} of {usd(m['staked'])} staked" if m["staked"] else "no trade"
    return [
        Figure("final", "final capital", usd(end), f"{pct((end - start) / start, sign=True)} from {usd(start)}; "
               f"floor {usd(m['floor'])}", plain(end), web.tone(end - start)),
        Figure("pnl", "PnL after fees", usd(pnl, sign=True), "what the session made", plain(pnl), web.tone(pnl)),
        Figure("fees", "fees paid", usd(fees), staked, plain(fees)),
        Figure("gross", "PnL before fees", usd(gross, sign=True), "gross: PnL + fees", plain(gross), web.tone(gross)),
        web.hit_figure(m["wins"], m["trades"], m["hit_rate_wilson95"], m["breakeven_hit_rate"]),
        Figure("drawdown", "max drawdown", pct(m["max_drawdown"]), "from the running peak",
               tone="bad" if m["max_drawdown"] else ""),
        state_figure(m),
    ]


def story(m: dict[str, Any]) -> str:
    """The header strip in a sentence or two: what the fees did, and what the hit rate can tell."""
    if not m["trades"]:
        return "No interval traded: " + (", ".join(f"{k} x{v}" for k, v in m["skip_reasons"].items()) or "none") + "."
    text = (f"Before fees the trades made {usd(m['pnl_gross'], sign=True)}; {usd(m['fees'])} of fees left "
            f"{usd(m['pnl'], sign=True)}.")
    if m["breakeven_hit_rate"] is not None:
        lo, hi = m["hit_rate_wilson95"]
        text += (f" Break-even is a hit rate of {pct(m['breakeven_hit_rate'])}: p x (1 + r x (1 - p)) at the average "
                 f"entry price p = {m['avg_entry_price']} and fee rate r = {float(m['fee_rate']):g}. The hit rate, "
                 f"{pct(m['hit_rate'])} over {m['trades']} trades (95% Wilson {pct(lo)}-{pct(hi)}), is "
                 f"{m['vs_breakeven']} break-even.")
    return text


def summary_lines(m: dict[str, Any]) -> list[tuple[str, str]]:
    lo, hi = m["hit_rate_wilson95"]
    hit = "-" if m["hit_rate"] is None else f"{pct(m['hit_rate'])} (95% Wilson {pct(lo)}-{pct(hi)})"
    be = "-" if m["breakeven_hit_rate"] is None else (
        f"{pct(m['breakeven_hit_rate'], 2)} at the average entry price {m['avg_entry_price']}, fee rate "
        f"{float(m['fee_rate']):g}: the hit rate is {m['vs_breakeven']} it")
    brier = [("-" if m[k] is None else f"{m[k]:.4f}") for k in ("brier_entry_price", "brier_confidence")]
    return [
        ("session", f"{m['session']} ({m['mode']}), from {m['start']}"),
        ("state", m["state"] + (f": {m['halted']} ({m['halt_detail']})" if m["halted"] else "")),
        ("intervals", f"{m['intervals']}: {m['trades']} traded, {m['intervals'] - m['trades']} not"),
        ("wins / losses", f"{m['wins']} / {m['losses']}"),
        ("hit rate", hit), ("break-even hit rate", be),
        ("PnL", f"{usd(m['pnl'], sign=True)} after {usd(m['fees'])} of fees ({usd(m['pnl_gross'], sign=True)} before)"),
        ("capital", f"{usd(m['capital_start'])} -> {usd(m['capital_end'])} (floor {usd(m['floor'])})"),
        ("max drawdown", f"{pct(m['max_drawdown'], 2)} from the running peak"),
        ("Brier score, entry prices", brier[0]), ("Brier score, confidence", brier[1]),
        ("skip reasons", ", ".join(f"{k} x{v}" for k, v in m["skip_reasons"].items()) or "none"),
        ("corrections", str(len(m["corrections"]))),
        ("unreconciled", ", ".join(map(str, m["unreconciled"])) or "none"),
    ]


FIX_HEAD, FIX_NUMERIC = ("#", "old", "new", "PnL change $", "capital after $"), (True, False, False, True, True)


def fix_cells(m: dict[str, Any]) -> list[list[Cell]]:
    return [[web.number_cell(str(c["interval"])), web.outcome_cell(c["old"]), web.outcome_cell(c["new"]),
             money_cell(c["pnl_change"], sign=True), money_cell(c["capital_after"])] for c in m["corrections"]]


def markdown(r: "Report", image: str) -> str:
    m = r.summary
    out = [f"# Session report: {r.session.session}", "", "| result | | |", "| --- | ---: | --- |"]
    out += [f"| {f.label} | {f.value} | {f.note} |" for f in head(m)]
    out += ["", story(m), "", f"![equity and drawdown]({image})", "", "## Trades", ""]
    out += web.markdown_table(HEAD, trade_cells(r), NUMERIC)
    out += ["", "## Details", "", "| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in summary_lines(m)]
    out += ["", BRIER, ""]
    if m["corrections"]:
        out += ["## Corrections", ""] + web.markdown_table(FIX_HEAD, fix_cells(m), FIX_NUMERIC) + [""]
    return "\n".join(out) + "\n"


def page(r: "Report", png: bytes, phone_png: bytes | None = None) -> str:
    from fsm_bot.report.chart import context, span
    m = r.summary
    facts = "".join(f'<tr><th scope="row">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>'
                    for k, v in summary_lines(m))
    fixes = ("<h2>Corrections</h2>" + web.table("corrections", FIX_HEAD, fix_cells(m), FIX_NUMERIC)
             if m["corrections"] else "")
    sections = [
        web.image(png, "capital after each interval, and the drawdown from the running peak", phone_png),
        "<h2>Trades</h2>" + web.table("trades", HEAD, trade_cells(r), NUMERIC)
        + '<p class="sub">Dollars to the cent; each cell holds the exact amount (hover it).</p>',
        f'<h2>Details</h2><div class="scroll"><table id="details" class="wrap">{facts}</table></div><p>{html.escape(BRIER)}</p>',
        fixes,
    ]
    subtitle = f"{m['mode']} session, {span(r)}; {context(r)}"
    return web.layout(f"Session report: {r.session.session}", subtitle, head(m), story(m), sections)
