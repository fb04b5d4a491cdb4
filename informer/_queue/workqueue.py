"""Work queues for controllers (client-go ``util/workqueue``).

:class:`WorkQueue` is a de-duplicating FIFO of hashable items (usually ``"ns/name"`` keys)
with these guarantees, all of client-go's:

* **De-duplication.** An item added while it is queued is a no-op: it keeps its place.
* **Never two workers at once.** An item handed out by :meth:`WorkQueue.get` is
  *processing* until :meth:`WorkQueue.done`. Adding it meanwhile marks it dirty; it is
  queued again (at the back) when ``done`` is called, never handed to a second worker.
* **FIFO.** Items are handed out in the order they were (re-)queued. Waiting ``get`` calls
  are woken in the order they started waiting; a ``get`` that finds an item ready takes it
  at once, without yielding to the event loop, so it may overtake a woken waiter that has
  not run yet (the waiter then waits again). Consequently a worker must await something
  else between ``get`` calls (its reconcile does) or it would starve the loop.
* **Shut down.** After :meth:`WorkQueue.shut_down` every add is ignored, waiting ``get``
  calls wake up, and ``get`` keeps handing out what is still queued, then raises
  :class:`~informer._exceptions.QueueShutDown`. :meth:`WorkQueue.shut_down_with_drain`
  does the same and then waits until no item is processing (as client-go, it does not
  wait for items still queued: the workers calling ``get`` drain those); a later plain
  ``shut_down`` releases that wait.

Who may call what: everything runs on one event loop. Mutating methods (``add``, ``done``,
``shut_down``, ``add_after``, ``add_rate_limited``, ``forget``) are plain methods, safe to
call from sync callbacks and handlers on the loop's thread, never from another thread.
Whoever receives an item from ``get`` must call ``done(item)`` exactly once, whatever
happens (``try``/``finally``); ``done`` of an item that is not processing raises
``ValueError`` (client-go would silently corrupt its queue). ``add_after`` needs a running
loop. ``get`` is cancellable while it waits; a cancelled ``get`` never swallows an item.

:class:`DelayingQueue` adds :meth:`DelayingQueue.add_after`; :class:`RateLimitingQueue`
adds ``add_rate_limited`` / ``forget`` / ``num_requeues`` on top of a
:class:`~informer._queue.ratelimit.RateLimiter` (default:
:func:`~informer._queue.ratelimit.default_controller_rate_limiter`).

Delay design: client-go runs a goroutine that owns a heap of waiting items. A task would
need an owner (a task group, so the queue would have to become an async context manager)
and one task per delayed item would leave orphans on shut down. Instead the queue keeps a
heap of ``(ready_at, seq, item)`` in loop time, a dict ``item -> (ready_at, seq)`` holding
each item's one pending entry, and a *single* ``loop.call_at`` timer handle armed at the
earliest entry. ``add_after`` is O(log n) and only re-arms when the new entry is the
earliest; when the timer fires it adds every due item and re-arms at the next one.
"Earliest wins" uses lazy deletion: an earlier time for a waiting item pushes a new entry
and the old one, whose ``seq`` no longer matches the dict, is skipped when popped (the heap
is rebuilt if stale entries ever outnumber live ones). ``shut_down`` cancels the handle
and drops every waiting item, so nothing outlives the queue and no task is created.

Statistics: ``len(q)`` is the number of items ready to be handed out; :meth:`depth` is
client-go's ``workqueue_depth``: items waiting to be processed, including ones parked until
their in-flight copy is done (items delayed by ``add_after`` are not counted until due).
:meth:`unfinished_work_seconds` (sum over in-flight items of their processing time so far,
O(in-flight)) and :meth:`longest_running_processor_seconds` (O(1)) are computed on demand
from an injectable monotonic ``clock``; a metrics exporter polls them instead of running a
ticker. Per-event hooks go to an optional :class:`~informer._queue.metrics.QueueMetrics`, fixed
at construction: the ``metrics`` argument, else what the provider installed with
:func:`~informer._queue.metrics.use_queue_metrics_provider` gives (none outside such a
block); without hooks the queue does no extra bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .._exceptions import QueueShutDown
from .metrics import QueueMetrics, provided_queue_metrics
from .ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = [
    "DelayingQueue",
    "QueueMetrics",
    "RateLimitingQueue",
    "WorkQueue",
]

T = TypeVar("T", bound=Hashable)
Clock = Callable[[], float]


class WorkQueue(Generic[T]):
    """De-duplicating FIFO work queue; see the module docstring for the contract.

    ``name`` labels the queue (metrics, logs); ``metrics`` receives per-event hooks
    (default: the current queue-metrics provider's, see :mod:`informer._queue.metrics`,
    else none); ``clock`` is the monotonic clock for statistics.
    """

    def __init__(
        self,
        *,
        name: str = "",
        metrics: QueueMetrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self._metrics = metrics if metrics is not None else provided_queue_metrics(name)
        self._clock = clock
        # Ready items, in order. Every element is in _dirty and not in _processing.
        self._queue: deque[T] = deque()
        # Items that need processing (queued, or parked behind their in-flight copy).
        self._dirty: set[T] = set()
        # In-flight items -> processing start time; insertion order is start order.
        self._processing: dict[T, float] = {}
        # Pending items -> time of their add (kept only when metrics are wanted).
        self._add_times: dict[T, float] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._shutting_down = False
        self._drain = False

    # -- the queue ------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing. No-op if already pending or shut down."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        metrics = self._metrics
        if metrics is not None:
            self._add_times[item] = self._clock()
            metrics.add()
            metrics.set_depth(len(self._dirty))
        if item in self._processing:
            return  # re-queued by done()
        self._queue.append(item)
        if self._getters:
            self._wake_getter()

    async def get(self) -> T:
        """Take the next item; wait while none is ready.

        Returns at once, without yielding to the loop, when an item is ready. Raises
        :class:`QueueShutDown` once the queue is shut down and empty. The caller owns the
        item until it calls :meth:`done`.
        """
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(f"work queue {self.name!r} is shut down")
            await self._wait_for_item()
        item = self._queue.popleft()
        self._dirty.remove(item)
        now = self._clock()
        self._processing[item] = now
        metrics = self._metrics
        if metrics is not None:
            metrics.get(now - self._add_times.pop(item, now))
            metrics.set_depth(len(self._dirty))
        return item

    def done(self, item: T) -> None:
        """Finish processing ``item``; re-queue it if it was added meanwhile.

        Raises ``ValueError`` if ``item`` is not being processed.
        """
        try:
            started = self._processing.pop(item)
        except KeyError:
            raise ValueError(f"done({item!r}): item is not being processed") from None
        if self._metrics is not None:
            self._metrics.done(self._clock() - started)
        if item in self._dirty:
            self._queue.append(item)
            if self._getters:
                self._wake_getter()
        if not self._processing and self._drain_waiters:
            self._wake_drain_waiters()

    def shut_down(self) -> None:
        """Ignore adds from now on; ``get`` drains what is queued, then raises.

        Also releases a pending :meth:`shut_down_with_drain`. Idempotent.
        """
        self._drain = False
        self._begin_shut_down()
        self._wake_drain_waiters()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until no item is processing.

        Every item handed out must be ``done`` for this to return (or ``shut_down`` be
        called). Cancellable; cancelling it does not undo the shut down.
        """
        self._drain = True
        self._begin_shut_down()
        loop = asyncio.get_running_loop()
        while self._processing and self._drain:
            waiter = loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                    self._drain_waiters.remove(waiter)

    def shutting_down(self) -> bool:
        """Whether :meth:`shut_down` (or :meth:`shut_down_with_drain`) was called."""
        return self._shutting_down

    def __len__(self) -> int:
        """Items ready to be handed out by ``get`` now."""
        return len(self._queue)

    # -- statistics -----------------------------------------------------------------------

    @property
    def metrics(self) -> QueueMetrics | None:
        """The per-event hooks this queue was built with (None: no hooks)."""
        return self._metrics

    def depth(self) -> int:
        """Items waiting to be processed, including ones parked behind their in-flight copy."""
        return len(self._dirty)

    def unfinished_work_seconds(self) -> float:
        """Sum over in-flight items of how long each has been processing so far."""
        if not self._processing:
            return 0.0
        now = self._clock()
        return sum(now - started for started in self._processing.values())

    def longest_running_processor_seconds(self) -> float:
        """How long the oldest in-flight item has been processing (0 when none is)."""
        for started in self._processing.values():  # first = oldest (insertion order)
            return self._clock() - started
        return 0.0

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} name={self.name!r} queued={len(self._queue)} "
            f"processing={len(self._processing)} shutting_down={self._shutting_down}>"
        )

    # -- internals ------------------------------------------------------------------------

    async def _wait_for_item(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._getters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()  # in case it is still pending
            with contextlib.suppress(ValueError):  # unless already popped by a wake-up
                self._getters.remove(waiter)
            if self._queue and not waiter.cancelled():
                # We were woken for an item but will not take it: pass the wake-up on.
                self._wake_getter()
            raise

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            waiter = getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _begin_shut_down(self) -> None:
        self._shutting_down = True
        getters, self._getters = self._getters, deque()
        for waiter in getters:
            if not waiter.done():
                waiter.set_result(None)
        self._on_shut_down()

    def _on_shut_down(self) -> None:
        """Hook for subclasses: release resources when the queue shuts down."""


class DelayingQueue(WorkQueue[T]):
    """A :class:`WorkQueue` that can add an item later (client-go ``DelayingInterface``).

    Delays are measured on the running event loop's clock (``loop.time()``).
    """

    def __init__(
        self,
        *,
        name: str = "",
        metrics: QueueMetrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(name=name, metrics=metrics, clock=clock)
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, tuple[float, int]] = {}
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add_after(self, item: T, seconds: float) -> None:
        """Add ``item`` once ``seconds`` have passed (now if ``seconds <= 0``).

        If ``item`` is already waiting, the earlier of the two times is kept. Ignored after
        shut down. Must be called on the event loop's thread while the loop runs.
        """
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retry()
        if not seconds > 0:
            self.add(item)
            return
        loop = self._loop = asyncio.get_running_loop()
        ready_at = loop.time() + seconds
        pending = self._waiting.get(item)
        if pending is not None and pending[0] <= ready_at:
            return
        self._seq += 1
        self._waiting[item] = (ready_at, self._seq)
        heapq.heappush(self._heap, (ready_at, self._seq, item))
        if len(self._heap) > 2 * len(self._waiting) + 64:
            self._compact()
        if ready_at < self._timer_at:
            self._arm(ready_at)

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        assert self._loop is not None
        # asyncio may run a timer up to its clock resolution early: whatever the timer was
        # armed for is due by definition.
        deadline = max(self._timer_at, self._loop.time())
        self._timer = None
        self._timer_at = math.inf
        heap, waiting = self._heap, self._waiting
        while heap and heap[0][0] <= deadline:
            _, seq, item = heapq.heappop(heap)
            pending = waiting.get(item)
            if pending is not None and pending[1] == seq:
                del waiting[item]
                self.add(item)
        while heap and self._is_stale(heap[0]):
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])

    def _is_stale(self, entry: tuple[float, int, T]) -> bool:
        pending = self._waiting.get(entry[2])
        return pending is None or pending[1] != entry[1]

    def _compact(self) -> None:
        self._heap = [(at, seq, item) for item, (at, seq) in self._waiting.items()]
        heapq.heapify(self._heap)

    def _on_shut_down(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = math.inf
        self._heap.clear()
        self._waiting.clear()


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` whose retries are paced by a rate limiter.

    ``rate_limiter`` defaults to :func:`~informer._queue.ratelimit.default_controller_rate_limiter`.
    Typical worker: ``get``; reconcile; on success ``forget(item)``; on failure
    ``add_rate_limited(item)`` while ``num_requeues(item)`` is below a limit, else
    ``forget`` and report; always ``done(item)``.
    """

    def __init__(
        self,
        rate_limiter: RateLimiter | None = None,
        *,
        name: str = "",
        metrics: QueueMetrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(name=name, metrics=metrics, clock=clock)
        self._rate_limiter: RateLimiter = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        )

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Record a failure of ``item`` and add it after the limiter's delay."""
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking ``item``'s failures (it succeeded or was given up on)."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Failures recorded for ``item`` since it was last forgotten."""
        return self._rate_limiter.num_requeues(item)
