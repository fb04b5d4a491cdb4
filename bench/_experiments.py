"""Proposed hot-path changes to ``informer/``, applied by monkeypatching in a peer process
(``python -m bench._peer ours --patch NAME``) so that their gain is measured in the same
run as the code as it stands. Nothing here is imported by the library.

``yield-16k``: ``_WatchEventStream.__anext__`` yields to the event loop once per 16 KiB
of decoded watch lines. Without it the reflector decodes a whole read (aiohttp hands
over up to 256 KiB, ~130 Deployment events) into the DeltaFIFO before the processor and
the listeners run; the previous versions of those objects are freed only then, so the
cyclic GC's generation-0 count (allocations minus deallocations, floored at 0) runs
ahead by ~100 containers per Deployment, triggering ~5x more collections, promoting the
queued objects, and so ~3x more full collections of the whole cache.
"""

from __future__ import annotations

from typing import Any

import anyio.lowlevel
import orjson

YIELD_BYTES = 16 * 1024


def apply(name: str) -> None:
    for part in name.split(","):
        if part == "yield-16k":
            _patch_yield(YIELD_BYTES)
        elif part == "early-transform":
            _patch_early_transform()
        else:
            raise SystemExit(f"unknown patch {part!r}")


def _patch_early_transform() -> None:
    """With watch-list, run the informer's transform on each initial object as it is
    decoded, not in ``DeltaFIFO.replace`` once all of them are alive. The first list is
    served from the watch cache in one page whatever ``limit`` says, so stripping after
    the fact leaves the dropped managedFields as holes spread over every pymalloc arena:
    RSS does not go down. Stripped one by one, the next object's decode reuses them.
    (``replace`` transforms again: the transform is idempotent.)"""
    from informer import _reflector

    reflector_cls: Any = _reflector.Reflector
    original = reflector_cls._consume_initial

    async def _consume_initial(self: Any, events: Any) -> None:
        transform: Any = getattr(self._store, "_transform", None)
        if transform is None:
            return await original(self, events)  # type: ignore[no-any-return]

        class Transformed:
            def __aiter__(self) -> Any:
                return self

            async def __anext__(self) -> Any:
                event = await events.__anext__()
                if event.get("type") == "ADDED" and type(event.get("object")) is dict:
                    event["object"] = transform(event["object"])
                return event

        return await original(self, Transformed())  # type: ignore[no-any-return]

    reflector_cls._consume_initial = _consume_initial


def _patch_yield(budget_bytes: int) -> None:
    from informer import _listwatch

    stream_cls: Any = _listwatch._WatchEventStream
    decoded: dict[int, int] = {}  # the class has __slots__: keep the budget aside

    async def __anext__(self: Any) -> Any:
        # _WatchEventStream.__anext__ as it stands, plus the budget (lines marked NEW).
        key = id(self)
        if decoded.get(key, 0) >= budget_bytes:  # NEW: before anything is consumed,
            decoded[key] = 0  # so a cancellation here loses nothing
            await anyio.lowlevel.checkpoint()
        while True:
            pos = self._pos
            nl = self._chunk.find(b"\n", pos)
            if nl >= 0:
                self._pos = nl + 1
                if self._buf:
                    self._buf += self._view[pos:nl]
                    if (buffered := self._decode_buffered()) is not None:
                        return buffered
                    continue
                if nl == pos:
                    continue
                decoded[key] = decoded.get(key, 0) + nl - pos  # NEW
                line = self._view[pos:nl]
                try:
                    event: Any = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    if bytes(line).isspace():
                        continue
                    raise self._fail(f"watch line is not JSON: {exc}", line) from exc
                if type(event) is dict and "type" in event and "object" in event:
                    return event
                raise self._fail("watch line is not a watch event (no 'type' or 'object')", line)
            await self._next_chunk()

    stream_cls.__anext__ = __anext__
