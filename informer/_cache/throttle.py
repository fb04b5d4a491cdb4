"""``LogThrottle``: at most one log line per cause per interval, the rest counted.

A server (or a proxy) can send the same bad event a hundred thousand times; logging each
one costs more than the event and floods the logs. The Reflector asks its throttle before
each such line: the first line of a cause is logged, the following ones within
``interval`` seconds are only counted, and the next line logged for that cause (or the
summary the Reflector logs when the watch ends) says how many were suppressed.

Causes are a small fixed set of strings chosen by the caller (never data from the
server), so the state stays bounded. Not thread-safe; one event loop, like the Reflector.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LogThrottle"]


class LogThrottle:
    """Decides which log lines of each cause are written (see the module docstring)."""

    __slots__ = ("_clock", "_next", "_pending", "interval")

    def __init__(self, interval: float = 60.0, *, clock: Callable[[], float] = time.monotonic):
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}  # cause -> when its next line may be logged
        self._pending: dict[str, int] = {}  # cause -> lines suppressed since its last one

    def allow(self, cause: str) -> int | None:
        """``None``: suppress this line (it is counted). Otherwise log it, reporting the
        returned number of lines of ``cause`` suppressed since the last one logged."""
        now = self._clock()
        due = self._next.get(cause)
        if due is not None and now < due:
            self._pending[cause] = self._pending.get(cause, 0) + 1
            return None
        self._next[cause] = now + self.interval
        return self._pending.pop(cause, 0)

    def drain(self) -> dict[str, int]:
        """The suppressed counts not reported yet, by cause; they are reset (the interval
        of each cause keeps running)."""
        pending, self._pending = self._pending, {}
        return pending
