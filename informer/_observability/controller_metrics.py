"""The work-queue, controller and leader-election metric families (controller-runtime's
and client-go's names), and the per-event recorders they are built from.

:class:`QueueRecorder` (a queue's :class:`~informer._queue.metrics.QueueMetrics` hooks)
and :class:`ReconcileRecorder` (a ``ReconcileStats`` observer) are plain Python numbers
updated on the event loop's thread; the ``*_families`` functions read them, and the live
queues, controllers and electors, when :class:`~informer._observability.metrics.Metrics` is
scraped (on the same thread). Names, labels and buckets are listed in
:mod:`informer._observability.metrics`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from .._controller.reconcile import ReconcileOutcome, ReconcileStats
from .._events.recorder import EventRecorderStats
from .._meta.types import LeaderStatus
from .._queue.workqueue import WorkQueue
from .informer_metrics import unique_label

__all__ = [
    "RECONCILE_TIME_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "ControllerEntry",
    "QueueEntry",
    "QueueRecorder",
    "ReconcileRecorder",
    "controller_families",
    "elector_families",
    "event_families",
    "queue_families",
]

WORKQUEUE_DURATION_BUCKETS: Final[tuple[float, ...]] = tuple(
    float(f"1e{exp}") for exp in range(-8, 4)
)
"""controller-runtime's ``prometheus.ExponentialBuckets(10e-9, 10, 12)``: 1e-8 .. 1e3 s."""

RECONCILE_TIME_BUCKETS: Final[tuple[float, ...]] = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    *(6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0),
)
"""controller-runtime's ``controller_runtime_reconcile_time_seconds`` buckets."""

_RESULTS: Final[tuple[ReconcileOutcome, ...]] = (
    "success",
    "error",
    "requeue",
    "requeue_after",
    "conflict",
)
_QUEUE_LABELS: Final = ("name", "controller")
_go_float = cast(Callable[[float], str], floatToGoString)  # "le" label text, as Go prints it


# --------------------------------------------------------------------------- recorders


class _Histogram:
    """A fixed-bucket histogram as plain Python numbers (observed on the loop's thread).

    ``counts[i]`` counts observations in ``(buckets[i-1], buckets[i]]``; the last slot is
    ``+Inf``. Cumulated only when scraped.
    """

    __slots__ = ("buckets", "counts", "labels", "sum")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.labels = [_go_float(b) for b in self.buckets]
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for le, n in zip(self.labels, self.counts, strict=False):
            running += n
            out.append((le, float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


class QueueRecorder:
    """The :class:`~informer._queue.metrics.QueueMetrics` hooks of one queue, as plain counters.

    Each hook is a few Python operations (no prometheus-client call, no lock). Depth and
    the time-dependent gauges are read from the queue at scrape time, so ``set_depth`` is
    a no-op.
    """

    __slots__ = ("adds", "queue_duration", "retries", "work_duration")

    def __init__(self) -> None:
        self.adds = 0
        self.retries = 0
        self.queue_duration = _Histogram(WORKQUEUE_DURATION_BUCKETS)
        self.work_duration = _Histogram(WORKQUEUE_DURATION_BUCKETS)

    def add(self) -> None:
        self.adds += 1

    def get(self, queue_seconds: float) -> None:
        self.queue_duration.observe(queue_seconds)

    def done(self, work_seconds: float) -> None:
        self.work_duration.observe(work_seconds)

    def retry(self) -> None:
        self.retries += 1

    def set_depth(self, depth: int) -> None:
        """Ignored: ``workqueue_depth`` is read from ``queue.depth()`` when scraped."""


class ReconcileRecorder:
    """``ReconcileStats`` observer: reconcile durations into a histogram."""

    __slots__ = ("time",)

    def __init__(self) -> None:
        self.time = _Histogram(RECONCILE_TIME_BUCKETS)

    def __call__(self, outcome: ReconcileOutcome, seconds: float) -> None:
        self.time.observe(seconds)


@dataclass(slots=True)
class QueueEntry:
    """An exported queue and its hooks (``None``: built without a :class:`QueueRecorder`)."""

    queue: WorkQueue[Any]
    recorder: QueueRecorder | None


@dataclass(slots=True)
class ControllerEntry:
    """An exported controller: its name, reconcile statistics and duration histogram, and
    its event recorder's counters."""

    name: str
    stats: ReconcileStats
    recorder: ReconcileRecorder
    events: EventRecorderStats


# ------------------------------------------------------------------------- families


def queue_families(entries: Iterable[QueueEntry]) -> Iterator[Metric]:
    """The ``workqueue_*`` families (labelled ``name`` and ``controller``, equal)."""
    depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=_QUEUE_LABELS)
    adds = CounterMetricFamily(
        "workqueue_adds_total",
        "Total number of adds handled by workqueue",
        labels=_QUEUE_LABELS,
    )
    latency = HistogramMetricFamily(
        "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested",
        labels=_QUEUE_LABELS,
    )
    work = HistogramMetricFamily(
        "workqueue_work_duration_seconds",
        "How long in seconds processing an item from workqueue takes.",
        labels=_QUEUE_LABELS,
    )
    unfinished = GaugeMetricFamily(
        "workqueue_unfinished_work_seconds",
        "How many seconds of work has been done that is in progress and hasn't been "
        "observed by work_duration. Large values indicate stuck threads. One can deduce "
        "the number of stuck threads by observing the rate at which this increases.",
        labels=_QUEUE_LABELS,
    )
    longest = GaugeMetricFamily(
        "workqueue_longest_running_processor_seconds",
        "How many seconds has the longest running processor for workqueue been running.",
        labels=_QUEUE_LABELS,
    )
    retries = CounterMetricFamily(
        "workqueue_retries_total",
        "Total number of retries handled by workqueue",
        labels=_QUEUE_LABELS,
    )
    seen: dict[str, int] = {}
    for entry in entries:
        queue, rec = entry.queue, entry.recorder
        name = unique_label(queue.name, seen)
        labels = [name, name]
        depth.add_metric(labels, queue.depth())
        unfinished.add_metric(labels, queue.unfinished_work_seconds())
        longest.add_metric(labels, queue.longest_running_processor_seconds())
        if rec is not None:
            adds.add_metric(labels, rec.adds)
            retries.add_metric(labels, rec.retries)
            latency.add_metric(labels, rec.queue_duration.cumulative(), rec.queue_duration.sum)
            work.add_metric(labels, rec.work_duration.cumulative(), rec.work_duration.sum)
    yield from (depth, adds, latency, work, unfinished, longest, retries)


def controller_families(entries: Iterable[ControllerEntry]) -> Iterator[Metric]:
    """The ``controller_runtime_*`` families (labelled ``controller``)."""
    total = CounterMetricFamily(
        "controller_runtime_reconcile_total",
        "Total number of reconciliations per controller",
        labels=("controller", "result"),
    )
    errors = CounterMetricFamily(
        "controller_runtime_reconcile_errors_total",
        "Total number of reconciliation errors per controller",
        labels=("controller",),
    )
    rtime = HistogramMetricFamily(
        "controller_runtime_reconcile_time_seconds",
        "Length of time per reconciliation per controller",
        labels=("controller",),
    )
    active = GaugeMetricFamily(
        "controller_runtime_active_workers",
        "Number of currently used workers per controller",
        labels=("controller",),
    )
    workers = GaugeMetricFamily(
        "controller_runtime_max_concurrent_reconciles",
        "Maximum number of concurrent reconciles per controller",
        labels=("controller",),
    )
    seen: dict[str, int] = {}
    for entry in entries:
        name = unique_label(entry.name, seen)
        stats = entry.stats
        for result in _RESULTS:
            total.add_metric([name, result], stats.total.get(result, 0))
        errors.add_metric([name], stats.errors)
        hist = entry.recorder.time
        rtime.add_metric([name], hist.cumulative(), hist.sum)
        active.add_metric([name], stats.active_workers)
        workers.add_metric([name], stats.workers)
    yield from (total, errors, rtime, active, workers)


def elector_families(electors: Iterable[LeaderStatus]) -> Iterator[Metric]:
    """``leader_election_master_status{name}``."""
    status = GaugeMetricFamily(
        "leader_election_master_status",
        "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
        "backup, 1 indicates master. 'name' is the string used to identify the lease. "
        "Please make sure to group by name.",
        labels=("name",),
    )
    seen: dict[str, int] = {}
    for elector in electors:
        status.add_metric([unique_label(elector.name, seen)], 1.0 if elector.is_leader() else 0.0)
    yield status


_EVENT_OUTCOMES: Final = ("recorded", "filtered", "dropped", "invalid")


def event_families(entries: Iterable[ControllerEntry]) -> Iterator[Metric]:
    """The ``informer_event*`` families of the controllers' event recorders
    (:class:`~informer._events.recorder.EventRecorderStats`, labelled ``controller``)."""
    calls = CounterMetricFamily(
        "informer_events_total",
        "Events recorded by a controller, by outcome: recorded (buffered to be written), "
        "filtered (spam filter), dropped (buffer full or recorder closed), invalid",
        labels=("controller", "outcome"),
    )
    aggregated = CounterMetricFamily(
        "informer_events_aggregated_total",
        "Event occurrences folded into the series of an Event already written",
        labels=("controller",),
    )
    writes = CounterMetricFamily(
        "informer_event_writes_total",
        "Event writes (creates and series updates) to the API server, by result: "
        "success, or failed (given up after retries or rejected)",
        labels=("controller", "result"),
    )
    seen: dict[str, int] = {}
    for entry in entries:
        name = unique_label(entry.name, seen)
        stats = entry.events
        for outcome in _EVENT_OUTCOMES:
            calls.add_metric([name, outcome], getattr(stats, outcome))
        aggregated.add_metric([name], stats.aggregated)
        writes.add_metric([name, "success"], stats.written)
        writes.add_metric([name, "failed"], stats.failed)
    yield from (calls, aggregated, writes)
