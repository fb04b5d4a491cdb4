"""The indexed object cache: client-go's ``Store`` + ``Indexer`` (thread_safe_store.go).

An :class:`Indexer` maps keys (``meta_namespace_key`` by default) to object dicts and
keeps any number of named secondary indexes: ``name -> {index value -> {key, ...}}``.

Contracts:

- **Ownership.** The store keeps the very dict it is given (no copy) and takes ownership
  of it: the caller must not mutate it afterwards. Every object returned by ``get``,
  ``list``, ``by_index`` ... is the stored dict itself, shared with every other reader:
  it MUST NOT be mutated. Returned lists are fresh; mutating a list is fine.
- **Single event loop, no locks.** Every method is synchronous and runs to completion
  without awaiting, so an asyncio program sees each mutation atomically.
- **Index functions** (:data:`IndexFunc`) must be pure, fast and deterministic (the same
  object always yields the same values) and must not raise: an exception propagates to
  the caller of the mutating method and may leave that key's entries in the other indexes
  stale. Duplicate values in one result are harmless; an empty list leaves the object out
  of that index. Values with no keys left are removed, so ``list_index_func_values``
  only lists live values.
- **Ordering.** ``list``/``list_keys`` follow insertion order of the keys (an update keeps
  a key's place); the results of index queries come in no particular order.

- **Precomputed keys.** :meth:`Indexer.add_with_key` and :meth:`Indexer.delete_by_key`
  take a key the caller already computed (the informer's processor computes it once per
  delta) and return the previous object. The key MUST be what the store's
  :attr:`Indexer.key_func` gives for the object: the store does not check it. (With
  ``meta_namespace_key`` an update of a stored key leaves :func:`namespace_index`
  untouched: the key contains the namespace, so it cannot have changed.)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TypeAlias

from .._meta.objects import DeletedFinalStateUnknown, ObjectOrTombstone, meta_namespace_key
from .._meta.types import Obj

__all__ = [
    "NAMESPACE_INDEX",
    "IndexFunc",
    "Indexer",
    "KeyFunc",
    "namespace_index",
]

IndexFunc: TypeAlias = Callable[[Obj], list[str]]
"""Object -> the index values it is filed under (client-go ``IndexFunc``)."""

KeyFunc: TypeAlias = Callable[[Obj], str]
"""Object -> its unique key. Tombstones are handled before a key function is called."""

NAMESPACE_INDEX = "namespace"
"""Conventional name of the :func:`namespace_index` index (client-go ``NamespaceIndex``)."""

_Index: TypeAlias = dict[str, dict[str, None]]
"""index value -> its keys. The keys are a dict's (values ``None``), not a set: a set
grows 4x at a time and held 105 bytes per key at 20,000 keys, a dict 21 (bench/RESULTS.md,
"Round 2 memory")."""


def namespace_index(obj: Obj) -> list[str]:
    """``[namespace]``; ``[""]`` for a cluster-scoped object (client-go
    ``MetaNamespaceIndexFunc``)."""
    return [obj["metadata"].get("namespace") or ""]


class Indexer:
    """A key -> object map with named secondary indexes. See the module docstring.

    ``key_func`` computes an object's key (default :func:`meta_namespace_key`);
    ``indexers`` maps index names to :data:`IndexFunc`. Methods taking an object to locate
    (``delete``, ``get``) also accept a :class:`DeletedFinalStateUnknown`, keyed by its
    ``key``.
    """

    __slots__ = (
        "_index_list",
        "_indexers",
        "_indices",
        "_items",
        "_key_func",
        "_update_index_list",
    )

    def __init__(
        self,
        key_func: KeyFunc = meta_namespace_key,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> None:
        self._key_func = key_func
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, _Index] = {}
        # (index func, index) pairs, the hot-path view of the two dicts above.
        self._index_list: builtins.list[tuple[IndexFunc, _Index]] = []
        # The pairs an update of a stored key can move: namespace_index is left out when
        # the key is meta_namespace_key's, which contains the namespace.
        self._update_index_list: builtins.list[tuple[IndexFunc, _Index]] = []
        if indexers:
            self.add_indexers(indexers)

    # -- Store -------------------------------------------------------------------------

    @property
    def key_func(self) -> KeyFunc:
        """The function giving each stored object its key."""
        return self._key_func

    def add(self, obj: Obj) -> None:
        """Insert or overwrite ``obj`` under its key; the store takes ownership of it."""
        self.add_with_key(self._key_func(obj), obj)

    def update(self, obj: Obj) -> None:
        """Same as :meth:`add` (the store does not distinguish)."""
        self.add_with_key(self._key_func(obj), obj)

    def delete(self, obj: ObjectOrTombstone) -> None:
        """Remove the object stored under ``obj``'s key; an unknown key is a no-op."""
        self.delete_by_key(self._key_of(obj))

    def add_with_key(self, key: str, obj: Obj) -> Obj | None:
        """Store ``obj`` under the precomputed ``key``; return the object it replaced.

        ``key`` must be ``key_func(obj)`` (not checked: this is the fast path for a caller
        that already has the key). The store takes ownership of ``obj``. Returns ``None``
        when nothing was stored under ``key``.
        """
        items = self._items
        old = items.get(key)
        if old is None:
            for fn, index in self._index_list:
                _file(index, key, fn(obj))
        elif self._update_index_list:
            self._update_indices(key, old, obj)
        items[key] = obj
        return old

    def delete_by_key(self, key: str) -> Obj | None:
        """Remove what is stored under ``key``; return it, or ``None`` if nothing was."""
        old = self._items.pop(key, None)
        if old is not None:
            for fn, index in self._index_list:
                _unfile(index, key, fn(old))
        return old

    def replace(self, objs: Iterable[Obj], resource_version: str = "") -> None:
        """Make ``objs`` the whole content and rebuild every index.

        The store takes ownership of the objects. Atomic: the new content and indexes are
        built aside and swapped in, so if a key or index function raises, the store is
        left unchanged. A key listed twice keeps its last object.
        ``resource_version`` is accepted for parity with client-go and ignored.
        """
        key_func = self._key_func
        items = {key_func(obj): obj for obj in objs}
        new_indices: builtins.list[_Index] = []
        for fn, _ in self._index_list:
            index: _Index = {}
            for key, obj in items.items():
                _file(index, key, fn(obj))
            new_indices.append(index)
        self._items = items
        self._indices = dict(zip(self._indexers, new_indices, strict=True))
        self._index_list = [
            (fn, index) for (fn, _), index in zip(self._index_list, new_indices, strict=True)
        ]
        self._update_index_list = self._updatable(self._index_list)

    def get(self, obj: ObjectOrTombstone) -> Obj | None:
        """The stored object with ``obj``'s key, or ``None``. Do not mutate it."""
        return self._items.get(self._key_of(obj))

    def get_by_key(self, key: str) -> Obj | None:
        """The stored object under ``key``, or ``None``. Do not mutate it."""
        return self._items.get(key)

    def list(self) -> builtins.list[Obj]:
        """Every stored object (a new list of the shared dicts: do not mutate them)."""
        return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        """Every key, in insertion order."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        """``key in indexer``: whether an object is stored under this key string."""
        return key in self._items

    def __repr__(self) -> str:
        return f"<Indexer {len(self._items)} objects, indexes={sorted(self._indexers)}>"

    # -- Indexer -----------------------------------------------------------------------

    def index(self, name: str, obj: Obj) -> builtins.list[Obj]:
        """Stored objects sharing at least one value of index ``name`` with ``obj``."""
        fn = self._indexers.get(name)
        if fn is None:
            raise self._unknown(name)
        index = self._indices[name]
        values = fn(obj)
        keys: Iterable[str]
        if len(values) == 1:
            keys = index.get(values[0], ())
        else:
            keys = set().union(*(index.get(v, ()) for v in values))
        items = self._items
        return [items[k] for k in keys]

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """Stored objects whose index ``name`` includes ``value``."""
        items = self._items
        return [items[k] for k in self._index(name).get(value, ())]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        """Keys of the stored objects whose index ``name`` includes ``value``."""
        return list(self._index(name).get(value, ()))

    def list_index_func_values(self, name: str) -> builtins.list[str]:
        """Every value of index ``name`` that at least one stored object has."""
        return list(self._index(name))

    @property
    def indexers(self) -> Mapping[str, IndexFunc]:
        """Read-only view of the registered ``name -> IndexFunc`` map."""
        return MappingProxyType(self._indexers)

    def get_indexers(self) -> dict[str, IndexFunc]:
        """A copy of the registered ``name -> IndexFunc`` map."""
        return dict(self._indexers)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Register more indexes; allowed at any time (existing objects get indexed).

        Raises ``ValueError`` if a name is already registered; nothing is added then.
        """
        conflict = self._indexers.keys() & indexers.keys()
        if conflict:
            raise ValueError(f"indexer conflict: {sorted(conflict)} already registered")
        built: builtins.list[tuple[str, IndexFunc, _Index]] = []
        for name, fn in indexers.items():
            index: _Index = {}
            for key, obj in self._items.items():
                _file(index, key, fn(obj))
            built.append((name, fn, index))
        for name, fn, index in built:
            self._indexers[name] = fn
            self._indices[name] = index
            self._index_list.append((fn, index))
        self._update_index_list = self._updatable(self._index_list)

    # -- internals ---------------------------------------------------------------------

    def _updatable(
        self, pairs: builtins.list[tuple[IndexFunc, _Index]]
    ) -> builtins.list[tuple[IndexFunc, _Index]]:
        """``pairs`` without those an update of a stored key cannot change."""
        if self._key_func is not meta_namespace_key:
            return list(pairs)
        return [(fn, index) for fn, index in pairs if fn is not namespace_index]

    def _update_indices(self, key: str, old: Obj, new: Obj) -> None:
        for fn, index in self._update_index_list:
            new_values = fn(new)
            old_values = fn(old)
            if old_values == new_values:
                continue
            _unfile(index, key, old_values)
            _file(index, key, new_values)

    def _key_of(self, obj: ObjectOrTombstone) -> str:
        if isinstance(obj, DeletedFinalStateUnknown):
            return obj.key
        return self._key_func(obj)

    def _index(self, name: str) -> _Index:
        index = self._indices.get(name)
        if index is None:
            raise self._unknown(name)
        return index

    def _unknown(self, name: str) -> KeyError:
        return KeyError(f"no index named {name!r}; registered indexes: {sorted(self._indexers)}")


def _file(index: _Index, key: str, values: Sequence[str]) -> None:
    for value in values:
        keys = index.get(value)
        if keys is None:
            index[value] = {key: None}
        else:
            keys[key] = None


def _unfile(index: _Index, key: str, values: Sequence[str]) -> None:
    for value in values:
        keys = index.get(value)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del index[value]
