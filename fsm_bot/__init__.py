"""fsm-bot: a crash-safe trading bot for Polymarket's "Bitcoin Up or Down" markets.

Every interval is one run of an explicit finite-state machine (``fsm_bot.machine``); every
transition is journaled before the action it announces (``fsm_bot.journal``), so a run killed
anywhere resumes at the exact state.
"""

__version__ = "0.1.0"
