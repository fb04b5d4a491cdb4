"""The per-object spam filter: client-go's ``EventSourceObjectSpamFilter``.

client-go (``tools/record/events_cache.go``) gives every source + object (``getSpamKey``:
reporting component and host, the object's kind, namespace, name, uid and apiVersion) a
token bucket of ``defaultSpamBurst = 25`` tokens refilled at ``defaultSpamQPS = 1/300``
(one every 5 minutes), kept in an LRU of ``maxLruCacheEntries = 4096`` buckets; an event
that finds its bucket empty is dropped before aggregation (so it is not counted in a
series either). A bucket evicted from the LRU starts full again when its object comes
back, as in client-go.

Not thread-safe: used from the recorder's event loop only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

__all__ = ["SPAM_BURST", "SPAM_CACHE_SIZE", "SPAM_QPS", "SpamFilter"]

SPAM_BURST: Final = 25
SPAM_QPS: Final = 1.0 / 300.0
SPAM_CACHE_SIZE: Final = 4096


class SpamFilter:
    """Token buckets per key (``burst`` tokens, refilled at ``qps`` per second of
    ``clock``), at most ``max_entries`` of them (least recently used evicted)."""

    __slots__ = ("_buckets", "_clock", "burst", "max_entries", "qps")

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        burst: int = SPAM_BURST,
        qps: float = SPAM_QPS,
        max_entries: int = SPAM_CACHE_SIZE,
    ) -> None:
        if burst < 1 or qps <= 0 or max_entries < 1:
            raise ValueError("SpamFilter needs burst >= 1, qps > 0 and max_entries >= 1")
        self.burst = burst
        self.qps = qps
        self.max_entries = max_entries
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, key: Hashable) -> bool:
        """Take a token from ``key``'s bucket: ``False`` (drop the event) when it is empty."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        # A clock stepping back refills nothing (max), as the token bucket's reservation.
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.qps)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, max(now, last))
        if len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
