"""Starting, resuming and inspecting sessions in a state dir: the commands' bodies.

Each function takes plain values, holds the state dir's lock while it works, and returns the
process's exit code; ``cli.py`` only parses flags and maps errors to exit codes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

from fsm_bot import __version__, engine, journal, logs, views
from fsm_bot.config import Config
from fsm_bot.console import Console, row_line, summary, usd
from fsm_bot.errors import ConfigError, Interrupted, JournalCorrupt, StateDirError
from fsm_bot.session import Session, describe_state, fold, iso_seconds
from fsm_bot.statedir import JOURNAL, LOG, METRICS, SESSION_FILES, Lock, archive
from fsm_bot.steps import Begin
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
    """Ctrl-C and SIGTERM set ``stop``: the append in progress finishes, then the engine stops."""
    def handler(signum: int, frame: object) -> None:
        stop.set()
        wake.set()

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
    if opts.mode in wiring.REAL_MODES:
        return _start_real(opts, cfg)
    state_dir = opts.state_dir
    source = wiring.sim_source(opts.data)  # every flag is checked before the state dir is touched
    feed = wiring.replay_feed(source)
    start_ms = (wiring.parse_start(opts.start, cfg.interval_secs) if opts.start
                else wiring.default_start(feed, cfg, opts.data is None))
    wiring.check_span(feed, cfg, start_ms)
    state_dir.mkdir(parents=True, exist_ok=True)
    with Lock.acquire(state_dir) as lock:
        notes = _lock_notes(lock) + _clear_for_new_session(state_dir, opts.fresh)
        world = wiring.sim_world(state_dir, cfg, source, start_ms, opts.speed, feed=feed)
        return _begin(opts, cfg, world, start_ms, start_ms, notes)


def _start_real(opts: Options, cfg: Config) -> int:
    """``--paper`` and ``--live``: check flags and credentials, open the adapters, pre-flight, begin."""
    test_clock = wiring.check_test_clock(cfg, opts.mode, opts.start, opts.speed)
    creds = _live_credentials(opts) if opts.mode == "live" else None
    if opts.data is not None:
        raise ConfigError("--data replays a file: it belongs to --sim and backtest, not --paper or --live")
    speed = (opts.speed if math.isfinite(opts.speed) else 1.0) if test_clock else None
    source = wiring.real_source(opts.mode, cfg, speed)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    with Lock.acquire(opts.state_dir) as lock:
        notes = _lock_notes(lock) + _clear_for_new_session(opts.state_dir, opts.fresh)
        wiring.load_adapters(opts.mode)
        clock = wiring.real_clock(cfg, source)
        now = clock.now_ms()
        start_ms = (wiring.parse_start(opts.start, cfg.interval_secs) if opts.start
                    else wiring.next_start(now, cfg.interval_secs))
        if start_ms + cfg.interval_secs * 1000 <= now:
            raise StateDirError(f"--start {opts.start}: that interval has already ended (the clock says "
                                f"{iso_seconds(now)})")
        world = wiring.real_world(opts.state_dir, opts.mode, cfg, source, creds, clock)
        try:
            notes += _preflight(world, start_ms)
        except BaseException:
            world.close()
            raise
        return _begin(opts, cfg, world, start_ms, now, notes, secrets=creds.secrets if creds else ())


def _live_credentials(opts: Options) -> wiring.Credentials:
    if not opts.confirm_live:
        raise ConfigError("--live places real orders with real money: add --confirm-live to say you mean it")
    return wiring.credentials(opts.env)


def _preflight(world: wiring.World, start_ms: int) -> list[str]:
    check = getattr(world.venue, "preflight", None)
    return list(check(start_ms)) if check is not None else []


def _lock_notes(lock: Lock) -> list[str]:
    return [f"took over a stale lock left by pid {lock.stale_pid}"] if lock.stale_pid else []


def _begin(opts: Options, cfg: Config, world: wiring.World, start_ms: int, now_ms: int, notes: list[str],
           secrets: tuple[str, ...] = ()) -> int:
    state_dir = opts.state_dir
    jr = journal.Journal(state_dir / JOURNAL)
    first = Begin(mode=opts.mode, session=wiring.session_id(opts.mode, start_ms, cfg.seed), start_ms=start_ms,
                  config=cfg.to_json(), source=world.source, version=__version__)
    session = engine.begin(jr, first, now_ms)
    views.Views(state_dir).append(views.lines(None, session, first))
    return _run(opts, session, jr, world, notes, resumed=False, secrets=secrets)


def resume(opts: Options, mode: str | None = None) -> int:
    state_dir = opts.state_dir
    if not (state_dir / JOURNAL).exists():
        raise StateDirError(f"{state_dir} holds no session to resume (no {JOURNAL}); `fsm-bot start` begins one")
    with Lock.acquire(state_dir) as lock:
        notes = _lock_notes(lock)
        jr, contents, session = engine.load(state_dir / JOURNAL)
        if contents.torn:
            notes.append(f"dropped a torn last journal record ({contents.torn})")
        if mode is not None and mode != session.mode:
            jr.close()
            raise StateDirError(f"session {session.session} is a --{session.mode} session; it cannot be resumed "
                                f"as --{mode}")
        views.Views(state_dir).rebuild((b, a, s) for b, a, s, _ in engine.sessions(contents.records))
        out = opts.out
        if session.halted is not None:
            jr.close()
            for note in notes:
                print(note, file=out)
            print(f"session {session.session} is HALTED ({session.halted}: {session.halt_detail}); it does not trade "
                  f"again. `fsm-bot start --state-dir {state_dir}` archives it and begins a new session.", file=out)
            return EXIT_HALTED
        if session.finished:
            jr.close()
            for note in notes:
                print(note, file=out)
            print(f"session {session.session} is finished: capital {usd(session.capital)}. Nothing to resume; "
                  f"`fsm-bot start --state-dir {state_dir}` archives it and begins a new session.", file=out)
            return EXIT_OK
        try:
            world, secrets = _resumed_world(opts, session)
        except BaseException:
            jr.close()
            raise
        notes.append(f"resuming session {session.session} at {describe_state(session)} (journal record {session.seq})")
        return _run(opts, session, jr, world, notes, resumed=True, secrets=secrets)


def _resumed_world(opts: Options, session: Session) -> tuple[wiring.World, tuple[str, ...]]:
    """The adapters of the journal's mode, rebuilt from its first record (config, data, endpoints, clock)."""
    if session.mode == "sim":
        return wiring.sim_world(opts.state_dir, session.cfg, session.source, session.ts_ms, opts.speed), ()
    creds = _live_credentials(opts) if session.mode == "live" else None
    if session.source["clock"] != "wall":
        wiring.check_test_clock(session.cfg, session.mode, None, float(session.source["clock"]["speed"]))
    wiring.load_adapters(session.mode)
    world = wiring.real_world(opts.state_dir, session.mode, session.cfg, session.source, creds)
    return world, creds.secrets if creds else ()


def _run(opts: Options, session: Session, jr: journal.Journal, world: wiring.World, notes: list[str],
         resumed: bool, secrets: tuple[str, ...] = ()) -> int:
    state_dir = opts.state_dir
    log = logs.open_log(state_dir / LOG, secrets + wiring.known_secrets(opts.env))
    console = Console(getattr(world.clock, "display_ms", world.clock.now_ms), opts.out, opts.live_view)
    for note in notes:
        logs.event(log, 30, "runner", note)
    console.start(session, "\n".join(notes))
    stop = threading.Event()
    eng = engine.Engine(session, jr, world.clock, world.feed, world.venue, view_files=views.Views(state_dir),
                        observer=console, log=log, metrics_path=state_dir / METRICS, stop=stop, resumed=resumed)
    try:
        with interrupts(stop, world.wake):
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
    s = fold(contents.records)
    m = summary(s)
    if as_json:
        import json
        data = {**{k: (str(v) if not isinstance(v, (int, float, str, type(None))) else v) for k, v in m.items()},
                "state": s.state, "interval": min(s.interval, s.intervals), "streak": s.streak,
                "drawdown": str(s.drawdown), "finished": s.finished, "torn_tail": contents.torn,
                "last_trades": [views.trade_json(r).strip() for r in s.rows()[-last:]]}
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
