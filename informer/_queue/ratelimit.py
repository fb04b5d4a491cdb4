"""Rate limiters for the work queue (client-go ``util/workqueue/default_rate_limiters.go``).

A rate limiter decides how long an item must wait before it is re-queued after a failure.
``RateLimitingQueue.add_rate_limited(item)`` calls :meth:`RateLimiter.when` and hands the
answer to ``add_after``; the controller calls :meth:`RateLimiter.forget` (through
``RateLimitingQueue.forget``) once the item succeeded or was given up on.

Contract shared by every limiter here (the :class:`RateLimiter` Protocol):

* ``when(item) -> float``: seconds to wait (``>= 0``). Calling it *records a failure*:
  per-item limiters count it, the bucket consumes a token. It is not a pure query.
* ``forget(item)``: stop tracking ``item`` (its next ``when`` starts from scratch).
* ``num_requeues(item) -> int``: failures recorded for ``item`` since its last ``forget``.

Limiters are plain objects used from one event loop (or one thread); they hold no lock and
never block or await. Per-item state is kept until ``forget`` is called, so a caller that
never forgets leaks one dict entry per distinct item, exactly like client-go.

Time is read from an injectable monotonic clock (``clock=time.monotonic``), so tests can
drive :class:`BucketRateLimiter` with a fake clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

__all__ = [
    "BucketRateLimiter",
    "ExponentialFailureRateLimiter",
    "ItemFastSlowRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "default_controller_rate_limiter",
]

Clock = Callable[[], float]


class RateLimiter(Protocol):
    """How long an item waits before it is retried (client-go ``RateLimiter``)."""

    def when(self, item: Hashable) -> float:
        """Record a failure of ``item`` and return the seconds it must wait."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking ``item``: it succeeded or was given up on."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """Failures recorded for ``item`` since it was last forgotten."""
        ...


class ExponentialFailureRateLimiter:
    """Per-item exponential backoff: ``base * 2**n`` seconds, capped at ``cap``.

    ``n`` is the number of earlier failures of the item, so the first ``when`` returns
    ``base``. The computation never overflows: however many failures, the answer is at
    most ``cap``. ``forget`` resets the item to ``n = 0``.
    (client-go ``ItemExponentialFailureRateLimiter``.)
    """

    __slots__ = ("_base", "_cap", "_failures")

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        if base < 0 or cap < 0:
            raise ValueError(f"base and cap must be >= 0, got base={base!r} cap={cap!r}")
        self._base = float(base)
        self._cap = float(cap)
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        try:
            backoff = math.ldexp(self._base, exp)  # base * 2**exp, exactly
        except OverflowError:
            return self._cap
        return min(backoff, self._cap)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def __repr__(self) -> str:
        return f"ExponentialFailureRateLimiter(base={self._base!r}, cap={self._cap!r})"


class ItemFastSlowRateLimiter:
    """Per-item: ``fast`` seconds for the first ``max_fast_attempts`` failures, then ``slow``.

    (client-go ``ItemFastSlowRateLimiter``.)
    """

    __slots__ = ("_failures", "_fast", "_max_fast_attempts", "_slow")

    def __init__(self, fast: float, slow: float, max_fast_attempts: int) -> None:
        if fast < 0 or slow < 0 or max_fast_attempts < 0:
            raise ValueError("fast, slow and max_fast_attempts must be >= 0")
        self._fast = float(fast)
        self._slow = float(slow)
        self._max_fast_attempts = max_fast_attempts
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self._failures.get(item, 0) + 1
        self._failures[item] = n
        return self._fast if n <= self._max_fast_attempts else self._slow

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def __repr__(self) -> str:
        return (
            f"ItemFastSlowRateLimiter(fast={self._fast!r}, slow={self._slow!r}, "
            f"max_fast_attempts={self._max_fast_attempts!r})"
        )


class BucketRateLimiter:
    """An overall (not per-item) token bucket: ``qps`` tokens a second, at most ``burst``.

    Each ``when`` *reserves* one token, like ``golang.org/x/time/rate.Limiter.Reserve()``:
    the bucket starts full, refills continuously at ``qps``, and may go into debt, so the
    answer is the delay until the reserved token exists (0 while tokens remain). A burst of
    ``burst`` calls gets 0; later calls at the same instant get ``1/qps``, ``2/qps``, ...
    ``num_requeues`` is always 0 and ``forget`` does nothing: the bucket has no per-item
    state. ``qps=math.inf`` disables limiting.
    """

    __slots__ = ("_burst", "_clock", "_last", "_qps", "_tokens")

    def __init__(
        self, qps: float = 10.0, burst: int = 100, *, clock: Clock = time.monotonic
    ) -> None:
        if not qps > 0:
            raise ValueError(f"qps must be > 0, got {qps!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self._qps = float(qps)
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: Hashable) -> float:
        if self._qps == math.inf:
            return 0.0
        now = self._clock()
        # A clock that went backwards adds nothing (x/time/rate: last = min(last, now)).
        elapsed = now - self._last if now > self._last else 0.0
        tokens = min(self._tokens + elapsed * self._qps, float(self._burst)) - 1.0
        self._tokens = tokens
        self._last = now
        return -tokens / self._qps if tokens < 0 else 0.0

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0

    def __repr__(self) -> str:
        return f"BucketRateLimiter(qps={self._qps!r}, burst={self._burst!r})"


class MaxOfRateLimiter:
    """Asks every limiter and answers the worst case (client-go ``MaxOfRateLimiter``).

    ``when`` calls *every* limiter (each records the failure), and returns the largest
    delay; ``num_requeues`` is the largest count; ``forget`` forgets in every limiter.
    Combined with a bucket, the bucket's burst can appear exceeded when some items were
    separately delayed longer by a per-item limiter.
    """

    __slots__ = ("_limiters",)

    def __init__(self, *limiters: RateLimiter) -> None:
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        delay = 0.0
        for limiter in self._limiters:
            delay = max(delay, limiter.when(item))
        return delay

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max((limiter.num_requeues(item) for limiter in self._limiters), default=0)

    def __repr__(self) -> str:
        return f"MaxOfRateLimiter({', '.join(map(repr, self._limiters))})"


def default_controller_rate_limiter(*, clock: Clock = time.monotonic) -> MaxOfRateLimiter:
    """Per-item exponential 5 ms .. 1000 s, and overall 10 qps with a burst of 100.

    (client-go ``DefaultControllerRateLimiter``.) The bucket only shapes retries, not
    first adds.
    """
    return MaxOfRateLimiter(
        ExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
