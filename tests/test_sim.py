"""``fsm-bot start --sim`` end to end: the README's command, its files, its determinism, its errors."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from fsm_bot import journal
from tests.conftest import STRICT_DATA


def trades(d: Path) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in (d / "trades.jsonl").read_text().splitlines()]


def ledger(d: Path) -> list[dict]:
    return [json.loads(line) for line in (d / "venue-orders.jsonl").read_text().splitlines()]


def test_the_readme_command_trades_18_intervals(fsm, tmp_path):
    d = tmp_path / "state"
    result = fsm("start", "--sim", "--state-dir", d)
    assert result.code == 0, result.err
    rows = trades(d)
    assert [r["interval_number"] for r in rows] == list(range(1, 19))
    for r in rows:
        assert r["outcome"] in ("WIN", "LOSS", "SKIPPED") and r["reason"]
        assert set(r) == {"timestamp", "interval_number", "prediction", "confidence", "odds", "position_size", "shares",
                          "fee", "outcome", "pnl", "capital_after", "win_streak", "reason", "order_id"}
    assert rows[-1]["capital_after"] == Decimal(100) + sum(r["pnl"] for r in rows)  # exactly, not just to the cent
    traded = [r for r in rows if r["outcome"] != "SKIPPED"]
    orders = ledger(d)
    assert sorted(o["key"] for o in orders) == sorted(r["order_id"] for r in traded)
    assert len({o["slug"] for o in orders}) == len(orders)  # one order per traded interval
    equity = (d / "equity.csv").read_text().splitlines()
    assert equity[0] == "interval_number,timestamp,capital" and len(equity) == 20
    assert Decimal(equity[-1].split(",")[2]) == rows[-1]["capital_after"]
    assert len((d / "metrics.jsonl").read_text().splitlines()) == 18
    assert all(json.loads(line)["level"] for line in (d / "bot.log").read_text().splitlines())
    assert "session summary" in result.out or "finished" in result.out


def test_the_same_seed_writes_the_same_bytes(fsm, tmp_path):
    for name in ("a", "b"):
        assert fsm("start", "--sim", "--state-dir", tmp_path / name, "--seed", "7").code == 0
    for name in ("journal.jsonl", "trades.jsonl", "equity.csv", "venue-orders.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_draws_other_books(fsm, tmp_path):
    fsm("start", "--sim", "--state-dir", tmp_path / "a", "--seed", "1")
    fsm("start", "--sim", "--state-dir", tmp_path / "b", "--seed", "2")
    assert [r["odds"] for r in trades(tmp_path / "a")] != [r["odds"] for r in trades(tmp_path / "b")]


def test_the_readme_command_runs_again_in_the_same_folder(fsm, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d).code == 0
    first = (d / "trades.jsonl").read_bytes()
    again = fsm("start", "--sim", "--state-dir", d)
    assert again.code == 0 and "archived finished session" in again.out
    archived = list((d / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "trades.jsonl").read_bytes() == first
    assert (d / "trades.jsonl").read_bytes() == first
    assert fsm("start", "--sim", "--state-dir", d).code == 0 and len(list((d / "archive").iterdir())) == 2


def test_strict_trades_only_where_the_seeds_rule_fires(fsm, tmp_path):
    d = tmp_path / "state"
    result = fsm("start", "--sim", "--state-dir", d, "--policy", "strict", "--data", STRICT_DATA,
                 "--start", "2023-08-13T00:00:00Z", "--intervals", "48")
    assert result.code == 0, result.err
    fires = set()
    for rec in journal.read(d / "journal.jsonl").records:
        if rec["trigger"] == "fetched":
            s = rec["data"]["snapshot"]
            up = s["rsi"] < 30 and s["macd"] > s["macd_signal"] and s["imbalance"] > 1.1
            down = s["rsi"] > 70 and s["macd"] < s["macd_signal"] and s["imbalance"] < 0.9
            if up or down:
                fires.add(rec["interval"])
    rows = trades(d)
    traded = {r["interval_number"] for r in rows if r["outcome"] != "SKIPPED"}
    risk_skipped = {r["interval_number"] for r in rows if r["outcome"] == "SKIPPED" and r["reason"] != "no_signal"}
    assert len(fires) >= 5 and traded == fires - risk_skipped and traded
    assert all(r["confidence"] == 0.75 for r in rows if r["outcome"] != "SKIPPED")
    assert all(r["reason"] == "no_signal" for r in rows if r["interval_number"] not in fires)


def test_fifteen_minute_markets(fsm, tmp_path):
    d = tmp_path / "state"
    assert fsm("start", "--sim", "--state-dir", d, "--interval-minutes", "15", "--intervals", "6").code == 0
    assert all(o["slug"].startswith("btc-updown-15m-") for o in ledger(d))
    starts = [r["timestamp"] for r in trades(d)]
    assert len(starts) == 6 and all(int(t[14:16]) % 15 == 0 for t in starts)


def test_a_small_account_halts_and_still_writes_every_interval(fsm, tmp_path):
    d = tmp_path / "state"
    result = fsm("start", "--sim", "--state-dir", d, "--capital", "10")
    assert result.code == 3 and "HALTED" in result.out
    rows = trades(d)
    assert len(rows) == 18 and rows[-1]["reason"].startswith("halted:")
    assert rows[-1]["capital_after"] >= Decimal("7")
    assert len(ledger(d)) == sum(r["outcome"] != "SKIPPED" for r in rows)
    assert any(json.loads(line)["level"] == "CRITICAL" for line in (d / "bot.log").read_text().splitlines())


@pytest.mark.parametrize("argv, names", [
    (["--capital", "-5"], "--capital"),
    (["--capital", "abc"], "--capital"),
    (["--intervals", "0"], "--intervals"),
    (["--interval-minutes", "10"], "--interval-minutes"),
    (["--start", "2024-03-13T14:01:00Z"], "--start"),
    (["--start", "2020-01-01T00:00:00Z"], "--start"),
    (["--start", "yesterday"], "--start"),
    (["--data", "/nonexistent.parquet"], "--data"),
    (["--seed", "-1"], "--seed"),
])
def test_a_bad_flag_stops_at_start_naming_it(fsm, tmp_path, argv, names):
    result = fsm("start", "--sim", "--state-dir", tmp_path / "s", *argv)
    assert result.code == 2 and names in result.err
    assert not (tmp_path / "s" / "journal.jsonl").exists()


def test_a_bad_config_file_or_env_names_the_field(fsm, tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nmax_entry_pryce = 0.5\n")
    result = fsm("start", "--sim", "--state-dir", tmp_path / "s", "--config", bad)
    assert result.code == 2 and "max_entry_pryce" in result.err
    bad.write_text("[risk]\nmax_entry_price = 1.5\n")
    result = fsm("start", "--sim", "--state-dir", tmp_path / "s", "--config", bad)
    assert result.code == 2 and "max_entry_price" in result.err and str(bad) in result.err
    monkeypatch.setenv("FSM_BOT_VOLATILITY_MAX", "lots")
    result = fsm("start", "--sim", "--state-dir", tmp_path / "s")
    assert result.code == 2 and "FSM_BOT_VOLATILITY_MAX" in result.err


def test_a_config_file_changes_the_session(fsm, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sizing]\nbase_usd = 2\n[session]\nintervals = 3\n")
    assert fsm("start", "--sim", "--state-dir", tmp_path / "s", "--config", cfg).code == 0
    rows = trades(tmp_path / "s")
    assert len(rows) == 3 and rows[0]["position_size"] == Decimal(2)


def test_the_installed_command_runs(tmp_path):
    exe = Path(sys.executable).with_name("fsm-bot")
    done = subprocess.run([str(exe), "start", "--sim", "--state-dir", str(tmp_path / "s")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "[18/18]" in done.stdout and len(trades(tmp_path / "s")) == 18
    assert subprocess.run([str(exe), "--help"], capture_output=True, text=True).returncode == 0
