"""Metrics and health probes of one runner, wired in one place.

:class:`Observability` owns the :class:`~informer._observability.metrics.Metrics` and the health
checks and serves both endpoints from :meth:`Observability.serve` (an async context
manager) or :meth:`Observability.run` (a task). :func:`run_observability` is the one-call
form. The :class:`~informer.Manager` uses it for its metrics and health bind addresses.

Order matters once: a work queue takes its metrics hooks when it is **built**, so create
the Observability first and build the controllers with its queue-metrics provider in
place, then register them (or pass them to the constructor)::

    obs = Observability(factories=[factory])
    with use_queue_metrics_provider(obs.metrics.queue_metrics):
        controller = MyController(factory, api)
    obs.add_controller(controller)
    async with obs.serve(metrics_address=":8080", health_address=":8081") as endpoints:
        ...  # start the factories, then the controllers
    obs.add_elector(elector)  # whenever the elector exists (metrics + lease check)

A controller built without the provider is still exported, but its queue only with the
gauges (no adds, retries or durations).

What is registered:

- metrics (:class:`~informer._observability.metrics.Metrics`, its own registry):
  every informer of the factories (also those created later), every controller (queue and reconcile
  statistics), the elector (``leader_election_master_status``), the ApiClient's
  credentials (401/403 answers, rotated files), process metrics;
- liveness: ``event-loop`` (a heartbeat task, run while serving), ``watches`` (the
  factories' informers), ``leader-election`` (once an elector is given);
- readiness: ``informers`` (every informer of the factories synced), ``watches`` (no
  reflector without an answer from the API server for ``unreachable_after``),
  ``credentials`` (once an ApiClient is given: not every answer 401/403 for
  ``auth_failure_threshold``; :mod:`informer._observability.credential_check`).

An address of ``None`` or ``"0"`` disables that endpoint (the runner's default). A bind
failure raises :class:`~informer.observability.BindError` before anything is served.

Secure metrics (``metrics_secure=True``, the runner's ``--metrics-secure``), as
controller-runtime's: HTTPS (:mod:`informer._http.tls`) and every scrape's bearer
token authenticated and authorized by the API server
(:class:`~informer._http.authn.DelegatingAuthorizer`): 401 without a valid token, 403
without RBAC ``get`` on the non-resource URL ``/metrics``. The probes stay plain HTTP
(the kubelet probes over HTTP and sends no token); both servers withstand idle and slow
connections (:mod:`informer._http.server`).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import anyio
import anyio.abc
import structlog
from prometheus_client import CollectorRegistry

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._exceptions import ConfigError
from .._http.authn import DelegatingAuthorizer
from .._http.server import DEFAULT_LIMITS, HttpLimits, HttpServer, RequestFilter
from .._http.tls import server_tls
from .._meta.types import LeaderStatus
from .._rest.api_client import ApiClient
from .._rest.credentials import AuthStatus
from .._rest.transport import auth_status
from .credential_check import DEFAULT_AUTH_FAILURE_THRESHOLD, credentials_check
from .health import (
    DEFAULT_LOOP_INTERVAL,
    DEFAULT_MAX_LOOP_LAG,
    DEFAULT_STALL_SLACK,
    DEFAULT_STALL_STRIKES,
    DEFAULT_UNREACHABLE_AFTER,
    EventLoopMonitor,
    HealthChecks,
    LeaseHolder,
    WatchConnectCheck,
    WatchStallCheck,
    health_routes,
    informers_synced_check,
    lease_check,
)
from .metrics import Metrics, metrics_routes

__all__ = ["Endpoints", "Observability", "run_observability"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The ports actually bound (``None``: that endpoint is disabled)."""

    metrics_port: int | None
    health_port: int | None


def _enabled(address: str | None) -> bool:
    return bool(address) and address != "0"


class Observability:
    """Metrics and health checks over ``factories``, ``controllers``, ``elector`` and
    ``api_client`` (the client the informers use: its credentials are judged).

    Construct it before the controllers (they take their queue hooks from
    ``metrics.queue_metrics`` when built, see the module docstring); add factories,
    controllers, electors and ApiClients with the ``add_*`` methods or at construction,
    before the factories start. ``registry`` defaults to a new ``CollectorRegistry``;
    ``clock`` must be the reflectors' clock. The other arguments tune the checks (see
    :mod:`informer._observability.health`). Everything runs on the event loop.
    """

    def __init__(
        self,
        *,
        factories: Iterable[SharedInformerFactory] = (),
        controllers: Iterable[Controller] = (),
        elector: LeaderStatus | None = None,
        api_client: ApiClient | None = None,
        registry: CollectorRegistry | None = None,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.monotonic,
        loop_interval: float = DEFAULT_LOOP_INTERVAL,
        max_loop_lag: float = DEFAULT_MAX_LOOP_LAG,
        stall_slack: float = DEFAULT_STALL_SLACK,
        stall_strikes: int = DEFAULT_STALL_STRIKES,
        unreachable_after: float = DEFAULT_UNREACHABLE_AFTER,
        auth_failure_threshold: float = DEFAULT_AUTH_FAILURE_THRESHOLD,
    ) -> None:
        self.factories: list[SharedInformerFactory] = []
        self.api_clients: list[ApiClient] = []
        self.metrics = Metrics(registry, process_metrics=process_metrics, clock=clock)
        for factory in factories:
            self.add_factory(factory)
        for controller in controllers:
            self.add_controller(controller)
        self.loop_monitor = EventLoopMonitor(
            interval=loop_interval, max_lag=max_loop_lag, clock=clock
        )
        self.checks = HealthChecks()
        self.checks.add_liveness("event-loop", self.loop_monitor.check)
        self.checks.add_liveness(
            "watches",
            WatchStallCheck(
                self.informers, slack=stall_slack, stall_strikes=stall_strikes, clock=clock
            ),
        )
        self.checks.add_readiness("informers", informers_synced_check(self.informers))
        self.checks.add_readiness(
            "watches",
            WatchConnectCheck(self.informers, unreachable_after=unreachable_after, clock=clock),
        )
        self._auth_failure_threshold = auth_failure_threshold
        self._electors: list[LeaderStatus] = []
        if elector is not None:
            self.add_elector(elector)
        if api_client is not None:
            self.add_api_client(api_client)

    def informers(self) -> list[SharedIndexInformer]:
        """Every informer of the factories (read live: later ones are included)."""
        return [i for f in self.factories for i in f.informers]

    def add_factory(self, factory: SharedInformerFactory) -> None:
        """Export and health-check every informer of ``factory`` (now and later). Idempotent."""
        if all(f is not factory for f in self.factories):
            self.factories.append(factory)
            self.metrics.add_factory(factory)

    def remove_factory(self, factory: SharedInformerFactory) -> None:
        """Forget a stopped ``factory``: its informers leave the metrics and the checks."""
        self.factories = [f for f in self.factories if f is not factory]
        self.metrics.remove_factory(factory)

    def remove_controller(self, controller: Controller) -> None:
        """Stop exporting a stopped controller's queue and reconcile statistics."""
        self.metrics.remove_controller(controller)

    def add_controller(self, controller: Controller) -> None:
        """Export a controller's queue and reconcile statistics. Idempotent."""
        self.metrics.add_controller(controller)

    def add_api_client(self, api_client: ApiClient) -> None:
        """Judge ``api_client``'s credentials: export its 401/403 answers and rotated
        files, and add the ``credentials`` readiness check (with the first client).
        Idempotent."""
        if any(c is api_client for c in self.api_clients):
            return
        self.api_clients.append(api_client)
        self.metrics.add_api_client(api_client)
        if len(self.api_clients) == 1:
            self.checks.add_readiness(
                "credentials",
                credentials_check(self._auth_statuses, threshold=self._auth_failure_threshold),
            )

    def _auth_statuses(self) -> list[tuple[str, AuthStatus]]:
        return [
            (str(getattr(c.configuration, "host", "") or "?"), auth_status(c))
            for c in self.api_clients
        ]

    def add_elector(self, elector: LeaderStatus) -> None:
        """Export the elector's status, and check its lease if it is a
        :class:`~informer._observability.health.LeaseHolder` (``LeaderElector`` is). Idempotent."""
        if any(e is elector for e in self._electors):
            return
        self._electors.append(elector)
        self.metrics.add_elector(elector)
        if isinstance(elector, LeaseHolder):
            name = (
                "leader-election"
                if len(self._electors) == 1
                else f"leader-election-{len(self._electors)}"
            )
            self.checks.add_liveness(name, lease_check(elector))

    @contextlib.asynccontextmanager
    async def serve(
        self,
        *,
        metrics_address: str | None,
        health_address: str | None,
        metrics_secure: bool = False,
        metrics_cert_dir: str | None = None,
        api_client: ApiClient | None = None,
        http_limits: HttpLimits = DEFAULT_LIMITS,
    ) -> AsyncIterator[Endpoints]:
        """Bind both endpoints (``BindError`` at once if one cannot), serve them inside
        the block, stop on exit. Yields the bound ports.

        ``metrics_secure`` serves metrics over HTTPS (the pair in ``metrics_cert_dir``,
        else a self-signed certificate) to clients whose bearer token ``api_client``'s
        API server authenticates and authorizes for ``get`` on the path (module
        docstring). Raises :class:`~informer.ConfigError` when ``metrics_secure`` lacks
        ``api_client``, ``metrics_cert_dir`` is given without it, or the certificate
        cannot be loaded. ``http_limits`` applies to both servers.
        """
        tls: Callable[[], ssl.SSLContext] | None = None
        request_filter: RequestFilter | None = None
        if metrics_cert_dir is not None and not metrics_secure:
            raise ConfigError("a metrics certificate folder is only used with secure metrics")
        if metrics_secure and _enabled(metrics_address):
            if api_client is None:
                raise ConfigError(
                    "secure metrics check scrapers' tokens with the API server: pass the api_client"
                )
            tls = server_tls(metrics_cert_dir)
            request_filter = DelegatingAuthorizer(api_client)
        servers: list[HttpServer] = []
        try:
            if _enabled(metrics_address):
                assert metrics_address is not None
                servers.append(
                    await HttpServer.bind(
                        metrics_address,
                        metrics_routes(self.metrics),
                        name="metrics",
                        limits=http_limits,
                        tls=tls,
                        request_filter=request_filter,
                    )
                )
            if _enabled(health_address):
                assert health_address is not None
                servers.append(
                    await HttpServer.bind(
                        health_address,
                        health_routes(self.checks),
                        name="health",
                        limits=http_limits,
                    )
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                for server in servers:
                    await server.aclose()
            raise
        by_name = {s.name: s.port for s in servers}
        endpoints = Endpoints(by_name.get("metrics"), by_name.get("health"))
        async with anyio.create_task_group() as tg:
            if endpoints.health_port is not None:
                await tg.start(self.loop_monitor.run)
            for server in servers:
                tg.start_soon(server.serve, name=f"{server.name} endpoint")
            log.info(
                "observability.serving",
                metrics_address=metrics_address if endpoints.metrics_port is not None else None,
                metrics_port=endpoints.metrics_port,
                metrics_secure=tls is not None,
                health_address=health_address if endpoints.health_port is not None else None,
                health_port=endpoints.health_port,
            )
            try:
                yield endpoints
            finally:
                tg.cancel_scope.cancel()

    async def run(
        self,
        *,
        metrics_address: str | None,
        health_address: str | None,
        metrics_secure: bool = False,
        metrics_cert_dir: str | None = None,
        api_client: ApiClient | None = None,
        http_limits: HttpLimits = DEFAULT_LIMITS,
        task_status: anyio.abc.TaskStatus[Endpoints] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled (options as :meth:`serve`);
        ``task_status.started(Endpoints)`` once listening."""
        async with self.serve(
            metrics_address=metrics_address,
            health_address=health_address,
            metrics_secure=metrics_secure,
            metrics_cert_dir=metrics_cert_dir,
            api_client=api_client,
            http_limits=http_limits,
        ) as endpoints:
            task_status.started(endpoints)
            await anyio.sleep_forever()


async def run_observability(
    *,
    metrics_address: str | None,
    health_address: str | None,
    factories: Iterable[SharedInformerFactory],
    controllers: Iterable[Controller],
    elector: LeaderStatus | None = None,
    metrics_secure: bool = False,
    metrics_cert_dir: str | None = None,
    api_client: ApiClient | None = None,
    task_status: anyio.abc.TaskStatus[Endpoints] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Register everything and serve both endpoints until cancelled (one call; the
    ``metrics_*`` and ``api_client`` options as :meth:`Observability.serve`; the
    ``api_client``'s credentials are judged too, see :meth:`Observability.add_api_client`).

    The controllers' queues were built before this call, so their adds, retries and
    durations are exported only if they were built with a queue-metrics provider in
    place (any :class:`~informer._observability.metrics.Metrics`'s ``queue_metrics``); else
    their gauges only. Use :class:`Observability` to get everything.
    ``task_status.started(Endpoints)`` once both are listening;
    :class:`~informer.observability.BindError` is raised before that when an address
    cannot be used.
    """
    obs = Observability(
        factories=factories, controllers=controllers, elector=elector, api_client=api_client
    )
    await obs.run(
        metrics_address=metrics_address,
        health_address=health_address,
        metrics_secure=metrics_secure,
        metrics_cert_dir=metrics_cert_dir,
        api_client=api_client,
        task_status=task_status,
    )
