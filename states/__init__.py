"""One module per state of the interval machine.

Each module names the triggers its handler may return (``TRIGGERS``) and a pure ``run``: no I/O,
no clock, no globals, no randomness. Inputs arrive as arguments (the engine gathers them through
the ports and reads the clock once per step); the result is a typed step from ``fsm_bot.steps``.
Only ``fsm_bot.engine`` imports this package.
"""
