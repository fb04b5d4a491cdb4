"""``Lister``: read-only views of an informer's store, like client-go's listers.

Listers read the informer's store directly: no API call, no copy. The returned dicts are
shared with the store and every handler; callers MUST NOT mutate them. Returned lists are
fresh (mutating a list is fine).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping

from .._meta.labels import parse_label_selector
from .._meta.objects import meta_namespace_key
from .._meta.types import Obj
from .store import NAMESPACE_INDEX, Indexer

__all__ = ["Lister"]


class Lister:
    """Lists and gets objects of one informer's store.

    ``namespace`` is keyword-only wherever a name is also taken, so a swapped call cannot
    silently return ``None`` (which would read as "deleted").
    """

    __slots__ = ("indexer",)

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    def list(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
    ) -> builtins.list[Obj]:
        """Objects in ``namespace`` (all when None) matching ``label_selector``."""
        objs = (
            self.indexer.list()
            if namespace is None
            else self.indexer.by_index(NAMESPACE_INDEX, namespace)
        )
        if label_selector is None or label_selector == "":
            return objs
        match = parse_label_selector(label_selector)
        return [o for o in objs if match(o.get("metadata", {}).get("labels") or {})]

    def get(self, name: str, *, namespace: str | None = None) -> Obj | None:
        """The object ``namespace/name`` (or ``name`` when cluster-scoped), or None.

        Only for a store keyed by :func:`~informer.meta_namespace_key` (the default): with
        any other key function this raises ``TypeError`` (use :meth:`get_by_key`), since
        a ``"namespace/name"`` lookup would silently answer ``None``.
        """
        if self.indexer.key_func is not meta_namespace_key:
            raise TypeError(
                "this store uses a custom key function, so objects cannot be looked up by "
                "namespace and name: use Lister.get_by_key(key) with that function's key"
            )
        return self.indexer.get_by_key(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        """The object stored under ``key`` (the store's key function's), or None."""
        return self.indexer.get_by_key(key)

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in the index ``index_name`` (``KeyError`` if the
        store has no such index)."""
        return self.indexer.by_index(index_name, value)

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Keys of the objects filed under ``value`` in the index ``index_name``."""
        return self.indexer.index_keys(index_name, value)

    def keys(self) -> builtins.list[str]:
        """Every key in the store (insertion order)."""
        return self.indexer.list_keys()

    def __len__(self) -> int:
        return len(self.indexer)
