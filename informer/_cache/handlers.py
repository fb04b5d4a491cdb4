"""Event handlers: what a ``SharedIndexInformer`` tells its listeners.

A handler is one of:

- an object with ``on_add(obj)``, ``on_update(old, new)`` and ``on_delete(obj)`` methods
  (:class:`HandlerFuncs`, :class:`FilteringHandler`, or any class of yours); each method
  may be a plain function or a coroutine function;
- a plain callable ``fn(event, obj)`` (sync or async), called with ``event`` one of
  ``"add"``, ``"update"``, ``"delete"`` and ``obj`` the new object (for ``"delete"``
  the last known object, or a :class:`~informer.DeletedFinalStateUnknown`).

Contract: handlers receive the very dicts held by the informer's store; they MUST NOT
mutate them (copy first). ``on_delete`` may receive a ``DeletedFinalStateUnknown``
tombstone when the delete was missed while the watch was down; use
:func:`~informer.unwrap_tombstone` to get the last known object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._meta.objects import unwrap_tombstone

__all__ = [
    "EventHandler",
    "FilteringHandler",
    "HandlerFuncs",
    "as_event_handler",
    "handler_name",
]

MaybeAwaitable = Awaitable[None] | None


@runtime_checkable
class EventHandler(Protocol):
    """The three callbacks a listener receives; each may return an awaitable."""

    def on_add(self, obj: Any) -> MaybeAwaitable: ...

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable: ...

    def on_delete(self, obj: Any) -> MaybeAwaitable: ...


@dataclass(frozen=True, slots=True)
class HandlerFuncs:
    """Adapter from up to three functions (sync or async) to an :class:`EventHandler`.

    Missing callbacks are no-ops, like client-go's ``ResourceEventHandlerFuncs``.
    """

    on_add_func: Callable[[Any], MaybeAwaitable] | None = None
    on_update_func: Callable[[Any, Any], MaybeAwaitable] | None = None
    on_delete_func: Callable[[Any], MaybeAwaitable] | None = None

    def __init__(
        self,
        on_add: Callable[[Any], MaybeAwaitable] | None = None,
        on_update: Callable[[Any, Any], MaybeAwaitable] | None = None,
        on_delete: Callable[[Any], MaybeAwaitable] | None = None,
    ) -> None:
        object.__setattr__(self, "on_add_func", on_add)
        object.__setattr__(self, "on_update_func", on_update)
        object.__setattr__(self, "on_delete_func", on_delete)

    def on_add(self, obj: Any) -> MaybeAwaitable:
        return self.on_add_func(obj) if self.on_add_func is not None else None

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable:
        return self.on_update_func(old, new) if self.on_update_func is not None else None

    def on_delete(self, obj: Any) -> MaybeAwaitable:
        return self.on_delete_func(obj) if self.on_delete_func is not None else None

    def __repr__(self) -> str:
        names = [
            handler_name(f)
            for f in (self.on_add_func, self.on_update_func, self.on_delete_func)
            if f is not None
        ]
        return f"HandlerFuncs({', '.join(names)})"


class FilteringHandler:
    """Passes to ``handler`` only the events ``predicate`` lets through.

    A plain callable ``predicate(obj) -> bool`` filters objects, with client-go's
    ``FilteringResourceEventHandler`` rules: an update whose old object passed and new
    one does not becomes ``on_delete(old)``; the reverse becomes ``on_add(new)``.

    An update-aware predicate (one with a callable ``update(old, new)``, see
    :mod:`informer.predicates`) filters events, as controller-runtime's predicates do:
    ``predicate(obj)`` decides ``on_add`` and ``on_delete``, ``predicate.update(old,
    new)`` decides ``on_update``, and a rejected update is dropped (never turned into a
    delete or an add). Which rules apply is decided once, here.

    ``predicate`` must be cheap and pure: it runs on the listener task for every
    notification. Tombstones are passed to the predicate unwrapped; one without a last
    known object never passes.
    """

    __slots__ = ("_update", "handler", "predicate")

    def __init__(self, predicate: Callable[[Any], bool], handler: Any) -> None:
        if not callable(predicate):
            raise TypeError(f"a predicate is a callable obj -> bool, got {predicate!r}")
        self.predicate = predicate
        self.handler: EventHandler = as_event_handler(handler)
        update = getattr(predicate, "update", None)
        self._update: Callable[[Any, Any], bool] | None = update if callable(update) else None

    def _passes(self, obj: Any) -> bool:
        target = unwrap_tombstone(obj)
        return target is not None and bool(self.predicate(target))

    def on_add(self, obj: Any) -> MaybeAwaitable:
        if self._passes(obj):
            return self.handler.on_add(obj)
        return None

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable:
        update = self._update
        if update is not None:
            if update(old, new):
                return self.handler.on_update(old, new)
            return None
        was, now = self._passes(old), self._passes(new)
        if was and now:
            return self.handler.on_update(old, new)
        if now:
            return self.handler.on_add(new)
        if was:
            return self.handler.on_delete(old)
        return None

    def on_delete(self, obj: Any) -> MaybeAwaitable:
        if self._passes(obj):
            return self.handler.on_delete(obj)
        return None

    def __repr__(self) -> str:
        shown = repr(self.predicate) if self._update is not None else handler_name(self.predicate)
        return f"FilteringHandler({shown}, {handler_name(self.handler)})"


class _CallableHandler:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str, Any], MaybeAwaitable]) -> None:
        self.fn = fn

    def on_add(self, obj: Any) -> MaybeAwaitable:
        return self.fn("add", obj)

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable:
        return self.fn("update", new)

    def on_delete(self, obj: Any) -> MaybeAwaitable:
        return self.fn("delete", obj)

    def __repr__(self) -> str:
        return handler_name(self.fn)


def as_event_handler(handler: Any) -> EventHandler:
    """Normalise any accepted handler form to an :class:`EventHandler`.

    Raises ``TypeError`` for anything else, naming what was given.
    """
    if all(callable(getattr(handler, m, None)) for m in ("on_add", "on_update", "on_delete")):
        return handler  # type: ignore[no-any-return]
    if callable(handler):
        return _CallableHandler(handler)
    raise TypeError(
        "an event handler must have on_add/on_update/on_delete methods (e.g. HandlerFuncs)"
        f" or be a callable fn(event, obj); got {handler!r}"
    )


def handler_name(handler: Any) -> str:
    """A readable name for logs: the qualified name of a function, else its repr."""
    if isinstance(handler, (HandlerFuncs, FilteringHandler, _CallableHandler)):
        return repr(handler)
    qualname = getattr(handler, "__qualname__", None)
    if qualname:
        module = getattr(handler, "__module__", None)
        return f"{module}.{qualname}" if module else str(qualname)
    return type(handler).__qualname__
