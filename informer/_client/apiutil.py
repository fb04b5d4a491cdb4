"""Where an object dict goes: its resource and its namespace (controller-runtime's
``client/apiutil``: ``GVKForObject``, ``IsObjectNamespaced``), and the ``apiVersion`` and
``kind`` of listed objects.

Shared by the :class:`~informer.Client` and the operations built on it. Nothing here
mutates its arguments but :func:`listed_items`, which completes the items of a List
answer in place (the answer is the caller's, fresh from the server); the only request
is :func:`resource_for`'s discovery lookup.
"""

from __future__ import annotations

from .._meta.objects import namespace_of
from .._meta.resource import Resource
from .._meta.types import Obj
from .discovery import Discovery

__all__ = ["check_namespace", "listed_items", "namespace_for", "resource_for"]


async def resource_for(
    discovery: Discovery, obj: Obj, resource: Resource | None = None
) -> Resource:
    """The resource of ``obj``: ``resource`` when given, else ``discovery``'s answer for
    its ``apiVersion``/``kind`` (``ValueError`` when either is missing,
    :class:`~informer.ResourceNotServed` when the server does not serve them)."""
    if resource is not None:
        return resource
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str):
        raise ValueError(
            f"cannot tell the resource of an object without apiVersion and kind "
            f"(apiVersion={api_version!r}, kind={kind!r}, "
            f"name={obj.get('metadata', {}).get('name')!r}): set both, or pass resource="
        )
    return await discovery.resource_for(api_version, kind)


def namespace_for(resource: Resource, obj: Obj) -> str | None:
    """``metadata.namespace`` of ``obj`` for a namespaced resource (``ValueError`` when
    absent), ``None`` for a cluster-scoped one."""
    if not resource.namespaced:
        return None
    ns = namespace_of(obj)
    if ns is None:
        meta = obj.get("metadata", {})
        name = meta.get("name") or meta.get("generateName")
        raise ValueError(
            f"{resource.kind or resource.group_resource} {name!r} is namespaced "
            f"({resource.group_resource}) but has no metadata.namespace: set it"
        )
    return ns


def check_namespace(resource: Resource, namespace: str | None, verb: str) -> None:
    """``ValueError`` when a single-object ``verb`` on a namespaced resource has no
    ``namespace``."""
    if resource.namespaced and namespace is None:
        raise ValueError(f"{resource.group_resource} is namespaced: pass namespace= to {verb} one")


def listed_items(answer: Obj, resource: Resource) -> list[Obj]:
    """The items of a List answer, each given the List's ``apiVersion`` and its ``kind``
    minus ``List`` when it lacks them (as the informer's cache does). Completes the
    items in place and returns them (not copies)."""
    items: list[Obj] = answer.get("items") or []
    list_kind = answer.get("kind")
    kind = resource.kind
    if isinstance(list_kind, str) and len(list_kind) > 4 and list_kind.endswith("List"):
        kind = list_kind[:-4]
    api_version = answer.get("apiVersion") or resource.api_version
    for obj in items:
        if kind and "kind" not in obj:
            obj["kind"] = kind
        if "apiVersion" not in obj:
            obj["apiVersion"] = api_version
    return items
