"""The composition root: picks the adapters of a mode and, alone, reads the environment's secrets.

- ``--sim`` (and ``backtest``) replays candles against the simulated venue on a simulated clock.
- ``--paper``: the Binance feed and Polymarket's public data, fills simulated against the real book.
- ``--live``: the same feed and data, and real orders signed with Polymarket's SDK.

``--start``/``--speed`` in ``--paper``/``--live`` form a test clock, accepted only when every base URL
is loopback: it takes its time from the (loopback) Binance server and runs X times faster.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fsm_bot.adapters import sim
from fsm_bot.adapters.polymarket import credentials as credentials_mod
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.config import Config, is_loopback
from fsm_bot.errors import ConfigError, StateDirError
from fsm_bot.ports import Clock, Feed, Venue
from fsm_bot.statedir import LEDGER

REAL_MODES = ("paper", "live")

DEFAULT_SIM_START = "2024-03-13T14:00:00Z"
"""The bundled sample's default session: 90 minutes of 2024-03-13 (the sample holds 2024-03-11 to 03-14)."""


@dataclass
class World:
    clock: Clock
    feed: Feed
    venue: Venue
    source: dict[str, Any]
    wake: threading.Event

    def close(self) -> None:
        for part in (self.venue, self.feed):
            closer = getattr(part, "close", None)
            if closer is not None:
                closer()


def parse_start(text: str, interval_secs: int) -> int:
    """``--start``: ISO-8601 UTC or unix seconds, on the interval grid; returns ms."""
    try:
        secs = float(text) if text.replace(".", "", 1).isdigit() else \
            datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()
    except ValueError:
        raise ConfigError(f"--start {text!r}: expected ISO-8601 UTC (2024-03-13T14:00:00Z) or unix seconds") from None
    if not secs.is_integer() or int(secs) % interval_secs:
        raise ConfigError(f"--start {text}: not on the {interval_secs // 60}-minute grid (a multiple of {interval_secs} s)")
    return int(secs) * 1000


def sim_source(data: Path | None) -> dict[str, Any]:
    path = Path(data).resolve() if data else sim.BUNDLED
    if not path.is_file():
        raise ConfigError(f"--data {data}: no such file")
    return {"kind": "replay", "data": "bundled" if data is None else str(path), "sha256": sim.digest(path)}


def replay_feed(source: dict[str, Any]) -> sim.ReplayFeed:
    path = sim.BUNDLED if source["data"] == "bundled" else Path(source["data"])
    feed = sim.ReplayFeed(sim.load_candles(path))
    if sim.digest(path) != source["sha256"]:
        raise StateDirError(f"{path}: the data file changed since the session began (sha256 differs); "
                            "a replayed session resumes only on the same data")
    return feed


def check_span(feed: sim.ReplayFeed, cfg: Config, start_ms: int, what: str = "--start") -> None:
    first_ok = feed.first_ms + cfg.candles * 60_000
    end = start_ms + cfg.intervals * cfg.interval_secs * 1000
    if start_ms < first_ok or end > feed.last_ms + 60_000:
        span = f"{datetime.fromtimestamp(feed.first_ms / 1000, timezone.utc):%Y-%m-%dT%H:%MZ} to " \
               f"{datetime.fromtimestamp(feed.last_ms / 1000 + 60, timezone.utc):%Y-%m-%dT%H:%MZ}"
        raise ConfigError(f"{what}: the data covers {span}; a session there needs {cfg.candles} minutes of candles "
                          f"before its start and {cfg.intervals} x {cfg.interval_minutes} minutes after it")


def default_start(feed: sim.ReplayFeed, cfg: Config, bundled: bool) -> int:
    if bundled and cfg.interval_minutes == 5:
        return parse_start(DEFAULT_SIM_START, cfg.interval_secs)
    step = cfg.interval_secs * 1000
    first_ok = feed.first_ms + cfg.candles * 60_000
    return -(-first_ok // step) * step


def sim_world(state_dir: Path, cfg: Config, source: dict[str, Any], now_ms: int, speed: float = math.inf,
              durable: bool = True, feed: sim.ReplayFeed | None = None) -> World:
    feed = feed or replay_feed(source)
    wake = threading.Event()
    clock = sim.SimClock(now_ms, speed, wake)
    venue = sim.SimVenue(feed, clock, Path(state_dir) / LEDGER, cfg.seed, cfg.interval_minutes, cfg.fee_rate,
                         cfg.min_order_usd, durable=durable)
    return World(clock=clock, feed=feed, venue=venue, source=source, wake=wake)


def session_id(mode: str, start_ms: int, seed: int) -> str:
    """In ``--sim`` a function of the start and the seed, so two runs with one seed write the same bytes."""
    stamp = f"{mode}-{datetime.fromtimestamp(start_ms / 1000, timezone.utc):%Y%m%dT%H%MZ}"
    return f"{stamp}-s{seed}" if mode == "sim" else stamp


# -- --paper and --live ---------------------------------------------------------------------------
def credentials(env: dict[str, str]) -> Credentials:
    """The ``--live`` credentials, from the environment (with ``.env`` merged in) only."""
    return credentials_mod.from_env(env)


def known_secrets(env: dict[str, str]) -> tuple[str, ...]:
    return credentials_mod.known_secrets(env)


def dotenv_warning(path: Path = Path(".env")) -> str | None:
    """A warning when ``.env`` (which may hold the private key) is readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        return (f"warning: {path} is readable by group or others (mode {mode & 0o777:o}); it may hold your private "
                f"key: chmod 600 {path}")
    return None


LIVE_ONLY_URLS = ("relayer_url", "data_api_url", "rpc_url")
"""What only the live venue (Polymarket's SDK) reaches; --paper uses the other base URLs."""


def mode_urls(cfg: Config, mode: str) -> dict[str, str]:
    return {k: v for k, v in cfg.urls.items() if mode == "live" or k not in LIVE_ONLY_URLS}


def check_test_clock(cfg: Config, mode: str, start: str | None, speed: float) -> bool:
    """Whether ``--start``/``--speed`` ask for a test clock; refused unless every base URL the mode reaches is
    loopback."""
    if start is None and math.isinf(speed):
        return False
    for name, url in mode_urls(cfg, mode).items():
        if not is_loopback(url):
            raise ConfigError(f"--start/--speed in --paper/--live form a test clock, accepted only when every base "
                              f"URL is loopback: {name} = {url} is not")
    return True


def real_source(mode: str, cfg: Config, speed: float | None) -> dict[str, Any]:
    return {"kind": mode, "endpoints": mode_urls(cfg, mode), "clock": "wall" if speed is None else {"speed": speed}}


def real_clock(cfg: Config, source: dict[str, Any]) -> Clock:
    """The wall clock, or the test clock: the loopback Binance server's time, run X times faster."""
    from fsm_bot.adapters.clock import ScaledClock, WallClock
    if source["clock"] == "wall":
        return WallClock()
    from fsm_bot.adapters.http import Backoff, Http
    http = Http(cfg.binance_rest_url, name="binance", timeout_secs=cfg.http_timeout_secs,
                backoff=Backoff(cfg.attempts, cfg.backoff_initial_secs, cfg.backoff_max_secs))
    try:
        server_ms = http.get("/api/v3/time")["serverTime"]
    except (TypeError, KeyError):
        raise ConfigError(f"{cfg.binance_rest_url}/api/v3/time: no serverTime to start the test clock from") from None
    finally:
        http.close()
    return ScaledClock(int(server_ms), float(source["clock"]["speed"]))


def next_start(now_ms: int, interval_secs: int) -> int:
    """A real session begins at the next interval boundary."""
    step = interval_secs * 1000
    return -(-now_ms // step) * step


def load_adapters(mode: str) -> None:
    """Import the real adapters (the SDK takes a second) before the clock starts counting."""
    import importlib
    for name in ("binance", "polymarket.public", "polymarket.paper" if mode == "paper" else "polymarket.live"):
        importlib.import_module(f"fsm_bot.adapters.{name}")


def real_world(state_dir: Path, mode: str, cfg: Config, source: dict[str, Any],
               creds: Credentials | None, clock: Clock | None = None) -> World:
    from fsm_bot.adapters.binance import BinanceFeed
    from fsm_bot.adapters.polymarket.public import PolymarketPublic
    clock = clock or real_clock(cfg, source)
    public = PolymarketPublic.from_config(cfg, clock.pause)
    feed = BinanceFeed.from_config(cfg, clock, Path(state_dir))
    if mode == "paper":
        from fsm_bot.adapters.polymarket.paper import PaperVenue
        venue: Venue = PaperVenue.from_config(cfg, public, Path(state_dir) / LEDGER, clock)
    else:
        from fsm_bot.adapters.polymarket.live import PolymarketVenue
        assert creds is not None
        venue = PolymarketVenue.from_config(cfg, creds, public, clock)
    feed.start()
    return World(clock=clock, feed=feed, venue=venue, source=source, wake=clock.wake)
