"""``fsm_bot.doctor`` against the loopback world: every check ok there, then each failure turning its own line
to warn or fail with what to do, and the exit code with it. The doctor opens the venue as ``start`` would
(the SDK signs in at the fake CLOB); the world's clock runs at wall speed so that skews are measured exactly."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from fsm_bot import config, doctor
from fsm_bot.config import env_name
from fsm_bot.statedir import Lock
from tests.servers.world import START_S, TEST_SETTINGS, world
from tests.test_live import CREDENTIALS, EOA, KEY, RELAYER_KEY

LIVE_ONLY = {"credentials", "balance", "relayer", "endpoint:relayer_url", "endpoint:data_api_url", "endpoint:rpc_url"}
PAPER = ["python", "packages", "graphviz", "config", "dotenv", "state_dir", "endpoint:binance_rest_url",
         "endpoint:binance_ws_url", "endpoint:coingecko_url", "endpoint:gamma_url", "endpoint:clob_url",
         "endpoint:clob_ws_url", "clock:binance", "clock:clob", "geoblock", "next_market"]


@pytest.fixture
def loopback():
    w = world(speed=1.0, live=True)
    w.time.release()  # the world's clock is held until released: the doctor's clock is this one
    yield w
    w.stop()


def bot_env(w, **changes: str | None) -> dict[str, str]:
    """The bot's environment for ``w`` (what ``World.env()`` sets, without the process's): the URLs, the test
    settings and the credentials; a change to None removes the variable."""
    env = {env_name(k): v for k, v in {**TEST_SETTINGS, **w.urls()}.items()} | CREDENTIALS | changes
    return {k: v for k, v in env.items() if v is not None}


def diagnose(w, tmp_path: Path, mode: str = "live", env: dict[str, str] | None = None, now_ms=None,
             state: Path | None = None, dotenv_mode: int = 0o600) -> dict[str, doctor.Check]:
    env = bot_env(w) if env is None else env
    dotenv = tmp_path / ".env"
    dotenv.write_text("# settings and keys come from the test's environment\n")
    dotenv.chmod(dotenv_mode)
    if state is None:
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
    checks = doctor.run(mode, config.load(None, env, {}), env, state, dotenv=dotenv,
                        geoblock_url=w.polymarket.geoblock_url, now_ms=now_ms or w.time.now_ms)
    shown = doctor.render(checks) + json.dumps(doctor.as_json(checks))
    assert KEY.removeprefix("0x") not in shown and RELAYER_KEY not in shown  # never a secret
    assert len({c.name for c in checks}) == len(checks)
    return {c.name: c for c in checks}


def statuses(found: dict[str, doctor.Check]) -> dict[str, str]:
    return {name: c.status for name, c in found.items() if name != "graphviz"}  # dot may be absent: a warning


def all_ok_but(found: dict[str, doctor.Check], *names: str) -> None:
    assert {n: s for n, s in statuses(found).items() if n not in names and s != "ok"} == {}
    assert found["graphviz"].status in ("ok", "warn")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_everything_is_ok_against_the_loopback_world(loopback, tmp_path):
    found = diagnose(loopback, tmp_path)
    all_ok_but(found)
    assert set(found) == set(PAPER) | LIVE_ONLY
    checks = list(found.values())
    assert doctor.exit_code(checks) == 0
    assert f"btc-updown-5m-{START_S}" in found["next_market"].detail
    assert "1000 pUSD" in found["balance"].detail and "unlimited" in found["balance"].detail
    assert "mode 600" in found["dotenv"].detail and "not locked" in found["state_dir"].detail
    assert all(" ms" in found[n].detail for n in found if n.startswith(("endpoint:", "clock:")))
    lines = doctor.render(checks).splitlines()
    oks = sum(c.status == "ok" for c in checks)
    assert lines[0].split()[:2] == ["ok", "python"] and lines[-1] == f"{oks} ok, {len(checks) - oks} warn, 0 fail"
    assert doctor.as_json(checks)[0] == {"name": "python", "status": "ok", "detail": found["python"].detail, "fix": ""}


def test_paper_needs_no_credentials_and_shows_no_live_only_check(loopback, tmp_path):
    env = bot_env(loopback, **{name: None for name in CREDENTIALS})
    found = diagnose(loopback, tmp_path, mode="paper", env=env)
    assert list(found) == PAPER
    all_ok_but(found)
    assert doctor.exit_code(list(found.values())) == 0


@pytest.mark.parametrize("setting, scheme", [("coingecko_url", "http"), ("data_api_url", "http"),
                                             ("binance_ws_url", "ws")])
def test_an_endpoint_down_fails_its_line_and_names_the_setting(loopback, tmp_path, setting, scheme):
    url = f"{scheme}://127.0.0.1:{closed_port()}" + ("/ws" if scheme == "ws" else "")
    found = diagnose(loopback, tmp_path, env=bot_env(loopback, **{env_name(setting): url}))
    line = found[f"endpoint:{setting}"]
    assert line.status == "fail" and "refused" in line.detail.lower()
    assert env_name(setting) in line.fix and url in line.fix
    all_ok_but(found, f"endpoint:{setting}")
    assert doctor.exit_code(list(found.values())) == 6


def test_a_clock_5_s_ahead_warns_and_60_s_ahead_fails(loopback, tmp_path):
    found = diagnose(loopback, tmp_path, now_ms=lambda: loopback.time.now_ms() + 5_000)
    for name in ("clock:binance", "clock:clob"):
        assert found[name].status == "warn", found[name]
        assert "ahead" in found[name].detail and "sync the clock: chrony/ntpd" in found[name].fix
    assert "5.0 s ahead" in found["clock:binance"].detail
    all_ok_but(found, "clock:binance", "clock:clob")
    assert doctor.exit_code(list(found.values())) == 0  # a warning is no failure

    found = diagnose(loopback, tmp_path, now_ms=lambda: loopback.time.now_ms() + 60_000)
    assert found["clock:binance"].status == found["clock:clob"].status == "fail"
    assert "60.0 s ahead" in found["clock:binance"].detail and "chrony/ntpd" in found["clock:clob"].fix
    assert doctor.exit_code(list(found.values())) == 6


def test_no_private_key_fails_the_credentials_naming_the_variable(loopback, tmp_path):
    found = diagnose(loopback, tmp_path, env=bot_env(loopback, FSM_BOT_PRIVATE_KEY=""))
    assert found["credentials"].status == "fail" and "FSM_BOT_PRIVATE_KEY" in found["credentials"].detail
    assert found["balance"].status == "fail" and "not checked" in found["balance"].detail
    all_ok_but(found, "credentials", "balance")  # the public side is still checked: the next market is there
    assert doctor.exit_code(list(found.values())) == 6


def test_a_bad_private_key_fails_without_showing_it(loopback, tmp_path):
    found = diagnose(loopback, tmp_path, env=bot_env(loopback, FSM_BOT_PRIVATE_KEY=KEY[:-2]))
    assert found["credentials"].status == "fail" and "FSM_BOT_PRIVATE_KEY" in found["credentials"].detail
    assert KEY[2:-2] not in doctor.render(list(found.values()))


def test_a_zero_balance_fails_saying_how_much_is_there(loopback, tmp_path):
    loopback.trading.add_account(EOA).balance_units = 0
    found = diagnose(loopback, tmp_path)
    assert found["balance"].status == "fail" and "holds 0 pUSD" in found["balance"].detail
    assert "deposit pUSD" in found["balance"].fix
    all_ok_but(found, "balance")
    assert doctor.exit_code(list(found.values())) == 6


def test_no_allowance_fails_naming_the_exchange(loopback, tmp_path):
    loopback.trading.add_account(EOA, allowance=False)
    found = diagnose(loopback, tmp_path)
    assert found["balance"].status == "fail" and "allowance for the exchange 0x" in found["balance"].detail
    assert doctor.exit_code(list(found.values())) == 6


def test_no_relayer_key_warns_that_winnings_are_not_redeemed(loopback, tmp_path):
    env = bot_env(loopback, FSM_BOT_RELAYER_API_KEY=None, FSM_BOT_RELAYER_API_KEY_ADDRESS=None)
    found = diagnose(loopback, tmp_path, env=env)
    assert found["relayer"].status == "warn" and "will not be redeemed by the bot" in found["relayer"].detail
    all_ok_but(found, "relayer")
    assert doctor.exit_code(list(found.values())) == 0


def test_a_geoblocked_region_fails_live_and_warns_paper(loopback, tmp_path):
    loopback.polymarket.geoblock = {"blocked": True, "ip": "203.0.113.7", "country": "US", "region": "NY"}
    found = diagnose(loopback, tmp_path)
    assert found["geoblock"].status == "fail"
    assert found["geoblock"].detail == "Polymarket refuses orders from this region (US/NY)"
    all_ok_but(found, "geoblock")
    assert doctor.exit_code(list(found.values())) == 6
    found = diagnose(loopback, tmp_path, mode="paper", env=bot_env(loopback))
    assert found["geoblock"].status == "warn" and doctor.exit_code(list(found.values())) == 0
    loopback.polymarket.geoblock = {"error": "no idea"}
    assert diagnose(loopback, tmp_path)["geoblock"].status == "warn"


def test_a_locked_state_dir_fails_with_the_holders_pid(loopback, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    lock = Lock.acquire(state)
    try:
        found = diagnose(loopback, tmp_path, state=state)
    finally:
        lock.release()
    assert found["state_dir"].status == "fail" and f"pid {os.getpid()}" in found["state_dir"].detail
    all_ok_but(found, "state_dir")
    assert doctor.exit_code(list(found.values())) == 6
    assert diagnose(loopback, tmp_path, state=state)["state_dir"].status == "ok"  # released: free again


def test_a_state_dir_to_be_made_or_in_the_way(loopback, tmp_path):
    found = diagnose(loopback, tmp_path, mode="paper", state=tmp_path / "new" / "state")
    assert found["state_dir"].status == "ok" and "will be made" in found["state_dir"].detail
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    assert diagnose(loopback, tmp_path, mode="paper", state=tmp_path / "file")["state_dir"].status == "fail"


def test_a_group_readable_dotenv_warns(loopback, tmp_path):
    found = diagnose(loopback, tmp_path, mode="paper", dotenv_mode=0o644)
    assert found["dotenv"].status == "warn" and "chmod 600" in found["dotenv"].fix
    assert doctor.exit_code(list(found.values())) == 0


def test_the_next_market_missing_fails(loopback, tmp_path):
    loopback.polymarket.gamma.fault("GET", r"^/markets$", "status", status=404, count=100)
    found = diagnose(loopback, tmp_path, mode="paper")
    assert found["next_market"].status == "fail" and f"btc-updown-5m-{START_S}" in found["next_market"].detail
    assert found["next_market"].fix
    assert doctor.exit_code(list(found.values())) == 6


def test_a_check_that_raises_is_a_fail_and_the_rest_still_run(loopback, tmp_path, monkeypatch):
    def broken(cfg):
        raise RuntimeError("boom")
    monkeypatch.setattr(doctor.local, "config", broken)
    found = diagnose(loopback, tmp_path, mode="paper")
    assert found["config"] == doctor.Check("config", "fail", "RuntimeError: boom")
    all_ok_but(found, "config")


def test_exit_codes_render_and_modes():
    warn, fail = doctor.Check("a", "warn", "seen", "do this"), doctor.Check("b", "fail", "broken", "fix that")
    assert doctor.exit_code([]) == doctor.exit_code([warn]) == 0 and doctor.exit_code([warn, fail]) == 6
    assert doctor.render([warn, fail]).splitlines() == ["warn  a  seen", "         fix: do this", "fail  b  broken",
                                                        "         fix: fix that", "0 ok, 1 warn, 1 fail"]
    with pytest.raises(ValueError, match="--sim"):
        doctor.run("sim", config.load(None, {}, {}), {}, Path("state"))
