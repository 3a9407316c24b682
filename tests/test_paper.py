"""--paper end to end: the real command, the real Binance and Polymarket adapters, loopback servers that
speak the real payloads, and a test clock 300x faster than wall time."""

from decimal import Decimal

import pytest

from fsm_bot import journal
from fsm_bot.session import fold

from tests.servers.world import read_jsonl, world


@pytest.fixture
def loopback():
    w = world()
    yield w
    w.stop()


def assert_complete(state, intervals=18, code=0, capital=100):
    """trades.jsonl covers the session, every skip has a reason, and the capital is 100 + the PnL; a session
    that lost down to the floor (exit 3) halted, and its remaining intervals are SKIPPED ``halted:<cause>``."""
    assert code in (0, 3)
    rows = read_jsonl(state / "trades.jsonl")
    assert [r["interval_number"] for r in rows] == list(range(1, intervals + 1))
    assert all(r["outcome"] in ("WIN", "LOSS", "SKIPPED", "VOID") for r in rows)
    assert all(r["reason"] for r in rows if r["outcome"] in ("SKIPPED", "VOID"))
    halted = [r for r in rows if r["reason"].startswith("halted:")]
    assert bool(halted) == (code == 3) and all(r["outcome"] == "SKIPPED" for r in halted)
    assert rows[len(rows) - len(halted):] == halted  # once halted, nothing trades
    corrections = read_jsonl(state / "corrections.jsonl")
    final = fold(journal.read(state / "journal.jsonl").records).capital
    assert final == Decimal(capital) + sum(Decimal(r["pnl"]) for r in rows) + sum(Decimal(c["pnl_change"])
                                                                               for c in corrections)
    if not corrections:
        assert Decimal(rows[-1]["capital_after"]) == final
    return rows


def test_a_paper_session_trades_18_intervals_against_the_real_book(loopback, tmp_path):
    state = tmp_path / "state"
    code, out, err = loopback.run(*loopback.start_args("paper", state), cwd=tmp_path)
    assert code in (0, 3), err
    rows = assert_complete(state, code=code)
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


def candle_outcome(start_s, minutes=5):
    """What the Binance candles say of a window: UP if the last minute's close >= the first minute's open."""
    from tests.servers.world import CANDLES
    times = CANDLES.get_column("open_time").to_list()
    first, last = times.index(start_s * 1000), times.index((start_s + (minutes - 1) * 60) * 1000)
    return "UP" if CANDLES["close"][last] >= CANDLES["open"][first] else "DOWN"


def test_an_official_resolution_that_disagrees_is_journaled_and_corrects_capital(tmp_path):
    from tests.servers.world import START_S
    slugs = {k: f"btc-updown-5m-{START_S + 300 * (k - 1)}" for k in (2, 3)}
    flipped = {s: "DOWN" if candle_outcome(START_S + 300 * (k - 1)) == "UP" else "UP" for k, s in slugs.items()}
    w = world(overrides=flipped)
    try:
        state = tmp_path / "state"
        code, out, err = w.run(*w.start_args("paper", state, "--intervals", "4"), cwd=tmp_path, timeout=120)
    finally:
        w.stop()
    rows = assert_complete(state, intervals=4, code=code)
    corrections = read_jsonl(state / "corrections.jsonl")
    traded = {r["interval_number"] for r in rows if r["outcome"] != "SKIPPED"}
    assert traded & {2, 3}, "the flipped intervals traded, so their corrections are checked"
    assert sorted(c["interval"] for c in corrections) == sorted(traded & {2, 3})
    for c in corrections:
        assert c["old_outcome"] != c["new_outcome"]
    reconciled = [r for r in read_jsonl(state / "journal.jsonl") if r["trigger"] == "reconciled"]
    assert {res["interval"] for r in reconciled for res in r["data"]["results"] if res["status"] == "corrected"} \
        == traded & {2, 3}


def test_the_15_minute_markets_trade_with_the_same_machine(tmp_path):
    w = world(speed=900.0, minutes=15)
    try:
        state = tmp_path / "state"
        code, out, err = w.run(*w.start_args("paper", state, "--intervals", "3", "--interval-minutes", "15"),
                               cwd=tmp_path, timeout=120)
    finally:
        w.stop()
    rows = assert_complete(state, intervals=3, code=code)
    ledger = read_jsonl(state / "venue-orders.jsonl")
    assert ledger and all(o["slug"].startswith("btc-updown-15m-") for o in ledger)
    assert len(ledger) == sum(r["outcome"] != "SKIPPED" for r in rows)
