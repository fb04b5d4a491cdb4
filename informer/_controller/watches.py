"""A controller's watch declarations: which informers it watches, how their events become
keys, and which resource is its primary.

:class:`Watches` registers one enqueueing handler per declaration (an
:class:`~informer._controller.mappers.Enqueue`, behind a
:class:`~informer.FilteringHandler` when there is a predicate) and keeps the
declarations in order. The first declaration without a mapper names the primary
resource: its own keys are what ``reconcile`` receives, and :meth:`Watches.owner_mapper`
maps other objects to their controlling owner of that kind. Declarations happen before
the controller runs (the :class:`~informer.Controller` checks); mappers and predicates
then run on the informers' listener tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._cache.handlers import EventHandler, FilteringHandler
from .._cache.informer import SharedIndexInformer
from .._cache.listener import ProcessorListener
from .._meta.objects import ObjectOrTombstone
from .._meta.resource import Resource
from .._meta.types import Obj
from .mappers import Enqueue, KeyMapper, own_key, owner_key

__all__ = ["Watch", "Watches"]


@dataclass(frozen=True, slots=True)
class Watch:
    """One declaration: the informer, our handler's registration on it, and how its
    objects are filtered (``predicate``) and mapped (``mapper``; ``None``: own keys)."""

    informer: SharedIndexInformer
    registration: ProcessorListener
    mapper: KeyMapper | None = None
    predicate: Callable[[Obj], bool] | None = None


class Watches:
    """The watches of the controller named ``controller``; their handlers call ``add``
    (the controller's ``queue.add``) with every key."""

    def __init__(self, *, controller: str, add: Callable[[str], object]) -> None:
        self.controller = controller
        self._add = add
        self._watches: list[Watch] = []
        self._primary: Resource | None = None
        self._has_primary = False

    def add(
        self,
        informer: SharedIndexInformer,
        *,
        watched: Resource | SharedIndexInformer,
        mapper: KeyMapper | None,
        predicate: Callable[[Obj], bool] | None,
    ) -> None:
        """Register the enqueueing handler on ``informer`` (what the user passed:
        ``watched``); the first call without ``mapper`` sets the primary resource."""
        handler: EventHandler = Enqueue(
            self.controller,
            self._add,
            mapper if mapper is not None else own_key,
            informer.key_func,
        )
        if predicate is not None:
            handler = FilteringHandler(predicate, handler)
        registration = informer.add_event_handler(handler)
        self._watches.append(Watch(informer, registration, mapper, predicate))
        if mapper is None and not self._has_primary:
            self._has_primary = True
            self._primary = _resource_of(watched)

    @property
    def primary_informer(self) -> SharedIndexInformer | None:
        """The informer of the first watch without a mapper, or ``None``."""
        return next((w.informer for w in self._watches if w.mapper is None), None)

    @property
    def primary(self) -> Resource | None:
        """The resource of the first watch without a mapper, or ``None``."""
        return self._primary

    def owner_mapper(self) -> KeyMapper:
        """A mapper to the controlling owner of the primary's kind and group.

        Raises ``RuntimeError`` before a primary watch, ``TypeError`` when the primary was
        an informer without a :class:`~informer.Resource`, ``ValueError`` when the
        primary resource has no ``kind``; each says what to do instead.
        """
        primary = self._primary
        if self._has_primary and primary is None:
            raise TypeError(
                f"controller {self.controller}: the primary watch was given an informer whose "
                "lister-watcher has no Resource: watch the primary as a Resource"
            )
        if primary is None:
            raise RuntimeError(
                f"controller {self.controller}: owns() enqueues owners of the primary "
                "resource: call self.watch(<primary Resource>) (without mapper=) before "
                "self.owns()"
            )
        if not primary.kind:
            raise ValueError(
                f"controller {self.controller}: the primary resource {primary.group_resource} "
                "has no kind, so owner references cannot be matched: give it Resource(kind=...)"
            )
        return owner_key(primary.kind, group=primary.group, namespaced=primary.namespaced)

    @property
    def informers(self) -> list[SharedIndexInformer]:
        """The watched informers, each once, in declaration order."""
        seen: dict[int, SharedIndexInformer] = {}
        for w in self._watches:
            seen.setdefault(id(w.informer), w.informer)
        return list(seen.values())

    def remove_handlers(self) -> None:
        """Unregister every handler of these watches from its informer (idempotent)."""
        for w in self._watches:
            if any(listener is w.registration for listener in w.informer.listeners):
                w.informer.remove_event_handler(w.registration)

    def has_synced(self) -> bool:
        """True once every watched informer synced and our handlers saw its initial list."""
        return all(w.registration.has_synced() for w in self._watches)

    async def wait_for_sync(self) -> None:
        """Return once :meth:`has_synced` (cancellation returns at once)."""
        for w in self._watches:
            await w.informer.wait_for_sync(w.registration)

    def cached_keys(self) -> set[str]:
        """The keys an add event of every cached object of every watch would enqueue
        (its predicate and mapper applied)."""
        keys: set[str] = set()
        for w in self._watches:
            mapper = w.mapper
            own: Callable[[ObjectOrTombstone], str] = w.informer.key_func
            for obj in w.informer.indexer.list():
                if w.predicate is not None and not w.predicate(obj):
                    continue
                if mapper is None or mapper is own_key:
                    keys.add(own(obj))
                else:
                    keys.update(mapper(obj))
        return keys


def _resource_of(watched: Resource | SharedIndexInformer) -> Resource | None:
    """The resource a watch was given, or the one its informer's lister-watcher lists."""
    if isinstance(watched, Resource):
        return watched
    resource = getattr(watched.lister_watcher, "resource", None)
    return resource if isinstance(resource, Resource) else None
