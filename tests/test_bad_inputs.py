"""No bad input ends in a traceback: every bad flag, config file, environment value, data file or output path
stops the command with ``fsm-bot <command>: <message>`` naming what was wrong, and an exit code of its kind
(2 a bad flag, config or state dir; 6 the environment), never 1.

The table runs through the real CLI in-process; a handful of its rows also run through the installed
``fsm-bot`` in a new process. The property tests at the end feed ``config.parse_value`` every field with
strings no one should type (exponents, other scripts' digits, NaN, infinities, huge and tiny numbers).
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsm_bot import cli, config
from fsm_bot.config import FIELDS, Config
from fsm_bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("fsm-bot")
KEY = "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
SPAN = ("--from", "2024-03-13T14:00:00Z", "--to", "2024-03-13T14:00:00Z")  # one session, should a check be lost


@dataclass
class Ran:
    code: int | str
    out: str
    err: str


def files(tmp: Path) -> None:
    """The bad inputs the table points at."""
    (tmp / "afile").write_text("not a folder\n")
    (tmp / "adir").mkdir()
    (tmp / "bad.toml").write_text("x = [\n")
    (tmp / "unknown.toml").write_text("[risk]\nmax_entry_pryce = 0.5\n")
    (tmp / "type.toml").write_text("[session]\nintervals = \"eighteen\"\n")
    (tmp / "huge.toml").write_text("intervals = " + "9" * 5000 + "\n")
    (tmp / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp / "text.parquet").write_text("not parquet\n")
    pl.DataFrame({"a": [1, 2]}).write_parquet(tmp / "nocols.parquet")
    (tmp / "empty").mkdir()
    (tmp / "nojournal").mkdir()
    (tmp / "nojournal" / "journal.jsonl").write_text("")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A state dir holding a finished two-interval --sim session (for report)."""
    d = tmp_path_factory.mktemp("finished") / "state"
    assert run_in_process(["start", "--sim", "--state-dir", str(d), "--intervals", "2"]).code == 0
    return d


@pytest.fixture
def place(tmp_path, monkeypatch, finished):
    """A clean working folder with the bad inputs, no FSM_BOT_* variables and no .env."""
    for name in list(os.environ):
        if name.startswith("FSM_BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    files(tmp_path)
    return tmp_path


def run_in_process(argv: list[str]) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code: int | str = cli.main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return Ran(code, out.getvalue(), err.getvalue())


def expand(argv: tuple[str, ...], tmp: Path, finished: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{finished}", str(finished)) for a in argv]


def case(argv: str | tuple[str, ...], code: int, names: str, env: dict[str, str] | None = None, *,
         xfail: str = "", id: str | None = None):
    argv = tuple(argv.split()) if isinstance(argv, str) else argv
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(argv, env or {}, code, names, marks=marks, id=id or " ".join(argv)[:80])


START = "start --sim --state-dir {tmp}/s"

CASES = [
    # output paths: created when missing, refused when a file stands where a folder should, or a folder where a
    # file should
    case(("backtest", "--out", "{tmp}/afile", *SPAN), 2, "--out"),
    case(("backtest", "--out", "{tmp}/afile/sub", *SPAN), 2, "--out"),
    case(("backtest", "--decisions", "{tmp}/adir", *SPAN), 2, "--decisions"),
    case(("backtest", "--decisions", "{tmp}/afile/d.csv", *SPAN), 2, "--decisions"),
    case("graph --out {tmp}/afile", 2, "--out"),
    case("graph --out {tmp}/afile/sub", 2, "--out"),
    case("report --state-dir {finished} --out {tmp}/afile", 2, "--out"),
    case("report --state-dir {finished} --out {tmp}/afile/sub", 2, "--out"),
    case("risk --monte-carlo 0 --win-rate 0.5 --price 0.51 --plot {tmp}/adir", 2, "--plot"),
    case("risk --monte-carlo 0 --win-rate 0.5 --price 0.51 --plot {tmp}/afile/x.png", 2, "--plot"),
    case(f"{START.replace('{tmp}/s', '{tmp}/afile')}", 2, "--state-dir"),
    case(f"{START.replace('{tmp}/s', '{tmp}/afile/sub')}", 2, "--state-dir"),
    # --capital: within what the money code writes exactly
    *(case(f"{START} --capital {v}", 2, "--capital")
      for v in ("1e12", "1e-9", "nan", "-5", "1e400", "0", "0.5", "100.001", "abc", "", "١٠٠", "inf", "1000000000.01")),
    case(f"{START} --capital 1000000000", 2, "capital_usd + intervals x cap_usd", {"FSM_BOT_CAP_USD": "1000000"},
         id="a session that could win more than the views write exactly"),
    # --intervals, --interval-minutes, --seed, --speed, --policy
    *(case(f"{START} --intervals {v}", 2, "--intervals") for v in ("0", "-1", "abc", "1e9", "1.5", "100001", "٣")),
    case(f"{START} --interval-minutes 7", 2, "--interval-minutes"),
    case(f"{START} --interval-minutes 5.0", 2, "--interval-minutes"),
    *(case(f"{START} --seed {v}", 2, "--seed") for v in ("-1", "1e3", "x", "4294967296")),
    *(case(f"{START} --speed {v}", 2, "--speed") for v in ("0", "-1", "nan", "abc", "-inf", "٢")),
    case(f"{START} --policy bogus", 2, "--policy"),
    case("resume --state-dir {tmp}/empty --speed 0", 2, "--speed"),
    # status --last
    *(case(f"status --state-dir {{finished}} --last {v}", 2, "--last") for v in ("0", "-1", "abc", "2.5")),
    # --start / --from / --to: the interval grid, real times, in order
    case(f"{START} --start 2024-03-13T14:01:00Z", 2, "--start"),
    case(f"{START} --start yesterday", 2, "--start"),
    case(f"{START} --start 0001-01-01T00:00:00+01:00", 2, "--start"),
    case("backtest --from 2024-03-13T14:01:00Z --to 2024-03-13T15:00:00Z", 2, "--from"),
    case("backtest --from 2024-03-13T14:00:00Z --to 2024-03-13T15:02:00Z", 2, "--to"),
    case("backtest --from 1710338460 --to 1710338400", 2, "--from"),
    case("backtest --from tomorrow", 2, "--from"),
    case("backtest --to yesterday", 2, "--to"),
    case("backtest --from 2024-03-13T16:00:00Z --to 2024-03-13T14:00:00Z", 2, "--to"),
    case("backtest --from 0001-01-01T00:00:00+01:00", 2, "--from"),
    case("backtest --from 2030-01-01T00:00:00Z", 2, "--from/--to"),
    case("backtest --cluster nonsense", 2, "--cluster"),
    case("backtest --decisions {tmp}/rows.txt", 2, "--decisions"),
    case("backtest --cluster tcp://127.0.0.1:99999", 2, "--cluster"),
    case("sweep --grid sweeps/tiered.toml --cluster tcp://scheduler", 2, "--cluster"),
    # --data
    *(case(f"{cmd} --data {{tmp}}/{f}", 2, "--data")
      for cmd in ("backtest", START) for f in ("missing.parquet", "text.parquet", "nocols.parquet", "adir")),
    case("start --paper --state-dir {tmp}/s --data {tmp}/nocols.parquet", 2, "--data"),
    # --config
    *(case(f"{START} --config {{tmp}}/{f}", 2, names)
      for f, names in (("missing.toml", "--config"), ("bad.toml", "--config"), ("unknown.toml", "max_entry_pryce"),
                       ("type.toml", "intervals"), ("adir", "--config"), ("huge.toml", "--config"),
                       ("binary.toml", "--config"))),
    case(("risk", "--config", "{tmp}/bad.toml"), 2, "--config"),
    case(("backtest", "--config", "{tmp}/type.toml"), 2, "intervals"),
    # the environment names the variable
    *(case(START, 2, var, {var: value}, id=f"{var}={value}")
      for var, value in (("FSM_BOT_CAPITAL_USD", "abc"), ("FSM_BOT_CAPITAL_USD", "1e12"), ("FSM_BOT_INTERVALS", "0"),
                         ("FSM_BOT_MAX_ENTRY_PRICE", "1.5"), ("FSM_BOT_VOLATILITY_MAX", "nan"),
                         ("FSM_BOT_STALE_SECS", "１２０"), ("FSM_BOT_GAMMA_URL", "ftp://example.com"),
                         ("FSM_BOT_CLOB_URL", "http://clob.example.com"), ("FSM_BOT_FLOOR_FRACTION", "1e-999999"),
                         ("FSM_BOT_MULTIPLIER", "1e9"), ("FSM_BOT_SEED", "9" * 5000))),
    # graph --format
    case("graph --out {tmp}/g --format bogus", 2, "--format"),
    case("graph --out {tmp}/g --format ,", 2, "--format"),
    # risk's own flags
    case("risk --win-rate 2", 2, "--win-rate"),
    case("risk --win-rate ,", 2, "--win-rate"),
    case("risk --win-rate nan", 2, "--win-rate"),
    case("risk --price 0", 2, "--price"),
    case("risk --price 1", 2, "--price"),
    case("risk --monte-carlo 0 --win-rate 0.5 --price 0.0000001", 2, "--price"),
    case("risk --fee-rate -1", 2, "--fee-rate"),
    case("risk --fee-rate -1e-13", 2, "--fee-rate"),
    case("risk --fee-rate 0.1,0.2", 2, "--fee-rate"),
    case("risk --fee-rate ,", 2, "--fee-rate"),
    case("risk --intervals 30", 2, "--intervals"),
    case("risk --monte-carlo -1", 2, "--monte-carlo"),
    case("risk --monte-carlo abc", 2, "--monte-carlo"),
    case("risk --monte-carlo 1000000000000", 2, "--monte-carlo"),
    case("risk --seed -1", 2, "--seed"),
    # state dirs with no session
    case("report --state-dir {tmp}/empty", 2, "no session"),
    case("report --state-dir {tmp}/nojournal", 2, "never began"),
    case("report --state-dir {tmp}/afile", 2, "no session"),
    case("status --state-dir {tmp}/empty", 2, "no session"),
    case("status --state-dir {tmp}/nojournal", 2, "never began"),
    case("resume --state-dir {tmp}/empty", 2, "no session"),
    case("resume --state-dir {tmp}/nojournal", 2, "never began"),
    # real modes' flags
    case("start --live --state-dir {tmp}/s", 2, "--confirm-live"),
    case("start --live --confirm-live --state-dir {tmp}/s", 2, "FSM_BOT_PRIVATE_KEY"),
    case("start --live --confirm-live --state-dir {tmp}/s", 2, "FSM_BOT_PRIVATE_KEY", {"FSM_BOT_PRIVATE_KEY": "0x12"},
         id="a short private key"),
    case("start --paper --state-dir {tmp}/s --start 2024-03-13T14:00:00Z", 2, "loopback"),
    case("start --paper --state-dir {tmp}/s --start 2024-03-13T14:00:00Z --speed 60", 6, "binance",
         {config.env_name(n): f"{'ws' if n.endswith('ws_url') else 'http'}://127.0.0.1:9" for n in config.Config().urls}
         | {"FSM_BOT_ATTEMPTS": "1"}, id="a test clock whose Binance server does not answer"),
    case(f"{START} --start 2024-03-13T14:00:00", 2, "the zone", id="a time without its zone"),
]


def check(ran: Ran, code: int, names: str) -> None:
    shown = f"exit {ran.code}\nstdout: {ran.out[-2000:]}\nstderr: {ran.err[-2000:]}"
    assert "Traceback" not in ran.out + ran.err, shown
    assert ran.code != 1, shown
    assert ran.code == code, shown
    assert names in ran.err, shown
    assert ran.err.strip().splitlines()[-1].startswith("fsm-bot"), shown


@pytest.mark.parametrize("argv, env, code, names", CASES)
def test_a_bad_input_stops_the_command_with_a_message_naming_it(place, finished, monkeypatch, argv, env, code, names):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    check(run_in_process(expand(argv, place, finished)), code, names)
    assert not (place / "s" / "journal.jsonl").exists()


def test_the_table_covers_every_command():
    commands = {p.values[0][0] for p in CASES}
    assert {"start", "resume", "status", "graph", "risk", "backtest", "report"} <= commands <= set(cli.COMMANDS)
    assert len(CASES) >= 100


SUBPROCESS = ["backtest --out {tmp}/afile --from 2024-03-13T14:00:00Z --to 2024-03-13T14:00:00Z",
              "graph --out {tmp}/afile", f"{START} --capital 1e12", "status --state-dir {finished} --last 0",
              f"{START} --config {{tmp}}/bad.toml", "risk --seed -1", "backtest --from 2024-03-13T14:01:00Z",
              f"{START} --speed nan"]


@pytest.mark.parametrize("argv", SUBPROCESS)
def test_the_installed_command_answers_a_bad_input_without_a_traceback(place, finished, argv):
    row = next(p for p in CASES if " ".join(p.values[0]) == argv or " ".join(p.values[0]).startswith(argv))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSM_BOT_")}
    done = subprocess.run([str(EXE), *expand(tuple(argv.split()), place, finished)], cwd=place, env=env,
                          capture_output=True, text=True, timeout=120)
    check(Ran(done.returncode, done.stdout, done.stderr), row.values[2], row.values[3])


def test_output_folders_are_created_where_missing(place, finished):
    plot = place / "new" / "deeper" / "risk.png"
    ran = run_in_process(["risk", "--monte-carlo", "0", "--win-rate", "0.5", "--price", "0.51", "--plot", str(plot)])
    assert ran.code == 0 and plot.stat().st_size > 0, ran.err
    ran = run_in_process(["graph", "--out", str(place / "g" / "h"), "--format", "mmd,dot"])
    assert ran.code == 0 and (place / "g" / "h" / "interval.mmd").exists(), ran.err
    ran = run_in_process(["report", "--state-dir", str(finished), "--out", str(place / "r" / "s")])
    assert ran.code == 0 and (place / "r" / "s" / "report.html").exists(), ran.err
    ran = run_in_process(["backtest", *SPAN, "--out", str(place / "b" / "c"), "--decisions",
                          str(place / "d" / "e" / "rows.csv"), "--json"])
    assert ran.code == 0 and (place / "b" / "c" / "aggregate.json").exists(), ran.err
    assert (place / "d" / "e" / "rows.csv").read_text().startswith("session,")


def test_backtest_takes_from_and_to_on_the_interval_grid(place):
    ran = run_in_process(["backtest", "--from", "1710338400", "--to", "1710338400", "--out", str(place / "b"), "--json"])
    assert ran.code == 0, ran.err
    assert '"sessions": 1' in ran.out


def test_a_live_session_without_the_live_extra_says_what_to_install(place, monkeypatch):
    """The SDK missing: exit 6 naming the extra, not an ImportError."""
    for name in [m for m in sys.modules if m == "polymarket" or m.startswith("polymarket.")
                 or m.startswith("fsm_bot.adapters.polymarket.")]:
        if name != "fsm_bot.adapters.polymarket.credentials":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "polymarket", None)
    monkeypatch.setenv("FSM_BOT_PRIVATE_KEY", KEY)
    ran = run_in_process(["start", "--live", "--confirm-live", "--state-dir", str(place / "s")])
    check(ran, 6, "[live]")


# -- config values: a valid value or a ConfigError naming the field, never another exception ----------------------
_DIGITS = "0123456789" + "٠١٢٣٤٥٦٧٨٩" + "०१२३४५६७८९" + "０１２３４５６７８９" + "𝟎𝟏𝟐"
NUMBERISH = st.one_of(
    st.text(alphabet="0123456789.eE+-_ ", max_size=30),
    st.text(alphabet=_DIGITS + ".-e", min_size=1, max_size=12),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-10 ** 6, 10 ** 6), st.integers(-10 ** 9, 10 ** 9)),
    st.builds(lambda m, e: f"{m}E{e:+d}", st.decimals(allow_nan=False, allow_infinity=False, places=3),
              st.integers(-400, 400)),
    st.sampled_from(["", " ", "nan", "NaN", "-nan", "sNaN", "inf", "-inf", "Infinity", "+Infinity", "1e400",
                     "-1e400", "1e-400", "0", "-0", "0.0", "-0.0", "0E-999999", "1e999999999", "0x10", "1_000",
                     "5.", ".5", "1,5", "１２", "9" * 5000, "1" + "0" * 4299, "4294967296", "100000", "100001",
                     "1e30", "1e31", "1e-30", "1e-31", "true", "True", "None", "5\x00", "\u200b5", "5\n"]),
    st.integers().map(str),
    st.floats().map(repr),
    st.decimals().map(str),
    st.text(max_size=20),
)
URLISH = st.one_of(
    st.builds(lambda scheme, user, host, port, path, query, frag: f"{scheme}://{user}{host}{port}{path}{query}{frag}",
              st.sampled_from(["https", "wss", "http", "ws", "ftp", "HTTPS", ""]),
              st.sampled_from(["", "user:Pw0rdZ@", "@", "u@"]),
              st.sampled_from(["api.binance.com", "127.0.0.1", "localhost", "[::1]", "[::1", "exa mple.com", "",
                               "例え.jp", "host\n"]),
              st.sampled_from(["", ":443", ":0", ":65536", ":abc", ":", ":-1"]),
              st.sampled_from(["", "/", "/ws", "/bot123456:Pw0rdZ/", "/v3/9aa3d95b3bc440fa88ea12eaa4456161",
                               "/key/abc", "//", "/%00"]),
              st.sampled_from(["", "?", "?apikey=Pw0rdZ", "?a", "?a=1&b=2"]),
              st.sampled_from(["", "#", "#frag"])),
    st.text(max_size=40),
)
RAW = st.one_of(NUMBERISH, st.integers(), st.floats(), st.booleans(), st.none(),
                st.decimals(), st.lists(st.integers(), max_size=2), st.dates())
TYPES = {"Decimal": Decimal, "int": int, "float": float, "str": str}


def _parse_and_validate(name: str, raw: object) -> None:
    try:
        value = config.parse_value(name, raw, "somewhere: ")
    except ConfigError as exc:
        assert name in str(exc)
        return
    kind = TYPES[FIELDS[name].type]
    assert type(value) is kind, (name, raw, value)
    if kind is float:
        assert math.isfinite(value)
    if kind is Decimal:
        assert value.is_finite() and (value == 0 or -30 <= value.adjusted() <= 30)
    try:
        cfg = Config().replace(**{name: value})
    except ConfigError as exc:
        assert name in str(exc), (name, raw, str(exc))
        return
    assert Config.from_json(cfg.to_json()) == cfg  # a valid config survives the journal's begin record


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FIELDS)), raw=RAW)
def test_every_field_parses_any_value_or_names_itself(name, raw):
    _parse_and_validate(name, raw)


@settings(max_examples=10_000, deadline=None)
@given(name=st.sampled_from(sorted(n for n, f in FIELDS.items() if f.metadata["unit"] == "URL")), raw=URLISH)
def test_url_settings_are_valid_or_refused_without_their_secrets(name, raw):
    try:
        value = config.parse_value(name, raw)
        config.Config().replace(**{name: value})
    except ConfigError as exc:
        assert name in str(exc) and "Pw0rdZ" not in str(exc) and "9aa3d95b3bc4" not in str(exc), str(exc)
        return
    assert "Pw0rdZ" not in value and "@" not in value and "?" not in value


def test_the_environment_is_parsed_the_same_way(monkeypatch):
    """``load`` over the environment: one bad value, one ConfigError naming its variable."""
    for name in FIELDS:
        with pytest.raises(ConfigError, match=config.env_name(name)):
            config.load(None, {config.env_name(name): "\u0661e400"})


def test_a_date_is_its_utc_midnight_for_every_span_flag():
    from fsm_bot.cli.options import when
    assert when("2024-05-01", "--from", 300) == when("2024-05-01T00:00:00Z", "--from", 300) == 1714521600000
    with pytest.raises(ConfigError, match="the zone"):
        when("2024-05-01T00:00:00", "--from", 300)
    with pytest.raises(ConfigError, match="--to"):
        when("2024-13-01", "--to", 300)
