"""--paper end to end: the real command, the real Binance and Polymarket adapters, loopback servers that
speak the real payloads, and a test clock 300x faster than wall time."""

from decimal import Decimal

import pytest

from tests.loopback import read_jsonl, world


@pytest.fixture
def loopback():
    w = world()
    yield w
    w.stop()


def assert_complete(state, intervals=18):
    """trades.jsonl covers the session, every skip has a reason, and the capital is 100 + the PnL."""
    rows = read_jsonl(state / "trades.jsonl")
    assert [r["interval_number"] for r in rows] == list(range(1, intervals + 1))
    assert all(r["outcome"] in ("WIN", "LOSS", "SKIPPED") for r in rows)
    assert all(r["reason"] for r in rows if r["outcome"] == "SKIPPED")
    corrections = read_jsonl(state / "corrections.jsonl")
    total = Decimal(100) + sum(Decimal(r["pnl"]) for r in rows) + sum(Decimal(c["pnl_change"]) for c in corrections)
    assert Decimal(rows[-1]["capital_after"]) + sum(Decimal(c["pnl_change"]) for c in corrections) == total
    return rows


def test_a_paper_session_trades_18_intervals_against_the_real_book(loopback, tmp_path):
    state = tmp_path / "state"
    code, out, err = loopback.run(*loopback.start_args("paper", state), cwd=tmp_path)
    assert code == 0, err
    rows = assert_complete(state)
    traded = [r for r in rows if r["outcome"] != "SKIPPED"]
    assert len(traded) >= 12, [r["reason"] for r in rows]  # tiered decides every interval unless a rule skips
    ledger = read_jsonl(state / "venue-orders.jsonl")
    assert sorted(o["key"] for o in ledger) == sorted(r["order_id"] for r in traded)
    begin = read_jsonl(state / "journal.jsonl")[0]
    assert begin["data"]["mode"] == "paper" and begin["data"]["source"]["clock"] == {"speed": 300.0}
    # the decisions used the real Binance depth, and the prices the fake CLOB served
    fetched = [r["data"]["snapshot"] for r in read_jsonl(state / "journal.jsonl") if r["trigger"] == "fetched"]
    assert fetched and all(s["imbalance_source"].startswith("binance_depth") for s in fetched)
    for row, order in zip(traded, sorted(ledger, key=lambda o: o["slug"])):
        market = loopback.polymarket.market(order["slug"])
        assert Decimal(row["odds"]) >= market.asks[order["token_id"]][0][0]
    # provisional outcomes came from Binance candles; the official ones from Gamma agree with them here
    assert read_jsonl(state / "corrections.jsonl") == []


def test_paper_needs_no_keys_and_refuses_a_test_clock_on_real_urls(loopback, tmp_path):
    loopback.extra_env["FSM_BOT_GAMMA_URL"] = "https://gamma-api.polymarket.com"
    code, out, err = loopback.run(*loopback.start_args("paper", tmp_path / "s"), cwd=tmp_path, timeout=60)
    assert code == 2 and "gamma_url = https://gamma-api.polymarket.com is not" in err
    assert not (tmp_path / "s" / "journal.jsonl").exists()
