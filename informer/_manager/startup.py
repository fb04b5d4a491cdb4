"""The Manager's startup checks and error boundary (helpers of :mod:`.manager`).

Each check turns what went wrong into **one** typed error from
:mod:`informer._exceptions` whose message says what failed and where:

- :func:`connect`: the ApiClient from the kubeconfig: :class:`ConfigError`;
- :func:`check_server`: ``GET /version`` until the server answers, retrying connection
  failures (and 5xx/429) until the deadline, but not a refused connection (at once):
  :class:`ConnectionFailed` naming the address, :class:`Unauthorized`, or the
  :class:`ApiError` of another answer;
- :func:`preflight` / :func:`preflight_lease`: one ``list`` (``limit=1``) per informer and
  one ``get`` of the Lease, so that a missing RBAC rule fails at once
  (:class:`Forbidden` names the verb, resource and namespace; :class:`NotFound` a
  resource the server does not serve);
- :func:`wait_synced`: every controller synced and every reflector watching, aborting on
  a 401/403 a reflector reported (:class:`WatchErrors`), else :class:`CacheSyncTimeout`
  at the deadline (or the connection/API error that kept the caches from syncing).

Messages name the budget as ``startup_timeout=30s`` (the Manager's parameter).

:func:`collapse` is the error boundary: task groups wrap errors in (nested) exception
groups, one level per group; the Manager raises the first :class:`InformerError` inside
(:func:`raise_collapsed`, which logs the bugs it hides), found by one depth-first walk
that visits each node once (linear in the size of the tree, whatever the nesting depth).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from typing import Final, NoReturn, TypeVar

import anyio
import structlog

from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._exceptions import (
    ApiError,
    CacheSyncTimeout,
    ConfigError,
    ConnectionFailed,
    Forbidden,
    InformerError,
    NotFound,
    Unauthorized,
)
from .._meta.resource import LEASES
from .._rest.api_client import ApiClient, new_api_client
from .._rest.request import request_json

__all__ = [
    "GC_THRESHOLDS",
    "GcState",
    "WatchErrors",
    "check_server",
    "collapse",
    "connect",
    "leaf_errors",
    "preflight",
    "preflight_lease",
    "raise_collapsed",
    "restated",
    "wait_synced",
]

log = structlog.get_logger(__name__)

GC_THRESHOLDS: Final = (50_000, 50, 100)
"""``gc.set_threshold`` after the initial sync with ``gc_freeze``."""

POLL: Final = 0.05
"""Seconds between checks of the sync state (it is spread over many objects)."""

E = TypeVar("E", bound=ApiError)


# --------------------------------------------------------------------------- error boundary


def leaf_errors(exc: BaseException) -> Iterator[BaseException]:
    """The non-group exceptions inside ``exc``, depth first, each node visited once."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, BaseExceptionGroup):
            stack.extend(reversed(node.exceptions))
        else:
            yield node


def collapse(exc: BaseException) -> BaseException:
    """The one error to raise for ``exc``: the first :class:`InformerError` inside it (depth
    first), else its only leaf, else ``exc`` itself. Linear in the size of the group tree."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    only: BaseException | None = None
    count = 0
    for leaf in leaf_errors(exc):
        if isinstance(leaf, InformerError):
            return leaf
        count += 1
        only = leaf
    return only if count == 1 and only is not None else exc


def raise_collapsed(exc: BaseException) -> NoReturn:
    """Raise the collapsed ``exc``; log the other errors it would hide (bugs)."""
    error = collapse(exc)
    if error is not exc:
        for other in leaf_errors(exc):
            if other is not error and not isinstance(other, InformerError):
                log.error("manager.error_suppressed", error=repr(other), exc_info=other)
        error.__suppress_context__ = True  # the groups say nothing more
    raise error


def restated(exc: E, message: str) -> E:
    """A copy of ``exc`` (same type and fields) with ``message``; chain it ``from exc``."""
    cls = type(exc)
    copy = cls.__new__(cls)
    copy.__dict__.update(exc.__dict__)
    copy.args = (message,)
    copy.message = message
    return copy


def unauthorized(exc: Unauthorized, address: str) -> Unauthorized:
    return restated(
        exc, f"unauthorized (401): the API server at {address} rejected the credentials: {exc}"
    )


def startup_api_error(exc: ApiError, what: str | None, address: str) -> ApiError:
    """The error to raise (a new one, chain it ``from exc``) for a failed startup request
    about ``what`` (an informer)."""
    if isinstance(exc, Forbidden):  # its message names the verb, the resource and the namespace
        return restated(exc, str(exc))
    if isinstance(exc, Unauthorized):
        return unauthorized(exc, address)
    subject = what or "a watched resource"
    if isinstance(exc, NotFound):
        hint = ""
        if what and "." in what.partition("@")[0].partition("{")[0]:  # plural.group: an API group
            hint = " (a custom resource? install its CustomResourceDefinition first)"
        return restated(
            exc, f"the API server at {address} does not serve {subject} (404){hint}: {exc}"
        )
    return restated(exc, f"{subject}: {exc}")


# ------------------------------------------------------------------------------- checks


async def connect(*, kubeconfig: str | None, context: str | None) -> ApiClient:
    """A new ApiClient from ``kubeconfig`` (default ``$KUBECONFIG``, ``~/.kube/config``,
    or in-cluster) and ``context``: :class:`ConfigError` when that configuration is
    missing or invalid (a parse error included)."""
    try:
        return await new_api_client(kubeconfig=kubeconfig, context=context)
    except ConfigError:
        raise
    except Exception as exc:
        # A parse error new_api_client does not translate (e.g. malformed YAML).
        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ConfigError(f"kubeconfig {path!r} is invalid: {type(exc).__name__}: {exc}") from exc


async def check_server(
    api: ApiClient, address: str, deadline: float, startup_timeout: float
) -> None:
    """``GET /version`` until it answers; retry connection failures until ``deadline``."""
    delay = 0.1
    last: str = "no answer"
    while True:
        remaining = deadline - anyio.current_time()
        if remaining <= 0:
            raise ConnectionFailed(
                f"cannot reach the API server at {address} within "
                f"startup_timeout={startup_timeout:g}s: {last}",
                address=address,
            )
        try:
            with anyio.fail_after(remaining):
                version = await request_json(api, "GET", "/version", read_timeout=remaining)
        except TimeoutError:
            last = "timed out"
            continue
        except ConnectionFailed as exc:
            if exc.refused:  # nothing listens there: waiting would only delay the answer
                raise
            last = str(exc).removeprefix(f"cannot reach the API server at {address}: ")
        except Unauthorized as exc:
            raise unauthorized(exc, address) from exc
        except ApiError as exc:
            last = f"GET /version answered {exc.status}: {exc}"
            if exc.status < 500 and exc.status != 429:
                raise restated(exc, f"{address}: {last}") from exc
        else:
            log.info("manager.connected", server=address, version=version.get("gitVersion"))
            return
        log.debug("manager.unreachable", server=address, error=last)
        await anyio.sleep(min(delay, max(0.0, deadline - anyio.current_time())))
        delay = min(delay * 2, 2.0)


async def preflight(
    informers: Sequence[SharedIndexInformer], deadline: float, address: str
) -> None:
    """List each resource once (``limit=1``): fail fast on 401/403/404.

    Connection failures and other errors are left to the reflectors (retried until the
    startup deadline).
    """
    failures: list[tuple[ApiError, str]] = []

    async def probe(informer: SharedIndexInformer) -> None:
        try:
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await informer.lister_watcher.list(limit=1)
        except (Unauthorized, Forbidden, NotFound) as exc:
            failures.append((exc, informer.name))
        except InformerError as exc:
            log.debug("manager.preflight_failed", informer=informer.name, error=str(exc))

    async with anyio.create_task_group() as tg:
        for informer in informers:
            tg.start_soon(probe, informer)
    if failures:
        exc, name = failures[0]
        raise startup_api_error(exc, name, address) from exc


async def preflight_lease(
    api: ApiClient, *, name: str, namespace: str, deadline: float, address: str
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
                LEASES.path(name, namespace=namespace),
                resource=LEASES.group_resource,
                namespace=namespace,
            )
    except NotFound:
        pass
    except (Unauthorized, Forbidden) as exc:
        raise startup_api_error(exc, None, address) from exc
    except InformerError as exc:
        log.debug("manager.preflight_failed", lease=f"{namespace}/{name}", error=str(exc))


class WatchErrors:
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


async def wait_synced(
    controllers: Sequence[Controller],
    informers: Sequence[SharedIndexInformer],
    errors: WatchErrors,
    *,
    deadline: float,
    budget: str,
    address: str,
) -> None:
    """Wait until every controller synced and every reflector opened its first watch.

    A 401 or 403 reported by a reflector before that aborts (a watch forbidden while the
    list is allowed is caught here too); so does ``deadline``, with an error whose
    message says the caches did not sync within ``budget`` (e.g. ``startup_timeout=30s``).
    """
    watching: set[int] = set()

    def started() -> bool:
        for informer in informers:
            if id(informer) not in watching and informer.reflector.is_watching:
                watching.add(id(informer))
        return len(watching) == len(informers) and all(c.has_synced() for c in controllers)

    while not started():
        if errors.fatal is not None:
            raise startup_api_error(errors.fatal, None, address) from errors.fatal
        if anyio.current_time() >= deadline:
            pending = [i for i in informers if id(i) not in watching]
            raise _sync_timeout(pending, errors, budget)
        await anyio.sleep(POLL)


def _sync_timeout(
    pending: Sequence[SharedIndexInformer], errors: WatchErrors, budget: str
) -> InformerError:
    names = ", ".join(i.name for i in pending) or "controller handlers"
    error = errors.last
    if isinstance(error, ConnectionFailed):
        return ConnectionFailed(
            f"{error} (caches not synced within {budget})", address=error.address
        )
    if isinstance(error, ApiError):
        return restated(error, f"caches not synced within {budget} ({names}): {error}")
    return CacheSyncTimeout(
        f"caches not synced within {budget}: {names}", pending=tuple(i.name for i in pending)
    )


# ------------------------------------------------------------------------------------ GC


class _SharedGc:
    """What every :class:`GcState` of the process shares: the GC is one per process, and
    several Managers may run at once (tests, sharded replicas in one process)."""

    holders = 0
    """GcStates between :meth:`GcState.disable` and :meth:`GcState.restore`."""
    syncing = 0
    """GcStates between :meth:`GcState.disable` and :meth:`GcState.freeze`."""
    frozen = False
    enabled = True
    thresholds: tuple[int, int, int] = (700, 10, 10)


class GcState:
    """The cyclic GC around the initial sync (``gc_freeze``, the Manager's and the
    runner's default): off while the caches fill, then frozen (the cache moves to the
    permanent generation) with the thresholds raised to :data:`GC_THRESHOLDS`.
    :meth:`restore` puts back what it found.

    Why: every full collection of CPython walks every tracked object, the cached dicts
    included. With the GC on, the collections triggered while a list of 100,000
    ConfigMaps is decoded make up most of the sync's time and block the event loop for
    up to ~200-600 ms each; after the sync, each full collection walks the whole cache
    again. Frozen objects are never traversed; the cache itself is acyclic and freed by
    reference counting as objects are replaced.

    :meth:`freeze` does not collect first: with the GC off during the sync, everything
    the sync allocated is in the youngest generation, so any collection then (even
    ``gc.collect(0)``) traverses the whole cache with the event loop blocked, while health
    probes and lease renewals wait: 0.11 s of CPU at 50k ConfigMaps, 0.28 s at 200k
    (bench/RESULTS.md, "Scaling curve"). ``gc.freeze()`` alone is O(1). What
    it keeps is the cyclic garbage made during the sync, which the collection would have
    freed: 9 objects in the benchmark's informer at any size (cached objects are acyclic
    dicts, freed by reference counting); :meth:`disable` collects once before the sync so
    that nothing older is kept with it.

    Several GcStates may overlap (one per Manager): the state found by the first is the
    one the last restores; the GC stays off while any of them is syncing, and the
    collection before a sync runs only when none is (it would walk the others' caches).
    A program that keeps the GC disabled keeps it so: :meth:`freeze` re-enables it only
    when it was enabled. Each method is idempotent and they run in order (``restore``
    also after a failed startup, from any point).
    """

    def __init__(self) -> None:
        self._phase = "new"  # -> syncing -> frozen -> restored

    def disable(self) -> None:
        if self._phase != "new":
            return
        self._phase = "syncing"
        shared = _SharedGc
        if not shared.holders:
            shared.enabled, shared.thresholds = gc.isenabled(), gc.get_threshold()
        shared.holders += 1
        shared.syncing += 1
        if shared.syncing == 1:
            gc.collect()  # before the caches exist: cheap, and the freeze keeps no older garbage
        gc.disable()

    def freeze(self) -> None:
        if self._phase != "syncing":
            return
        self._phase = "frozen"
        shared = _SharedGc
        shared.syncing -= 1
        gc.freeze()
        shared.frozen = True
        gc.set_threshold(*GC_THRESHOLDS)
        if not shared.syncing and shared.enabled:
            gc.enable()
        log.info("manager.gc_frozen", frozen=gc.get_freeze_count(), thresholds=GC_THRESHOLDS)

    def restore(self) -> None:
        if self._phase in ("new", "restored"):
            return
        shared = _SharedGc
        if self._phase == "syncing":
            shared.syncing -= 1
            if not shared.syncing and shared.enabled:
                gc.enable()
        self._phase = "restored"
        shared.holders -= 1
        if shared.holders:
            return
        if shared.frozen:
            gc.unfreeze()
            shared.frozen = False
        gc.set_threshold(*shared.thresholds)
        if shared.enabled:
            gc.enable()
        else:
            gc.disable()
