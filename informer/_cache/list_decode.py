"""``decode_list``: a List answer decoded one item at a time, each item prepared at once.

Why: a List is one JSON document. Decoded whole, every item is alive, at full size, before
the first is transformed; what the transform then drops (``managedFields``: ~40% of a
Deployment's decoded size) leaves holes spread over every pymalloc arena, so the process
keeps that memory (bench/RESULTS.md, "Memory per cached object": 2,000 Deployments cached
13 KB each after a list, 6.8 KB after a watch-list, which transforms each object as it
arrives). Decoding and preparing the items one after the other, the blocks an item's
transform frees are reused by the next item's decode, as on the watch path. It is also
faster (the working set stays in cache).

How: the items are cut out of the bytes without decoding them, at their boundaries
``},<prefix>`` where ``<prefix>`` is how the first item begins (up to the name of its
second key: ``{"metadata":{"name":`` for built-in kinds, ``{"apiVersion":"g/v","kind":``
for custom resources). The same bytes can occur inside an item (a nested list of objects
that start the same way), so each cut is *proved* by decoding it: a proper prefix of a
JSON object is never valid JSON, so a candidate that decodes is the item's true end, and
one that does not is skipped for the next. The List's other members (``kind``,
``apiVersion``, ``metadata``) are decoded first, from the bytes around ``"items":[...]``
(their validity is checked the same way). Anything unexpected (no ``"items":[``, another
layout, whitespace between items, more than :data:`MAX_FALSE_CUTS` candidates inside one
item, an item that is not an object) falls back to decoding the whole document (for the
items not yet prepared): the result is the same, only the memory benefit is lost for
that page. Bytes that are not JSON raise ``orjson.JSONDecodeError``, as ``orjson.loads``.

``prepare(list)`` is called once per document, before any item is decoded, with the List
(its ``items`` absent, empty or not yet prepared: it may read only ``kind`` and
``apiVersion``); it returns
the function each item goes through, in order, as soon as it is decoded (its result
replaces the item), or ``None`` to keep the items as decoded. An exception from that
function propagates at once (the page is lost, as when a transform fails on a whole
page).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Final, TypeAlias

import anyio.lowlevel
import orjson

from .._types import Obj

__all__ = [
    "MAX_FALSE_CUTS",
    "YIELD_EVERY_BYTES",
    "ItemFunc",
    "Prepare",
    "decode_list",
    "decode_list_async",
]

ItemFunc: TypeAlias = Callable[[Obj], Obj]
"""An item as decoded -> the item to keep."""

Prepare: TypeAlias = Callable[[Obj], ItemFunc | None]
"""The List (without its items) -> the function each item goes through (``None``: none)."""

MAX_FALSE_CUTS: Final = 16
"""Candidate boundaries inside one item tried before the rest is decoded whole."""

YIELD_EVERY_BYTES: Final = 64 * 1024
"""Bytes of items :func:`decode_list_async` decodes between two yields to the loop
(~0.2-1 ms of work; each yield costs a few microseconds)."""

_ITEMS: Final = b'"items":['
_WHITESPACE: Final = b" \t\r\n"
_MAX_PREFIX: Final = 256  # bytes of the first item searched for its second key
_LIST_KEYS: Final = frozenset({"kind", "apiVersion", "metadata", "items"})
_PREPARE_KEYS: Final = ("kind", "apiVersion")  # what a Prepare may read of the List


def decode_list(raw: bytes, prepare: Prepare) -> Any:
    """The decoded List ``raw`` with its items prepared (see the module docstring).

    Returns what ``orjson.loads(raw)`` would (a non-object is returned as decoded, no
    ``prepare`` call), except that the List's ``items`` went through ``prepare``'s
    function. Raises ``orjson.JSONDecodeError`` when ``raw`` is not JSON.
    """
    steps = _decode_steps(raw, prepare)
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


async def decode_list_async(raw: bytes, prepare: Prepare) -> Any:
    """:func:`decode_list`, yielding to the event loop after every
    :data:`YIELD_EVERY_BYTES` of items decoded.

    Why: the first list (``resourceVersion=0``) comes from the watch cache in one page
    whatever ``limit`` says; decoded in one call, 100,000 ConfigMaps held the loop for
    ~450 ms (bench/RESULTS.md, "Scaling curve"), long enough to miss probes and lease
    renewals. The result is the same; a page that falls back to a whole decode still
    decodes the rest in one call.
    """
    steps = _decode_steps(raw, prepare)
    checkpoint = anyio.lowlevel.checkpoint
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await checkpoint()


def _decode_steps(raw: bytes, prepare: Prepare) -> Generator[None, None, Any]:
    """:func:`decode_list` as a generator that pauses (yields ``None``) after every
    :data:`YIELD_EVERY_BYTES` of items decoded; its return value is the List."""
    layout = _layout(raw)
    if layout is None:
        return _whole(raw, prepare)
    envelope, start, end = layout
    each = prepare(envelope)
    items: list[Obj] = []
    if start == end:
        envelope["items"] = items
        return envelope
    sep = _separator(raw, start, end)
    if sep is None:
        return _whole(raw, prepare, envelope, each, items)
    loads = orjson.loads
    find = raw.find
    append = items.append
    decode_error = orjson.JSONDecodeError
    pos = start
    pause_at = start + YIELD_EVERY_BYTES
    while True:
        if pos >= pause_at:
            pause_at = pos + YIELD_EVERY_BYTES
            yield
        cut = find(sep, pos, end)
        false_cuts = 0
        while cut >= 0:
            try:
                obj = loads(raw[pos : cut + 1])  # a bytes copy: faster than a memoryview
                break
            except decode_error:
                false_cuts += 1
                if false_cuts > MAX_FALSE_CUTS:
                    return _whole(raw, prepare, envelope, each, items)
                cut = find(sep, cut + 1, end)
        else:
            try:  # the last item
                obj = loads(raw[pos:end])
            except decode_error:
                return _whole(raw, prepare, envelope, each, items)
        if type(obj) is not dict:
            return _whole(raw, prepare, envelope, each, items)
        append(obj if each is None else each(obj))
        if cut < 0:
            envelope["items"] = items
            return envelope
        pos = cut + 2


def _layout(raw: bytes) -> tuple[Obj, int, int] | None:
    """The List with empty items, and where the content of its items array starts and
    ends (``raw[start:end]``, whitespace trimmed); ``None`` unless the layout is one of
    the API server's two, with exactly ``kind``, ``apiVersion``, ``metadata`` and
    ``items``:

    - Go structs (built-in kinds): ``{"kind":...,"apiVersion":...,"metadata":{...},
      "items":[...]}``, items last;
    - unstructured (custom resources, keys sorted): ``{"apiVersion":...,"items":[...],
      "kind":...,"metadata":{...}}``.
    """
    at = raw.find(_ITEMS)
    if at < 0:
        return None
    start = at + len(_ITEMS)
    stop = len(raw)
    while stop > start and raw[stop - 1] in _WHITESPACE:
        stop -= 1
    if raw.endswith(b"]}", start, stop):
        close = stop - 2
    else:
        # The last one: "kind" follows "items" and no string can hold this sequence, so
        # none occurs in the List's own kind or metadata.
        close = raw.rfind(b'],"kind":"', start, stop)
        if close < 0:
            return None
    end = close
    while end > start and raw[end - 1] in _WHITESPACE:
        end -= 1
    while start < end and raw[start] in _WHITESPACE:
        start += 1
    try:
        envelope = orjson.loads(raw[: at + len(_ITEMS)] + raw[close:stop])
    except orjson.JSONDecodeError:
        return None
    # Valid with an empty items array: the "items":[ found is the top level's (one
    # nested deeper would leave its object unclosed) and is not repeated.
    if type(envelope) is not dict or envelope.keys() != _LIST_KEYS or envelope["items"] != []:
        return None
    return envelope, start, end


def _separator(raw: bytes, start: int, end: int) -> bytes | None:
    """``},`` and the first item's bytes up to its second key's ``":``, or None."""
    if raw[start : start + 2] != b'{"':
        return None
    limit = min(end, start + _MAX_PREFIX)
    first = raw.find(b'":', start + 2, limit)
    if first < 0:
        return None
    second = raw.find(b'":', first + 2, limit)
    return b"}," + raw[start : (second if second >= 0 else first) + 2]


def _whole(
    raw: bytes,
    prepare: Prepare,
    envelope: Obj | None = None,
    each: ItemFunc | None = None,
    done: list[Obj] | None = None,
) -> Any:
    """Decode ``raw`` whole. ``done``: the first items of this document, already through
    ``each`` (asked of ``prepare`` with ``envelope``); the rest follow them.

    Should the whole List's ``kind`` or ``apiVersion`` differ from ``envelope``'s (bytes
    no API server writes), the items are all prepared anew: ``done`` ones pass twice.
    """
    page = orjson.loads(raw)
    if type(page) is not dict:
        return page
    if envelope is None or any(page.get(k) != envelope.get(k) for k in _PREPARE_KEYS):
        each, done = prepare(page), None
    items = page.get("items")
    if type(items) is not list:
        return page
    rest = items[len(done) :] if done else items
    if each is not None:
        rest = [each(obj) for obj in rest]
    page["items"] = done + rest if done else rest
    return page
