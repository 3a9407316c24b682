"""The transition journal: append-only JSON Lines, one record per transition, fsynced before the
action it announces.

Each line is a JSON object whose first field is ``crc``: the CRC-32 (hex) of the rest of the line,
``{`` + everything after ``"crc":"xxxxxxxx",``. Keys are sorted and separators compact, so the bytes
are a function of the record. ``seq`` equals the line number (0-based).

Recovery: a damaged *last* record (no newline, a bad CRC, bad JSON, a wrong ``seq``) is a torn
write and is cut off; a damaged record *before* the last stops everything (``JournalCorrupt``).
Lines end at ``\n`` only: a stray CR inside a record damages that record, nothing else.

One fsync per decision: a record that announces no action outside the process (``machine.RIDING``: the
previous interval's ``settled`` and ``recorded``, then ``tick``, ``fetched``, ``predicted``, ``approved``) is
written without an fsync of its own and rides on the fsync of the next record that announces one (``sized``,
before the post, at the latest). A crash of the machine before that
fsync may lose those records, never a later one: resume redoes the steps they held (the crash tests cut the
file back to its last fsync to prove it: ``journal.power_cut``).

One writer: before every append the writer checks that the file is still the one it opened and the size
it left it; another process (or an edit) changing it stops the session (``JournalCorrupt``, exit 4).
A write or fsync the disk refuses is a ``StorageError`` (exit 7), never retried.

A backtest's sessions use ``MemoryJournal``: the same records, sequenced the same way, kept in memory as
the engine built them (the step and the handler's inputs as values); ``records()`` encodes them as the
file would hold them, so a replay check reads a backtest's session as it reads a file.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any, Iterator

import orjson

from fsm_bot import failpoints, storage
from fsm_bot.codec import encode as encode_value, encode_changes
from fsm_bot.errors import JournalCorrupt, StateDirError
from fsm_bot.values import frozen

SCHEMA = 2  # 2: each record journals its handler's inputs ("inputs"), so replay re-checks every step
_PREFIX = b'{"crc":"'
_HEAD = len(_PREFIX) + 8 + 2  # {"crc":"xxxxxxxx",


def encode(record: dict[str, Any]) -> bytes:
    """The record's line. (orjson writes NaN as null: ``steps.encode`` refuses non-finite floats first.)"""
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return b'{"crc":"%08x",' % zlib.crc32(body) + body[1:] + b"\n"


def decode_line(line: bytes) -> dict[str, Any] | None:
    """The record a line holds, or None if the line is damaged."""
    if not line.endswith(b"\n") or not line.startswith(_PREFIX) or line[_HEAD - 2:_HEAD] != b'",':
        return None
    body = b"{" + line[_HEAD:-1]
    try:
        if int(line[len(_PREFIX):_HEAD - 2], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@frozen
class Contents:
    records: list[dict[str, Any]]
    good_bytes: int  # length of the valid prefix
    torn: str | None  # what was wrong with a dropped last record, if any


def read(path: Path) -> Contents:
    """Every valid record; a torn last record is reported, not returned; earlier damage raises."""
    data = _read_bytes(path)
    records: list[dict[str, Any]] = []
    offset = 0
    lines = lines_of(data)
    for number, line in enumerate(lines):
        record = decode_line(line)
        problem = None
        if record is None:
            problem = "partial line" if not line.endswith(b"\n") else "bad checksum or JSON"
        elif record.get("seq") != len(records):
            problem = f"seq {record.get('seq')} where {len(records)} was expected"
        if problem is not None:
            if number == len(lines) - 1:
                return Contents(records, offset, f"record {len(records)} at byte {offset}: {problem}")
            raise JournalCorrupt(f"{path}: record {len(records)} at byte {offset} is damaged ({problem}) "
                                 f"and {len(lines) - number - 1} record(s) follow it; nothing will trade until "
                                 "it is repaired by hand")
        records.append(record)
        offset += len(line)
    return Contents(records, offset, None)


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a JSON Lines file, each with its ``\n`` (the last one may lack it); only ``\n`` ends one."""
    lines = data.split(b"\n")
    return [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes() if path.exists() else b""
    except IsADirectoryError:
        raise StateDirError(f"{path} is a directory, not a journal: move it away") from None
    except OSError as exc:
        raise StateDirError(f"{path}: cannot read it ({exc.strerror}): check its owner and mode") from None


class Journal:
    """The writer. ``durable=False`` skips fsync (backtests); everything else is the same."""

    def __init__(self, path: Path, next_seq: int = 0, durable: bool = True) -> None:
        self.path = Path(path)
        self.next_seq = next_seq
        self.durable = durable
        if self.path.is_dir():
            raise StateDirError(f"{self.path} is a directory, not a journal: move it away")
        self._fd = storage.open_append(self.path, durable)
        info = os.fstat(self._fd)
        self._inode, self._size = (info.st_dev, info.st_ino), info.st_size
        self._synced = self._size  # the bytes known to be on disk

    @classmethod
    def recover(cls, path: Path, durable: bool = True) -> tuple["Journal", Contents]:
        """Open an existing journal for appending, cutting off a torn last record first."""
        contents = read(path)
        if contents.torn is not None:
            try:
                with open(path, "r+b") as f:
                    f.truncate(contents.good_bytes)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise storage.refused(path, exc, "cut its torn last record") from None
        return cls(path, len(contents.records), durable), contents

    def append(self, record: dict[str, Any], sync: bool = True) -> dict[str, Any]:
        """Write one record (its ``seq`` assigned here); with ``sync`` (the default) it and every record
        written before it are durable when this returns."""
        record = {**record, "seq": self.next_seq, "v": SCHEMA}
        line = encode(record)
        if sync:  # a record that rides on a later fsync is checked after its write, by size: one syscall, not four
            self._check_unchanged()
        if failpoints.hit("journal.torn"):
            os.write(self._fd, line[: len(line) // 2])
            failpoints.crash()
        expected, self._size = self._size + len(line), -1  # a failed write leaves the writer stopped
        storage.write(self._fd, line, self.path)
        if self.durable and sync:
            storage.fsync(self._fd, self.path)
            self._synced = expected
        self._size = expected
        self._check_unchanged(whole=sync)  # another writer may have appended between the check and this write
        self.next_seq += 1
        if failpoints.hit("journal.appended"):
            failpoints.crash()
        if failpoints.hit("journal.power_cut"):  # the machine loses power: what was not fsynced is gone
            os.truncate(self.path, self._synced)
            failpoints.crash()
        return record

    def append_step(self, record: dict[str, Any], step: Any, inputs: Any, sync: bool = True) -> dict[str, Any]:
        """Append a transition's record: its step as ``data``, the handler's inputs (a ``Seen``) as ``inputs``."""
        return self.append({**record, "data": encode_value(step), "inputs": encode_changes(inputs)}, sync)

    def _check_unchanged(self, whole: bool = True) -> None:
        """The file is the one this writer opened (``whole``: before and after each record that is fsynced), at
        the size it left it; else another writer is at work."""
        mine = os.fstat(self._fd)
        if not whole and mine.st_size == self._size:
            return
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != self._inode or mine.st_size != self._size:
            raise JournalCorrupt(f"{self.path} changed under this process (another fsm-bot, or an edit: it is "
                                 f"{'gone' if now is None else f'{mine.st_size} bytes where this writer left {self._size}'}"
                                 "); stopping before anything else is journaled. Make sure one process runs the "
                                 "state dir, then `fsm-bot resume`")

    def close(self) -> None:
        if self._fd >= 0:
            if self.durable and self._synced != self._size:
                storage.fsync(self._fd, self.path)
            os.close(self._fd)
            self._fd = -1


def records(path: Path) -> Iterator[dict[str, Any]]:
    yield from read(path).records


class MemoryJournal:
    """A journal that writes nothing (a backtest's sessions): each record numbered and returned as the file
    journal returns it, its step and inputs kept as values until ``records()`` encodes them. The dict given to
    ``append`` is the one kept (the engine builds a new one per record)."""

    durable = False

    def __init__(self) -> None:
        self.next_seq = 0
        self._kept: list[tuple[dict[str, Any], Any, Any]] = []

    def append(self, record: dict[str, Any], sync: bool = True) -> dict[str, Any]:
        return self._keep(record, None, None)

    def append_step(self, record: dict[str, Any], step: Any, inputs: Any, sync: bool = True) -> dict[str, Any]:
        return self._keep(record, step, inputs)

    def _keep(self, record: dict[str, Any], step: Any, inputs: Any) -> dict[str, Any]:
        record["seq"], record["v"] = self.next_seq, SCHEMA  # the caller's new dict, kept as it is
        self._kept.append((record, step, inputs))
        self.next_seq += 1
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record as ``read`` returns it from a file: encoded, framed, checked and parsed again."""
        out = []
        for record, step, inputs in self._kept:
            if step is not None:
                record = {**record, "data": encode_value(step), "inputs": encode_changes(inputs)}
            parsed = decode_line(encode(record))
            assert parsed is not None
            out.append(parsed)
        return out

    def close(self) -> None:
        pass
