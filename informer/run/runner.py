"""``python -m informer.run``: run controllers against a Kubernetes cluster.

::

    python -m informer.run                                  # the registered controllers
    python -m informer.run --controllers configmap-reloader # some of them, by name
    python -m informer.run my_operator.controllers          # user controllers, as kopf run
    python -m informer.run my_operator:Reloader path/to/more_controllers.py

Targets (positional) are user controllers: ``module:Class``, ``module`` (every
:class:`~informer.Controller` subclass defined in it) or ``path/to/file.py``. Without
targets the runner runs the controllers that installed packages register under the
entry-point group ``kube_informer.controllers`` (the ``kube-informer-samples``
distribution registers two samples there): all of them, or those named by
``--controllers a,b``, which may also name the controllers registered under
``kube_informer.controllers.opt_in`` (run only when named: the samples' CRD operator);
with targets, ``--controllers`` adds registered ones to them. Only the controllers that
run are imported (:mod:`informer.run.targets`). Without a target and with nothing
registered to run by default, the runner exits 2 at once, saying how to name
controllers.

The runner is a thin command over :class:`~informer.Manager`: it parses the flags
(:func:`build_parser`, defined in ``informer/run/cli.py`` with its validators),
configures logging (the only place that configures structlog), loads the controllers,
builds a Manager from the flags and runs it until SIGINT or SIGTERM. The Manager loads
the client configuration (``--kubeconfig``/``$KUBECONFIG``/``~/.kube/config``,
``--context``, or the in-cluster service account inside a Pod); ``GET /version`` until
the server answers (within ``--startup-timeout``); builds one
:class:`~informer.SharedInformerFactory` per ``--namespace`` (one for all namespaces by
default; ``managedFields`` are stripped from cached objects) and one instance of each
controller per factory; lists each watched resource once (``limit=1``) so that a missing
RBAC permission fails at once; starts the informers and the controllers; waits until
every controller's caches synced and every reflector opened its first watch
(``--startup-timeout`` covers all of startup), aborting on a 401/403 a reflector reports
(e.g. ``watch`` forbidden while ``list`` is allowed). The runner then logs
``runner.started``. A signal cancels everything: in-flight reconciles get
:data:`SHUTDOWN_GRACE` seconds to finish, the process exits 0 within 5 s. A second signal
exits at once (code 130).

Logs go to stderr (``--log-format console`` on a terminal, ``json`` otherwise), as
controller-runtime's and kopf's do; stdout stays free for the program's own output. A
fatal error is one line ``error: ...`` on stderr, without a traceback, and a non-zero
exit code (the Manager's typed errors map to codes through one table,
:data:`EXIT_CODES`):

==== =====================================================================================
code meaning
==== =====================================================================================
0    stopped by SIGINT/SIGTERM
1    unexpected error: a bug in the library or the runner; the only case that prints a
     traceback
2    bad command line, a metrics/health/webhook address that cannot be bound, or no
     controller to run (no TARGET, and none registered but opt-in ones)
3    your code: an unknown controller or webhook name, module, attribute or file (named);
     an import that failed; or a controller's ``__init__``/``setup`` that raised (the
     class, the exception and the file:line of your code that raised it; the traceback
     with ``--log-level debug``; :mod:`informer.run.user_errors`)
4    client configuration missing or invalid (kubeconfig, context, in-cluster files), or
     no usable webhook serving certificate
5    API server unreachable: names the URL and the cause; at once when the port refuses
     connections, else (DNS, timeouts, TLS) after retrying for ``--startup-timeout``
6    401 Unauthorized: the server rejected the credentials
7    403 Forbidden: names the verb, the resource and the namespace
8    caches did not sync within ``--startup-timeout`` (names the informers)
9    another API error at startup (e.g. 404: a resource the server does not serve)
10   leader election lost (``--leader-elect``): the Lease was not renewed within the
     renew deadline or another replica took it; or shard membership lost (``--shard``):
     this replica's member Lease was not renewed within the renew deadline; the
     controllers were stopped
130  a second signal arrived during shutdown
==== =====================================================================================

Observability: ``--metrics-bind-address HOST:PORT`` serves Prometheus metrics on
``/metrics`` and ``--health-probe-bind-address HOST:PORT`` serves ``/healthz`` (liveness)
and ``/readyz`` (readiness); ``0`` disables them (the default), ``:8080`` listens on every
interface. Both are bound before anything else starts. Metrics are served securely by
default (``--metrics-secure``, as controller-runtime's scaffold): HTTPS with the
certificate in ``--metrics-cert-dir`` (or a self-signed one), and every scrape must carry
a bearer token the API server authenticates (TokenReview) and authorizes
(SubjectAccessReview: ``get`` on the non-resource URL ``/metrics``); ``--no-metrics-secure``
serves plain HTTP without authentication. Probes are always plain HTTP, unauthenticated.

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
leader stops its controllers, then releases the Lease (within its ``release_timeout``),
so a follower takes over at once; the exit is 0 within 5 s. Advanced timing flags
(seconds; ``lease > renew deadline > retry period * 1.2``; the rules and defaults of
:class:`~informer.leaderelection.LeaseTimings`): ``--leader-election-lease-duration``
(15), ``--leader-election-renew-deadline`` (10), ``--leader-election-retry-period`` (2).

Sharding (``--shard``, ``--shard-by key|namespace``, ``--shard-group NAME``; off by default,
and exclusive with ``--leader-elect``: exit 2): every replica runs its informers and
reconciles its share of each controller's keys, assigned by rendezvous hashing over the
live members of the group. Each replica holds a Lease of its own in
``--shard-lease-namespace`` (default as ``--leader-election-namespace``), labelled with
the group (default: the controllers' names joined with ``-``); keys move between replicas
only through the handoff protocol (the Sharding guide), so no key is reconciled by two
replicas at once. A replica whose Lease is not renewed within ``--shard-renew-deadline``
stops its controllers and exits 10; SIGINT/SIGTERM stops the controllers, then releases
the Lease, so the others take its keys at once. Timings as for leader election:
``--shard-lease-duration`` (15), ``--shard-renew-deadline`` (10),
``--shard-retry-period`` (2). ``/readyz`` includes ``sharding`` (false until the replica
has a view of the members). ``--shard-by namespace`` hashes namespaces instead of keys:
each replica runs the informers of its own namespaces only (started and stopped as the
members change; ``--namespace`` limits which are distributed), see the Sharding guide.

Webhooks (:mod:`informer.webhook`): a target module's webhook objects are served, and
registered ones (entry-point group ``kube_informer.webhooks``) when named by
``--webhooks a,b``, over HTTPS on ``--webhook-bind-address`` (default ``:9443``, as
controller-runtime; ``0`` disables) with the certificate in ``--webhook-cert-dir``
(``tls.crt``/``tls.key``, re-read when they change; without them the runner exits 4).
Every replica serves them: neither leader election nor sharding gates webhooks.
``/readyz`` includes ``webhooks``. A runner may serve webhooks only (targets defining no
controller).

``--watch-list`` (off by default; client-go 1.35+ defaults to it): caches sync from a
watch-list stream instead of a list, servers without watch-list being detected and listed
instead. On kube-apiserver 1.36 a list from the watch cache synced 1.4-2x faster and cost
the server a quarter to a half of the CPU of a watch-list (the Benchmarks page, "The
watch-list default"), hence the default. Either way the runner's transform (it strips
``metadata.managedFields``) runs on each object as it arrives (a list's items as each is
decoded), so the stripped parts never accumulate (the Benchmarks page, "Round 2 memory": 5.7
to 5.9 KB per cached Deployment, 11.5 before). ``--share-strings`` (off by default) also
holds each distinct string value of the cached objects once per process
(:func:`informer.share_strings`): 4.1-4.2 KB per Deployment, for about one more JSON
decode of CPU per object received.

``--gc-freeze`` (on by default; ``--no-gc-freeze`` turns it off): the cyclic GC is
collected once and disabled before the initial sync, then ``gc.freeze()`` (the cache moves
to the permanent generation, never scanned again) and higher thresholds
(:data:`GC_THRESHOLDS`) keep the steady state fast with a large cache. Cached objects are
acyclic JSON dicts, freed by reference counting when they leave the cache, so freezing
them leaks nothing (the Benchmarks page: 100k ConfigMaps synced by a list 2.4x faster; watch
throughput on a synced cache unchanged). There is no collection right before the freeze:
it would traverse the whole cache with the event loop blocked (0.11 s of CPU at 50k
ConfigMaps, 0.28 s at 200k); the few cyclic objects that became garbage during the
sync stay frozen instead (``GcState`` in ``informer/_manager/startup.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import Final, NoReturn

import anyio
import structlog

from .._cache.strings import share_strings
from .._cache.transforms import strip_managed_fields
from .._controller.controller import Controller
from .._leaderelection.config import LeaderElectionConfig, default_identity
from .._manager.manager import Manager
from .._manager.startup import GC_THRESHOLDS
from .._meta.types import Obj
from .._sharding.config import ShardingConfig, default_group
from .._webhook.base import Webhook
from .cli import DEFAULT_LEADER_ELECTION_ID, TIMING_FLAGS, build_parser, timing_flag
from .exit_codes import EXIT_CODES, ExitCode, UsageError, exit_code
from .logconfig import configure_logging, default_log_format
from .targets import (
    ENTRY_POINT_GROUP,
    load_registered_webhooks,
    load_target_objects,
    registered_controllers,
    select_controllers,
    select_webhooks,
)
from .user_errors import user_code_error

__all__ = [
    "DEFAULT_LEADER_ELECTION_ID",
    "EXIT_CODES",
    "GC_THRESHOLDS",
    "SERVICE_ACCOUNT_NAMESPACE_FILE",
    "SHUTDOWN_GRACE",
    "ExitCode",
    "UsageError",
    "build_parser",
    "exit_code",
    "main",
]

log = structlog.get_logger("informer.run")  # not "__main__" under -m

SHUTDOWN_GRACE: Final = 3.0
"""Seconds in-flight reconciles get to finish after a signal (the whole stop stays < 5 s)."""

SERVICE_ACCOUNT_NAMESPACE_FILE: Final = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""The Pod's namespace: the default ``--leader-election-namespace`` inside a cluster."""


def _one_line(exc: BaseException) -> str:
    """The error's message on one line, with the Manager's parameters named as flags."""
    return " ".join(str(exc).split()).replace("startup_timeout=", "--startup-timeout ")


# ------------------------------------------------ flags -> Manager (parser: _runtime/cli.py)


def _controller_classes(args: argparse.Namespace) -> list[type[Controller]]:
    return _to_run(args)[0]


def _to_run(args: argparse.Namespace) -> tuple[list[type[Controller]], list[Webhook]]:
    """The controllers and webhooks to run: the targets' (controller classes and webhook
    objects), then the registered controllers named by ``--controllers`` or, with
    neither targets nor names, every registered one that is not opt-in, and the
    registered webhooks named by ``--webhooks``. Only those are imported."""
    chosen: list[type[Controller]] = []
    hooks: list[Webhook] = []
    for target in args.targets:
        loaded = load_target_objects(target)
        chosen.extend(cls for cls in loaded.controllers if cls not in chosen)
        hooks.extend(h for h in loaded.webhooks if all(h is not k for k in hooks))
    names = [n.strip() for n in (args.controllers or "").split(",") if n.strip()]
    hook_names = [n.strip() for n in (args.webhooks or "").split(",") if n.strip()]
    if names or not args.targets:
        registered = registered_controllers()
        if names:
            picked = select_controllers(registered, names)
        else:
            picked = [r for r in registered.values() if not r.opt_in]
            if not picked and not hook_names:
                raise UsageError(_nothing_to_run([r.name for r in registered.values()]))
        for registration in picked:
            cls = registration.load()
            if cls not in chosen:
                chosen.append(cls)
    if hook_names:
        for hook in select_webhooks(load_registered_webhooks(), hook_names):
            if all(hook is not k for k in hooks):
                hooks.append(hook)
    return chosen, hooks


def _nothing_to_run(opt_in: Sequence[str]) -> str:
    """The one line of a target-less run with no controller to run by default."""
    hint = (
        f"; installed but run only when named: --controllers {','.join(opt_in)}"
        if opt_in
        else f" (none is registered under {ENTRY_POINT_GROUP!r}, e.g. by "
        "`pip install kube-informer-samples`)"
    )
    return (
        "no controller to run: name yours as TARGETs (module:Class, module or "
        f"path/to/file.py), or registered ones with --controllers NAME,...{hint}"
    )


def _election_options(args: argparse.Namespace) -> LeaderElectionConfig | None:
    """The ``--leader-elect`` settings, or None; a bad timing combination is a usage error."""
    try:
        config = LeaderElectionConfig(
            name=args.leader_election_id,
            namespace=args.leader_election_namespace or _default_election_namespace(),
            identity=default_identity(),
            **_timings(args, "leader-election"),
        )
    except ValueError as exc:
        raise _timing_error(exc, "leader-election") from exc
    return config if args.leader_elect else None


def _sharding_options(
    args: argparse.Namespace, classes: Sequence[type[Controller]]
) -> ShardingConfig | None:
    """The sharding settings, or None; with ``--leader-elect`` or bad timings a usage error."""
    if not (args.shard or args.shard_by or args.shard_group):
        return None
    if args.leader_elect:
        raise UsageError(
            "--leader-elect and sharding (--shard, --shard-by, --shard-group) exclude each "
            "other: leader election runs every key on one replica, sharding splits the keys "
            "over every replica; pass one of them"
        )
    try:
        return ShardingConfig(
            group=args.shard_group or default_group(cls.name for cls in classes),
            namespace=args.shard_lease_namespace or _default_election_namespace(),
            identity=default_identity(),
            shard_by=args.shard_by or "key",
            **_timings(args, "shard"),
        )
    except ValueError as exc:
        raise _timing_error(exc, "shard") from exc


def _timings(args: argparse.Namespace, prefix: str) -> dict[str, float]:
    """The :class:`LeaseTimings` fields the flags of ``prefix`` set."""
    dest = prefix.replace("-", "_")
    return {field: getattr(args, f"{dest}_{field}") for field in TIMING_FLAGS}


def _timing_error(exc: ValueError, prefix: str) -> UsageError:
    """``exc`` (a config's validation) with the timing fields named as ``prefix``'s flags."""
    message = str(exc)
    for field in TIMING_FLAGS:
        message = message.replace(field, timing_flag(prefix, field))
    return UsageError(message)


def _default_election_namespace() -> str:
    """The Pod's namespace (service account mount), else ``default``."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE_FILE) as f:
            namespace = f.read().strip()
    except OSError:
        return "default"
    return namespace or "default"


def strip_and_share(obj: Obj) -> Obj:
    """``--share-strings``: the runner's transform, then :func:`informer.share_strings`."""
    return share_strings(strip_managed_fields(obj))


def _manager(
    args: argparse.Namespace,
    classes: Sequence[type[Controller]],
    election: LeaderElectionConfig | None,
    sharding: ShardingConfig | None = None,
    webhooks: Sequence[Webhook] = (),
) -> Manager:
    manager = Manager(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespaces=[ns for group in args.namespace for ns in group],
        leader_election=election,
        sharding=sharding,
        metrics_bind_address=args.metrics_bind_address,
        metrics_secure=args.metrics_secure,
        metrics_cert_dir=args.metrics_cert_dir,
        health_probe_bind_address=args.health_probe_bind_address,
        webhook_bind_address=args.webhook_bind_address,
        webhook_cert_dir=args.webhook_cert_dir,
        gc_freeze=args.gc_freeze,
        watch_list=args.watch_list,
        transform=strip_and_share if args.share_strings else strip_managed_fields,
        startup_timeout=args.startup_timeout,
        workers=args.workers,
        shutdown_grace=SHUTDOWN_GRACE,
    )
    for cls in classes:
        manager.add(cls)
    for webhook in webhooks:
        manager.add_webhook(webhook)
    return manager


# ------------------------------------------------------------------------------ running


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


async def _main_async(manager: Manager) -> ExitCode:
    failure: Exception | None = None
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            work = anyio.CancelScope()
            watcher = _Signals(work)
            tg.start_soon(watcher.watch, signals)
            try:
                with work:
                    await _serve(manager)
            except Exception as exc:
                failure = exc  # raised below, outside the task group: not wrapped in a group
            finally:
                tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if watcher.received is not None:
        log.info("runner.stopped", signal=watcher.received)
    return ExitCode.OK


async def _serve(manager: Manager) -> None:
    async with manager:
        log.info(
            "runner.started",
            controllers=[c.name for c in manager.controllers],
            objects=sum(len(i.indexer) for i in manager.informers),
            webhooks=[w.path for w in manager.webhooks],
            webhook_port=manager.webhook_server.port if manager.webhook_server else None,
        )
        await anyio.sleep_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m informer.run``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_format or default_log_format(sys.stderr), args.log_level)
    classes: list[type[Controller]] = []
    try:
        classes, webhooks = _to_run(args)
        election = _election_options(args)
        sharding = _sharding_options(args, classes)
        manager = _manager(args, classes, election, sharding, webhooks)
        return int(anyio.run(_main_async, manager))
    except KeyboardInterrupt:
        return int(ExitCode.FORCED)
    except BaseException as exc:
        code = exit_code(exc)
        if code is None:
            if isinstance(exc, SystemExit):
                raise
            return _unexpected(exc, classes, debug=args.log_level == "debug")
        message = _one_line(exc)
        log.debug("runner.failed", code=int(code), error=message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        return int(code)


def _unexpected(exc: BaseException, classes: Sequence[type[Controller]], *, debug: bool) -> int:
    """An exception no table entry maps: one line and exit 3 when a controller's own
    ``__init__`` or ``setup`` raised it (the traceback only with ``--log-level debug``),
    else a bug: the traceback and exit 1."""
    user = user_code_error(exc, classes)
    if user is None:
        traceback.print_exception(exc)
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return int(ExitCode.INTERNAL)
    if debug:
        traceback.print_exception(user.error)
        hint = ""
    else:
        hint = " (--log-level debug shows the traceback)"
    print(f"error: {user}{hint}", file=sys.stderr, flush=True)
    return int(ExitCode.TARGET)
