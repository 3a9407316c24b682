"""``fsm-bot status``: where the state dir's session stands, from its journal alone (no lock, no change)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from fsm_bot import journal, views
from fsm_bot.console import position, row_line, summary
from fsm_bot.errors import StateDirError
from fsm_bot.money import usd
from fsm_bot.session import describe_state, fold, iso_seconds
from fsm_bot.statedir import JOURNAL, LOCK


def status(state_dir: Path, last: int = 5, out: TextIO | None = None, as_json: bool = False) -> int:
    """Where a session stands, from its journal alone; takes no lock and changes nothing."""
    path = state_dir / JOURNAL
    if not path.exists():
        raise StateDirError(f"{state_dir} holds no session (no {JOURNAL})")
    contents = journal.read(path)
    if not contents.records:
        raise StateDirError(f"{path}: the session never began (its first record was not written whole); "
                            f"`fsm-bot start --state-dir {state_dir}` begins one")
    s = fold(contents.records)
    m = summary(s)
    running = holder(state_dir)
    now = int(time.time() * 1000) if running and s.source.get("clock") == "wall" else s.ts_ms
    if as_json:
        data = {**{k: (str(v) if not isinstance(v, (int, float, str, type(None))) else v) for k, v in m.items()},
                "state": s.state, "interval": min(s.interval, s.intervals), "streak": s.streak,
                "drawdown_from_start": str(s.drawdown), "finished": s.finished, "torn_tail": contents.torn,
                "running": running, "position": position(s, now),
                "last_trades": [json.loads(views.trade_json(r)) for r in s.rows()[-last:]]}
        print(json.dumps(data, indent=2), file=out)
        return 0
    print(f"session   {s.session} ({s.mode}), started {iso_seconds(s.start_ms)}", file=out)
    print(f"state     {describe_state(s)}", file=out)
    print(f"process   {_running(running)}", file=out)
    print(f"capital   {usd(s.capital)} (start {usd(s.capital0)}, floor {usd(s.floor)}), streak {s.streak}, "
          f"drawdown from start {s.drawdown:.2%}, max drawdown from peak {m['max_drawdown']:.2%}", file=out)
    held = position(s, now)
    if held:
        print(f"position  {held}", file=out)
    print(f"trades    {m['trades']} traded, {m['wins']} won, {m['skipped']} skipped of {len(s.rows())} recorded",
          file=out)
    if contents.torn:
        print(f"journal   a torn last record will be dropped on resume ({contents.torn})", file=out)
    rows = s.rows()[-last:]
    if rows:
        print("last trades:", file=out)
        for row in rows:
            print("  " + row_line(row, s.intervals), file=out)
    return 0


def holder(state_dir: Path) -> dict | None:
    """The fsm-bot process holding the state dir, if one runs: its pid and since when (read, never locked)."""
    lock = Path(state_dir) / LOCK
    try:
        pid = int(lock.read_text().strip() or 0)
        since = lock.stat().st_mtime
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if "fsm-bot" not in cmdline and "fsm_bot" not in cmdline:
        return None
    return {"pid": pid, "since": datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds")}


def _running(running: dict | None) -> str:
    return f"running: pid {running['pid']} since {running['since']}" if running else "not running"
