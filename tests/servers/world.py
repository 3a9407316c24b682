"""The whole outside world on loopback: Binance (REST and the kline stream), CoinGecko, Polymarket's
Gamma and CLOB (and, for --live, its trading side), all on one fake clock that starts a little before
the session's first interval, stands still until the bot first asks Binance for the time, and then runs
``speed`` times faster than wall time.

``World.bot(...)`` runs the real ``fsm-bot`` command in a new process against them, with the test clock
(``--start T --speed X``), so a session of 18 five-minute intervals takes seconds.

``python -m tests.servers.world [--speed X] [--live]`` serves the world from a process of its own: it
prints the ``FSM_BOT_*`` environment to point a bot at it (one JSON line), then answers ``orders`` on
stdin with the orders the fake CLOB accepted (one JSON line), and stops at end of input.
"""

from __future__ import annotations

import json
from decimal import Decimal
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fsm_bot.adapters.sim import BUNDLED, load_candles
from fsm_bot.config import env_name
from tests.servers.base import FakeTime, JsonServer
from tests.servers.polymarket_trading import install_trading
from tests.servers.binance import FakeBinance, FakeCoinGecko
from tests.servers.polymarket import FakePolymarket

ROOT = Path(__file__).resolve().parent.parent
START_S = 1710338400  # 2024-03-13T14:00:00Z, inside the bundled candles
START_MS = START_S * 1000
LEAD_SECS = 20  # the servers' clock starts this long before the first interval
TEST_SETTINGS = {"http_timeout_secs": "0.5", "ws_stale_secs": "120"}
CANDLES = load_candles(BUNDLED)


@dataclass
class World:
    speed: float
    time: FakeTime
    binance: FakeBinance
    coingecko: FakeCoinGecko
    polymarket: FakePolymarket
    trading: Any = None
    extra_env: dict[str, str] = field(default_factory=dict)
    timers: list[threading.Thread] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    pending: list[tuple[int, Callable[[], Any]]] = field(default_factory=list)  # (when_ms, action) not yet done
    pending_lock: threading.Lock = field(default_factory=threading.Lock)

    def urls(self) -> dict[str, str]:
        urls = {**self.binance.urls(), **self.coingecko.urls(), **self.polymarket.urls()}
        if self.trading is not None:
            urls |= self.trading.urls()
        return urls

    def env(self) -> dict[str, str]:
        settings = {**TEST_SETTINGS, **self.urls()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("FSM_BOT_")}
        env |= {env_name(k): v for k, v in settings.items()} | self.extra_env
        env["PYTHONPATH"] = str(ROOT)
        return env

    def bot(self, *args: str, cwd: Path) -> subprocess.Popen:
        """``fsm-bot ARGS`` in a new process, against this world."""
        return subprocess.Popen([sys.executable, "-m", "fsm_bot.cli", *args], cwd=cwd, env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start_args(self, mode: str, state: Path, *extra: str) -> list[str]:
        return ["start", f"--{mode}", "--state-dir", str(state), "--start", str(START_S), "--speed",
                str(self.speed), *extra]

    def run(self, *args: str, cwd: Path, timeout: float = 240) -> tuple[int, str, str]:
        proc = self.bot(*args, cwd=cwd)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err

    def at(self, interval: int, offset_secs: float, action: Callable[[], Any]) -> None:
        """Do ``action`` when the fake clock reaches ``offset_secs`` into interval ``interval`` (1-based): on a
        timer thread, and at the latest before any of the world's HTTP servers handles a request at or after
        that moment. At 300x a second is 3 ms of wall time, so a timer woken late on a busy machine would
        otherwise let the very request the fault was armed for (the next interval's order) slip past it."""
        when_ms = START_MS + (interval - 1) * 300_000 + int(offset_secs * 1000)
        with self.pending_lock:
            self.pending.append((when_ms, action))

        def wait_then_act() -> None:
            while not self.stopped.is_set():
                left_ms = when_ms - self.time.now_ms()
                if left_ms <= 0:
                    self.run_due()
                    return
                self.stopped.wait(min(left_ms / 1000 / self.speed, 0.01))

        thread = threading.Thread(target=wait_then_act, daemon=True)
        thread.start()
        self.timers.append(thread)

    def run_due(self) -> None:
        """Do each pending action whose moment has come, once, in the order they were asked for; a request
        that arrives meanwhile waits until they are done."""
        with self.pending_lock:  # taken even when nothing is pending: a request waits for the actions under way
            now = self.time.now_ms()
            due = [p for p in self.pending if p[0] <= now]
            self.pending[:] = [p for p in self.pending if p[0] > now]
            for _, action in due:
                action()

    def http_servers(self) -> list[JsonServer]:
        parts = [self.binance, self.coingecko, self.polymarket] + ([self.trading] if self.trading is not None else [])
        return [v for part in parts for v in vars(part).values() if isinstance(v, JsonServer)]

    def stop(self) -> None:
        self.stopped.set()
        for t in self.timers:
            t.join()
        for server in (self.binance, self.coingecko, self.polymarket):
            server.stop()
        if self.trading is not None:
            self.trading.stop()


def world(speed: float = 300.0, live: bool = False, balance_usd: Decimal = Decimal(1000), **polymarket: Any) -> World:
    time = FakeTime(START_MS - LEAD_SECS * 1000, speed, held=True)
    w = World(speed=speed, time=time, binance=FakeBinance(CANDLES, time).start(),
              coingecko=FakeCoinGecko(CANDLES, time).start(),
              polymarket=FakePolymarket(CANDLES, time, **polymarket).start())
    if live:
        w.trading = install_trading(w.polymarket, time, balance_usd=balance_usd)
    for server in w.http_servers():
        server.before_request = w.run_due
    return w


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()] if path.exists() else []


def serve(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tests.servers.world", description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=300.0)
    ap.add_argument("--live", action="store_true", help="also the trading side (orders, relayer, Data API)")
    ap.add_argument("--balance", type=Decimal, default=Decimal(1000), help="the fake wallet's pUSD")
    args = ap.parse_args(argv)
    w = world(args.speed, live=args.live, balance_usd=args.balance)
    print(json.dumps({env_name(k): v for k, v in {**TEST_SETTINGS, **w.urls()}.items()}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "orders" and w.trading is not None:
                print(json.dumps(w.trading.orders, default=str), flush=True)
    finally:
        w.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
