"""``ExponentialBackoff``: the Reflector's delay between failed attempts.

client-go's ``ExponentialBackoffManager``: ``initial`` (0.8 s), times ``factor`` (2) up to
``cap`` (30 s), each delay stretched by ``1 + random() * jitter`` (so [30, 60) s at the
cap with the default jitter of 1); the sequence resets to ``initial`` once
``reset_after`` (2 min) passed since the end of the previous backoff with no new one.
Not thread-safe; one event loop, like the Reflector.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable

__all__ = ["ExponentialBackoff"]


class ExponentialBackoff:
    """client-go's ``ExponentialBackoffManager`` (see the module docstring).

    ``next_delay()`` returns the delay to sleep now and advances the sequence.
    """

    def __init__(
        self,
        *,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if initial <= 0 or cap < initial or factor < 1 or jitter < 0 or reset_after < 0:
            raise ValueError("invalid backoff parameters")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._random = random
        self._next = initial
        self._quiet_since: float | None = None  # when the last backoff ended

    def next_delay(self) -> float:
        now = self._clock()
        if self._quiet_since is not None and now - self._quiet_since >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * self.factor, self.cap)
        if self.jitter > 0:
            delay *= 1.0 + self._random() * self.jitter
        self._quiet_since = now + delay
        return delay

    def reset(self) -> None:
        self._next = self.initial
        self._quiet_since = None
