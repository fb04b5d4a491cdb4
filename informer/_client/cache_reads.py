"""Reads served from a factory's informer caches, as controller-runtime's cache reader.

A read is served from the cache when the factory already has an informer that caches
every object of that resource in that namespace (no selectors; an all-namespaces informer
covers every namespace: :meth:`~informer.SharedInformerFactory.find_informer`) and that
informer has synced. Nothing here creates or starts an informer. Before its first sync
an informer's store is incomplete, so the read goes to the API server instead
(controller-runtime blocks until the cache syncs; answering from the API server never
blocks and is never staler than the cache).

Objects are deep-copied out of the store (controller-runtime's default, without
``UnsafeDisableDeepCopy``): the caller may mutate and write back what it read without
corrupting the cache shared with every handler and lister.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import orjson

from .._meta.labels import parse_label_selector
from .._meta.resource import Resource
from .._meta.types import Obj

if TYPE_CHECKING:
    from .._cache.factory import SharedInformerFactory
    from .._cache.informer import SharedIndexInformer

__all__ = [
    "cached_get",
    "cached_list",
    "covering_informer",
    "deep_copy",
    "field_matcher",
    "label_selector_query",
]

_MISSING: Obj = {}


def deep_copy(obj: Obj) -> Obj:
    """A deep copy of a JSON object: an orjson round trip (several times faster than
    ``copy.deepcopy`` on decoded API objects), or ``copy.deepcopy`` when a transform
    put something JSON cannot hold in a cached object."""
    try:
        copied: Obj = orjson.loads(orjson.dumps(obj))
    except orjson.JSONEncodeError:
        return copy.deepcopy(obj)
    return copied


def covering_informer(
    factory: SharedInformerFactory | None, resource: Resource, namespace: str | None
) -> SharedIndexInformer | None:
    """The synced informer of ``factory`` caching all of ``resource`` in ``namespace``."""
    if factory is None:
        return None
    informer = factory.find_informer(resource, namespace=namespace)
    if informer is None or not informer.has_synced():
        return None
    return informer


def cached_get(informer: SharedIndexInformer, name: str, *, namespace: str | None) -> Obj | None:
    """A copy of the cached object ``namespace/name`` (or ``name``), or ``None``."""
    obj = informer.lister().get(name, namespace=namespace)
    return None if obj is None else deep_copy(obj)


def cached_list(
    informer: SharedIndexInformer,
    *,
    namespace: str | None,
    label_selector: str | Mapping[str, str] | None,
    field_match: Callable[[Obj], bool] | None,
) -> builtins.list[Obj]:
    """Copies of the cached objects in ``namespace`` matching the selectors."""
    objs = informer.lister().list(namespace=namespace, label_selector=label_selector)
    if field_match is not None:
        objs = [o for o in objs if field_match(o)]
    return [deep_copy(o) for o in objs]


_FIELDS: Mapping[str, Callable[[Obj], str]] = {
    "metadata.name": lambda o: str(o.get("metadata", _MISSING).get("name") or ""),
    "metadata.namespace": lambda o: str(o.get("metadata", _MISSING).get("namespace") or ""),
}


def field_matcher(selector: str) -> Callable[[Obj], bool] | None:
    """A local predicate for a field selector on ``metadata.name`` / ``metadata.namespace``
    only (``=``, ``==``, ``!=`` terms, comma-separated), or ``None`` when the selector
    names any other field: the API server must evaluate that one (every resource
    supports its own fields), so the read goes there."""
    terms: list[tuple[Callable[[Obj], str], str, bool]] = []
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        op = next((op for op in ("!=", "==", "=") if op in term), None)
        if op is None:
            return None
        field, _, value = term.partition(op)
        getter = _FIELDS.get(field.strip())
        if getter is None:
            return None
        terms.append((getter, value.strip(), op != "!="))
    return lambda obj: all((get(obj) == value) is equal for get, value, equal in terms)


def label_selector_query(selector: str | Mapping[str, str]) -> str:
    """A label selector as the API server's query parameter (a mapping is ``k=v,...``);
    the string form is validated here so the cache and the API accept the same ones."""
    if isinstance(selector, Mapping):
        return ",".join(f"{k}={v}" for k, v in selector.items())
    parse_label_selector(selector)
    return selector
