"""Predicates: which events a watch passes on to its handler (``Controller.watch``'s
``predicate=``, :class:`~informer.FilteringHandler`).

Two kinds of predicate are accepted:

- a plain callable ``fn(obj) -> bool`` filters **objects**: an event passes when the
  object matches, and an update across the boundary becomes an add (starts matching) or
  a delete (stops matching), as client-go's ``FilteringResourceEventHandler`` does;
- an **update-aware** predicate (:class:`UpdatePredicate`; subclass :class:`Predicate`)
  also has ``update(old, new) -> bool``. It filters **events**, as controller-runtime's
  ``pkg/predicate`` does: ``predicate(obj)`` decides adds and deletes,
  ``predicate.update(old, new)`` decides updates, and a rejected update is simply
  dropped (never turned into a delete).

Shipped (ports of sigs.k8s.io/controller-runtime ``pkg/predicate/predicate.go``; each
passes every add and delete, like the Go types embedding ``Funcs``):

===================================== ===================================================
``generation_changed``                updates whose ``metadata.generation`` changed
                                      (``GenerationChangedPredicate``): ignores status
                                      writes of resources with a status subresource, and
                                      the periodic resync
``labels_changed``                    updates whose labels changed (``LabelChangedPredicate``)
``annotations_changed``               updates whose annotations changed
                                      (``AnnotationChangedPredicate``)
``resource_version_changed``          updates whose ``metadata.resourceVersion`` changed
                                      (``ResourceVersionChangedPredicate``): drops resyncs
===================================== ===================================================

Combinators ``and_``, ``or_`` and ``not_`` (``predicate.And``, ``Or``, ``Not``) apply to
each event kind separately; a plain callable inside them acts as
``predicate.NewPredicateFuncs(fn)`` does: on an update it is asked about the new object.
So ``or_(generation_changed, labels_changed)`` reconciles on spec or label changes.

Caveats (controller-runtime's): ``generation`` is bumped on spec writes for custom
resources with a status subresource (and when a deletion is requested on an object with
finalizers), but not for every built-in kind in the same way (a Deployment's
annotations bump it; a ConfigMap has no generation, so ``generation_changed`` drops all
its updates). A controller using it does not restore a status someone else overwrote.

Predicates run on the informer's listener task for every event: keep them cheap and
pure; they receive the store's dicts (unwrapped from tombstones) and must not mutate them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from ._meta.objects import annotations_of, labels_of, resource_version
from ._meta.types import Obj

__all__ = [
    "Predicate",
    "UpdatePredicate",
    "and_",
    "annotations_changed",
    "generation_changed",
    "is_update_aware",
    "labels_changed",
    "not_",
    "or_",
    "resource_version_changed",
]

ObjectFilter = Callable[[Obj], bool]
UpdateFilter = Callable[[Obj, Obj], bool]


@runtime_checkable
class UpdatePredicate(Protocol):
    """A predicate that sees updates: ``pred(obj)`` for adds and deletes,
    ``pred.update(old, new)`` for updates."""

    def __call__(self, obj: Obj) -> bool: ...

    def update(self, old: Obj, new: Obj) -> bool: ...


class Predicate:
    """Base of update-aware predicates: everything passes (``predicate.Funcs{}``).

    Override ``__call__`` (adds and deletes) and/or :meth:`update`::

        class ReplicasChanged(Predicate):
            def update(self, old: Obj, new: Obj) -> bool:
                return old["spec"].get("replicas") != new["spec"].get("replicas")
    """

    __slots__ = ()

    def __call__(self, obj: Obj) -> bool:
        """Whether an add or a delete of ``obj`` passes."""
        return True

    def update(self, old: Obj, new: Obj) -> bool:
        """Whether the update from ``old`` to ``new`` passes."""
        return True

    def __repr__(self) -> str:
        return type(self).__name__


def is_update_aware(predicate: object) -> bool:
    """Whether ``predicate`` has a callable ``update`` (so it filters updates itself)."""
    return callable(getattr(predicate, "update", None))


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class GenerationChanged(Predicate):
    """Updates pass when ``metadata.generation`` changed (``GenerationChangedPredicate``)."""

    __slots__ = ()

    def update(self, old: Obj, new: Obj) -> bool:
        return _meta(old).get("generation") != _meta(new).get("generation")

    def __repr__(self) -> str:
        return "generation_changed"


class LabelsChanged(Predicate):
    """Updates pass when the labels changed (``LabelChangedPredicate``; absent == empty)."""

    __slots__ = ()

    def update(self, old: Obj, new: Obj) -> bool:
        return labels_of(old) != labels_of(new)

    def __repr__(self) -> str:
        return "labels_changed"


class AnnotationsChanged(Predicate):
    """Updates pass when the annotations changed (``AnnotationChangedPredicate``)."""

    __slots__ = ()

    def update(self, old: Obj, new: Obj) -> bool:
        return annotations_of(old) != annotations_of(new)

    def __repr__(self) -> str:
        return "annotations_changed"


class ResourceVersionChanged(Predicate):
    """Updates pass when ``metadata.resourceVersion`` changed
    (``ResourceVersionChangedPredicate``): resyncs are dropped."""

    __slots__ = ()

    def update(self, old: Obj, new: Obj) -> bool:
        return resource_version(old) != resource_version(new)

    def __repr__(self) -> str:
        return "resource_version_changed"


generation_changed = GenerationChanged()
labels_changed = LabelsChanged()
annotations_changed = AnnotationsChanged()
resource_version_changed = ResourceVersionChanged()


def _update_of(predicate: ObjectFilter) -> UpdateFilter:
    """The update filter of a predicate; a plain callable judges the new object."""
    if is_update_aware(predicate):
        return predicate.update  # type: ignore[attr-defined, no-any-return]

    def on_new(old: Obj, new: Obj) -> bool:
        return bool(predicate(new))

    return on_new


def _parts(name: str, predicates: tuple[ObjectFilter, ...]) -> tuple[ObjectFilter, ...]:
    if not predicates:
        raise ValueError(f"{name}() needs at least one predicate")
    for p in predicates:
        if not callable(p):
            raise TypeError(f"{name}(): a predicate is a callable obj -> bool, got {p!r}")
    return predicates


class And(Predicate):
    """Passes an event when every predicate passes it (``predicate.And``)."""

    __slots__ = ("_objects", "_updates")

    def __init__(self, *predicates: ObjectFilter) -> None:
        self._objects = _parts("and_", predicates)
        self._updates = tuple(_update_of(p) for p in self._objects)

    def __call__(self, obj: Obj) -> bool:
        return all(p(obj) for p in self._objects)

    def update(self, old: Obj, new: Obj) -> bool:
        return all(u(old, new) for u in self._updates)

    def __repr__(self) -> str:
        return f"and_({', '.join(map(_name, self._objects))})"


class Or(Predicate):
    """Passes an event when any predicate passes it (``predicate.Or``)."""

    __slots__ = ("_objects", "_updates")

    def __init__(self, *predicates: ObjectFilter) -> None:
        self._objects = _parts("or_", predicates)
        self._updates = tuple(_update_of(p) for p in self._objects)

    def __call__(self, obj: Obj) -> bool:
        return any(p(obj) for p in self._objects)

    def update(self, old: Obj, new: Obj) -> bool:
        return any(u(old, new) for u in self._updates)

    def __repr__(self) -> str:
        return f"or_({', '.join(map(_name, self._objects))})"


class Not(Predicate):
    """Passes an event when the predicate rejects it (``predicate.Not``)."""

    __slots__ = ("_object", "_update")

    def __init__(self, predicate: ObjectFilter) -> None:
        (self._object,) = _parts("not_", (predicate,))
        self._update = _update_of(predicate)

    def __call__(self, obj: Obj) -> bool:
        return not self._object(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return not self._update(old, new)

    def __repr__(self) -> str:
        return f"not_({_name(self._object)})"


def and_(*predicates: ObjectFilter) -> Predicate:
    """Logical AND of ``predicates``, per event kind (``predicate.And``)."""
    return And(*predicates)


def or_(*predicates: ObjectFilter) -> Predicate:
    """Logical OR of ``predicates``, per event kind (``predicate.Or``)."""
    return Or(*predicates)


def not_(predicate: ObjectFilter) -> Predicate:
    """Logical NOT of ``predicate``, per event kind (``predicate.Not``)."""
    return Not(predicate)


def _name(predicate: Any) -> str:
    if isinstance(predicate, Predicate):
        return repr(predicate)
    return str(getattr(predicate, "__qualname__", None) or repr(predicate))
