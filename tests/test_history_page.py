"""``fsm-bot history --html``: the sessions of a state dir and its archive on one page. Its header's money is the
sessions' own files' to the cent, every session is a row, it asks for nothing but itself and it fits a phone
and a desk (headless Chromium, as in test_report_page.py); with sessions of several modes the header is the
most real mode's alone. ``--json`` and the terminal table carry the PnL before fees too."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot import cli, history
from fsm_bot.exact_risk import breakeven_win_rate
from fsm_bot.money import max_drawdown, usd
from fsm_bot.page import pct
from fsm_bot.report import history_page
from tests.test_report_page import DESKTOP, PHONE, launch

MEASURE = """(() => {
  const box = e => e.getBoundingClientRect();
  const strip = document.getElementById('result');
  const values = [...strip.querySelectorAll('.value')];
  const table = document.querySelector('#history');
  return {
    viewportWidth: window.innerWidth, viewportHeight: window.innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    valuesBottom: Math.max(...values.map(v => box(v).bottom)), values: values.length,
    bodyFontPx: parseFloat(getComputedStyle(document.body).fontSize),
    cellFontPx: parseFloat(getComputedStyle(table.querySelector('td')).fontSize),
    tableScrolls: getComputedStyle(table.parentElement).overflowX,
    rows: table.querySelectorAll('tbody tr').length,
    chartWidth: box(document.querySelector('img')).width,
  };
})()"""


def run(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """Two sessions back to back (archived), then one that halts (left in the state dir)."""
    d = tmp_path_factory.mktemp("history") / "state"
    for argv, halted in ((("--sessions", "2"), False), (("--capital", "10", "--start", "2024-03-13T17:00:00Z"), True)):
        code, _, err = run("start", "--sim", "--state-dir", d, *argv)
        assert code == (3 if halted else 0), err  # a halt's exit code
    return d


@pytest.fixture(scope="module")
def written(state):
    out = state.parent / "out"
    code, stdout, err = run("history", "--state-dir", state, "--json", "--html", out / "history.html",
                            "--plot", out / "history.png")
    assert code == 0, err
    return json.loads(stdout), (out / "history.html").read_text(encoding="utf-8"), out


def folders(d: Path) -> list[Path]:
    """The sessions' folders, oldest first (the state dir's own session began last here)."""
    return sorted((d / "archive").iterdir()) + [d]


def lines(path: Path) -> list[dict]:
    return [json.loads(x, parse_float=Decimal) for x in path.read_text().splitlines()] if path.exists() else []


def files_money(folder: Path) -> tuple[Decimal, Decimal]:
    """A session's PnL after fees and its fees, from its trades.jsonl and corrections.jsonl."""
    rows = lines(folder / "trades.jsonl")
    pnl = sum((r["pnl"] for r in rows), Decimal(0)) + sum((c["pnl_change"] for c in lines(folder / "corrections.jsonl")),
                                                         Decimal(0))
    return pnl, sum((r["fee"] for r in rows), Decimal(0))


def figure(page: str, name: str) -> str:
    m = re.search(rf'<div class="figure" id="{name}">.*?</div>', page, re.S)
    assert m, f"no header figure {name}"
    return m.group(0)


def exact(page: str, name: str) -> tuple[str, Decimal]:
    m = re.search(r'<span class="value[^"]*" data-exact="([^"]+)"[^>]*>([^<]+)<', figure(page, name))
    assert m, f"header figure {name} carries no exact amount"
    return m.group(2), Decimal(m.group(1))


def test_the_header_money_is_the_sessions_own_files_to_the_cent(state, written):
    _, page, _ = written
    money = [files_money(f) for f in folders(state)]
    pnl, fees = sum((p for p, _ in money), Decimal(0)), sum((f for _, f in money), Decimal(0))
    assert pnl and fees
    assert exact(page, "pnl") == (usd(pnl, sign=True), pnl)
    assert exact(page, "fees") == (usd(fees), fees)
    assert exact(page, "gross") == (usd(pnl + fees, sign=True), pnl + fees)


def test_the_header_hit_rate_break_even_and_drawdown_are_the_files(state, written):
    _, page, _ = written
    rows = [r for f in folders(state) for r in lines(f / "trades.jsonl")]
    traded = [r for r in rows if r["outcome"] in ("WIN", "LOSS")]
    wins = sum(r["outcome"] == "WIN" for r in traded)
    price = (sum((r["odds"] for r in traded), Decimal(0)) / len(traded)).quantize(Decimal("0.0001"))
    rate = (sum((r["fee"] for r in traded), Decimal(0)) / sum((r["shares"] * r["odds"] * (1 - r["odds"])
                                                               for r in traded), Decimal(0))).quantize(Decimal("0.0001"))
    hit = figure(page, "hit")
    assert pct(wins / len(traded)) in hit and f"{wins} of {len(traded)} trades" in hit
    assert f"break-even {pct(breakeven_win_rate(price, rate))}" in hit
    equity, total = [rows[0]["capital_after"] - rows[0]["pnl"]], Decimal(0)
    for f in folders(state):
        session = lines(f / "trades.jsonl")
        start = session[0]["capital_after"] - session[0]["pnl"]
        equity += [equity[0] + total + r["capital_after"] - start for r in session]
        total += files_money(f)[0]
    assert f">{pct(max_drawdown(equity))}<" in figure(page, "drawdown")
    assert "HALTED" in figure(page, "state") and "below_min_order" in figure(page, "state")
    assert "3</span>" in figure(page, "sessions") and "1 halted" in figure(page, "sessions")


def test_every_session_is_a_row_with_its_own_money(state, written):
    _, page, _ = written
    body = re.search(r'<table id="history">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ids = [re.search(r"<td>([^<]+)</td>", r).group(1) for r in rows]
    assert ids == [lines(f / "journal.jsonl")[0]["session"] for f in folders(state)]
    for row, folder in zip(rows, folders(state)):
        pnl, fees = files_money(folder)
        assert [Decimal(x) for x in re.findall(r'data-exact="([^"]+)"', row)] == [pnl, fees, pnl + fees]
    head = re.search(r'<table id="history"><thead>(.*?)</thead>', page, re.S).group(1)
    assert re.findall(r"<th[^>]*>([^<]+)</th>", head) == list(history_page.HEAD)


def test_the_page_is_self_contained(written):
    _, page, _ = written
    links = re.findall(r'(?:src|href|srcset)\s*=\s*"([^"]*)"', page)
    assert links and all(u.startswith("data:") for u in links), [u[:40] for u in links if not u.startswith("data:")]
    assert not re.search(r"https?://", page)


def test_the_plot_is_written_and_its_title_says_span_and_sessions(state, written):
    _, _, out = written
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found, _ = history.scan(state)
    title = history_page.title(found, history_page.chains(found), phone=False)
    assert "3 session(s), 2024-03-13 14:00-18:30 UTC" in title
    assert title.count(r"\$") == 3  # dollars escaped for matplotlib


def test_json_and_the_terminal_carry_the_pnl_before_fees(state, written):
    data, _, _ = written
    for r in data["sessions"]:
        assert Decimal(r["pnl_gross"]) == Decimal(r["pnl"]) + Decimal(r["fees"])
    t = data["totals"]
    assert Decimal(t["pnl_gross"]) == sum((Decimal(r["pnl_gross"]) for r in data["sessions"]), Decimal(0))
    assert t["by_mode"]["sim"]["pnl_gross"] == t["pnl_gross"]
    code, text, _ = run("history", "--state-dir", state)
    assert code == 0 and " gross " in text.splitlines()[0]
    assert f"({usd(Decimal(t['pnl_gross']), sign=True)} before)" in text


def test_with_several_modes_the_header_is_the_most_real_modes_alone(state):
    found, problems = history.scan(state)
    found[1] = dataclasses.replace(found[1], session=dataclasses.replace(found[1].session, mode="paper"))
    data = history.summary(found, problems)
    page = history_page.page(found, data, "state")
    paper = Decimal(data["sessions"][1]["pnl"])
    assert exact(page, "pnl") == (usd(paper, sign=True), paper) and "paper PnL after fees" in figure(page, "pnl")
    assert "counts the 1 paper session(s) only" in page and '<table id="modes">' in page
    assert len(re.findall(r"<tr>", re.search(r'<table id="modes">.*?</table>', page, re.S).group(0))) == 3
    assert Decimal(data["totals"]["by_mode"]["sim"]["pnl"]) == Decimal(data["totals"]["pnl"]) - paper


@pytest.mark.parametrize("flag", ["--html", "--plot"])
def test_a_bad_output_path_names_its_flag(state, tmp_path, flag):
    (tmp_path / "afile").write_text("")
    for bad in (tmp_path, tmp_path / "afile" / "x"):
        code, _, err = run("history", "--state-dir", state, flag, bad)
        assert code == 2 and flag in err and "Traceback" not in err, err


def test_an_empty_state_dir_makes_a_page(tmp_path):
    code, _, err = run("history", "--state-dir", tmp_path, "--html", tmp_path / "h.html")
    assert code == 0, err
    assert "No session has begun" in (tmp_path / "h.html").read_text()


@pytest.fixture(scope="module")
def measured(written, tmp_path_factory):
    browser = launch(tmp_path_factory)
    shots = os.environ.get("FSM_BOT_SCREENSHOTS")
    url = (written[2] / "history.html").resolve().as_uri()
    try:
        return {name: browser.open(url, metrics, Path(shots) / f"history-{name}.png" if shots else None, MEASURE)
                for name, metrics in (("phone", PHONE), ("desktop", DESKTOP))} | {"url": url}
    finally:
        browser.close()


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_the_page_fits_the_width_shows_the_totals_first_and_reads(measured, device):
    m, requested = measured[device]
    assert m["viewportWidth"] == (PHONE if device == "phone" else DESKTOP)["width"], m
    assert m["scrollWidth"] <= m["viewportWidth"] and m["chartWidth"] <= m["viewportWidth"], m
    assert m["values"] == 7 and m["valuesBottom"] < m["viewportHeight"], m
    assert m["tableScrolls"] == "auto" and m["rows"] == 3, m
    assert m["bodyFontPx"] >= 14 and m["cellFontPx"] >= 12, m
    assert [u for u in requested if u != measured["url"] and not u.startswith("data:")] == []
