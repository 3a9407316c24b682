"""The error kinds of fsm-bot and the exit codes they carry.

Four kinds reach the engine and each maps to a trigger (STYLE.md, *Errors*):

- ``DataError``      bad or stale input                   -> ``skip`` with a reason
- ``TransientError`` network, 5xx, 429, 425 on a read     -> retried in the adapter, then ``skip``
- ``UnknownOutcome`` an order may have reached the venue  -> ``submit_unknown``, then ``lookup``
- ``FatalError``     auth, corrupt journal, drawdown      -> ``halt``

The rest stop a command before or outside a session; ``cli.py`` turns ``exit_code`` into the
process's status. Messages name the field and the value, never a secret.
"""

from __future__ import annotations


class BotError(Exception):
    """Base of every error fsm-bot raises on purpose."""

    exit_code = 1
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class DataError(BotError):
    """Input that cannot be used honestly: missing, malformed, out of range or stale."""

    code = "bad_data"


class TransientError(BotError):
    """A request that failed in a way worth retrying (network, 5xx, 429, 425 on a read)."""

    code = "transient"


class UnknownOutcome(BotError):
    """An order may have reached the venue, but no answer came back."""

    code = "submit_unknown"


class FatalError(BotError):
    """Nothing sensible can go on: the session halts."""

    exit_code = 3
    code = "fatal"


class ConfigError(BotError):
    """A bad flag, config file or environment value; stops the command at start."""

    exit_code = 2
    code = "bad_config"


class StateDirError(BotError):
    """The state dir is not in a state the command can work with (unfinished, finished, empty)."""

    exit_code = 2
    code = "state_dir"


class EnvironmentFailure(BotError):
    """What the session needs is not there: a pre-flight check failed (an endpoint, the credentials, the
    balance, the next market), or an optional package of the mode is not installed. Often transient."""

    exit_code = 6
    code = "environment"


class StorageError(BotError):
    """The disk refused a write (full, failing, read-only): nothing is traded after it; free the space or fix
    the permissions and ``fsm-bot resume`` continues where the journal stopped."""

    exit_code = 7
    code = "storage"


class LockHeld(BotError):
    """Another live process holds the state dir's lock."""

    exit_code = 5
    code = "locked"


class JournalCorrupt(BotError):
    """A damaged record before the last one (of the journal or the venue's ledger), or a journal another
    writer changed: nothing trades until a human looks."""

    exit_code = 4
    code = "journal_corrupt"


class ReplayMismatch(BotError):
    """A decision recomputed from the journal differs from the recorded one."""

    exit_code = 4
    code = "replay_mismatch"

    def __init__(self, seq: int, state: str, recorded: object, recomputed: object) -> None:
        super().__init__(
            f"journal record {seq} ({state}): recorded {recorded!r} but today's handler decides {recomputed!r}"
        )
        self.seq, self.state, self.recorded, self.recomputed = seq, state, recorded, recomputed


class Interrupted(BotError):
    """Ctrl-C or SIGTERM: the journal append in progress finished; ``fsm-bot resume`` continues."""

    exit_code = 130
    code = "interrupted"
