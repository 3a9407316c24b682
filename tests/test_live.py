"""--live end to end: the real command signs V2 orders with Polymarket's SDK and posts them to a loopback
CLOB that recovers the signer from each order's EIP-712 payload; Binance, CoinGecko, Gamma, the relayer
and the Data API are loopback servers too, on a test clock 300x faster than wall time. Then the same
world with every fault it can throw, and a process killed with an order in flight."""

import json
import re

import pytest
from eth_account import Account

from fsm_bot.adapters.polymarket import orders
from tests.servers.world import read_jsonl, world
from tests.test_paper import assert_complete

KEY = "0x" + "3b" * 32
RELAYER_KEY = "relayer-secret-9f8e7d6c5b4a"
EOA = Account.from_key(KEY).address
CREDENTIALS = {"FSM_BOT_PRIVATE_KEY": KEY, "FSM_BOT_RELAYER_API_KEY": RELAYER_KEY,
               "FSM_BOT_RELAYER_API_KEY_ADDRESS": EOA}


@pytest.fixture
def loopback():
    yield from live_world()


def live_world():
    """The whole world on loopback with the CLOB's trading side, and the bot's credentials for it."""
    w = world(live=True)
    w.extra_env |= CREDENTIALS
    yield w
    w.stop()


def traded_rows(state):
    return [r for r in read_jsonl(state / "trades.jsonl") if r["outcome"] != "SKIPPED"]


def assert_one_order_per_traded_interval(loopback, state):
    """The venue's side: every traded interval has exactly one order, and no order is anyone else's."""
    hashes = [o["hash"] for o in loopback.trading.orders]
    assert len(hashes) == len(set(hashes)), "a second order for one interval"
    assert sorted(hashes) == sorted(r["order_id"] for r in traded_rows(state))


def assert_posted_as_journaled(w, journal):
    """Each order's bytes at the CLOB are the body journaled in its interval's ``sized`` record."""
    sized = {r["data"]["order"]["key"]: r for r in journal if r["trigger"] == "sized"}
    for posted in w.trading.orders:
        record = sized[posted["hash"]]
        assert posted["body"] == orders.body_bytes(record["data"]["order"]["payload"])
        assert posted["slug"] == record["data"]["order"]["slug"]


def test_a_live_session_signs_posts_settles_and_redeems(loopback, tmp_path):
    state = tmp_path / "state"
    code, out, err = loopback.run(*loopback.start_args("live", state, "--confirm-live"), cwd=tmp_path)
    assert code in (0, 3), err
    rows = assert_complete(state, code=code)
    assert len(traded_rows(state)) >= 12, [r["reason"] for r in rows]
    assert_one_order_per_traded_interval(loopback, state)
    journal = read_jsonl(state / "journal.jsonl")
    sized = [r["data"]["order"] for r in journal if r["trigger"] == "sized"]
    assert all(o["payload"]["order"]["signature"].startswith("0x") and o["key"].startswith("0x") for o in sized)
    # the journaled intent precedes the post: every accepted hash was journaled first, with the signed body
    assert {o["hash"] for o in loopback.trading.orders} <= {o["key"] for o in sized}
    assert_posted_as_journaled(loopback, journal)
    # the orders were signed before their interval began, for that interval only
    log = [json.loads(line) for line in (state / "bot.log").read_text().splitlines()]
    ahead = [e["interval"] for e in log if "the order signed in advance" in e["message"]]
    assert len(ahead) >= len(traded_rows(state)) - 2 and len(set(ahead)) == len(ahead)
    won = [r for r in rows if r["outcome"] == "WIN"]
    assert len(loopback.trading.redeems) == len(won) > 0
    assert journal[0]["data"]["mode"] == "live"


def test_live_refuses_without_confirmation_or_credentials(loopback, tmp_path):
    code, out, err = loopback.run(*loopback.start_args("live", tmp_path / "a"), cwd=tmp_path, timeout=60)
    assert code == 2 and "--confirm-live" in err
    del loopback.extra_env["FSM_BOT_PRIVATE_KEY"]
    code, out, err = loopback.run(*loopback.start_args("live", tmp_path / "b", "--confirm-live"), cwd=tmp_path,
                                  timeout=60)
    assert code == 2 and "FSM_BOT_PRIVATE_KEY" in err
    assert loopback.trading.orders == []


def test_a_live_session_rides_out_every_fault(loopback, tmp_path):
    """The stream drops; Gamma answers 5xx in a burst; the market channel goes quiet and the CLOB rate-limits the
    REST book with Retry-After; Binance's streams go quiet and its REST depth hangs; a submit's answer is lost after the CLOB accepted it. The session
    completes, every skip has a reason, and the CLOB holds exactly one order per traded interval."""
    w = loopback
    w.extra_env["FSM_BOT_HTTP_TIMEOUT_SECS"] = "0.25"
    w.at(3, 30, lambda: w.binance.drop_ws(down_secs=40))
    w.at(5, -3, lambda: w.polymarket.gamma.fault("GET", r"^/markets$", "status", status=503, count=2))
    w.at(7, -10, lambda: (w.polymarket.channel.silence(20),  # the channel's books go stale: REST is asked
                          w.polymarket.clob.fault("GET", r"^/book$", "status", status=429, count=1,
                                                  headers={"Retry-After": "2"})))
    w.at(9, -10, lambda: (w.binance.silence(20),  # the streams go quiet: depth (and the closing candle) from REST
                          w.binance.fault("GET", r"^/api/v3/depth$", "hang", secs=0.6, count=1)))
    w.at(11, -3, lambda: w.polymarket.clob.fault("POST", r"^/order$", "after", count=1))
    # Gamma down from before interval 13 is made ready (its market's facts are read a minute ahead) through its start
    w.at(13, -65, lambda: w.polymarket.gamma.fault("GET", r"^/markets$", "status", status=502, count=12))
    state = tmp_path / "state"
    code, out, err = w.run(*w.start_args("live", state, "--confirm-live", "--capital", "1000"), cwd=tmp_path)
    assert code == 0, err
    rows = assert_complete(state, capital=1000)
    assert_one_order_per_traded_interval(w, state)
    journal = read_jsonl(state / "journal.jsonl")
    # the lost answer became an unknown submit, resolved by looking the order up, never by a second order
    unknown = [r for r in journal if r["trigger"] == "submit_unknown"]
    assert [r["interval"] for r in unknown] == [11]
    assert rows[10]["outcome"] in ("WIN", "LOSS") and rows[10]["order_id"] == unknown[0]["data"]["key"]
    # the long Gamma outage (12 x 502 > 3 attempts) skipped its interval with the reason, at ERROR in the log
    assert rows[12]["outcome"] == "SKIPPED" and rows[12]["reason"] == "server_error", rows[12]
    assert w.binance.ws_connections >= 2  # the stream reconnected after the drop
    assert all(f.count == 0 for f in w.polymarket.gamma.faults + w.polymarket.clob.faults + w.binance.rest.faults), [
        (f.path, f.count) for f in w.polymarket.gamma.faults + w.polymarket.clob.faults + w.binance.rest.faults]
    log = [json.loads(line) for line in (state / "bot.log").read_text().splitlines()]
    assert any(e["level"] == "ERROR" and e["interval"] == 13 for e in log)


def test_a_kill_with_an_order_in_flight_resumes_with_no_order_twice_and_none_lost(loopback, tmp_path):
    """SIGKILL after the CLOB accepted the session's first order and before its answer was journaled; resume."""
    state = tmp_path / "state"
    loopback.extra_env["FSM_BOT_FAILPOINT"] = "venue.accepted:1"
    code, out, err = loopback.run(*loopback.start_args("live", state, "--confirm-live"), cwd=tmp_path)
    assert code == -9, err
    journal = read_jsonl(state / "journal.jsonl")
    assert journal[-1]["trigger"] == "sized" and len(loopback.trading.orders) == 1
    in_flight, interval = journal[-1]["data"]["order"]["key"], journal[-1]["interval"]
    del loopback.extra_env["FSM_BOT_FAILPOINT"]
    code, out, err = loopback.run("resume", "--state-dir", str(state), "--confirm-live", cwd=tmp_path)
    assert code in (0, 3), err
    assert_complete(state, code=code)
    assert_one_order_per_traded_interval(loopback, state)
    assert read_jsonl(state / "trades.jsonl")[interval - 1]["order_id"] == in_flight  # adopted, not re-sent
    assert_posted_as_journaled(loopback, read_jsonl(state / "journal.jsonl"))  # signed ahead or not, as journaled
    assert "resuming session" in out and "at SUBMIT" in out


def test_no_secret_reaches_a_file_a_log_or_an_error(loopback, tmp_path):
    state = tmp_path / "state"
    loopback.at(2, -3, lambda: loopback.polymarket.clob.fault("POST", r"^/order$", "status", status=401, count=1))
    code, out, err = loopback.run(*loopback.start_args("live", state, "--confirm-live"), cwd=tmp_path)
    assert code == 3, err  # the 401 halts: bad credentials are fatal
    secrets = [KEY, KEY.removeprefix("0x"), RELAYER_KEY]
    derived = [a for a in loopback.trading.accounts.values()]
    secrets += [a.secret for a in derived] + [a.passphrase for a in derived]
    texts = {"stdout": out, "stderr": err} | {p.name: p.read_text(errors="replace") for p in state.rglob("*")
                                               if p.is_file()}
    leaks = {name: s[:6] for name, text in texts.items() for s in secrets if s and s in text}
    assert leaks == {}
    assert re.search(r"HALTED|halted", out + err)


def test_a_dotenv_readable_by_others_is_warned_of_and_its_key_is_used(loopback, tmp_path):
    """Credentials may come from ./.env alone; a .env that group or others can read gets a warning."""
    for name in CREDENTIALS:
        del loopback.extra_env[name]
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in CREDENTIALS.items()))
    dotenv.chmod(0o644)
    state = tmp_path / "state"
    code, out, err = loopback.run(*loopback.start_args("live", state, "--confirm-live", "--intervals", "2"),
                                  cwd=tmp_path)
    assert code in (0, 3), err
    assert "readable by group or others (mode 644)" in err and "chmod 600" in err
    assert KEY not in err + out
    assert len(read_jsonl(state / "trades.jsonl")) == 2 and loopback.trading.orders  # the key in .env signed them
