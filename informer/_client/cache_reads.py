"""Reads served from a factory's informer caches, as controller-runtime's cache reader,
including caches scoped by selectors, never with a false ``NotFound``.

Which reads are cached (``cached=True``, the default; ``cached=False`` always asks the
API server). "An informer" is one the client's factory already has (nothing here creates
or starts one), that has synced (before that its store is incomplete), of the same
group, version and plural, whose namespace is the request's or all namespaces:

================================= ==============================================================
read                              served from
================================= ==============================================================
``get(name)``                     the caches' common answer: the object they hold, or
                                  ``NotFound`` when an informer without selectors lacks it
                                  and none holds it; the API server when only selector
                                  caches lack it (that says nothing about its existence),
                                  or when the caches disagree (below)
``list()`` / ``list(selectors)``  an informer whose selectors the request's imply: every term
                                  of its label (field) selector is a term of the request's,
                                  and the request's other field terms are on
                                  ``metadata.name`` / ``metadata.namespace``; the request's
                                  selectors are then applied to its cache. Else the API server
``list(namespace=None)``          as above, from an all-namespaces informer only
================================= ==============================================================

Among several informers, those without selectors are preferred, then the namespace's own
over an all-namespaces one. Every informer watches on its own connection, so two may be
at different points of the object's history: a ``get`` consults them all and asks the
API server when they disagree (different resourceVersions, or one lacking an object that
its scope would hold: it has seen a deletion the other has not, or lags behind a
creation). A reconcile enqueued by one informer's event thus never reads an older state
from another (a ``create_or_update`` after a deletion seen by the watch that enqueued it
would otherwise find the deleted object in a lagging cache and send nothing).

A metadata-only informer never serves a read (its objects lack everything but
``metadata``). controller-runtime blocks a read until the cache syncs and answers a
selector-scoped cache's miss with ``NotFound``; answering from the API server instead
never blocks, is never staler than the cache, and never reports an existing object
missing.

Objects are deep-copied out of the store (controller-runtime's default, without
``UnsafeDisableDeepCopy``): the caller may mutate and write back what it read without
corrupting the cache shared with every handler and lister.
"""

from __future__ import annotations

import builtins
import copy
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import orjson

from .._meta.labels import parse_label_selector
from .._meta.objects import resource_version
from .._meta.resource import Resource
from .._meta.types import Obj

if TYPE_CHECKING:
    from .._cache.factory import InformerScope, SharedInformerFactory
    from .._cache.informer import SharedIndexInformer

__all__ = [
    "cached_get",
    "cached_list",
    "deep_copy",
    "field_matcher",
    "label_selector_query",
    "list_source",
    "read_sources",
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


def read_sources(
    factory: SharedInformerFactory | None, resource: Resource, namespace: str | None
) -> list[InformerScope]:
    """The synced informers of ``factory`` whose caches hold objects of ``resource`` in
    ``namespace``, best first (the module docstring's order)."""
    if factory is None:
        return []
    scopes = factory.informers_covering(resource, namespace=namespace)
    return [scope for scope in scopes if scope.informer.has_synced()]


def cached_get(
    sources: Sequence[InformerScope], name: str, *, namespace: str | None
) -> tuple[Obj | None, bool]:
    """A copy of the cached object ``namespace/name`` (or ``name``) and whether the
    caches' answer is final: ``(obj, True)`` when every cache of ``sources`` that holds
    it holds that resourceVersion and none that would hold it lacks it; ``(None, True)``
    when an informer without selectors lacks it and none holds it (it does not exist);
    ``(None, False)`` otherwise: only selector-scoped caches lack it, or the caches
    disagree (ask the API server)."""
    found: Obj | None = None
    lacking: list[InformerScope] = []
    for scope in sources:
        obj = scope.informer.lister().get(name, namespace=namespace)
        if obj is None:
            lacking.append(scope)
        elif found is None:
            found = obj
        elif resource_version(obj) != resource_version(found):
            return None, False  # two caches at different points of its history
    if found is None:
        return None, any(scope.complete for scope in lacking)
    if any(_would_hold(scope, found) for scope in lacking):
        return None, False  # one cache saw a deletion (or lags a creation) the other did not
    return deep_copy(found), True


def _would_hold(scope: InformerScope, obj: Obj) -> bool:
    """Whether ``scope``'s selectors select ``obj`` (a field selector this module cannot
    evaluate counts as selecting it: the caller then asks the API server)."""
    if scope.complete:
        return True
    if scope.label_selector:
        labels = obj.get("metadata", _MISSING).get("labels") or {}
        if not parse_label_selector(scope.label_selector)(labels):
            return False
    if scope.field_selector:
        match = field_matcher(scope.field_selector)
        return match is None or match(obj)
    return True


def list_source(
    sources: Sequence[InformerScope],
    *,
    label_selector: str | Mapping[str, str] | None,
    field_selector: str | None,
) -> tuple[SharedIndexInformer, Callable[[Obj], bool] | None] | None:
    """The first of ``sources`` whose cache holds every object the request selects (its
    selectors' terms are all the request's), with the local predicate of the request's
    remaining field terms; ``None`` when none does (ask the API server)."""
    labels = _label_terms(label_selector)
    fields = _field_terms(field_selector)
    for scope in sources:
        if not _label_terms(scope.label_selector) <= labels:
            continue
        informer_fields = _field_terms(scope.field_selector)
        if not informer_fields <= fields:
            continue
        rest = fields - informer_fields
        match = field_matcher(",".join(sorted(rest))) if rest else None
        if rest and match is None:
            continue
        return scope.informer, match
    return None


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


_SPACE = re.compile(r"\s+")
_SET = re.compile(r"\(([^)]*)\)")


def _label_terms(selector: str | Mapping[str, str] | None) -> frozenset[str]:
    """A label selector's terms in one spelling (``k==v`` as ``k=v``, set values sorted),
    for comparing two selectors term by term."""
    if not selector:
        return frozenset()
    if isinstance(selector, Mapping):
        return frozenset(f"{k}={v}" for k, v in selector.items())
    return frozenset(_normalized(t) for t in _split_terms(selector))


def _field_terms(selector: str | None) -> frozenset[str]:
    if not selector:
        return frozenset()
    return frozenset(_normalized(t) for t in selector.split(",") if t.strip())


def _normalized(term: str) -> str:
    term = _SPACE.sub("", term).replace("==", "=")
    return _SET.sub(lambda m: "(" + ",".join(sorted(m.group(1).split(","))) + ")", term)


def _split_terms(selector: str) -> list[str]:
    """Comma-separated terms, the commas of ``in (a,b)`` sets excluded."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return [t for t in terms if t.strip()]


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
