"""Work-queue metrics hooks, and the scoped provider queues consult at construction.

:class:`QueueMetrics` is what a metrics exporter implements for one queue (per-event
hooks). A queue takes its hooks **at construction** (``metrics=``) and never changes
them. Code that builds queues it does not own (a :class:`~informer.Controller` builds
its own queue, a user subclass may not forward keyword arguments) can instead install a
:data:`QueueMetricsProvider` for a scope, like controller-runtime's workqueue
``MetricsProvider``, but scoped rather than global::

    with use_queue_metrics_provider(metrics.queue_metrics):
        controller = MyController(factory, api)   # its queue gets metrics.queue_metrics(name)

A queue built with ``metrics=None`` inside that block calls ``provider(name)`` once, in its
constructor; a queue built outside it, or with explicit ``metrics``, never consults it.
The provider lives in a :class:`~contextvars.ContextVar`, so concurrent tasks (and
threads) see only the provider they installed; blocks nest, the innermost wins, and
``use_queue_metrics_provider(None)`` switches the provider off inside a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Protocol

__all__ = [
    "QueueMetrics",
    "QueueMetricsProvider",
    "provided_queue_metrics",
    "use_queue_metrics_provider",
]


class QueueMetrics(Protocol):
    """Per-event hooks a metrics exporter implements for one queue (all sync, all cheap).

    The queue calls them on the event loop right after the state change they describe.
    Gauges that depend on time (unfinished work, longest running processor) are not
    pushed: the exporter reads them from the queue's methods when it is scraped.
    """

    def add(self) -> None:
        """An item became pending (a counted add; de-duplicated adds are not reported)."""
        ...

    def get(self, queue_seconds: float) -> None:
        """An item was handed to a worker after waiting ``queue_seconds`` since its add."""
        ...

    def done(self, work_seconds: float) -> None:
        """A worker finished an item it held for ``work_seconds``."""
        ...

    def retry(self) -> None:
        """``add_after`` (hence ``add_rate_limited``) was called on a live queue."""
        ...

    def set_depth(self, depth: int) -> None:
        """The number of pending items (see :meth:`~informer.WorkQueue.depth`) changed."""
        ...


QueueMetricsProvider = Callable[[str], QueueMetrics]
"""Queue name -> the hooks for a new queue of that name (called once per queue)."""

_provider: ContextVar[QueueMetricsProvider | None] = ContextVar(
    "informer_queue_metrics_provider", default=None
)


@contextlib.contextmanager
def use_queue_metrics_provider(provider: QueueMetricsProvider | None) -> Iterator[None]:
    """Within the block, queues built without ``metrics`` get ``provider(name)``."""
    token = _provider.set(provider)
    try:
        yield
    finally:
        _provider.reset(token)


def provided_queue_metrics(name: str) -> QueueMetrics | None:
    """The hooks the current provider gives a new queue called ``name`` (None: no provider)."""
    provider = _provider.get()
    return provider(name) if provider is not None else None
