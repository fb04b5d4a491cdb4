"""The Reflector: keeps a store in step with the API server by listing, then watching.

It is client-go's ``tools/cache`` Reflector for one event loop (docs/architecture.md,
"Reflector", draws its state machine and says where it departs from client-go, and why).
Its only collaborators are a :class:`~informer._cache.listwatch.ListerWatcher` (the
server) and a :class:`ReflectorStore` (in practice the ``DeltaFIFO``). It is where
objects enter the cache, so it is the one place that prepares them: each object received
(list item, watch event, watch-list initial event) goes through the informer's
``transform`` exactly once, and list items get the List's ``apiVersion`` and ``kind``.
Beyond that it reads only ``metadata.resourceVersion`` and the watch-list end annotation,
and never copies objects.

``run`` alternates a *sync* (a complete state handed to ``store.replace`` in one call)
with *watches* from the last synced RV:

- **Sync by list** (the default): :class:`~informer._cache.list_sync.ListSync`
  (pagination, the relist RV ``"0"`` / last synced / ``""``, a 410 retried at once at
  ``""``).
- **Sync by watch-list** (``use_watch_list=True``): ``_cache/watch_list.py`` (the initial
  events up to the end bookmark, then the same stream is the watch; its fallback rule:
  a sync by list for one attempt, or for good once the server showed it does not serve
  watch-list).
- **Watch** with ``allow_watch_bookmarks=True`` and ``timeout_seconds`` uniform in
  ``[min_watch_timeout, 2*min_watch_timeout)``. ``ADDED``/``MODIFIED``/``DELETED`` go to
  ``store.add``/``update``/``delete``; each event's ``metadata.resourceVersion`` becomes
  the last synced RV; ``BOOKMARK`` only advances it. A malformed event, one without a
  resourceVersion or of an unknown type is skipped, and a store method that raises is
  logged (key-free) as client-go does; both are counted and logged by
  :class:`~informer._cache.bad_events.BadEvents`, and the watch goes on.
- **Objects the cache cannot hold** (the store cannot key them: no ``metadata.name``, no
  ``metadata`` mapping; or the transform raises on them) are skipped wherever they come
  from, a watch event, a list item or a watch-list initial object, and counted by
  cause (``invalid_object``, ``store_failed``): a sync never fails for one object, so
  the rest of the cache keeps converging while the server keeps sending it.

Outcomes of a watch (what happens next):

===========================================================  ===========================
clean end (server timeout)                                   re-watch now, last RV
clean end after < 1 s with no event at all                   back off, re-watch
inactivity: nothing, not even a bookmark, for                re-watch now, last RV
``inactivity_timeout`` (a half-open connection)              (``watch.stalled``)
``WatchDecodeError`` / ``TooManyRequests`` /                 back off, re-watch (the RV
``ConnectionFailed`` (at open or mid-stream)                 did not advance past it)
``WatchEventTooLarge`` (a line over 16 MiB)                  back off, relist (as
                                                             client-go; a re-watch would
                                                             meet the same event)
410: ``ResourceExpired`` or an ``ERROR`` event with 410      relist now at the last RV
                                                             (backoff if it repeats
                                                             with no event in between)
any other error, an ``ERROR`` event (500...)                 back off, relist
===========================================================  ===========================

A failed list backs off and relists. Backoffs follow
:class:`~informer._cache.backoff.ExponentialBackoff`; ``TooManyRequests.retry_after``
raises the next one to at least the server's delay.

Inactivity guard: ``inactivity_timeout`` (default 180 s: three missed heartbeat
bookmarks; ``None`` disables) is enforced by a watchdog task that wakes every quarter of
it and compares event counters, so a stall is declared after between 1 and 1.25
``inactivity_timeout`` of silence.

Hot path (:func:`~informer._cache.watch_events.apply_watch_events`): per event, one type
dispatch, one ``metadata.resourceVersion`` lookup, the store call and a counter; per
batch of events (what the watch decoder decodes between two yields to the loop,
``WatchEventStream.next_batch``), one call and a clock read; no logging above debug.
Logs are structlog events bound to ``resource=name``: ``list.started``, ``list.done``,
``list.expired``, ``list.failed``, ``watch.started``, ``watch.closed``, ``watch.short``,
``watch.expired``, ``watch.error``, ``watch.stalled``, ``watch.event_skipped``,
``store.failed``, ``watch_list.synced``, ``watch_list.fallback``, ``backoff`` (seconds).
They carry RVs, counts and keys at most: never object contents (think Secrets).

Concurrency: ``run`` is one task; the only child is the per-watch watchdog, owned by a
task group inside the watch. Cancelling ``run`` exits the watch's context manager, which
closes the connection, at once.
"""

from __future__ import annotations

import enum
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, Protocol

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskStatus

from .._exceptions import ApiError
from .._meta.types import Obj, WatchEvent
from .backoff import ExponentialBackoff
from .bad_events import BadEvents
from .list_sync import ListSync
from .listwatch import ListerWatcher
from .recovery import Next, Recovery
from .reflector_stats import ReflectorState, ReflectorStats
from .transforms import TransformFunc
from .watch_events import apply_watch_events
from .watch_list import (
    WatchListMode,
    open_watch_list,
    receive_initial_events,
)
from .watchdog import consume_watched

__all__ = ["DEFAULT_INACTIVITY_TIMEOUT", "Reflector", "ReflectorStore"]

DEFAULT_INACTIVITY_TIMEOUT: Final = 180.0
"""Seconds of total silence (no event, no bookmark) after which a watch is re-opened."""

_SHORT_WATCH: Final = 1.0
"""A watch that ends cleanly sooner than this with no event at all is treated as an error."""


class ReflectorStore(Protocol):
    """The subset of a store the Reflector writes to (``DeltaFIFO`` satisfies it).

    The methods are plain (they must not await). ``replace`` takes ownership of the list.
    A store may also offer ``replace_steps(objs, resource_version, *, skip)``, ``replace``
    as an iterator the Reflector drives to its end with a checkpoint at each pause, that
    leaves out the objects it cannot key, handing each to ``skip(obj, exc)``
    (``DeltaFIFO.replace_steps``). A plain ``replace`` that raises fails the sync (it is
    retried after a backoff).
    Objects are shared: the store must not mutate them.
    """

    def replace(self, objs: list[Obj], resource_version: str) -> object: ...

    def add(self, obj: Obj) -> object: ...

    def update(self, obj: Obj) -> object: ...

    def delete(self, obj: Obj) -> object: ...


class _End(enum.Enum):
    CLOSED = "closed"
    STALLED = "stalled"


class Reflector:
    """Lists then watches one resource into ``store`` until cancelled.

    :param lister_watcher: the server side (scope and selectors are its business).
    :param store: receives ``replace``/``add``/``update``/``delete`` (a ``DeltaFIFO``).
    :param name: names the resource in logs (``resource=`` field).
    :param page_size: ``limit`` of list pages; ``0`` or ``None`` lists in one request.
    :param use_watch_list: sync with a watch-list stream instead of a list (falls back).
    :param min_watch_timeout: ``timeout_seconds`` of each watch is uniform in
        ``[min, 2*min)`` (whole seconds, at least 1).
    :param backoff_initial, backoff_cap, backoff_factor, backoff_jitter,
        backoff_reset_after: see :class:`ExponentialBackoff`.
    :param inactivity_timeout: seconds of total silence after which an open watch is
        re-opened; ``None`` disables (see the module docstring for the default).
    :param on_watch_error: ``callback(exc)`` called for every list/watch error the
        reflector recovers from (410s included), before any backoff. It must not block;
        an exception it raises is logged and ignored.
    :param clock: monotonic seconds (backoff reset, short-watch detection, stats).
    :param random: uniform in [0, 1) (watch timeouts, backoff jitter).
    :param sleep: awaited for backoffs (tests inject a fake).
    :param transform: the informer's :data:`~informer._cache.transforms.TransformFunc`, the one
        place it runs: once on every object received (each list item as its page
        arrives, each watch event, each watch-list initial object as it is buffered, so
        what it drops never accumulates), before the store sees it. ``None``: objects
        are stored as received.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        store: ReflectorStore,
        *,
        name: str = "",
        page_size: int | None = 500,
        use_watch_list: bool = False,
        min_watch_timeout: float = 300.0,
        backoff_initial: float = 0.8,
        backoff_cap: float = 30.0,
        backoff_factor: float = 2.0,
        backoff_jitter: float = 1.0,
        backoff_reset_after: float = 120.0,
        inactivity_timeout: float | None = DEFAULT_INACTIVITY_TIMEOUT,
        on_watch_error: Callable[[BaseException], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
        transform: TransformFunc | None = None,
    ) -> None:
        if min_watch_timeout <= 0:
            raise ValueError("min_watch_timeout must be positive")
        if inactivity_timeout is not None and inactivity_timeout <= 0:
            raise ValueError("inactivity_timeout must be positive or None")
        self.name = name
        self._lw = lister_watcher
        self._store = store
        self._min_watch_timeout = min_watch_timeout
        self._inactivity_timeout = inactivity_timeout
        self._clock = clock
        self._random = random
        self._transform = transform
        # Lazy (unlike ``get_logger().bind()``, which freezes the configuration of the
        # moment): an application configuring structlog after building informers still
        # gets its processors and level.
        self._log = structlog.get_logger(__name__, resource=name)
        self.stats = ReflectorStats()
        self._watch_list = WatchListMode(use_watch_list, stats=self.stats, log=self._log)
        self._recovery = Recovery(
            name,
            stats=self.stats,
            log=self._log,
            watch_list=self._watch_list,
            backoff=ExponentialBackoff(
                initial=backoff_initial,
                cap=backoff_cap,
                factor=backoff_factor,
                jitter=backoff_jitter,
                reset_after=backoff_reset_after,
                clock=clock,
                random=random,
            ),
            sleep=sleep,
            on_watch_error=on_watch_error,
        )
        self._bad_events = BadEvents(name, stats=self.stats, log=self._log, clock=clock)
        self._list_sync = ListSync(
            lister_watcher,
            apply=self._apply_sync,
            bad_events=self._bad_events,
            on_rv_unavailable=self._recovery.list_rv_unavailable,
            page_size=page_size,
            transform=transform,
            stats=self.stats,
            log=self._log,
            clock=clock,
        )
        self._state = ReflectorState.IDLE
        self._running = False
        self._task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        self._last_rv = ""
        self._synced = False
        self._started = False
        self._in_initial_events = False

    # ------------------------------------------------------------ properties
    @property
    def last_sync_resource_version(self) -> str:
        """The RV of the last sync, event or bookmark applied ("" before the first sync)."""
        return self._last_rv

    @property
    def last_error(self) -> BaseException | None:
        """The last list/watch error (also passed to ``on_watch_error``); kept after recovery."""
        return self._recovery.last_error

    @property
    def state(self) -> ReflectorState:
        return self._state

    @property
    def is_watching(self) -> bool:
        """True while a watch is open past its initial events (the steady state)."""
        return self._state is ReflectorState.WATCHING

    @property
    def synced(self) -> bool:
        """True once a first sync reached the store."""
        return self._synced

    @property
    def inactivity_timeout(self) -> float | None:
        """Silence tolerated on an open watch (health compares it with
        ``stats.last_event_monotonic``)."""
        return self._inactivity_timeout

    @property
    def use_watch_list(self) -> bool:
        return self._watch_list.enabled

    @property
    def watch_list_fallback(self) -> bool:
        """True once the server showed it does not serve watch-list; list+watch is used
        from then on (a one-attempt fallback leaves it false: see ``_cache/watch_list.py``)."""
        return self._watch_list.unsupported

    def __repr__(self) -> str:
        return f"<Reflector {self.name or '?'} state={self._state.value} rv={self._last_rv or '-'}>"

    # ------------------------------------------------------------------ run
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List then watch until cancelled; ``task_status.started()`` once the first
        sync of this run was handed to the store. Never returns otherwise: every error is
        retried. One run at a time; after a cancelled run, a new ``run`` resumes from the
        last synced RV (its first sync is a relist at that RV)."""
        if self._running:
            raise RuntimeError("Reflector.run is already running")
        self._running = True
        self._task_status = task_status
        self._started = False
        self.stats.connecting_since = None
        nxt = Next.RELIST
        try:
            while True:
                sync, backoff = nxt.value
                if backoff:
                    self._state = ReflectorState.BACKING_OFF
                    await self._recovery.back_off()
                if sync:
                    if self._synced:
                        self.stats.relists += 1
                    if self._watch_list.next_sync():
                        nxt = await self._watch(watch_list=True)
                        continue
                    try:
                        self._state = ReflectorState.LISTING
                        await self._list_sync.sync(self._relist_resource_version())
                    except Exception as exc:
                        nxt = self._recovery.after_list_error(exc)
                        continue
                nxt = await self._watch(watch_list=False)
        finally:
            self._state = ReflectorState.STOPPED
            self._running = False

    # ----------------------------------------------------------------- sync
    def _relist_resource_version(self) -> str:
        if self._recovery.rv_unavailable:
            return ""
        return self._last_rv or "0"

    async def _apply_sync(self, items: list[Obj], rv: str, *, source: str = "list") -> None:
        """Hand a complete state to the store and record it as synced at ``rv``.
        ``source`` (``"list"``, ``"watch-list"``) names it in the log of a skipped object.

        A store with ``replace_steps`` (the ``DeltaFIFO``) takes it in steps, with a
        checkpoint between them (a first list of 100,000 objects held the loop ~200 ms
        in one ``replace``: bench/RESULTS.md, "Scaling curve"); nothing else is written to
        the store meanwhile (this task is its only producer besides resync, which has
        nothing to queue before the first list).
        """
        steps = getattr(self._store, "replace_steps", None)
        if steps is None:
            self._store.replace(items, rv)
        else:
            invalid = self._bad_events.invalid_object

            def skip(obj: object, exc: Exception) -> None:
                invalid(source, obj, exc)

            for _ in steps(items, rv, skip=skip):
                await anyio.lowlevel.checkpoint()
        self._last_rv = rv
        self._recovery.rv_unavailable = False
        self.stats.syncs += 1
        self.stats.last_event_monotonic = self._clock()
        self._synced = True
        if not self._started:
            self._started = True
            self._task_status.started()

    # ---------------------------------------------------------------- watch
    async def _watch(self, *, watch_list: bool) -> Next:
        """Open one watch (or watch-list), consume it, and decide what comes next."""
        timeout = max(1, int(self._min_watch_timeout * (1.0 + self._random())))
        stats = self.stats
        stats.watches += 1
        if watch_list:
            stats.watch_lists += 1
            rv = "" if self._recovery.rv_unavailable else self._last_rv
            cm = open_watch_list(self._lw, resource_version=rv, timeout_seconds=timeout)
        else:
            rv = self._last_rv
            cm = self._lw.watch(
                resource_version=rv, timeout_seconds=timeout, allow_watch_bookmarks=True
            )
        self._in_initial_events = watch_list
        self._state = ReflectorState.CONNECTING
        opened = self._clock()
        if stats.connecting_since is None:
            stats.connecting_since = opened
        progress_before = stats.events - stats.error_events
        try:
            async with cm as events:
                stats.connecting_since = None
                self._state = (
                    ReflectorState.WATCH_LISTING if watch_list else ReflectorState.WATCHING
                )
                self._log.debug(
                    "watch.started", rv=rv, timeout_seconds=timeout, watch_list=watch_list
                )
                end = await self._consume_guarded(events, watch_list)
        except Exception as exc:
            if isinstance(exc, ApiError):
                stats.connecting_since = None  # the open was answered (with an error)
            if stats.events - stats.error_events != progress_before:
                self._recovery.progressed()
            return self._recovery.after_watch_error(
                exc, rv=self._last_rv, initial_events=self._in_initial_events
            )
        finally:
            self._bad_events.report_suppressed(rv=self._last_rv)
        delivered = stats.events - stats.error_events - progress_before
        if delivered:
            self._recovery.progressed()
        if self._in_initial_events:
            reason = "stream ended" if end is _End.CLOSED else "stream stalled"
            if end is _End.STALLED:
                stats.stalls += 1
            self._in_initial_events = False
            return self._recovery.fall_back(
                f"{reason} before the initial-events-end bookmark", permanent=False
            )
        if end is _End.STALLED:
            stats.stalls += 1
            self._log.warning(
                "watch.stalled", rv=self._last_rv, inactivity_timeout=self._inactivity_timeout
            )
            return Next.WATCH
        seconds = self._clock() - opened
        self._log.debug("watch.closed", rv=self._last_rv, events=delivered, seconds=seconds)
        if not delivered and seconds < _SHORT_WATCH:
            self._log.warning("watch.short", rv=self._last_rv, seconds=round(seconds, 3))
            return Next.WATCH_BACKOFF
        return Next.WATCH

    async def _consume_guarded(self, events: AsyncIterator[WatchEvent], watch_list: bool) -> _End:
        """Consume under the inactivity watchdog; ``STALLED`` if it fired."""
        if self._inactivity_timeout is None:
            return await self._consume(events, watch_list)
        stats = self.stats
        return await consume_watched(
            lambda: self._consume(events, watch_list),
            silence=self._inactivity_timeout,
            progress=lambda: stats.events,
            stalled=_End.STALLED,
        )

    async def _consume(self, events: AsyncIterator[WatchEvent], watch_list: bool) -> _End:
        if watch_list:
            started = self._clock()
            items, end_rv = await receive_initial_events(
                events,
                stats=self.stats,
                clock=self._clock,
                transform=self._transform,
                bad_events=self._bad_events,
                rv=self._last_rv,
            )
            self._in_initial_events = False
            await self._apply_sync(items, end_rv, source="watch-list")
            self._log.info(
                "watch_list.synced",
                count=len(items),
                rv=end_rv,
                seconds=round(self._clock() - started, 3),
            )
        self._state = ReflectorState.WATCHING
        apply_events = self._apply_events
        next_batch = getattr(events, "next_batch", None)
        if next_batch is not None:  # the watch decoder: one call per batch of events
            while batch := await next_batch():
                apply_events(batch)
        else:
            async for event in events:
                apply_events((event,))
        return _End.CLOSED

    def _apply_events(self, events: Sequence[WatchEvent]) -> None:
        """Apply one batch of watch events (never awaits); raises an ``ERROR`` event's
        ``ApiError`` once the events before it are applied."""
        self.stats.last_event_monotonic = self._clock()
        apply_watch_events(
            events,
            store=self._store,
            transform=self._transform,
            stats=self.stats,
            bad_events=self._bad_events,
            last_rv=self._last_rv,
            set_last_rv=self._set_last_rv,
        )

    def _set_last_rv(self, rv: str) -> None:
        self._last_rv = rv
