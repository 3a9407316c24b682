"""Start-up: how long a real ``fsm-bot resume`` takes to reach its first action, and what it imports on the way.

The *first action* is the resumed process's first journal record: written, and fsynced when it announces
an action outside the process (a riding record rides on the decision's fsync, as in any run). Every
journal read, the replay that re-checks each recorded decision, the venue's reconciliation and the world's
wiring come before it. ``FSM_BOT_FAILPOINT=journal.appended:1`` SIGKILLs the process right after that record,
so the figure is the wall time from spawning the command to its death as the parent sees it.

The state dirs are sim sessions crashed (``journal.appended:N``) so that the resume begins in each state of
the machine in turn (interval 2 on), each run on a fresh copy of its dir. Bytecode is cached for these runs
(under the temporary dir when ``PYTHONDONTWRITEBYTECODE`` is set, as it is where the tests run), as it is in
an installation; ``resume_to_first_action_as_invoked`` is the same runs with the caller's environment as is.
``imports`` is one ``python -X importtime`` run per state: the import total and its heavy parts (ms; that
run is slower than the timed ones, the split is what to read), and the floors: the interpreter alone and
each heavy package alone.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fsm_bot import journal

EXE = str(Path(sys.executable).with_name("fsm-bot"))
HEAVY = ("polars", "numpy", "talib", "requests", "matplotlib", "rich", "transitions")
FIRST_ACTION = {"FSM_BOT_FAILPOINT": "journal.appended:1"}


def summary(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"runs": len(times), "median_s": round(statistics.median(times), 3), "p90_s": round(p90, 3),
            "min_s": round(ordered[0], 3), "max_s": round(ordered[-1], 3)}


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def cached_bytecode(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def crashed_sessions(tmp: Path, env: dict[str, str]) -> dict[str, Path]:
    """A sim session crashed so that its resume begins in each state (the first such point of interval 2 on)."""
    reference = tmp / "reference"
    subprocess.run([EXE, "start", "--sim", "--state-dir", str(reference)], capture_output=True, env=env, check=True)
    points: dict[str, int] = {}
    for n, record in enumerate(journal.read(reference / "journal.jsonl").records, start=1):
        if record["interval"] >= 2 and record["dst"] not in points and n < 140:
            points[record["dst"]] = n
    out = {}
    for state, n in points.items():
        d = tmp / "crashed" / state
        subprocess.run([EXE, "start", "--sim", "--state-dir", str(d)], capture_output=True,
                       env={**env, "FSM_BOT_FAILPOINT": f"journal.appended:{n}"})
        out[state] = d
    return out


def import_split(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The import total and each heavy package's share (cumulative ms, as loaded by whatever needed it first)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "fsm_bot", *cmd[1:]], capture_output=True,
                          text=True, env=env)
    total, heavy = 0, {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        total += int(cumulative) if depth == 0 else 0
        if name.strip() in HEAVY and name.strip() not in heavy:
            heavy[name.strip()] = round(int(cumulative) / 1000, 1)
    return {"imports_ms": round(total / 1000, 1), **{f"{m}_ms": heavy.get(m) for m in HEAVY}}


def floors(env: dict[str, str], runs: int) -> dict[str, float]:
    out = {}
    for name, code in (("python", "pass"), *((m, f"import {m}") for m in ("numpy", "polars", "talib"))):
        out[f"{name}_s"] = round(statistics.median(timed([sys.executable, "-c", code], env) for _ in range(runs)), 3)
    return out


def resumes(dirs: dict[str, Path], work: Path, env: dict[str, str], runs: int) -> tuple[list[float], dict]:
    times, by_state = [], {}
    for state, d in dirs.items():
        mine = []
        for _ in range(runs):
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(d, work)
            mine.append(timed([EXE, "resume", "--state-dir", str(work)], {**env, **FIRST_ACTION}))
        times += mine
        by_state[state] = round(statistics.median(mine), 3)
    return times, by_state


def startup_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    runs = 3 if quick else 10
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = cached_bytecode(tmp)
        dirs = crashed_sessions(tmp, env)
        work = tmp / "work"
        resumes(dirs, work, env, 1)  # the bytecode written once
        times, by_state = resumes(dirs, work, env, runs)
        as_invoked, _ = resumes(dirs, work, dict(os.environ), max(1, runs // 3))
        splits = {}
        for state, d in dirs.items():
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(d, work)
            splits[state] = import_split([EXE, "resume", "--state-dir", str(work)], {**env, **FIRST_ACTION})
        reference = str(tmp / "reference")
        return {
            "first_action": "the resumed process's first journal record (journal.appended:1 kills it there)",
            "resume_to_first_action": {**summary(times), "median_s_by_state": by_state},
            "resume_to_first_action_as_invoked": summary(as_invoked),
            "imports_by_state": splits,
            "floors": floors(env, runs),
            "status": summary([timed([EXE, "status", "--state-dir", reference], env) for _ in range(runs)]),
            "history": summary([timed([EXE, "history", "--state-dir", reference], env) for _ in range(runs)]),
            "help": summary([timed([EXE, "--help"], env) for _ in range(runs)]),
            "sim_session_18_intervals": summary([timed([EXE, "start", "--sim", "--fresh", "--state-dir",
                                                        str(tmp / "full")], env) for _ in range(runs)]),
            "bytecode": "cached under the temporary dir" if "PYTHONPYCACHEPREFIX" in env else "cached as usual",
        }
