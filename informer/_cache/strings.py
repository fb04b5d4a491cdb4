"""Shared strings: equal string values of cached objects held once, in this process.

A decoded object holds its own copy of every string value (orjson shares dict keys, not
values). Most values repeat across objects: namespaces, label and annotation values,
images, owner references, the defaults the API server fills in (``IfNotPresent``,
``ClusterFirst``, ``/dev/termination-log``...), and so do ints beyond CPython's cache of
small ones (ports, ``progressDeadlineSeconds: 600``). :func:`share_strings`, a transform,
replaces each by the one copy in a process-wide :class:`StringTable` (bench/RESULTS.md,
"Round 2 memory": 20,000 Deployments cache 4.1 KB each instead of 5.7, client-go 4.3 with
protobuf, 4.6 with JSON; the walk costs about one more decode per object received, 10 us
for a Deployment).

The table is mortal, as ``sys.intern`` is not on every interpreter (CPython 3.12 before
3.12.6 and free-threaded builds make interned strings immortal, so interning ever-new
values would leak): once it has doubled since the last time, the strings that only the
table still holds are dropped (:meth:`StringTable.prune`), so it holds about the distinct
strings alive in cached objects, at most twice that. ``metadata.uid`` and
``metadata.resourceVersion`` are never shared: they are unique to each object (and the
resourceVersion to each version of it), so sharing them would only grow the table.

Thread-safety: the table may be used from several threads (each lookup is one dict
operation; pruning works on a snapshot and a string acquired meanwhile stays valid, it
is only not shared with later ones).
"""

from __future__ import annotations

import sys
from typing import Any, Final

from .._meta.types import Obj

__all__ = ["SHARED_STRINGS", "StringTable", "share_strings"]

_NOT_SHARED: Final = frozenset({"uid", "resourceVersion"})
"""Keys of ``metadata`` whose values are unique to an object."""

_COMPACT_FROM: Final = 7
"""Dicts with more keys are rebuilt: orjson decodes a dict of 9 keys or more with the
layout for any keys (24-byte entries: 352 bytes at 9 keys, 632 at 11), ``dict(d.items())``
with the one for string keys (16: 272, 464), and a ``metadata`` left with 8 keys once
``managedFields`` is dropped keeps the layout it was decoded with."""


def _refcounts(table: dict[Any, Any]) -> list[tuple[int, Any]]:
    """Each key of ``table`` (its own value) with its reference count, as seen from here."""
    return [(sys.getrefcount(s), s) for s in list(table)]


def _table_only_refcount() -> int:
    """:func:`_refcounts`'s count of a string that only its table holds."""
    probe = "".join(("kube-informer", ":", "probe"))  # a fresh string, not interned
    table = {probe: probe}
    del probe
    return _refcounts(table)[0][0]


_TABLE_ONLY: Final = _table_only_refcount()


class StringTable:
    """One copy of each distinct string value seen (see the module docstring); dicts of
    8 keys or more are rebuilt on the way, to the smaller layout of string-keyed dicts.

    :param prune_at: the size at which the table is first pruned; later, whenever it
        has doubled since the last prune (never below ``prune_at``).
    """

    __slots__ = ("_ints", "_min_prune", "_prune_at", "_table")

    def __init__(self, *, prune_at: int = 4096) -> None:
        if prune_at < 1:
            raise ValueError("prune_at must be positive")
        self._table: dict[str, str] = {}
        self._ints: dict[int, int] = {}
        self._min_prune = prune_at
        self._prune_at = prune_at

    def __len__(self) -> int:
        """Strings and ints held."""
        return len(self._table) + len(self._ints)

    def share(self, obj: Obj) -> Obj:
        """Replace every string value in ``obj`` (at any depth, in dicts and lists; keys
        are left alone) by the table's equal string, adding those it lacks, and likewise
        every int CPython does not cache (outside -5..256) below ``metadata``'s own
        fields; returns ``obj``, changed in place, or an equal new dict when it has 8
        keys or more. ``metadata.uid`` and ``metadata.resourceVersion`` are kept."""
        table = self._table
        shared = table.setdefault
        shared_int = self._ints.setdefault
        stack: list[Any] = []
        push = stack.append
        if len(obj) > _COMPACT_FROM:
            obj = dict(obj.items())
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                obj[key] = shared(value, value)
            elif key == "metadata" and kind is dict:
                if len(value) > _COMPACT_FROM:
                    obj[key] = value = dict(value.items())
                for mkey, mvalue in value.items():
                    mkind = type(mvalue)
                    if mkind is str:
                        if mkey not in _NOT_SHARED:
                            value[mkey] = shared(mvalue, mvalue)
                    elif mkind is dict:
                        if len(mvalue) > _COMPACT_FROM:
                            value[mkey] = mvalue = dict(mvalue.items())
                        push(mvalue)
                    elif mkind is list:
                        push(mvalue)
            elif kind is dict:
                if len(value) > _COMPACT_FROM:
                    obj[key] = value = dict(value.items())
                push(value)
            elif kind is list:
                push(value)
        pop = stack.pop
        while stack:
            node = pop()
            if type(node) is dict:
                for key, value in node.items():
                    kind = type(value)
                    if kind is str:
                        node[key] = shared(value, value)
                    elif kind is dict:
                        if len(value) > _COMPACT_FROM:
                            node[key] = value = dict(value.items())
                        push(value)
                    elif kind is list:
                        push(value)
                    elif kind is int and (value > 256 or value < -5):
                        node[key] = shared_int(value, value)
            else:
                for i, value in enumerate(node):
                    kind = type(value)
                    if kind is str:
                        node[i] = shared(value, value)
                    elif kind is dict:
                        if len(value) > _COMPACT_FROM:
                            node[i] = value = dict(value.items())
                        push(value)
                    elif kind is list:
                        push(value)
                    elif kind is int and (value > 256 or value < -5):
                        node[i] = shared_int(value, value)
        if len(table) + len(self._ints) >= self._prune_at:
            self.prune()
        return obj

    def prune(self) -> int:
        """Drop the strings and ints nobody but the table holds; returns how many."""
        dropped = _drop_unused(self._table) + _drop_unused(self._ints)
        self._prune_at = max(self._min_prune, 2 * len(self))
        return dropped


def _drop_unused(table: dict[Any, Any]) -> int:
    dropped = 0
    for count, value in _refcounts(table):
        if count <= _TABLE_ONLY:
            table.pop(value, None)
            dropped += 1
    return dropped


SHARED_STRINGS: Final = StringTable()
"""The process's table, used by :func:`share_strings`."""


def share_strings(obj: Obj) -> Obj:
    """A transform: every string value of ``obj`` becomes the process's shared copy of
    it (:class:`StringTable`, :data:`SHARED_STRINGS`); returns ``obj``, changed in place.

    The object is equal to what it was; only its memory is smaller when other cached
    objects hold the same values. Compose it with another transform, after it, e.g.
    ``transform=lambda obj: share_strings(strip_managed_fields(obj))``.
    """
    return SHARED_STRINGS.share(obj)
