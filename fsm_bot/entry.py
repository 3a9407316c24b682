"""The ``fsm-bot`` console script: signals are answered before anything else is imported."""

from fsm_bot import stopping

stopping.install()

from fsm_bot.cli import main  # noqa: E402  (after the handlers: a stop during the imports is a flag too)

__all__ = ["main"]
