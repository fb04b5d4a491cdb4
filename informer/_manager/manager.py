"""``Manager``: run controllers from your own program (controller-runtime's ``pkg/manager``).

::

    manager = Manager(namespaces=["demo"])  # $KUBECONFIG, ~/.kube/config or in-cluster
    manager.add(ConfigMapReloader)           # a class: one instance per namespace
    async with manager:                      # connected, checked, started and synced here
        ...                                  # the controllers run; leaving the block stops them
    # or: await manager.run()                # the same, until cancelled (or the lease is lost)

The Manager owns the startup order (nothing is left to the caller): ``async with manager``

0. serves the added webhooks (:meth:`Manager.add_webhook`) on ``webhook_bind_address``,
   on every replica (neither leader election nor sharding gates webhooks):
   :class:`~informer.ConfigError` without a certificate, :class:`~informer.BindError`
   (:mod:`informer._manager.webhooks`);
1. uses the given ApiClient, or creates one from ``kubeconfig``/``context`` (closed on
   exit): :class:`~informer.ConfigError`;
2. ``GET /version`` until the server answers within ``startup_timeout``:
   :class:`~informer.ConnectionFailed` naming the address, :class:`~informer.Unauthorized`;
3. builds one :class:`~informer.SharedInformerFactory` per namespace (unless an
   ApiClient was given: then they exist from construction, see :attr:`Manager.factory`)
   and, inside the metrics' queue provider, one instance of each added class per
   factory (named ``<name>@<namespace>`` when there are several namespaces). The
   factories share one informer per (resource, namespace, selectors, metadata only)
   between all controllers and instances (:mod:`informer._manager.factories`);
4. lists each informer once (``limit=1``) and reads the Lease once (leader election,
   sharding), so a missing RBAC rule fails at once: :class:`~informer.Forbidden` names it;
5. binds the metrics and health endpoints: :class:`~informer.BindError`;
6. starts the factories and runs the controllers in its run mode
   (:mod:`informer._manager.mode`, chosen at construction): at once; or, with
   ``leader_election``, only while leading the Lease, campaigning once synced; or, with
   ``sharding``, reconciling this replica's share of the keys once it joined its group;
7. waits until every controller synced and every reflector watches
   (:meth:`Manager.wait_for_cache_sync`): :class:`~informer.CacheSyncTimeout` when the
   startup deadline passes, or the error (connection, 401/403) that prevented it.

Leaving the block (or cancelling :meth:`Manager.run`) stops everything: in-flight
reconciles get ``shutdown_grace`` seconds (capped by the run mode: with leader election
at ``lease_duration - renew_deadline``, so a lost leader's writes end before a successor
starts), the events the controllers recorded are written (each controller's recorder
runs within its ``run``: flushed after the drain, within the rest of the grace), the
Lease is released, the endpoints close, the GC state is restored, an ApiClient the
Manager created is closed and the webhook server stops. A lost lease (or shard
membership) cancels the block and raises :class:`~informer.LeaderElectionLost`
(:class:`~informer.ShardMembershipLost`).

Errors: whatever fails is raised as **one** typed error from :mod:`informer._exceptions`,
never an exception group (task groups nest them; :func:`.startup.collapse` takes the first
:class:`~informer.InformerError` in linear time). A bug (e.g. in a controller's
``setup``) propagates as it is. ``python -m informer.run`` maps these types to its exit
codes.

Everything runs on one event loop; a Manager runs once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from functools import partial
from types import TracebackType
from typing import Final

import anyio
import structlog

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer, Transform
from .._cache.transforms import strip_managed_fields
from .._controller.controller import Controller
from .._leaderelection.config import LeaderElectionConfig
from .._leaderelection.elector import LeaderElector
from .._observability.endpoints import Endpoints, Observability
from .._observability.metrics import Metrics
from .._rest.api_client import ApiClient
from .._sharding.config import ShardingConfig
from .._sharding.replica import Sharding
from .._webhook.base import Webhook
from .._webhook.server import WebhookServer
from .factories import ManagerFactories, run_factory
from .mode import ModeSetup
from .registry import Registry
from .run_modes import run_mode
from .startup import (
    GcState,
    WatchErrors,
    check_server,
    collapse,
    connect,
    preflight,
    raise_collapsed,
    wait_synced,
)
from .webhooks import serving_webhooks

__all__ = ["DEFAULT_SHUTDOWN_GRACE", "LeaderElectionConfig", "Manager", "ShardingConfig"]

log = structlog.get_logger(__name__)

DEFAULT_SHUTDOWN_GRACE: Final = 3.0
"""Cap on the controllers' ``shutdown_grace`` (seconds): a stop stays under 5 s."""


class Manager:
    """Runs controllers: connection, checks, informers, endpoints, leader election.

    ``api_client`` is used as given (the caller closes it); without it one is created from
    ``kubeconfig`` (default ``$KUBECONFIG``, ``~/.kube/config``, or in-cluster) and
    ``context`` when the Manager starts, and closed when it stops. ``namespaces``: one
    factory each (``None`` or empty: one for all namespaces). ``transform`` and
    ``watch_list`` apply to every informer (default: strip ``managedFields``; sync with a
    list then a watch, as the Reflector and ``python -m informer.run`` do: on
    kube-apiserver 1.36 a list from the watch cache syncs 1.4-2x faster than a
    watch-list stream and costs the server a third of the CPU; ``watch_list=True``
    streams the initial state instead). ``metrics_bind_address`` /
    ``health_probe_bind_address``: ``HOST:PORT``, ``:PORT`` or ``"0"`` (disabled; port 0
    binds any free port, see :attr:`endpoints`). ``metrics_secure``: serve metrics over
    HTTPS (the certificate in ``metrics_cert_dir``, else a self-signed one) to bearer tokens
    the API server authenticates and authorizes for ``get`` on ``/metrics``
    (controller-runtime's secure serving); off by default in the library, on by default in
    the runner. ``webhook_bind_address`` (default ``:9443``, controller-runtime's; ``"0"``
    disables) and ``webhook_cert_dir`` (``tls.crt``/``tls.key``, re-read when they change;
    default controller-runtime's ``<tmp>/k8s-webhook-server/serving-certs``): where the
    webhooks added with :meth:`add_webhook` are served, over HTTPS, on every replica;
    nothing is served without webhooks. ``gc_freeze`` (default ``True``, as in the
    runner): one collection before the caches fill, no cyclic GC while they do, then
    ``gc.freeze()`` (the cache leaves the GC's view) and thresholds raised to
    ``startup.GC_THRESHOLDS``; the process's GC state is restored on exit
    (:class:`~informer._manager.startup.GcState`). It roughly halves a large sync and
    keeps CPython's full collections, each walking the whole cache, from blocking the
    event loop for hundreds of milliseconds; ``False`` leaves the process's GC alone.
    ``startup_timeout`` bounds the whole startup (seconds); ``workers`` overrides the
    controllers' own for the classes it instantiates; ``shutdown_grace`` caps every
    controller's.

    Add controllers with :meth:`add` before starting; see the module docstring for what
    ``async with manager`` does and which errors it raises.
    """

    def __init__(
        self,
        api_client: ApiClient | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespaces: Iterable[str] | None = None,
        leader_election: LeaderElectionConfig | None = None,
        sharding: ShardingConfig | None = None,
        metrics_bind_address: str = "0",
        metrics_secure: bool = False,
        metrics_cert_dir: str | None = None,
        health_probe_bind_address: str = "0",
        webhook_bind_address: str = ":9443",
        webhook_cert_dir: str | None = None,
        gc_freeze: bool = True,
        watch_list: bool = False,
        transform: Transform | None = strip_managed_fields,
        startup_timeout: float = 30.0,
        workers: int | None = None,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
    ) -> None:
        if api_client is not None and (kubeconfig or context):
            raise ValueError("pass either api_client or kubeconfig/context, not both")
        if isinstance(namespaces, str):
            raise ValueError(f"namespaces is a list of names, got the string {namespaces!r}")
        if not (startup_timeout > 0 and math.isfinite(startup_timeout)):
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if not shutdown_grace >= 0:
            raise ValueError(f"shutdown_grace must be >= 0 seconds, got {shutdown_grace!r}")
        self._mode = run_mode(leader_election, sharding)
        self._api = api_client
        self._kubeconfig = kubeconfig
        self._context = context
        self.namespaces: list[str | None] = list(dict.fromkeys(namespaces or ())) or [None]
        self.leader_election = leader_election
        self.sharding = sharding
        self.metrics_bind_address = metrics_bind_address
        self.metrics_secure = metrics_secure
        self.metrics_cert_dir = metrics_cert_dir
        self.health_probe_bind_address = health_probe_bind_address
        self.webhook_bind_address = webhook_bind_address
        self.webhook_cert_dir = webhook_cert_dir
        self.gc_freeze = gc_freeze
        self.watch_list = watch_list
        self.transform = transform
        self.startup_timeout = float(startup_timeout)
        self.workers = workers
        self.shutdown_grace = float(shutdown_grace)
        self.observability = Observability()
        self._errors = WatchErrors()
        self._factories = ManagerFactories(
            lambda: self._new_factory(self.api_client, None, shared=False)
        )
        self._registry = Registry()
        self._webhook_server: WebhookServer | None = None
        self._endpoints: Endpoints | None = None
        self._address = "?"
        self._stack: contextlib.AsyncExitStack | None = None
        self._state = "new"
        if api_client is not None:
            new_factory = partial(self._new_factory, api_client)
            self._factories.set(self._mode.new_factories(self.namespaces, new_factory))

    # -- configuration --------------------------------------------------------------------

    def add(self, controller: type[Controller] | Controller) -> None:
        """Run ``controller``: a class (instantiated once per namespace when the Manager
        starts, inside the queue-metrics provider) or an instance built on
        :attr:`factory` (or one of :attr:`factories`); build an instance inside
        ``use_queue_metrics_provider(manager.metrics.queue_metrics)`` for its queue's
        adds, retries and durations to be exported. Only before the Manager starts."""
        if self._state != "new":
            raise RuntimeError("add() controllers before the Manager starts")
        self._registry.add(controller, factories=self._factories.per_namespace)

    def add_webhook(self, webhook: Webhook) -> None:
        """Serve ``webhook`` (a ``ValidatingWebhook``, ``MutatingWebhook`` or
        ``ConversionWebhook`` of :mod:`informer.webhook`) once the Manager starts, on
        every replica. Only before the Manager starts; two webhooks cannot share a path."""
        if self._state != "new":
            raise RuntimeError("add_webhook() before the Manager starts")
        self._registry.add_webhook(webhook)

    # -- state ------------------------------------------------------------------------------

    @property
    def api_client(self) -> ApiClient:
        """The ApiClient (created when the Manager starts, unless one was given)."""
        if self._api is None:
            raise RuntimeError(
                "the Manager creates its ApiClient when it starts: pass api_client=... "
                "to use it (or its factories) before that"
            )
        return self._api

    @property
    def factories(self) -> list[SharedInformerFactory]:
        """One factory per namespace, in the order of ``namespaces``."""
        if not self._factories.per_namespace:
            raise RuntimeError(
                "the Manager builds its factories once it has an ApiClient: pass "
                "api_client=... to build controllers yourself, or add() their classes"
            )
        return list(self._factories.per_namespace)

    @property
    def factory(self) -> SharedInformerFactory:
        """The only factory (one namespace, or all): build controller instances on it."""
        factories = self.factories
        if len(factories) != 1:
            raise RuntimeError(
                f"the Manager has {len(factories)} factories (one per namespace): "
                "use manager.factories"
            )
        return factories[0]

    @property
    def controllers(self) -> list[Controller]:
        """The controllers: instances at once, those of added classes once started."""
        return list(self._registry.controllers)

    @property
    def informers(self) -> list[SharedIndexInformer]:
        """Every informer of the Manager's factories (the shared ones included)."""
        return [i for f in self._factories.all() for i in f.informers]

    @property
    def metrics(self) -> Metrics:
        """The Prometheus metrics (own registry); ``metrics.queue_metrics`` is the queue
        provider the Manager builds controllers with."""
        return self.observability.metrics

    @property
    def elector(self) -> LeaderElector | None:
        """The leader elector, once started with ``leader_election``."""
        return self._mode.elector

    @property
    def shards(self) -> Sharding | None:
        """The sharding state (membership, handoff), once started with ``sharding``."""
        return self._mode.shards

    @property
    def webhooks(self) -> list[Webhook]:
        """The webhooks added with :meth:`add_webhook`."""
        return list(self._registry.webhooks)

    @property
    def webhook_server(self) -> WebhookServer | None:
        """The webhook server once started (``None`` when nothing is served); its
        ``port`` is the bound one."""
        return self._webhook_server

    @property
    def endpoints(self) -> Endpoints | None:
        """The ports the metrics and health endpoints listen on, once started."""
        return self._endpoints

    def has_synced(self) -> bool:
        """Every controller synced and every informer's reflector watching."""
        return all(c.has_synced() for c in self._registry.controllers) and all(
            i.reflector.is_watching for i in self.informers
        )

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Start, then run until cancelled; raises :class:`~informer.LeaderElectionLost`
        when the lease is lost (and the startup errors of ``async with``)."""
        async with self:
            await anyio.sleep_forever()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every controller synced and every reflector opened its first watch.

        Raises the 401/403 a reflector reported, or, once ``timeout`` seconds passed,
        :class:`~informer.CacheSyncTimeout` (or the connection or API error that kept
        the caches from syncing). ``async with manager`` does this within the startup
        timeout.
        """
        if self._state != "running":
            raise RuntimeError("wait_for_cache_sync() needs a started Manager")
        now = anyio.current_time()
        deadline = math.inf if timeout is None else now + timeout
        await wait_synced(
            self._registry.controllers,
            self.informers,
            self._errors,
            deadline=deadline,
            budget=f"{timeout:g}s" if timeout is not None else "the timeout",
            address=self._address,
        )

    async def __aenter__(self) -> Manager:
        if self._state != "new":
            raise RuntimeError("a Manager runs once")
        self._state = "starting"
        stack = contextlib.AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException as exc:
            self._state = "stopped"
            try:
                await stack.__aexit__(type(exc), exc, exc.__traceback__)
            except BaseException as cleanup:
                raise_collapsed(cleanup)
            raise_collapsed(exc)
        self._stack = stack
        self._state = "running"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        self._state = "stopped"
        assert stack is not None, "__aexit__ without __aenter__"
        try:
            return bool(await stack.__aexit__(exc_type, exc, tb))
        except BaseException as error:
            if collapse(error) is exc:
                return False  # the body's own exception: let it propagate unchanged
            raise_collapsed(error)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        deadline = anyio.current_time() + self.startup_timeout
        self._webhook_server = await stack.enter_async_context(
            serving_webhooks(
                self._registry.webhooks,
                address=self.webhook_bind_address,
                cert_dir=self.webhook_cert_dir,
                observability=self.observability,
            )
        )
        api = await self._connect(stack)
        self._address = str(getattr(api.configuration, "host", "") or "?")
        await check_server(api, self._address, deadline, self.startup_timeout)
        new_factory = partial(self._new_factory, api)
        factories = self._factories
        if not factories.per_namespace:
            factories.set(self._mode.new_factories(self.namespaces, new_factory))
        for factory in factories.all():
            self.observability.add_factory(factory)
        self._registry.build(
            api,
            self._mode.class_factories(self.namespaces, self._factories.per_namespace),
            several=len(self.namespaces) > 1,
            workers=self.workers,
            grace=min(self.shutdown_grace, self._mode.shutdown_grace),
            queue_metrics=self.metrics.queue_metrics,
        )
        self.observability.add_api_client(api)
        for controller in self._registry.controllers:
            self.observability.add_controller(controller)
        probes = self._mode.prepare(
            ModeSetup(
                api=api,
                controllers=self._registry.controllers,
                classes=self._registry.classes,
                namespaces=self.namespaces,
                factories=self._factories.per_namespace,
                new_factory=new_factory,
                workers=self.workers,
                shutdown_grace=self.shutdown_grace,
                observability=self.observability,
            )
        )
        informers = self.informers
        log.info(
            "manager.starting",
            controllers=[c.name for c in self._registry.controllers],
            namespaces=[ns or "*" for ns in self.namespaces],
            informers=[i.name for i in informers],
        )
        await preflight([*informers, *probes], deadline, self._address)
        await self._mode.preflight(api, deadline=deadline, address=self._address)
        gc_state = GcState() if self.gc_freeze else None
        if gc_state is not None:
            stack.callback(gc_state.restore)
            gc_state.disable()
        self._endpoints = await stack.enter_async_context(
            self.observability.serve(
                metrics_address=self.metrics_bind_address,
                health_address=self.health_probe_bind_address,
                metrics_secure=self.metrics_secure,
                metrics_cert_dir=self.metrics_cert_dir,
                api_client=api,
            )
        )
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)  # on exit: stop everything, then wait
        for factory in self._factories.all():
            await tg.start(run_factory, factory, name=f"factory {factory.namespace or '*'}")
        synced = anyio.Event()
        tg.start_soon(self._mode.run, synced, self._address, name=f"controllers {self._mode}")
        await wait_synced(
            self._registry.controllers,
            informers,
            self._errors,
            deadline=deadline,
            budget=f"startup_timeout={self.startup_timeout:g}s",
            address=self._address,
        )
        if gc_state is not None:
            gc_state.freeze()
        synced.set()
        log.info(
            "manager.started",
            controllers=[c.name for c in self._registry.controllers],
            objects=sum(len(i.indexer) for i in informers),
        )

    async def _connect(self, stack: contextlib.AsyncExitStack) -> ApiClient:
        if self._api is not None:
            return self._api
        api = self._api = await connect(kubeconfig=self._kubeconfig, context=self._context)

        async def close() -> None:
            with anyio.CancelScope(shield=True):
                await api.close()

        stack.push_async_callback(close)
        return api

    def _new_factory(
        self, api: ApiClient, namespace: str | None, *, shared: bool = True
    ) -> SharedInformerFactory:
        """A factory for ``namespace``; ``shared``: routing other namespaces' informers to
        the factory keeping them (the extra all-namespaces factory keeps its own)."""
        options = {"on_watch_error": self._errors, "use_watch_list": self.watch_list}
        return SharedInformerFactory(
            api,
            namespace=namespace,
            transform=self.transform,
            reflector_options=options,
            router=self._factories.keeper if shared else None,
        )

    def __repr__(self) -> str:
        return (
            f"<Manager {self._state} namespaces={[ns or '*' for ns in self.namespaces]} "
            f"controllers={[c.name for c in self._registry.controllers]}>"
        )
