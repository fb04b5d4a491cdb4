"""``Controller``: informer events -> keys -> a rate-limited work queue -> ``reconcile(key)``.

A controller declares in :meth:`Controller.setup` the informers it watches
(:meth:`Controller.watch`) and how their events become keys (a
:data:`~informer.KeyMapper`: the object's own key by default,
:func:`~informer.owner_key` for the owners named in ``metadata.ownerReferences``, or any
function of yours). Each key lands on the controller's
:class:`~informer.workqueue.RateLimitingQueue`; :meth:`Controller.run` waits until every
watched informer has synced *and* the controller's handlers have seen the whole initial
list, then runs ``workers`` worker tasks that call :meth:`Controller.reconcile`.

Each worker (``worker.py``) takes a key, reconciles it inside a structlog context bound
with ``controller`` and ``key``, and hands the outcome to the one outcome policy
(``reconcile.py``, whose docstring has the table of what happens to the key);
``done`` is always called. Retries are not the reconciler's business: ``reconcile``
returns a :class:`~informer.Result` (or ``None``) or raises, and a key that keeps
failing is dropped after ``max_retries`` retries in a row.

Guarantees (from the work queue): a key is never reconciled by two workers at once; a key
that receives events while it is being reconciled is reconciled once more afterwards;
events for a queued key collapse into one reconcile. Reconcilers are level-triggered:
they read the current state from listers and act on it, whatever the events were.

Events -> keys (``mappers.py``; the declarations are kept in ``watches.py``): every add,
update (old and new object), delete (tombstones unwrapped) and periodic resync update is
mapped and enqueued. A ``predicate`` filters by object (see
:class:`~informer.FilteringHandler`): an object that stops matching enqueues once more,
as a delete, so the reconciler can clean up. Mappers and predicates run on the
informer's listener task for every event: they must be cheap, must not block and must
not mutate the objects.

Shutdown: :meth:`Controller.run` runs until cancelled. On cancellation it shuts the queue
down and waits, shielded and for at most ``shutdown_grace`` seconds, for the reconciles
in flight to finish (they are shielded from the cancellation; once the grace is over
they are cancelled); keys still queued are not processed.

Tuning: :attr:`Controller.options`, a :class:`~informer.ControllerOptions`
(``options.py``) built from the class attributes and the constructor's arguments.
Statistics: :attr:`Controller.stats`, a :class:`~informer.ReconcileStats`
(``reconcile.py``).

Writing: :attr:`Controller.client` is a :class:`~informer.Client` on the controller's
factory (field manager: the controller's name without its ``@namespace`` suffix, see
``naming.py``; discovery shared per ApiClient); :attr:`Controller.recorder` an
:class:`~informer.EventRecorder` of that component. :meth:`Controller.run` runs the
recorder from sync until after the drain, flushing what was recorded within what is left
of ``shutdown_grace`` (at least :data:`EVENT_FLUSH_MIN` s): run by a Manager or alone,
a controller writes its events. Events recorded before :meth:`run` wait in the buffer.

The primary resource is that of the first :meth:`Controller.watch` without ``mapper``
(its own keys are what :meth:`reconcile` receives); :meth:`Controller.owns` maps objects
to their controlling owner of that kind (controller-runtime's ``Owns``).

A watch is in the factory's namespace unless it names another (``namespace=``; ``None``:
all namespaces): its informer then comes from the factory too, which, under a Manager,
hands out the one informer every controller and per-namespace instance shares for that
(resource, namespace, selectors). When :meth:`Controller.run` ends, the controller's
handlers are removed from every informer it watched (shared ones outlive it).

Finalizers: a controller that sets the class attribute ``finalizer`` (a qualified name,
e.g. ``"example.com/cleanup"``) and implements :meth:`Controller.finalize` has the
framework add that finalizer to every live primary object before its first reconcile,
call ``finalize(obj)`` instead of ``reconcile`` once the object is being deleted, and
remove the finalizer when ``finalize`` returns (``finalizing.py`` has the table).

The factory passed in may be started (``async with factory``) before or after
:meth:`Controller.run`: the controller only waits for its informers' sync.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final

import anyio
import anyio.abc
import structlog

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._cache.store import IndexFunc
from .._client.client import Client
from .._client.discovery import shared_discovery
from .._events.recorder import EventRecorder
from .._meta.finalizers import validate_finalizer_name
from .._meta.resource import Resource
from .._meta.types import Obj
from .._queue.metrics import QueueMetrics
from .._queue.ratelimit import RateLimiter
from .._queue.workqueue import RateLimitingQueue
from .._rbac.access import Access
from .._rbac.guard import declared_guard
from .finalizing import Finalizing
from .mappers import KeyMapper
from .naming import component_of, kebab
from .options import DEFAULT_MAX_RETRIES, DEFAULT_SHUTDOWN_GRACE, ControllerOptions
from .reconcile import OutcomePolicy, ReconcileStats, Result
from .watches import Watches
from .worker import KeyGate, Workers

__all__ = ["EVENT_FLUSH_MIN", "Controller", "KeyGate"]

EVENT_FLUSH_MIN: Final = 1.0
"""Seconds the recorder's final flush gets at least, however long the drain took."""

_FACTORY_NAMESPACE: Any = object()
"""``namespace=`` not given: the factory's namespace."""

_TUNING: Final = frozenset({"workers", "max_retries", "shutdown_grace"})
"""Attributes that are fields of :class:`ControllerOptions` too (``rate_limiter`` is the
class's factory; the constructor's ``rate_limiter`` is a limiter for one instance)."""


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
    is a limiter (default: :func:`~informer.workqueue.default_controller_rate_limiter`).

    The effective tuning is :attr:`options`, a :class:`~informer.ControllerOptions`
    (controller-runtime's ``controller.Options``), validated when the controller is built:
    ``ValueError``/``TypeError`` name the class, the value and what is allowed.
    Assigning ``workers``, ``max_retries`` or ``shutdown_grace`` on an instance (the
    Manager caps ``shutdown_grace``) validates the value and replaces :attr:`options`;
    ``workers`` takes effect at :meth:`run`, the others at once.

    ``queue_metrics`` are the hooks of the controller's queue (default: the current
    queue-metrics provider's, see :func:`~informer.workqueue.use_queue_metrics_provider`).

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
    writes: ClassVar[Sequence[Access] | None] = None
    """What :attr:`client` writes (``informer.rbac.Access`` grants): checked before each
    request, and the source of the controller's generated Role. None: not declared."""
    reads: ClassVar[Sequence[Access]] = ()
    """API reads of resources it does not watch (watched ones need no declaration)."""
    finalizer: ClassVar[str] = ""
    """A finalizer this controller keeps on its primary objects and runs :meth:`finalize`
    for ("": none; see the module docstring)."""
    key_gate: KeyGate | None = None
    """Asked before each reconcile whether this replica may reconcile the key now
    (:class:`KeyGate`; set by the Manager when sharding). None: every key is admitted."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = kebab(cls.__name__)
        finalizes = cls.finalize is not Controller.finalize
        if cls.finalizer:
            try:
                validate_finalizer_name(cls.finalizer)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{cls.__qualname__}.finalizer: {exc}") from None
            if not finalizes:
                raise TypeError(
                    f"{cls.__qualname__} declares finalizer = {cls.finalizer!r}: implement "
                    "async def finalize(self, obj) (the cleanup before the finalizer goes)"
                )
        elif finalizes:
            raise TypeError(
                f"{cls.__qualname__} implements finalize() but names no finalizer: set the "
                "class attribute finalizer = 'example.com/cleanup'"
            )

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
        # Unset arguments keep the attribute (the class's, or one set before this call);
        # the limiter factory is read from the class (an instance would bind it).
        self._options = self._checked(
            lambda: ControllerOptions(
                workers=self.workers if workers is None else workers,
                max_retries=self.max_retries if max_retries is None else max_retries,
                shutdown_grace=self.shutdown_grace if shutdown_grace is None else shutdown_grace,
                rate_limiter=type(self).rate_limiter,
            )
        )
        # Instance attributes shadow the class's only when an argument was given.
        for attribute, value in (
            ("workers", workers),
            ("max_retries", max_retries),
            ("shutdown_grace", shutdown_grace),
        ):
            if value is not None:
                self.__dict__[attribute] = value
        if rate_limiter is None:
            rate_limiter = self.options.new_rate_limiter()
        self.factory = factory
        self.api_client = api_client
        component = component_of(self.name)
        self.client = Client(
            api_client,
            factory=factory,
            field_manager=component,
            discovery=shared_discovery(api_client),
            access_check=declared_guard(type(self), self.name, lambda: self.informers),
        )
        """Cached reads from :attr:`factory`'s informers, writes to the API server."""
        self.recorder = EventRecorder(self, component)
        """Events about the controller's objects; :meth:`run` runs it."""
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            rate_limiter, name=self.name, metrics=queue_metrics
        )
        self.stats = ReconcileStats(workers=self.options.workers)
        self._watches = Watches(controller=self.name, add=self.queue.add)
        self._workers = Workers(
            Finalizing(self) if self.finalizer else self,
            name=self.name,
            queue=self.queue,
            policy=OutcomePolicy(self.queue, name=self.name, stats=self.stats),
            stats=self.stats,
        )
        self._started = False
        self._log = structlog.get_logger(__name__, controller=self.name)
        self.setup()
        if self.finalizer and self._watches.primary_informer is None:
            raise RuntimeError(
                f"controller {self.name}: finalizer {self.finalizer!r} is kept on the primary "
                "objects: declare them in setup() with self.watch(<primary Resource>) "
                "(without mapper=)"
            )

    @property
    def options(self) -> ControllerOptions:
        """The effective tuning (read-only: assign ``workers``, ``max_retries`` or
        ``shutdown_grace`` to change it)."""
        return self._options

    def _checked(self, build: Callable[[], ControllerOptions]) -> ControllerOptions:
        """``build()``, its errors prefixed with this controller's class name."""
        try:
            return build()
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{type(self).__qualname__}: {exc}") from None

    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute in _TUNING and "_options" in self.__dict__:
            changes = {attribute: value}
            self._options = self._checked(lambda: dataclasses.replace(self._options, **changes))
        super().__setattr__(attribute, value)

    # -- declaring ------------------------------------------------------------------------

    def setup(self) -> None:
        """Declare watches with :meth:`watch` (called by the constructor). Default: none."""

    def watch(
        self,
        resource: Resource | SharedIndexInformer,
        *,
        namespace: str | None = _FACTORY_NAMESPACE,
        mapper: KeyMapper | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        metadata_only: bool = False,
    ) -> SharedIndexInformer:
        """Enqueue keys for every event of ``resource``; return its (shared) informer.

        ``resource`` is a :class:`~informer.Resource`, whose informer comes from
        :attr:`factory` (in the factory's namespace unless ``namespace`` names another,
        ``None`` meaning all namespaces; with the selectors), or an informer you built
        (``namespace`` and selectors must then be left out). ``mapper`` turns an object into keys
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
            scoped = namespace is not _FACTORY_NAMESPACE
            if label_selector or field_selector or metadata_only or scoped:
                raise ValueError(
                    "namespace/label_selector/field_selector/metadata_only apply to a "
                    "Resource, not to an informer"
                )
            informer = resource
            if indexers:
                informer.add_indexers(indexers)
        else:
            scope = {} if namespace is _FACTORY_NAMESPACE else {"namespace": namespace}
            informer = self.factory.informer_for(
                resource,
                **scope,
                label_selector=label_selector,
                field_selector=field_selector,
                indexers=indexers,
                metadata_only=metadata_only,
            )
        self._watches.add(informer, watched=resource, mapper=mapper, predicate=predicate)
        return informer

    def owns(
        self,
        resource: Resource | SharedIndexInformer,
        *,
        namespace: str | None = _FACTORY_NAMESPACE,
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
        return self.watch(
            resource,
            namespace=namespace,
            mapper=self._watches.owner_mapper(),
            label_selector=label_selector,
            field_selector=field_selector,
            predicate=predicate,
            indexers=indexers,
        )

    @property
    def primary_resource(self) -> Resource | None:
        """The resource of the first :meth:`watch` without a ``mapper`` (see the module
        docstring), or ``None``; :meth:`owns` enqueues owners of this kind."""
        return self._watches.primary

    def primary_informer(self) -> SharedIndexInformer:
        """The informer of the primary watch (``RuntimeError`` without one)."""
        informer = self._watches.primary_informer
        if informer is None:
            raise RuntimeError(f"controller {self.name} has no primary watch")
        return informer

    @property
    def informers(self) -> list[SharedIndexInformer]:
        """The informers this controller watches, in the order of the ``watch`` calls."""
        return self._watches.informers

    def has_synced(self) -> bool:
        """True once every watched informer synced and our handlers saw its initial list."""
        return self._watches.has_synced()

    def cached_keys(self) -> set[str]:
        """The keys an add event of every cached object of every watch would enqueue
        (its predicate and mapper applied): what a resync enqueues."""
        return self._watches.cached_keys()

    # -- reconciling ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result | None:
        """Make the world match the desired state for ``key``; subclasses implement it.

        Return ``None`` (or ``Result()``) on success, a :class:`Result` to be called
        again, or raise for a rate-limited retry. Runs inside a structlog context bound
        with ``controller`` and ``key``. Read state from listers (they are up to date
        with at least the events that enqueued ``key``); never mutate their objects.
        """
        raise NotImplementedError(f"{type(self).__qualname__} must implement reconcile()")

    async def finalize(self, obj: Obj) -> None:
        """Clean up for the primary object ``obj`` (a copy) being deleted, before the
        framework removes :attr:`finalizer` from it; implement it with ``finalizer``.

        Called instead of :meth:`reconcile` while the object is being deleted and still
        has the finalizer; raising retries it after the rate limiter's backoff (the
        object stays until it returns). Must be idempotent: it may run again.
        """
        raise NotImplementedError(f"{type(self).__qualname__} must implement finalize()")

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
            await self._watches.wait_for_sync()
        except BaseException:
            self.queue.shut_down()
            raise
        workers = self.stats.workers = self.options.workers
        self._log.info("controller.started", workers=workers, queued=self.queue.depth())
        try:
            async with self.recorder:
                task_status.started()
                async with anyio.create_task_group() as tg:
                    self._workers.start(tg, workers)
                    try:
                        await anyio.sleep_forever()
                    finally:
                        await self._drain()
        finally:
            self.queue.shut_down()
            self.close()
            self._log.info("controller.stopped")

    def close(self) -> None:
        """Remove this controller's handlers from the informers it watches (idempotent).
        :meth:`run` does it on its way out; call it for a controller that never runs, so
        that shared informers stop feeding its queue."""
        self._watches.remove_handlers()

    async def _drain(self) -> None:
        """Drain the workers within the grace; leave the recorder what is left of it (at
        least :data:`EVENT_FLUSH_MIN`) to flush."""
        grace = self.options.shutdown_grace
        started = anyio.current_time()
        try:
            await self._workers.drain(grace)
        finally:
            left = grace - (anyio.current_time() - started)
            recorder = self.recorder
            recorder.shutdown_timeout = min(recorder.shutdown_timeout, max(left, EVENT_FLUSH_MIN))

    async def process_next_item(self) -> bool:
        """Take one key, reconcile it and handle the outcome; False once shut down."""
        return await self._workers.process_next_item()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} workers={self.options.workers}>"
