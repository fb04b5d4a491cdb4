"""``python -m informer.run``: run controllers against a Kubernetes cluster.

::

    python -m informer.run                                  # every sample controller
    python -m informer.run --controllers configmap-reloader # some samples, by name
    python -m informer.run my_operator.controllers          # user controllers, as kopf run
    python -m informer.run my_operator:Reloader path/to/more_controllers.py

Targets (positional) are user controllers: ``module:Class``, ``module`` (every
:class:`~informer.Controller` subclass defined in it) or ``path/to/file.py``. Without
targets the runner runs ``controllers.SAMPLE_CONTROLLERS`` (all of them, or those named
by ``--controllers a,b``); with targets, ``--controllers`` adds samples to them.

What it does, in order: configure logging (the only place that configures structlog);
load the controllers; load the client configuration (``--kubeconfig``/``$KUBECONFIG``/
``~/.kube/config``, ``--context``, or the in-cluster service account inside a Pod);
``GET /version`` until the server answers (within ``--startup-timeout``); build one
:class:`~informer.SharedInformerFactory` per ``--namespace`` (one for all namespaces by
default; ``managedFields`` are stripped from cached objects) and one instance of each
controller per factory; list each watched resource once (``limit=1``) so that a missing
RBAC permission fails at once; start the informers and the controllers; wait until every
controller's caches synced and every reflector opened its first watch
(``--startup-timeout`` covers all of startup), aborting on a 401/403 a reflector reports
(e.g. ``watch`` forbidden while ``list`` is allowed); log ``runner.started``; run until
SIGINT or SIGTERM. A signal cancels everything: in-flight reconciles get
:data:`SHUTDOWN_GRACE` seconds to finish, the process exits 0 within 5 s. A second signal
exits at once (code 130).

Logs go to stdout (``--log-format console`` on a terminal, ``json`` otherwise); a fatal
error is one line ``error: ...`` on stderr, without a traceback, and a non-zero exit code:

==== =====================================================================================
code meaning
==== =====================================================================================
0    stopped by SIGINT/SIGTERM
1    unexpected error: a bug in a controller (e.g. in ``setup``) or in the runner; the
     only case that prints a traceback
2    bad command line, or a metrics/health address that cannot be bound
3    unknown controller name, module, attribute or file (named), or none to run
4    client configuration missing or invalid (kubeconfig, context, in-cluster files)
5    API server unreachable within ``--startup-timeout`` (names the address)
6    401 Unauthorized: the server rejected the credentials
7    403 Forbidden: names the verb, the resource and the namespace
8    caches did not sync within ``--startup-timeout`` (names the informers)
9    another API error at startup (e.g. 404: a resource the server does not serve)
10   leader election lost (``--leader-elect``): the Lease was not renewed within the
     renew deadline or another replica took it; the controllers were stopped
130  a second signal arrived during shutdown
==== =====================================================================================

Observability: ``--metrics-bind-address HOST:PORT`` serves Prometheus metrics on
``/metrics`` and ``--health-probe-bind-address HOST:PORT`` serves ``/healthz`` (liveness)
and ``/readyz`` (readiness); ``0`` disables them (the default), ``:8080`` listens on every
interface. Both are bound before anything else starts.

Leader election (``--leader-elect``, off by default): every replica starts its informers
(followers keep warm caches) but runs the controllers' workers only while it holds the
Lease ``--leader-election-id`` (default ``kube-informer``) in
``--leader-election-namespace`` (default: the Pod's namespace, read from
:data:`SERVICE_ACCOUNT_NAMESPACE_FILE`, else ``default``), as identity
``<hostname>_<uuid4>``; see :class:`~informer.LeaderElector`. At startup the Lease is read
once, so a missing ``get leases`` permission exits 7 at once (as does a 403 on
``create``/``update`` later). A replica that **loses** the lease (not renewed within the
renew deadline, or taken by another) cancels its controllers and exits 10, as
controller-runtime does: its Deployment restarts it as a follower. On SIGINT/SIGTERM the
leader stops its controllers, then releases the Lease (within
:data:`LEASE_RELEASE_TIMEOUT`), so a follower takes over at once; the exit is 0 within
5 s. Advanced timing flags (seconds; ``lease > renew deadline > retry period * 1.2``):
``--leader-election-lease-duration`` (15), ``--leader-election-renew-deadline`` (10),
``--leader-election-retry-period`` (2).

``--watch-list`` (on by default, as in client-go 1.35+; ``--no-watch-list`` lists
instead): caches sync from a watch-list stream, and the runner's transform (it strips
``metadata.managedFields``) runs on each object as it arrives, so the stripped parts never
accumulate (bench/RESULTS.md: 6.0 instead of 11.5 KB per cached Deployment). Servers
without watch-list are detected and listed instead.

``--gc-freeze`` (on by default; ``--no-gc-freeze`` turns it off): the cyclic GC is
disabled during the initial sync, then ``gc.collect()``, ``gc.freeze()`` (the cache moves
to the permanent generation, never scanned again) and higher thresholds
(:data:`GC_THRESHOLDS`) keep the steady state fast with a large cache. Cached objects are
acyclic JSON dicts, freed by reference counting when they leave the cache, so freezing
them leaks nothing (bench/RESULTS.md: 100k ConfigMaps sync 2.8x faster, watch throughput
3-4x with the GC on).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import signal
import socket
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, NoReturn

import anyio
import anyio.abc
import structlog

from ._cache.factory import SharedInformerFactory
from ._cache.informer import SharedIndexInformer
from ._controller import Controller
from ._exceptions import (
    ApiError,
    BindError,
    ConfigError,
    ConnectionFailed,
    Forbidden,
    InformerError,
    NotFound,
    Unauthorized,
)
from ._kube import ApiClient, new_api_client, request_json
from ._leaderelection import LeaderElector, validate_timings
from ._resource import LEASES
from ._runtime.logconfig import LOG_FORMATS, LOG_LEVELS, configure_logging, default_log_format
from ._runtime.observability import Observability
from ._runtime.targets import TargetError, load_samples, load_target, select_controllers
from ._transforms import strip_managed_fields

__all__ = [
    "DEFAULT_LEADER_ELECTION_ID",
    "GC_THRESHOLDS",
    "LEASE_RELEASE_TIMEOUT",
    "SERVICE_ACCOUNT_NAMESPACE_FILE",
    "SHUTDOWN_GRACE",
    "ExitCode",
    "StartupError",
    "build_parser",
    "main",
]

log = structlog.get_logger("informer.run")  # not "__main__" under -m

SHUTDOWN_GRACE: Final = 3.0
"""Seconds in-flight reconciles get to finish after a signal (the whole stop stays < 5 s)."""

GC_THRESHOLDS: Final = (50_000, 50, 100)
"""``gc.set_threshold`` after the initial sync with ``--gc-freeze``."""

DEFAULT_LEADER_ELECTION_ID: Final = "kube-informer"
"""The Lease name with ``--leader-elect`` when ``--leader-election-id`` is not given."""

SERVICE_ACCOUNT_NAMESPACE_FILE: Final = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""The Pod's namespace: the default ``--leader-election-namespace`` inside a cluster."""

LEASE_RELEASE_TIMEOUT: Final = 1.0
"""Seconds the Lease release gets on SIGINT/SIGTERM (after the controllers' drain)."""

_POLL: Final = 0.05
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ExitCode(IntEnum):
    """Exit codes of ``python -m informer.run`` (see the module docstring)."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    TARGET = 3
    CONFIG = 4
    UNREACHABLE = 5
    UNAUTHORIZED = 6
    FORBIDDEN = 7
    SYNC_TIMEOUT = 8
    API_ERROR = 9
    LEADERSHIP_LOST = 10
    FORCED = 130


class StartupError(Exception):
    """A fatal condition (at startup, or the lost lease): printed as one line, exits ``code``."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = " ".join(message.split())  # one line


# ------------------------------------------------------------------------- command line


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _namespace(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("empty namespace")
    for name in names:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise argparse.ArgumentTypeError(f"not a valid namespace name: {name!r}")
    return names


def _dns_label(text: str) -> str:
    if len(text) > 63 or not _DNS_LABEL.match(text):
        raise argparse.ArgumentTypeError(f"not a valid namespace name: {text!r}")
    return text


def _dns_subdomain(text: str) -> str:
    if len(text) > 253 or not _DNS_SUBDOMAIN.match(text):
        raise argparse.ArgumentTypeError(f"not a valid DNS-1123 subdomain: {text!r}")
    return text


def _bind_address(text: str) -> str:
    """``0`` (disabled), ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; returned as given."""
    if text == "0":
        return text
    host, sep, port = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, :PORT or 0, got {text!r}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise argparse.ArgumentTypeError(f"bad IPv6 address in {text!r}")
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"an IPv6 host must be in brackets: {text!r}")
    elif host and not re.match(r"^[A-Za-z0-9.-]+$", host):
        raise argparse.ArgumentTypeError(f"bad host in {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"bad port in {text!r} (0-65535)")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m informer.run`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m informer.run",
        description=(
            "Run kube-informer controllers: the samples (default) or your own, given as "
            "module:Class, module, or path/to/file.py. Stops cleanly on SIGINT/SIGTERM."
        ),
        epilog=(
            "exit codes: 0 stopped by a signal, 1 internal error, 2 bad command line, "
            "3 unknown controller/module/file, 4 bad kubeconfig, 5 server unreachable, "
            "6 unauthorized (401), 7 forbidden (403), 8 caches not synced in time, "
            "9 other API error at startup, 10 leader election lost, 130 second signal"
        ),
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="user controllers: module:Class, module (all its Controller subclasses) or file.py",
    )
    conn = parser.add_argument_group("cluster")
    conn.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster in a Pod)",
    )
    conn.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    conn.add_argument(
        "--namespace",
        "-n",
        action="append",
        type=_namespace,
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable, or comma-separated; default: all)",
    )
    conn.add_argument(
        "--startup-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="give up if the server is unreachable or caches are not synced by then (default: 30)",
    )
    ctl = parser.add_argument_group("controllers")
    ctl.add_argument(
        "--controllers",
        metavar="A,B",
        help="sample controllers to run, by name (default: all, unless TARGETs are given)",
    )
    ctl.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="concurrent reconciles per controller (default: the controller's, 1)",
    )
    ctl.add_argument(
        "--watch-list",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sync caches with a watch-list stream (sendInitialEvents), falling back to "
        "list+watch on servers without it; halves the memory of a cache whose managedFields "
        "are stripped (default: on, as in client-go 1.35+)",
    )
    ctl.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="disable the GC during the initial sync, then gc.freeze() the cache and raise "
        "the GC thresholds (default: on)",
    )
    logs = parser.add_argument_group("logging")
    logs.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="console (colours) or json lines (default: console on a terminal, else json)",
    )
    logs.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="default: info",
    )
    election = parser.add_argument_group("leader election")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="run the controllers only while holding the Lease (informers run on every "
        "replica); exits 10 when the lease is lost",
    )
    election.add_argument(
        "--leader-election-id",
        type=_dns_subdomain,
        default=DEFAULT_LEADER_ELECTION_ID,
        metavar="NAME",
        help=f"the Lease name (default: {DEFAULT_LEADER_ELECTION_ID})",
    )
    election.add_argument(
        "--leader-election-namespace",
        type=_dns_label,
        metavar="NS",
        help="the Lease namespace (default: the Pod's namespace in a cluster, else default)",
    )
    for flag, default, what in (
        ("lease-duration", 15.0, "followers wait this long after the last renewal"),
        ("renew-deadline", 10.0, "the leader gives up if it cannot renew within this"),
        ("retry-period", 2.0, "pause between attempts"),
    ):
        election.add_argument(
            f"--leader-election-{flag}",
            type=_positive_float,
            default=default,
            metavar="SECONDS",
            help=f"advanced: {what} (default: {default:g})",
        )
    ops = parser.add_argument_group("operability")
    ops.add_argument(
        "--metrics-bind-address",
        type=_bind_address,
        default="0",
        metavar="ADDR",
        help="HOST:PORT for Prometheus metrics; 0 disables (default)",
    )
    ops.add_argument(
        "--health-probe-bind-address",
        type=_bind_address,
        default="0",
        metavar="ADDR",
        help="HOST:PORT for /healthz and /readyz; 0 disables (default)",
    )
    return parser


def _controller_classes(args: argparse.Namespace) -> list[type[Controller]]:
    chosen: list[type[Controller]] = []
    for target in args.targets:
        for cls in load_target(target):
            if cls not in chosen:
                chosen.append(cls)
    names = [n.strip() for n in (args.controllers or "").split(",") if n.strip()]
    if names or not args.targets:
        samples = load_samples()
        for cls in select_controllers(samples, names) if names else list(samples.values()):
            if cls not in chosen:
                chosen.append(cls)
    if not chosen:
        raise TargetError("no controller to run")
    return chosen


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class _Election:
    """``--leader-elect`` settings (see the module docstring)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float
    renew_deadline: float
    retry_period: float


@dataclass
class _Options:
    classes: list[type[Controller]]
    namespaces: list[str | None]
    workers: int | None
    startup_timeout: float
    gc_freeze: bool
    kubeconfig: str | None
    context: str | None
    election: _Election | None = None
    metrics_address: str = "0"
    health_address: str = "0"
    watch_list: bool = True


class _Signals:
    """Cancels the work on the first SIGINT/SIGTERM; exits at once on the second."""

    def __init__(self, work: anyio.CancelScope) -> None:
        self.work = work
        self.received: str | None = None

    async def watch(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if self.received is None:
                self.received = name
                log.info("runner.stopping", signal=name)
                self.work.cancel()
            else:
                log.warning("runner.forced_exit", signal=name)
                _hard_exit(ExitCode.FORCED, f"second signal ({name}) during shutdown")


def _hard_exit(code: ExitCode, message: str) -> NoReturn:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(int(code))


async def _main_async(opts: _Options) -> ExitCode:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            work = anyio.CancelScope()
            watcher = _Signals(work)
            tg.start_soon(watcher.watch, signals)
            try:
                with work:
                    await _serve(opts)
            finally:
                tg.cancel_scope.cancel()
    if watcher.received is not None:
        log.info("runner.stopped", signal=watcher.received)
    return ExitCode.OK


async def _serve(opts: _Options) -> None:
    deadline = anyio.current_time() + opts.startup_timeout
    try:
        api = await new_api_client(kubeconfig=opts.kubeconfig, context=opts.context)
    except ConfigError as exc:
        raise StartupError(ExitCode.CONFIG, str(exc)) from exc
    except Exception as exc:
        # A parse error new_api_client does not translate (e.g. malformed YAML).
        path = opts.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise StartupError(
            ExitCode.CONFIG, f"kubeconfig {path!r} is invalid: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        address = str(getattr(api.configuration, "host", "") or "?")
        await _check_server(api, address, deadline, opts.startup_timeout)
        errors = _WatchErrors()
        factories = [
            SharedInformerFactory(
                api,
                namespace=ns,
                transform=strip_managed_fields,
                reflector_options={"on_watch_error": errors, "use_watch_list": opts.watch_list},
            )
            for ns in opts.namespaces
        ]
        controllers: list[Controller] = []
        for ns, factory in zip(opts.namespaces, factories, strict=True):
            for cls in opts.classes:
                kwargs: dict[str, Any] = {}
                if opts.workers is not None:
                    kwargs["workers"] = opts.workers
                if len(opts.namespaces) > 1:
                    kwargs["name"] = f"{cls.name}@{ns}"
                controller = cls(factory, api, **kwargs)
                controller.shutdown_grace = min(controller.shutdown_grace, SHUTDOWN_GRACE)
                if opts.election is not None:
                    # A lost lease must stop the writes before a follower's lease expires.
                    controller.shutdown_grace = min(
                        controller.shutdown_grace,
                        opts.election.lease_duration - opts.election.renew_deadline,
                    )
                controllers.append(controller)
        elector = _new_elector(api, opts.election, controllers) if opts.election else None
        informers = [i for f in factories for i in f.informers]
        obs = Observability(factories=factories, controllers=controllers, elector=elector)
        log.info(
            "runner.starting",
            controllers=[c.name for c in controllers],
            namespaces=[ns or "*" for ns in opts.namespaces],
            informers=[i.name for i in informers],
        )
        await _preflight(informers, deadline, address)
        if elector is not None:
            await _preflight_lease(api, elector, deadline, address)
        if opts.gc_freeze:
            gc.disable()
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(
                    obs.serve(
                        metrics_address=opts.metrics_address, health_address=opts.health_address
                    )
                )
            except BindError as exc:
                raise StartupError(ExitCode.USAGE, str(exc)) from exc
            for factory in factories:
                await stack.enter_async_context(factory)
            async with anyio.create_task_group() as tg:
                if elector is None:  # else they run only while leading
                    for controller in controllers:
                        tg.start_soon(controller.run, name=f"controller {controller.name}")
                await _wait_synced(
                    controllers, informers, errors, deadline, opts.startup_timeout, address
                )
                if opts.gc_freeze:
                    _freeze_gc()
                log.info(
                    "runner.started",
                    controllers=[c.name for c in controllers],
                    objects=sum(len(i.indexer) for i in informers),
                )
                if elector is None:
                    await anyio.sleep_forever()
                else:
                    await _run_elected(elector, address)
    finally:
        if opts.gc_freeze and not gc.isenabled():
            gc.enable()
        with anyio.CancelScope(shield=True):
            await api.close()


# ----------------------------------------------------------------------- leader election


def _election_options(args: argparse.Namespace) -> _Election | None:
    """The ``--leader-elect`` settings, or None; a bad timing combination is a usage error."""
    try:
        validate_timings(
            args.leader_election_lease_duration,
            args.leader_election_renew_deadline,
            args.leader_election_retry_period,
        )
    except ValueError as exc:
        message = (
            str(exc)
            .replace("lease_duration", "--leader-election-lease-duration")
            .replace("renew_deadline", "--leader-election-renew-deadline")
            .replace("retry_period", "--leader-election-retry-period")
        )
        raise StartupError(ExitCode.USAGE, message) from exc
    if not args.leader_elect:
        return None
    return _Election(
        name=args.leader_election_id,
        namespace=args.leader_election_namespace or _default_election_namespace(),
        identity=f"{socket.gethostname()}_{uuid.uuid4()}",
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        retry_period=args.leader_election_retry_period,
    )


def _default_election_namespace() -> str:
    """The Pod's namespace (service account mount), else ``default``."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE_FILE) as f:
            namespace = f.read().strip()
    except OSError:
        return "default"
    return namespace or "default"


def _new_elector(
    api: ApiClient, election: _Election, controllers: Sequence[Controller]
) -> LeaderElector:
    """The runner's elector: its leading work runs every controller until cancelled."""

    async def lead() -> None:
        async with anyio.create_task_group() as tg:
            for controller in controllers:
                tg.start_soon(controller.run, name=f"controller {controller.name}")

    return LeaderElector(
        api,
        name=election.name,
        namespace=election.namespace,
        identity=election.identity,
        lease_duration=election.lease_duration,
        renew_deadline=election.renew_deadline,
        retry_period=election.retry_period,
        on_started_leading=lead,
        release_timeout=LEASE_RELEASE_TIMEOUT,
    )


async def _preflight_lease(
    api: ApiClient, elector: LeaderElector, deadline: float, address: str
) -> None:
    """Read the Lease once: a missing ``get leases`` permission fails at startup.

    A missing Lease is fine (the elector creates it); connection failures are left to the
    elector's retries.
    """
    try:
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await request_json(
                api,
                "GET",
                LEASES.path(elector.name, namespace=elector.namespace),
                resource=LEASES.group_resource,
                namespace=elector.namespace,
            )
    except NotFound:
        pass
    except (Unauthorized, Forbidden) as exc:
        raise _api_error(exc, None, address) from exc
    except InformerError as exc:
        log.debug("runner.preflight_failed", lease=elector.name, error=str(exc))


async def _run_elected(elector: LeaderElector, address: str) -> None:
    """Campaign for the Lease; the controllers run while leading. Never returns normally.

    Raises :class:`StartupError` (code 10) when leadership is lost, 6/7 on a 401/403 from
    the Lease requests. Cancellation (a signal) stops the controllers, then releases.
    """
    try:
        await elector.run()
    except (Unauthorized, Forbidden) as exc:
        raise _api_error(exc, None, address) from exc
    raise StartupError(
        ExitCode.LEADERSHIP_LOST,
        f"leader election lost: lease {elector.namespace}/{elector.name} "
        f"(identity {elector.identity}): {elector.lost_reason}; controllers stopped",
    )


async def _check_server(
    api: ApiClient, address: str, deadline: float, startup_timeout: float
) -> None:
    """``GET /version`` until it answers; retry connection failures until ``deadline``."""
    delay = 0.1
    last: str = "no answer"
    while True:
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            raise StartupError(
                ExitCode.UNREACHABLE,
                f"cannot reach the API server at {address} within --startup-timeout "
                f"{startup_timeout:g}s: {last}",
            )
        try:
            with anyio.fail_after(remaining):
                version = await request_json(api, "GET", "/version", read_timeout=remaining)
        except TimeoutError:
            last = "timed out"
            continue
        except ConnectionFailed as exc:
            last = str(exc)
        except Unauthorized as exc:
            raise StartupError(ExitCode.UNAUTHORIZED, _unauthorized(address, exc)) from exc
        except ApiError as exc:
            last = f"GET /version answered {exc.status}: {exc}"
            if exc.status < 500 and exc.status != 429:
                raise StartupError(ExitCode.API_ERROR, f"{address}: {last}") from exc
        else:
            log.info("runner.connected", server=address, version=version.get("gitVersion"))
            return
        log.debug("runner.unreachable", server=address, error=last)
        await anyio.sleep(min(delay, max(0.0, deadline - anyio.current_time())))
        delay = min(delay * 2, 2.0)


def _unauthorized(address: str, exc: BaseException) -> str:
    return f"unauthorized (401): the API server at {address} rejected the credentials: {exc}"


def _api_error(exc: ApiError, informer: SharedIndexInformer | None, address: str) -> StartupError:
    if isinstance(exc, Forbidden):
        return StartupError(ExitCode.FORBIDDEN, str(exc))
    if isinstance(exc, Unauthorized):
        return StartupError(ExitCode.UNAUTHORIZED, _unauthorized(address, exc))
    what = informer.name if informer is not None else "a watched resource"
    if isinstance(exc, NotFound):
        return StartupError(
            ExitCode.API_ERROR,
            f"the API server at {address} does not serve {what} (404): {exc}",
        )
    return StartupError(ExitCode.API_ERROR, f"{what}: {exc}")


async def _preflight(
    informers: Sequence[SharedIndexInformer], deadline: float, address: str
) -> None:
    """List each resource once (``limit=1``): fail fast on 401/403/404.

    Connection failures and other errors are left to the reflectors (retried until the
    startup deadline).
    """
    failures: list[StartupError] = []

    async def probe(informer: SharedIndexInformer) -> None:
        try:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await informer.lister_watcher.list(limit=1)
        except (Unauthorized, Forbidden, NotFound) as exc:
            failures.append(_api_error(exc, informer, address))
        except InformerError as exc:
            log.debug("runner.preflight_failed", informer=informer.name, error=str(exc))

    async with anyio.create_task_group() as tg:
        for informer in informers:
            tg.start_soon(probe, informer)
    if failures:
        raise failures[0]


class _WatchErrors:
    """The reflectors' ``on_watch_error`` callback: remembers the latest errors.

    Errors carry what failed (a Forbidden names the verb, resource and namespace), so
    one collector serves every informer.
    """

    def __init__(self) -> None:
        self.last: BaseException | None = None
        self.fatal: ApiError | None = None

    def __call__(self, exc: BaseException) -> None:
        self.last = exc
        if isinstance(exc, Unauthorized | Forbidden) and self.fatal is None:
            self.fatal = exc


async def _wait_synced(
    controllers: Sequence[Controller],
    informers: Sequence[SharedIndexInformer],
    errors: _WatchErrors,
    deadline: float,
    startup_timeout: float,
    address: str,
) -> None:
    """Wait until every controller synced and every reflector opened its first watch.

    A 401 or 403 reported by a reflector before that aborts (a watch forbidden while the
    list is allowed is caught here too); so does the deadline.
    """
    watching: set[int] = set()

    def started() -> bool:
        for informer in informers:
            if id(informer) not in watching and informer.reflector.is_watching:
                watching.add(id(informer))
        return len(watching) == len(informers) and all(c.has_synced() for c in controllers)

    while not started():
        if errors.fatal is not None:
            raise _api_error(errors.fatal, None, address)
        if anyio.current_time() >= deadline:
            raise _sync_timeout(
                [i for i in informers if id(i) not in watching], errors, startup_timeout
            )
        await anyio.sleep(_POLL)


def _sync_timeout(
    pending: Sequence[SharedIndexInformer], errors: _WatchErrors, timeout: float
) -> StartupError:
    names = ", ".join(i.name for i in pending) or "controller handlers"
    error = errors.last
    if isinstance(error, ConnectionFailed):
        return StartupError(
            ExitCode.UNREACHABLE,
            f"{error} (caches not synced within --startup-timeout {timeout:g}s)",
        )
    if isinstance(error, ApiError):
        return StartupError(
            ExitCode.API_ERROR,
            f"caches not synced within --startup-timeout {timeout:g}s ({names}): {error}",
        )
    return StartupError(
        ExitCode.SYNC_TIMEOUT, f"caches not synced within --startup-timeout {timeout:g}s: {names}"
    )


def _freeze_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()
    log.info("runner.gc_frozen", frozen=gc.get_freeze_count(), thresholds=GC_THRESHOLDS)


def _startup_error(exc: BaseException) -> StartupError | None:
    """The StartupError inside (possibly nested, single-member) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        found = [e for e in exc.exceptions if _startup_error(e) is not None]
        if not found:
            return None
        exc = found[0]
    return exc if isinstance(exc, StartupError) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m informer.run``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_format or default_log_format(sys.stdout), args.log_level)
    try:
        try:
            classes = _controller_classes(args)
        except TargetError as exc:
            raise StartupError(ExitCode.TARGET, str(exc)) from exc
        namespaces: list[str | None] = list(
            dict.fromkeys(ns for group in args.namespace for ns in group)
        ) or [None]
        election = _election_options(args)
        opts = _Options(
            election=election,
            classes=classes,
            namespaces=namespaces,
            workers=args.workers,
            startup_timeout=args.startup_timeout,
            gc_freeze=args.gc_freeze,
            kubeconfig=args.kubeconfig,
            context=args.context,
            watch_list=args.watch_list,
            metrics_address=args.metrics_bind_address,
            health_address=args.health_probe_bind_address,
        )
        return int(anyio.run(_main_async, opts))
    except KeyboardInterrupt:
        return int(ExitCode.FORCED)
    except BaseException as exc:
        startup = _startup_error(exc)
        if startup is None:
            if isinstance(exc, SystemExit):
                raise
            traceback.print_exception(exc)
            print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return int(ExitCode.INTERNAL)
        log.debug("runner.failed", code=int(startup.code), error=startup.message)
        print(f"error: {startup.message}", file=sys.stderr, flush=True)
        return int(startup.code)


if __name__ == "__main__":
    sys.exit(main())
