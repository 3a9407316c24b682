"""Every write to the state dir goes through here: whole writes or a ``StorageError``, fsyncs, atomic replaces.

A write the disk refuses (full, failing, read-only: ENOSPC, EIO, EACCES, EROFS, a short write) ends with one
``StorageError`` naming the file and what to do; the session stops before anything else is traded, and
``fsm-bot resume`` continues from the journal once the disk is fixed (a torn last line is dropped then). The
crash tests inject such failures with ``FSM_BOT_FAILPOINT=storage.enospc:<n>`` (or ``storage.eio:<n>``): the
n-th write through here fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import IO, Callable

from fsm_bot import failpoints
from fsm_bot.errors import StorageError

ADVICE = {errno.ENOSPC: "the disk is full: free some space",
          errno.EDQUOT: "the disk quota is used up: free some space",
          errno.EIO: "the disk failed to write: check it",
          errno.EACCES: "permission denied: check the state dir's owner and mode",
          errno.EPERM: "permission denied: check the state dir's owner and mode",
          errno.EROFS: "the file system is read-only"}


def refused(path: Path | str, exc: OSError | None = None, what: str = "write") -> StorageError:
    """The error for a write the disk refused, naming the file, the cause and what to do."""
    cause = (exc.strerror or str(exc)) if exc is not None else "short write"
    advice = ADVICE.get(exc.errno if exc is not None else -1, "check the disk")
    return StorageError(f"{path}: cannot {what} ({cause}); {advice}, then `fsm-bot resume` continues where the "
                        "journal stopped")


def _injected() -> None:
    for name, code in (("storage.enospc", errno.ENOSPC), ("storage.eio", errno.EIO)):
        if failpoints.hit(name):
            raise OSError(code, os.strerror(code))


def write(fd: int, data: bytes, path: Path | str) -> None:
    """All of ``data`` to ``fd`` in one write, or a ``StorageError``."""
    try:
        _injected()
        written = os.write(fd, data)
    except OSError as exc:
        raise refused(path, exc) from None
    if written != len(data):
        raise refused(path)


def fsync(fd: int, path: Path | str) -> None:
    """Make ``fd`` durable; a failure is never retried (the kernel may have dropped the pages)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise refused(path, exc, "fsync") from None


def fsync_dir(directory: Path | str) -> None:
    """Make a directory's entries (a file created, renamed or removed) durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise refused(directory, exc, "fsync the directory") from None


def open_append(path: Path | str, durable: bool = True) -> int:
    """An append-only descriptor of ``path``, created if missing (and, ``durable``, its directory fsynced then)."""
    path = Path(path)
    created = not path.exists()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise refused(path, exc, "open for writing") from None
    if created and durable:
        fsync_dir(path.parent)
    return fd


def append(path: Path | str, data: bytes, durable: bool = False) -> None:
    """Append ``data`` to ``path`` (opened and closed around it)."""
    fd = open_append(path)
    try:
        write(fd, data, path)
        if durable:
            fsync(fd, path)
    finally:
        os.close(fd)


def replace(path: Path | str, data: bytes) -> None:
    """``path`` holds ``data``, whole or not at all: a temporary file written, fsynced, renamed, dir fsynced."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise refused(tmp, exc, "create") from None
    try:
        write(fd, data, tmp)
        fsync(fd, tmp)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise refused(path, exc, "replace") from None
    fsync_dir(path.parent)


def replace_by(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """``path`` replaced by what ``write`` writes to a file object: a temporary file beside it, fsynced, renamed
    over it, with the old file's permissions (a new one gets the umask's, as any file this process creates). An
    ``OSError`` (a cache's writer logs it, a download's names its flag) leaves the old file whole."""
    import tempfile  # here: the journal's process needs it only once a cache or a download writes

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # made 0600
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode_of(path))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode_of(path: Path) -> int:
    """The old file's permissions, or a new file's: 0666 less the umask, read where it can be read without
    setting it (``os.umask`` changes it for every thread while it asks: a file another made then would be 0666)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        pass
    try:
        status = Path("/proc/self/status").read_text()
        umask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    except (OSError, StopIteration, ValueError, IndexError):
        umask = 0o077  # not known: the strictest usual one
    return 0o666 & ~umask


def clean_temporaries(directory: Path | str) -> list[str]:
    """Remove the ``*.tmp`` files an interrupted ``replace`` left behind; their names."""
    removed = []
    for tmp in sorted(Path(directory).glob("*.tmp")):
        try:
            tmp.unlink()
        except OSError as exc:
            raise refused(tmp, exc, "remove") from None
        removed.append(tmp.name)
    if removed:
        fsync_dir(directory)
    return removed
