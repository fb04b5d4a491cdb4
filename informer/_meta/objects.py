"""Accessors on raw Kubernetes objects, object keys and deletion tombstones.

Objects are the decoded JSON dicts exactly as the API server sent them (camelCase keys,
``metadata.name``, ``metadata.namespace``, ...). Nothing in this module copies or mutates
an object: every accessor returns the value held by the object itself (or a shared,
read-only empty value when the field is absent), so callers must not mutate what they get
back either. The store, every handler and every lister share the same dicts.

Keys (client-go's ``MetaNamespaceKeyFunc``):

- ``"<namespace>/<name>"`` for a namespaced object, ``"<name>"`` for a cluster-scoped
  one (no ``metadata.namespace``, or an empty one);
- a :class:`DeletedFinalStateUnknown` yields its ``key`` unchanged;
- an object without a non-empty ``metadata.name`` has no key: :class:`ObjectKeyError`
  (a ``ValueError``) is raised. :func:`split_meta_namespace_key` raises the same error for
  a string :func:`meta_namespace_key` cannot have produced.

:func:`meta_namespace_key` runs once per event on the hot path: it is two dict lookups,
one ``get`` and a string concatenation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias

from .._exceptions import ObjectKeyError
from .types import Obj

__all__ = [
    "DeletedFinalStateUnknown",
    "ObjectKeyError",
    "ObjectOrTombstone",
    "annotations_of",
    "controller_of",
    "labels_of",
    "meta_namespace_key",
    "name_of",
    "namespace_of",
    "owner_references",
    "resource_version",
    "split_meta_namespace_key",
    "uid_of",
    "unwrap_tombstone",
]


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """Tombstone for an object whose deletion was not seen as a watch event.

    A ``DeltaFIFO`` places it in a ``Deleted`` delta when a relist (``replace``) no longer
    contains a key it or its known objects held. ``obj`` is the last state we knew, which
    may be stale, or ``None`` when nothing was known. ``on_delete`` handlers receive either
    an object dict or one of these; :func:`unwrap_tombstone` gives the dict in both cases.

    Frozen; ``obj`` is shared with the store and must not be mutated. Instances holding an
    object are not hashable (a dict is not).
    """

    key: str
    obj: Obj | None


ObjectOrTombstone: TypeAlias = Obj | DeletedFinalStateUnknown
"""What a ``Deleted`` delta and an ``on_delete`` handler carry."""

_EMPTY_MAP: Mapping[str, str] = MappingProxyType({})


def meta_namespace_key(obj: ObjectOrTombstone) -> str:
    """``"namespace/name"``, or ``"name"`` for a cluster-scoped object.

    A :class:`DeletedFinalStateUnknown` yields its ``key``. Raises :class:`ObjectKeyError`
    when the object has no non-empty ``metadata.name``.
    """
    try:
        meta = obj["metadata"]  # type: ignore[index]
        name = meta["name"]
    except TypeError:
        # Not subscriptable: a tombstone (the only non-dict we accept), or garbage.
        # The check lives on the exception path so a dict pays nothing for it.
        if isinstance(obj, DeletedFinalStateUnknown):
            return obj.key
        raise ObjectKeyError(
            f"cannot compute a key for a {type(obj).__name__}: "
            "expected an object dict with a metadata mapping"
        ) from None
    except KeyError:
        raise ObjectKeyError(
            f"object has no metadata.name; cannot compute its key: {_describe(obj)}"
        ) from None
    if not name:
        raise ObjectKeyError(f"object has an empty metadata.name: {_describe(obj)}")
    ns = meta.get("namespace")
    if ns:
        return f"{ns}/{name}"
    return name  # type: ignore[no-any-return]


def split_meta_namespace_key(key: str) -> tuple[str | None, str]:
    """Inverse of :func:`meta_namespace_key`: ``(namespace, name)``.

    The namespace is ``None`` for a cluster-scoped key. Raises :class:`ObjectKeyError`
    (a ``ValueError``) for a key with more than one ``/`` or with an empty part: such a key
    cannot come from :func:`meta_namespace_key`.
    """
    ns, sep, name = key.partition("/")
    if not sep:
        if not key:
            raise ObjectKeyError("malformed key '': empty")
        return None, key
    if not ns or not name or "/" in name:
        raise ObjectKeyError(f"malformed key {key!r}: expected 'namespace/name' or 'name'")
    return ns, name


def unwrap_tombstone(obj: ObjectOrTombstone) -> Obj | None:
    """The object dict itself, or a tombstone's last known object (``None`` if unknown)."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.obj
    return obj


def _describe(obj: Any) -> str:
    """A short, safe description of a malformed object for error messages."""
    if isinstance(obj, Mapping):
        kind = obj.get("kind", "?")
        meta = obj.get("metadata")
        hint = ""
        if isinstance(meta, Mapping):
            hint = f" generateName={meta.get('generateName')!r}" if "generateName" in meta else ""
            hint += f" namespace={meta.get('namespace')!r}" if "namespace" in meta else ""
        return f"kind={kind!r}{hint} keys={sorted(map(str, obj))[:8]}"
    return type(obj).__name__


# -- accessors ------------------------------------------------------------------------
# Each takes a raw object dict (not a tombstone: unwrap it first) and returns the value
# found in it, never a copy. Absent optional fields give None or a shared empty value.


def name_of(obj: Obj) -> str:
    """``metadata.name``; raises :class:`ObjectKeyError` when absent."""
    try:
        return obj["metadata"]["name"]  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        raise ObjectKeyError(f"object has no metadata.name: {_describe(obj)}") from None


def namespace_of(obj: Obj) -> str | None:
    """``metadata.namespace``, or ``None`` for a cluster-scoped object (absent or empty)."""
    ns: str | None = obj.get("metadata", _EMPTY_MAP).get("namespace")
    return ns or None


def resource_version(obj: Obj) -> str | None:
    """``metadata.resourceVersion`` (an opaque string), or ``None`` when absent."""
    rv: str | None = obj.get("metadata", _EMPTY_MAP).get("resourceVersion")
    return rv


def uid_of(obj: Obj) -> str | None:
    """``metadata.uid``, or ``None`` when absent."""
    uid: str | None = obj.get("metadata", _EMPTY_MAP).get("uid")
    return uid


def labels_of(obj: Obj) -> Mapping[str, str]:
    """``metadata.labels``, or a shared read-only empty mapping. Do not mutate."""
    return obj.get("metadata", _EMPTY_MAP).get("labels") or _EMPTY_MAP


def annotations_of(obj: Obj) -> Mapping[str, str]:
    """``metadata.annotations``, or a shared read-only empty mapping. Do not mutate."""
    return obj.get("metadata", _EMPTY_MAP).get("annotations") or _EMPTY_MAP


def owner_references(obj: Obj) -> Sequence[Obj]:
    """``metadata.ownerReferences`` (camelCase dicts), or an empty tuple. Do not mutate."""
    return obj.get("metadata", _EMPTY_MAP).get("ownerReferences") or ()


def controller_of(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true`` (client-go ``GetControllerOf``)."""
    for ref in owner_references(obj):
        if ref.get("controller") is True:
            return ref
    return None
