"""Decision latency: the interval's closing candle coming in on the stream -> the order's bytes at a loopback
fake CLOB, with the real --live adapters (Binance stream and REST, Gamma, the CLOB's market channel, the SDK's
V2 signing, the post), the journal with its one fsync per decision, and the engine, over a few hundred intervals.

The loopback world (``tests/servers/world.py``) runs in a process of its own, so its server threads do
not share the bot's interpreter; the bot runs in this process on the test clock, 300x wall time, so
the intervals come quickly (one a second) while every decision is timed in wall time (sleeps excluded).
The world shares the machine's two cores, which a real venue never does: at 300x its streams push about
330 messages a wall second between them (at 1000x, 1,100, and its bursts at each boundary then show in the
tail). The session is heard as a real one is: the view files, ``bot.log`` and the console's lines. Views:

- ``candle_to_order_bytes``: wall time from the closing candle coming in (the feed's buffer notes when)
  to the fake CLOB having read the whole ``POST /order`` (its own clock, same machine): the settling and
  recording of the interval before, the tick, the fetch, the decision, the journal and the post;
- ``split``: the engine's own account of the decision path (``metrics.jsonl``'s fields): fetch (the port
  calls), indicators, decide (predict, risk, size: the balance and the order, signed in advance), journal
  (the appends from tick to the order's answer, one fsync) and post (the post and its answer);
- ``feed_wait``: the boundary to the candle's arrival, the feed's latency, not the bot's;
- ``floor``: in the same run, one ``fsync`` of a record the size of ``sized`` plus one loopback POST of the
  same order bytes to the same server, sequentially; ``ratio_p50`` is the decision's p50 over the floor's.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fsm_bot import config, engine, journal, logs, wiring
from fsm_bot.adapters.clock import ScaledClock
from fsm_bot.adapters.http import Http
from fsm_bot.adapters.polymarket import orders as order_bodies
from fsm_bot.adapters.polymarket.credentials import Credentials
from fsm_bot.console import Console
from fsm_bot.statedir import JOURNAL, LOG
from tests.servers.world import START_S

ROOT = Path(__file__).resolve().parents[1]
SPEED = 300.0
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


def _session(env: dict[str, str], intervals: int, d: Path) -> dict[str, Any]:
    cfg = config.load(None, env, {"intervals": intervals, "capital_usd": "100000"})
    source = wiring.new_session("live", cfg, speed=SPEED, env={"FSM_BOT_PRIVATE_KEY": KEY}, confirm_live=True).source
    wiring.load_adapters("live")
    synced = wiring.real_clock(cfg, source)
    clock = WakeClock(synced.now_ms(), SPEED)
    clock.wakes = {}
    world = wiring.world("live", cfg, source, d, creds=Credentials(private_key=KEY), clock=clock)
    arrived: dict[int, float] = {}  # the closing candle's wall time of arrival, by the boundary it closes at
    wait_closed = world.feed.wait_closed

    def noting(before_ms: int) -> float | None:
        came = wait_closed(before_ms)
        if came is not None:
            arrived.setdefault(before_ms, came)
        return came

    world.feed.wait_closed = noting  # type: ignore[method-assign]
    world.preflight(START_S * 1000)
    start_ms = wiring.next_start(clock.now_ms() + 1000, cfg.interval_secs)  # the first whole interval after it
    jr = journal.Journal(d / JOURNAL)  # fsynced, as in a real session
    metrics = engine.Metrics(keep=True)
    log = logs.open_log(d / LOG)  # and heard as in a real session: the view files, bot.log, the console's lines
    console = Console(clock.display_ms, io.StringIO(), live=False)
    eng = engine.Engine(engine.begin(jr, "live", cfg, source, start_ms, clock.now_ms(), session="bench"), jr, clock,
                        world.feed, world.venue, log=log, decision_first=True,
                        observers=engine.session_observers(d, world.venue, log, [console, metrics]))
    try:
        final = eng.run()
    finally:
        jr.close()
        world.close()
        logs.close(log)
    skips: dict[str, int] = {}
    for r in final.trades:
        if r.outcome == "SKIPPED":
            skips[r.reason] = skips.get(r.reason, 0) + 1
    presigned = world.venue.presigned
    return {"lines": metrics.intervals, "wakes": clock.wakes, "skips": skips, "arrived": arrived,
            "sized": [r for r in journal.records(d / JOURNAL) if r["trigger"] == "sized"], "clob": cfg.clob_url,
            "signed_in_advance": {"signed": presigned.signed, "taken": presigned.taken, "signed_then": presigned.missed}}


def floor(sized: list[dict[str, Any]], clob_url: str, d: Path) -> list[float]:
    """One fsync of a line as long as each ``sized`` record plus one loopback POST of its order's bytes."""
    http = Http(clob_url, name="floor", timeout_secs=5.0)
    fd = os.open(d / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = []
    try:
        for r in sized:
            line = journal.encode(r)
            body = order_bodies.body_bytes(r["data"]["order"]["payload"])
            started = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            http.post("/floor", body)  # the same server reads the same bytes, and answers 404 at once
            out.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        http.close()
    return out


def decision_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    intervals = 40 if quick else 220
    proc, env = _world()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run = _session(env, intervals, Path(tmp))
            floor_ms = floor(run["sized"], run["clob"], Path(tmp))
        posted = _orders(proc)
    finally:
        proc.stdin.close()
        proc.wait(30)
    traded = [m for m in run["lines"] if m["outcome"] != "SKIPPED"]
    start_of = {o["hash"]: int(o["slug"].rsplit("-", 1)[1]) * 1000 for o in posted}
    from_candle = [(o["received_s"] - run["arrived"][start_of[o["hash"]]]) * 1000 for o in posted
                   if start_of[o["hash"]] in run["arrived"]]
    from_boundary = [(o["received_s"] - run["wakes"][start_of[o["hash"]]]) * 1000 for o in posted
                     if start_of[o["hash"]] in run["wakes"]]
    split = {name: percentiles([sum(m.get(f"{f}_ms", 0.0) for f in fields) for m in traded])
             for name, fields in (("fetch", ("fetch",)), ("indicators", ("indicators",)),
                                  ("decide", ("predict", "risk", "size")), ("journal", ("journal",)),
                                  ("post", ("submit",)))}
    e2e, bare = percentiles(from_candle), percentiles(floor_ms)
    return {"intervals": intervals, "traded": intervals - sum(run["skips"].values()), "skipped": run["skips"],
            "speed": SPEED, "candle_to_order_bytes": e2e, "split": split,
            "feed_wait": percentiles([m.get("feed_wait_ms", 0.0) for m in traded]),
            "decision": percentiles([m["decision_ms"] for m in traded]),
            "boundary_to_order_bytes": percentiles(from_boundary) if from_boundary else None,
            "floor": {**bare, "what": "one fsync + one loopback POST of the same bytes"},
            "ratio_p50": round(e2e["p50_ms"] / bare["p50_ms"], 2), "signed_in_advance": run["signed_in_advance"]}


if __name__ == "__main__":
    print(json.dumps(decision_bench(None, "--quick" in sys.argv), indent=2))
