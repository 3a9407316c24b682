"""The clocks of ``--paper`` and ``--live``: the wall clock, and the test clock that runs X times faster.

The test clock (``--start T --speed X``, accepted only when every base URL is loopback) takes its
starting time from the venue -- the loopback Binance server's ``/api/v3/time`` -- and then runs
``speed`` times faster than wall time, so the bot and the servers it talks to agree on "now" even
across a crash and a resume. Sleeps wait on ``wake``, so Ctrl-C and SIGTERM cut them short.
"""

from __future__ import annotations

import threading
import time


class WallClock:
    """Real time, in ms since the epoch."""

    speed = 1.0

    def __init__(self, wake: threading.Event | None = None) -> None:
        self.wake = wake or threading.Event()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep_until(self, t_ms: int) -> None:
        while not self.wake.is_set():
            left = t_ms - self.now_ms()
            if left <= 0:
                return
            self.wake.wait(min(left / 1000, 1.0))

    def pause(self, secs: float) -> None:
        """A retry's backoff: ``secs`` of this clock's time."""
        self.sleep_until(self.now_ms() + int(secs * 1000))

    display_ms = now_ms


class ScaledClock(WallClock):
    """``start_ms`` at construction, then ``speed`` ms of clock time per wall ms."""

    def __init__(self, start_ms: int, speed: float, wake: threading.Event | None = None) -> None:
        super().__init__(wake)
        if not speed > 0:
            raise ValueError(f"speed: expected a number > 0, got {speed!r}")
        self.start_ms, self.speed = start_ms, speed
        self._wall0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._wall0) * 1000 * self.speed)

    def sleep_until(self, t_ms: int) -> None:
        while not self.wake.is_set():
            left = t_ms - self.now_ms()
            if left <= 0:
                return
            self.wake.wait(min(left / 1000 / self.speed, 1.0))

    display_ms = now_ms
