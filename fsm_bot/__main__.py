"""``python -m fsm_bot``: the same as the ``fsm-bot`` command."""

import sys

from fsm_bot.entry import main

sys.exit(main())
