"""Decision latency: interval start -> the order's bytes at a loopback fake CLOB, with the real --live
adapters (Binance feed, Gamma and CLOB reads, the SDK's V2 signing, the post), the fsynced journal and
the engine, over a few hundred intervals.

The loopback world (``tests/servers/world.py``) runs in a process of its own, so its server threads do
not share the bot's interpreter; the bot runs in this process on the test clock, 1000x wall time, so
the intervals come quickly while every decision is timed in wall time (sleeps excluded). Two views:

- ``stages``: the engine's own split of the decision path (``metrics.jsonl``'s fields): fetch (the port
  calls: candles, depth, market and both books), indicators, predict, risk, size (balance, signing),
  journal (the fsynced appends from tick to submitted) and submit (the post and its answer);
- ``interval_start_to_order_bytes``: wall time from the clock reaching the interval start to the fake
  CLOB having read the whole ``POST /order`` (its own clock, same machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fsm_bot import config, engine, journal, wiring
from fsm_bot.adapters.clock import ScaledClock
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.statedir import JOURNAL
from tests.servers.world import START_S

ROOT = Path(__file__).resolve().parents[1]
SPEED = 1000.0
KEY = "0x" + "7e" * 32  # a throwaway key the fake CLOB knows nothing of beforehand


class WakeClock(ScaledClock):
    """The test clock, noting the wall time at which each sleep to an interval start ended."""

    wakes: dict[int, float]

    def sleep_until(self, t_ms: int) -> None:
        super().sleep_until(t_ms)
        if t_ms % 300_000 == 0:
            self.wakes.setdefault(t_ms, time.time())


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.array(values)
    return {"n": len(arr), "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p99_ms": round(float(np.percentile(arr, 99)), 2), "max_ms": round(float(arr.max()), 2)}


def _world() -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.servers.world", "--live", "--speed", str(SPEED),
                             "--balance", "100000"],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def _orders(proc: subprocess.Popen) -> list[dict[str, Any]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("orders\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def _session(env: dict[str, str], intervals: int, d: Path) -> tuple[list[dict[str, Any]], dict[int, float], dict[str, int]]:
    cfg = config.load(None, env, {"intervals": intervals, "capital_usd": "100000"})
    source = wiring.new_session("live", cfg, speed=SPEED, env={"FSM_BOT_PRIVATE_KEY": KEY}, confirm_live=True).source
    wiring.load_adapters("live")
    synced = wiring.real_clock(cfg, source)
    clock = WakeClock(synced.now_ms(), SPEED)
    clock.wakes = {}
    world = wiring.world("live", cfg, source, d, creds=Credentials(private_key=KEY), clock=clock)
    world.preflight(START_S * 1000)
    start_ms = wiring.next_start(clock.now_ms() + 1000, cfg.interval_secs)  # the first whole interval after it
    jr = journal.Journal(d / JOURNAL)  # fsynced, as in a real session
    metrics = engine.Metrics(keep=True)
    eng = engine.Engine(engine.begin(jr, "live", cfg, source, start_ms, clock.now_ms(), session="bench"), jr, clock,
                        world.feed, world.venue, observers=[metrics])
    try:
        final = eng.run()
    finally:
        jr.close()
        world.close()
    skips: dict[str, int] = {}
    for r in final.trades:
        if r.outcome == "SKIPPED":
            skips[r.reason] = skips.get(r.reason, 0) + 1
    return metrics.intervals, clock.wakes, skips


def decision_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    intervals = 40 if quick else 220
    proc, env = _world()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lines, wakes, skips = _session(env, intervals, Path(tmp))
        orders = _orders(proc)
    finally:
        proc.stdin.close()
        proc.wait(30)
    traded_lines = [m for m in lines if m["outcome"] != "SKIPPED"]
    stages = {stage: percentiles([m.get(f"{stage}_ms", 0.0) for m in traded_lines])
              for stage in ("fetch", "indicators", "predict", "risk", "size", "journal", "submit")}
    e2e = [(o["received_s"] - wakes[int(o["slug"].rsplit("-", 1)[1]) * 1000]) * 1000 for o in orders]
    return {"intervals": intervals, "traded": intervals - sum(skips.values()), "skipped": skips, "speed": SPEED,
            "decision": percentiles([m["decision_ms"] for m in traded_lines]), "stages": stages,
            "interval_start_to_order_bytes": percentiles(e2e)}


if __name__ == "__main__":
    print(json.dumps(decision_bench(None, "--quick" in sys.argv), indent=2))
