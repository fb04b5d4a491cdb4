"""Finalizers on object dicts: checks and the guarded patches that add or remove one.

Pure functions: nothing here mutates its argument or talks to the API server. This is
the one implementation of the finalizer rules: the Client's ``add_finalizer`` /
``remove_finalizer`` (``informer._client.finalizers``) send the patches built here and
add no check of their own, so every error below reaches their callers before any
request.

Semantics follow controller-runtime's ``controllerutil`` (``ContainsFinalizer``,
``AddFinalizer``, ``RemoveFinalizer``): adding a present finalizer and removing an absent
one are no-ops (the builders return ``None``: send nothing); removing drops every
occurrence; adding appends at the end.

Why the patch carries ``metadata.resourceVersion``: the finalizer list is replaced as a
whole, so it must be computed from the server's current list. A merge patch holding a
``resourceVersion`` is an optimistic lock (controller-runtime's
``MergeFromWithOptimisticLock``): the API server answers 409 ``Conflict`` when the object
changed since that version, so a stale cached copy can neither drop a finalizer someone
else added nor resurrect one that was removed; the caller re-reads and retries (a
reconcile simply fails and is requeued). A JSON patch ``test`` op would guard too, but
the server answers a failed ``test`` with 422, not 409.

Name rules are the API server's (``ValidateFinalizerName``: a qualified name,
``prefix/name`` with a DNS-subdomain prefix); names without a ``/`` are accepted, as the
server does (it only warns), but ``example.com/my-finalizer`` is what to use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from .objects import meta_namespace_key, resource_version
from .types import Obj
from .validation import qualified_name_errors

__all__ = [
    "add_finalizer_patch",
    "finalizers_after_add",
    "finalizers_after_remove",
    "finalizers_of",
    "finalizers_patch",
    "has_finalizer",
    "is_being_deleted",
    "remove_finalizer_patch",
    "validate_finalizer_name",
]

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_EXCLUSIVE: Final = frozenset({"orphan", "foregroundDeletion"})


def finalizers_of(obj: Obj) -> Sequence[str]:
    """``metadata.finalizers`` (the object's own list), or an empty tuple. Do not mutate."""
    meta: Any = obj.get("metadata") or _EMPTY
    return meta.get("finalizers") or ()


def has_finalizer(obj: Obj, name: str) -> bool:
    """Whether ``name`` is in ``metadata.finalizers`` (``controllerutil.ContainsFinalizer``)."""
    return name in finalizers_of(obj)


def is_being_deleted(obj: Obj) -> bool:
    """Whether ``metadata.deletionTimestamp`` is set: a delete was requested and the object
    stays only until its finalizers are removed. The API server then refuses new
    finalizers; run the cleanup and remove yours."""
    meta: Any = obj.get("metadata") or _EMPTY
    return bool(meta.get("deletionTimestamp"))


def validate_finalizer_name(name: str) -> None:
    """Raise ``ValueError`` when the API server would reject ``name`` as a finalizer."""
    if not isinstance(name, str):
        raise TypeError(f"a finalizer name is a string, got {type(name).__name__}")
    problems = qualified_name_errors(name)
    if problems:
        raise ValueError(
            f"invalid finalizer name {name!r}: {'; '.join(problems)};"
            " use a qualified name such as 'example.com/cleanup'"
        )


def finalizers_after_add(obj: Obj, name: str) -> list[str] | None:
    """The finalizer list with ``name`` appended, or ``None`` when it is already there.

    Raises ``ValueError`` for a name the API server rejects, and when ``obj`` is being
    deleted (the server forbids new finalizers then: check :func:`is_being_deleted` and
    run the cleanup instead).
    """
    current = finalizers_of(obj)
    if name in current:
        return None
    validate_finalizer_name(name)
    if is_being_deleted(obj):
        raise ValueError(
            f"cannot add finalizer {name!r} to {_describe(obj)}: it is being deleted"
            " (metadata.deletionTimestamp is set) and the API server forbids new finalizers;"
            " check is_being_deleted(obj) before adding"
        )
    result = [*current, name]
    if set(result) >= _EXCLUSIVE:
        raise ValueError(
            f"cannot add finalizer {name!r} to {_describe(obj)}: 'orphan' and"
            " 'foregroundDeletion' cannot both be set"
        )
    return result


def finalizers_after_remove(obj: Obj, name: str) -> list[str] | None:
    """The finalizer list without ``name`` (every occurrence), or ``None`` when absent."""
    current = finalizers_of(obj)
    if name not in current:
        return None
    return [f for f in current if f != name]


def finalizers_patch(obj: Obj, finalizers: Sequence[str]) -> Obj:
    """A JSON merge patch setting ``metadata.finalizers``, guarded by ``obj``'s
    ``resourceVersion`` (409 ``Conflict`` when the object changed since).

    An empty list removes the field. Raises ``ValueError`` when ``obj`` has no
    ``resourceVersion`` (an object never read from the server cannot guard a patch).
    """
    rv = resource_version(obj)
    if not rv:
        raise ValueError(
            f"{_describe(obj)} has no metadata.resourceVersion: pass the object as read"
            " from the server (or the cache), so that the finalizer patch can be guarded"
        )
    return {"metadata": {"resourceVersion": rv, "finalizers": list(finalizers) or None}}


def add_finalizer_patch(obj: Obj, name: str) -> Obj | None:
    """The guarded merge patch adding ``name``, or ``None`` when already present.

    Same errors as :func:`finalizers_after_add` and :func:`finalizers_patch`.
    """
    finalizers = finalizers_after_add(obj, name)
    return None if finalizers is None else finalizers_patch(obj, finalizers)


def remove_finalizer_patch(obj: Obj, name: str) -> Obj | None:
    """The guarded merge patch removing ``name``, or ``None`` when absent.

    Removing the last finalizer of an object being deleted lets the server delete it.
    """
    finalizers = finalizers_after_remove(obj, name)
    return None if finalizers is None else finalizers_patch(obj, finalizers)


def _describe(obj: Obj) -> str:
    kind = obj.get("kind") or "object"
    try:
        return f"{kind} {meta_namespace_key(obj)!r}"
    except ValueError:
        return f"{kind} without a name"
