"""The journal read back: the session folded record by record, every decision re-checked.

``replay_check`` hands each record's handler what it was handed then (the session folded up to the
record, the record's time, and the ports' answers journaled with it) and requires the same step:
a handler that decides differently today raises ``ReplayMismatch``, with no exemption. It also
requires each record's (source, trigger, destination) to be a row of the machine's table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from fsm_bot import __version__
from fsm_bot import journal as journal_mod
from fsm_bot.codec import encode
from fsm_bot.config import Config
from fsm_bot.engine.inputs import STAGES
from fsm_bot.errors import ReplayMismatch, StateDirError
from fsm_bot.machine import IDLE, edges
from fsm_bot.session import Session, iso, parse_iso, session_id
from fsm_bot.steps import Begin, Step, decode

_EDGES = edges()


def sessions(records: list[dict[str, Any]]) -> Iterator[tuple[Session | None, Session, Step, dict[str, Any]]]:
    """(session before, session after, step, record) for every record, the 'begin' record first."""
    first = Session.begin(records[0])
    yield None, first, decode("begin", records[0]["data"]), records[0]
    s = first
    for rec in records[1:]:
        step = decode(rec["trigger"], rec["data"])
        after = s.apply(rec, step)
        yield s, after, step, rec
        s = after


History = list[tuple[Session | None, Session, Step, dict[str, Any]]]


def replay_check(records: list[dict[str, Any]]) -> int:
    """Re-decide every journaled step with today's handlers; returns how many were checked."""
    return len(replayed(records)) - 1


def replayed(records: list[dict[str, Any]]) -> History:
    """``sessions(records)``, every step re-decided on the way (``ReplayMismatch`` on the first difference)."""
    history: History = []
    for before, after, step, rec in sessions(records):
        history.append((before, after, step, rec))
        if before is None:
            continue  # the begin record: the session's facts, decided by no handler
        src, trigger, dst = rec["src"], rec["trigger"], rec["dst"]
        if _EDGES.get(src, {}).get(trigger) != dst:
            raise ReplayMismatch(rec["seq"], src, f"{src} --{trigger}--> {dst}", "no such row in the machine's table")
        stage = STAGES[src]
        again = stage.handler.run(before, parse_iso(rec["ts"]), stage.restored(rec["inputs"], step, before))
        if again != step:
            raise ReplayMismatch(rec["seq"], src, encode(step), None if again is None else encode(again))
    return history


def begin(journal: journal_mod.Journal, mode: str, cfg: Config, source: dict[str, Any], start_ms: int,
          now_ms: int, session: str | None = None, chain: dict[str, Any] | None = None) -> Session:
    """Append a new session's first record (its mode, config, data source, start and place in a chain of
    sessions) and return it."""
    step = Begin(mode=mode, session=session or session_id(mode, start_ms, cfg.seed), start_ms=start_ms,
                 config=cfg.to_json(), source=source, version=__version__, chain=chain)
    rec = journal.append({"ts": iso(now_ms), "session": step.session, "interval": 0, "src": None, "dst": IDLE,
                          "trigger": "begin", "data": encode(step)})
    return Session.begin(rec)


def load(path: Path) -> tuple[journal_mod.Journal, journal_mod.Contents, History]:
    """Open a journal for resuming: the torn tail cut, every decision re-checked; the session folded record by
    record (its last entry's ``after`` is the session now)."""
    jr, contents = journal_mod.Journal.recover(path)
    try:
        if not contents.records:
            raise StateDirError(f"{path}: the session never began (its first record was torn); `fsm-bot start` "
                                "begins one")
        old = next((r for r in contents.records if r.get("v") != journal_mod.SCHEMA), None)
        if old is not None:
            raise StateDirError(f"{path}: written in journal schema {old.get('v')} (this fsm-bot reads and resumes "
                                f"schema {journal_mod.SCHEMA}); finish the session with the fsm-bot that began it, "
                                "or `fsm-bot start --fresh` to archive it")
        history = replayed(contents.records)
    except BaseException:
        jr.close()
        raise
    return jr, contents, history
