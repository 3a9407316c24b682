"""``fsm-bot``: commands only. Parse the flags, call the command, map error kinds to exit codes.

Exit codes: 0 done, 1 unexpected error, 2 bad flag/config or state dir, 3 the session halted,
4 the journal needs a human, 5 the state dir is locked by another process, 130 interrupted.
Heavy modules are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Sequence

from fsm_bot.cli import research, session
from fsm_bot.cli.parser import parser
from fsm_bot.errors import BotError

COMMANDS = {"start": session.start, "resume": session.resume, "status": session.status, "graph": session.graph,
            "risk": research.risk, "backtest": research.backtest, "report": session.report}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BotError as exc:
        print(f"fsm-bot {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"fsm-bot {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
