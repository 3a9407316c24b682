"""The composition root: picks the adapters of a mode and, alone, reads the environment's secrets.

``--sim`` (and ``backtest``) replays candles against the simulated venue on a simulated clock.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fsm_bot.adapters import sim
from fsm_bot.config import Config
from fsm_bot.errors import ConfigError, StateDirError
from fsm_bot.ports import Clock, Feed, Venue
from fsm_bot.statedir import LEDGER

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
        closer = getattr(self.venue, "close", None)
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
    return f"{mode}-{datetime.fromtimestamp(start_ms / 1000, timezone.utc):%Y%m%dT%H%MZ}-s{seed}"
