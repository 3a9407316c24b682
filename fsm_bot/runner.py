"""Starting, resuming and inspecting sessions in a state dir: the commands' bodies.

Each function takes plain values, holds the state dir's lock while it works, and returns the
process's exit code; ``cli.py`` only parses flags and maps errors to exit codes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

from fsm_bot import engine, journal, logs, stopping, views
from fsm_bot.config import Config
from fsm_bot.console import Console, row_line, summary, usd
from fsm_bot.errors import ConfigError, Interrupted, JournalCorrupt, StateDirError
from fsm_bot.ports import Held, slug
from fsm_bot.session import Session, describe_state, fold, iso_seconds
from fsm_bot.steps import Sized
from fsm_bot.statedir import JOURNAL, LOG, SESSION_FILES, Lock, archive, finish_archives, prepare
from fsm_bot import wiring

EXIT_OK, EXIT_HALTED, EXIT_INTERRUPTED = 0, 3, 130


@dataclass
class Options:
    state_dir: Path
    mode: str = "sim"
    data: Path | None = None
    start: str | None = None
    speed: float = math.inf
    fresh: bool = False
    out: TextIO | None = None
    live_view: bool | None = None
    confirm_live: bool = False
    env: dict[str, str] = field(default_factory=dict)  # the environment with .env merged in (wiring reads secrets)


@contextlib.contextmanager
def interrupts(stop: threading.Event, wake: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop``: the append in progress finishes, then the engine stops. A stop that
    arrived before (``fsm_bot.stopping``) stops it at once."""
    def handler(signum: int, frame: object) -> None:
        stop.set()
        wake.set()

    if stopping.STOP.is_set():
        handler(0, None)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _existing(state_dir: Path) -> Session | None:
    path = state_dir / JOURNAL
    if not path.exists() or path.stat().st_size == 0:
        return None
    records = journal.read(path).records
    return fold(records) if records else None


def _clear_for_new_session(state_dir: Path, fresh: bool) -> list[str]:
    """Archive a finished session (or, with --fresh, any); refuse an unfinished one."""
    notes = []
    try:
        old = _existing(state_dir)
    except JournalCorrupt:
        if not fresh:
            raise
        old = None
    if old is not None:
        if not (old.finished or fresh):
            raise StateDirError(
                f"{state_dir} holds an unfinished session {old.session} ({describe_state(old)}): run "
                f"`fsm-bot resume --state-dir {state_dir}` to continue it, or `fsm-bot start --fresh` to archive it "
                "and begin a new one")
        target = archive(state_dir, old.session)
        notes.append(f"archived {'finished' if old.finished else 'unfinished'} session {old.session} to {target}")
    elif any((state_dir / name).exists() for name in SESSION_FILES):
        target = archive(state_dir, "unnamed")
        notes.append(f"archived files of an unnamed session to {target}")
    return notes


def start(opts: Options, cfg: Config) -> int:
    """A new session in the state dir: every flag checked first, then the dir locked and cleared."""
    plan = wiring.new_session(opts.mode, cfg, data=opts.data, start=opts.start, speed=opts.speed, env=opts.env,
                              confirm_live=opts.confirm_live)
    state_dir = prepare(opts.state_dir)
    with Lock.acquire(state_dir) as lock:
        notes = _lock_notes(lock) + finish_archives(state_dir) + _clear_for_new_session(state_dir, opts.fresh)
        stopping.check()
        world, start_ms, now_ms = plan.open(state_dir)
        try:
            notes += world.preflight(start_ms)
            stopping.check()
            jr = journal.Journal(state_dir / JOURNAL)
            session = engine.begin(jr, opts.mode, cfg, world.source, start_ms, now_ms)
            _rebuild_views(state_dir, list(engine.sessions(journal.read(state_dir / JOURNAL).records)))
        except BaseException:
            world.close()
            raise
        return _run(opts, session, jr, world, notes, resumed=False)


def _rebuild_views(state_dir: Path, history: engine.History) -> None:
    views.Views(state_dir).rebuild((b, a, s) for b, a, s, _ in history)


def _lock_notes(lock: Lock) -> list[str]:
    return [f"took over a stale lock left by pid {lock.stale_pid}"] if lock.stale_pid else []


def resume(opts: Options, mode: str | None = None) -> int:
    state_dir = opts.state_dir
    if not (state_dir / JOURNAL).exists():
        raise StateDirError(f"{state_dir} holds no session to resume (no {JOURNAL}); `fsm-bot start` begins one")
    with Lock.acquire(state_dir) as lock:
        notes = _lock_notes(lock) + finish_archives(state_dir)
        stopping.check()
        jr, contents, history = engine.load(state_dir / JOURNAL)
        session = history[-1][1]
        if contents.torn:
            notes.append(f"dropped a torn last journal record ({contents.torn})")
        if mode is not None and mode != session.mode:
            jr.close()
            raise StateDirError(f"session {session.session} is a --{session.mode} session; it cannot be resumed "
                                f"as --{mode}")
        if session.mode != "sim" and not math.isinf(opts.speed):
            jr.close()
            raise ConfigError(f"--speed {opts.speed:g}: a --{session.mode} session keeps the clock it began with; "
                              "--speed sets the clock of a resumed --sim session only")
        _rebuild_views(state_dir, history)
        ended = _ended(session, state_dir)
        if ended is not None:
            jr.close()
            for line in notes + [ended[1]]:
                print(line, file=opts.out)
            return ended[0]
        try:
            world = wiring.resumed(session, state_dir, speed=opts.speed, env=opts.env, confirm_live=opts.confirm_live)
            lost = _lost_orders(world, history)
        except BaseException:
            jr.close()
            raise
        notes += [f"journal loss: the venue holds order {h.order.key} in {h.order.intent.slug}, which the journal "
                  "does not know: it is adopted for its interval, never answered with a second order" for h in lost]
        notes.append(f"resuming session {session.session} at {describe_state(session)} (journal record {session.seq})")
        return _run(opts, session, jr, world, notes, resumed=True, adopt=lost)


def _lost_orders(world: wiring.World, history: engine.History) -> list[Held]:
    """The venue's orders in the session's markets that the journal does not know (records lost to a restore
    or a truncation): compared on every resume, in every mode."""
    session = history[-1][1]
    known = {step.order.key for _, _, step, _ in history if isinstance(step, Sized) and step.order is not None}
    markets = tuple(slug(session.interval_start(k), session.cfg.interval_minutes)
                    for k in range(1, session.intervals + 1))
    held = world.venue.holdings(markets)
    return [h for h in held if h.order.key not in known]


def _ended(session: Session, state_dir: Path) -> tuple[int, str] | None:
    """(exit code, message) for a session that will not trade again, else None."""
    if session.halted is not None:
        return EXIT_HALTED, (f"session {session.session} is HALTED ({session.halted}: {session.halt_detail}); it does "
                             f"not trade again. `fsm-bot start --state-dir {state_dir}` archives it and begins a new "
                             "session.")
    if session.finished:
        return EXIT_OK, (f"session {session.session} is finished: capital {usd(session.capital)}. Nothing to resume; "
                         f"`fsm-bot start --state-dir {state_dir}` archives it and begins a new session.")
    return None


def _run(opts: Options, session: Session, jr: journal.Journal, world: wiring.World, notes: list[str],
         resumed: bool, adopt: list[Held] | None = None) -> int:
    state_dir = opts.state_dir
    log = logs.open_log(state_dir / LOG, world.secrets + wiring.known_secrets(opts.env))
    console = Console(world.clock.display_ms, opts.out, opts.live_view)
    for note in notes:
        logs.event(log, logging.ERROR if note.startswith("journal loss") else logging.WARNING, "runner", note)
    console.start(session, "\n".join(notes))
    stop = threading.Event()
    eng = engine.Engine(session, jr, world.clock, world.feed, world.venue, log=log, stop=stop, resumed=resumed,
                        observers=engine.session_observers(state_dir, world.venue, log, [console]), adopt=adopt or ())
    try:
        with interrupts(stop, world.clock.wake):
            final = eng.run()
    except Interrupted as exc:
        console.close()
        logs.event(log, 30, "runner", str(exc), interval=eng.session.interval, error_code=exc.code)
        print(f"stopped at {describe_state(eng.session)}: {exc}", file=console.out)
        return EXIT_INTERRUPTED
    finally:
        console.close()
        jr.close()
        world.close()
        logs.close(log)
    console.finish(final, str(state_dir))
    return EXIT_HALTED if final.halted else EXIT_OK


def status(state_dir: Path, last: int = 5, out: TextIO | None = None, as_json: bool = False) -> int:
    """Where a session stands, from its journal alone; takes no lock and changes nothing."""
    path = state_dir / JOURNAL
    if not path.exists():
        raise StateDirError(f"{state_dir} holds no session (no {JOURNAL})")
    contents = journal.read(path)
    if not contents.records:
        raise StateDirError(f"{path}: the session never began (its first record was not written whole); "
                            f"`fsm-bot start --state-dir {state_dir}` begins one")
    s = fold(contents.records)
    m = summary(s)
    if as_json:
        import json
        data = {**{k: (str(v) if not isinstance(v, (int, float, str, type(None))) else v) for k, v in m.items()},
                "state": s.state, "interval": min(s.interval, s.intervals), "streak": s.streak,
                "drawdown": str(s.drawdown), "finished": s.finished, "torn_tail": contents.torn,
                "last_trades": [json.loads(views.trade_json(r)) for r in s.rows()[-last:]]}
        print(json.dumps(data, indent=2), file=out)
        return EXIT_OK
    print(f"session   {s.session} ({s.mode}), started {iso_seconds(s.start_ms)}", file=out)
    print(f"state     {describe_state(s)}", file=out)
    print(f"capital   {usd(s.capital)} (start {usd(s.capital0)}, floor {usd(s.floor)}), streak {s.streak}, "
          f"drawdown {s.drawdown:.2%}", file=out)
    print(f"trades    {m['trades']} traded, {m['wins']} won, {m['skipped']} skipped of {len(s.rows())} recorded",
          file=out)
    if contents.torn:
        print(f"journal   a torn last record will be dropped on resume ({contents.torn})", file=out)
    rows = s.rows()[-last:]
    if rows:
        print("last trades:", file=out)
        for row in rows:
            print("  " + row_line(row, s.intervals), file=out)
    return EXIT_OK
