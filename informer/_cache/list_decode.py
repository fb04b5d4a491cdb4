"""``decode_list``: a List answer decoded one item at a time, each item prepared at once.

Why: a List is one JSON document. Decoded whole, every item is alive, at full size, before
the first is transformed; what the transform then drops (``managedFields``: ~40% of a
Deployment's decoded size) leaves holes spread over every pymalloc arena, so the process
keeps that memory (bench/RESULTS.md, "Round 2 memory": 20,000 Deployments cached 11.55
KB each when the list was decoded whole, 5.87 KB item by item). Decoding and preparing
the items one after the other, the blocks an item's transform frees are reused by the
next item's decode, as on the watch path. It is also faster (the working set stays in
cache).

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

Streaming (:class:`ListStreamDecoder`, :func:`decode_list_chunks`; the list path of
``ApiListerWatcher``): the same cuts and proofs, made while the body arrives, so that
the decode overlaps the API server's encoding and sending (~45% of a large sync's wall
time, bench/RESULTS.md "Round 2 sync and throughput") and the whole raw body of a
built-in kind's List is never held.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Generator
from typing import Any, Final, TypeAlias

import anyio.lowlevel
import orjson

from .._meta.types import Obj

__all__ = [
    "MAX_FALSE_CUTS",
    "YIELD_EVERY_BYTES",
    "ItemFunc",
    "ListStreamDecoder",
    "Prepare",
    "decode_list",
    "decode_list_chunks",
]

ItemFunc: TypeAlias = Callable[[Obj], Obj]
"""An item as decoded -> the item to keep."""

Prepare: TypeAlias = Callable[[Obj], ItemFunc | None]
"""The List (without its items) -> the function each item goes through (``None``: none)."""

MAX_FALSE_CUTS: Final = 16
"""Candidate boundaries inside one item tried before the rest is decoded whole."""

YIELD_EVERY_BYTES: Final = 64 * 1024
"""Bytes of items a buffered List's decode (:func:`decode_list_chunks`, at the end)
decodes between two yields to the loop (~0.2-1 ms of work; each yield costs a few
microseconds). The first list (``resourceVersion=0``) comes from the watch cache in one
page whatever ``limit`` says; decoded in one call, 100,000 ConfigMaps held the loop for
~450 ms (bench/RESULTS.md, "Scaling curve"), long enough to miss probes and leases."""

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


async def _run_steps(steps: Generator[None, None, Any]) -> Any:
    """Drive a decoding generator to its return value, with a checkpoint at each pause."""
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


# ------------------------------------------------------------------ streaming decode


async def decode_list_chunks(chunks: AsyncIterable[bytes], prepare: Prepare) -> Any:
    """:func:`decode_list` of the concatenation of ``chunks``, decoding the items while
    the chunks arrive (:class:`ListStreamDecoder`).

    Why: a List's body streams in over seconds (the API server encodes as it sends);
    decoding only after its last byte adds the whole decode to the sync's wall time, and
    holds the whole raw body. Yields to the loop after every chunk (the reader bounds a
    chunk to :data:`YIELD_EVERY_BYTES`) and while a buffered body is decoded at the end.
    """
    decoder = ListStreamDecoder(prepare)
    checkpoint = anyio.lowlevel.checkpoint
    async for chunk in chunks:
        decoder.feed(chunk)
        await checkpoint()
    return await _run_steps(decoder.finish())


_HEAD: Final = 0  # buffering the whole body until "items":[ is found
_STREAM: Final = 1  # Go struct layout: items decoded as they arrive
_BUFFER: Final = 2  # another layout: the whole body is buffered, decoded at the end


class ListStreamDecoder:
    """:func:`decode_list`, fed the body in chunks: the items are decoded and prepared
    (in order, each once) as soon as their bytes are in.

    :meth:`feed` each chunk as it arrives, then :meth:`finish` (a generator pausing after
    every :data:`YIELD_EVERY_BYTES` of items decoded; its return value is the page, what
    ``decode_list(b"".join(chunks), prepare)`` returns). Not reusable.

    Items stream for the Go struct layout (built-in kinds: ``kind``, ``apiVersion`` and
    ``metadata`` all *before* ``"items":[``), proved as :func:`decode_list` proves it (the
    head, closed by ``]}``, decodes to exactly those four keys); ``prepare`` is called
    then, once. The unstructured layout (custom resources: ``kind`` and ``metadata``
    after the items, unknown until the end) and any other head buffer the whole body and
    decode it at the end with :func:`decode_list`'s steps. When something unexpected
    shows once items were decoded (whitespace between items, more than
    :data:`MAX_FALSE_CUTS` false cuts, a first item that is not an object, a tail other
    than ``]}``), the rest of the body is buffered and decoded at the end as a whole
    document in which each item already decoded stands as ``0`` (the head is kept for
    that): the same result, the memory benefit lost for the rest. Otherwise it holds
    the head and the bytes of at most one partly received item (plus one chunk).
    """

    __slots__ = (
        "_buf",
        "_each",
        "_envelope",
        "_false_cuts",
        "_head",
        "_items",
        "_prepare",
        "_rest",
        "_scan",
        "_sep",
        "_state",
    )

    def __init__(self, prepare: Prepare) -> None:
        self._prepare = prepare
        self._state = _HEAD
        self._buf = bytearray()  # _HEAD, _BUFFER: the whole body; _STREAM: from the
        # first byte not decoded yet
        self._head = b""  # _STREAM: the body up to and including "items":[
        self._envelope: Obj = {}
        self._each: ItemFunc | None = None
        self._items: list[Obj] = []
        self._sep = b""  # _STREAM: the separator, once known
        self._rest = False  # _STREAM: buffer the rest, decode it whole at the end
        self._scan = 0  # where the next search (for "items":[ or a separator) starts
        self._false_cuts = 0  # candidates refuted inside the current item

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body; decode and prepare every item now complete.

        An exception from ``prepare`` or the item function propagates (the decoder is
        then unusable).
        """
        self._buf += chunk
        if self._state == _HEAD:
            self._read_head()
        if self._state == _STREAM and not self._rest:
            if not self._sep:
                self._find_separator()
            if self._sep:
                self._decode_items()

    def finish(self) -> Generator[None, None, Any]:
        """The page, once the whole body was fed (see the class docstring). Raises
        ``orjson.JSONDecodeError`` when the body is not JSON."""
        buf = self._buf
        if self._state != _STREAM:
            return (yield from _decode_steps(bytes(buf), self._prepare))
        stop = len(buf)
        while stop > 0 and buf[stop - 1] in _WHITESPACE:
            stop -= 1
        envelope = self._envelope
        if not self._rest and buf.endswith(b"]}", 0, stop):
            if stop == 2 and not self._items:  # an empty items array
                envelope["items"] = self._items
                return envelope
            if self._sep:
                try:
                    obj = orjson.loads(buf[: stop - 2])  # the last item
                except orjson.JSONDecodeError:
                    obj = None
                if type(obj) is dict:
                    each = self._each
                    self._items.append(obj if each is None else each(obj))
                    envelope["items"] = self._items
                    return envelope
        return self._whole_rest()

    # ------------------------------------------------------------------ internals

    def _read_head(self) -> None:
        """Find ``"items":[`` and decide the layout (-> _STREAM or _BUFFER)."""
        buf = self._buf
        at = buf.find(_ITEMS, max(0, self._scan - len(_ITEMS) + 1))
        if at < 0:
            self._scan = len(buf)
            return
        start = at + len(_ITEMS)
        try:
            envelope = orjson.loads(buf[:start] + b"]}")
        except orjson.JSONDecodeError:
            envelope = None
        # Valid with the items array closed at once: this "items":[ is the top level's.
        if type(envelope) is not dict or envelope.keys() != _LIST_KEYS:
            self._state = _BUFFER  # the unstructured layout (kind after items), or other
            return
        self._head = bytes(buf[:start])
        del buf[:start]
        self._envelope = envelope
        self._each = self._prepare(envelope)
        self._state = _STREAM
        self._scan = 0

    def _find_separator(self) -> None:
        """Set ``_sep`` from the first item's bytes once they are in, or ``_rest``."""
        buf = self._buf
        if not buf or buf[0] == 0x5D:  # "]": an empty items array, finish() checks it
            return
        if not b'{"'.startswith(bytes(buf[:2])):
            self._rest = True  # whitespace, or an item that is not an object
            return
        limit = min(len(buf), _MAX_PREFIX)
        first = buf.find(b'":', 2, limit)
        if limit < _MAX_PREFIX and (first < 0 or buf.find(b'":', first + 2, limit) < 0):
            return  # wait for the second key (decode_list searches _MAX_PREFIX bytes)
        sep = _separator(bytes(buf[:limit]), 0, limit)
        if sep is None:
            self._rest = True
        else:
            self._sep = sep

    def _decode_items(self) -> None:
        buf = self._buf
        sep = self._sep
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        each = self._each
        append = self._items.append
        find = buf.find
        pos = 0
        scan = self._scan
        while True:
            cut = find(sep, scan)
            if cut < 0:
                break
            try:
                obj = loads(buf[pos : cut + 1])
            except decode_error:
                self._false_cuts += 1
                if self._false_cuts > MAX_FALSE_CUTS:
                    self._rest = True
                    break
                scan = cut + 1
                continue
            if type(obj) is not dict:
                self._rest = True
                break
            append(obj if each is None else each(obj))
            self._false_cuts = 0
            pos = scan = cut + 2
        if pos:
            del buf[:pos]
            scan -= pos
        self._scan = max(scan, len(buf) - len(sep) + 1, 0)

    def _whole_rest(self) -> Any:
        """Decode the head, a ``0`` for each item decoded, and the rest, as one document;
        the decoded items take their places (as :func:`_whole` does)."""
        done = self._items
        count = len(done)
        page = orjson.loads(self._head + _PLACEHOLDER * count + self._buf)
        if type(page) is not dict:
            return page
        items = page.get("items")
        if type(items) is not list:
            return page
        envelope, each = self._envelope, self._each
        placed = len(items) >= count and all(type(x) is int and x == 0 for x in items[:count])
        if not placed:  # another "items" array won (a repeated key): decoded ones are lost
            done, count = [], 0
        if not placed or any(page.get(k) != envelope.get(k) for k in _PREPARE_KEYS):
            each = self._prepare(page)
            if done and each is not None:
                done = [each(obj) for obj in done]  # prepared twice: bytes no server writes
        rest = items[count:]
        if each is not None:
            rest = [each(obj) for obj in rest]
        page["items"] = done + rest if done else rest
        return page


_PLACEHOLDER: Final = b"0,"
