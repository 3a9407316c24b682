"""Starting, resuming and inspecting sessions in a state dir: the commands' bodies.

Each function takes plain values, holds the state dir's lock while it works, and returns the
process's exit code; ``cli.py`` only parses flags and maps errors to exit codes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

from fsm_bot import engine, journal, logs, stopping, views
from fsm_bot.config import Config
from fsm_bot.console import Console, summary, usd
from fsm_bot.watchers import Watchers
from fsm_bot.errors import ConfigError, Interrupted, JournalCorrupt, StateDirError
from fsm_bot.ports import Held, slug
from fsm_bot.session import Session, describe_state, fold
from fsm_bot.steps import Sized
from fsm_bot.statedir import JOURNAL, LOG, SESSION_FILES, Lock, archive, finish_archives, prepare
from fsm_bot import wiring

EXIT_OK, EXIT_HALTED, EXIT_INTERRUPTED = 0, 3, 130
ONE = {"sessions": 1, "index": 1, "stop_on_halt": False}  # a session not begun in a chain


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
    sessions: int | None = 1  # sessions back to back (None: for ever)
    stop_on_halt: bool = False  # a halt ends the chain, not only its session
    notify: tuple[str, ...] = ()  # webhooks that hear of the session's events (secrets: they carry tokens)
    metrics_port: int | None = None  # serve Prometheus metrics there while the sessions run
    metrics_host: str = "127.0.0.1"


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
    """A new session (or a chain of them) in the state dir: every flag checked first, then the dir locked."""
    plan = wiring.new_session(opts.mode, cfg, data=opts.data, start=opts.start, speed=opts.speed, env=opts.env,
                              confirm_live=opts.confirm_live)
    state_dir = prepare(opts.state_dir)
    with Lock.acquire(state_dir) as lock:
        notes = _lock_notes(lock) + finish_archives(state_dir) + _clear_for_new_session(state_dir, opts.fresh)
        chain = {"sessions": opts.sessions, "index": 1, "stop_on_halt": opts.stop_on_halt}
        return _chain(opts, plan, state_dir, chain, notes)


def _chain(opts: Options, plan: wiring.NewSession, state_dir: Path, chain: dict[str, Any], notes: list[str],
           start_ms: int | None = None) -> int:
    """Session after session while the chain asks for more; each archived when it ends (a chain of one stays
    in the state dir, for ``status`` and ``report``)."""
    while True:
        try:
            code, final = _begin_and_run(opts, plan, state_dir, chain, notes, start_ms)
        except ConfigError as exc:
            if chain["index"] == 1 or plan.replay is None:
                raise
            print(f"the chain stops after {chain['index'] - 1} session(s): {exc}", file=opts.out)
            return EXIT_OK
        code, notes, chain, start_ms = _after(code, final, state_dir, chain)
        if chain is None:
            return code
        plan = dataclasses.replace(plan, start=None)  # the next session begins where the last one ended


def _after(code: int, final: Session | None, state_dir: Path,
           chain: dict[str, Any]) -> tuple[int, list[str], dict[str, Any] | None, int | None]:
    """(exit code, notes for the next session, its chain entry or None to stop, its start in --sim)."""
    if final is None or not final.finished:
        return code, [], None, None  # interrupted
    more = chain["sessions"] is None or chain["index"] < chain["sessions"]
    if chain["sessions"] != 1:
        notes = [f"archived session {final.session} to {archive(state_dir, final.session)}"]
    else:
        notes = []
    if final.halted and chain["stop_on_halt"]:
        return code, notes, None, None
    if not more:  # a chain that ran all its sessions is done, whatever each one's end (history tells)
        return (code if chain["sessions"] == 1 else EXIT_OK), notes, None, None
    nxt = {**chain, "index": chain["index"] + 1}
    start_ms = final.start_ms + final.intervals * final.interval_secs * 1000 if final.mode == "sim" else None
    return EXIT_OK, notes, nxt, start_ms


def _begin_and_run(opts: Options, plan: wiring.NewSession, state_dir: Path, chain: dict[str, Any],
                   notes: list[str], start_ms: int | None) -> tuple[int, Session | None]:
    stopping.check()
    world, start_ms, now_ms = plan.open(state_dir, start_ms)
    try:
        notes = notes + world.preflight(start_ms)
        stopping.check()
        jr = journal.Journal(state_dir / JOURNAL)
        session = engine.begin(jr, plan.mode, plan.cfg, world.source, start_ms, now_ms, chain=chain)
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
            code, more, chain, start_ms = _after(ended[0], session, state_dir, session.chain or ONE)
            if chain is None:
                for line in notes + more + [ended[1]]:
                    print(line, file=opts.out)
                return code
            plan = wiring.next_session(session, speed=opts.speed, env=opts.env, confirm_live=opts.confirm_live)
            return _chain(opts, plan, state_dir, chain, notes + more, start_ms)  # the chain goes on
        try:
            world = wiring.resumed(session, state_dir, speed=opts.speed, env=opts.env, confirm_live=opts.confirm_live)
            lost = _lost_orders(world, history)
        except BaseException:
            jr.close()
            raise
        notes += [f"journal loss: the venue holds order {h.order.key} in {h.order.intent.slug}, which the journal "
                  "does not know: it is adopted for its interval, never answered with a second order" for h in lost]
        notes.append(f"resuming session {session.session} at {describe_state(session)} (journal record {session.seq})")
        code, final = _run(opts, session, jr, world, notes, resumed=True, adopt=lost)
        code, notes, chain, start_ms = _after(code, final, state_dir, session.chain or ONE)
        if chain is None:
            return code
        plan = wiring.next_session(session, speed=opts.speed, env=opts.env, confirm_live=opts.confirm_live)
        return _chain(opts, plan, state_dir, chain, notes, start_ms)


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
         resumed: bool, adopt: list[Held] | None = None) -> tuple[int, Session | None]:
    state_dir = opts.state_dir
    log = logs.open_log(state_dir / LOG, world.secrets + wiring.known_secrets(opts.env) + opts.notify)
    console = Console(world.clock.display_ms, opts.out, opts.live_view)
    for note in notes:
        logs.event(log, logging.ERROR if note.startswith("journal loss") else logging.WARNING, "runner", note)
    console.start(session, "\n".join(notes))
    stop = threading.Event()
    try:
        with Watchers(opts.notify, opts.metrics_port, opts.metrics_host, world, log) as watch:
            eng = engine.Engine(session, jr, world.clock, world.feed, world.venue, log=log, stop=stop,
                                decision_first=session.mode in ("paper", "live"),
                                resumed=resumed, adopt=adopt or (),
                                observers=engine.session_observers(state_dir, world.venue, log,
                                                                   [console, *watch.observers]))
            watch.start(session, resumed)
            try:
                with interrupts(stop, world.clock.wake):
                    final = eng.run()
            except Interrupted as exc:
                console.close()
                logs.event(log, 30, "runner", str(exc), interval=eng.session.interval, error_code=exc.code)
                print(f"stopped at {describe_state(eng.session)}: {exc}", file=console.out)
                return EXIT_INTERRUPTED, None
            finally:
                console.close()
                jr.close()
                world.close()
            watch.end(final, summary(final))
    finally:
        logs.close(log)
    console.finish(final, str(state_dir))
    return (EXIT_HALTED if final.halted else EXIT_OK), final
