"""Orders signed before their interval starts, so that the decision only picks one.

The candidates of one interval are signed while the interval before it is still running (``Venue.warm``):
each stake it can have, on either side. ``take`` hands out the order of an intent that matches one exactly,
once; it forgets every order of that interval and of earlier ones as it does, so a signed order is never
posted for another interval nor twice. An intent with no match (its stake came out otherwise) is signed
then, by the caller.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from fsm_bot.errors import BotError
from fsm_bot.logs import event
from fsm_bot.ports import OrderIntent, SignedOrder

log = logging.getLogger("fsm_bot.venue")


class Presigned:
    def __init__(self) -> None:
        self._orders: dict[OrderIntent, SignedOrder] = {}
        self.signed = self.taken = self.missed = 0  # counts, for the metrics and the tests

    def sign(self, intents: Iterable[OrderIntent], sign: Callable[[OrderIntent], SignedOrder]) -> None:
        """Sign each intent not signed yet; one that cannot be signed now is left for the decision to sign."""
        for intent in intents:
            if intent in self._orders:
                continue
            try:
                self._orders[intent] = sign(intent)
            except BotError as exc:
                event(log, logging.WARNING, "venue", f"interval {intent.interval}: an order could not be signed in "
                      f"advance ({exc}); it is signed if chosen", interval=intent.interval, error_code=exc.code)
                continue
            self.signed += 1

    def take(self, intent: OrderIntent) -> SignedOrder | None:
        """The order signed in advance for exactly ``intent``, once; every order of its interval, and of the
        intervals before it, is forgotten."""
        found = self._orders.pop(intent, None)
        self._orders = {i: o for i, o in self._orders.items()
                        if (i.session, i.interval) != (intent.session, intent.interval) and
                        not (i.session == intent.session and i.interval < intent.interval)}
        if found is None:
            self.missed += 1
            event(log, logging.INFO, "venue", f"interval {intent.interval}: no order signed in advance is for "
                  f"${intent.amount_usd} on {intent.side}: signing it now", interval=intent.interval)
        else:
            self.taken += 1
            event(log, logging.INFO, "venue", f"interval {intent.interval}: the order signed in advance for "
                  f"${intent.amount_usd} on {intent.side}", interval=intent.interval)
        return found

    def __len__(self) -> int:
        return len(self._orders)
