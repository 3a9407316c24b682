"""``fsm-bot doctor``: everything ``start --paper`` or ``start --live`` would need, checked without trading.

Each check is a small function that returns one ``Check`` (ok, warn or fail; what was seen, with the round
trip where one was measured; what to do); any exception inside one is a ``fail`` with its message, so the
doctor never stops half-way. ``--paper`` shows no live-only check (credentials, balance, relayer, and the
relayer, Data API and RPC endpoints). No line shows a secret: messages name variables, never values, and
every line is scrubbed of the secrets the process knows anyway.

- ``local``: python, packages, graphviz, config, dotenv, state_dir
- ``network``: endpoint:<setting> for every base URL of the mode, clock:binance, clock:clob, geoblock
- ``venue``: next_market; --live: credentials, balance, relayer
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from fsm_bot import wiring
from fsm_bot.config import Config
from fsm_bot.doctor import local, network, venue
from fsm_bot.doctor.check import FAIL, OK, WARN, Check, guarded, message
from fsm_bot.doctor.venue import venue_checks
from fsm_bot.errors import EnvironmentFailure
from fsm_bot.redact import scrub

__all__ = ["FAIL", "GEOBLOCK_URL", "OK", "WARN", "Check", "as_json", "exit_code", "render", "run"]

GEOBLOCK_URL = "https://polymarket.com/api/geoblock"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def run(mode: str, cfg: Config, env: dict[str, str], state_dir: Path, *, dotenv: Path = Path(".env"),
        geoblock_url: str = GEOBLOCK_URL, now_ms: Callable[[], int] = wall_ms) -> list[Check]:
    """Every check of ``mode`` (``paper`` or ``live``), in order. ``env`` is the environment with ``.env``
    merged in (``config.environment()``); ``now_ms`` this machine's clock."""
    if mode not in wiring.REAL_MODES:
        raise ValueError(f"the doctor checks --paper or --live, not --{mode}")
    live, timeout = mode == "live", cfg.http_timeout_secs
    checks = [guarded("python", local.python), guarded("packages", local.packages, live),
              guarded("graphviz", local.graphviz), guarded("config", local.config, cfg),
              guarded("dotenv", local.dotenv, Path(dotenv)), guarded("state_dir", local.state_dir, Path(state_dir))]
    checks += [guarded(f"endpoint:{name}", network.endpoint, name, url, timeout)
               for name, url in wiring.mode_urls(cfg, mode).items()]
    checks += [guarded("clock:binance", network.clock_binance, cfg, now_ms, fix="see the binance_rest_url line"),
               guarded("clock:clob", network.clock_clob, cfg, now_ms, fix="see the clob_url line"),
               guarded("geoblock", network.geoblock, geoblock_url, timeout, live)]
    try:
        found, learned = venue_checks(mode, cfg, env, now_ms)
    except Exception as exc:  # noqa: BLE001 (closing the venue, the throw-away dir)
        found, learned = [Check("next_market", FAIL, message(exc))], ()
    if live:
        found.append(guarded("relayer", venue.relayer, env))
    secrets = learned + wiring.known_secrets(env)
    return [replace(c, detail=scrub(c.detail, secrets), fix=scrub(c.fix, secrets)) for c in checks + found]


def exit_code(checks: list[Check]) -> int:
    """0 when no check fails (warnings are fine), else ``EnvironmentFailure``'s code (6)."""
    return EnvironmentFailure.exit_code if any(c.status == FAIL for c in checks) else 0


def render(checks: list[Check]) -> str:
    """One line per check (status, name, detail), its fix indented below it; last, the count of each status."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    lines.append(", ".join(f"{sum(c.status == s for c in checks)} {s}" for s in (OK, WARN, FAIL)))
    return "\n".join(lines)


def as_json(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]
