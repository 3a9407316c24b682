"""The driver, cut by job; the only importer of ``states/``.

- ``loop``: the loop (``Engine``): gather, decide, journal, fire, observe. It names no state.
- ``inputs``: per state, how its handler's inputs are gathered through the ports and journaled.
- ``replay``: the journal read back, folded and re-checked decision by decision; a session's begin.
- ``observers``: the one list of what hears a record (view files, console, metrics, log, redeemer).
"""

from fsm_bot.engine.loop import Engine, reusable_machine
from fsm_bot.engine.observers import Metrics, Observer, Transition, session_observers
from fsm_bot.engine.replay import History, begin, load, replay_check, replayed, sessions

__all__ = ["Engine", "History", "Metrics", "Observer", "Transition", "begin", "load", "replay_check", "replayed",
           "reusable_machine", "session_observers", "sessions"]
