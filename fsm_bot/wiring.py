"""The composition root: the only place that picks and builds adapters, and that reads secrets.

- ``--sim`` (and ``backtest``) replays candles against the simulated venue on a simulated clock.
- ``--paper``: the Binance feed and Polymarket's public data, fills simulated against the real book.
- ``--live``: the same feed and data, and real orders signed with Polymarket's SDK.

``world()`` builds the clock, feed and venue of a mode; ``new_session()`` checks a new session's
flags and says where it starts; ``resumed()`` rebuilds a journaled session's world. ``--start`` and
``--speed`` in ``--paper``/``--live`` form a test clock, accepted only when every base URL is
loopback: it takes its time from the (loopback) Binance server and runs X times faster.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fsm_bot.adapters import sim
from fsm_bot.adapters.ledger import Chain
from fsm_bot.adapters.polymarket import credentials as credentials_mod
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.candles import not_a_file
from fsm_bot.config import Config, is_loopback
from fsm_bot.errors import BotError, ConfigError, EnvironmentFailure, StateDirError
from fsm_bot.ports import MINUTE_MS, Clock, Feed, Venue
from fsm_bot.session import Session, iso_seconds
from fsm_bot.statedir import LEDGER
from fsm_bot.values import frozen

MODES = ("sim", "paper", "live")
REAL_MODES = ("paper", "live")

DEFAULT_SIM_START = "2024-03-13T14:00:00Z"
"""The bundled sample's default session: 90 minutes of 2024-03-13 (the sample holds 2024-03-11 to 03-14)."""

LIVE_ONLY_URLS = ("relayer_url", "data_api_url", "rpc_url")
"""What only the live venue (Polymarket's SDK) reaches; --paper uses the other base URLs."""


@dataclass
class World:
    """A mode's adapters, ready to run a session."""

    mode: str
    clock: Clock
    feed: Feed
    venue: Venue
    source: dict[str, Any]  # the session's data source, journaled in its first record
    secrets: tuple[str, ...] = ()  # what the log must mask
    closed: bool = False

    def preflight(self, start_ms: int) -> list[str]:
        """The venue's start-up checks (``EnvironmentFailure`` naming what failed)."""
        return self.venue.preflight(start_ms)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.venue.close()
            self.feed.close()


def world(mode: str, cfg: Config, source: dict[str, Any], state_dir: Path | None, *, now_ms: int = 0,
          speed: float = math.inf, creds: Credentials | None = None, feed: Feed | None = None,
          clock: Clock | None = None, durable: bool = True, markets: dict | None = None) -> World:
    """The clock, feed and venue of ``mode``. ``--sim``: the clock starts at ``now_ms`` (``feed`` may be a
    replay already loaded; no ``state_dir``: its venue keeps its ledger in memory, a backtest's; ``markets``: those
    drawn so far, shared by sessions over one span); the others take their clock from ``source`` unless given one."""
    if mode == "sim":
        replay = feed if isinstance(feed, sim.ReplayFeed) else replay_feed(source)
        clock_kind, venue_kind = replay.adapters()  # backtest --prices: the recorded venue, deciding later
        sim_clock = clock_kind(now_ms, speed)
        chain = Chain(cfg.seed, cfg.sim_failed_share, cfg.sim_unmined_share, cfg.sim_confirm_secs)
        venue: Venue = venue_kind(
            replay, sim_clock, state_dir and Path(state_dir) / LEDGER, cfg.seed, cfg.interval_minutes, cfg.fee_rate,
            cfg.min_order_usd, durable=durable, chain=chain, markets=markets)
        return World(mode, sim_clock, replay, venue, source)
    load_adapters(mode)
    from fsm_bot.adapters.binance import BinanceFeed
    from fsm_bot.adapters.polymarket.public import PolymarketPublic
    from fsm_bot.adapters.polymarket.stream import MarketChannel
    clock = clock or real_clock(cfg, source)
    public = PolymarketPublic.from_config(cfg, clock, MarketChannel.from_config(cfg, clock))  # books: the channel's
    if mode == "paper":
        from fsm_bot.adapters.polymarket.paper import PaperVenue
        venue = PaperVenue.from_config(cfg, public, Path(state_dir) / LEDGER, clock)
    else:
        from fsm_bot.adapters.polymarket.live import PolymarketVenue
        if creds is None:
            raise ConfigError("--live needs credentials: FSM_BOT_PRIVATE_KEY in the environment or .env")
        venue = PolymarketVenue.from_config(cfg, creds, public, clock)
    binance = BinanceFeed.from_config(cfg, clock, Path(state_dir))
    binance.start()
    return World(mode, clock, binance, venue, source, creds.secrets if creds else ())


@frozen
class NewSession:
    """A new session's mode, config and data source, its flags checked before the state dir is touched."""

    mode: str
    cfg: Config
    source: dict[str, Any]
    start: str | None
    speed: float
    creds: Credentials | None
    replay: sim.ReplayFeed | None = None

    def open(self, state_dir: Path, start_ms: int | None = None) -> tuple[World, int, int]:
        """(world, first interval start, now): the adapters opened and the session's start decided (``start_ms``:
        a chain's next session in ``--sim``, right after the last one)."""
        if self.replay is not None:
            if start_ms is None:
                start_ms = first_sim_start(self.replay, self.cfg, self.start, self.source["data"] == "bundled")
            else:
                check_span(self.replay, self.cfg, start_ms, "the next session")
            return world("sim", self.cfg, self.source, state_dir, now_ms=start_ms, speed=self.speed,
                         feed=self.replay), start_ms, start_ms
        w = world(self.mode, self.cfg, self.source, state_dir, creds=self.creds)
        now = w.clock.now_ms()
        start_ms = parse_start(self.start, self.cfg.interval_secs) if self.start else next_start(now, self.cfg.interval_secs)
        if start_ms + self.cfg.interval_secs * 1000 <= now:
            w.close()
            raise StateDirError(f"--start {self.start}: that interval has already ended (the clock says {iso_seconds(now)})")
        return w, start_ms, now


def new_session(mode: str, cfg: Config, *, data: Path | None = None, start: str | None = None,
                speed: float = math.inf, env: dict[str, str] | None = None, confirm_live: bool = False) -> NewSession:
    if mode == "sim":
        source, replay = replay_source(data)
        first_sim_start(replay, cfg, start, data is None)  # checked now: a bad --start stops before anything
        return NewSession(mode, cfg, source, start, speed, None, replay)
    test_clock = check_test_clock(cfg, mode, start, speed)
    creds = live_credentials(env or {}, confirm_live) if mode == "live" else None
    if data is not None:
        raise ConfigError("--data replays a file: it belongs to --sim and backtest, not --paper or --live")
    clock_speed = (speed if math.isfinite(speed) else 1.0) if test_clock else None
    source = {"kind": mode, "endpoints": mode_urls(cfg, mode),
              "clock": "wall" if clock_speed is None else {"speed": clock_speed}}
    return NewSession(mode, cfg, source, start, speed, creds)


def next_session(session: Session, *, speed: float = math.inf, env: dict[str, str] | None = None,
                 confirm_live: bool = False) -> NewSession:
    """The recipe of the session that follows ``session`` in its chain: its mode, config and data source."""
    creds = live_credentials(env or {}, confirm_live) if session.mode == "live" else None
    replay = replay_feed(session.source) if session.mode == "sim" else None
    return NewSession(session.mode, session.cfg, session.source, None, speed, creds, replay)


def resumed(session: Session, state_dir: Path, *, speed: float = math.inf, env: dict[str, str] | None = None,
            confirm_live: bool = False) -> World:
    """The world of a journaled session, rebuilt from its first record (config, data, endpoints, clock)."""
    if session.mode == "sim":
        return world("sim", session.cfg, session.source, state_dir, now_ms=session.ts_ms, speed=speed)
    creds = live_credentials(env or {}, confirm_live) if session.mode == "live" else None
    if session.source["clock"] != "wall":
        check_test_clock(session.cfg, session.mode, None, float(session.source["clock"]["speed"]))
    return world(session.mode, session.cfg, session.source, state_dir, creds=creds)


# -- --sim and backtest: a file of candles ------------------------------------------------------------
def parse_start(text: str, interval_secs: int, flag: str = "--start") -> int:
    """``--start``: ISO-8601 UTC or unix seconds, on the interval grid; returns ms."""
    try:
        if text.replace(".", "", 1).isdigit():
            secs = float(text)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if when.tzinfo is None:
                raise ConfigError(f"{flag} {text!r}: say the zone: Z for UTC (2024-03-13T14:00:00Z)")
            secs = when.astimezone(timezone.utc).timestamp()
    except (ValueError, OverflowError):
        raise ConfigError(f"{flag} {text!r}: expected ISO-8601 UTC (2024-03-13T14:00:00Z) or unix seconds") from None
    if not secs.is_integer() or int(secs) % interval_secs:
        raise ConfigError(f"{flag} {text}: not on the {interval_secs // 60}-minute grid (a multiple of {interval_secs} s)")
    return int(secs) * 1000


def replay_source(data: Path | None) -> tuple[dict[str, Any], sim.ReplayFeed]:
    """The journaled source of a candle file (its digest) and its replay."""
    path = Path(data).resolve() if data else sim.BUNDLED
    if not path.is_file():
        raise not_a_file("--data", data)
    source = {"kind": "replay", "data": "bundled" if data is None else str(path), "sha256": sim.digest(path)}
    return source, sim.replay(path, source["sha256"])


def replay_feed(source: dict[str, Any]) -> sim.ReplayFeed:
    path = sim.BUNDLED if source["data"] == "bundled" else Path(source["data"])
    if not path.is_file():
        raise StateDirError(f"{path}: the session's data file is gone; a replayed session resumes only on it")
    if sim.digest(path) != source["sha256"]:
        raise StateDirError(f"{path}: the data file changed since the session began (sha256 differs); "
                            "a replayed session resumes only on the same data")
    return sim.replay(path, source["sha256"])


def first_sim_start(feed: sim.ReplayFeed, cfg: Config, start: str | None, bundled: bool) -> int:
    """``--start``, or the data's default point, checked against the span the data covers."""
    if start:
        start_ms = parse_start(start, cfg.interval_secs)
    elif bundled and cfg.interval_minutes == 5:
        start_ms = parse_start(DEFAULT_SIM_START, cfg.interval_secs)
    else:
        step = cfg.interval_secs * 1000
        start_ms = -(-(feed.first_ms + cfg.candles * MINUTE_MS) // step) * step
    check_span(feed, cfg, start_ms)
    return start_ms


def check_span(feed: sim.ReplayFeed, cfg: Config, start_ms: int, what: str = "--start") -> None:
    first_ok = feed.first_ms + cfg.candles * MINUTE_MS
    end = start_ms + cfg.intervals * cfg.interval_secs * 1000
    if start_ms < first_ok or end > feed.last_ms + MINUTE_MS:
        span = f"{iso_seconds(feed.first_ms)[:-4]}Z to {iso_seconds(feed.last_ms + MINUTE_MS)[:-4]}Z"
        raise ConfigError(f"{what}: the data covers {span}; a session there needs {cfg.candles} minutes of candles "
                          f"before its start and {cfg.intervals} x {cfg.interval_minutes} minutes after it")


# -- --paper and --live ---------------------------------------------------------------------------------
def live_credentials(env: dict[str, str], confirm_live: bool) -> Credentials:
    """The ``--live`` credentials, from the environment (with ``.env`` merged in) only."""
    if not confirm_live:
        raise ConfigError("--live places real orders with real money: add --confirm-live to say you mean it")
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
    except BotError as exc:
        raise EnvironmentFailure(f"{cfg.binance_rest_url}/api/v3/time: the test clock cannot start ({exc})") from None
    finally:
        http.close()
    return ScaledClock(int(server_ms), float(source["clock"]["speed"]))


def next_start(now_ms: int, interval_secs: int) -> int:
    """A real session begins at the next interval boundary."""
    step = interval_secs * 1000
    return -(-now_ms // step) * step


def load_adapters(mode: str) -> None:
    """Import the real adapters (the SDK takes a second) before the clock starts counting."""
    for name in ("binance", "polymarket.public", "polymarket.paper" if mode == "paper" else "polymarket.live"):
        try:
            importlib.import_module(f"fsm_bot.adapters.{name}")
        except ModuleNotFoundError as exc:
            raise EnvironmentFailure(f"--{mode} needs the package {exc.name!r}, which is not installed: "
                                     "pip install -e '.[live]' (the live extra: Polymarket's SDK)") from None
