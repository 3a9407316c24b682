"""One page layout for the reports people read on a phone or a desk: a header strip with the result, then
charts, then tables, in one self-contained HTML file (styles inline, images as ``data:`` URIs, no request).

``layout`` builds the page from ``Figure`` cards and section bodies; ``table`` makes a table that scrolls
sideways in its own box when it is wider than the screen, numbers right-aligned; the formatters here give
money as dollars with cents (``-$1.23``, ``+$4.56``), and outcomes and signs in colour *and* in a shape or
weight, so they read in grey scale too. The session report uses it; a backtest or history page can too.
"""

from __future__ import annotations

import base64
import html
import math
from decimal import Decimal
from typing import Iterable, Sequence

from fsm_bot.money import plain, usd
from fsm_bot.values import frozen

OUTCOME = {"WIN": ("▲ WIN", "good strong"), "LOSS": ("▼ LOSS", "bad strong"), "VOID": ("○ VOID", "muted"),
           "SKIPPED": ("– skip", "muted")}


@frozen
class Figure:
    """One number of the header strip: its label, the value as shown, the exact value it rounds (if any),
    a line of context and a tone (``good``, ``bad`` or none)."""

    id: str
    label: str
    value: str
    note: str = ""
    exact: str | None = None
    tone: str = ""


@frozen
class Cell:
    text: str  # already HTML
    plain: str  # the same, for Markdown
    cls: str = ""
    exact: str | None = None


def tone(d: Decimal | float | None) -> str:
    return "" if d is None or d == 0 else ("good" if d > 0 else "bad")


def money_cell(d: Decimal | None, sign: bool = False, blank_zero: bool = False) -> Cell:
    """Dollars with cents, the exact amount kept in ``data-exact`` (and shown on hover)."""
    if d is None or (blank_zero and d == 0):
        return Cell("-", "-", "num")
    text = usd(d, sign=sign)
    return Cell(html.escape(text), text, "num " + (tone(d) if sign else ""), plain(d))


def number_cell(text: str) -> Cell:
    return Cell(html.escape(text), text, "num")


def text_cell(text: str, cls: str = "") -> Cell:
    return Cell(html.escape(text), text, cls)


def outcome_cell(outcome: str) -> Cell:
    shown, cls = OUTCOME.get(outcome, (outcome, ""))
    return Cell(html.escape(shown), shown.replace("–", "-"), cls)


def price_format(prices: Iterable[Decimal | None]) -> str:
    """2 decimals when every price sits on the cent tick, else 4: one format for a whole column."""
    return ".2f" if all(p is None or p == p.quantize(Decimal("0.01")) for p in prices) else ".4f"


def pct(x: float | Decimal | None, digits: int = 1, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{float(x):{'+' if sign else ''}.{digits}%}"


def hit_figure(wins: int, n: int, interval: tuple[float, float], breakeven: float | None) -> Figure:
    """The hit rate with its 95% Wilson interval, and whether that clears break-even: an interval that holds
    break-even says nothing either way ("not distinguishable")."""
    if not n:
        return Figure("hit", "hit rate", "-", "no trade")
    lo, hi = interval
    rate = wins / n
    note = f"{wins} of {n} trades; 95% {pct(lo, 0)}-{pct(hi, 0)}"
    if breakeven is None:
        return Figure("hit", "hit rate", pct(rate), note)
    if lo > breakeven:
        verdict, t = f"above break-even {pct(breakeven)}", "good"
    elif hi < breakeven:
        verdict, t = f"below break-even {pct(breakeven)}", "bad"
    else:
        verdict, t = f"not distinguishable from break-even {pct(breakeven)}", ""
    return Figure("hit", "hit rate", pct(rate), f"{note}; {verdict}", tone=t)


def figures(items: Sequence[Figure]) -> str:
    out = []
    for f in items:
        exact = f' data-exact="{html.escape(f.exact)}" title="{html.escape(f.exact)}"' if f.exact is not None else ""
        note = f'<span class="note">{html.escape(f.note)}</span>' if f.note else ""
        out.append(f'<div class="figure" id="{f.id}"><span class="label">{html.escape(f.label)}</span>'
                   f'<span class="{("value " + f.tone).strip()}"{exact}>{html.escape(f.value)}</span>{note}</div>')
    return "".join(out)


def table(id: str, head: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: Sequence[bool]) -> str:
    """A table in a box that scrolls sideways (``overflow-x: auto``) on a narrow screen."""
    ths = "".join(f'<th scope="col"{" class=num" if num else ""}>{html.escape(h)}</th>' for h, num in zip(head, numeric))
    body = []
    for row in rows:
        tds = []
        for c in row:
            exact = f' data-exact="{c.exact}" title="{c.exact}"' if c.exact is not None else ""
            tds.append(f'<td class="{c.cls.strip()}"{exact}>{c.text}</td>' if c.cls.strip() or exact
                       else f"<td>{c.text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="scroll"><table id="{id}"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" ---: " if n else " --- " for n in numeric) + "|"]
    return lines + ["| " + " | ".join(c.plain.replace("|", "\\|") for c in row) + " |" for row in rows]


def image(png: bytes, alt: str, phone_png: bytes | None = None) -> str:
    """An inline PNG; with ``phone_png``, a taller variant a narrow screen shows instead (its text stays legible)."""
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    if phone_png is None:
        return f'<img alt="{html.escape(alt)}" src="{src}">'
    narrow = "data:image/png;base64," + base64.b64encode(phone_png).decode()
    return (f'<picture><source media="(max-width: 640px)" srcset="{narrow}">'
            f'<img alt="{html.escape(alt)}" src="{src}"></picture>')


STYLE = """
:root { --good: #1b7a36; --bad: #b3261e; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f1f1f; background: #fff;
       margin: 0 auto; max-width: 1120px; padding: 12px 16px 40px; }
h1 { font-size: 1.2rem; margin: 0; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
.sub { color: var(--muted); font-size: .875rem; margin: .1rem 0 .6rem; overflow-wrap: anywhere; }
#result .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 8px; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: .4rem .65rem .45rem; background: #f8f9fa; min-width: 0; }
.label { display: block; font-size: .8rem; color: var(--muted); }
.value { display: block; font-size: 1.65rem; font-weight: 700; line-height: 1.2; white-space: nowrap;
         font-variant-numeric: tabular-nums; }
.note { display: block; font-size: .8rem; line-height: 1.3; color: var(--muted); }
.story { margin: .6rem 0 0; }
.good { color: var(--good); } .bad { color: var(--bad); } .muted { color: var(--muted); } .strong { font-weight: 700; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .875rem; }
th, td { padding: .3rem .55rem; text-align: left; white-space: nowrap; border-bottom: 1px solid #eceff1; }
th { background: #f1f3f4; font-weight: 600; }
table.wrap th, table.wrap td { white-space: normal; vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
img { display: block; width: 100%; height: auto; margin: .8rem 0 0; }
p, li { max-width: 48rem; }
@media (max-width: 480px) { body { padding: 10px 12px 32px; } .value { font-size: 1.5rem; } }
"""


def layout(title: str, subtitle: str, head: Sequence[Figure], story: str, sections: Sequence[str]) -> str:
    """The page: title, the header strip (``#result``: the figures and a sentence of what they mean), then
    the sections (each HTML, charts first) in order."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(subtitle)}</p>
<section id="result"><div class="grid">{figures(head)}</div>
<p class="story">{html.escape(story)}</p></section>
{"".join(sections)}
</body></html>
"""
