"""The books of the followed tokens as the CLOB's market channel leaves them, and how current each is.

- a ``book`` event (or a REST read) takes a book whole; a ``price_change`` entry sets a level's size
  (0 removes it). After each message's changes a book's best bid and ask must be the ones the venue
  states with them; when they are not (a message was missed), the book is marked resyncing, as it is
  on ``tick_size_change``, on a message that cannot be read and when the connection drops. The venue
  hashes its own serialization of a book, which cannot be recomputed here, so the best prices are the
  consistency check.
- a book taken on the current connection is as current as the channel's last market message: on one
  ordered connection, a message proves that everything the venue sent before it has arrived. A book
  that lost its place keeps its levels and the time it was last current, and says it is resyncing.

Two threads use it (the channel's, and the decision's ``book``): every method takes the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal

from fsm_bot.adapters.polymarket.books import LevelChanged
from fsm_bot.ports import Book, Level


@dataclass
class _Kept:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    synced: bool = False  # taken whole (a snapshot) on the current connection and consistent since
    taken_ms: int | None = None  # when it was last taken whole
    lost_ms: int | None = None  # how current it was when it lost its place (None: never had one)


def _best(levels: dict[Decimal, Decimal], bids: bool) -> Decimal | None:
    return (max if bids else min)(levels) if levels else None


class KeptBooks:
    """The followed tokens' books as the channel leaves them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._books: dict[str, _Kept] = {}
        self._heard_ms: int | None = None  # the current connection's last market message

    def follow(self, tokens: tuple[str, ...]) -> None:
        with self._lock:
            self._books = {t: self._books.get(t) or _Kept() for t in tokens}

    def tokens(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._books)

    def unsynced(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(t for t, k in self._books.items() if not k.synced)

    def heard(self, now_ms: int | None) -> None:
        """A market message arrived at ``now_ms`` (None: a new connection, nothing heard on it yet)."""
        with self._lock:
            self._heard_ms = now_ms

    def take(self, token: str, book: Book, now_ms: int) -> None:
        with self._lock:
            kept = self._books.get(token)
            if kept is not None:
                kept.bids = {lv.price: lv.size for lv in book.bids}
                kept.asks = {lv.price: lv.size for lv in book.asks}
                kept.synced, kept.taken_ms = True, now_ms

    def change(self, changes: list[LevelChanged]) -> list[str]:
        """Apply one message's level changes; the tokens whose books then disagree with the venue's best prices."""
        stated: dict[str, tuple[Decimal | None, Decimal | None] | None] = {}
        with self._lock:
            for c in changes:
                kept = self._books.get(c.token)
                if kept is None or not kept.synced:
                    continue
                levels = kept.bids if c.bids else kept.asks
                if c.size > 0:
                    levels[c.price] = c.size
                else:
                    levels.pop(c.price, None)
                stated[c.token] = c.best
            off = [t for t, best in stated.items() if best is not None and self._disagrees(self._books[t], best)]
        self.lose(off)
        return off

    @staticmethod
    def _disagrees(kept: _Kept, best: tuple[Decimal | None, Decimal | None]) -> bool:
        bid, ask = _best(kept.bids, True), _best(kept.asks, False)
        return (bid, ask) != best or (bid is not None and ask is not None and bid >= ask)

    def lose(self, tokens: list[str] | tuple[str, ...] | None = None) -> None:
        """These books (None: all) lost their place; they keep their levels and how current they were."""
        with self._lock:
            for t in self._books if tokens is None else tokens:
                kept = self._books.get(t)
                if kept is not None and kept.synced:
                    kept.synced, kept.lost_ms = False, self._as_of(kept)

    def _as_of(self, kept: _Kept) -> int | None:
        if not kept.synced:
            return kept.lost_ms
        return max(kept.taken_ms or 0, self._heard_ms or 0)

    def book(self, token: str) -> Book | None:
        """The token's book as kept now, with how current it is; None before it was ever taken."""
        with self._lock:
            kept = self._books.get(token)
            if kept is None or kept.taken_ms is None:
                return None
            return Book(bids=tuple(Level(p, kept.bids[p]) for p in sorted(kept.bids, reverse=True)),
                        asks=tuple(Level(p, kept.asks[p]) for p in sorted(kept.asks)),
                        as_of_ms=self._as_of(kept), resyncing=not kept.synced)
