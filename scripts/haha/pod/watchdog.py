"""The in-pod deadline: a thread that ticks (log uploads) until the run ends or the deadline passes.

At the deadline it calls `on_expiry` once. It keeps no state of the run: `finished()` stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

LOG_INTERVAL_S = 600.0


def seconds_left(deadline: datetime, now: datetime) -> float:
    return (deadline - now).total_seconds()


class Watchdog:
    def __init__(
        self,
        deadline: datetime,
        now: Callable[[], datetime],
        on_tick: Callable[[], None],
        on_expiry: Callable[[], None],
        interval_s: float = LOG_INTERVAL_S,
    ) -> None:
        self.deadline, self._now, self.interval_s = deadline, now, interval_s
        self._on_tick, self._on_expiry = on_tick, on_expiry
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="haha-deadline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finished(self) -> None:
        self._done.set()

    def wait_finished(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def _watch(self) -> None:
        while (left := seconds_left(self.deadline, self._now())) > 0:
            if self._done.wait(timeout=min(left, self.interval_s)):
                return
            if seconds_left(self.deadline, self._now()) > 0:
                self._on_tick()
        if not self._done.is_set():
            self._on_expiry()
