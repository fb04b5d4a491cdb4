"""``wait_cached``: read-your-writes on the informer cache.

A reconcile that wrote an object and reads it back from the cache right away may see
the state from before its write (the watch event is still on its way) and act on it
twice. ``wait_cached(obj)`` returns once the informer of the client's factory that
covers ``obj``'s resource and namespace reflects the write that returned ``obj``:

- the cache holds the object at ``obj``'s ``metadata.resourceVersion`` or newer
  (returns a copy of the cached object); or
- the informer has seen it deleted (returns ``None``): it has received events up to that
  resourceVersion or later (its reflector's resourceVersion) with nothing left to apply
  for that key (``SharedIndexInformer.has_queued``), and the key is not in the store.
- after this client deleted the object and the server removed it at once, ``obj`` may
  be the object as it was before the delete (a delete answer is often a bare
  ``Status``): the wait then ends once the store no longer holds that object (that
  uid), with nothing queued for the key. A delete that left the object in place
  (finalizers, a grace period) answers the object with a new resourceVersion: wait
  for that answer instead. The client keeps its recent deletes in a
  :class:`DeleteLedger` (the last 1024 it carried out at once).

Comparing resourceVersions: the API contract calls them opaque, but every Kubernetes
API server backed by etcd issues them from etcd's revision counter, a decimal integer
that grows with every write; "newer" is therefore decided by comparing them as
integers. When either is not an integer, only the exact resourceVersion counts.

The informer is never created or started here: the factory must already have one
covering that resource and namespace (without selectors). The wait polls the store
(every 5 ms at first, backing off to 100 ms), which costs a dict lookup per check.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import anyio

from .._meta.objects import name_of, namespace_of, resource_version, uid_of
from .._meta.resource import Resource
from .._meta.types import Obj
from .apiutil import namespace_for
from .cache_reads import deep_copy
from .protocol import Reader

if TYPE_CHECKING:
    from .._cache.informer import SharedIndexInformer

__all__ = ["DeleteLedger", "rv_at_least", "wait_cached"]

_FIRST_DELAY = 0.005
_MAX_DELAY = 0.1


class DeleteLedger:
    """The deletes a client sent that the server carried out at once, so that
    :func:`wait_cached` given the object as it was before the delete waits for the cache
    to drop it. The client records every delete answer (:meth:`record`); only the last
    ``capacity`` such deletes are kept, the oldest forgotten first. Used from one event
    loop.
    """

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: keep at least one delete")
        self.capacity: Final = capacity
        # (group_resource, namespace, name) -> the uid the delete answered, when it did
        self._deleted: OrderedDict[tuple[str, str | None, str], str | None] = OrderedDict()

    def record(self, resource: Resource, namespace: str | None, name: str, answer: Obj) -> None:
        """Note the server's ``answer`` to a delete of ``name``: kept when the delete is
        done (a ``Status``, or the object with neither finalizers nor a grace period
        left); an object still there has a new resourceVersion to wait for instead."""
        if answer.get("kind") == "Status":
            details = answer.get("details")
            uid = details.get("uid") if isinstance(details, Mapping) else None
        else:
            meta = answer.get("metadata", {})
            if meta.get("finalizers") or (meta.get("deletionGracePeriodSeconds") or 0) > 0:
                return
            uid = uid_of(answer)
        key = (resource.group_resource, namespace if resource.namespaced else None, name)
        self._deleted[key] = uid
        self._deleted.move_to_end(key)
        while len(self._deleted) > self.capacity:
            self._deleted.popitem(last=False)

    def deleted(self, resource: Resource, obj: Obj) -> tuple[bool, str | None]:
        """Whether a recorded delete removed ``obj`` (the uids must match when both are
        known), with the uid that delete answered."""
        ns = namespace_of(obj) if resource.namespaced else None
        key = (resource.group_resource, ns, name_of(obj))
        if key not in self._deleted:
            return False, None
        uid = self._deleted[key]
        mine = uid_of(obj)
        return (uid is None or mine is None or uid == mine), uid


def rv_at_least(rv: str | None, target: str) -> bool:
    """Whether resourceVersion ``rv`` is ``target`` or newer (integers compared as such;
    anything else only when equal)."""
    if not rv:
        return False
    if rv == target:
        return True
    try:
        return int(rv) >= int(target)
    except ValueError:
        return False


async def wait_cached(
    client: Reader,
    obj: Obj,
    *,
    timeout: float,  # noqa: ASYNC109 - Client.wait_cached's public signature
    resource: Resource | None = None,
    deletes: DeleteLedger | None = None,
    informer: SharedIndexInformer | None = None,
) -> Obj | None:
    """Wait until the cache reflects the write that returned ``obj`` (module docstring);
    a copy of the cached object, or ``None`` when the informer has seen it deleted.
    ``deletes`` is the ledger of the client's deletes (``obj`` may then be the object as
    it was before one of them). ``informer`` is the cache to wait on (default: the
    factory's informer without selectors covering the object); one with selectors must
    be one whose selectors the object matches.

    Raises ``ValueError`` when the client has no factory or no informer of it covers
    the object, or ``obj`` has no resourceVersion (and was not deleted by this client);
    ``TimeoutError`` naming what the cache holds after ``timeout`` seconds.
    """
    res = await client.resource_for(obj, resource)
    ns = namespace_for(res, obj)
    where = f"{res.group_resource} in namespace {ns!r}" if ns else res.group_resource
    if informer is None and client.factory is None:
        raise ValueError(
            "wait_cached needs the informers of a factory: build the client with "
            "Client(api_client, factory=...)"
        )
    if informer is None and client.factory is not None:
        informer = client.factory.find_informer(res, namespace=ns)
    if informer is None:
        raise ValueError(
            f"no informer of the client's factory caches {where} (without selectors): "
            "request one with factory.informer_for(...) first; wait_cached never starts one"
        )
    key = informer.key_func(obj)
    deleted, uid = (False, None) if deletes is None else deletes.deleted(res, obj)
    target = resource_version(obj) or ""
    if not deleted and not target:
        raise ValueError(
            f"{where} {key!r}: the object has no metadata.resourceVersion; pass the object "
            "a write returned"
        )
    delay = _FIRST_DELAY
    with anyio.move_on_after(timeout):
        while True:
            if deleted:
                done, cached = _dropped(informer, key, uid)
            else:
                done, cached = _reflects(informer, key, target)
            if done:
                return None if cached is None else deep_copy(cached)
            await anyio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
    held = informer.indexer.get_by_key(key)
    holds = "nothing" if held is None else f"resourceVersion {resource_version(held)}"
    wanted = "the object deleted" if deleted else f"resourceVersion >= {target}"
    raise TimeoutError(
        f"{where} {key!r}: the informer cache did not reflect {wanted} within {timeout}s "
        f"(it holds {holds}; informer at resourceVersion "
        f"{informer.last_sync_resource_version or '-'}, synced={informer.has_synced()})"
    )


def _reflects(informer: SharedIndexInformer, key: str, target: str) -> tuple[bool, Obj | None]:
    current = informer.indexer.get_by_key(key)
    if current is not None and rv_at_least(resource_version(current), target):
        return True, current
    if current is not None or not informer.has_synced() or informer.has_queued(key):
        return False, None
    return rv_at_least(informer.last_sync_resource_version, target), None


def _dropped(informer: SharedIndexInformer, key: str, uid: str | None) -> tuple[bool, Obj | None]:
    if not informer.has_synced() or informer.has_queued(key):
        return False, None
    current = informer.indexer.get_by_key(key)
    if current is None:
        return True, None
    if uid is not None and uid_of(current) != uid:
        return True, current  # a new object of that name: the deleted one is gone
    return False, None
