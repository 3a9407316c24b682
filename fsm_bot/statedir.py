"""The state dir: its files, its lock (one process at a time) and the archive of finished sessions."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from fsm_bot import storage
from fsm_bot.errors import LockHeld, StateDirError

JOURNAL = "journal.jsonl"
LOCK = "fsm-bot.lock"
LEDGER = "venue-orders.jsonl"
METRICS = "metrics.jsonl"
LOG = "bot.log"
SESSION_FILES = (JOURNAL, "trades.jsonl", "equity.csv", "corrections.jsonl", METRICS, LOG, LEDGER)


def prepare(state_dir: Path) -> Path:
    """The state dir, created if missing; a clear ``StateDirError`` when it cannot be (a file in its place, a
    parent that cannot be created, no permission)."""
    state_dir = Path(state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        raise StateDirError(f"--state-dir {state_dir}: that is a file, not a directory; choose another path")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirError(f"--state-dir {state_dir}: cannot create it ({exc.strerror}: {exc.filename}); choose a "
                            "path you can write to") from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise StateDirError(f"--state-dir {state_dir}: not writable by this user; fix its owner or mode")
    return state_dir


@dataclass
class Lock:
    """An exclusive ``flock`` on the state dir itself (deleting ``fsm-bot.lock`` cannot release it) and on
    ``<dir>/fsm-bot.lock``, which says who holds it; the kernel drops both when the holder dies."""

    path: Path
    fd: int
    dir_fd: int
    stale_pid: str | None  # the pid a killed process left in the file, if we took its place

    @classmethod
    def acquire(cls, state_dir: Path) -> "Lock":
        state_dir = Path(state_dir)
        path = state_dir / LOCK
        try:
            dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StateDirError(f"--state-dir {state_dir}: cannot open it ({exc.strerror})") from None
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise LockHeld(f"state dir {state_dir} is in use by another fsm-bot (pid {_holder(path)}): it holds the "
                           f"directory's lock ({path} says who)") from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise LockHeld(f"state dir {state_dir} is in use by another fsm-bot (pid {_holder(path)}): lock {path} "
                           "is held") from None
        except OSError as exc:
            os.close(dir_fd)
            raise StateDirError(f"{path}: cannot create the lock file ({exc.strerror}); check the state dir's "
                                "owner and mode") from None
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip() or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        storage.fsync(fd, path)
        stale = previous if previous and previous != str(os.getpid()) else None
        return cls(path, fd, dir_fd, stale)

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass  # the lock goes with the descriptor anyway
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
        if self.dir_fd >= 0:
            fcntl.flock(self.dir_fd, fcntl.LOCK_UN)
            os.close(self.dir_fd)
            self.dir_fd = -1

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


ARCHIVE = "archive"
PARTIAL = ".partial"


def archive(state_dir: Path, session: str) -> Path:
    """Move a session's files to ``<dir>/archive/<session>[-n]/``: into a hidden staging folder first (the
    journal first), then one rename, every directory fsynced; ``finish_archives`` completes an interrupted one."""
    state_dir = Path(state_dir)
    root = state_dir / ARCHIVE
    _mkdir(root)
    target, n = root / session, 2
    while target.exists() or _staging(target).exists():
        target, n = root / f"{session}-{n}", n + 1
    staging = _staging(target)
    _mkdir(staging)
    return _complete(state_dir, staging, target)


def finish_archives(state_dir: Path) -> list[str]:
    """Complete the archives an interrupted ``archive`` left staged; a note for each."""
    state_dir, notes = Path(state_dir), []
    for staging in sorted((state_dir / ARCHIVE).glob(f".*{PARTIAL}")):
        target = staging.with_name(staging.name[1:-len(PARTIAL)])
        if not (staging / JOURNAL).exists() and (state_dir / JOURNAL).exists():
            try:  # stopped before the journal (moved first) left: nothing was archived
                for leftover in staging.iterdir():
                    os.rename(leftover, state_dir / leftover.name)
                staging.rmdir()
            except OSError as exc:
                raise storage.refused(staging, exc, "undo an archive that never began") from None
            continue
        _complete(state_dir, staging, target)
        notes.append(f"finished archiving a session interrupted while it was archived: {target}")
    return notes


def _staging(target: Path) -> Path:
    return target.with_name(f".{target.name}{PARTIAL}")


def _mkdir(path: Path) -> None:
    if path.is_dir():
        return
    try:
        path.mkdir()
    except OSError as exc:
        raise storage.refused(path, exc, "create the folder") from None
    storage.fsync_dir(path.parent)


def _complete(state_dir: Path, staging: Path, target: Path) -> Path:
    try:
        for name in SESSION_FILES:
            if (state_dir / name).exists():
                os.rename(state_dir / name, staging / name)
        storage.fsync_dir(staging)
        storage.fsync_dir(state_dir)
        os.rename(staging, target)
    except OSError as exc:
        raise storage.refused(staging, exc, "move the session's files into the archive") from None
    storage.fsync_dir(target.parent)
    return target
