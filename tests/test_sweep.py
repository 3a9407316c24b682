"""``fsm-bot sweep``: the grid file, trial keys, the walk-forward's choices and windows, resume after SIGKILL,
workers, and Optuna's seeded trials. The data is 15 hours of the dev file around a month's end
(``tests/data/btcusdt_1m_2023-04-30_month_end.parquet``), so a sweep has two month chunks of a few
sessions each."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fsm_bot import cli
from fsm_bot.config import Config
from fsm_bot.errors import ConfigError
from fsm_bot.research import grid as grids, metrics, walkforward as wf
from fsm_bot.research.chunks import Chunk, next_month, split

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "btcusdt_1m_2023-04-30_month_end.parquet"
EXE = Path(sys.executable).with_name("fsm-bot")
GRID = """[fixed]
intervals = 6
[grid]
lean_midline = [45, 55]
max_entry_price = [0.51, 0.60]
"""
SEARCH = """[fixed]
intervals = 6
[search]
lean_midline = {low = 40, high = 60, step = 1}
max_entry_price = {low = 0.49, high = 0.62, step = 0.01}
rsi_period = {low = 5, high = 28}
"""


def sweep(tmp: Path, *flags: str, grid: str = GRID, out: str = "out") -> tuple[int, dict, str]:
    """``fsm-bot sweep --json`` in-process: (exit code, its summary, stderr)."""
    (tmp / "grid.toml").write_text(grid)
    argv = ["sweep", "--grid", str(tmp / "grid.toml"), "--data", str(DATA), "--out", str(tmp / out), "--json",
            *flags]
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, json.loads(stdout.getvalue()) if code == 0 else {}, stderr.getvalue()


def stored(folder: Path) -> dict[str, int]:
    """The trial-chunk results a sweep folder holds, by path, with their modification times."""
    return {str(p): p.stat().st_mtime_ns for p in (folder / "chunks").glob("*/*.json") if p.name != "config.json"}


@pytest.fixture(scope="module")
def walked(tmp_path_factory) -> tuple[Path, dict, pl.DataFrame]:
    """A 4-trial grid walked forward: 1-month train, 1-month test, one worker."""
    tmp = tmp_path_factory.mktemp("walked")
    code, summary, err = sweep(tmp, "--train", "1mo", "--test", "1mo", "--workers", "1")
    assert code == 0, err
    return tmp / "out", summary, pl.read_parquet(tmp / "out" / "sweep.parquet")


def test_the_grid_is_every_combination_over_the_fixed_settings(tmp_path):
    (tmp_path / "g.toml").write_text(GRID)
    g = grids.load(tmp_path / "g.toml")
    trials = g.trials()
    assert g.varied == ["lean_midline", "max_entry_price"]
    assert [(c.lean_midline, c.max_entry_price) for c in trials] == [
        (45.0, Decimal("0.51")), (45.0, Decimal("0.6")), (55.0, Decimal("0.51")), (55.0, Decimal("0.6"))]
    assert trials[0] == Config(intervals=6, lean_midline=45.0, max_entry_price=Decimal("0.51"))


def test_the_default_grid_sweeps_at_least_50_trials_of_the_tiered_policy():
    g = grids.load(ROOT / "sweeps" / "tiered.toml")
    trials = g.trials()
    assert len({grids.trial_key(c, "") for c in trials}) == len(trials) >= 50
    assert {c.policy for c in trials} == {"tiered"} and Config() in trials
    assert set(g.space()) == set(g.grid)


@pytest.mark.parametrize("text, names", [
    ("[grid]\nmax_entry_pryce = [0.5]\n", "max_entry_pryce"),
    ("[grid]\nmax_entry_price = [0.5, 1.5]\n", "max_entry_price"),
    ("[grid]\nintervals = [6, \"six\"]\n", "intervals"),
    ("[grid]\nrsi_period = 14\n", "rsi_period"),
    ("[grid]\nrsi_period = []\n", "rsi_period"),
    ("[fixed]\nmacd_slow = 20\n[grid]\nmacd_fast = [12, 24]\n", "macd_fast"),
    ("[fixed]\nfloor_fraction = 2\n[grid]\nseed = [1]\n", "floor_fraction"),
    ("[search]\nrsi_oversold = {low = 20, high = 80}\n", "rsi_oversold"),
    ("[search]\nmax_entry_price = {low = 0.5, high = 0.6}\n", "max_entry_price"),
    ("[search]\nlean_midline = {low = 40, high = 60, step = 7}\n", "lean_midline"),
    ("[search]\nlean_midlin = {low = 40, high = 60}\n", "[search] unknown setting 'lean_midlin'"),
    ("[grid]\ninterval_minutes = [5, 15]\n", "interval_minutes"),
    ("[grids]\nseed = [1]\n", "grids"),
    ("[fixed]\nseed = 1\n", "nothing to vary"),
    ("x = [\n", "--grid"),
])
def test_a_bad_grid_stops_the_sweep_naming_the_field(tmp_path, text, names):
    code, _, err = sweep(tmp_path, grid=text)
    assert code == 2 and names in err and "Traceback" not in err, err
    assert not (tmp_path / "out" / "chunks").exists()


@pytest.mark.parametrize("flags, names", [(["--train", "2mo"], "--train"), (["--train", "2w"], "--train"),
                                          (["--test", "1mo"], "--test"), (["--workers", "0"], "--workers"),
                                          (["--trials", "0"], "--trials"), (["--from", "yesterday"], "--from"),
                                          (["--workers", "2", "--cluster", "tcp://127.0.0.1:9"], "--cluster")])
def test_a_bad_flag_stops_the_sweep_naming_it(tmp_path, flags, names):
    code, _, err = sweep(tmp_path, *flags)
    assert code == 2 and names in err and "Traceback" not in err, err


def test_a_grid_of_search_ranges_only_asks_for_trials(tmp_path):
    code, _, err = sweep(tmp_path, grid=SEARCH)
    assert code == 2 and "--trials" in err, err


def test_a_trials_key_is_a_digest_of_its_whole_config_and_of_the_data():
    assert grids.trial_key(Config(), "0" * 64) == "e7118b5c57247ec2"
    assert grids.trial_key(Config(), "0" * 64) == grids.trial_key(Config.from_json(Config().to_json()), "0" * 64)
    assert grids.trial_key(Config(), "1" * 64) != grids.trial_key(Config(), "0" * 64)
    assert grids.trial_key(Config(stale_secs=121), "0" * 64) != grids.trial_key(Config(), "0" * 64)
    spelled = Config(max_entry_price=Decimal("0.6"), floor_fraction=Decimal("7E-1"))
    assert grids.trial_key(spelled, "0" * 64) == grids.trial_key(Config(), "0" * 64)  # the same settings


def test_the_best_train_trial_is_the_one_whose_train_chunks_score_highest(walked):
    _, summary, frame = walked
    chunk_rows = frame.filter(pl.col("kind") == "chunk")
    train = summary["walkforward"]["windows"][0]["train"]
    scores = {r["trial_index"]: r["pnl"] / r["sessions"]
              for r in chunk_rows.filter(pl.col("chunk") == train).iter_rows(named=True)}
    assert len(set(scores.values())) > 1  # the trials differ, so the choice means something
    assert summary["walkforward"]["windows"][0]["trial_index"] == max(scores, key=lambda i: (scores[i], -i))
    chosen = frame.filter(pl.col("kind") == "train").row(0, named=True)
    assert chosen["objective"] == pytest.approx(max(scores.values()))


def test_the_out_of_sample_row_holds_only_the_test_windows_chunk(walked):
    _, summary, frame = walked
    window = summary["walkforward"]["windows"][0]
    assert (window["train"], window["test"]) == ("2023-04", "2023-05")
    test = frame.filter(pl.col("kind") == "test").row(0, named=True)
    same = frame.filter((pl.col("kind") == "chunk") & (pl.col("trial") == test["trial"]) &
                        (pl.col("chunk") == "2023-05")).row(0, named=True)
    assert test["first"] == "2023-05-01T00:00:00Z" and test["first_start"] >= "2023-05-01T00:00:00Z"
    assert test["end"] == "2023-05-01T06:00:00Z" and test["last_start"] < test["end"]
    assert {k: test[k] for k in ("sessions", "trades", "wins", "pnl")} == {k: same[k] for k in
                                                                           ("sessions", "trades", "wins", "pnl")}
    train = frame.filter(pl.col("kind") == "train").row(0, named=True)
    assert train["last_start"] < "2023-05-01T00:00:00Z"


def synthetic(months: int) -> tuple[list[Chunk], list[wf.Trial], wf.Results]:
    """Month chunks from 2023-01 whose results say which month they are (sessions = 10^month, so a sum names
    its months) and which trial wins there: trial 0 before the fourth month, trial 1 from it on."""
    first = end = 1672531200000
    for _ in range(months):
        end = next_month(end)
    chunks = split(first, end)
    trials = [wf.Trial(i, f"t{i}", Config()) for i in range(2)]
    empty = {k: 0 for k in metrics.COUNTS} | {k: 0.0 for k in metrics.SUMS}
    return chunks, trials, {
        (t.key, c.label): empty | {"sessions": 10 ** m, "pnl": float(10 ** m if (m >= 3) == (t.index == 1) else
                                                                      -10 ** m),
                                   "first_start": wf.iso(c.first_ms), "last_start": wf.iso(c.end_ms - 1000)}
        for t in trials for m, c in enumerate(chunks)}


def test_windows_roll_by_the_test_length_and_every_test_row_is_its_own_months():
    chunks, trials, results = synthetic(7)
    windows = wf.windows(chunks, 3, 2)
    assert [(wf.label(w.train), wf.label(w.test)) for w in windows] == [
        ("2023-01..2023-03", "2023-04..2023-05"), ("2023-03..2023-05", "2023-06..2023-07")]
    rows = wf.walk(results, trials, windows, "pnl")
    for w, train, test in zip(windows, rows[::2], rows[1::2]):
        assert (train["kind"], test["kind"]) == ("train", "test") and train["trial"] == test["trial"]
        assert test["sessions"] == sum(10 ** chunks.index(c) for c in w.test)  # its own months, no other
        assert train["sessions"] == sum(10 ** chunks.index(c) for c in w.train)
        assert test["first"] == wf.iso(w.test[0].first_ms) and test["end"] == wf.iso(w.test[-1].end_ms)
        assert train["end_ms"] == test["first_ms"]
    assert [r["trial_index"] for r in rows[::2]] == [0, 1]  # months 0-2: trial 0; months 2-4: month 4 decides
    assert rows[1]["pnl"] == -(10 ** 3 + 10 ** 4)  # trial 0, chosen on months 0-2, loses months 3 and 4


def test_a_tie_goes_to_the_trial_listed_first():
    chunks, trials, results = synthetic(2)
    same = {k: v | {"pnl": 0.0} for k, v in results.items()}
    assert wf.best(same, trials[::-1], chunks[:1], "pnl")[0].index == 0


def test_a_sweep_killed_mid_way_continues_without_rerunning_what_was_done(tmp_path, walked):
    (tmp_path / "grid.toml").write_text(GRID)
    argv = [str(EXE), "sweep", "--grid", str(tmp_path / "grid.toml"), "--data", str(DATA), "--out",
            str(tmp_path / "out"), "--train", "1mo", "--test", "1mo", "--workers", "1", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(stored(tmp_path / "out")) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored(tmp_path / "out")
    assert 2 <= len(before) < 8
    code, summary, err = sweep(tmp_path, "--train", "1mo", "--test", "1mo", "--workers", "1")
    assert code == 0, err
    assert (summary["reused"], summary["evaluated"]) == (len(before), 8 - len(before))
    after = stored(tmp_path / "out")
    assert len(after) == 8 and all(after[p] == t for p, t in before.items())  # read back, not written again
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "sweep.parquet"), walked[2])
    code, summary, _ = sweep(tmp_path, "--train", "1mo", "--test", "1mo", "--workers", "1")
    assert (summary["reused"], summary["evaluated"]) == (8, 0)


def test_two_workers_give_what_one_gives(tmp_path, walked):
    code, summary, err = sweep(tmp_path, "--train", "1mo", "--test", "1mo", "--workers", "2")
    assert code == 0, err
    assert summary["evaluated"] == 8 and summary["workers"] == 2
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "sweep.parquet"), walked[2])
    assert summary["walkforward"]["summary"] == walked[1]["walkforward"]["summary"]


def test_optuna_trials_are_the_same_for_the_same_seed(tmp_path):
    runs = [sweep(tmp_path, "--trials", "4", "--search-seed", "7", "--train", "1mo", "--workers", "1",
                  grid=SEARCH, out=out) for out in ("a", "b")]
    assert [code for code, _, _ in runs] == [0, 0], runs[0][2]
    (_, a, _), (_, b, _) = runs
    assert a["evaluated"] == b["evaluated"] > 0 and a["search"] == b["search"] == {
        "trials_asked": 4, "seed": 7, "tuned_on": "2023-04"}
    frames = [pl.read_parquet(tmp_path / out / "sweep.parquet") for out in ("a", "b")]
    assert_frame_equal(*frames)
    assert frames[0].filter(pl.col("kind") == "trial").get_column("config").n_unique() == a["trials"] > 1
    again = sweep(tmp_path, "--trials", "4", "--search-seed", "7", "--train", "1mo", "--workers", "1", grid=SEARCH,
                  out="a")[1]
    assert (again["evaluated"], again["reused"]) == (0, a["trial_chunks"])


def test_a_search_value_off_its_step_is_never_drawn(tmp_path):
    (tmp_path / "s.toml").write_text(SEARCH)
    g = grids.load(tmp_path / "s.toml")
    assert g.search["max_entry_price"].values()[:3] == [Decimal("0.49"), Decimal("0.50"), Decimal("0.51")]
    with pytest.raises(ConfigError, match="max_entry_price"):
        g.trial({"max_entry_price": Decimal("1.2")})


def test_a_dask_cluster_gives_what_one_worker_gives(tmp_path, walked):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        code, summary, err = sweep(tmp_path, "--train", "1mo", "--cluster", cluster.scheduler_address)
    assert code == 0, err
    assert (summary["evaluated"], summary["workers"]) == (8, "cluster")
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "sweep.parquet"), walked[2])


def test_the_walkforward_script_writes_its_page_from_a_sweep(tmp_path):
    (tmp_path / "grid.toml").write_text(GRID.replace("[45, 55]", "[45, 50]"))  # the defaults are a trial
    out = tmp_path / "docs" / "WALKFORWARD.md"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "walkforward_report.py"), "--data", str(DATA),
                           "--grid", str(tmp_path / "grid.toml"), "--work", str(tmp_path / "work"), "--out", str(out),
                           "--train", "1mo", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    summary = json.loads((tmp_path / "work" / "summary.json").read_text())
    table = summary["walkforward"]["table"]
    assert [row[0] for row in table] == ["in-sample (train windows)", "out-of-sample (test windows)",
                                         "gap (in - out)", "base config, untuned (test windows)"]
    assert all("| " + " | ".join(row) + " |" in page for row in table)
    assert "python scripts/walkforward_report.py" in page and "figures/walkforward.png" in page
    assert (tmp_path / "docs" / "figures" / "walkforward.png").read_bytes()[:4] == b"\x89PNG"


def test_the_committed_walkforward_page_names_its_command_and_its_figure():
    page = (ROOT / "docs" / "WALKFORWARD.md").read_text()
    assert "python scripts/walkforward_report.py" in page and (ROOT / "docs" / "figures" / "walkforward.png").exists()
