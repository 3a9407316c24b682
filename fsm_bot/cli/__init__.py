"""``fsm-bot``: commands only. Parse the flags, call the command, map error kinds to exit codes.

Exit codes (README, "Exit codes"): 0 done, 1 unexpected error, 2 bad flag, config or state dir (usage),
3 the session halted, 4 the state needs a human (journal or ledger damaged, a decision that replays
differently, another writer), 5 the state dir is locked by another process, 6 a pre-flight check or the
environment failed (an endpoint, credentials, a missing optional package: often transient), 7 the disk
refused a write, 130 interrupted. Heavy modules are imported inside the commands so that ``--help`` stays
fast; Ctrl-C and SIGTERM are answered from the first line of ``main`` on.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

from fsm_bot import stopping
from fsm_bot.cli.parser import parser
from fsm_bot.errors import BotError, Interrupted

COMMANDS = {"start": "session.start", "resume": "session.resume", "status": "session.status",
            "graph": "session.graph", "risk": "research.risk", "backtest": "research.backtest",
            "report": "session.report", "history": "session.history", "doctor": "session.doctor",
            "data": "data.data", "sweep": "sweep.sweep"}
"""Each command's function, as ``module.function`` under ``fsm_bot.cli``: only the one run is imported."""
RESUMABLE = ("start", "resume")


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit code. ``fsm_bot.entry`` (the console script) installs the stop handlers first;
    called in-process (tests), a stop is whatever the caller's handlers make of it."""
    command = "?"
    try:
        args = parser().parse_args(argv)
        command = args.command
        stopping.check()
        return command_function(command)(args)
    except BotError as exc:
        hint = "; the journal is intact: `fsm-bot resume` continues" if isinstance(exc, Interrupted) and \
            command in RESUMABLE and "resume" not in str(exc) else ""
        print(f"fsm-bot {command}: {exc}{hint}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        hint = "; the journal is intact: `fsm-bot resume` continues" if command in RESUMABLE else ""
        print(f"fsm-bot {command}: interrupted{hint}", file=sys.stderr)
        return 130


def command_function(command: str) -> Callable[..., int]:
    module, name = COMMANDS[command].split(".")
    return getattr(importlib.import_module(f"fsm_bot.cli.{module}"), name)


if __name__ == "__main__":
    sys.exit(main())
