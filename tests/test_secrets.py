"""Secrets are never printed or written: not on stdout or stderr, not in any file of the state dir.

A distinct secret is planted in every credentials variable (and a private key pasted into the variables that
take an address), and in every URL setting (a user and password, an ``apikey`` query, a Telegram-style
``/bot<digits>:<token>/`` path); then the commands that read them run, in-process and as the installed
``fsm-bot`` in a new process. Every URL points at a closed port on 127.0.0.1, so nothing is reached.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from fsm_bot import cli, config, logs
from fsm_bot.adapters.polymarket import credentials
from fsm_bot.errors import ConfigError
from fsm_bot.redact import safe_url, scrub

EXE = Path(sys.executable).with_name("fsm-bot")
PRIVATE_KEY = "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
PASTED_KEY = "8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"  # a second key, in the wrong place
CREDENTIALS = {
    "FSM_BOT_PRIVATE_KEY": "0x" + PRIVATE_KEY,
    "FSM_BOT_CLOB_API_KEY": "clobkey-planted-A1",
    "FSM_BOT_CLOB_API_SECRET": "clobsecret-planted-B2",
    "FSM_BOT_CLOB_API_PASSPHRASE": "clobpassphrase-planted-C3",
    "FSM_BOT_RELAYER_API_KEY": "relayerkey-planted-D4",
    "FSM_BOT_RELAYER_API_KEY_ADDRESS": "0x" + "1" * 40,
}
SECRETS = [PRIVATE_KEY, PASTED_KEY, *(v for k, v in CREDENTIALS.items() if k != "FSM_BOT_RELAYER_API_KEY_ADDRESS")]
URL_NAMES = sorted(config.Config().urls)
URL_SECRET = "urlsecret-planted-E5"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_urls(port: int) -> dict[str, str]:
    return {config.env_name(n): ("ws" if n.endswith("_ws_url") else "http") + f"://127.0.0.1:{port}"
            + ("/ws" if n.endswith("_ws_url") else "") for n in URL_NAMES}


def planted_urls(port: int) -> list[tuple[str, str]]:
    """(variable, URL with a secret in it) for every URL setting and every place a URL can hide a secret."""
    out = []
    for var, url in loopback_urls(port).items():
        scheme, rest = url.split("://")
        out += [(var, f"{scheme}://user:{URL_SECRET}@{rest}"), (var, f"{url}?apikey={URL_SECRET}"),
                (var, f"{url}/bot123456:{URL_SECRET}/")]
    return out


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working folder without .env, an environment without FSM_BOT_*, short timeouts, loopback endpoints."""
    for name in list(os.environ):
        if name.startswith("FSM_BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {**loopback_urls(closed_port()), "FSM_BOT_HTTP_TIMEOUT_SECS": "0.5", "FSM_BOT_ATTEMPTS": "1"}
    return tmp_path, env


def in_process(argv: list[str], env: dict[str, str], monkeypatch) -> tuple[int, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    for k in env:
        monkeypatch.delenv(k)
    return code, out.getvalue() + err.getvalue()


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FSM_BOT_")}, **env}


def assert_nothing_leaks(text: str, state: Path, secrets: list[str]) -> None:
    found = [s for s in secrets if s in text]
    assert not found, f"printed {found}:\n{text}"
    for path in (p for p in state.rglob("*") if p.is_file()) if state.exists() else ():
        data = path.read_bytes()
        assert not [s for s in secrets if s.encode() in data], f"{path} holds a secret"


LIVE = ["start", "--live", "--confirm-live", "--state-dir"]


def test_live_start_with_every_credential_set_shows_none(home, monkeypatch):
    tmp, env = home
    code, text = in_process(LIVE + [str(tmp / "live")], env | CREDENTIALS, monkeypatch)
    assert code == 6 and "preflight" in text, text  # the loopback CLOB is not there: a pre-flight failure
    assert_nothing_leaks(text, tmp / "live", SECRETS)


def test_the_installed_command_shows_none_either(home):
    tmp, env = home
    done = subprocess.run([str(EXE), *LIVE, str(tmp / "live")], cwd=tmp, env=subprocess_env(env | CREDENTIALS),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 6, done.stderr
    assert_nothing_leaks(done.stdout + done.stderr, tmp / "live", SECRETS)


@pytest.mark.parametrize("var", ["FSM_BOT_WALLET", "FSM_BOT_RELAYER_API_KEY_ADDRESS"])
@pytest.mark.parametrize("pasted", [PASTED_KEY, "0x" + PASTED_KEY, f"  {PASTED_KEY}  ", PASTED_KEY + "00",
                                    "0x" + PASTED_KEY[:40] + "zz"])
def test_a_key_pasted_where_an_address_goes_is_refused_without_echoing_it(home, monkeypatch, var, pasted):
    tmp, env = home
    code, text = in_process(LIVE + [str(tmp / "live")], env | CREDENTIALS | {var: pasted}, monkeypatch)
    assert code == 2 and var in text and "address" in text, text
    assert_nothing_leaks(text, tmp / "live", SECRETS + [PASTED_KEY[:40]])


def test_a_pasted_key_is_named_as_one():
    with pytest.raises(ConfigError, match="looks like a private key") as exc:
        credentials.from_env({**CREDENTIALS, "FSM_BOT_WALLET": PASTED_KEY})
    assert PASTED_KEY not in str(exc.value)


@pytest.mark.parametrize("var, bad", [("FSM_BOT_PRIVATE_KEY", PASTED_KEY + "g"), ("FSM_BOT_PRIVATE_KEY", "0x" + "ab" * 31),
                                      ("FSM_BOT_SIGNATURE_TYPE", PASTED_KEY), ("FSM_BOT_SIGNATURE_TYPE", "9x")])
def test_no_credentials_message_shows_the_value(var, bad):
    with pytest.raises(ConfigError) as exc:
        credentials.from_env({**CREDENTIALS, var: bad})
    assert var in str(exc.value) and bad.strip() not in str(exc.value) and PASTED_KEY[:16] not in str(exc.value)


@pytest.mark.parametrize("mode", ["--live", "--paper", "--sim"])
def test_a_secret_in_a_url_setting_is_refused_and_not_shown(home, monkeypatch, mode):
    tmp, env = home
    for var, url in planted_urls(closed_port()):
        argv = ["start", mode, "--state-dir", str(tmp / "s")] + (["--confirm-live"] if mode == "--live" else [])
        code, text = in_process(argv, env | CREDENTIALS | {var: url}, monkeypatch)
        field = var.removeprefix("FSM_BOT_").lower()
        assert code == 2 and field in text and var in text, (url, text)
        assert safe_url(url) in text, text  # the URL as it may be shown, so the user can see which
        assert_nothing_leaks(text, tmp / "s", SECRETS + [URL_SECRET])


def test_the_installed_command_refuses_a_url_secret_too(home):
    tmp, env = home
    for var, url in planted_urls(closed_port())[:3]:
        done = subprocess.run([str(EXE), *LIVE, str(tmp / "s")], cwd=tmp, capture_output=True, text=True,
                              env=subprocess_env(env | CREDENTIALS | {var: url}), timeout=120)
        assert done.returncode == 2 and var in done.stderr, done.stderr
        assert_nothing_leaks(done.stdout + done.stderr, tmp / "s", SECRETS + [URL_SECRET])


def test_a_url_secret_in_the_config_file_is_refused_too(home, monkeypatch):
    tmp, env = home
    (tmp / "c.toml").write_text(f'[endpoints]\nrpc_url = "https://polygon.example.com/bot123456:{URL_SECRET}/"\n')
    env = {k: v for k, v in env.items() if k != "FSM_BOT_RPC_URL"}  # the environment would win over the file
    code, text = in_process(["start", "--paper", "--state-dir", str(tmp / "s"), "--config", str(tmp / "c.toml")],
                            env, monkeypatch)
    assert code == 2 and "rpc_url" in text and "c.toml" in text, text
    assert_nothing_leaks(text, tmp / "s", [URL_SECRET])


def test_paper_with_a_test_clock_that_cannot_start_shows_none(home, monkeypatch):
    tmp, env = home
    code, text = in_process(["start", "--paper", "--state-dir", str(tmp / "p"), "--start", "1710338400", "--speed",
                             "60"], env | CREDENTIALS, monkeypatch)
    assert code != 0 and "Traceback" not in text, text  # exit 1 today: tests/test_bad_inputs.py has the xfail
    assert_nothing_leaks(text, tmp / "p", SECRETS)


def test_a_paper_session_writes_no_secret_into_its_state_dir(home):
    """A real --paper session on the wall clock: its first records, log and views, with every secret in the
    environment; stopped by SIGTERM once it has begun."""
    tmp, env = home
    state = tmp / "paper"
    proc = subprocess.Popen([str(EXE), "start", "--paper", "--state-dir", str(state)], cwd=tmp, text=True,
                            env=subprocess_env(env | CREDENTIALS), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (state / "journal.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (state / "journal.jsonl").exists(), err
    assert "Traceback" not in out + err, err
    assert_nothing_leaks(out + err, state, SECRETS)


@pytest.mark.parametrize("mode", ["--paper", "--live"])
def test_doctor_shows_no_secret(home, monkeypatch, mode):
    """``fsm-bot doctor`` runs every pre-flight check: against closed loopback ports they fail, and say so
    without a secret, in-process and in a new process."""
    if "doctor" not in cli.COMMANDS:
        pytest.skip("no doctor command in this build")
    tmp, env = home
    for var, value in [(None, None), *planted_urls(closed_port())[:3]]:
        run_env = env | CREDENTIALS | ({var: value} if var else {})
        code, text = in_process(["doctor", mode], run_env, monkeypatch)
        assert code not in (0, 1) and "Traceback" not in text, text
        done = subprocess.run([str(EXE), "doctor", mode], cwd=tmp, env=subprocess_env(run_env), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode not in (0, 1), done.stderr
        assert_nothing_leaks(text + done.stdout + done.stderr, tmp, SECRETS + [URL_SECRET])


# -- the redaction helpers themselves --------------------------------------------------------------------
@pytest.mark.parametrize("url, safe", [
    ("https://user:pw@host.example:8443/a/b?apikey=xyz&x=1#frag", "https://host.example:8443/a/b?apikey=***&x=***#***"),
    ("https://api.telegram.org/bot123456:AAH-token_x/sendMessage", "https://api.telegram.org/***/sendMessage"),
    ("https://polygon-mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161", "https://polygon-mainnet.infura.io/v3/***"),
    ("https://h.example/key/abc/rest", "https://h.example/key/***/rest"),
    ("https://h.example/api-key/abc", "https://h.example/api-key/***"),
    ("https://h.example/token/abc", "https://h.example/token/***"),
    ("https://h.example/?bare", "https://h.example/?***"),
    ("wss://stream.binance.com:9443/ws", "wss://stream.binance.com:9443/ws"),
    ("https://relayer-v2.polymarket.com", "https://relayer-v2.polymarket.com"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[", "***"),
    ("user:pw@host", "***"),
    (f"https://{PRIVATE_KEY}.example.com/", "https://***/"),
])
def test_safe_url(url, safe):
    assert safe_url(url) == safe


def test_scrub_masks_the_longest_secret_first_and_skips_short_values():
    assert scrub("key abcdef and abcdefgh, abc", ["abcdef", "abcdefgh", "abc", None, ""]) == "key *** and ***, abc"


def test_the_log_masks_every_secret_through_scrub(tmp_path):
    log = logs.open_log(tmp_path / "bot.log", credentials.known_secrets(CREDENTIALS))
    logs.event(log, 40, "test", f"signing with 0x{PRIVATE_KEY} ({PRIVATE_KEY}) and {CREDENTIALS['FSM_BOT_CLOB_API_SECRET']}")
    logs.close(log)
    text = (tmp_path / "bot.log").read_text()
    assert PRIVATE_KEY not in text and "clobsecret" not in text and text.count("***") == 3
