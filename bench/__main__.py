"""fsm-bot's benchmarks: ``python -m bench`` prints a table and JSON; ``--json`` prints JSON only.

    python -m bench [--json] [--data FILE] [--only NAME,...] [--quick]

Every figure comes from this run on this machine; the README's table is a copy of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import figures

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "btcusdt_1m_dev.parquet"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}


def table(results: dict) -> str:
    lines = [f"{'benchmark':<44} {'value':>14}  target"]
    for row in figures.rows(results):
        name, value, target, met = row
        mark = "" if met is None else ("  ok" if met else "  MISSED")
        lines.append(f"{name:<44} {value:>14}  {target}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON only")
    ap.add_argument("--data", type=Path, default=DEV if DEV.exists() else None,
                    help="candles for the throughput and memory figures (default: the 2-year dev file)")
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(figures.BENCHES))
    ap.add_argument("--quick", action="store_true", help="smaller samples (a smoke run, not for the README)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(figures.BENCHES)
    unknown = [n for n in names if n not in figures.BENCHES]
    if unknown:
        ap.error(f"--only: unknown benchmark(s) {unknown}")
    results = {}
    for name in names:
        if not args.json:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = figures.BENCHES[name](args.data, args.quick)
    report = {"machine": machine(), "data": str(args.data) if args.data else "bundled sample",
              "quick": args.quick, "results": results, "targets": figures.targets(results)}
    if not args.json:
        print(table(results))
        print()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
