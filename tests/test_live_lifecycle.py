"""--live against the loopback CLOB when the venue behaves as it does since the V2 cut-over: fills that fail
on chain, fills never mined, answers lost and then refused or slow to show, trades spread over pages, the
CLOB's phantom balance lock, a stop while the venue answers. Each session completes; the history checker
(tests/history.py) holds its books to the venue's truth: one order per interval, every venue order booked,
FAILED and never-mined fills VOID, CONFIRMED ones WIN/LOSS by the market's result, capital = start + their PnL."""

import signal
import time
from decimal import Decimal

import pytest

from tests import history
from tests.servers.world import read_jsonl
from tests.test_live import live_world
from tests.test_paper import assert_complete

INTERVALS = 6


@pytest.fixture
def loopback():
    yield from live_world()


def venue_orders(w) -> list[history.VenueOrder]:
    t = w.trading
    out = []
    for o in t.orders:
        m = w.polymarket.by_token(o["token"])
        out.append(history.VenueOrder(o["hash"], o["slug"], "UP" if o["token"] == m.up_token else "DOWN",
                                      t.trade_status(o["hash"]), o["shares"], o["spent_usd"], o["fee_usd"]))
    return out


def won(w):
    def result(market_slug, side):
        m = w.polymarket.market(market_slug)
        return None if m is None or m.outcome is None else m.outcome == side
    return result


def session(w, tmp_path, *extra, intervals=INTERVALS):
    state = tmp_path / "state"
    code, out, err = w.run(*w.start_args("live", state, "--confirm-live", "--capital", "1000",
                                         "--intervals", str(intervals), *extra), cwd=tmp_path)
    assert code == 0, err
    rows = assert_complete(state, intervals=intervals, capital=1000)
    assert history.check(state, venue_orders(w), won(w), Decimal(1000)) == []
    return state, rows


def test_a_fill_that_fails_on_chain_is_void_and_one_never_mined_too(loopback, tmp_path):
    w = loopback
    w.at(2, -5, lambda: w.trading.fate("failed"))
    w.at(4, -5, lambda: w.trading.fate("ghost"))
    state, rows = session(w, tmp_path)
    assert (rows[1]["outcome"], rows[1]["reason"]) == ("VOID", "trade_failed")
    assert (rows[3]["outcome"], rows[3]["reason"]) == ("VOID", "never_mined")
    assert rows[1]["order_id"] and rows[3]["order_id"] and rows[1]["pnl"] == rows[3]["pnl"] == 0
    assert rows[2]["win_streak"] == rows[0]["win_streak"] + (rows[2]["outcome"] == "WIN") or rows[2]["outcome"] == "LOSS"
    updates = [r["data"]["trades"][0]["status"] for r in read_jsonl(state / "journal.jsonl")
               if r["trigger"] == "trade_updated"]
    assert {"MINED", "CONFIRMED", "RETRYING", "FAILED"} <= set(updates)
    held = [r for r in rows if r["outcome"] in ("WIN", "LOSS")]
    assert held and len(w.trading.redeems) == sum(r["outcome"] == "WIN" for r in held)


def test_a_lost_answer_then_a_401_on_the_lookup_is_settled_not_abandoned(loopback, tmp_path):
    w = loopback
    w.at(2, -5, lambda: (w.trading.hide_trades(20),
                         w.polymarket.clob.fault("POST", r"^/order$", "after", count=1),
                         w.polymarket.clob.fault("GET", r"^/data/trades$", "status", status=401, count=1)))
    w.at(3, -5, lambda: w.trading.hide_trades(0))
    state, rows = session(w, tmp_path)
    journal = read_jsonl(state / "journal.jsonl")
    assert [r["interval"] for r in journal if r["trigger"] == "submit_unknown"] == [2]
    assert rows[1]["outcome"] in ("WIN", "LOSS") and not any(r["trigger"] == "halt" for r in journal)


def test_a_lost_answer_then_a_429_on_the_repost_and_an_empty_first_page(loopback, tmp_path):
    w = loopback
    w.at(3, -5, lambda: (w.trading.hide_trades(30), w.trading.empty_pages(2),
                         w.polymarket.clob.fault("POST", r"^/order$", "after", count=1),
                         w.polymarket.clob.fault("POST", r"^/order$", "status", status=429, count=1,
                                                 headers={"Retry-After": "2"})))
    w.at(4, -5, lambda: w.trading.hide_trades(0))
    state, rows = session(w, tmp_path)
    assert rows[2]["outcome"] in ("WIN", "LOSS") and rows[2]["reason"] != "rejected:rate_limited"
    journal = read_jsonl(state / "journal.jsonl")
    assert sum(r["trigger"] == "submit_unknown" for r in journal) == 1  # journaled once, then asked until answered


def test_trades_spread_over_pages_are_all_seen(loopback, tmp_path):
    w = loopback
    w.trading.page_size = 1
    w.at(2, -5, lambda: (w.polymarket.clob.fault("POST", r"^/order$", "after", count=1), w.trading.empty_pages(1)))
    state, rows = session(w, tmp_path)
    assert rows[1]["outcome"] in ("WIN", "LOSS")
    assert w.polymarket.clob.count("GET", r"^/data/trades$") > INTERVALS


def test_a_balance_lock_that_a_cache_refresh_clears(loopback, tmp_path):
    w = loopback
    w.at(2, -5, lambda: w.trading.lock_balance(1))
    state, rows = session(w, tmp_path)
    assert rows[1]["reason"] == "rejected:insufficient_balance", [r["reason"] for r in rows]  # refused, then refreshed
    assert w.trading.balance_updates >= 1
    assert rows[2]["outcome"] in ("WIN", "LOSS", "VOID"), [r["reason"] for r in rows]  # the next one trades again


def test_an_order_accepted_under_another_id_stops_trading_once_it_is_settled(loopback, tmp_path):
    w = loopback
    w.at(2, -5, lambda: w.trading.wrong_order_id(1))
    state = tmp_path / "state"
    code, out, err = w.run(*w.start_args("live", state, "--confirm-live", "--capital", "1000", "--intervals", "4"),
                           cwd=tmp_path)
    assert code == 3, err
    rows = read_jsonl(state / "trades.jsonl")
    assert rows[1]["outcome"] in ("WIN", "LOSS") and rows[2]["reason"] == "halted:order_id_mismatch"
    assert len(w.trading.orders) == sum(r["outcome"] in ("WIN", "LOSS", "VOID") for r in rows) <= 2


def test_a_stop_while_the_venue_answers_keeps_the_answer(loopback, tmp_path):
    w = loopback
    w.extra_env["FSM_BOT_HTTP_TIMEOUT_SECS"] = "5"  # the answer is slow, not lost
    slowed = []  # the fault, armed before interval 2's order: the first order after it is answered 1.5 s late
    w.at(2, -5, lambda: slowed.append(w.polymarket.clob.fault("POST", r"^/order$", "slow", secs=1.5, count=1)))
    state = tmp_path / "state"
    proc = w.bot(*w.start_args("live", state, "--confirm-live", "--capital", "1000", "--intervals", str(INTERVALS)),
                 cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (slowed and slowed[0].count == 0) and time.monotonic() < deadline:  # that order is being answered
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "fsm-bot resume" in out + err
    journal = read_jsonl(state / "journal.jsonl")
    last = journal[-1]
    assert last["trigger"] == "submitted" and last["interval"] >= 2, [  # the late answer journaled, then the stop
        (r["interval"], r["trigger"]) for r in journal[-8:]]
    assert last["data"]["key"].lower() == w.trading.orders[-1]["hash"].lower()  # and it is the slowed order's
    code, out, err = w.run("resume", "--state-dir", str(state), "--confirm-live", cwd=tmp_path)
    assert code == 0, err
    assert_complete(state, intervals=INTERVALS, capital=1000)
    assert history.check(state, venue_orders(w), won(w), Decimal(1000)) == []
