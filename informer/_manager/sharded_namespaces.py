"""Sharding by namespace (``ShardingConfig(shard_by="namespace")``, ``--shard-by=namespace``):
each replica runs informers and controllers only for the namespaces it owns.

:class:`ShardedByNamespace` is the Manager's run mode (key mode's, plus what follows).
The hashed unit is the namespace (:func:`~informer._sharding.config.namespace_of` is the
handoff's ``key_of``): rendezvous hashing of the namespace name over the view, with the
key-mode view and "drained" protocol unchanged, so the argument of ``docs/sharding.md``
carries over with "key" read as "namespace".

:class:`ShardNamespaces` keeps, for every namespace the current view assigns to us, one
:class:`NamespaceUnit`: a :class:`~informer.SharedInformerFactory` scoped to it and one
instance of each controller class built on it (named ``<controller>@<namespace>``), so
every watch of the controller (``watch``/``owns``, mapped secondaries included) is
cached for that namespace, and a controller's :attr:`~informer.Controller.client` reads
the cache for its namespace and the API server for any other. The namespaces come from
a cluster-wide metadata-only Namespace informer (on the Manager's one factory), or from
the Manager's ``namespaces`` when given (then only those are distributed: the
intersection).

Lifecycle of a unit, driven by view changes and Namespace events (one task per unit):

1. **gained** (owned in the adopted view, cleared or not): once one of
   :data:`MAX_SYNCING` sync slots is free, the factory starts; the unit waits for its
   informers' sync, then is *ready*: its controllers start. The
   gates admit a key only when its namespace is owned, the view is cleared *and* the
   unit is ready (``Handoff.ready``): a key is never reconciled from an empty cache.
   Keys parked meanwhile are re-added when the unit becomes ready.
2. **lost** (not owned in the adopted view, or the namespace deleted): the gates refuse
   its keys at once (they hash the namespace); the unit's controllers are cancelled and
   drain as on shutdown (in-flight reconciles get the capped grace), then the factory
   stops (its watches are cancelled and their connections released) and the unit is
   forgotten: its gates, its informers' and controllers' metrics, its health checks.

Controllers must be classes (one instance per namespace) whose every watch is
namespaced: a cluster-scoped watch would be cached by every replica and its keys (no
namespace) could not be assigned, so it is a :class:`~informer.ConfigError` at startup
(:func:`check_namespaced`); run such controllers with ``shard_by="key"``.

Everything runs on the event loop; :meth:`ShardNamespaces.changed` never awaits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc
import structlog

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._exceptions import ConfigError
from .._meta.resource import NAMESPACES
from .._observability.endpoints import Observability
from .._queue.metrics import use_queue_metrics_provider
from .._sharding.assignment import owner
from .._sharding.replica import Sharding
from .mode import ModeSetup, NewFactory
from .sharded import ShardedByKey

__all__ = [
    "NamespaceUnit",
    "ShardNamespaces",
    "ShardedByNamespace",
    "check_namespaced",
    "namespace_informer",
    "shard_by_namespace",
]

log = structlog.get_logger(__name__)

MAX_SYNCING = 4
"""Units whose informers do their initial list at the same time, at most."""


def namespace_informer(factory: SharedInformerFactory) -> SharedIndexInformer:
    """The cluster-wide metadata-only Namespace informer namespace mode learns the
    namespaces from (needs ``list``/``watch`` on ``namespaces``)."""
    return factory.informer_for(NAMESPACES, namespace=None, metadata_only=True)


def build_controllers(
    classes: Sequence[type[Controller]],
    factory: SharedInformerFactory,
    api: Any,
    *,
    namespace: str,
    workers: int | None,
    grace: float,
    observability: Observability | None,
) -> list[Controller]:
    """One instance of each class on ``factory``, named ``<name>@<namespace>``, its
    shutdown grace capped at ``grace``, built inside the metrics' queue provider."""
    built: list[Controller] = []
    provider = observability.metrics.queue_metrics if observability is not None else None
    with use_queue_metrics_provider(provider):
        for cls in classes:
            kwargs: dict[str, Any] = {"name": f"{cls.name}@{namespace}"}
            if workers is not None:
                kwargs["workers"] = workers
            controller = cls(factory, api, **kwargs)
            controller.shutdown_grace = min(controller.shutdown_grace, grace)
            built.append(controller)
    return built


def check_namespaced(
    classes: Sequence[type[Controller]],
    instances: Sequence[Controller],
    factory: SharedInformerFactory,
    api: Any,
) -> list[SharedIndexInformer]:
    """Build each class once on ``factory`` (never started) and check that every watch is
    namespaced; returns the informers built (to preflight their RBAC).

    Raises :class:`~informer.ConfigError` for controller instances (namespace mode builds
    one per owned namespace), for no controller class, and for a cluster-scoped watch.
    """
    if instances:
        names = ", ".join(c.name for c in instances)
        raise ConfigError(
            f"sharding by namespace builds one controller per owned namespace: add() "
            f"controller classes, not instances ({names})"
        )
    if not classes:
        raise ConfigError("sharding by namespace needs at least one controller class")
    informers: list[SharedIndexInformer] = []
    for cls in classes:
        probe = cls(factory, api, name=f"{cls.name}@probe")
        probe.close()  # never runs: its handlers must not stay on shared informers
        for informer in probe.informers:
            resource = getattr(informer.lister_watcher, "resource", None)
            if resource is not None and not resource.namespaced:
                raise ConfigError(
                    f"controller {cls.name} watches the cluster-scoped "
                    f"{resource.group_resource}: sharding by namespace caches only the "
                    "owned namespaces; run it with --shard-by=key (shard_by='key')"
                )
            informers.append(informer)
    return informers


def shard_by_namespace(
    sharding: Sharding,
    api: Any,
    classes: Sequence[type[Controller]],
    instances: Sequence[Controller],
    *,
    new_factory: NewFactory,
    namespaces: Sequence[str] | None,
    factory: SharedInformerFactory,
    workers: int | None,
    grace: float,
    observability: Observability | None,
) -> list[SharedIndexInformer]:
    """Set up namespace mode on ``sharding`` (the Manager's hook): check the controllers
    (:func:`check_namespaced`, on a probe factory scoped to the first of ``namespaces``,
    or cluster-wide), then attach a :class:`ShardNamespaces` following ``namespaces``
    or, when ``None``, the Namespace informer of ``factory``. Returns the probe informers
    (preflight them: the RBAC the units will need)."""
    probe = new_factory(namespaces[0] if namespaces else None)
    probes = check_namespaced(classes, instances, probe, api)
    ShardNamespaces(
        sharding,
        api,
        classes,
        new_factory=new_factory,
        namespaces=namespaces,
        informer=None if namespaces else namespace_informer(factory),
        workers=workers,
        grace=grace,
        observability=observability,
    )
    return probes


class ShardedByNamespace(ShardedByKey):
    """Key mode's membership and handoff, hashing namespaces; the Manager builds no
    controller up front: :class:`ShardNamespaces` builds them per owned namespace."""

    def new_factories(
        self, namespaces: Sequence[str | None], new_factory: NewFactory
    ) -> list[SharedInformerFactory]:
        """One cluster-wide factory: the Namespace informer's without ``namespaces``,
        else empty (the units build their own)."""
        factory = new_factory(None)
        if list(namespaces) == [None]:
            namespace_informer(factory)
        return [factory]

    def class_factories(
        self, namespaces: Sequence[str | None], factories: Sequence[SharedInformerFactory]
    ) -> list[tuple[str | None, SharedInformerFactory]]:
        return []

    def prepare(self, setup: ModeSetup) -> list[SharedIndexInformer]:
        """Key mode's, then :func:`shard_by_namespace`: its probe informers are
        preflighted."""
        super().prepare(setup)
        assert self.shards is not None
        fixed = None if list(setup.namespaces) == [None] else [str(n) for n in setup.namespaces]
        return shard_by_namespace(
            self.shards,
            setup.api,
            setup.classes,
            setup.controllers,
            new_factory=setup.new_factory,
            namespaces=fixed,
            factory=setup.factories[0],
            workers=setup.workers,
            grace=min(setup.shutdown_grace, self.shutdown_grace),
            observability=setup.observability,
        )


class NamespaceUnit:
    """The factory and controllers of one owned namespace (see the module docstring)."""

    def __init__(
        self, namespace: str, factory: SharedInformerFactory, controllers: list[Controller]
    ) -> None:
        self.namespace = namespace
        self.factory = factory
        self.controllers = controllers
        self.waiting = anyio.CancelScope()  # for a sync slot
        self.scope = anyio.CancelScope()  # the sync, then the controllers
        self.synced = False
        self.stopping = False

    def stop(self) -> None:
        """Cancel the controllers (they drain), then the informers stop."""
        self.stopping = True
        self.waiting.cancel()
        self.scope.cancel()

    def __repr__(self) -> str:
        state = "stopping" if self.stopping else "synced" if self.synced else "syncing"
        return f"<NamespaceUnit {self.namespace} {state}>"


class ShardNamespaces:
    """Runs a :class:`NamespaceUnit` per namespace ``sharding``'s view assigns to us.

    ``classes`` are instantiated per namespace (``workers``, ``grace`` as the Manager
    sets them) on ``new_factory(namespace)``; ``namespaces`` is the fixed set to
    distribute, or ``None`` to follow ``informer`` (the Namespace informer). Units are
    registered with ``observability`` while they run. At most ``max_syncing`` units
    list at once (the others wait their turn, informers not started): a replica gaining
    many namespaces keeps its event loop, hence its Lease renewals, responsive.
    :meth:`run` is one of ``sharding.tasks``: it runs while the membership holds.
    """

    def __init__(
        self,
        sharding: Sharding,
        api: Any,
        classes: Sequence[type[Controller]],
        *,
        new_factory: NewFactory,
        namespaces: Sequence[str] | None,
        informer: SharedIndexInformer | None,
        workers: int | None,
        grace: float,
        observability: Observability | None = None,
        max_syncing: int = MAX_SYNCING,
    ) -> None:
        if (namespaces is None) == (informer is None):
            raise ValueError("pass either namespaces or the Namespace informer")
        self.sharding = sharding
        self.api = api
        self.classes = list(classes)
        self.new_factory = new_factory
        self.fixed = list(dict.fromkeys(namespaces)) if namespaces is not None else None
        self.informer = informer
        self.workers = workers
        self.grace = grace
        self.observability = observability
        self.units: dict[str, NamespaceUnit] = {}
        self.started = 0
        self.stopped = 0
        self._wake = anyio.Event()
        self._syncing = anyio.Semaphore(max_syncing)
        self._tg: anyio.abc.TaskGroup | None = None
        sharding.handoff.ready = self.ready
        sharding.handoff.on_adopt.append(self.changed)
        sharding.tasks.append(self.run)
        sharding.namespaces = self.status
        if informer is not None:
            informer.add_event_handler(_Wake(self.changed))

    # -- state -------------------------------------------------------------------------------

    def ready(self, namespace: str) -> bool:
        """Whether ``namespace``'s informers synced (its keys may then be admitted)."""
        unit = self.units.get(namespace)
        return unit is not None and unit.synced and not unit.stopping

    def status(self) -> dict[str, bool]:
        """Namespaces cached now (stopping ones excluded) -> synced."""
        return {ns: u.synced for ns, u in self.units.items() if not u.stopping}

    def known(self) -> list[str]:
        """The namespaces to distribute."""
        if self.fixed is not None:
            return self.fixed
        assert self.informer is not None
        return [str(key) for key in self.informer.indexer.list_keys()]

    def desired(self) -> set[str] | None:
        """The namespaces our current view assigns to us; ``None`` without a view."""
        members = self.sharding.handoff.members
        if members is None:
            return None
        me = self.sharding.config.identity
        return {ns for ns in self.known() if owner(members, ns) == me}

    def changed(self) -> None:
        """The view or the namespaces changed: re-evaluate the units (never awaits)."""
        self._wake.set()

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Start and stop units as the view and the namespaces change; until cancelled
        (which stops every unit, draining their controllers)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                while True:
                    self._apply()
                    await self._wake.wait()
                    self._wake = anyio.Event()
            finally:
                self._tg = None

    def _apply(self) -> None:
        desired = self.desired()
        if desired is None:
            return  # no view: keep what runs (the gates admit nothing meanwhile)
        for namespace, unit in self.units.items():
            if namespace not in desired and not unit.stopping:
                log.info("shard.namespace_lost", namespace=namespace, synced=unit.synced)
                unit.stop()
        for namespace in sorted(desired - self.units.keys()):
            self._start(namespace)

    def _start(self, namespace: str) -> None:
        assert self._tg is not None
        factory = self.new_factory(namespace)
        controllers = build_controllers(
            self.classes,
            factory,
            self.api,
            namespace=namespace,
            workers=self.workers,
            grace=self.grace,
            observability=self.observability,
        )
        unit = NamespaceUnit(namespace, factory, controllers)
        self.units[namespace] = unit
        for controller in controllers:
            self.sharding.add_controller(controller)
        if self.observability is not None:
            self.observability.add_factory(factory)
            for controller in controllers:
                self.observability.add_controller(controller)
        self.started += 1
        log.info("shard.namespace_gained", namespace=namespace, informers=len(factory.informers))
        self._tg.start_soon(self._run_unit, unit, name=f"shard namespace {namespace}")

    async def _run_unit(self, unit: NamespaceUnit) -> None:
        namespace = unit.namespace
        handoff = self.sharding.handoff
        slot = False
        try:
            with unit.waiting:
                await self._syncing.acquire()
                slot = True
            if unit.stopping:
                return
            async with unit.factory:
                with unit.scope:
                    await unit.factory.wait_for_cache_sync()
                    self._syncing.release()
                    slot = False
                    unit.synced = True
                    requeued = handoff.unit_ready(namespace)
                    log.info(
                        "shard.namespace_synced",
                        namespace=namespace,
                        objects=sum(len(i.indexer) for i in unit.factory.informers),
                        requeued=requeued,
                        cached=sorted(self.status()),
                    )
                    async with anyio.create_task_group() as tg:
                        for controller in unit.controllers:
                            tg.start_soon(controller.run, name=f"controller {controller.name}")
        finally:
            if slot:
                self._syncing.release()
            for controller in unit.controllers:
                self.sharding.remove_controller(controller)
                if self.observability is not None:
                    self.observability.remove_controller(controller)
            if self.observability is not None:
                self.observability.remove_factory(unit.factory)
            if self.units.get(namespace) is unit:
                del self.units[namespace]
            self.stopped += 1
            log.info("shard.namespace_stopped", namespace=namespace, cached=sorted(self.status()))
            self.changed()


class _Wake:
    """A Namespace informer handler: any add or delete re-evaluates the units."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def on_add(self, obj: Mapping[str, Any]) -> None:
        self._wake()

    def on_update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        pass

    def on_delete(self, obj: Any) -> None:
        self._wake()

    def __repr__(self) -> str:
        return "<shard namespaces>"
