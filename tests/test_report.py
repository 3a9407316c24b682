"""``fsm-bot report``: the picture, the page and the numbers, read from the journal."""

import json
import re
from decimal import Decimal

from fsm_bot import report
from fsm_bot.backtest import wilson
from fsm_bot.money import usd


def test_report_of_a_finished_sim_session(fsm, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d).code == 0
    result = fsm("report", "--state-dir", d)
    assert result.code == 0
    out = d / "report"
    assert (out / "equity.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page and 'src="equity.png"' not in page
    assert '<meta name="viewport"' in page
    rows = [json.loads(line, parse_float=Decimal) for line in (d / "trades.jsonl").read_text().splitlines()]
    body = re.search(r'<table id="trades">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    shown = re.findall(r"<tr>(.*?)</tr>", body)
    assert len(shown) == len(rows)
    for row, tr in zip(rows, shown):  # every trade is in the page, in order, with its exact money
        assert f'<td class="num">{row["interval_number"]}</td><td><time datetime="{row["timestamp"]}">' in tr
        exact = {Decimal(c) for c in re.findall(r'data-exact="([^"]+)"', tr)}
        assert row["capital_after"] in exact
        if row["outcome"] != "SKIPPED":
            assert {row["pnl"], row["fee"], row["position_size"]} <= exact
    md = (out / "report.md").read_text()
    assert "![equity and drawdown](equity.png)" in md and md.count("\n| ") >= 18


def test_the_summary_numbers_follow_from_the_trades(fsm, tmp_path):
    d = tmp_path / "state"
    fsm("start", "--sim", "--state-dir", d)
    r = report.load(d)
    m = r.summary
    traded = [x for x in r.rows if x.outcome in ("WIN", "LOSS")]
    wins = sum(x.outcome == "WIN" for x in traded)
    assert (m["trades"], m["wins"]) == (len(traded), wins)
    assert m["hit_rate_wilson95"] == wilson(wins, len(traded))
    assert m["pnl"] == sum(x.pnl for x in r.rows) and m["fees"] == sum(x.fee for x in r.rows)
    expected = sum((float(x.odds) - (x.outcome == "WIN")) ** 2 for x in traded) / len(traded)
    assert abs(m["brier_entry_price"] - expected) < 1e-12
    caps = [p.capital for p in r.equity]
    assert caps[0] == 100 and caps[-1] == r.session.capital and len(caps) == 19
    worst = max((max(caps[: i + 1]) - c) / max(caps[: i + 1]) for i, c in enumerate(caps))
    assert m["max_drawdown"] == worst


def test_report_of_a_halted_session_names_the_halt(fsm, tmp_path):
    d = tmp_path / "state"
    fsm("start", "--sim", "--state-dir", d, "--capital", "10")
    r = report.load(d)
    assert r.summary["halted"] and r.summary["state"] == "HALTED"
    assert any(k.startswith("halted:") for k in r.summary["skip_reasons"])
    assert len(r.equity) == 19
    fsm("report", "--state-dir", d, "--out", tmp_path / "r")
    assert "HALTED" in (tmp_path / "r" / "report.md").read_text()


def test_report_without_a_session_is_refused(fsm, tmp_path):
    result = fsm("report", "--state-dir", tmp_path)
    assert result.code == 2 and "no session" in result.err


def test_the_session_summary_shows_pnl_before_and_after_fees(fsm, tmp_path):
    d = tmp_path / "state"
    ran = fsm("start", "--sim", "--state-dir", d)
    rows = [json.loads(line, parse_float=Decimal) for line in (d / "trades.jsonl").read_text().splitlines()]
    pnl, fees = sum(r["pnl"] for r in rows), sum(r["fee"] for r in rows)
    line = next(x for x in ran.out.splitlines() if x.startswith("PnL "))
    assert line.split(None, 1)[1] == f"{usd(pnl, sign=True)} after {usd(fees)} of fees ({usd(pnl + fees, sign=True)} before)"
