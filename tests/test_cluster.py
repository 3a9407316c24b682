"""``fsm-bot backtest --cluster``: the month chunks run on a real Dask scheduler with two workers, started
here as the commands a user runs (``dask scheduler``, ``dask worker``), every process on 127.0.0.1; the
frames equal those of the same backtest run in this process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fsm_bot import wiring
from fsm_bot.config import Config
from fsm_bot.research import chunks

distributed = pytest.importorskip("distributed")

DATA = Path(__file__).resolve().parent / "data" / "btcusdt_1m_2023-04-30_month_end.parquet"
DASK = str(Path(sys.executable).with_name("dask"))


def stop(procs: list[subprocess.Popen]) -> None:
    """The workers first, then the scheduler (a worker whose scheduler went first waits out its reconnect
    timeout, 20 s)."""
    for group in (procs[1:], procs[:1]):
        for proc in group:
            proc.terminate()
        for proc in group:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a Dask scheduler with two single-thread workers, all bound to 127.0.0.1."""
    d = tmp_path_factory.mktemp("dask")
    info = d / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], cwd=d, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for _ in range(2):
            procs.append(subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                           "--no-dashboard", "--no-nanny", "--local-directory", str(d)], cwd=d,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            assert all(w.startswith("tcp://127.0.0.1:") for w in client.scheduler_info()["workers"])
        yield address
    finally:
        stop(procs)


@pytest.fixture(scope="module")
def local():
    source, feed = wiring.replay_source(DATA)
    months = chunks.split(*chunks.span(feed.first_ms, feed.last_ms, Config(), None, None))
    return source, months, chunks.run(source, Config(), months, workers=1, feed=feed)


def test_the_chunks_run_on_the_cluster_equal_those_run_here(scheduler, local):
    source, months, (sessions, decisions) = local
    assert len(months) == 2
    on_cluster = chunks.run(source, Config(), months, cluster=scheduler)
    assert_frame_equal(on_cluster[0], sessions)
    assert_frame_equal(on_cluster[1], decisions)
    with distributed.Client(scheduler, timeout="30s") as client:
        loaded = client.run(lambda: len(chunks._FEEDS))  # a worker that ran a chunk holds the candles
    assert sum(loaded.values()) >= 1


def test_the_command_on_the_cluster_writes_what_it_writes_here(scheduler, fsm, tmp_path):
    for name, flags in (("here", ["--workers", "1"]), ("cluster", ["--cluster", scheduler])):
        result = fsm("backtest", "--data", DATA, *flags, "--out", tmp_path / name, "--json",
                     "--decisions", tmp_path / f"{name}.parquet")
        assert result.code == 0, result.err
    summaries = [json.loads((tmp_path / name / "aggregate.json").read_text()) for name in ("here", "cluster")]
    for s in summaries:
        del s["seconds"], s["intervals_per_second"]
    assert summaries[0] == summaries[1]
    assert_frame_equal(pl.read_parquet(tmp_path / "here.parquet"), pl.read_parquet(tmp_path / "cluster.parquet"))
