"""The watch stream decoder: the body of a watch response, one JSON event per line, turned
into an async iterator of decoded events (:class:`WatchEventStream`).

It reads a :class:`ChunkReader` (``informer._rest.stream.ResponseStream``, or any source
of byte chunks in tests) and is the ``ApiListerWatcher``'s watch path; the list path's
decoder is :mod:`informer._cache.list_decode`. Events are yielded as ``orjson`` decoded
them (the consumer owns them); a line that is not a watch event raises
:class:`~informer.WatchDecodeError`, one longer than :data:`MAX_WATCH_EVENT_BYTES`
:class:`~informer.WatchEventTooLarge`, each after every complete event before it was
yielded.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import anyio.lowlevel
import orjson

from .._exceptions import WatchDecodeError, WatchEventTooLarge
from .._meta.types import WatchEvent

__all__ = ["MAX_WATCH_EVENT_BYTES", "ChunkReader", "WatchEventStream"]

MAX_WATCH_EVENT_BYTES: Final = 16 * 1024 * 1024
"""The longest watch line (one event) accepted, as client-go: k8s.io/apimachinery
``pkg/runtime/serializer/streaming/streaming.go`` ``NewDecoder`` grows its frame buffer up
to ``maxBytes: 16 * 1024 * 1024`` and then fails with ``ErrObjectTooLarge`` ("object to
decode was longer than maximum allowed size"), which client-go's ``StreamWatcher`` turns
into an ``ERROR`` event, so its Reflector ends the watch and relists after a backoff.
Objects are far smaller (etcd's request limit is 1.5 MiB by default)."""

# Decoded bytes after which the event iterator yields to the loop once (bench/RESULTS.md:
# 16 KiB was the best budget: 3.7x the Deployment throughput of no yield with the GC on).
_YIELD_EVERY_BYTES: Final = 16384


class ChunkReader(Protocol):
    """What the decoder reads: the part of ``informer._rest.stream.ResponseStream`` it uses."""

    @property
    def eof(self) -> bool:
        """True once the server ended the body; False while open or when our side closed
        it (a partial last line is then only what we cut off, and is dropped)."""
        ...

    async def read_chunk(self) -> bytes:
        """The next bytes (any size, not aligned to lines); ``b""`` at the end. Failures
        propagate through the decoder unchanged (``ConnectionFailed``)."""
        ...


class WatchEventStream:
    """Async iterator of the decoded events of one watch response.

    The hot path, per event: one ``bytes.find`` of the next ``\\n`` in the current chunk
    and one ``orjson.loads`` of a zero-copy ``memoryview`` slice of it. Lines are decoded
    lazily, one per ``__anext__``: a chunk (up to megabytes of events) is never decoded
    ahead, so only the events the consumer keeps stay alive (holding a chunk's worth of
    decoded dicts would make the cyclic GC walk them over and over). Only a line spanning
    chunks is assembled, in a ``bytearray``, which may not grow past
    :data:`MAX_WATCH_EVENT_BYTES` (``WatchEventTooLarge``); a line within one chunk is
    bounded by that chunk, already in memory. Events are yielded as decoded, never
    copied or wrapped.

    After an error (``WatchDecodeError``, ``WatchEventTooLarge`` or what ``read_chunk``
    raised) the iterator is finished: further ``__anext__`` calls raise
    ``StopAsyncIteration``. One consumer at a time.
    """

    __slots__ = ("_buf", "_chunk", "_decoded", "_error", "_finished", "_pos", "_stream", "_view")

    def __init__(self, stream: ChunkReader) -> None:
        self._stream = stream
        self._chunk = b""
        self._view = memoryview(b"")
        self._pos = 0
        self._buf = bytearray()
        self._finished = False
        self._decoded = 0
        self._error: Exception | None = None  # raised by the next call (next_batch)

    def __aiter__(self) -> WatchEventStream:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._decoded >= _YIELD_EVERY_BYTES:
            # Let the processor and the handlers run (and free what they are done with)
            # before decoding more: without it a whole chunk's events are alive at once,
            # and the cyclic GC, triggered by the allocation burst, walks them repeatedly.
            # Before anything is consumed, so a cancellation here loses nothing.
            self._decoded = 0
            await anyio.lowlevel.checkpoint()
        while True:
            pos = self._pos
            nl = self._chunk.find(b"\n", pos)
            if nl >= 0:
                self._pos = nl + 1
                self._decoded += nl - pos
                if self._buf:
                    self._buf += self._view[pos:nl]
                    if len(self._buf) > MAX_WATCH_EVENT_BYTES:
                        raise self._too_large()
                    if (buffered := self._decode_buffered()) is not None:
                        return buffered
                    continue
                if nl == pos:
                    continue  # a blank line
                line = self._view[pos:nl]
                try:
                    event: Any = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    if bytes(line).isspace():
                        continue
                    raise self._fail(f"watch line is not JSON: {exc}", line) from exc
                if type(event) is dict and "type" in event and "object" in event:
                    return event  # type: ignore[return-value]
                raise self._fail("watch line is not a watch event (no 'type' or 'object')", line)
            await self._next_chunk()

    async def next_batch(self) -> list[WatchEvent]:
        """The next events, decoded together: those of the current chunk, up to
        :data:`_YIELD_EVERY_BYTES` of lines (at least one event), after one yield to the
        loop; ``[]`` at the end of the body. The batch form of ``__anext__`` for a
        consumer that applies each batch at once (the Reflector): one call per batch
        instead of one per event, and no more events alive at a time than between two
        of ``__anext__``'s yields. Errors are raised as by ``__anext__``, after the
        events before the bad line were returned."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        await anyio.lowlevel.checkpoint()
        batch: list[WatchEvent] = []
        append = batch.append
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        budget = _YIELD_EVERY_BYTES
        while True:
            # The current chunk's complete lines, with the position in a local.
            chunk, view, pos = self._chunk, self._view, self._pos
            find = chunk.find
            if not self._buf:
                while budget > 0:
                    nl = find(b"\n", pos)
                    if nl < 0:
                        break
                    if nl == pos:
                        pos += 1
                        continue  # a blank line
                    line = view[pos:nl]
                    try:
                        event: Any = loads(line)
                    except decode_error as exc:
                        self._pos = nl + 1
                        if bytes(line).isspace():
                            pos = nl + 1
                            continue
                        return self._bad_line(batch, f"watch line is not JSON: {exc}", line)
                    if type(event) is not dict or "type" not in event or "object" not in event:
                        self._pos = nl + 1
                        return self._bad_line(
                            batch, "watch line is not a watch event (no 'type' or 'object')", line
                        )
                    append(event)  # type: ignore[arg-type]
                    budget -= nl - pos
                    pos = nl + 1
                self._pos = pos
                if budget <= 0:
                    self._decoded = 0
                    return batch
            elif find(b"\n", pos) >= 0:
                # A line begun in an earlier chunk: the slow path decodes it.
                try:
                    append(await self.__anext__())
                except StopAsyncIteration:
                    return batch
                continue
            if batch:
                self._decoded = 0
                return batch
            try:
                await self._next_chunk()
            except StopAsyncIteration:
                return batch

    def _bad_line(
        self, batch: list[WatchEvent], message: str, line: memoryview
    ) -> list[WatchEvent]:
        """``next_batch`` met a line that is not a watch event: return the events
        before it, the error at the next call (at once when there are none)."""
        error = self._fail(message, line)
        if not batch:
            raise error
        self._error = error
        return batch

    async def _next_chunk(self) -> None:
        """Keep the unfinished line; read the next chunk, or end at the end of the body."""
        if self._pos < len(self._chunk):
            self._buf += self._view[self._pos :]
            if len(self._buf) > MAX_WATCH_EVENT_BYTES:
                raise self._too_large()
        self._chunk, self._view, self._pos = b"", memoryview(b""), 0
        if self._finished:
            raise StopAsyncIteration
        try:
            chunk = await self._stream.read_chunk()
        except Exception:
            self._finished = True
            self._buf.clear()
            raise
        if chunk:
            self._chunk, self._view = chunk, memoryview(chunk)
            return
        self._finished = True
        # The server ended the body: a last line may lack its newline. (Not so when our
        # side closed the stream: then a partial line is only what we cut off.)
        if self._buf and self._stream.eof:
            self._chunk, self._view = b"\n", memoryview(b"\n")  # terminate the last line
            return
        self._buf.clear()
        raise StopAsyncIteration

    def _decode_buffered(self) -> WatchEvent | None:
        """Decode, then forget, the line assembled across chunks; None if it is blank."""
        buf = self._buf
        if buf.isspace():
            buf.clear()
            return None
        try:
            event: Any = orjson.loads(buf)
        except orjson.JSONDecodeError as exc:
            raise self._fail(f"watch line is not JSON: {exc}", buf) from exc
        if type(event) is not dict or "type" not in event or "object" not in event:
            raise self._fail("watch line is not a watch event (no 'type' or 'object')", buf)
        buf.clear()
        return event  # type: ignore[return-value]

    def _fail(self, message: str, line: bytes | bytearray | memoryview) -> WatchDecodeError:
        """Finish the stream; the error to raise for ``line``."""
        error = WatchDecodeError(message, line=bytes(line[:200]))
        self._finish()
        return error

    def _too_large(self) -> WatchEventTooLarge:
        """Finish the stream; the error for the line being assembled in ``_buf``."""
        error = WatchEventTooLarge(
            f"a watch event is longer than {MAX_WATCH_EVENT_BYTES >> 20} MiB (client-go's "
            "limit); the watch is dropped and the resource relisted",
            limit=MAX_WATCH_EVENT_BYTES,
            line=bytes(self._buf[:200]),
        )
        self._finish()
        return error

    def _finish(self) -> None:
        self._finished = True
        self._buf = bytearray()  # frees the buffer (clear() may keep its capacity)
        self._chunk, self._view, self._pos = b"", memoryview(b""), 0
