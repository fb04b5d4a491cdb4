"""Adding and removing finalizers without losing anyone's (controller-runtime's
``controllerutil.AddFinalizer`` / ``RemoveFinalizer`` followed by a patch with
``client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})``).

The patches and every check are :mod:`informer._meta.finalizers`' (one implementation):
this module only sends them. Before any request (discovery included), ``add_finalizer``
raises ``ValueError`` for a name the API server rejects, for an object being deleted
(the server forbids new finalizers then: run the cleanup instead), for 'orphan' beside
'foregroundDeletion', and either call for an object without ``metadata.resourceVersion``.

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

from typing import Literal, overload

from .._exceptions import NotFound
from .._meta.finalizers import add_finalizer_patch, remove_finalizer_patch
from .._meta.objects import name_of
from .._meta.resource import Resource
from .._meta.types import Obj
from .apiutil import namespace_for
from .protocol import Writer

__all__ = ["add_finalizer", "remove_finalizer"]


async def add_finalizer(
    client: Writer, obj: Obj, name: str, *, resource: Resource | None = None
) -> Obj:
    """Add ``name`` to ``obj``'s finalizers (at its resourceVersion); the server's object,
    or ``obj`` itself when it has the finalizer already. ``ValueError`` (module
    docstring) before any request when the server would refuse it."""
    patch = add_finalizer_patch(obj, name)
    if patch is None:
        return obj
    return await _send(client, obj, patch, resource)


@overload
async def remove_finalizer(
    client: Writer,
    obj: Obj,
    name: str,
    *,
    resource: Resource | None = ...,
    missing_ok: Literal[False] = ...,
) -> Obj: ...


@overload
async def remove_finalizer(
    client: Writer, obj: Obj, name: str, *, resource: Resource | None = ..., missing_ok: bool
) -> Obj | None: ...


async def remove_finalizer(
    client: Writer,
    obj: Obj,
    name: str,
    *,
    resource: Resource | None = None,
    missing_ok: bool = False,
) -> Obj | None:
    """Remove ``name`` from ``obj``'s finalizers (every occurrence, at its
    resourceVersion); the server's object, or ``obj`` itself when it does not have the
    finalizer. When the object no longer exists: ``None`` with ``missing_ok``, else
    :class:`~informer.NotFound`."""
    patch = remove_finalizer_patch(obj, name)
    if patch is None:
        return obj
    try:
        return await _send(client, obj, patch, resource)
    except NotFound:
        if missing_ok:
            return None
        raise


async def _send(client: Writer, obj: Obj, patch: Obj, resource: Resource | None) -> Obj:
    res = await client.resource_for(obj, resource)
    return await client.patch(
        res, name_of(obj), patch, namespace=namespace_for(res, obj), patch_type="merge"
    )
