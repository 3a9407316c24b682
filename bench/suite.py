"""The test suite's duration: the README's test command (``pytest``, as ``pyproject.toml`` configures it: xdist
with ``-n auto``) run once from the checkout, its wall time, the CPU time of its processes, and its outcome.
``--quick`` runs two small files instead (a smoke run of this benchmark, not a figure of the suite).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests import workers

ROOT = Path(__file__).resolve().parents[1]
QUICK_FILES = ("tests/test_money.py", "tests/test_graph.py")
SUMMARY = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+(?:, )?)+) in (?P<secs>[\d.]+)s", re.M)


def children_cpu() -> tuple[float, float]:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime, used.ru_stime


def suite_bench(data: Path | None, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *(QUICK_FILES if quick else ())]
    user0, sys0 = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    user1, sys1 = children_cpu()
    found = SUMMARY.search(done.stdout)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", found.group("counts"))} if found else {}
    return {"command": "pytest" + (" " + " ".join(QUICK_FILES) if quick else ""), "workers": workers.auto(),
            "cores": len(os.sched_getaffinity(0)), "exit_code": done.returncode, "counts": counts,
            "wall_s": round(wall_s, 1), "pytest_s": float(found.group("secs")) if found else None,
            "user_cpu_s": round(user1 - user0, 1), "system_cpu_s": round(sys1 - sys0, 1),
            "passed": done.returncode == 0 and counts.get("passed", 0) > 0,
            "failures": failures(done.stdout) if done.returncode else []}


def failures(output: str) -> list[str]:
    """What a failing run said: its assertion lines (``E ...``, the first 20) and its short summary."""
    lines = output.strip().splitlines()
    said = [line for line in lines if line.startswith("E ")][:20]
    return said + [line for line in lines if line.startswith("FAILED ") or line.startswith("ERROR ")] + lines[-1:]
