"""What the soak checks: informer caches and handler-built state against fresh lists.

A :class:`Watched` is one informer under test with a :class:`HandlerView`, a handler that
rebuilds ``key -> resourceVersion`` from ``on_add``/``on_update``/``on_delete`` alone.
After every fault both the cache and that view must equal a fresh list read through a
direct admin client (not through the proxies): no missing object, no ghost (an object
deleted in the cluster still cached: a lost delete), no stale resourceVersion.

The view also checks the event stream itself, as it arrives: an ``on_add`` for a key it
already holds, an ``on_update`` or ``on_delete`` for a key it never saw, or an
``on_update`` whose old object is not the last one it was given are anomalies, each a
failure of the soak. Handlers run on the event loop; the view is read by the checker on
the same loop, so no locking is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from informer import (
    DeletedFinalStateUnknown,
    HandlerFuncs,
    Resource,
    SharedIndexInformer,
    meta_namespace_key,
    request_json,
)

__all__ = ["Diff", "HandlerView", "Watched", "diff", "fresh_list"]

_MAX_ANOMALIES_KEPT = 20


def _rv(obj: Any) -> str:
    return str(obj["metadata"]["resourceVersion"])


class HandlerView:
    """``key -> resourceVersion`` built from handler callbacks only (see the module)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state: dict[str, str] = {}
        self.anomalies: list[str] = []
        self.anomaly_count = 0
        self.adds = self.updates = self.deletes = self.tombstones = 0

    def _anomaly(self, what: str, key: str) -> None:
        self.anomaly_count += 1
        if len(self.anomalies) < _MAX_ANOMALIES_KEPT:
            self.anomalies.append(f"{self.name}: {what}: {key}")

    def on_add(self, obj: Any) -> None:
        key = meta_namespace_key(obj)
        self.adds += 1
        if key in self.state:
            self._anomaly("on_add of a key the handler holds", key)
        self.state[key] = _rv(obj)

    def on_update(self, old: Any, new: Any) -> None:
        key = meta_namespace_key(new)
        self.updates += 1
        seen = self.state.get(key)
        if seen is None:
            self._anomaly("on_update of a key the handler never saw", key)
        elif seen != _rv(old):
            self._anomaly(f"on_update whose old object (rv {_rv(old)}) is not rv {seen}", key)
        self.state[key] = _rv(new)

    def on_delete(self, obj: Any) -> None:
        key = meta_namespace_key(obj)
        self.deletes += 1
        if isinstance(obj, DeletedFinalStateUnknown):
            self.tombstones += 1
        if self.state.pop(key, None) is None:
            self._anomaly("on_delete of a key the handler never saw", key)

    def handler(self) -> HandlerFuncs:
        return HandlerFuncs(self.on_add, self.on_update, self.on_delete)


@dataclass
class Watched:
    """One informer under test, the scope it lists, and its handler view."""

    name: str
    informer: SharedIndexInformer
    resource: Resource
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    view: HandlerView = field(init=False)

    def __post_init__(self) -> None:
        self.view = HandlerView(self.name)
        self.informer.add_event_handler(self.view.handler())

    def cache(self) -> dict[str, str]:
        return {meta_namespace_key(o): _rv(o) for o in self.informer.indexer.list()}

    async def truth(self, admin: Any) -> dict[str, str]:
        """A fresh list with this informer's scope and selectors, through ``admin``."""
        query: dict[str, str] = {}
        if self.label_selector:
            query["labelSelector"] = self.label_selector
        if self.field_selector:
            query["fieldSelector"] = self.field_selector
        return await fresh_list(admin, self.resource, self.namespace, query)


async def fresh_list(
    admin: Any, resource: Resource, namespace: str | None, query: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``key -> resourceVersion`` of a consistent list (no ``resourceVersion``: from etcd)."""
    body = await request_json(
        admin, "GET", resource.path(namespace=namespace), query=dict(query or {})
    )
    return {meta_namespace_key(o): _rv(o) for o in body.get("items") or []}


@dataclass(frozen=True)
class Diff:
    """How a view differs from the truth: keys missing from it, keys it holds that the
    cluster does not (ghosts: lost deletes), keys at another resourceVersion."""

    missing: tuple[str, ...] = ()
    ghosts: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.missing or self.ghosts or self.stale)

    def describe(self, limit: int = 3) -> str:
        parts = []
        for label, keys in (
            ("missing", self.missing),
            ("ghost", self.ghosts),
            ("stale", self.stale),
        ):
            if keys:
                shown = ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        return "; ".join(parts) or "equal"


def diff(view: Mapping[str, str], truth: Mapping[str, str]) -> Diff:
    return Diff(
        missing=tuple(sorted(truth.keys() - view.keys())),
        ghosts=tuple(sorted(view.keys() - truth.keys())),
        stale=tuple(sorted(k for k in view.keys() & truth.keys() if view[k] != truth[k])),
    )
