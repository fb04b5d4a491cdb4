"""How a controller's informer events become work-queue keys.

A :data:`KeyMapper` turns an object into the keys to reconcile: :func:`own_key` (the
object's own key, the default), :func:`owner_key` (the owners named in
``metadata.ownerReferences``) or any function of yours. :class:`Enqueue` is the handler
:meth:`~informer.Controller.watch` registers on an informer:

- every add, update and delete is mapped and enqueued, **including the periodic resync
  updates** (old and new resourceVersion equal), as controller-runtime does: resync is
  how a level-triggered controller re-checks the world;
- on an update the mapper runs on both the old and the new object (so that, e.g., an
  owner that lost a child is reconciled too);
- on a delete a :class:`~informer.DeletedFinalStateUnknown` tombstone is unwrapped before
  mapping; :func:`own_key` uses the tombstone's key directly (through the informer's key
  function), so even a tombstone without its last state enqueues the right key, while
  another mapper skips such a tombstone (``watch.tombstone_unmapped``, debug).

Mappers run on the informer's listener task for every event: they must be cheap, must
not block and must not mutate the objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import structlog

from .._cache.handlers import handler_name
from .._meta.objects import (
    DeletedFinalStateUnknown,
    ObjectOrTombstone,
    meta_namespace_key,
    namespace_of,
    owner_references,
    unwrap_tombstone,
)
from .._meta.types import Obj

__all__ = ["Enqueue", "KeyMapper", "own_key", "owner_key"]

log = structlog.get_logger(__name__)

KeyMapper = Callable[[Obj], Iterable[str]]
"""Object -> the keys to reconcile for it (``"ns/name"`` or ``"name"``)."""


def own_key(obj: ObjectOrTombstone) -> list[str]:
    """The object's own key, ``[meta_namespace_key(obj)]`` (a tombstone gives its key).

    As the mapper of :meth:`~informer.Controller.watch` it stands for the watched informer's own
    key function (:attr:`~informer.SharedIndexInformer.key_func`), so the keys it queues
    are the ones that informer's lister serves.
    """
    return [meta_namespace_key(obj)]


def owner_key(
    kind: str,
    *,
    group: str | None = None,
    api_version: str | None = None,
    controller_only: bool = True,
    namespaced: bool = True,
) -> KeyMapper:
    """A mapper to the keys of the object's owners of ``kind`` (``metadata.ownerReferences``).

    ``group`` (``"apps"``, ``"example.com"``, ``""`` for the core group) restricts owners
    to that API group; ``api_version`` (``"apps/v1"``, ``"v1"``) does the same through an
    apiVersion: only its group is compared (as controller-runtime's
    ``EnqueueRequestForOwner`` does, since one object may be served at several
    versions). Without either, owners of ``kind`` in any group match. Raises
    ``ValueError`` when both are given, when ``group`` contains a ``/``, or when
    ``api_version`` is neither ``group/version`` nor a core version (``"example.com"``
    would silently match nothing: pass ``group="example.com"``).

    ``controller_only`` keeps only the reference with ``controller: true``. An owner of a
    namespaced object lives in the object's namespace, so its key is
    ``"<object namespace>/<owner name>"``; pass ``namespaced=False`` when the owner kind
    is cluster-scoped (key ``"<owner name>"``).
    """
    wanted = _owner_group(kind, group=group, api_version=api_version)

    def map_owners(obj: Obj) -> list[str]:
        ns = namespace_of(obj) if namespaced else None
        keys: list[str] = []
        for ref in owner_references(obj):
            if controller_only and ref.get("controller") is not True:
                continue
            if ref.get("kind") != kind:
                continue
            if wanted is not None and _group_of(str(ref.get("apiVersion", ""))) != wanted:
                continue
            name = ref.get("name")
            if name:
                keys.append(f"{ns}/{name}" if ns else str(name))
        return keys

    map_owners.__qualname__ = f"owner_key({kind!r})"
    return map_owners


_VERSION = re.compile(r"v[1-9][0-9]*(?:(?:alpha|beta)[1-9][0-9]*)?")
"""A Kubernetes API version (``v1``, ``v2beta1``): an apiVersion without ``/`` is one."""


def _owner_group(kind: str, *, group: str | None, api_version: str | None) -> str | None:
    """The API group :func:`owner_key` compares, validated; ``None``: any group."""
    call = f"owner_key({kind!r})"
    if group is not None and api_version is not None:
        raise ValueError(
            f"{call}: pass group= or api_version=, not both"
            f" (group={group!r}, api_version={api_version!r})"
        )
    if group is not None:
        if "/" in group:
            suggestion = group.rpartition("/")[0]
            raise ValueError(
                f"{call}: group={group!r} is an apiVersion, not a group;"
                f" pass group={suggestion!r} or api_version={group!r}"
            )
        return group
    if api_version is None:
        return None
    prefix, sep, version = api_version.rpartition("/")
    if sep and prefix and version and "/" not in prefix:
        return prefix  # a CRD version may be any DNS label: only the group is checked
    if not sep and _VERSION.fullmatch(api_version):
        return ""  # the core group ("v1")
    if not sep:
        raise ValueError(
            f"{call}: api_version={api_version!r} has no version, so it matches no owner;"
            f" pass group={api_version!r} to match owners of that API group, or a full"
            f" apiVersion such as api_version='{api_version}/v1'"
        )
    raise ValueError(
        f"{call}: api_version={api_version!r} is not an apiVersion ('group/version' such as"
        f" 'apps/v1', or 'v1' for the core group); pass group='<group>' to match any version"
    )


def _group_of(api_version: str) -> str:
    group, sep, _ = api_version.rpartition("/")
    return group if sep else ""


class Enqueue:
    """The handler a controller registers on an informer: every event -> mapped keys.

    :param controller: the controller's name (logs, ``repr``: the handler's metric label).
    :param add: the controller's ``queue.add``.
    :param key_func: the informer's key function, used instead of calling ``own_key``
        (own keys then match the informer's lister's keys).
    """

    __slots__ = ("_add", "_controller", "_key", "_mapper", "_own")

    def __init__(
        self,
        controller: str,
        add: Callable[[str], object],
        mapper: KeyMapper,
        key_func: Callable[[ObjectOrTombstone], str] = meta_namespace_key,
    ) -> None:
        self._controller = controller
        self._mapper = mapper
        self._own = mapper is own_key
        self._key = key_func  # the informer's: own keys match its lister's keys
        self._add = add

    def on_add(self, obj: Obj) -> None:
        add = self._add
        if self._own:
            add(self._key(obj))
            return
        for key in self._mapper(obj):
            add(key)

    def on_update(self, old: Obj, new: Obj) -> None:
        add = self._add
        if self._own:
            add(self._key(new))
            return
        for key in self._mapper(new):
            add(key)
        for key in self._mapper(old):
            add(key)

    def on_delete(self, obj: ObjectOrTombstone) -> None:
        add = self._add
        if self._own:
            add(self._key(obj))
            return
        target = unwrap_tombstone(obj)
        if target is None:
            key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else "?"
            log.debug(
                "watch.tombstone_unmapped",
                controller=self._controller,
                object_key=key,
                mapper=handler_name(self._mapper),
            )
            return
        for key in self._mapper(target):
            add(key)

    def __repr__(self) -> str:
        return f"Enqueue({self._controller}, {handler_name(self._mapper)})"
