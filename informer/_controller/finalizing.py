"""Declarative finalizers: a controller names a finalizer and implements ``finalize``;
the framework adds, runs and removes it (controller-runtime's ``pkg/finalizer``, kopf's
``@kopf.on.delete``).

::

    class Websites(Controller):
        finalizer = "example.com/registry-entry"

        async def finalize(self, website: Obj) -> None:
            ...  # clean up what lives outside the object's namespace

:class:`Finalizing` stands between the workers and the controller's ``reconcile`` (an
adapter: the workers call it as they would the controller). For each key of the primary
resource (the first ``watch`` without a mapper), with the object as the primary
informer's cache holds it:

============================================ ===========================================
the object                                   what happens
============================================ ===========================================
absent (deleted and gone)                    ``reconcile(key)``, as without a finalizer
live, without the finalizer                  the finalizer is added (a merge patch at
                                             the object's resourceVersion), the cache
                                             waited for until it shows it, then
                                             ``reconcile(key)``: a reconcile never sees
                                             a live object without it
live, with the finalizer                     ``reconcile(key)``
being deleted, with the finalizer            ``finalize(obj)`` (a copy), **not**
                                             ``reconcile``; once it returns, the
                                             finalizer is removed, and the server
                                             deletes the object when no other is left
being deleted, without it                    nothing (it is done, or never was ours)
============================================ ===========================================

``finalize`` raising is a reconcile raising: the key is retried after the rate limiter's
backoff (up to ``max_retries`` in a row, like any failure; a ``Conflict`` is a routine
requeue), and the object stays until it returns. It must be idempotent: it runs again
when the finalizer could not be removed afterwards (the object changed meanwhile twice).
Writes go through the controller's client, so they are the controller's field manager's.
The primary watch's selectors must keep matching an object until it is gone: one that
leaves the primary cache with the finalizer on is no longer seen, and keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

import structlog

from .._client.cache_reads import deep_copy
from .._client.client import Client
from .._client.wait import wait_cached
from .._exceptions import Conflict, NotFound
from .._meta.finalizers import has_finalizer, is_being_deleted
from .._meta.resource import Resource
from .._meta.types import Obj
from .options import ControllerOptions
from .reconcile import Result
from .worker import KeyGate

if TYPE_CHECKING:
    from .._cache.informer import SharedIndexInformer

__all__ = ["CACHE_WAIT", "Finalizing", "FinalizingController"]

log = structlog.get_logger(__name__)

CACHE_WAIT: Final = 30.0
"""Seconds to wait for the cache to show a finalizer just added (then a retry)."""


class FinalizingController(Protocol):
    """What :class:`Finalizing` uses of its controller."""

    client: Client

    @property
    def finalizer(self) -> str: ...

    @property
    def key_gate(self) -> KeyGate | None: ...

    @property
    def options(self) -> ControllerOptions: ...

    @property
    def primary_resource(self) -> Resource | None: ...

    def primary_informer(self) -> SharedIndexInformer: ...

    async def reconcile(self, key: str) -> Result | None: ...

    async def finalize(self, obj: Obj) -> None: ...


class Finalizing:
    """The workers' reconciler for a controller with a finalizer (module docstring)."""

    def __init__(self, controller: FinalizingController) -> None:
        self.controller = controller

    @property
    def key_gate(self) -> KeyGate | None:
        return self.controller.key_gate

    @property
    def options(self) -> ControllerOptions:
        return self.controller.options

    async def reconcile(self, key: str) -> Result | None:
        controller = self.controller
        name = controller.finalizer
        informer = controller.primary_informer()
        obj = informer.indexer.get_by_key(key)
        if obj is None:
            return await controller.reconcile(key)
        if is_being_deleted(obj):
            if has_finalizer(obj, name):
                await controller.finalize(deep_copy(obj))
                await self._remove(obj)
                log.info("finalizer.removed", finalizer=name)
            return None
        if not has_finalizer(obj, name):
            client = controller.client
            added = await client.add_finalizer(obj, name, resource=controller.primary_resource)
            await wait_cached(
                client,
                added,
                timeout=CACHE_WAIT,
                resource=controller.primary_resource,
                informer=informer,
            )
            log.info("finalizer.added", finalizer=name)
        return await controller.reconcile(key)

    async def _remove(self, obj: Obj) -> None:
        """Remove the finalizer at the cached object's resourceVersion; on a ``Conflict``
        (the cache was behind), once more at the current one."""
        client, name = self.controller.client, self.controller.finalizer
        resource = self.controller.primary_resource
        try:
            await client.remove_finalizer(obj, name, resource=resource, missing_ok=True)
            return
        except Conflict:
            pass
        res = await client.resource_for(obj, resource)
        meta = obj.get("metadata") or {}
        try:
            current = await client.get(
                res, meta.get("name", ""), namespace=meta.get("namespace"), cached=False
            )
        except NotFound:
            return
        if (current.get("metadata") or {}).get("uid") != meta.get("uid"):
            return  # deleted and created again: not the object we finalized
        await client.remove_finalizer(current, name, resource=res, missing_ok=True)
