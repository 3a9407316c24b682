import sys

from fsm_bot.cli import main

sys.exit(main())
