"""The watch line decoder (``informer._cache.watch_decode``) on fixed chunks: any chunk
boundaries, blank lines and CRLF, bad lines after good events, the end of the body, and
its yields to the loop. ``test_listwatch`` sends the same events over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from informer._cache.watch_decode import WatchEventStream
from informer._exceptions import WatchDecodeError
from informer._meta.types import WatchEvent

pytestmark = pytest.mark.anyio


def configmap(name: str, rv: int, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "data": data,
    }


def event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "object": obj}


def lines(*events: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


class ChunkStream:
    """A ChunkReader handing out fixed chunks; ``closed_by_us`` ends it the way a stream
    closed on our side ends (``b""`` without ``eof``)."""

    def __init__(self, data: bytes, size: int, *, closed_by_us: bool = False) -> None:
        self._chunks: Iterator[bytes] = (data[i : i + size] for i in range(0, len(data), size))
        self._closed_by_us = closed_by_us
        self.eof = False

    async def read_chunk(self) -> bytes:
        chunk = next(self._chunks, b"")
        self.eof = not chunk and not self._closed_by_us
        return chunk


def decoder(data: bytes, size: int) -> WatchEventStream:
    return WatchEventStream(ChunkStream(data, size))


async def drain(events: AsyncIterator[WatchEvent]) -> list[WatchEvent]:
    return [e async for e in events]


async def test_decoder_lets_other_tasks_run_within_one_large_chunk() -> None:
    """A 1 MiB chunk is not decoded in one go: others run every ~16 KiB of events."""
    line = orjson.dumps({"type": "MODIFIED", "object": {"data": "x" * 1000}}) + b"\n"
    data = line * 1024
    ran = 0
    events: list[WatchEvent] = []

    async def other() -> None:
        nonlocal ran
        while True:
            ran += 1
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(other)
            events = await drain(decoder(data, len(data)))
            tg.cancel_scope.cancel()
    assert len(events) == 1024
    assert ran >= len(data) // 16384 - 1


EVENTS = [
    event("ADDED", configmap("a", 1, k="v")),
    event("MODIFIED", configmap("a", 2, k="é ünïcode ✓")),
    event("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": "3"}}),
    event("MODIFIED", configmap("big", 4, blob="x" * 70_000)),  # > 64 KiB
    event("DELETED", configmap("a", 5)),
]
STREAM = lines(*EVENTS)


@pytest.mark.parametrize(
    "size", [1, 2, 3, 7, 64, 4096, 65_536, len(STREAM)], ids=lambda n: f"chunk{n}"
)
async def test_decoder_any_chunk_boundaries(size: int) -> None:
    assert await drain(decoder(STREAM, size)) == EVENTS


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\n\n" + lines(EVENTS[0]) + b"\n \n", [EVENTS[0]]),
        (lines(EVENTS[0]) + orjson.dumps(EVENTS[1]), EVENTS[:2]),  # last line, no newline
        (lines(EVENTS[0]).replace(b"\n", b"\r\n"), [EVENTS[0]]),
        (b"", []),
    ],
    ids=["blank-lines", "no-final-newline", "crlf", "empty-body"],
)
@pytest.mark.parametrize("size", [1, 1 << 20], ids=["chunk1", "whole"])
async def test_decoder_tolerates(data: bytes, expected: list[WatchEvent], size: int) -> None:
    assert await drain(decoder(data, size)) == expected


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (b'{"type": "ADDED", "object": {', "not JSON"),
        (b"<html>proxy error</html>", "not JSON"),
        (b'{"object": {}}', "not a watch event"),
        (b'{"type": "ADDED"}', "not a watch event"),
        (b'[{"type": "ADDED", "object": {}}]', "not a watch event"),
    ],
    ids=["truncated", "html", "no-type", "no-object", "array"],
)
@pytest.mark.parametrize("size", [1, 5, 1 << 20], ids=["chunk1", "chunk5", "whole"])
async def test_decoder_bad_line_after_good_events(bad: bytes, match: str, size: int) -> None:
    data = lines(*EVENTS[:2]) + bad + b"\n" + lines(EVENTS[4])
    got: list[WatchEvent] = []
    events = decoder(data, size)
    with pytest.raises(WatchDecodeError, match=match) as info:
        async for e in events:
            got.append(e)
    assert got == EVENTS[:2]
    assert info.value.line == bad[:200]
    # The stream is finished after the error.
    assert await drain(events) == []


async def test_decoder_partial_line_cut_by_our_close_is_dropped() -> None:
    data = lines(EVENTS[0]) + orjson.dumps(EVENTS[1])[:-3]
    stream = ChunkStream(data, 10, closed_by_us=True)
    assert await drain(WatchEventStream(stream)) == [EVENTS[0]]


async def test_decoder_truncated_last_line_is_an_error() -> None:
    data = lines(EVENTS[0]) + orjson.dumps(EVENTS[1])[:-3]
    got: list[WatchEvent] = []
    with pytest.raises(WatchDecodeError, match="not JSON"):
        async for e in decoder(data, 10):
            got.append(e)
    assert got == [EVENTS[0]]


# ------------------------------------------------------------------ next_batch


async def batched(stream: WatchEventStream) -> list[list[WatchEvent]]:
    batches = []
    while batch := await stream.next_batch():
        batches.append(batch)
    return batches


@pytest.mark.parametrize("size", [1, 7, 64, 65_536, len(STREAM)], ids=lambda n: f"chunk{n}")
async def test_next_batch_yields_what_anext_yields(size: int) -> None:
    batches = await batched(decoder(STREAM, size))
    assert [e for b in batches for e in b] == EVENTS
    assert all(batches)


async def test_next_batch_returns_the_events_before_a_bad_line_then_raises() -> None:
    raw = lines(*EVENTS[:2]) + b"not json\n" + lines(*EVENTS[2:])
    stream = decoder(raw, len(raw))
    assert await stream.next_batch() == EVENTS[:2]
    with pytest.raises(WatchDecodeError, match="not JSON"):
        await stream.next_batch()
    assert await stream.next_batch() == []


async def test_next_batch_stops_at_the_decode_budget() -> None:
    big = event("MODIFIED", configmap("c", 1, k="x" * 4000))
    raw = lines(*[big] * 20)
    sizes = [len(b) for b in await batched(decoder(raw, len(raw)))]
    assert sum(sizes) == 20
    assert max(sizes) <= 5  # 16 KiB of ~4 KB lines
