"""Candles as the machine carries them (``fsm_bot.candles``): numpy columns from every feed, journaled as lists
and read back equal, and the bundled sample replayed from its numpy copy, so that a ``--sim`` session reaches
its first action without importing polars."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import orjson
import polars as pl
from hypothesis import given, strategies as st

from fsm_bot import codec
from fsm_bot.adapters import sim
from fsm_bot.candles import BUNDLED, BUNDLED_COLUMNS, Columns, digest, load_candles
from fsm_bot.observed import FetchSeen
from fsm_bot.ports import CANDLE_COLUMNS


def test_the_bundled_columns_are_the_parquet_as_read_and_carry_its_digest():
    frame = load_candles(BUNDLED)
    with np.load(BUNDLED_COLUMNS) as kept:
        assert str(kept["parquet_sha256"]) == digest(BUNDLED)
        for name in CANDLE_COLUMNS:
            assert kept[name].dtype == (np.int64 if name == "open_time" else np.float64)
            assert np.array_equal(kept[name], frame.get_column(name).to_numpy()), name


def test_a_replay_of_the_sample_reads_its_columns_and_of_another_digest_the_parquet():
    kept, read = sim.replay(BUNDLED), sim.replay(BUNDLED, "0" * 64)
    assert kept._frame is None and read._frame is not None  # the copy only while it is of this very file
    assert kept.columns.equals(read.columns) and len(kept.columns) == 5760
    t = kept.first_ms + 500 * 60_000
    assert kept.candles(t, 100).equals(read.frame.filter(pl.col("open_time") < t - 60_000 + 1).tail(100))


def test_a_sim_session_reaches_its_first_action_without_polars(tmp_path):
    crashed = tmp_path / "crashed"
    env = {**os.environ, "FSM_BOT_FAILPOINT": "journal.appended:30"}
    subprocess.run([sys.executable, "-m", "fsm_bot", "start", "--sim", "--state-dir", str(crashed)], env=env,
                   capture_output=True, check=False)
    for state_dir in (tmp_path / "fresh", crashed):  # a new session and a resumed one
        command = ["start", "--sim"] if state_dir.name == "fresh" else ["resume"]
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "fsm_bot", *command, "--state-dir",
                               str(state_dir)], env={**os.environ, "FSM_BOT_FAILPOINT": "journal.appended:1"},
                              capture_output=True, text=True)
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        assert done.returncode == -9, done.stderr[-2000:]  # killed at its first record: it got there
        assert {"numpy", "fsm_bot.engine", "fsm_bot.adapters.sim"} <= imported
        # (TA-Lib's attempt, refused at once, shows as a bare "polars"; polars itself loads dozens of modules)
        assert not {name for name in imported if name.startswith("polars.")}, state_dir.name


SCHEMA = {"open_time": pl.Int64, **{c: pl.Float64 for c in CANDLE_COLUMNS[1:]}}
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
numbers = st.one_of(finite, st.just(math.nan))
rows = st.lists(st.tuples(st.integers(0, 2**52), *[numbers] * 6), max_size=30)


@given(rows)
def test_columns_go_through_a_record_and_come_back_equal(table):
    columns = Columns.rows(table)
    line = orjson.dumps(codec.encode(FetchSeen(candles=columns)))  # as the journal writes it: a NaN as null
    back = codec.decode_as(FetchSeen, orjson.loads(line))
    assert isinstance(back.candles, Columns) and back.candles.equals(columns)
    assert back.candles.open_time.dtype == np.int64 and back.candles.close.dtype == np.float64
    assert back == FetchSeen(candles=columns)


@given(rows)
def test_columns_from_rows_equal_the_frame_of_the_same_rows(table):
    frame = pl.DataFrame(table, schema=SCHEMA, orient="row")
    assert Columns.rows(table).equals(frame) and Columns.of(frame).equals(Columns.rows(table))
    if table:
        assert int(Columns.rows(table).open_time[-1]) == table[-1][0]


def test_a_trading_process_loads_its_adapters_without_polars():
    code = ("import sys; from fsm_bot import runner, watchers, wiring; wiring.load_adapters('paper'); "
            "import fsm_bot.adapters.binance.buffer; print(sorted(m for m in sys.modules if m.startswith('polars')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
