"""Adapters: the ports' implementations. Only ``fsm_bot.wiring`` chooses among them."""
