"""The output file of a download: what an existing one holds, and how it grows.

A download appends: an existing file is read first and must have exactly the schema being written
(else the download refuses, naming the flag, and leaves it alone). It grows by whole rewrites -- a
temporary file in the same folder, fsynced, renamed over the old one, the folder fsynced -- every
``every`` new rows and once at the end, also when the download stops early (an error, Ctrl-C): a kill
loses at most the rows since the last rewrite, and the file is never half written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import polars as pl

from fsm_bot.errors import ConfigError, StorageError
from fsm_bot.storage import ADVICE, replace_by


def schema_text(schema: Mapping[str, pl.DataType]) -> str:
    return ", ".join(f"{name} {dtype}" for name, dtype in schema.items())


def existing(path: Path, schema: Mapping[str, pl.DataType], flag: str, what: str) -> pl.DataFrame | None:
    """The rows already in ``path`` (None when there is no such file), refused unless its schema is ``schema``."""
    if not path.exists():
        return None
    try:
        found = dict(pl.read_parquet_schema(path))
    except Exception as exc:  # polars raises several kinds for a file that is not parquet
        raise ConfigError(f"{flag} {path}: exists and is not a readable parquet file ({type(exc).__name__}); "
                          "give another file") from None
    if found != dict(schema):
        raise ConfigError(f"{flag} {path}: exists with other columns than {what} ({schema_text(found)}; expected "
                          f"{schema_text(schema)}): nothing was changed; give another file")
    return pl.read_parquet(path)


class Checkpoints:
    """The file's rows: those it had plus those added, rewritten whole (sorted by ``sort_by``) every ``every``
    added rows."""

    def __init__(self, path: Path, kept: pl.DataFrame, every: int, flag: str,
                 sort_by: tuple[str, ...] = ()) -> None:
        self.path, self.every, self.flag, self.sort_by = path, every, flag, list(sort_by)
        self.written, self.pending = kept, []
        self.pending_rows = 0
        self.rewrites = 0

    @property
    def frame(self) -> pl.DataFrame:
        return pl.concat([self.written, *self.pending]) if self.pending else self.written

    def add(self, rows: pl.DataFrame) -> None:
        if rows.height:
            self.pending.append(rows)
            self.pending_rows += rows.height
        if self.pending_rows >= self.every:
            self.flush()

    def flush(self) -> None:
        """Rewrite the file when rows were added since the last rewrite."""
        if not self.pending:
            return
        frame = self.frame.sort(self.sort_by, nulls_last=True, maintain_order=True) if self.sort_by else self.frame
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_by(self.path, frame.write_parquet)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            advice = ADVICE.get(exc.errno, "check the disk and the path")
            raise StorageError(f"{self.flag} {self.path}: cannot write ({exc.strerror or type(exc).__name__}); "
                               f"{advice}; the file keeps what its last complete write held") from None
        self.written, self.pending, self.pending_rows = frame, [], 0
        self.rewrites += 1
