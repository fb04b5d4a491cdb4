"""Prometheus metrics for informers, work queues, controllers and leader election.

Names follow controller-runtime (and client-go's workqueue and leader-election metrics)
so that existing dashboards and alerts work unchanged; informer metrics are ours, prefixed
``informer_`` and labelled ``resource`` (the informer's name, e.g. ``configmaps@demo``).

Design: scrape-time collection
------------------------------
(The work-queue, controller, leader-election and Event families and their recorders are
built in :mod:`informer._observability.controller_metrics`, the ``informer_*`` ones of
informers in :mod:`~informer._observability.informer_metrics`, the credential ones in
:mod:`~informer._observability.credential_check`; this module registers and serves them.)

Almost everything is read from the live statistics objects when Prometheus scrapes, by one
custom collector (:class:`Metrics` owns it) in a **dedicated** ``CollectorRegistry`` (never
the global default: two runners, or two tests, in one process do not collide):

- informers: ``Reflector.stats`` (:class:`~informer.cache.ReflectorStats`), the store's
  size, ``has_synced()``, each listener's ``buffer_depth()``/``handled``/``failures``;
- work queues: ``depth()``, ``unfinished_work_seconds()``,
  ``longest_running_processor_seconds()``;
- controllers: :class:`~informer.ReconcileStats` (counters by result, active workers) and
  their event recorder's ``EventRecorderStats``;
- leader election: ``is_leader()``;
- credentials: each added ApiClient's :class:`~informer._rest.credentials.AuthStatus`.

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
``informer_events_total``                           controller, outcome        counter
``informer_events_aggregated_total``                controller                 counter
``informer_event_writes_total``                     controller, result         counter
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
``DELETED``, ``BOOKMARK``, ``ERROR``, ``skipped``; for Events, ``outcome`` one of
``recorded``, ``filtered`` (the spam filter), ``dropped`` (buffer full, recorder
closed), ``invalid`` and ``result`` one of ``success``, ``failed``; ``cause`` one of
``malformed_event``, ``unknown_type``, ``no_resource_version``, ``invalid_object``,
``store_failed``. When
two informers, handlers or queues would share a label value, later ones get ``#2``,
``#3``... appended (a series must be unique).

HTTP exposition
---------------
:func:`serve_metrics` serves ``GET /metrics`` (:func:`metrics_routes`) with the package's
HTTP server, :class:`~informer._http.server.HttpServer`, in plain HTTP; HTTPS with
token authentication and authorization is ``Observability.serve(metrics_secure=True)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import anyio.abc
import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._http.server import HttpHandler, HttpRequest, HttpResponse, serve_http
from .._meta.types import LeaderStatus
from .._queue.workqueue import WorkQueue
from .._rest.api_client import ApiClient
from .._rest.credentials import AuthStatus
from .._rest.transport import auth_status
from .controller_metrics import (
    RECONCILE_TIME_BUCKETS,
    WORKQUEUE_DURATION_BUCKETS,
    QueueRecorder,
    controller_families,
    elector_families,
    event_families,
    queue_families,
)
from .controller_metrics import ControllerEntry as _ControllerEntry
from .controller_metrics import QueueEntry as _QueueEntry
from .controller_metrics import ReconcileRecorder as _ReconcileRecorder
from .credential_check import credential_families
from .informer_metrics import informer_families

__all__ = [
    "RECONCILE_TIME_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "Metrics",
    "QueueRecorder",
    "metrics_routes",
    "serve_metrics",
]

log = structlog.get_logger(__name__)

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
        """Export a controller's queue, reconcile statistics and event recorder counters
        (labelled by its name)."""
        if any(c.stats is controller.stats for c in self._controllers):
            return
        recorder = _ReconcileRecorder()
        controller.stats.observers.append(recorder)
        entry = _ControllerEntry(
            controller.name, controller.stats, recorder, controller.recorder.stats
        )
        self._controllers.append(entry)
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
        counts, rotated files, the current streak:
        :mod:`informer._observability.credential_check`)."""
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
        yield from queue_families(self._queues)
        yield from controller_families(self._controllers)
        yield from event_families(self._controllers)
        yield from elector_families(self._electors)
        yield from self._collect_informers()
        yield from credential_families(self._auth, time.monotonic())

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

    ``task_status.started(port)`` reports the bound port. Raises
    :class:`~informer.observability.BindError` (before ``started``) when the address
    cannot be used.
    """
    await serve_http(address, metrics_routes(registry), name="metrics", task_status=task_status)
