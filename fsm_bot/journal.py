"""The transition journal: append-only JSON Lines, one record per transition, fsynced before the
action it announces.

Each line is a JSON object whose first field is ``crc``: the CRC-32 (hex) of the rest of the line,
``{`` + everything after ``"crc":"xxxxxxxx",``. Keys are sorted and separators compact, so the bytes
are a function of the record. ``seq`` equals the line number (0-based).

Recovery: a damaged *last* record (no newline, a bad CRC, bad JSON, a wrong ``seq``) is a torn
write and is cut off; a damaged record *before* the last stops everything (``JournalCorrupt``).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from fsm_bot import failpoints
from fsm_bot.errors import JournalCorrupt

SCHEMA = 2  # 2: each record journals its handler's inputs ("inputs"), so replay re-checks every step
_PREFIX = b'{"crc":"'
_HEAD = len(_PREFIX) + 8 + 2  # {"crc":"xxxxxxxx",


def encode(record: dict[str, Any]) -> bytes:
    """The record's line. (orjson writes NaN as null: ``steps.encode`` refuses non-finite floats first.)"""
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return b'{"crc":"%08x",' % zlib.crc32(body) + body[1:] + b"\n"


def _decode(line: bytes) -> dict[str, Any] | None:
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


@dataclass(frozen=True)
class Contents:
    records: list[dict[str, Any]]
    good_bytes: int  # length of the valid prefix
    torn: str | None  # what was wrong with a dropped last record, if any


def read(path: Path) -> Contents:
    """Every valid record; a torn last record is reported, not returned; earlier damage raises."""
    data = path.read_bytes() if path.exists() else b""
    records: list[dict[str, Any]] = []
    offset = 0
    lines = data.splitlines(keepends=True)
    for number, line in enumerate(lines):
        record = _decode(line)
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The writer. ``durable=False`` skips fsync (backtests); everything else is the same."""

    def __init__(self, path: Path, next_seq: int = 0, durable: bool = True) -> None:
        self.path = Path(path)
        self.next_seq = next_seq
        self.durable = durable
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created and durable:
            _fsync_dir(self.path.parent)

    @classmethod
    def recover(cls, path: Path, durable: bool = True) -> tuple["Journal", Contents]:
        """Open an existing journal for appending, cutting off a torn last record first."""
        contents = read(path)
        if contents.torn is not None:
            with open(path, "r+b") as f:
                f.truncate(contents.good_bytes)
                f.flush()
                os.fsync(f.fileno())
        return cls(path, len(contents.records), durable), contents

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record (its ``seq`` assigned here) and make it durable before returning it."""
        record = {**record, "seq": self.next_seq, "v": SCHEMA}
        line = encode(record)
        if failpoints.hit("journal.torn"):
            os.write(self._fd, line[: len(line) // 2])
            failpoints.crash()
        written = os.write(self._fd, line)
        if written != len(line):
            raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes)")
        if self.durable:
            os.fsync(self._fd)
        self.next_seq += 1
        if failpoints.hit("journal.appended"):
            failpoints.crash()
        return record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def records(path: Path) -> Iterator[dict[str, Any]]:
    yield from read(path).records
