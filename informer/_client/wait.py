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
  for that answer instead.

Comparing resourceVersions: the API contract calls them opaque, but every Kubernetes
API server backed by etcd issues them from etcd's revision counter, a decimal integer
that grows with every write; "newer" is therefore decided by comparing them as
integers. When either is not an integer, only the exact resourceVersion counts.

The informer is never created or started here: the factory must already have one
covering that resource and namespace (without selectors). The wait polls the store
(every 5 ms at first, backing off to 100 ms), which costs a dict lookup per check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._meta.objects import resource_version, uid_of
from .._meta.resource import Resource
from .._meta.types import Obj
from .cache_reads import deep_copy

if TYPE_CHECKING:
    from .._cache.informer import SharedIndexInformer
    from .client import Client

__all__ = ["rv_at_least", "wait_cached"]

_FIRST_DELAY = 0.005
_MAX_DELAY = 0.1


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
    client: Client,
    obj: Obj,
    *,
    timeout: float,  # noqa: ASYNC109 - the public signature (issue 11)
    resource: Resource | None = None,
) -> Obj | None:
    """Wait until the cache reflects the write that returned ``obj`` (module docstring);
    a copy of the cached object, or ``None`` when the informer has seen it deleted.

    Raises ``ValueError`` when the client has no factory or no informer of it covers
    the object, or ``obj`` has no resourceVersion (and was not deleted by this client);
    ``TimeoutError`` naming what the cache holds after ``timeout`` seconds.
    """
    res = await client.resource_for(obj, resource)
    ns = client.namespace_for(res, obj)
    where = f"{res.group_resource} in namespace {ns!r}" if ns else res.group_resource
    if client.factory is None:
        raise ValueError(
            "wait_cached needs the informers of a factory: build the client with "
            "Client(api_client, factory=...)"
        )
    informer = client.factory.find_informer(res, namespace=ns)
    if informer is None:
        raise ValueError(
            f"no informer of the client's factory caches {where} (without selectors): "
            "request one with factory.informer_for(...) first; wait_cached never starts one"
        )
    key = informer.key_func(obj)
    deleted, uid = client.was_deleted(res, obj)
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
