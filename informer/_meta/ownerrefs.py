"""Owner references on object dicts (controller-runtime's ``controllerutil``).

:func:`set_controller_reference` and :func:`set_owner_reference` port
``controllerutil.SetControllerReference`` / ``SetOwnerReference``
(sigs.k8s.io/controller-runtime ``pkg/controller/controllerutil/controllerutil.go``):

- the reference names the owner by ``apiVersion``, ``kind``, ``name`` and ``uid``, all
  taken from the owner dict (objects read from a lister or the API carry them);
- references are matched as ``referSameObject`` does: same API **group** (any version),
  same ``kind``, same ``name``, whatever the ``uid``; a matching reference is replaced in
  place, otherwise the new one is appended. So an owner deleted and created again under
  the same name *adopts* the dependents the deleted one left for the garbage collector
  (their reference takes the new ``uid``, and the collector then keeps them).
  ``set_controller_reference(..., match_uid=True)`` refuses that instead: a controller
  reference to the same name with another ``uid`` raises
  :class:`~informer.AlreadyOwnedError` (the dependent belongs to the deleted
  incarnation: leave it to the collector, or delete it, and create a new one);
- ``validateOwner``: a cluster-scoped owner may own anything; a namespaced owner only
  objects of its own namespace (the garbage collector would treat a cross-namespace
  reference as absent and delete the dependent).

They mutate ``obj`` in place (never ``owner``) and return whether it changed: pass a copy
of a cached object, never the lister's own dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import AlreadyOwnedError
from .objects import controller_of
from .types import Obj

__all__ = [
    "AlreadyOwnedError",
    "owner_reference",
    "set_controller_reference",
    "set_owner_reference",
]


def owner_reference(owner: Obj, *, controller: bool = False) -> Obj:
    """The ``ownerReference`` naming ``owner``; with ``controller``, ``controller: true``
    and ``blockOwnerDeletion: true`` (``metav1.NewControllerRef``).

    Raises ``ValueError`` when ``owner`` lacks ``apiVersion``, ``kind``,
    ``metadata.name`` or ``metadata.uid`` (the API server rejects a reference without
    them; an object not yet created has no uid: create it first).
    """
    meta = owner.get("metadata") or {}
    fields = {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "metadata.name": meta.get("name"),
        "metadata.uid": meta.get("uid"),
    }
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ValueError(
            f"owner {_describe(owner)} has no {', '.join(missing)}: an owner reference needs"
            " the owner as read from the server (created, with apiVersion and kind)"
        )
    ref: Obj = {
        "apiVersion": fields["apiVersion"],
        "kind": fields["kind"],
        "name": fields["metadata.name"],
        "uid": fields["metadata.uid"],
    }
    if controller:
        ref["controller"] = True
        ref["blockOwnerDeletion"] = True
    return ref


def set_controller_reference(owner: Obj, obj: Obj, *, match_uid: bool = False) -> bool:
    """Make ``owner`` the controller of ``obj`` (``controllerutil.SetControllerReference``).

    Sets ``controller: true`` and ``blockOwnerDeletion: true``. Idempotent: when ``owner``
    (same group, kind and name: controller-runtime's rule, whatever the ``uid``) already
    holds a reference, it is updated in place, so a recreated owner of the same name
    adopts ``obj``. ``match_uid=True`` makes the ``uid`` part of the match: a controller
    reference to an owner of that name with another ``uid`` (a deleted incarnation) is
    then another owner's.
    Raises :class:`~informer.AlreadyOwnedError`, naming the current controller, when
    another owner holds the controller reference (an object has at most one controller);
    ``ValueError`` for a namespaced owner of an object in another namespace, or of a
    cluster-scoped object, and for an owner without apiVersion/kind/name/uid.
    Returns whether ``obj`` changed.
    """
    _validate_owner(owner, obj)
    ref = owner_reference(owner, controller=True)
    existing = controller_of(obj)
    if existing is not None and _same_object(existing, ref):
        if match_uid and existing.get("uid") != ref["uid"]:
            key = _key(obj)
            raise AlreadyOwnedError(
                f"{obj.get('kind') or 'object'} {key} is controlled by an earlier"
                f" {existing.get('kind')} {existing.get('name')!r} (uid {existing.get('uid')},"
                f" not {ref['uid']}): that owner was deleted and created again, and this"
                " dependent is left for the garbage collector; delete it and create a new"
                " one (or pass match_uid=False to adopt it)",
                owner=existing,
                object_key=key,
            )
    elif existing is not None:
        key = _key(obj)
        raise AlreadyOwnedError(
            f"{obj.get('kind') or 'object'} {key} is already owned by another"
            f" {existing.get('kind')} controller {existing.get('name')!r}"
            f" ({existing.get('apiVersion')}); an object has at most one controller:"
            " remove that reference first if the takeover is intended",
            owner=existing,
            object_key=key,
        )
    return _upsert(obj, ref)


def set_owner_reference(owner: Obj, obj: Obj) -> bool:
    """Add ``owner`` as a (non-controller) owner of ``obj`` (``SetOwnerReference``).

    A reference to the same owner (group, kind, name) is overwritten with the new one,
    which has no ``controller`` / ``blockOwnerDeletion``, exactly as controller-runtime
    does. ``ValueError`` as for :func:`set_controller_reference`. Returns whether ``obj``
    changed.
    """
    _validate_owner(owner, obj)
    return _upsert(obj, owner_reference(owner))


def _upsert(obj: Obj, ref: Obj) -> bool:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    refs: list[Any] = list(meta.get("ownerReferences") or ())
    for i, current in enumerate(refs):
        if _same_object(current, ref):
            if current == ref:
                return False
            refs[i] = ref
            break
    else:
        refs.append(ref)
    meta["ownerReferences"] = refs
    return True


def _validate_owner(owner: Obj, obj: Obj) -> None:
    """``controllerutil.validateOwner``: namespaced owners own only their namespace."""
    owner_ns = (owner.get("metadata") or {}).get("namespace")
    if not owner_ns:
        return
    obj_ns = (obj.get("metadata") or {}).get("namespace")
    if not obj_ns:
        raise ValueError(
            "cluster-scoped resource must not have a namespace-scoped owner, owner's"
            f" namespace {owner_ns} (if {_describe(obj)} is namespaced, set its"
            " metadata.namespace first)"
        )
    if owner_ns != obj_ns:
        raise ValueError(
            "cross-namespace owner references are disallowed, owner's namespace"
            f" {owner_ns}, obj's namespace {obj_ns}"
        )


def _group(api_version: Any) -> str | None:
    """The group of an apiVersion (``""`` for core ``v1``), ``None`` when malformed."""
    if not isinstance(api_version, str) or not api_version:
        return None
    parts = api_version.split("/")
    if len(parts) == 1:
        return ""
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0]
    return None


def _same_object(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``referSameObject``: same group (any version), kind and name."""
    group = _group(a.get("apiVersion"))
    return (
        group is not None
        and group == _group(b.get("apiVersion"))
        and a.get("kind") == b.get("kind")
        and a.get("name") == b.get("name")
    )


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name") or meta.get("generateName") or "?"
    return f"{ns}/{name}" if ns else str(name)


def _describe(obj: Obj) -> str:
    return f"{obj.get('kind') or 'object'} {_key(obj)!r}"
