"""The state dir: its files, its lock (one process at a time) and the archive of finished sessions."""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from fsm_bot.errors import LockHeld

JOURNAL = "journal.jsonl"
LOCK = "fsm-bot.lock"
LEDGER = "venue-orders.jsonl"
METRICS = "metrics.jsonl"
LOG = "bot.log"
SESSION_FILES = (JOURNAL, "trades.jsonl", "equity.csv", "corrections.jsonl", METRICS, LOG, LEDGER)


@dataclass
class Lock:
    """An exclusive ``flock`` on ``<dir>/fsm-bot.lock``; the kernel drops it when its holder dies."""

    path: Path
    fd: int
    stale_pid: str | None  # the pid a killed process left in the file, if we took its place

    @classmethod
    def acquire(cls, state_dir: Path) -> "Lock":
        path = Path(state_dir) / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"state dir {state_dir} is in use by another fsm-bot (pid {holder}): lock {path} is held")
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip() or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        stale = previous if previous and previous != str(os.getpid()) else None
        return cls(path, fd, stale)

    def release(self) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def archive(state_dir: Path, session: str) -> Path:
    """Move a session's files to ``<dir>/archive/<session>[-n]/`` and return that folder."""
    root = Path(state_dir) / "archive"
    target, n = root / session, 2
    while target.exists():
        target, n = root / f"{session}-{n}", n + 1
    target.mkdir(parents=True)
    for name in SESSION_FILES:
        if (Path(state_dir) / name).exists():
            shutil.move(str(Path(state_dir) / name), str(target / name))
    return target
