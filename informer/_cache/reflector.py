"""The Reflector: keeps a store in step with the API server by listing, then watching.

It is client-go's ``tools/cache`` Reflector for one event loop. Its only collaborators are
a :class:`~informer._cache.listwatch.ListerWatcher` (the server) and a :class:`ReflectorStore`
(in practice the ``DeltaFIFO``). It is where objects enter the cache, so it is the one
place that prepares them: each object received (list item, watch event, watch-list
initial event) goes through the informer's ``transform`` exactly once, and list items
get the List's ``apiVersion`` and ``kind`` (see "Sync by list"). Beyond that it reads
only ``metadata.resourceVersion`` and the watch-list end annotation, and never copies
objects.

State machine
-------------
::

                          ┌──────────────────────────────────────────────┐
                          ▼                                              │ relist:
    run() ──▶ ┌────────────────────┐ store.replace(all)  ┌──────────────┐ │  410 at once,
              │ SYNC               │ started() (1st)     │ WATCH        │─┘  anything else
              │ list, or watch-list├────────────────────▶│ from last RV │    after a backoff
              └────────────────────┘                     └──────────────┘◀┐
                  │          ▲                                 │          │ re-watch:
                  └──────────┘                                 └──────────┘  clean end, stall
                  failed: backoff                                            at once; 429,
                                                                             connection, bad
                                                                             line, short
                                                                             empty watch
                                                                             after a backoff

- **Sync by list** (the default): ``list(resource_version=R, limit=page_size)`` following
  ``continue`` tokens (later pages carry no resourceVersion, as the API requires); the
  whole list, all pages, goes to ``store.replace(items, rv)`` in one call, ``rv`` being
  the last page's. ``R`` is client-go's ``relistResourceVersion``: ``"0"`` for the first
  list (served from the watch cache, which ignores ``limit``; a ``continue`` is followed
  all the same), the last synced RV for later relists, and ``""`` (a consistent read)
  once the last synced RV proved unavailable. A list failing with 410 (or "too large
  resourceVersion"), on page 1 or page N, marks the RV unavailable and is retried at once
  at ``""``; when the 410 hit a continuation page (the token expired: the list is slower
  than etcd compaction) the retry is one unpaginated read, as client-go's pager does.
  A relist at a specific RV is sent without ``limit`` so that the watch cache can serve
  it (client-go's guard against a thundering herd on etcd), unless the first ``"0"``
  list came back paginated (no watch cache for this resource). The items of a List carry
  no ``apiVersion``/``kind`` (watch objects do): as each page arrives, an item lacking
  them gets the List's ``apiVersion`` and its ``kind`` minus ``List`` (``ConfigMapList``
  -> ``ConfigMap``), in the same pass that applies the transform, so every cached object
  has one shape whichever way it arrived.
- **Watch** from the last synced RV with ``allow_watch_bookmarks=True`` and
  ``timeout_seconds`` uniform in ``[min_watch_timeout, 2*min_watch_timeout)``.
  ``ADDED``/``MODIFIED``/``DELETED`` go to ``store.add``/``update``/``delete``; each
  event's ``metadata.resourceVersion`` becomes the last synced RV; ``BOOKMARK`` only
  advances it. An event without a resourceVersion, or of an unknown type, is logged and
  skipped; the watch goes on. A store method that raises is logged (key-free) and the
  watch goes on, as client-go does.
- **Watch-list** (``use_watch_list=True``): the sync is a watch with
  ``send_initial_events=True``, ``resource_version_match="NotOlderThan"`` and
  ``resource_version`` = the last synced RV (``""`` at first or once unavailable). The
  initial ``ADDED`` objects are buffered in a list until the ``BOOKMARK`` annotated
  ``k8s.io/initial-events-end: "true"``; then ``store.replace(buffered, bookmark_rv)``
  and the same stream is consumed as a normal watch.

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

``TooManyRequests.retry_after`` raises that backoff to at least the server's delay.

Where this departs from client-go, and why:

- client-go's ``Run`` sleeps one backoff step after *every* ``ListAndWatch`` return,
  so even a watch 410 waits 0.8-1.6 s before relisting. Here the first 410 relists at
  once (nothing is gained by waiting: the data is stale until the relist), and only a
  410 repeating with no event in between backs off, which keeps a pathological server
  from being hammered.
- A very short empty watch (client-go: an error, hence backoff and relist) backs off
  and re-watches: nothing suggests the RV is bad (that would be a 410), and a relist is
  the expensive operation this reflector tries hardest to avoid.
- Like client-go, a 410 on a *watch* relists at the last synced RV ("not older than"),
  which the watch cache serves; only a 410 on the *list* itself switches to ``""``.

Watch-list fallback rule
------------------------
"When in doubt, fall back": a list always works, a misread watch-list could hang or
lose data. Like client-go (whose ``ListAndWatch`` falls back to a list for the attempt in
which its watch-list failed, and tries watch-list again on the next one), a fallback
holds for **one sync attempt** unless the server said it does not serve watch-list. Each
is logged as ``watch_list.fallback`` (``permanent=``) and counted in
``stats.watch_list_fallbacks``.

For the rest of the reflector's life (``watch_list_fallback`` becomes true), when before
the end bookmark:

- the open (or an ``ERROR`` event) is rejected as a bad request: 400, 406 or 422, or an
  :class:`~informer.ApiError` whose reason is ``BadRequest``/``Invalid``/``NotAcceptable``
  (a server with the WatchList feature off answers 422 Invalid);
- a ``MODIFIED`` or ``DELETED`` event, or a ``BOOKMARK`` without the annotation arrives:
  a watch-list server sends neither before its end bookmark, a server that ignores
  ``sendInitialEvents`` (older than 1.27) does, and would on every attempt.

For this attempt only (the sync is a list, the next sync tries watch-list again):

- the stream ends, or stays silent for ``inactivity_timeout``, before the end bookmark
  (an API server restarting gracefully closes its streams; that says nothing about
  watch-list support);
- the end bookmark carries no resourceVersion.

Not a fallback: 410 / too-large RV (the RV is marked unavailable and the watch-list is
retried at once at ``""``, as client-go), 429 and connection failures and malformed lines
(back off, retry the watch-list), other errors (back off, retry).

Backoff
-------
client-go's ``ExponentialBackoffManager``: ``backoff_initial`` (0.8 s), times
``backoff_factor`` (2) up to ``backoff_cap`` (30 s), each delay stretched by
``1 + random() * backoff_jitter`` (so [30, 60) s at the cap); it resets to the initial
delay once ``backoff_reset_after`` (2 min) passed since the end of the previous backoff
with no new one.

Inactivity guard
----------------
Default ``inactivity_timeout`` = 180 s. A watch cache-served watch with bookmarks gets a
heartbeat bookmark about every 60 s (kube-apiserver's ``defaultBookmarkFrequency``), so
three missed heartbeats are a strong signal of a dead (half-open) connection; and 180 s
is below the 300 s floor of ``timeout_seconds`` — a dead connection never delivers the
server's timeout, and TCP keepalive would take hours. A server without bookmarks (watch
cache disabled) costs one cheap re-watch from the last RV per quiet 3 minutes. ``None``
disables the guard. The guard is a watchdog task that wakes every quarter of the timeout
and compares event counters: setting a cancel scope's deadline on every event was
measured at ~2.5 µs per event (a timer handle re-armed each time), close to the decode
cost of a whole ConfigMap event, against ~50 ns for the counter and clock read here. A
stall is declared after between 1 and 1.25 ``inactivity_timeout`` of silence.

Hot path and logging
--------------------
Per event: one type dispatch, one ``metadata.resourceVersion`` lookup, the store call, a
counter and a clock read; no logging above debug. Logs are structlog events bound to
``resource=name``: ``list.started``, ``list.done`` (count, rv, pages, seconds),
``list.expired``, ``list.failed``, ``watch.started``, ``watch.closed``,
``watch.expired``, ``watch.error``, ``watch.stalled``, ``watch.event_skipped``,
``watch_list.synced``, ``watch_list.fallback``, ``backoff`` (seconds). They carry RVs,
counts and keys at most: never object contents (think Secrets) — not even the bytes of a
malformed line, only its length.

Bad events (``watch.event_skipped``, ``store.failed``) are counted by cause in
``stats.bad_events`` (``malformed_event``, ``unknown_type``, ``no_resource_version``,
``store_failed``) and logged through a :class:`~informer._cache.throttle.LogThrottle`: the
first of a cause at once, then at most one line per cause per minute carrying
``suppressed=`` (how many were not logged since); when the watch ends, one
``watch.event_skipped.suppressed`` line per cause with a count still unreported. Lines
not written are counted in ``stats.logs_suppressed``.

Concurrency: ``run`` is one task; the only child is the per-watch watchdog, owned by a
task group inside the watch. Cancelling ``run`` exits the watch's context manager, which
closes the connection, at once.
"""

from __future__ import annotations

import enum
import random as _random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
import structlog
from anyio.abc import TaskStatus

from .._exceptions import (
    ApiError,
    ConnectionFailed,
    InformerError,
    ResourceExpired,
    TooManyRequests,
    WatchDecodeError,
    WatchEventTooLarge,
    api_error_from_status,
)
from .._failures import report_failure
from .._transforms import TransformFunc
from .._types import Obj, WatchEvent
from .listwatch import ListerWatcher
from .throttle import LogThrottle

__all__ = [
    "BAD_EVENT_CAUSES",
    "DEFAULT_INACTIVITY_TIMEOUT",
    "INITIAL_EVENTS_END_ANNOTATION",
    "ExponentialBackoff",
    "Reflector",
    "ReflectorState",
    "ReflectorStats",
    "ReflectorStore",
]

DEFAULT_INACTIVITY_TIMEOUT: Final = 180.0
"""Seconds of total silence (no event, no bookmark) after which a watch is re-opened."""

INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"

_SHORT_WATCH: Final = 1.0
"""A watch that ends cleanly sooner than this with no event at all is treated as an error."""

_REJECTED_STATUSES: Final = frozenset({400, 406, 422})
_REJECTED_REASONS: Final = frozenset({"BadRequest", "Invalid", "NotAcceptable"})


class ReflectorStore(Protocol):
    """The subset of a store the Reflector writes to (``DeltaFIFO`` satisfies it).

    The methods are plain (they must not await). ``replace`` takes ownership of the list.
    Objects are shared: the store must not mutate them.
    """

    def replace(self, objs: list[Obj], resource_version: str) -> object: ...

    def add(self, obj: Obj) -> object: ...

    def update(self, obj: Obj) -> object: ...

    def delete(self, obj: Obj) -> object: ...


class ReflectorState(enum.StrEnum):
    IDLE = "idle"
    """Not started."""
    LISTING = "listing"
    """Listing (a paginated list in flight)."""
    CONNECTING = "connecting"
    """Opening a watch."""
    WATCH_LISTING = "watch_listing"
    """Watch-list: receiving the initial events."""
    WATCHING = "watching"
    """A watch is open and its events are applied to the store."""
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"
    """``run`` returned (cancelled)."""


@dataclass(slots=True)
class ReflectorStats:
    """Counters for metrics and health; the Reflector updates them, readers must not.

    ``last_event_monotonic`` is the reflector clock's time (``time.monotonic`` by
    default) of the last watch event, bookmark or successful sync; ``None`` before any.
    """

    lists: int = 0
    """Complete-list attempts (a 410 retry at ``""`` counts again)."""
    list_pages: int = 0
    watch_lists: int = 0
    """Watch-list syncs attempted."""
    watches: int = 0
    """Watch opens attempted (watch-list opens included)."""
    relists: int = 0
    """Syncs (list or watch-list) attempted after the first successful one."""
    syncs: int = 0
    """Successful syncs (``store.replace`` calls)."""
    expired: int = 0
    """410s seen (list, watch open, mid-stream, ERROR events)."""
    errors: int = 0
    """Errors reported to ``on_watch_error`` (every list/watch failure)."""
    stalls: int = 0
    """Watches closed by the inactivity guard."""
    backoffs: int = 0
    backoff_seconds: float = 0.0
    """Total time spent backing off."""
    added: int = 0
    modified: int = 0
    deleted: int = 0
    bookmarks: int = 0
    error_events: int = 0
    skipped: int = 0
    """Events skipped: unknown type, no resourceVersion, malformed event."""
    bad_events: dict[str, int] = field(default_factory=dict)
    """Skipped events and store failures by cause: ``malformed_event``, ``unknown_type``,
    ``no_resource_version``, ``store_failed`` (each counted, logged or not)."""
    logs_suppressed: int = 0
    """Log lines about bad events not written (rate limit: see the module docstring)."""
    watch_list_fallbacks: int = 0
    """Syncs that fell back from watch-list to a list (one-attempt and permanent)."""
    last_event_monotonic: float | None = None
    connecting_since: float | None = None
    """Clock time since which the reflector has been trying to reach the API server
    without an answer: set when a watch open starts, or when a list fails with
    ``ConnectionFailed`` (its time of sending), unless already set; cleared by any
    answer (a watch opened, a list page received, an error status). ``None`` while the
    server answers (health reports a reflector connecting for too long)."""

    @property
    def events_by_type(self) -> dict[str, int]:
        return {
            "ADDED": self.added,
            "MODIFIED": self.modified,
            "DELETED": self.deleted,
            "BOOKMARK": self.bookmarks,
            "ERROR": self.error_events,
            "skipped": self.skipped,
        }

    @property
    def events(self) -> int:
        """Every event received, of any type."""
        return (
            self.added
            + self.modified
            + self.deleted
            + self.bookmarks
            + self.error_events
            + self.skipped
        )


class ExponentialBackoff:
    """client-go's ``ExponentialBackoffManager`` (see the module docstring).

    ``next_delay()`` returns the delay to sleep now and advances the sequence.
    """

    def __init__(
        self,
        *,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        reset_after: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if initial <= 0 or cap < initial or factor < 1 or jitter < 0 or reset_after < 0:
            raise ValueError("invalid backoff parameters")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self.reset_after = reset_after
        self._clock = clock
        self._random = random
        self._next = initial
        self._quiet_since: float | None = None  # when the last backoff ended

    def next_delay(self) -> float:
        now = self._clock()
        if self._quiet_since is not None and now - self._quiet_since >= self.reset_after:
            self._next = self.initial
        delay = self._next
        self._next = min(delay * self.factor, self.cap)
        if self.jitter > 0:
            delay *= 1.0 + self._random() * self.jitter
        self._quiet_since = now + delay
        return delay

    def reset(self) -> None:
        self._next = self.initial
        self._quiet_since = None


class _Next(enum.Enum):
    """What the run loop does next: (sync first?, back off first?)."""

    WATCH = (False, False)
    WATCH_BACKOFF = (False, True)
    RELIST = (True, False)
    RELIST_BACKOFF = (True, True)


class _End(enum.Enum):
    CLOSED = "closed"
    STALLED = "stalled"


class _WatchListUnsupported(Exception):
    """Internal: this watch-list attempt failed; the server does not serve watch-list at
    all when ``permanent`` (never escapes)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


# Causes of bad events (stats.bad_events keys, throttled log lines): a fixed set.
_MALFORMED: Final = "malformed_event"
_UNKNOWN_TYPE: Final = "unknown_type"
_NO_RV: Final = "no_resource_version"
_STORE_FAILED: Final = "store_failed"
BAD_EVENT_CAUSES: Final = (_MALFORMED, _NO_RV, _STORE_FAILED, _UNKNOWN_TYPE)
"""Every key ``stats.bad_events`` may hold (metrics export each, zero or not)."""
_REASONS: Final = {
    _MALFORMED: "malformed event",
    _UNKNOWN_TYPE: "unknown event type",
    _NO_RV: "no resourceVersion",
}
_LOG_INTERVAL: Final = 60.0
"""At most one log line per bad-event cause per this many seconds."""


def _rv_of(obj: Any) -> str | None:
    try:
        rv = obj["metadata"]["resourceVersion"]
    except (KeyError, TypeError, IndexError):
        return None
    return rv if isinstance(rv, str) and rv else None


def _received_items(page: Obj, transform: TransformFunc | None) -> list[Obj]:
    """The items of one list page as they are cached, in one pass over them.

    A List's items carry no ``apiVersion``/``kind`` (watch objects do): each item lacking
    them gets the List's own ``apiVersion`` and its ``kind`` minus ``List``
    (``ConfigMapList`` -> ``ConfigMap``), so the cache holds one shape of object however
    it arrived. Then ``transform`` runs on each. A List of an unknown kind (not ending in
    ``List``, or just ``List``) fills nothing.
    """
    items: list[Obj] = page.get("items") or []
    list_kind = page.get("kind")
    api_version = page.get("apiVersion")
    if (
        isinstance(list_kind, str)
        and len(list_kind) > 4
        and list_kind.endswith("List")
        and isinstance(api_version, str)
        and api_version
    ):
        kind = list_kind[:-4]
        if transform is None:
            for obj in items:
                if "kind" not in obj:
                    obj["kind"] = kind
                if "apiVersion" not in obj:
                    obj["apiVersion"] = api_version
            return items
        out: list[Obj] = []
        append = out.append
        for obj in items:
            if "kind" not in obj:
                obj["kind"] = kind
            if "apiVersion" not in obj:
                obj["apiVersion"] = api_version
            append(transform(obj))
        return out
    if transform is None:
        return items
    return [transform(obj) for obj in items]


def _is_rv_unavailable(exc: BaseException) -> bool:
    """410 Expired/Gone, or client-go's "too large resource version" (504 + cause)."""
    if isinstance(exc, ResourceExpired):
        return True
    if not isinstance(exc, ApiError):
        return False
    details = exc.body.get("details") if exc.body else None
    causes = details.get("causes") if isinstance(details, dict) else None
    if isinstance(causes, list) and any(
        isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge" for c in causes
    ):
        return True
    return exc.status == 504 and "Too large resource version" in exc.message


def _is_rejection(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and (
        exc.status in _REJECTED_STATUSES or exc.reason in _REJECTED_REASONS
    )


def _error_from_event(obj: Any) -> ApiError:
    status = obj if isinstance(obj, dict) else None
    code = status.get("code") if status else None
    return api_error_from_status(code if isinstance(code, int) and code else 500, status)


def _describe(exc: BaseException) -> dict[str, Any]:
    """Log fields for an error, without any object content."""
    fields: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, WatchDecodeError):
        fields["line_bytes"] = len(exc.line)
    elif isinstance(exc, ApiError):
        fields.update(status=exc.status, reason=exc.reason, message=exc.message)
    else:
        fields["message"] = str(exc)
    return fields


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
    :param transform: the informer's :data:`~informer._transforms.TransformFunc`, the one
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
        self._page_size = page_size or None
        self._use_watch_list = use_watch_list
        self._min_watch_timeout = min_watch_timeout
        self._inactivity_timeout = inactivity_timeout
        self._on_watch_error = on_watch_error
        self._clock = clock
        self._random = random
        self._sleep = sleep
        self._transform = transform
        self._backoff = ExponentialBackoff(
            initial=backoff_initial,
            cap=backoff_cap,
            factor=backoff_factor,
            jitter=backoff_jitter,
            reset_after=backoff_reset_after,
            clock=clock,
            random=random,
        )
        # Lazy (unlike ``get_logger().bind()``, which freezes the configuration of the
        # moment): an application configuring structlog after building informers still
        # gets its processors and level.
        self._log = structlog.get_logger(__name__, resource=name)
        self.stats = ReflectorStats()
        self._state = ReflectorState.IDLE
        self._running = False
        self._task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        self._last_rv = ""
        self._rv_unavailable = False
        self._paginated_result = False
        self._synced = False
        self._started = False
        self._watch_list_fallback = False
        self._list_next_sync = False  # a one-attempt watch-list fallback is pending
        self._throttle = LogThrottle(_LOG_INTERVAL, clock=clock)
        self._in_initial_events = False
        self._consecutive_expired = 0
        self._retry_after: float | None = None
        self.last_error: BaseException | None = None
        """The last list/watch error (also passed to ``on_watch_error``); kept after recovery."""
        self._list_page = 0

    # ------------------------------------------------------------ properties
    @property
    def last_sync_resource_version(self) -> str:
        """The RV of the last sync, event or bookmark applied ("" before the first sync)."""
        return self._last_rv

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
        return self._use_watch_list

    @property
    def watch_list_fallback(self) -> bool:
        """True once the server showed it does not serve watch-list; list+watch is used
        from then on (a one-attempt fallback leaves it false: see the module docstring)."""
        return self._watch_list_fallback

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
        nxt = _Next.RELIST
        try:
            while True:
                sync, backoff = nxt.value
                if backoff:
                    await self._back_off()
                if sync:
                    if self._synced:
                        self.stats.relists += 1
                    if self._use_watch_list and not self._watch_list_fallback:
                        if self._list_next_sync:
                            self._list_next_sync = False  # this attempt lists
                        else:
                            nxt = await self._watch(watch_list=True)
                            continue
                    try:
                        await self._list()
                    except Exception as exc:
                        self._report(exc)
                        self._log.warning(
                            "list.failed",
                            exc_info=not isinstance(exc, InformerError),
                            **_describe(exc),
                        )
                        nxt = _Next.RELIST_BACKOFF
                        continue
                nxt = await self._watch(watch_list=False)
        finally:
            self._state = ReflectorState.STOPPED
            self._running = False

    # ----------------------------------------------------------------- list
    async def _list(self) -> None:
        self._state = ReflectorState.LISTING
        rv = self._relist_resource_version()
        limit = self._page_size if (rv in ("", "0") or self._paginated_result) else None
        started = self._clock()
        self._log.info("list.started", rv=rv, limit=limit)
        try:
            items, list_rv, pages = await self._list_pages(rv, limit)
        except Exception as exc:
            if not _is_rv_unavailable(exc):
                raise
            if isinstance(exc, ResourceExpired):
                self.stats.expired += 1
            self._report(exc)
            failed_page = self._list_page
            self._log.info("list.expired", rv=rv, page=failed_page, **_describe(exc))
            self._rv_unavailable = True
            rv = ""
            items, list_rv, pages = await self._list_pages(rv, limit if failed_page <= 1 else None)
        if pages > 1 and rv == "0":
            self._paginated_result = True
        self._apply_sync(items, list_rv)
        self._log.info(
            "list.done",
            count=len(items),
            rv=list_rv,
            pages=pages,
            seconds=round(self._clock() - started, 3),
        )

    async def _list_pages(self, rv: str, limit: int | None) -> tuple[list[Obj], str, int]:
        self.stats.lists += 1
        items: list[Obj] = []
        token: str | None = None
        page = 0
        while True:
            page += 1
            self._list_page = page
            self.stats.list_pages += 1
            sent = self._clock()
            try:
                result = await self._lw.list(
                    resource_version=rv if token is None else None,
                    limit=limit,
                    continue_token=token,
                )
            except ConnectionFailed:
                if self.stats.connecting_since is None:
                    self.stats.connecting_since = sent
                raise
            except ApiError:
                self.stats.connecting_since = None  # answered
                raise
            self.stats.connecting_since = None
            meta = result.get("metadata") or {}
            page_items = _received_items(result, self._transform)
            if page == 1 and not meta.get("continue"):
                items = page_items  # the common single page: no copy
            else:
                items.extend(page_items)
            token = meta.get("continue") or None
            if token is None:
                list_rv = meta.get("resourceVersion")
                if not isinstance(list_rv, str) or not list_rv:
                    raise InformerError("list response carries no metadata.resourceVersion")
                return items, list_rv, page

    def _relist_resource_version(self) -> str:
        if self._rv_unavailable:
            return ""
        return self._last_rv or "0"

    def _apply_sync(self, items: list[Obj], rv: str) -> None:
        """Hand a complete state to the store and record it as synced at ``rv``."""
        self._store.replace(items, rv)
        self._last_rv = rv
        self._rv_unavailable = False
        self.stats.syncs += 1
        self.stats.last_event_monotonic = self._clock()
        self._synced = True
        if not self._started:
            self._started = True
            self._task_status.started()

    # ---------------------------------------------------------------- watch
    async def _watch(self, *, watch_list: bool) -> _Next:
        """Open one watch (or watch-list), consume it, and decide what comes next."""
        timeout = max(1, int(self._min_watch_timeout * (1.0 + self._random())))
        stats = self.stats
        stats.watches += 1
        if watch_list:
            stats.watch_lists += 1
            rv = "" if self._rv_unavailable else self._last_rv
            cm = self._lw.watch(
                resource_version=rv,
                timeout_seconds=timeout,
                allow_watch_bookmarks=True,
                send_initial_events=True,
                resource_version_match="NotOlderThan",
            )
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
                self._consecutive_expired = 0
            return self._after_watch_error(exc)
        finally:
            self._report_suppressed()
        delivered = stats.events - stats.error_events - progress_before
        if delivered:
            self._consecutive_expired = 0
        if self._in_initial_events:
            reason = "stream ended" if end is _End.CLOSED else "stream stalled"
            if end is _End.STALLED:
                stats.stalls += 1
            return self._fall_back(
                f"{reason} before the initial-events-end bookmark", permanent=False
            )
        if end is _End.STALLED:
            stats.stalls += 1
            self._log.warning(
                "watch.stalled", rv=self._last_rv, inactivity_timeout=self._inactivity_timeout
            )
            return _Next.WATCH
        seconds = self._clock() - opened
        self._log.debug("watch.closed", rv=self._last_rv, events=delivered, seconds=seconds)
        if not delivered and seconds < _SHORT_WATCH:
            self._log.warning("watch.short", rv=self._last_rv, seconds=round(seconds, 3))
            return _Next.WATCH_BACKOFF
        return _Next.WATCH

    async def _consume_guarded(self, events: AsyncIterator[WatchEvent], watch_list: bool) -> _End:
        """Consume under the inactivity watchdog; ``STALLED`` if it fired."""
        if self._inactivity_timeout is None:
            return await self._consume(events, watch_list)
        end = _End.STALLED
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as consume_scope:
                tg.start_soon(self._watchdog, consume_scope, self._inactivity_timeout)
                try:
                    end = await self._consume(events, watch_list)
                except Exception as exc:  # re-raised below, outside the task group
                    error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return end

    async def _watchdog(self, scope: anyio.CancelScope, silence: float) -> None:
        tick = silence / 4
        stats = self.stats
        seen = stats.events
        quiet_since = anyio.current_time()
        while True:
            await anyio.sleep(tick)
            now = anyio.current_time()
            count = stats.events
            if count != seen:
                seen, quiet_since = count, now
            elif now - quiet_since >= silence:
                scope.cancel()
                return

    async def _consume(self, events: AsyncIterator[WatchEvent], watch_list: bool) -> _End:
        if watch_list:
            await self._consume_initial(events)
        self._state = ReflectorState.WATCHING
        store = self._store
        add, update, delete = store.add, store.update, store.delete
        transform = self._transform
        stats = self.stats
        clock = self._clock
        async for event in events:
            stats.last_event_monotonic = clock()
            try:
                type_ = event["type"]
                obj = event["object"]
            except (KeyError, TypeError):
                stats.skipped += 1
                self._skip(None, _MALFORMED)
                continue
            if type_ == "MODIFIED":
                stats.modified += 1
                apply = update
            elif type_ == "ADDED":
                stats.added += 1
                apply = add
            elif type_ == "DELETED":
                stats.deleted += 1
                apply = delete
            elif type_ == "BOOKMARK":
                rv = _rv_of(obj)
                if rv is None:
                    stats.skipped += 1
                    self._skip(type_, _NO_RV)
                else:
                    stats.bookmarks += 1
                    self._last_rv = rv
                continue
            elif type_ == "ERROR":
                stats.error_events += 1
                raise _error_from_event(obj)
            else:
                stats.skipped += 1
                self._skip(type_, _UNKNOWN_TYPE)
                continue
            try:
                rv = obj["metadata"]["resourceVersion"]
            except (KeyError, TypeError):
                rv = None
            if not rv or rv.__class__ is not str:
                self._unskip(type_)
                self._skip(type_, _NO_RV)
                continue
            try:
                apply(obj if transform is None else transform(obj))
            except Exception as exc:
                self._store_failed(type_, obj, exc)
            self._last_rv = rv
        return _End.CLOSED

    async def _consume_initial(self, events: AsyncIterator[WatchEvent]) -> None:
        """Buffer the watch-list's initial ``ADDED`` objects up to the end bookmark, then
        replace the store. Raises ``_WatchListUnsupported`` on any sign that the server
        is not serving a watch-list (see the module docstring)."""
        buffered: list[Obj] = []
        stats = self.stats
        clock = self._clock
        started = clock()
        async for event in events:
            stats.last_event_monotonic = clock()
            type_ = event.get("type") if isinstance(event, dict) else None
            obj = event.get("object") if isinstance(event, dict) else None
            if type_ == "ADDED":
                stats.added += 1
                if _rv_of(obj) is None:
                    self._unskip("ADDED")
                    self._skip(type_, _NO_RV)
                    continue
                buffered.append(obj if self._transform is None else self._transform(obj))
            elif type_ == "BOOKMARK":
                stats.bookmarks += 1
                rv = _rv_of(obj)
                annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
                if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                    raise _WatchListUnsupported(
                        "a bookmark before the initial-events-end one", permanent=True
                    )
                if rv is None:
                    raise _WatchListUnsupported(
                        "initial-events-end bookmark without an RV", permanent=False
                    )
                self._in_initial_events = False
                self._apply_sync(buffered, rv)
                self._log.info(
                    "watch_list.synced",
                    count=len(buffered),
                    rv=rv,
                    seconds=round(clock() - started, 3),
                )
                return
            elif type_ == "ERROR":
                stats.error_events += 1
                raise _error_from_event(obj)
            elif type_ in ("MODIFIED", "DELETED"):
                raise _WatchListUnsupported(
                    f"a {type_} event before the initial-events-end", permanent=True
                )
            else:
                stats.skipped += 1
                self._skip(type_, _UNKNOWN_TYPE)
        raise _WatchListUnsupported(
            "stream ended before the initial-events-end bookmark", permanent=False
        )

    # ------------------------------------------------------------ decisions
    def _after_watch_error(self, exc: Exception) -> _Next:
        if self._in_initial_events:
            return self._after_watch_list_error(exc)
        self._report(exc)
        if isinstance(exc, ResourceExpired):
            self.stats.expired += 1
            self._log.info("watch.expired", rv=self._last_rv, **_describe(exc))
            return self._after_expired()
        if isinstance(exc, WatchEventTooLarge):
            self._log.warning("watch.error", rv=self._last_rv, action="relist", **_describe(exc))
            return _Next.RELIST_BACKOFF
        if isinstance(exc, TooManyRequests | ConnectionFailed | WatchDecodeError):
            self._log.warning("watch.error", rv=self._last_rv, action="rewatch", **_describe(exc))
            return _Next.WATCH_BACKOFF
        self._log.warning(
            "watch.error",
            rv=self._last_rv,
            action="relist",
            exc_info=not isinstance(exc, InformerError),
            **_describe(exc),
        )
        return _Next.RELIST_BACKOFF

    def _after_watch_list_error(self, exc: Exception) -> _Next:
        if isinstance(exc, _WatchListUnsupported):
            return self._fall_back(str(exc), permanent=exc.permanent)
        self._report(exc)
        if _is_rejection(exc):
            return self._fall_back(f"rejected: {type(exc).__name__}", exc, permanent=True)
        if _is_rv_unavailable(exc):
            if isinstance(exc, ResourceExpired):
                self.stats.expired += 1
            self._rv_unavailable = True
            self._log.info("watch.expired", rv=self._last_rv, watch_list=True, **_describe(exc))
            return self._after_expired()
        self._log.warning(
            "watch.error",
            rv=self._last_rv,
            watch_list=True,
            exc_info=not isinstance(exc, InformerError),
            **_describe(exc),
        )
        return _Next.RELIST_BACKOFF

    def _after_expired(self) -> _Next:
        """Relist at once after a 410; back off if 410s repeat with no event between."""
        self._consecutive_expired += 1
        return _Next.RELIST if self._consecutive_expired == 1 else _Next.RELIST_BACKOFF

    def _fall_back(self, why: str, exc: BaseException | None = None, *, permanent: bool) -> _Next:
        """Sync by a list now; for good when ``permanent``, else for this attempt only."""
        self._in_initial_events = False
        self.stats.watch_list_fallbacks += 1
        if permanent:
            self._watch_list_fallback = True
        else:
            self._list_next_sync = True
        fields = _describe(exc) if exc is not None else {}
        self._log.warning("watch_list.fallback", why=why, permanent=permanent, **fields)
        return _Next.RELIST

    def _report(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.last_error = exc
        if isinstance(exc, TooManyRequests):
            self._retry_after = exc.retry_after  # honoured by the next backoff (list or watch)
        if self._on_watch_error is None:
            return
        try:
            self._on_watch_error(exc)
        except Exception as exc:
            report_failure("callback", f"{self.name} on_watch_error", exc)
            self._log.exception("on_watch_error.failed")

    async def _back_off(self) -> None:
        delay = self._backoff.next_delay()
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
            self._retry_after = None
        self.stats.backoffs += 1
        self.stats.backoff_seconds += delay
        self._state = ReflectorState.BACKING_OFF
        self._log.info("backoff", seconds=round(delay, 3))
        await self._sleep(delay)

    # --------------------------------------------------------------- logging
    def _skip(self, type_: object, cause: str) -> None:
        """Count a skipped event by cause; log it unless the throttle says not now."""
        if (suppressed := self._bad_event(cause)) is None:
            return
        self._log.error(
            "watch.event_skipped",
            type=str(type_)[:64],
            reason=_REASONS[cause],
            cause=cause,
            rv=self._last_rv,
            suppressed=suppressed,
        )

    def _bad_event(self, cause: str) -> int | None:
        """Count one bad event; ``None`` if its log line is suppressed, else how many of
        its cause were suppressed since the last line."""
        bad = self.stats.bad_events
        bad[cause] = bad.get(cause, 0) + 1
        suppressed = self._throttle.allow(cause)
        if suppressed is None:
            self.stats.logs_suppressed += 1
        return suppressed

    def _report_suppressed(self) -> None:
        """At the end of a watch: one line per cause whose suppressed lines are unreported."""
        for cause, count in self._throttle.drain().items():
            self._log.error(
                "watch.event_skipped.suppressed", cause=cause, suppressed=count, rv=self._last_rv
            )

    def _unskip(self, type_: str) -> None:
        """Move an event already counted under its type to ``skipped``."""
        stats = self.stats
        if type_ == "ADDED":
            stats.added -= 1
        elif type_ == "MODIFIED":
            stats.modified -= 1
        elif type_ == "DELETED":
            stats.deleted -= 1
        stats.skipped += 1

    def _store_failed(self, type_: str, obj: Obj, exc: Exception) -> None:
        if (suppressed := self._bad_event(_STORE_FAILED)) is None:
            return
        meta = obj.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name")
        report_failure("store", self.name, exc, key=f"{ns}/{name}" if ns else str(name))
        self._log.error(
            "store.failed",
            suppressed=suppressed,
            type=type_,
            namespace=meta.get("namespace"),
            object_name=meta.get("name"),
            rv=meta.get("resourceVersion"),
            error=type(exc).__name__,
            exc_info=True,
        )
