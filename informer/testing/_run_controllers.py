"""``run_controllers``: controllers running in-process through a
:class:`~informer.Manager`, for the length of an ``async with`` block.

::

    async with run_controllers(api_client, ConfigMapMirror, namespace=namespace) as manager:
        mirror = manager.controllers[0]
        ...                                  # caches synced, workers running

It is ``Manager(api_client, namespaces=..., **options)`` with test-friendly defaults: no
metrics or health endpoints, a short ``shutdown_grace`` (1 s) and a 30 s
``startup_timeout``; the GC policy is the Manager's own default (``gc_freeze=True``, so a
test syncs as a program does; ``gc_freeze=False`` leaves the GC alone).
Each controller class runs once per namespace (``namespace=None``:
one instance for all namespaces); leaving the block stops them (in-flight reconciles
drained, their events flushed) without closing ``api_client``. An exception a reconcile
raises is logged and retried as in production, and fails the test at teardown through
the pytest plugin (``handler_failures`` to allow it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from .._controller.controller import Controller
from .._manager.manager import Manager

__all__ = ["run_controllers"]


@asynccontextmanager
async def run_controllers(
    api_client: Any,
    *controllers: type[Controller],
    namespace: str | Iterable[str] | None = None,
    shutdown_grace: float = 1.0,
    startup_timeout: float = 30.0,
    **manager_options: Any,
) -> AsyncIterator[Manager]:
    """Run ``controllers`` (classes) on ``api_client`` in ``namespace`` (a name, several,
    or ``None`` for all); yields the started Manager (``manager.controllers`` are the
    instances, ``manager.factory`` their informers). ``manager_options`` go to
    :class:`~informer.Manager` (``leader_election=``, ``workers=``...)."""
    if not controllers:
        raise ValueError("run_controllers needs at least one Controller class")
    for cls in controllers:
        if not (isinstance(cls, type) and issubclass(cls, Controller)):
            raise TypeError(
                f"run_controllers takes Controller classes (one instance per namespace is "
                f"built by the Manager), got {cls!r}"
            )
    namespaces = [namespace] if isinstance(namespace, str) else namespace
    manager = Manager(
        api_client,
        namespaces=namespaces,
        shutdown_grace=shutdown_grace,
        startup_timeout=startup_timeout,
        **manager_options,
    )
    for cls in controllers:
        manager.add(cls)
    async with manager:
        yield manager
