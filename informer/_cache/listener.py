"""``ProcessorListener``: one handler, its own unbounded buffer and its own task.

The processor hands notifications over with :meth:`ProcessorListener.add` (a plain
method, never awaits). When the listener is idle (nothing buffered, nothing in flight)
``add`` calls the handler at once: a synchronous handler (the controllers' ``Enqueue``,
most ``HandlerFuncs``) then costs no buffer entry and no task switch per notification.
Otherwise, and whenever a handler returns an awaitable, notifications wait in the
listener's unbounded buffer, which its own task drains in order, awaiting each
awaitable before the next notification: a slow asynchronous handler only grows its own
buffer. An exception in a handler is logged with the key and the handler's name, and
the listener goes on with the next notification.

Ordering: notifications reach one handler in the order the processor produced them.
There is no ordering between different handlers. A synchronous handler called by
``add`` runs on the processing loop's task, after the store took the change and before
the next key is popped (as it would run on the event loop anyway); it must not await
and should be quick (long work belongs in a thread, or in a reconcile).
"""

from __future__ import annotations

import inspect
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any, Final

import anyio
import anyio.lowlevel
import structlog

from .._failures import report_failure
from .._meta.objects import ObjectOrTombstone, meta_namespace_key
from .handlers import EventHandler, HandlerFuncs, as_event_handler, handler_name

__all__ = ["ADD", "DELETE", "UPDATE", "ProcessorListener"]

log = structlog.get_logger(__name__)

ADD: Final = 0
UPDATE: Final = 1
DELETE: Final = 2
_EVENT_NAMES: Final = ("add", "update", "delete")

# Yield to the event loop after this many handler calls in a row, so that a busy
# listener with synchronous handlers cannot starve the watch and the other listeners.
_YIELD_EVERY: Final = 256

_AWAIT: Final = 3  # a buffered awaitable a handler returned: (3, awaitable, (kind, obj), initial)

Notification = tuple[int, Any, Any, bool]  # (kind, old, new, counts_for_initial_sync)


class ProcessorListener:
    """Delivers notifications to one handler from its own task.

    ``resync_period`` is this handler's requested resync period in seconds (0: none).
    The registration returned by ``SharedIndexInformer.add_event_handler`` is this
    object: ``has_synced()`` is true once the informer has synced and this handler has
    finished every notification of the initial list (or of its late-join replay).
    ``key_func`` (the informer's, tombstone-aware) names objects in handler error logs.
    """

    def __init__(
        self,
        handler: Any,
        resync_period: float,
        upstream_has_synced: Callable[[], bool],
        *,
        resource: str = "",
        key_func: Callable[[ObjectOrTombstone], str] = meta_namespace_key,
    ) -> None:
        self.handler: EventHandler = as_event_handler(handler)
        self.name = handler_name(handler)
        # The handler's callbacks, looked up once (a HandlerFuncs' own functions: one
        # call less per notification).
        self._on_add, self._on_update, self._on_delete = _callbacks(self.handler)
        self.resync_period = max(0.0, float(resync_period))
        self.next_resync = 0.0
        self._upstream_has_synced = upstream_has_synced
        self._buffer: deque[Notification] = deque()
        self._pending_initial = 0
        self._initial_done = anyio.Event()
        self._initial_done.set()
        self._wakeup = anyio.Event()
        self._waiting = False
        # Nothing buffered, nothing being delivered by the task, not stopped: ``add`` may
        # call the handler at once.
        self._idle = True
        self._stopped = False
        self._resource = resource
        self._key_func = key_func
        self.handled = 0
        self.failures = 0

    # -- producer side (processor) ------------------------------------------------
    def add(self, kind: int, old: Any, new: Any, initial: bool = False) -> None:
        """Deliver a notification now if the listener is idle, else buffer it (never
        blocks, never awaits; see the module docstring)."""
        if not self._idle:
            self._append(kind, old, new, initial)
            return
        try:
            if kind == UPDATE:
                result = self._on_update(old, new)
            elif kind == ADD:
                result = self._on_add(new)
            else:
                result = self._on_delete(new)
        except Exception:
            self.failures += 1
            self.handled += 1
            self._log_failure(kind, new)
            return
        if result is not None and isawaitable(result):
            self._append(_AWAIT, result, (kind, new), initial)  # the task awaits it
            return
        self.handled += 1

    def replay(self, objs: list[Any]) -> None:
        """Buffer an ``on_add`` for each of ``objs``, counted for this handler's sync
        (a handler added to a running informer first sees what the store holds); the
        task delivers them, and later notifications after them."""
        for obj in objs:
            self._append(ADD, None, obj, True)

    def _append(self, kind: int, old: Any, new: Any, initial: bool) -> None:
        if self._stopped:
            if kind == _AWAIT:
                _discard(old)
            return
        self._buffer.append((kind, old, new, initial))
        self._idle = False
        if initial:
            if not self._pending_initial:
                self._initial_done = anyio.Event()
            self._pending_initial += 1
        if self._waiting:
            self._waiting = False
            self._wakeup.set()

    def has_synced(self) -> bool:
        """True once upstream synced and this handler handled its initial notifications."""
        return self._pending_initial == 0 and self._upstream_has_synced()

    async def wait_for_sync(self, upstream: Callable[[], Awaitable[None]]) -> None:
        """Return once ``upstream()`` returned and :meth:`has_synced` is true."""
        await upstream()
        while self._pending_initial:
            await self._initial_done.wait()

    def buffer_depth(self) -> int:
        """Notifications waiting for the handler (for metrics)."""
        return len(self._buffer)

    # -- resync bookkeeping -------------------------------------------------------
    def should_resync(self, now: float) -> bool:
        return self.resync_period > 0 and now >= self.next_resync

    def determine_next_resync(self, now: float) -> None:
        self.next_resync = now + self.resync_period

    # -- consumer side (own task) -------------------------------------------------
    def stop(self) -> None:
        """Stop delivering: notifications still buffered are dropped, a handler call in
        progress finishes, then :meth:`run` returns (at once if it has not started).

        A stopped listener counts as synced, so nobody waits on it forever.
        """
        self._stopped = True
        self._idle = False
        self._discard_buffer()
        self._pending_initial = 0
        self._initial_done.set()
        self._waiting = False
        self._wakeup.set()

    async def run(self) -> None:
        """Drain the buffer in order until :meth:`stop` (or cancellation)."""
        try:
            await self._drain()
        finally:
            self._discard_buffer()  # stopped or cancelled: what is left is never delivered

    async def _drain(self) -> None:
        buf = self._buffer
        on_add, on_update, on_delete = self._on_add, self._on_update, self._on_delete
        streak = 0
        while not self._stopped:
            if not buf:
                streak = 0
                self._wakeup = anyio.Event()
                self._waiting = True
                await self._wakeup.wait()
                continue
            kind, old, new, initial = buf.popleft()
            try:
                if kind == _AWAIT:
                    kind, new = new
                    await old
                else:
                    if kind == UPDATE:
                        result = on_update(old, new)
                    elif kind == ADD:
                        result = on_add(new)
                    else:
                        result = on_delete(new)
                    if result is not None and isawaitable(result):
                        await result
            except Exception:
                self.failures += 1
                self._log_failure(kind, new)
            finally:
                self._idle = not buf and not self._stopped
                self.handled += 1
                if initial and self._pending_initial:
                    self._pending_initial -= 1
                    if not self._pending_initial:
                        self._initial_done.set()
            streak += 1
            if streak >= _YIELD_EVERY:
                streak = 0
                await anyio.lowlevel.checkpoint()

    def _discard_buffer(self) -> None:
        for kind, awaitable, _, _ in self._buffer:
            if kind == _AWAIT:
                _discard(awaitable)
        self._buffer.clear()

    def _log_failure(self, kind: int, obj: Any) -> None:
        try:
            key = self._key_func(obj)
        except Exception:
            key = "<unknown>"
        error = sys.exc_info()[1]
        if error is not None:
            report_failure("handler", f"{self._resource} {self.name}", error, key=key)
        log.exception(
            "handler.failed",
            handler=self.name,
            notification=_EVENT_NAMES[kind],
            key=key,
            resource=self._resource,
        )

    def __repr__(self) -> str:
        return f"ProcessorListener({self.name}, resync={self.resync_period})"


def _discard(awaitable: Any) -> None:
    """Close a coroutine a handler returned that will never be awaited (no warning)."""
    close = getattr(awaitable, "close", None)
    if inspect.iscoroutine(awaitable) and close is not None:
        close()


def _nothing(*_: Any) -> None:
    return None


def _callbacks(
    handler: EventHandler,
) -> tuple[Callable[[Any], Any], Callable[[Any, Any], Any], Callable[[Any], Any]]:
    """``(on_add, on_update, on_delete)`` of ``handler``; for a :class:`HandlerFuncs`
    the functions it holds (a missing one does nothing), which is what its methods call."""
    if type(handler) is HandlerFuncs:
        return (
            handler.on_add_func or _nothing,
            handler.on_update_func or _nothing,
            handler.on_delete_func or _nothing,
        )
    return handler.on_add, handler.on_update, handler.on_delete
