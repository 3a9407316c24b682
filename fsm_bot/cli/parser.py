"""The command line's grammar: every command, its flags and their help."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Callable

from fsm_bot import __version__

MODES = ("sim", "paper", "live")
MONTE_CARLO_MAX = 1_000_000
"""The Monte Carlo draws sessions x intervals numbers at once: a million 22-interval sessions take ~180 MB."""


def _speed(text: str) -> float:
    if text in ("max", "inf"):
        return math.inf
    try:
        value = float(text) if text.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number > 0 or 'max', got {text[:40]!r}")
    return value


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high`` (plain ASCII digits)."""
    expected = f"a whole number >= {low}" if high is None else f"a whole number {low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text) if text.isascii() and len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:40]!r}")
        return value
    return parse


_CLUSTER = re.compile(r"inproc://\S+"
                      r"|(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")


def _cluster(text: str) -> str:
    """An argparse type: a Dask scheduler's address, ``[tcp|tls|ws|wss|ucx://]HOST:PORT``, or ``inproc://...`` for one
    in the calling process (checked before any data is read; a scheduler that does not answer is found when asked)."""
    m = _CLUSTER.fullmatch(text)
    if m is None or m["port"] is not None and not 1 <= int(m["port"]) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a Dask scheduler's address, tcp://HOST:PORT, got {text[:60]!r}")
    return text


def _table_file(text: str) -> Path:
    """An argparse type: a file a table is written to, its format named by its suffix (``.parquet`` or ``.csv``)."""
    path = Path(text)
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise argparse.ArgumentTypeError(f"expected a .parquet or .csv file (the suffix says which), got {text[:80]!r}")
    return path


def _session_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("session")
    g.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (see README, Configuration)")
    g.add_argument("--capital", metavar="USD", help="starting capital (default 100)")
    g.add_argument("--intervals", metavar="N", help="intervals in the session (default 18)")
    g.add_argument("--interval-minutes", metavar="M", help="5, or 15 for the 15-minute markets (default 5)")
    g.add_argument("--policy", choices=("tiered", "strict"), help="prediction policy (default tiered)")
    g.add_argument("--seed", metavar="N", help="seed of the simulated venue's book (default 1)")
    g.add_argument("--data", type=Path, metavar="FILE",
                   help="parquet of 1-minute BTCUSDT candles to replay (default: the bundled sample)")
    g.add_argument("--start", metavar="T",
                   help="first interval start: ISO-8601 UTC or unix seconds on the grid (default: a fixed point "
                        "of the data)")
    g.add_argument("--speed", type=_speed, default=math.inf, metavar="X",
                   help="run the clock X times faster than wall time (default: as fast as possible)")


def _modes(p: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    group = p.add_mutually_exclusive_group()
    for mode, text in helps.items():
        group.add_argument(f"--{mode}", action="store_const", dest="mode", const=mode, help=text)


def _unattended(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running unattended")
    chain = g.add_mutually_exclusive_group()
    chain.add_argument("--sessions", type=_whole(1), default=1, metavar="N",
                       help="run N sessions back to back, each archived when it ends (default 1)")
    chain.add_argument("--forever", action="store_true", help="run session after session until stopped")
    g.add_argument("--stop-on-halt", action="store_true", help="a halt ends the chain, not only its session")
    g.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="post events to this webhook (repeatable; Telegram, Discord, Slack or generic JSON by URL; "
                        "better: FSM_BOT_NOTIFY_URLS in .env, since a flag shows in the process list)")
    g.add_argument("--metrics-port", type=_whole(1, 65535), metavar="P", help="serve Prometheus metrics on this port")
    g.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address the metrics listen on (default 127.0.0.1: loopback only)")


def _state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=Path("state"), metavar="DIR",
                   help="where the journal and the session's files live (default ./state)")


def _data(p: argparse.ArgumentParser) -> None:
    kinds = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    b = kinds.add_parser("binance", help="BTCUSDT 1-minute candles from Binance's dump files or its REST API",
                         description="BTCUSDT 1-minute candles over [--from, --to): monthly and daily dump files "
                         "(sha256-checked), REST for days not in the dump yet; or all from REST.")
    m = kinds.add_parser("polymarket", help="every window's market, official resolution and both tokens' prices",
                         description="For every window in [--from, --to): its Gamma market, its official "
                         "resolution and both tokens' CLOB price history (fidelity 1 minute), one parquet file.")
    for q, grid in ((b, "a whole minute"), (m, "on the interval grid")):
        q.add_argument("--from", dest="first", required=True, metavar="T",
                       help=f"first candle or window: a date (UTC midnight), ISO-8601 UTC or unix seconds, {grid}")
        q.add_argument("--to", dest="last", required=True, metavar="T", help="end of the span (excluded)")
        q.add_argument("--out", type=Path, required=True, metavar="FILE",
                       help="parquet file to write; an existing one of the same schema is continued")
        q.add_argument("--json", action="store_true", help="print the report as JSON")
    b.add_argument("--source", choices=("dump", "rest"), default="dump",
                   help="dump: data.binance.vision files, REST for days not published yet (default); rest: only REST")
    b.add_argument("--rest-url", metavar="URL", help="Binance REST (default: the config's binance_rest_url)")
    b.add_argument("--dump-url", metavar="URL", help="the dump's host (default https://data.binance.vision)")
    m.add_argument("--interval-minutes", type=int, choices=(5, 15), default=5, help="5 or 15-minute markets (default 5)")
    m.add_argument("--lead-minutes", type=_whole(0, 1440), metavar="M",
                   help="price history from M minutes before each window to its end (default: one interval)")
    m.add_argument("--gamma-url", metavar="URL", help="Polymarket Gamma (default: the config's gamma_url)")
    m.add_argument("--clob-url", metavar="URL", help="Polymarket CLOB (default: the config's clob_url)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fsm-bot", description="A crash-safe trading bot for Polymarket's Bitcoin Up or "
                                  "Down markets: an explicit finite-state machine whose every transition is journaled.")
    top.add_argument("--version", action="version", version=f"fsm-bot {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("start", help="start a new session", description="Start a new session. A finished session in "
                       "the state dir is archived first; an unfinished one makes start refuse (resume it, or --fresh).")
    _modes(p, {"sim": "offline: replay real candles against a simulated venue (the default)",
               "paper": "real Binance and Polymarket public data, simulated fills against the real book; no keys",
               "live": "real orders with real money: needs credentials in the environment and --confirm-live"})
    _state_dir(p)
    p.add_argument("--fresh", action="store_true", help="archive an unfinished session instead of refusing")
    p.add_argument("--confirm-live", action="store_true", help="with --live: yes, place real orders")
    _session_options(p)
    _unattended(p)

    p = sub.add_parser("resume", help="continue the session in the state dir from its journal",
                       description="Replay the journal, reconcile with the venue and continue from the exact state.")
    _modes(p, {m: f"refuse unless the journal's session is a --{m} session" for m in MODES})
    _state_dir(p)
    p.add_argument("--confirm-live", action="store_true", help="resuming a --live session: yes, place real orders")
    p.add_argument("--speed", type=_speed, default=math.inf, metavar="X",
                   help="clock speed of a resumed --sim session (a test clock keeps the speed it began with)")

    p = sub.add_parser("history", help="every session in the state dir and its archive: rows, totals, cumulative PnL")
    _state_dir(p)
    p.add_argument("--json", action="store_true", help="print JSON (money as exact decimal strings)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="draw the cumulative PnL across sessions as a PNG (a line per mode, on a UTC clock)")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="write the history as one self-contained page: totals, the chart, a row per session")

    p = sub.add_parser("doctor", help="every pre-flight check of --paper or --live, without trading",
                       description="Check everything start --paper/--live needs (default --paper) without trading; "
                       "exit 6 when a check fails.")
    _modes(p, {"paper": "the checks of --paper (the default): no keys needed",
               "live": "also credentials, collateral and allowance, relayer keys and the live-only endpoints"})
    _state_dir(p)
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (see README, Configuration)")
    p.add_argument("--geoblock-url", default="https://polymarket.com/api/geoblock", metavar="URL",
                   help="Polymarket's geoblock answer for this machine (default the real one)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per check)")

    p = sub.add_parser("status", help="where the session stands (read-only; takes no lock)")
    _state_dir(p)
    p.add_argument("--last", type=_whole(1), default=5, metavar="N", help="how many of the last trades to show (>= 1)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("backtest", help="run the machine over real history, session after session",
                       description="The same machine, handlers and simulated venue as --sim, 18-interval session "
                       "after session over a span of candles; per-session results, decisions, an aggregate and plots.")
    p.add_argument("--data", type=Path, metavar="FILE", help="parquet of 1-minute candles (default: the bundled sample)")
    p.add_argument("--from", dest="first", metavar="T",
                   help="first session start (a date: its UTC midnight; ISO-8601 UTC or unix seconds)")
    p.add_argument("--to", dest="last", metavar="T", help="last session start")
    p.add_argument("--policy", choices=("tiered", "strict"), help="prediction policy (default tiered)")
    p.add_argument("--seed", metavar="N", help="seed of the simulated venue's books (default 1)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings")
    p.add_argument("--capital", metavar="USD", help="starting capital of each session (default 100)")
    p.add_argument("--intervals", metavar="N", help="intervals per session (default 18)")
    p.add_argument("--out", type=Path, default=Path("backtest"), metavar="DIR",
                   help="where sessions.parquet, aggregate.json and the plots go (default ./backtest)")
    p.add_argument("--decisions", type=_table_file, metavar="FILE",
                   help="write one row per interval to a .parquet or .csv file")
    p.add_argument("--json", action="store_true", help="print the aggregate as JSON only")
    p.add_argument("--workers", type=_whole(1, 1024), metavar="N",
                   help="local processes running the month chunks (default: every core; 1: this process)")
    p.add_argument("--cluster", type=_cluster, metavar="ADDRESS",
                   help="run the month chunks on a Dask scheduler, e.g. tcp://host:8786")
    g = p.add_argument_group("recorded Polymarket prices")
    g.add_argument("--prices", type=Path, metavar="FILE",
                   help="also run against the recorded prices and resolutions of FILE (the schema `fsm-bot data "
                        "polymarket` writes) over the span it covers, and report both side by side")
    g.add_argument("--interval-minutes", metavar="M", help="5 or 15 (default: the prices file's, else 5)")
    g.add_argument("--quotes", choices=("recorded", "simulated"),
                   help="with --prices: quote the recorded price (the default) or the simulated book")
    g.add_argument("--settle", choices=("recorded", "candles"),
                   help="with --prices: settle on the recorded resolution (the default) or the candles' direction")

    p = sub.add_parser("sweep", help="backtest many configs (a grid, or Optuna trials), with walk-forward",
                       description="Each trial a backtest through the same machine over the config values of a grid "
                       "file, run once per month chunk; --train/--test picks the best trial of each rolling train "
                       "window and reports it on the test window that follows. A stopped sweep continues where it "
                       "stopped: done trial-chunks in --out are read back, not rerun.")
    p.add_argument("--grid", type=Path, required=True, metavar="FILE",
                   help="TOML of the config fields to vary: [grid] lists, [search] ranges for --trials, [fixed]")
    p.add_argument("--trials", type=_whole(1, 100_000), metavar="N",
                   help="N trials drawn by Optuna's TPE sampler from [search] instead of every [grid] combination")
    p.add_argument("--search-seed", type=_whole(0, 2 ** 32 - 1), default=1, metavar="N",
                   help="seed of the sampler: the same seed proposes the same trials (default 1)")
    p.add_argument("--train", metavar="SPAN", help="walk-forward train window in whole months, e.g. 6mo or 1y")
    p.add_argument("--test", metavar="SPAN", help="test window that follows each train window (default 1mo)")
    p.add_argument("--objective", choices=("pnl", "edge"), default="pnl",
                   help="how the best train trial is chosen: pnl, PnL after fees per session (the default: what "
                        "the account sees, sizing and halts included); edge, the hit rate's 95%% Wilson lower "
                        "bound minus break-even at the trial's entry prices")
    p.add_argument("--data", type=Path, metavar="FILE", help="parquet of 1-minute candles (default: the bundled sample)")
    p.add_argument("--from", dest="first", metavar="T",
                   help="first session start (a date: its UTC midnight; ISO-8601 UTC or unix seconds)")
    p.add_argument("--to", dest="last", metavar="T", help="last session start")
    p.add_argument("--out", type=Path, default=Path("sweep"), metavar="DIR",
                   help="where sweep.parquet, summary.json, the plot and the per-chunk results go (default ./sweep)")
    p.add_argument("--workers", type=_whole(1, 1024), metavar="N", help="local processes (default: every core)")
    p.add_argument("--cluster", type=_cluster, metavar="ADDRESS",
                   help="run the chunks on a Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")

    p = sub.add_parser("risk", help="the sizing and halt rules' risk: exact outcome distribution and Monte Carlo",
                       description="Every win/loss sequence of a session, followed exactly through the machine's "
                       "sizing, fee and halt rules, for each win rate and entry price; checked by a Monte Carlo.")
    p.add_argument("--win-rate", metavar="W[,W...]", help="win rates (default 0.40,0.42,...,0.60)")
    p.add_argument("--price", metavar="P[,P...]", help="entry prices (default 0.45,0.50,0.51,0.55,0.60)")
    p.add_argument("--fee-rate", metavar="R", help="taker fee rate (default: the config's, 0.072)")
    p.add_argument("--monte-carlo", type=_whole(0, MONTE_CARLO_MAX), default=50_000, metavar="N",
                   help=f"Monte Carlo sessions per cell (0: none; at most {MONTE_CARLO_MAX:,})")
    p.add_argument("--seed", type=_whole(0), default=1, metavar="N", help="the Monte Carlo's seed (>= 0)")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write P(halt) and expected capital as a PNG")
    p.add_argument("--json", action="store_true", help="print JSON (one object per win rate and price)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (sizing, floor, intervals)")
    p.add_argument("--capital", metavar="USD", help="starting capital (default 100)")
    p.add_argument("--intervals", metavar="N", help="intervals in the session (default 18, at most 22)")

    _data(sub.add_parser("data", help="download real history into the project's schemas (docs/DATA.md)",
                         description="Download real history: Binance candles (the --data schema) or Polymarket "
                         "markets, resolutions and price history (the recorded-prices schema). Appends to an "
                         "existing file; validates and reports gaps, duplicates and inconsistencies, never fixing."))

    p = sub.add_parser("report", help="equity curve, drawdown, trades and summary of a session (PNG, Markdown, HTML)")
    _state_dir(p)
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default <state-dir>/report)")

    p = sub.add_parser("graph", help="export the interval machine's diagram")
    p.add_argument("--out", type=Path, default=Path("diagrams"), metavar="DIR|FILE",
                   help="output folder (default diagrams/), or one file: a name ending .svg, .png, .mmd or .dot")
    p.add_argument("--format", metavar="LIST", help="for a folder, any of svg,png,mmd,dot (default all four)")
    return top
