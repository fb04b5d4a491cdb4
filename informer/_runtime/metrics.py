"""Prometheus metrics for informers, work queues, controllers and leader election.

Names follow controller-runtime (and client-go's workqueue and leader-election metrics)
so that existing dashboards and alerts work unchanged; informer metrics are ours, prefixed
``informer_`` and labelled ``resource`` (the informer's name, e.g. ``configmaps@demo``).

Design: scrape-time collection
------------------------------
Almost everything is read from the live statistics objects when Prometheus scrapes, by one
custom collector (:class:`Metrics` owns it) in a **dedicated** ``CollectorRegistry`` (never
the global default: two runners, or two tests, in one process do not collide):

- informers: ``Reflector.stats`` (:class:`~informer.ReflectorStats`), the store's size,
  ``has_synced()``, each listener's ``buffer_depth()``/``handled``/``failures``;
- work queues: ``depth()``, ``unfinished_work_seconds()``,
  ``longest_running_processor_seconds()``;
- controllers: :class:`~informer.ReconcileStats` (counters by result, active workers);
- leader election: ``is_leader()``;
- credentials: each added ApiClient's :class:`~informer._credentials.AuthStatus`.

The watch hot path therefore makes **no** metric call at all. Histograms cannot be
rebuilt from counters, so the only per-event hooks are cheap Python arithmetic (a
``bisect`` into a bucket list and two additions; no locks, no prometheus-client objects):
a :class:`QueueRecorder` each work queue is built with (:meth:`Metrics.queue_metrics`;
:class:`~informer._queue.metrics.QueueMetrics` hooks: adds, retries, queue and work
durations) and an observer appended to each controller's ``ReconcileStats.observers``
(reconcile durations). Everything runs on the event loop's thread, so no locking is
needed as long as collection happens on that thread too, which :func:`serve_metrics`
guarantees (a scrape renders on the loop; rendering a few thousand series takes
milliseconds).

Metric names
------------
=================================================== ========================== =========
name                                                labels                     type
=================================================== ========================== =========
``workqueue_depth``                                 name, controller           gauge
``workqueue_adds_total``                            name, controller           counter
``workqueue_queue_duration_seconds``                name, controller           histogram
``workqueue_work_duration_seconds``                 name, controller           histogram
``workqueue_retries_total``                         name, controller           counter
``workqueue_unfinished_work_seconds``               name, controller           gauge
``workqueue_longest_running_processor_seconds``     name, controller           gauge
``controller_runtime_reconcile_total``              controller, result         counter
``controller_runtime_reconcile_errors_total``       controller                 counter
``controller_runtime_reconcile_time_seconds``       controller                 histogram
``controller_runtime_active_workers``               controller                 gauge
``controller_runtime_max_concurrent_reconciles``    controller                 gauge
``leader_election_master_status``                   name                       gauge
``informer_lists_total``                            resource                   counter
``informer_watches_total``                          resource                   counter
``informer_relists_total``                          resource                   counter
``informer_expired_total``                          resource                   counter
``informer_watch_stalls_total``                     resource                   counter
``informer_list_watch_errors_total``                resource                   counter
``informer_watch_events_total``                     resource, type             counter
``informer_reflector_bad_events_total``             resource, cause            counter
``informer_reflector_suppressed_logs_total``        resource                   counter
``informer_reflector_watch_list_fallbacks_total``   resource                   counter
``informer_store_objects``                          resource                   gauge
``informer_last_watch_event_age_seconds``           resource                   gauge
``informer_synced``                                 resource                   gauge
``informer_handler_buffer_depth``                   resource, handler          gauge
``informer_handler_notifications_total``            resource, handler          counter
``informer_handler_failures_total``                 resource, handler          counter
``informer_auth_failures_total``                    code (401, 403)            counter
``informer_credential_reloads_total``               kind (token, certificate)  counter
``informer_auth_failing_seconds``                                              gauge
=================================================== ========================== =========

``workqueue_*`` carry both ``name`` and ``controller`` (equal), as controller-runtime
does since v0.15; their histograms use its buckets (``1e-8`` to ``1e3`` seconds, x10) and
``controller_runtime_reconcile_time_seconds`` its 40 buckets from 5 ms to 60 s. Process
metrics (``process_*``, ``python_gc_*``, ``python_info``) are registered too, like
controller-runtime's process and Go collectors. ``result`` is one of ``success``,
``error``, ``requeue``, ``requeue_after``; ``type`` one of ``ADDED``, ``MODIFIED``,
``DELETED``, ``BOOKMARK``, ``ERROR``, ``skipped``; ``cause`` one of
``malformed_event``, ``unknown_type``, ``no_resource_version``, ``store_failed``. When
two informers, handlers or queues would share a label value, later ones get ``#2``,
``#3``... appended (a series must be unique).

HTTP exposition
---------------
:func:`serve_metrics` serves ``GET /metrics`` (:func:`metrics_routes`) with the package's
HTTP server, :class:`~informer._runtime.http.HttpServer`, in plain HTTP; HTTPS with
token authentication and authorization is ``Observability.serve(metrics_secure=True)``.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import anyio
import anyio.abc
import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._controller import Controller
from .._credentials import AuthStatus
from .._kube import ApiClient, auth_status
from .._queue.workqueue import WorkQueue
from .._reconcile import ReconcileOutcome, ReconcileStats
from .._types import LeaderStatus
from .credentials import credential_families
from .http import HttpHandler, HttpRequest, HttpResponse, serve_http
from .informer_metrics import informer_families
from .informer_metrics import unique_label as _unique

__all__ = [
    "RECONCILE_TIME_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "Metrics",
    "QueueRecorder",
    "metrics_routes",
    "serve_metrics",
]

log = structlog.get_logger(__name__)

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

_RESULTS: Final[tuple[ReconcileOutcome, ...]] = ("success", "error", "requeue", "requeue_after")
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


class _ReconcileRecorder:
    """``ReconcileStats`` observer: reconcile durations into a histogram."""

    __slots__ = ("time",)

    def __init__(self) -> None:
        self.time = _Histogram(RECONCILE_TIME_BUCKETS)

    def __call__(self, outcome: ReconcileOutcome, seconds: float) -> None:
        self.time.observe(seconds)


@dataclass(slots=True)
class _QueueEntry:
    queue: WorkQueue[Any]
    recorder: QueueRecorder | None


@dataclass(slots=True)
class _ControllerEntry:
    name: str
    stats: ReconcileStats
    recorder: _ReconcileRecorder


# ----------------------------------------------------------------------------- Metrics


class Metrics:
    """The Prometheus metrics of one runner, in their own ``CollectorRegistry``.

    Register what to export with :meth:`add_factory` (its informers, including ones it
    creates later), :meth:`add_informer`, :meth:`add_controller` (its queue and its
    reconcile statistics), :meth:`add_queue` and :meth:`add_elector`; then serve
    :attr:`registry` with :func:`serve_metrics` or render it with :meth:`render`.

    A queue's per-event hooks are fixed when the queue is built, so build controllers
    (and queues) with this object's provider in place, then register them::

        with use_queue_metrics_provider(metrics.queue_metrics):
            controller = MyController(factory, api)
        metrics.add_controller(controller)

    A queue built without a :class:`QueueRecorder` exports only its gauges (depth,
    unfinished work, longest running processor). Registering the same object twice is a
    no-op. All methods, and collection, must run on the event loop's thread.
    ``process_metrics`` adds the standard ``process_*``/``python_*`` collectors.
    ``clock`` must be the reflectors' clock (``time.monotonic`` unless injected) for
    ``informer_last_watch_event_age_seconds``.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._factories: list[SharedInformerFactory] = []
        self._informers: list[SharedIndexInformer] = []
        self._queues: list[_QueueEntry] = []
        self._controllers: list[_ControllerEntry] = []
        self._electors: list[LeaderStatus] = []
        self._auth: list[AuthStatus] = []
        self.registry.register(_Collector(self))
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    # -- registration ---------------------------------------------------------------------

    def queue_metrics(self, name: str) -> QueueRecorder:
        """The :data:`~informer._queue.metrics.QueueMetricsProvider`: fresh hooks for a
        new queue called ``name`` (pass it to ``use_queue_metrics_provider``, or call it
        for a queue's ``metrics=`` argument). Export the queue with :meth:`add_queue` or
        :meth:`add_controller`."""
        return QueueRecorder()

    def add_factory(self, factory: SharedInformerFactory) -> None:
        """Export every informer of ``factory``, now and later (read at scrape time)."""
        if all(f is not factory for f in self._factories):
            self._factories.append(factory)

    def add_informer(self, informer: SharedIndexInformer) -> None:
        """Export one informer (not needed for informers of an added factory)."""
        if all(i is not informer for i in self._informers):
            self._informers.append(informer)

    def add_queue(self, queue: WorkQueue[Any]) -> QueueRecorder | None:
        """Export ``queue`` (labelled by its ``name``).

        Returns the queue's hooks when it was built with a :class:`QueueRecorder` (see
        :meth:`queue_metrics`): adds, retries and durations are exported from them.
        Otherwise returns ``None`` and only the gauges, read from the queue, are exported.
        """
        for entry in self._queues:
            if entry.queue is queue:
                return entry.recorder
        hooks = queue.metrics
        recorder = hooks if isinstance(hooks, QueueRecorder) else None
        if hooks is None:
            log.debug(
                "metrics.queue_without_hooks",
                queue=queue.name,
                hint="build it inside use_queue_metrics_provider(metrics.queue_metrics)",
            )
        self._queues.append(_QueueEntry(queue, recorder))
        return recorder

    def add_controller(self, controller: Controller) -> None:
        """Export a controller's queue and reconcile statistics (labelled by its name)."""
        if any(c.stats is controller.stats for c in self._controllers):
            return
        recorder = _ReconcileRecorder()
        controller.stats.observers.append(recorder)
        self._controllers.append(_ControllerEntry(controller.name, controller.stats, recorder))
        self.add_queue(controller.queue)

    def remove_factory(self, factory: SharedInformerFactory) -> None:
        """Stop exporting ``factory``'s informers (it was stopped: sharding by namespace)."""
        self._factories = [f for f in self._factories if f is not factory]

    def remove_controller(self, controller: Controller) -> None:
        """Stop exporting a controller's queue and reconcile statistics (it stopped)."""
        self._controllers = [c for c in self._controllers if c.stats is not controller.stats]
        self._queues = [q for q in self._queues if q.queue is not controller.queue]

    def add_elector(self, elector: LeaderStatus) -> None:
        """Export ``leader_election_master_status{name}`` (1 leading, 0 not)."""
        if all(e is not elector for e in self._electors):
            self._electors.append(elector)

    def add_api_client(self, api_client: ApiClient) -> None:
        """Export how the API server answers ``api_client``'s credentials (401/403
        counts, rotated files, the current streak: :mod:`informer._runtime.credentials`)."""
        status = auth_status(api_client)
        if all(s is not status for s in self._auth):
            self._auth.append(status)

    @property
    def informers(self) -> list[SharedIndexInformer]:
        """Every exported informer (the factories' ones first), without duplicates."""
        seen: dict[int, SharedIndexInformer] = {}
        for factory in self._factories:
            for informer in factory.informers:
                seen.setdefault(id(informer), informer)
        for informer in self._informers:
            seen.setdefault(id(informer), informer)
        return list(seen.values())

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if ``accept`` asks) and its type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    # -- collection -----------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Build every family from the live objects (called by the registry)."""
        yield from self._collect_queues()
        yield from self._collect_controllers()
        yield from self._collect_electors()
        yield from self._collect_informers()
        yield from credential_families(self._auth, time.monotonic())

    def _collect_queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "workqueue_depth", "Current depth of workqueue", labels=_QUEUE_LABELS
        )
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
        for entry in self._queues:
            queue, rec = entry.queue, entry.recorder
            name = _unique(queue.name, seen)
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

    def _collect_controllers(self) -> Iterator[Metric]:
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
        for entry in self._controllers:
            name = _unique(entry.name, seen)
            stats = entry.stats
            for result in _RESULTS:
                total.add_metric([name, result], stats.total.get(result, 0))
            errors.add_metric([name], stats.errors)
            hist = entry.recorder.time
            rtime.add_metric([name], hist.cumulative(), hist.sum)
            active.add_metric([name], stats.active_workers)
            workers.add_metric([name], stats.workers)
        yield from (total, errors, rtime, active, workers)

    def _collect_electors(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
            "backup, 1 indicates master. 'name' is the string used to identify the lease. "
            "Please make sure to group by name.",
            labels=("name",),
        )
        seen: dict[str, int] = {}
        for elector in self._electors:
            status.add_metric([_unique(elector.name, seen)], 1.0 if elector.is_leader() else 0.0)
        yield status

    def _collect_informers(self) -> Iterator[Metric]:
        yield from informer_families(self.informers, self._clock())


class _Collector(Collector):
    """Adapts :class:`Metrics` to the registry (kept separate: the registry holds it)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.collect())


def metrics_routes(registry: CollectorRegistry | Metrics) -> dict[str, HttpHandler]:
    """``/metrics`` for ``registry``, in the format the scraper's ``Accept`` asks for."""
    reg = registry.registry if isinstance(registry, Metrics) else registry

    def metrics(request: HttpRequest) -> HttpResponse:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return HttpResponse(200, encoder(reg), content_type)

    return {"/metrics": metrics}


async def serve_metrics(
    address: str,
    registry: CollectorRegistry | Metrics,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` of ``registry`` on ``address`` (``":8080"``: every
    interface; ``"127.0.0.1:0"``: a free loopback port) until cancelled.

    ``task_status.started(port)`` reports the bound port. Raises :class:`BindError`
    (before ``started``) when the address cannot be used.
    """
    await serve_http(address, metrics_routes(registry), name="metrics", task_status=task_status)
