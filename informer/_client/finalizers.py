"""Adding and removing finalizers without losing anyone's (controller-runtime's
``controllerutil.AddFinalizer`` / ``RemoveFinalizer`` followed by a patch with
``client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})``).

Both are idempotent: a finalizer already present (absent) in the given object writes
nothing and returns that object. Otherwise the client sends a JSON merge patch with the
whole new ``metadata.finalizers`` list **and** the object's ``metadata.resourceVersion``:
the API server applies it only to that version of the object, so a concurrent change of
the object (another finalizer added, a spec edit, a status write) makes it answer
:class:`~informer.Conflict` instead of overwriting the list computed from a stale one. A
lost finalizer would let the object go before its cleanup ran; a ``Conflict`` only makes
the reconcile run again on the current object.

The given object is not modified; the server's object is returned. Removing the last
finalizer of an object being deleted lets the server delete it: the answer is its final
state.

``remove_finalizer(..., missing_ok=True)`` returns ``None`` when the object is gone
already (the server answers 404; as :meth:`~informer.Client.delete` with
``missing_ok``): a reconcile working from a cached copy of an object whose last
finalizer someone else removed has nothing left to do. Without it that is
:class:`~informer.NotFound`. An object deleted and created again under the same name is
not "missing": the patch's resourceVersion makes the server answer
:class:`~informer.Conflict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from .._exceptions import NotFound
from .._meta.objects import name_of, resource_version
from .._meta.resource import Resource
from .._meta.types import Obj

if TYPE_CHECKING:
    from .client import Client

__all__ = ["add_finalizer", "remove_finalizer"]


def _finalizers(obj: Obj) -> list[str]:
    return list(obj.get("metadata", {}).get("finalizers") or ())


async def add_finalizer(
    client: Client, obj: Obj, name: str, *, resource: Resource | None = None
) -> Obj:
    """Add ``name`` to ``obj``'s finalizers (at its resourceVersion); the server's object,
    or ``obj`` itself when it has the finalizer already."""
    current = _finalizers(obj)
    if name in current:
        return obj
    return await _patch(client, obj, [*current, name], resource)


@overload
async def remove_finalizer(
    client: Client,
    obj: Obj,
    name: str,
    *,
    resource: Resource | None = ...,
    missing_ok: Literal[False] = ...,
) -> Obj: ...


@overload
async def remove_finalizer(
    client: Client, obj: Obj, name: str, *, resource: Resource | None = ..., missing_ok: bool
) -> Obj | None: ...


async def remove_finalizer(
    client: Client,
    obj: Obj,
    name: str,
    *,
    resource: Resource | None = None,
    missing_ok: bool = False,
) -> Obj | None:
    """Remove ``name`` from ``obj``'s finalizers (at its resourceVersion); the server's
    object, or ``obj`` itself when it does not have the finalizer. When the object no
    longer exists: ``None`` with ``missing_ok``, else :class:`~informer.NotFound`."""
    current = _finalizers(obj)
    if name not in current:
        return obj
    try:
        return await _patch(client, obj, [f for f in current if f != name], resource)
    except NotFound:
        if missing_ok:
            return None
        raise


async def _patch(client: Client, obj: Obj, finalizers: list[str], resource: Resource | None) -> Obj:
    rv = resource_version(obj)
    if not rv:
        raise ValueError(
            f"{obj.get('kind', 'object')} {obj.get('metadata', {}).get('name')!r} has no "
            "metadata.resourceVersion: finalizers are changed at a known version only; "
            "pass an object read from the cluster"
        )
    res = await client.resource_for(obj, resource)
    patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": rv}}
    return await client.patch(
        res, name_of(obj), patch, namespace=client.namespace_for(res, obj), patch_type="merge"
    )
