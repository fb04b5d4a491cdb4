"""``Controller``: informer events -> keys -> a rate-limited work queue -> ``reconcile(key)``.

A controller declares in :meth:`Controller.setup` the informers it watches
(:meth:`Controller.watch`) and how their events become keys (a
:data:`~informer.KeyMapper`: the object's own key by default,
:func:`~informer.owner_key` for the owners named in ``metadata.ownerReferences``, or any
function of yours). Each key lands on the controller's
:class:`~informer.RateLimitingQueue`; :meth:`Controller.run` waits until every watched
informer has synced *and* the controller's handlers have seen the whole initial list,
then runs ``workers`` worker tasks that call :meth:`Controller.reconcile`.

The worker loop is client-go's ``examples/workqueue`` (``process_next_item``): take a key,
reconcile it inside a structlog context bound with ``controller`` and ``key``, then one
place decides what happens to the key; ``done`` is always called. Retries are not the
reconciler's business: ``reconcile`` returns a :class:`~informer.Result` (or ``None``) or
raises.

=============================== =====================================================
``reconcile`` outcome           what the controller does
=============================== =====================================================
returns ``None`` / ``Result()`` ``forget(key)`` (its failure count resets)
``Result(requeue_after=s)``     ``forget(key)``, then ``add_after(key, s)`` (``s > 0``)
``Result(requeue=True)``        ``add_rate_limited(key)`` (the limiter's backoff)
raises ``Exception``            below ``max_retries`` failures in a row:
                                ``add_rate_limited(key)`` and log ``reconcile.failed``
                                (warning, with the traceback); otherwise ``forget(key)``
                                and log ``reconcile.dropped`` (error). A key is thus
                                reconciled at most ``1 + max_retries`` times in a row
                                while it keeps failing; any new event for it starts over.
=============================== =====================================================

``requeue_after`` wins over ``requeue`` when both are set (as in controller-runtime).

Guarantees (from the work queue): a key is never reconciled by two workers at once; a key
that receives events while it is being reconciled is reconciled once more afterwards;
events for a queued key collapse into one reconcile. Reconcilers are level-triggered:
they read the current state from listers and act on it, whatever the events were.

Events -> keys (``informer/_controller/mappers.py``): every add, update (old and new object), delete
(tombstones unwrapped) and periodic resync update is mapped and enqueued. A
``predicate`` filters by object (see :class:`~informer.FilteringHandler`): an object
that stops matching enqueues once more, as a delete, so the reconciler can clean up.
Mappers and predicates run on the informer's listener task for every event: they must
be cheap, must not block and must not mutate the objects.

Shutdown: :meth:`Controller.run` runs until cancelled. On cancellation it shuts the queue
down and waits, shielded and for at most :attr:`Controller.shutdown_grace` seconds, for
the reconciles in flight to finish (they are shielded from the cancellation; once the
grace is over they are cancelled); keys still queued are not processed.

Statistics: :attr:`Controller.stats`, a :class:`~informer.ReconcileStats` (defined with
:class:`~informer.Result` in ``informer/_controller/reconcile.py``).

Writing: :attr:`Controller.client` is a :class:`~informer.Client` on the controller's
factory (field manager: the controller's name without its ``@namespace`` suffix, see
``_controller_tuning.component_of``; discovery shared per ApiClient); :attr:`Controller.recorder` an
:class:`~informer.EventRecorder` of that component. :meth:`Controller.run` runs the
recorder from sync until after the drain, flushing what was recorded within what is left
of ``shutdown_grace`` (at least :data:`EVENT_FLUSH_MIN` s): run by a Manager or alone,
a controller writes its events. Events recorded before :meth:`run` wait in the buffer.

The primary resource is that of the first :meth:`Controller.watch` without ``mapper``
(its own keys are what :meth:`reconcile` receives); :meth:`Controller.owns` maps objects
to their controlling owner of that kind (controller-runtime's ``Owns``).

The factory passed in may be started (``async with factory``) before or after
:meth:`Controller.run`: the controller only waits for its informers' sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
import structlog.contextvars

from .._cache.factory import SharedInformerFactory
from .._cache.handlers import FilteringHandler
from .._cache.informer import SharedIndexInformer
from .._cache.listener import ProcessorListener
from .._cache.store import IndexFunc
from .._client.client import Client
from .._client.discovery import shared_discovery
from .._events.recorder import EventRecorder
from .._exceptions import QueueShutDown
from .._failures import report_failure
from .._meta.objects import ObjectOrTombstone
from .._meta.resource import Resource
from .._meta.types import Obj
from .._queue.metrics import QueueMetrics
from .._queue.ratelimit import RateLimiter
from .._queue.workqueue import RateLimitingQueue
from .mappers import Enqueue, KeyMapper, own_key, owner_key
from .options import check_tuning, component_of, kebab, limiter_from_class
from .reconcile import ReconcileOutcome, ReconcileStats, Result

__all__ = ["Controller", "KeyGate"]

log = structlog.get_logger(__name__)

DEFAULT_SHUTDOWN_GRACE: Final = 5.0
DEFAULT_MAX_RETRIES: Final = 15
EVENT_FLUSH_MIN: Final = 1.0
"""Seconds the recorder's final flush gets at least, however long the drain took."""


@dataclass(frozen=True, slots=True)
class _Watch:
    informer: SharedIndexInformer
    registration: ProcessorListener
    mapper: KeyMapper | None = None
    predicate: Callable[[Obj], bool] | None = None


class KeyGate(Protocol):
    """Decides whether a worker may reconcile a key now (sharding installs one per
    controller as :attr:`Controller.key_gate`).

    ``admit(key)`` is asked after a worker took ``key`` from the queue, before the
    reconcile; False skips the key (``done``, no reconcile, no retry: the gate is
    responsible for re-adding it when it is admitted again). After an admitted key's
    reconcile ends (success, failure or cancellation), ``release(key)`` is called, once.
    Both run on the event loop and must not block.
    """

    def admit(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


# ---------------------------------------------------------------------------- controller


class Controller:
    """Base class of a controller; subclasses implement :meth:`setup` and :meth:`reconcile`.

    ::

        class DeploymentInventory(Controller):
            def setup(self) -> None:
                self.deployments = self.watch(DEPLOYMENTS, mapper=namespace_inventory_key)
                self.watch(CONFIGMAPS, mapper=owner_key("Deployment", api_version="apps/v1"))

            async def reconcile(self, key: str) -> Result | None:
                ...  # read self.deployments.lister(), write through self.api_client

    ``name`` (class attribute; default: the class name in kebab-case) names the
    controller in logs, its queue and its statistics; the ``name=`` argument overrides it
    for one instance (e.g. one instance per namespace).

    Tuning, each a class attribute that the constructor argument of the same name
    overrides for one instance (``None``, the default argument, keeps the class's):
    ``workers`` reconciles run concurrently at most (never two for the same key);
    ``max_retries`` bounds consecutive failed attempts before a key is dropped (module
    docstring); ``shutdown_grace`` is how long :meth:`run` lets in-flight reconciles
    finish on cancellation; ``rate_limiter`` paces retries. The class attribute
    ``rate_limiter`` is a **factory** (e.g. ``default_controller_rate_limiter`` or
    ``lambda: ExponentialFailureRateLimiter(0.01, 60)``) called once per instance, since
    a limiter keeps per-key failure counts that instances must not share; the argument
    is a limiter (default: :func:`~informer.default_controller_rate_limiter`).

    ``queue_metrics`` are the hooks of the controller's queue (default: the current
    queue-metrics provider's, see :func:`~informer.use_queue_metrics_provider`).

    The constructor stores :attr:`factory`, :attr:`api_client`, :attr:`queue`,
    :attr:`client` and :attr:`recorder`, then calls :meth:`setup`. A controller runs
    once (:meth:`run`).
    """

    name: ClassVar[str] = ""
    workers: int = 1
    """Reconciles that may run at once (never two for the same key)."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Consecutive failed reconciles of a key before it is dropped."""
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    """Seconds :meth:`run` waits, on cancellation, for in-flight reconciles to finish."""
    rate_limiter: ClassVar[Callable[[], RateLimiter] | None] = None
    """Factory of each instance's retry limiter (None: the default limiter)."""
    key_gate: KeyGate | None = None
    """Asked before each reconcile whether this replica may reconcile the key now
    (:class:`KeyGate`; set by the Manager when sharding). None: every key is admitted."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = kebab(cls.__name__)

    def __init__(
        self,
        factory: SharedInformerFactory,
        api_client: Any,
        *,
        workers: int | None = None,
        rate_limiter: RateLimiter | None = None,
        max_retries: int | None = None,
        shutdown_grace: float | None = None,
        name: str | None = None,
        queue_metrics: QueueMetrics | None = None,
    ) -> None:
        if name:
            # Per-instance override of the class attribute (it shadows it on reads).
            self.__dict__["name"] = name
        elif not self.name:
            self.__dict__["name"] = kebab(type(self).__name__)
        # Instance attributes shadow the class's only when an argument was given.
        if workers is not None:
            self.workers = workers
        if max_retries is not None:
            self.max_retries = max_retries
        if shutdown_grace is not None:
            self.shutdown_grace = shutdown_grace
        check_tuning(self)
        if rate_limiter is None:
            rate_limiter = limiter_from_class(type(self))
        self.factory = factory
        self.api_client = api_client
        component = component_of(self.name)
        self.client = Client(
            api_client,
            factory=factory,
            field_manager=component,
            discovery=shared_discovery(api_client),
        )
        """Cached reads from :attr:`factory`'s informers, writes to the API server."""
        self.recorder = EventRecorder(self, component)
        """Events about the controller's objects; :meth:`run` runs it."""
        self._primary: Resource | None = None
        self._has_primary = False
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            rate_limiter, name=self.name, metrics=queue_metrics
        )
        self.stats = ReconcileStats(workers=self.workers)
        self._watches: list[_Watch] = []
        self._started = False
        self._stopping = False
        self._in_flight: set[anyio.CancelScope] = set()
        self._failures: dict[str, int] = {}  # consecutive reconcile errors per key
        self._log = structlog.get_logger(__name__, controller=self.name)
        self.setup()

    # -- declaring ------------------------------------------------------------------------

    def setup(self) -> None:
        """Declare watches with :meth:`watch` (called by the constructor). Default: none."""

    def watch(
        self,
        resource: Resource | SharedIndexInformer,
        *,
        mapper: KeyMapper | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        metadata_only: bool = False,
    ) -> SharedIndexInformer:
        """Enqueue keys for every event of ``resource``; return its (shared) informer.

        ``resource`` is a :class:`~informer.Resource`, whose informer comes from
        :attr:`factory` (in the factory's namespace, with the selectors), or an informer
        you built (selectors must then be ``None``). ``mapper`` turns an object into keys
        (default :func:`own_key`); ``predicate`` filters objects; ``indexers`` are added
        to the informer's store. ``metadata_only=True`` watches through the factory's
        metadata-only informer of ``resource`` (its objects carry only ``metadata``, see
        ``SharedInformerFactory.informer_for``), as controller-runtime's
        ``WatchesMetadata``. Keep the returned informer to read its ``lister()`` in
        :meth:`reconcile`. Must be called before :meth:`run`.
        """
        if self._started:
            raise RuntimeError(f"controller {self.name}: watch() after run() started")
        if isinstance(resource, SharedIndexInformer):
            if label_selector or field_selector or metadata_only:
                raise ValueError(
                    "label_selector/field_selector/metadata_only apply to a Resource, "
                    "not to an informer"
                )
            informer = resource
            if indexers:
                informer.add_indexers(indexers)
        else:
            informer = self.factory.informer_for(
                resource,
                label_selector=label_selector,
                field_selector=field_selector,
                indexers=indexers,
                metadata_only=metadata_only,
            )
        handler: Any = Enqueue(
            self.name, self.queue.add, mapper if mapper is not None else own_key, informer.key_func
        )
        if predicate is not None:
            handler = FilteringHandler(predicate, handler)
        registration = informer.add_event_handler(handler)
        self._watches.append(_Watch(informer, registration, mapper, predicate))
        if mapper is None and not self._has_primary:
            self._has_primary = True
            self._primary = _resource_of(resource)
        return informer

    def owns(
        self,
        resource: Resource | SharedIndexInformer,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> SharedIndexInformer:
        """Watch ``resource`` and enqueue, for every event, the key of the object's
        controlling owner (``ownerReferences`` entry with ``controller: true``) of the
        :attr:`primary_resource` kind and group; objects without one enqueue nothing.

        controller-runtime's ``Builder.Owns``. Call it after the primary's
        :meth:`watch` (``RuntimeError`` otherwise); the primary must name its ``kind``.
        Other arguments as :meth:`watch`.
        """
        primary = self._primary
        if self._has_primary and primary is None:
            raise TypeError(
                f"controller {self.name}: the primary watch was given an informer whose "
                "lister-watcher has no Resource: watch the primary as a Resource"
            )
        if primary is None:
            raise RuntimeError(
                f"controller {self.name}: owns() enqueues owners of the primary resource: "
                "call self.watch(<primary Resource>) (without mapper=) before self.owns()"
            )
        if not primary.kind:
            raise ValueError(
                f"controller {self.name}: the primary resource {primary.group_resource} has "
                "no kind, so owner references cannot be matched: give it Resource(kind=...)"
            )
        mapper = owner_key(primary.kind, group=primary.group, namespaced=primary.namespaced)
        return self.watch(
            resource,
            mapper=mapper,
            label_selector=label_selector,
            field_selector=field_selector,
            predicate=predicate,
            indexers=indexers,
        )

    @property
    def primary_resource(self) -> Resource | None:
        """The resource of the first :meth:`watch` without a ``mapper`` (see the module
        docstring), or ``None``; :meth:`owns` enqueues owners of this kind."""
        return self._primary

    @property
    def informers(self) -> list[SharedIndexInformer]:
        """The informers this controller watches, in the order of the ``watch`` calls."""
        seen: dict[int, SharedIndexInformer] = {}
        for w in self._watches:
            seen.setdefault(id(w.informer), w.informer)
        return list(seen.values())

    def has_synced(self) -> bool:
        """True once every watched informer synced and our handlers saw its initial list."""
        return all(w.registration.has_synced() for w in self._watches)

    def cached_keys(self) -> set[str]:
        """The keys an add event of every cached object of every watch would enqueue
        (its predicate and mapper applied): what a resync enqueues."""
        keys: set[str] = set()
        for w in self._watches:
            mapper = w.mapper
            own: Callable[[ObjectOrTombstone], str] = w.informer.key_func
            for obj in w.informer.indexer.list():
                if w.predicate is not None and not w.predicate(obj):
                    continue
                if mapper is None or mapper is own_key:
                    keys.add(own(obj))
                else:
                    keys.update(mapper(obj))
        return keys

    # -- reconciling ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """Make the world match the desired state for ``key``; subclasses implement it.

        Return ``None`` (or ``Result()``) on success, a :class:`Result` to be called
        again, or raise for a rate-limited retry. Runs inside a structlog context bound
        with ``controller`` and ``key``. Read state from listers (they are up to date
        with at least the events that enqueued ``key``); never mutate their objects.
        """
        raise NotImplementedError(f"{type(self).__qualname__} must implement reconcile()")

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Wait for sync, then run the workers until cancelled; drain on the way out.

        ``task_status.started()`` is called once every watched informer synced and the
        controller's handlers have enqueued the initial state (before the first
        reconcile). Cancellation while waiting for sync returns at once.
        """
        if self._started:
            raise RuntimeError(f"controller {self.name} was already started")
        self._started = True
        try:
            await self._wait_for_sync()
        except BaseException:
            self.queue.shut_down()
            raise
        self._log.info("controller.started", workers=self.workers, queued=self.queue.depth())
        try:
            async with self.recorder:
                task_status.started()
                async with anyio.create_task_group() as tg:
                    for i in range(self.workers):
                        tg.start_soon(self._worker, name=f"{self.name} worker {i}")
                    try:
                        await anyio.sleep_forever()
                    finally:
                        await self._drain()
        finally:
            self.queue.shut_down()
            self._log.info("controller.stopped")

    async def _wait_for_sync(self) -> None:
        for w in self._watches:
            await w.informer.wait_for_sync(w.registration)

    async def _drain(self) -> None:
        """Shut the queue down; let in-flight reconciles finish within the grace; leave
        the recorder what is left of it (at least :data:`EVENT_FLUSH_MIN`) to flush."""
        self._stopping = True
        started = anyio.current_time()
        try:
            await self._drain_workers()
        finally:
            left = self.shutdown_grace - (anyio.current_time() - started)
            recorder = self.recorder
            recorder.shutdown_timeout = min(recorder.shutdown_timeout, max(left, EVENT_FLUSH_MIN))

    async def _drain_workers(self) -> None:
        with anyio.CancelScope(shield=True):
            in_flight = len(self._in_flight)
            if in_flight:
                self._log.info(
                    "controller.draining", in_flight=in_flight, grace=self.shutdown_grace
                )
            with anyio.move_on_after(self.shutdown_grace) as grace:
                await self.queue.shut_down_with_drain()
            if grace.cancelled_caught:
                self._log.warning(
                    "controller.drain_timeout",
                    in_flight=len(self._in_flight),
                    grace=self.shutdown_grace,
                )
                for scope in list(self._in_flight):
                    scope.cancel()
            self.queue.shut_down()

    async def _worker(self) -> None:
        while await self.process_next_item():
            pass

    async def process_next_item(self) -> bool:
        """Take one key, reconcile it and handle the outcome; False once shut down."""
        # A cancellation point, and a yield: ``get`` does not yield when a key is ready.
        await anyio.lowlevel.checkpoint()
        try:
            key = await self.queue.get()
        except QueueShutDown:
            return False
        if self._stopping:
            self.queue.done(key)
            return False
        gate = self.key_gate
        if gate is not None and not gate.admit(key):
            self._failures.pop(key, None)
            self.queue.forget(key)
            self.queue.done(key)
            return True
        try:
            # Shielded: on shutdown an in-flight reconcile finishes (or the grace ends it).
            with anyio.CancelScope(shield=True) as scope:
                self._in_flight.add(scope)
                try:
                    await self._reconcile_handler(key)
                finally:
                    self._in_flight.discard(scope)
        finally:
            self.queue.done(key)
            if gate is not None:
                gate.release(key)
        return True

    async def _reconcile_handler(self, key: str) -> None:
        stats = self.stats
        stats.active_workers += 1
        start = time.perf_counter()
        outcome: ReconcileOutcome
        try:
            with structlog.contextvars.bound_contextvars(controller=self.name, key=key):
                try:
                    result = await self.reconcile(key)
                    if result is not None and not isinstance(result, Result):
                        raise TypeError(f"reconcile() must return a Result or None, got {result!r}")
                except Exception as exc:
                    outcome = "error"
                    self._handle_error(key, exc)
                else:
                    outcome = self._handle_result(key, result)
        finally:
            stats.active_workers -= 1
        stats.observe(outcome, time.perf_counter() - start)

    def _handle_result(self, key: str, result: Result | None) -> ReconcileOutcome:
        queue = self.queue
        self._failures.pop(key, None)
        if result is not None:
            if result.requeue_after:
                queue.forget(key)
                queue.add_after(key, result.requeue_after)
                return "requeue_after"
            if result.requeue:
                queue.add_rate_limited(key)
                return "requeue"
        queue.forget(key)
        return "success"

    def _handle_error(self, key: str, exc: Exception) -> None:
        # Consecutive errors of this key: ``Result(requeue=True)`` uses the rate limiter's
        # backoff too, but does not spend the retry budget, so count errors here.
        queue = self.queue
        failures = self._failures.get(key, 0)
        error = f"{type(exc).__name__}: {exc}"
        report_failure("reconcile", self.name, exc, key=key)
        if failures < self.max_retries:
            self._failures[key] = failures + 1
            queue.add_rate_limited(key)
            log.warning(
                "reconcile.failed",
                error=error,
                retry=failures + 1,
                max_retries=self.max_retries,
                exc_info=exc,
            )
        else:
            self._failures.pop(key, None)
            queue.forget(key)
            self.stats.dropped += 1
            log.error(
                "reconcile.dropped",
                error=error,
                retries=failures,
                max_retries=self.max_retries,
                exc_info=exc,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} workers={self.workers}>"


def _resource_of(watched: Resource | SharedIndexInformer) -> Resource | None:
    """The resource a watch was given, or the one its informer's lister-watcher lists."""
    if isinstance(watched, Resource):
        return watched
    resource = getattr(watched.lister_watcher, "resource", None)
    return resource if isinstance(resource, Resource) else None
