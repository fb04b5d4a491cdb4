"""``Lister``: read-only views of an informer's store, like client-go's listers.

Listers read the informer's store directly: no API call, no copy. The returned dicts are
shared with the store and every handler; callers MUST NOT mutate them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._labels import parse_label_selector
from ._store import NAMESPACE_INDEX, Indexer
from ._types import Obj

__all__ = ["Lister"]


class Lister:
    """Lists and gets objects of one informer's store."""

    __slots__ = ("indexer",)

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer

    def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | Mapping[str, str] | None = None,
    ) -> list[Obj]:
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

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        """The object ``namespace/name`` (or ``name`` when cluster-scoped), or None."""
        return self.indexer.get_by_key(f"{namespace}/{name}" if namespace else name)
