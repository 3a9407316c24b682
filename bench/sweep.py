"""The default sweep (``sweeps/tiered.toml``) with walk-forward, run by the installed ``fsm-bot sweep`` in a new
folder (so nothing is read back) on every core: trials, month chunks, wall seconds, trial-chunks per second,
and what that rate makes of the whole data file's sweep (trials x its months) against the 10-minute target;
also the CPU seconds a trial-chunk took in its worker, and the wall time that makes on cores no one else
uses (a shared machine's wall time is mostly the others').

Over the data's first two months (train one, test the next; ``--quick``: the 15 hours around a month's end
in ``tests/data``, two small chunks) rather than all of it: the rate is per trial-chunk, and a chunk is a
month whichever months they are."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from fsm_bot.research.chunks import next_month

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "sweeps" / "tiered.toml"
SMALL = ROOT / "tests" / "data" / "btcusdt_1m_2023-04-30_month_end.parquet"
TARGET_S = 600


def months_of(data: Path) -> tuple[int, int]:
    """(months the file spans, the ms at which its third month starts)."""
    times = pl.read_parquet(data, columns=["open_time"]).get_column("open_time")
    first, last = (int(t.replace(tzinfo=timezone.utc).timestamp() * 1000) for t in (times.min(), times.max()))
    n, at = 0, first
    while at <= last:
        at, n = next_month(at), n + 1
    return n, next_month(next_month(first))


def sweep_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    from bench.figures import EXE
    data = SMALL if quick or data is None else data
    months, third = months_of(data)
    span = [] if quick else ["--to", datetime.fromtimestamp(third / 1000 - 18 * 300, tz=timezone.utc)
                             .strftime("%Y-%m-%dT%H:%M:%SZ")]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [EXE, "sweep", "--grid", str(GRID), "--data", str(data), "--train", "1mo", "--test", "1mo",
               "--out", str(Path(tmp) / "sweep"), "--json", *span]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"fsm-bot sweep failed ({done.returncode}): {done.stderr[-500:]}")
    s = json.loads(done.stdout)
    rate = s["trial_chunks"] / wall
    full = s["trials"] * months
    cpu = s["cpu_s_per_trial_chunk"]
    return {"data": str(data), "span": s["span"], "trials": s["trials"], "chunks": s["chunks"],
            "trial_chunks": s["trial_chunks"], "workers": s["workers"], "wall_s": round(wall, 1),
            "sweep_s": s["seconds"], "trial_chunks_per_s": round(rate, 4), "cpu_s_per_trial_chunk": cpu,
            "data_months": months, "full_trial_chunks": full, "full_wall_s_projected": round(full / rate),
            "full_wall_s_on_idle_cores": round(full * cpu / s["workers"]), "target_full_s": TARGET_S}
