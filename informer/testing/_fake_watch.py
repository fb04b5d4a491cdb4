"""One open watch of :class:`~informer.testing.FakeListerWatcher`: a queue and its iterator.

A :class:`FakeWatch` holds the items queued for one open watch, in order: events, and the
control items :data:`CLOSE` (the iterator ends, as on a clean end of stream) and
:class:`Raise` (the iterator raises, as on a malformed line or a broken connection).
Queuing never blocks and is ignored once the watch is closed or stalled; a stalled watch's
iterator waits forever (a half-open connection). :class:`WatchContext` is what
``FakeListerWatcher.watch`` returns: entering it opens the watch (through the fake, which
validates the request and queues the initial items) and leaving it closes the watch.

:class:`Notifier` is the fake's level-triggered "something changed" signal, behind its
``wait_until``. Everything runs on one event loop; nothing here awaits while mutating.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._meta.types import Obj, WatchEvent

__all__ = [
    "CLOSE",
    "INITIAL_EVENTS_END",
    "Close",
    "FakeWatch",
    "Item",
    "Notifier",
    "Raise",
    "WatchContext",
    "bookmark",
]

INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"


class Close:
    """Queue item: end the stream cleanly."""


class Raise:
    """Queue item: the iterator raises ``exc``."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


Item = WatchEvent | Close | Raise
CLOSE: Final = Close()


def bookmark(rv: str, initial_events_end: bool) -> WatchEvent:
    """A ``BOOKMARK`` at ``rv``, annotated as the end of the initial events if asked."""
    meta: Obj = {"resourceVersion": rv}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"metadata": meta}}


class Notifier:
    """A level-triggered "something changed" signal; the anyio Event is created lazily."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()


class FakeWatch:
    """One open watch: a queue of events and control items, consumed by the iterator.

    ``on_delivered`` is called for every event (not control item) the iterator hands out.
    """

    def __init__(self, params: Mapping[str, Any], on_delivered: Callable[[], None]) -> None:
        self.params = params
        self.stalled = False
        self.closed = False
        self._on_delivered = on_delivered
        send: MemoryObjectSendStream[Item]
        receive: MemoryObjectReceiveStream[Item]
        send, receive = anyio.create_memory_object_stream[Item](math.inf)
        self._send = send
        self._receive = receive

    def put(self, item: Item) -> None:
        if not self.stalled and not self.closed:
            self._send.send_nowait(item)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        if self.closed:
            raise StopAsyncIteration
        if self.stalled:
            await anyio.sleep_forever()
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, Close):
            self.closed = True
            raise StopAsyncIteration
        if isinstance(item, Raise):
            raise item.exc
        self._on_delivered()
        return item

    def shut(self) -> None:
        self.closed = True
        self._send.close()
        self._receive.close()


class WatchContext(AbstractAsyncContextManager[AsyncIterator[WatchEvent]]):
    """Opens a watch with ``open_watch()`` on entry (after a checkpoint), closes it with
    ``close_watch(watch)`` on exit."""

    def __init__(
        self, open_watch: Callable[[], FakeWatch], close_watch: Callable[[FakeWatch], None]
    ) -> None:
        self._open_watch = open_watch
        self._close_watch = close_watch
        self._watch: FakeWatch | None = None

    async def __aenter__(self) -> AsyncIterator[WatchEvent]:
        await anyio.lowlevel.checkpoint()
        self._watch = self._open_watch()
        return self._watch

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._watch is not None:
            self._close_watch(self._watch)
            self._watch = None
