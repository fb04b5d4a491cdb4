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
- leader election: ``is_leader()``.

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
``informer_store_objects``                          resource                   gauge
``informer_last_watch_event_age_seconds``           resource                   gauge
``informer_synced``                                 resource                   gauge
``informer_handler_buffer_depth``                   resource, handler          gauge
``informer_handler_notifications_total``            resource, handler          counter
``informer_handler_failures_total``                 resource, handler          counter
=================================================== ========================== =========

``workqueue_*`` carry both ``name`` and ``controller`` (equal), as controller-runtime
does since v0.15; their histograms use its buckets (``1e-8`` to ``1e3`` seconds, x10) and
``controller_runtime_reconcile_time_seconds`` its 40 buckets from 5 ms to 60 s. Process
metrics (``process_*``, ``python_gc_*``, ``python_info``) are registered too, like
controller-runtime's process and Go collectors. ``result`` is one of ``success``,
``error``, ``requeue``, ``requeue_after``; ``type`` one of ``ADDED``, ``MODIFIED``,
``DELETED``, ``BOOKMARK``, ``ERROR``, ``skipped``. When two informers, handlers or
queues would share a label value, later ones get ``#2``, ``#3``... appended (a series
must be unique).

HTTP exposition
---------------
:func:`serve_metrics` serves ``GET /metrics`` with a deliberately tiny HTTP/1.1 server
on anyio streams (:class:`HttpServer`; also used by :mod:`informer._runtime.health`): only
``informer._kube`` may import aiohttp, and a scrape endpoint needs nothing more than
GET, HEAD and ``Connection: close``. It answers 400 to a malformed request, 404 to an
unknown path, 405 to other methods, 408 when the request head does not arrive within
:data:`READ_TIMEOUT`, 431 when it exceeds :data:`MAX_HEAD_BYTES`, 500 (logged) when a
handler raises, 503 when more than ``max_connections`` are open, and never lets one
connection's failure reach the server or the application.
"""

from __future__ import annotations

import bisect
import http
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast, runtime_checkable
from urllib.parse import parse_qs, urlsplit

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
from .._cache.listener import ProcessorListener
from .._controller import Controller, ReconcileOutcome, ReconcileStats
from .._exceptions import BindError
from .._queue.workqueue import WorkQueue

__all__ = [
    "MAX_HEAD_BYTES",
    "READ_TIMEOUT",
    "RECONCILE_TIME_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "LeaderStatus",
    "Metrics",
    "QueueRecorder",
    "metrics_routes",
    "parse_bind_address",
    "serve_http",
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


@runtime_checkable
class LeaderStatus(Protocol):
    """What metrics and health need from a leader elector (``LeaderElector`` has it).

    ``name`` identifies the lease (the ``name`` label of
    ``leader_election_master_status``); ``is_leader()`` must be cheap and never block.
    """

    @property
    def name(self) -> str: ...

    def is_leader(self) -> bool: ...


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


def _unique(name: str, seen: dict[str, int]) -> str:
    n = seen.get(name, 0) + 1
    seen[name] = n
    return name if n == 1 else f"{name}#{n}"


def _listener_label(listener: ProcessorListener) -> str:
    """The handler's name; an object handler with its own ``__repr__`` (e.g. a
    controller's enqueue handler) is named by it, which says more than its class name."""
    handler = listener.handler
    cls = type(handler)
    if listener.name == cls.__qualname__ and cls.__repr__ is not object.__repr__:
        return repr(handler)
    return listener.name


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

    def add_elector(self, elector: LeaderStatus) -> None:
        """Export ``leader_election_master_status{name}`` (1 leading, 0 not)."""
        if all(e is not elector for e in self._electors):
            self._electors.append(elector)

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
        res = ("resource",)

        def counter(name: str, doc: str, labels: Sequence[str] = res) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=labels)

        def gauge(name: str, doc: str, labels: Sequence[str] = res) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        lists = counter("informer_lists_total", "Complete lists attempted by the reflector")
        watches = counter(
            "informer_watches_total", "Watches opened (attempted), watch-list syncs included"
        )
        relists = counter(
            "informer_relists_total", "Syncs (list or watch-list) after the first successful one"
        )
        expired = counter(
            "informer_expired_total",
            "410 Gone answers (resourceVersion too old) on lists, watches and ERROR events",
        )
        stalls = counter(
            "informer_watch_stalls_total",
            "Watches re-opened by the inactivity guard (nothing received for too long)",
        )
        errors = counter(
            "informer_list_watch_errors_total", "List and watch failures the reflector retried"
        )
        events = counter(
            "informer_watch_events_total",
            "Watch events received, by type (skipped: malformed or unusable events)",
            ("resource", "type"),
        )
        objects = gauge("informer_store_objects", "Objects in the informer's store")
        age = gauge(
            "informer_last_watch_event_age_seconds",
            "Seconds since the last watch event, bookmark or successful sync",
        )
        synced = gauge("informer_synced", "1 once the informer's first full list is stored")
        handler_labels = ("resource", "handler")
        buffer = gauge(
            "informer_handler_buffer_depth",
            "Notifications waiting in an event handler's buffer",
            handler_labels,
        )
        handled = counter(
            "informer_handler_notifications_total",
            "Notifications an event handler has processed",
            handler_labels,
        )
        failures = counter(
            "informer_handler_failures_total",
            "Notifications whose event handler raised",
            handler_labels,
        )
        now = self._clock()
        seen: dict[str, int] = {}
        for informer in self.informers:
            name = _unique(informer.name, seen)
            label = [name]
            stats = informer.reflector.stats
            lists.add_metric(label, stats.lists)
            watches.add_metric(label, stats.watches)
            relists.add_metric(label, stats.relists)
            expired.add_metric(label, stats.expired)
            stalls.add_metric(label, stats.stalls)
            errors.add_metric(label, stats.errors)
            for type_, count in stats.events_by_type.items():
                events.add_metric([name, type_], count)
            objects.add_metric(label, len(informer.indexer))
            if stats.last_event_monotonic is not None:
                age.add_metric(label, max(0.0, now - stats.last_event_monotonic))
            synced.add_metric(label, 1.0 if informer.has_synced() else 0.0)
            handlers: dict[str, int] = {}
            for listener in informer.listeners:
                hl = [name, _unique(_listener_label(listener), handlers)]
                buffer.add_metric(hl, listener.buffer_depth())
                handled.add_metric(hl, listener.handled)
                failures.add_metric(hl, listener.failures)
        yield from (lists, watches, relists, expired, stalls, errors, events)
        yield from (objects, age, synced, buffer, handled, failures)


class _Collector(Collector):
    """Adapts :class:`Metrics` to the registry (kept separate: the registry holds it)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics.collect())


# ------------------------------------------------------------------------- HTTP server

MAX_HEAD_BYTES: Final = 8192
"""Largest accepted request head (request line and headers); larger is answered 431."""

READ_TIMEOUT: Final = 10.0
"""Seconds a client has to send its request head (then 408), and to read the answer."""

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PLAIN = "text/plain; charset=utf-8"
_LINGER = 1.0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed request head: ``path`` is percent-decoded-free (as sent), ``query`` maps
    each parameter to its values (``?verbose`` gives ``{"verbose": [""]}``), header
    names are lower-case."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = _PLAIN
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        return cls(status, text.encode())


HttpHandler = Callable[[HttpRequest], HttpResponse]
"""A route: sync, fast, runs on the event loop; raising answers 500 (and is logged)."""


def parse_bind_address(address: str) -> tuple[str | None, int]:
    """``":8080"`` -> ``(None, 8080)`` (every interface), ``"127.0.0.1:0"`` ->
    ``("127.0.0.1", 0)``, ``"[::1]:9090"`` -> ``("::1", 9090)``. ``ValueError`` otherwise
    (``"0"``, "disabled", is the caller's business)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT or :PORT, got {address!r}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"bad IPv6 address in {address!r}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host must be in brackets: {address!r}")
    return (host or None), int(port)


class HttpServer:
    """A minimal HTTP/1.1 server for GET/HEAD endpoints (see the module docstring).

    ``routes`` maps exact paths to handlers; a key ending in ``/`` also serves every path
    below it (``"/healthz/"`` serves ``/healthz/informers``). Create it with
    :meth:`bind` (which raises :class:`BindError` at once when the address is unusable),
    then run :meth:`serve` until cancelled.
    """

    def __init__(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        max_connections: int = 64,
    ) -> None:
        self._listener = listener
        self._routes = dict(routes)
        self._prefixes = sorted((p for p in routes if p.endswith("/")), key=len, reverse=True)
        self.name = name
        self.max_connections = max_connections
        self._active = 0
        self.port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    @classmethod
    async def bind(
        cls,
        address: str,
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        max_connections: int = 64,
    ) -> HttpServer:
        """Listen on ``address`` (``HOST:PORT``, ``:PORT`` for every interface)."""
        try:
            host, port = parse_bind_address(address)
        except ValueError as exc:
            raise BindError(f"{name}: {exc}", endpoint=name, address=address) from exc
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        except OSError as exc:
            raise BindError(
                f"{name}: cannot listen on {address}: {exc.strerror or exc}",
                endpoint=name,
                address=address,
            ) from exc
        return cls(listener, routes, name=name, max_connections=max_connections)

    async def serve(self) -> None:
        """Accept and answer connections until cancelled; closes the listener on exit."""
        listeners: Sequence[anyio.abc.Listener[anyio.abc.SocketStream]]
        inner = getattr(self._listener, "listeners", None)
        listeners = inner if inner is not None else [self._listener]
        try:
            async with anyio.create_task_group() as tg:
                for listener in listeners:
                    tg.start_soon(self._accept_loop, listener, tg)
        finally:
            with anyio.CancelScope(shield=True):
                await self._listener.aclose()

    async def aclose(self) -> None:
        """Close the listener (only needed when :meth:`serve` was never run)."""
        await self._listener.aclose()

    async def _accept_loop(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], tg: anyio.abc.TaskGroup
    ) -> None:
        accept = getattr(listener, "accept", None)
        if accept is None:  # not a plain socket listener: let anyio drive it
            await listener.serve(self._connection)
            return
        while True:
            try:
                stream: anyio.abc.SocketStream = await accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving
                log.warning("http.accept_failed", server=self.name, error=str(exc))
                await anyio.sleep(0.1)
                continue
            tg.start_soon(self._connection, stream)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self._active += 1
        try:
            async with stream:
                if self._active > self.max_connections:
                    await self._send(stream, HttpResponse.text(503, "too many connections\n"))
                    return
                response, method = await self._respond(stream)
                await self._send(stream, response, head_only=method == "HEAD")
        except Exception as exc:  # a connection never takes the server down
            log.debug("http.connection_failed", server=self.name, error=repr(exc))
        finally:
            self._active -= 1

    async def _respond(self, stream: anyio.abc.SocketStream) -> tuple[HttpResponse, str]:
        try:
            with anyio.fail_after(READ_TIMEOUT):
                head = await _read_head(stream)
        except TimeoutError:
            return HttpResponse.text(408, "request timeout\n"), "GET"
        except _HeadTooLarge:
            return HttpResponse.text(431, "request header fields too large\n"), "GET"
        except _BadRequest as exc:
            return HttpResponse(exc.status, f"{exc.reason}\n".encode()), "GET"
        try:
            request = _parse_head(head)
        except _BadRequest as exc:
            log.debug("http.bad_request", server=self.name, reason=exc.reason)
            return HttpResponse(exc.status, f"{exc.reason}\n".encode()), "GET"
        if request.method not in ("GET", "HEAD"):
            allow = HttpResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
            return allow, request.method
        handler = self._route(request.path)
        if handler is None:
            return HttpResponse.text(404, "not found\n"), request.method
        try:
            return handler(request), request.method
        except Exception:
            log.exception("http.handler_failed", server=self.name, path=request.path)
            return HttpResponse.text(500, "internal error\n"), request.method

    def _route(self, path: str) -> HttpHandler | None:
        handler = self._routes.get(path)
        if handler is not None:
            return handler
        for prefix in self._prefixes:
            if path.startswith(prefix):
                return self._routes[prefix]
        return None

    async def _send(
        self, stream: anyio.abc.SocketStream, response: HttpResponse, *, head_only: bool = False
    ) -> None:
        status = response.status
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: close",
            "Cache-Control: no-store",
            *(f"{k}: {v}" for k, v in response.headers),
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head_only:
            data += response.body
        with anyio.fail_after(READ_TIMEOUT):
            await stream.send(data)
            await stream.send_eof()
        # Wait (briefly) for the client to close: closing first with unread input pending
        # (a request body, pipelined bytes) makes the kernel send RST, and the client
        # could lose the answer.
        with anyio.move_on_after(_LINGER):
            try:
                while True:
                    await stream.receive(4096)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass


class _HeadTooLarge(Exception):
    pass


class _BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def _read_head(stream: anyio.abc.SocketStream) -> bytes:
    """Bytes up to the blank line ending the head (without it); ``_BadRequest`` when the
    client closed first, ``_HeadTooLarge`` past :data:`MAX_HEAD_BYTES`."""
    buf = bytearray()
    searched = 0
    while True:
        match = _HEAD_END.search(buf, max(0, searched - 3))
        if match is not None:
            if match.start() > MAX_HEAD_BYTES:
                raise _HeadTooLarge
            return bytes(buf[: match.start()])
        if len(buf) > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        searched = len(buf)
        try:
            buf += await stream.receive(4096)
        except anyio.EndOfStream:
            raise _BadRequest("incomplete request") from None


def _parse_head(head: bytes) -> HttpRequest:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest("non-ASCII request head") from None
    lines = text.split("\n")
    while lines and not lines[0].strip():  # RFC 9112: ignore leading empty lines
        lines.pop(0)
    if not lines:
        raise _BadRequest("empty request")
    parts = lines[0].rstrip("\r").split(" ")
    if len(parts) != 3:
        raise _BadRequest("malformed request line")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise _BadRequest("malformed method")
    ver = _VERSION.match(version)
    if ver is None:
        raise _BadRequest("malformed HTTP version")
    if ver.group(1) != "1":
        raise _BadRequest("HTTP version not supported", 505)
    if not target.startswith(("/", "http://", "https://")):
        raise _BadRequest("malformed request target")  # origin-form or absolute-form only
    split = urlsplit(target)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        line = line.rstrip("\r")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise _BadRequest("malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpRequest(
        method=method,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
    )


async def serve_http(
    address: str,
    routes: Mapping[str, HttpHandler],
    *,
    name: str = "http",
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` on ``address`` until cancelled; ``task_status.started(port)``
    once listening (the bound port: useful with port 0). Raises :class:`BindError` before
    ``started`` when the address is unusable."""
    server = await HttpServer.bind(address, routes, name=name)
    log.info("http.serving", server=name, address=address, port=server.port)
    task_status.started(server.port)
    await server.serve()


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
