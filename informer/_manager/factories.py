"""The Manager's informer factories, and where each namespace's informers are kept.

A Manager has one :class:`~informer.SharedInformerFactory` per namespace (run modes may
differ: :meth:`~informer._manager.mode.RunMode.new_factories`), and controllers built on
them (one instance per namespace) must share informers: a watch in another namespace
(``Controller.watch(..., namespace=...)``) or of a cluster-scoped resource must come
from one place, not one per instance. Each factory is built with
:meth:`ManagerFactories.keeper` as its router (see ``informer._cache.factory``): the
informers of a namespace are kept by the Manager's factory of that namespace, else by its
all-namespaces factory, else by one more all-namespaces factory, :attr:`extra`, made
with the factories (so a lookup never makes one, and it runs from the start).

Used on the Manager's event loop only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
import anyio.abc

from .._cache.factory import SharedInformerFactory

__all__ = ["ManagerFactories", "run_factory"]


class ManagerFactories:
    """One factory per namespace (:meth:`set`), and the all-namespaces factory made by
    ``make_extra()`` when none of those is one."""

    def __init__(self, make_extra: Callable[[], SharedInformerFactory]) -> None:
        self.per_namespace: list[SharedInformerFactory] = []
        self.extra: SharedInformerFactory | None = None
        self._make_extra = make_extra

    def set(self, per_namespace: Sequence[SharedInformerFactory]) -> None:
        """Take the factories per namespace; make :attr:`extra` when none is for all."""
        self.per_namespace = list(per_namespace)
        if all(f.namespace is not None for f in self.per_namespace):
            self.extra = self._make_extra()

    def all(self) -> list[SharedInformerFactory]:
        """The factories per namespace, then the extra one."""
        return [*self.per_namespace, *([] if self.extra is None else [self.extra])]

    def keeper(self, namespace: str | None) -> SharedInformerFactory | None:
        """The factory keeping the informers of ``namespace`` (``None``: cluster-wide);
        ``None`` before :meth:`set` (the asking factory keeps them)."""
        for factory in self.per_namespace:
            if factory.namespace == namespace:
                return factory
        for factory in self.per_namespace:
            if factory.namespace is None:
                return factory
        return self.extra


async def run_factory(
    factory: SharedInformerFactory,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``factory`` (started once entered) until cancelled."""
    async with factory:
        task_status.started()
        await anyio.sleep_forever()
