"""``EventRecorder``: Kubernetes Events from a controller, never in its way.

::

    recorder = EventRecorder(client, "configmap-mirror")
    async with recorder:                 # or: await task_group.start(recorder.run)
        ...
        recorder.event(mirror, reason="Synced", note="copied to 3 namespaces")

The contract:

- :meth:`EventRecorder.event` is synchronous, never blocks and never raises. It checks
  the arguments, builds the events.k8s.io/v1 Event (client-go's ``makeEvent``: named
  ``<regarding name>.<unique hex>``, in the regarding object's namespace or ``default``,
  ``eventTime`` now, ``reportingController``/``reportingInstance`` the recorder's), passes
  it through the per-object spam filter (:mod:`.spam`) and appends it to a bounded buffer
  (``buffer_size``, 1000 as client-go's ``maxQueuedEvents``). A full buffer drops the
  event (client-go's ``DropIfChannelFull``). Call it from the event loop's thread.
- A background task, :meth:`EventRecorder.run`, empties the buffer in order: it
  aggregates repeated events into series (:mod:`.series`) and writes through the sink
  (:mod:`.sink`), one write at a time. Whoever owns the recorder starts it: ``Controller.run``
  for a controller's (so the Manager for its controllers'); ``async with recorder``
  otherwise. Events recorded while it is not running wait in the buffer (and are lost
  if it never runs): the first one logs a warning, ``event recorder not running``, that
  says how to run it, and each is counted in ``stats.not_running``. Leaving ``async
  with`` writes what is buffered (within ``shutdown_timeout``) even when the block is
  left by cancellation.
- A write that fails for a transport reason (connection, 429, 5xx) is tried again, up to
  ``max_tries`` (12) times ``retry_delay`` (10 s, jitter 25%) apart, as client-go's
  ``attemptRecording`` (client-go retries transport errors only; 429 and 5xx are retried
  here too). Any other failure is logged and given up at once (client-go: "will not
  retry"). Meanwhile later events wait in the buffer.
- Nothing is lost silently: :attr:`EventRecorder.stats` counts every outcome (read by
  metrics). Logs name the reason, type and regarding object, never the note (user text
  that may hold anything).
- Arguments that cannot make a valid Event (a wrong ``type``, an empty ``reason``, an
  object without ``kind``) are a bug in the caller: logged as an error, counted as
  ``invalid`` and reported to the absorbed-failure hooks (so a test fails), not raised.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.abc
import structlog

from .._exceptions import (
    ApiError,
    Conflict,
    ConnectionFailed,
    InformerError,
    NotFound,
    ServerError,
    TooManyRequests,
)
from .._failures import report_failure
from .._meta.types import Obj
from .._rest.api_client import ApiClient
from .model import (
    check_arguments,
    check_component,
    default_instance,
    event_name,
    new_event,
    object_reference,
    reference_identity,
    truncate_note,
)
from .series import SCAN_INTERVAL, SeriesCache, Write
from .sink import ApiEventSink, EventSink
from .spam import SpamFilter

__all__ = ["MAX_QUEUED_EVENTS", "MAX_TRIES", "RETRY_DELAY", "EventRecorder", "EventRecorderStats"]

log = structlog.get_logger(__name__)

MAX_QUEUED_EVENTS: Final = 1000
MAX_TRIES: Final = 12
RETRY_DELAY: Final = 10.0
_RETRY_JITTER: Final = 0.25
_RETRIED: Final = (ConnectionFailed, TooManyRequests, ServerError)


@dataclass(slots=True)
class EventRecorderStats:
    """Counters of one recorder (monotonic; read by a metrics exporter).

    ``recorded``: events accepted into the buffer; ``dropped``: events lost because the
    buffer was full or the recorder closed; ``filtered``: events dropped by the spam
    filter; ``invalid``: calls whose arguments could not make an Event; ``aggregated``:
    occurrences folded into an existing Event's series; ``written``: successful writes
    (creates and series patches); ``failed``: writes given up; ``not_running``: events
    recorded while the recorder was not running (buffered, counted in ``recorded`` too:
    written once it runs, lost if it never does).
    """

    recorded: int = 0
    dropped: int = 0
    filtered: int = 0
    invalid: int = 0
    aggregated: int = 0
    written: int = 0
    failed: int = 0
    not_running: int = 0


class EventRecorder:
    """Records Events about objects on behalf of ``component`` (see the module docstring).

    ``client`` is an :class:`informer.Client` or anything with an ``api_client``
    attribute (a ``Controller``: read at each write, so it may still be ``None`` when the
    recorder is built; a write without an ApiClient then fails as a sink bug), or a
    kubernetes_asyncio ``ApiClient``; the default sink (:class:`.sink.ApiEventSink`)
    writes through it. ``sink`` replaces the writer (``client`` may then be ``None``).
    ``async with recorder`` is used once: leaving it closes the recorder (later events are
    dropped and counted).
    ``component`` becomes ``reportingController`` (a qualified name, e.g. the
    controller's name: ``ValueError`` otherwise); ``instance`` the ``reportingInstance``
    (default ``<component>-<hostname>``, as client-go). ``clock`` (epoch seconds) stamps
    the Events and drives the spam filter and the series windows; ``shutdown_timeout``
    bounds how long leaving ``async with`` waits for the buffer to be written.
    """

    def __init__(
        self,
        client: Any,
        component: str,
        *,
        instance: str | None = None,
        sink: EventSink | None = None,
        buffer_size: int = MAX_QUEUED_EVENTS,
        clock: Callable[[], float] = time.time,
        max_tries: int = MAX_TRIES,
        retry_delay: float = RETRY_DELAY,
        shutdown_timeout: float = 5.0,
    ) -> None:
        check_component(component)
        if buffer_size < 1 or max_tries < 1 or retry_delay < 0 or shutdown_timeout < 0:
            raise ValueError(
                "EventRecorder needs buffer_size >= 1, max_tries >= 1, retry_delay >= 0 "
                "and shutdown_timeout >= 0"
            )
        if sink is None:
            if client is None:
                raise ValueError("EventRecorder needs a client (or a sink)")
            if not isinstance(client, ApiClient) and not hasattr(client, "api_client"):
                raise TypeError(
                    "EventRecorder needs an informer.Client (or an object with an api_client "
                    f"attribute) or a kubernetes_asyncio ApiClient, not {type(client).__name__}"
                )
            sink = ApiEventSink(client)
        self.component = component
        self.instance = (instance or default_instance(component))[:128]
        self.sink = sink
        self.buffer_size = buffer_size
        self.max_tries = max_tries
        self.retry_delay = retry_delay
        self.shutdown_timeout = shutdown_timeout
        self.stats = EventRecorderStats()
        self._clock = clock
        self._spam = SpamFilter(clock=clock)
        self._series = SeriesCache()
        self._buffer: deque[Obj] = deque()
        self._last_unique = 0
        self._closed = False
        self._running = False
        self._warned_not_running = False
        self._busy = False
        self._wake: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._log = log.bind(component=component)

    @property
    def dropped(self) -> int:
        """Events lost because the buffer was full (or the recorder closed)."""
        return self.stats.dropped

    def event(
        self,
        regarding: Obj,
        *,
        type: str = "Normal",
        reason: str,
        note: str,
        action: str | None = None,
        related: Obj | None = None,
    ) -> None:
        """Record that ``reason`` happened to ``regarding`` (the object dict as the API
        returned it); ``note`` is the human-readable text (cut to 1 KiB), ``type``
        ``"Normal"`` or ``"Warning"``, ``action`` what was done (defaults to ``reason``:
        events.k8s.io requires one), ``related`` an optional second object. Returns at
        once; never raises (see the module docstring)."""
        if action is None:
            action = reason
        try:
            problem = check_arguments(type=type, reason=reason, action=action)
            if problem is not None:
                raise ValueError(problem)
            ref = object_reference(regarding)
            related_ref = object_reference(related) if related is not None else None
        except ValueError as exc:
            self._invalid(exc, reason)
            return
        if self._closed:
            self._drop("the recorder is closed", ref, type, reason)
            return
        if not self._spam.allow(reference_identity(ref)):
            self.stats.filtered += 1
            self._log.debug("event filtered as spam", **_describe(ref, type, reason))
            return
        if len(self._buffer) >= self.buffer_size:
            self._drop("the buffer is full", ref, type, reason)
            return
        now = self._clock()
        unique = max(int(now * 1e9), self._last_unique + 1)
        self._last_unique = unique
        self._buffer.append(
            new_event(
                name=event_name(ref["name"], unique),
                regarding=ref,
                related=related_ref,
                type=type,
                reason=reason,
                action=action,
                note=truncate_note(str(note)),
                controller=self.component,
                instance=self.instance,
                now=now,
            )
        )
        self.stats.recorded += 1
        if not self._running:
            self._not_running(ref, type, reason)
        if self._idle is not None and self._idle.is_set():
            self._idle = anyio.Event()
        if self._wake is not None:
            self._wake.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write the buffered events until cancelled (``task_status.started()`` once
        running, for ``TaskGroup.start``). One ``run`` at a time; cancelling it leaves
        what is still buffered unwritten (``async with`` drains first)."""
        if self._running:
            raise RuntimeError(f"event recorder {self.component}: run() is already running")
        self._running = True
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        next_scan = self._clock() + SCAN_INTERVAL
        task_status.started()
        try:
            while True:
                if not self._buffer:
                    self._idle.set()
                    wait = min(SCAN_INTERVAL, max(0.0, next_scan - self._clock()))
                    with anyio.move_on_after(wait):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                if self._clock() >= next_scan:
                    for write in self._series.due(self._clock()):
                        await self._write(write)
                    next_scan = self._clock() + SCAN_INTERVAL
                if self._buffer:
                    event = self._buffer.popleft()
                    self._busy = True
                    try:
                        aggregated, writes = self._series.observe(event, self._clock())
                        self.stats.aggregated += aggregated
                        for write in writes:
                            await self._write(write)
                    finally:
                        self._busy = False
        finally:
            self._running = False
            self._wake = None
            idle, self._idle = self._idle, None
            idle.set()  # wakes flush(), which then reports that the recorder stopped

    async def flush(self) -> None:
        """Wait until every event recorded so far has been written or given up (needs
        :meth:`run` to be running)."""
        while self._buffer or self._busy:
            if self._idle is None:
                raise RuntimeError(
                    f"event recorder {self.component}: flush() needs run() to be running"
                )
            await self._idle.wait()

    async def __aenter__(self) -> EventRecorder:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        # Shielded: a cancellation arriving here (a controller stopped as it starts)
        # would leave the shielded run() started, its task group never exited, and the
        # controller hung. run() reports started at once; the cancellation is delivered
        # in the body, and __aexit__ stops run() as usual.
        with anyio.CancelScope(shield=True):
            await self._task_group.start(self._run_until_exit)
        return self

    async def _run_until_exit(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """:meth:`run`, shielded from the cancellation of the code around ``async with``
        (a stopping controller): ``__aexit__`` flushes, then stops it."""
        with anyio.CancelScope(shield=True) as scope:
            self._run_scope = scope
            await self.run(task_status=task_status)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        with anyio.move_on_after(self.shutdown_timeout, shield=True):
            await self.flush()
        self._closed = True
        if self._run_scope is not None:
            self._run_scope.cancel()
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def _write(self, write: Write) -> None:
        """Write once, retrying transport failures; never raises (but cancellation)."""
        for attempt in range(1, self.max_tries + 1):
            try:
                await self._send(write)
            except _RETRIED as exc:
                if attempt == self.max_tries:
                    self._failed(write, exc, "retry limit exceeded")
                    return
                delay = getattr(exc, "retry_after", None) or self.retry_delay
                self._log.info(
                    "event write failed; will retry",
                    attempt=attempt,
                    error=str(exc),
                    **_describe_event(write.event),
                )
                await anyio.sleep(delay * (1.0 + _RETRY_JITTER * random.random()))
            except Conflict as exc:
                if write.count >= 2 and exc.reason == "AlreadyExists" and attempt < self.max_tries:
                    continue  # created concurrently after our patch's 404: patch again
                if exc.reason != "AlreadyExists":
                    self._failed(write, exc, "rejected")
                    return
                # Our names are unique: the server holds this Event already.
                self._log.debug("event already exists", **_describe_event(write.event))
                self.stats.written += 1
                self._series.written(write, self._clock())
                return
            except (ApiError, InformerError) as exc:
                self._failed(write, exc, "rejected")
                return
            except Exception as exc:  # a broken sink must not stop the recorder
                self._failed(write, exc, "sink raised")
                report_failure("event", f"event recorder {self.component}", exc)
                return
            else:
                self.stats.written += 1
                self._series.written(write, self._clock())
                return

    async def _send(self, write: Write) -> None:
        series = write.event.get("series")
        if series is not None:
            with contextlib.suppress(NotFound):
                await self.sink.patch(write.event, {"series": series})
                return
        await self.sink.create(write.event)

    def _invalid(self, exc: ValueError, reason: Any) -> None:
        self.stats.invalid += 1
        self._log.error("event not recorded: invalid arguments", reason=reason, error=str(exc))
        report_failure("event", f"event recorder {self.component}", exc)

    def _drop(self, why: str, ref: Obj, type: str, reason: str) -> None:
        self.stats.dropped += 1
        self._log.warning(f"event dropped: {why}", **_describe(ref, type, reason))

    def _not_running(self, ref: Obj, type: str, reason: str) -> None:
        self.stats.not_running += 1
        if self._warned_not_running:
            return
        self._warned_not_running = True
        self._log.warning(
            "event recorder not running",
            detail=(
                "events wait in its buffer until it runs, and are lost if it never does: "
                "run it with `async with recorder:` or `await task_group.start(recorder.run)`"
                " (a Controller's recorder runs within Controller.run); logged once"
            ),
            buffered=len(self._buffer),
            **_describe(ref, type, reason),
        )

    def _failed(self, write: Write, exc: BaseException, why: str) -> None:
        self.stats.failed += 1
        self._log.warning(
            f"event not written ({why})",
            error=str(exc),
            error_type=type(exc).__name__,
            **_describe_event(write.event),
        )


def _describe(ref: Obj, type: str, reason: str) -> dict[str, Any]:
    where = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("namespace") else ref.get("name")
    return {"regarding": f"{ref.get('kind')} {where}", "type": type, "reason": reason}


def _describe_event(event: Obj) -> dict[str, Any]:
    described = _describe(event["regarding"], event["type"], event["reason"])
    described["event_name"] = event["metadata"]["name"]
    return described
