"""Regenerate the golden journals in tests/journals/: short --sim sessions that hold a win, a loss,
a skip, a halt, and a session killed inside SUBMIT (its journal ends with the order's intent).

    python scripts/golden_journals.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "journals"
STRICT = ROOT / "tests" / "data" / "btcusdt_1m_2023-08-13_strict.parquet"
SESSIONS = {
    "win-loss": ["--intervals", "3"],
    "skip": ["--policy", "strict", "--data", str(STRICT), "--start", "2023-08-13T01:00:00Z", "--intervals", "3"],
    "halt": ["--capital", "10", "--intervals", "4"],
    "kill-in-submit": ["--intervals", "3"],
}
KILL_AT = {"kill-in-submit": "journal.appended:14"}  # right after interval 2's 'sized' record


def main() -> int:
    exe = Path(sys.executable).with_name("fsm-bot")
    for name, args in SESSIONS.items():
        d = OUT / name
        shutil.rmtree(d, ignore_errors=True)
        env = {**os.environ, "FSM_BOT_FAILPOINT": KILL_AT[name]} if name in KILL_AT else None
        subprocess.run([str(exe), "start", "--sim", "--state-dir", str(d), *args], env=env, capture_output=True)
        for extra in d.iterdir():
            if extra.name not in ("journal.jsonl", "venue-orders.jsonl"):
                extra.unlink()
        print(f"{name}: {len((d / 'journal.jsonl').read_text().splitlines())} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
