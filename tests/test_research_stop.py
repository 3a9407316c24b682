"""A backtest is stopped by Ctrl-C or SIGTERM like every other command (exit 130, at once, its workers gone),
and its local workers end when the process that started them is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from fsm_bot.adapters.sim import BUNDLED

ROOT = Path(__file__).resolve().parents[1]
DAYS = 4 * 86_400_000


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """The bundled four days laid end to end eight times: a month and more, two month chunks, ~10 s of work."""
    raw = pl.read_parquet(BUNDLED)
    ms = raw.get_column("open_time").dt.epoch("ms") if raw.schema["open_time"] != pl.Int64 else raw["open_time"]
    tiles = [raw.with_columns(open_time=(ms + k * DAYS).cast(pl.Datetime("ms", "UTC")).cast(raw.schema["open_time"]))
             for k in range(8)]
    path = tmp_path_factory.mktemp("long") / "tiled.parquet"
    pl.concat(tiles).write_parquet(path)
    return path


def start(data: Path, out: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fsm_bot", "backtest", "--data", str(data), "--workers",
                             str(workers), "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found - {pid}


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_workers(proc: subprocess.Popen, n: int, within: float = 60.0) -> set[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        kids = descendants(proc.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.1)
    pytest.fail(f"the backtest did not start {n} processes (exit {proc.poll()})")


def gone(pids: set[int], within: float) -> set[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the worker processes")
@pytest.mark.parametrize("workers, sig", [(1, signal.SIGINT), (2, signal.SIGINT), (2, signal.SIGTERM)])
def test_a_stop_ends_a_backtest_with_130_and_its_workers(long_file, tmp_path, workers, sig):
    proc = start(long_file, tmp_path / "bt", workers)
    kids = wait_for_workers(proc, 2) if workers > 1 else set()
    time.sleep(1.0)  # at work on the chunks
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "bt" / "aggregate.json").exists()  # no result is written from part of the span
    assert gone(kids, within=10) == set()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the worker processes")
def test_workers_end_when_their_parent_is_killed(long_file, tmp_path):
    proc = start(long_file, tmp_path / "bt", 2)
    kids = wait_for_workers(proc, 3)  # the fork server and two workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert gone(kids, within=15) == set()
