"""The watch-list sync (``use_watch_list=True``) and its fallback rule.

The sync is a watch opened by :func:`open_watch_list` with ``send_initial_events=True``,
``resource_version_match="NotOlderThan"`` and ``resource_version`` = the last synced RV
(``""`` at first or once unavailable). :func:`receive_initial_events` buffers the initial
``ADDED`` objects (each through the transform as it arrives, so what it drops never
accumulates) until the ``BOOKMARK`` annotated ``k8s.io/initial-events-end: "true"``; the
Reflector then calls ``store.replace(buffered, bookmark_rv)`` and consumes the same
stream as a normal watch.

Fallback rule
-------------
"When in doubt, fall back": a list always works, a misread watch-list could hang or
lose data. Like client-go (whose ``ListAndWatch`` falls back to a list for the attempt in
which its watch-list failed, and tries watch-list again on the next one), a fallback
holds for **one sync attempt** unless the server said it does not serve watch-list. Each
is logged as ``watch_list.fallback`` (``permanent=``) and counted in
``stats.watch_list_fallbacks``.

For the rest of the reflector's life (``Reflector.watch_list_fallback`` becomes true),
when before the end bookmark:

- the open (or an ``ERROR`` event) is rejected as a bad request (:func:`is_rejection`:
  400, 406 or 422, or an :class:`~informer.ApiError` whose reason is
  ``BadRequest``/``Invalid``/``NotAcceptable``; a server with the WatchList feature off
  answers 422 Invalid);
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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from .._exceptions import ApiError
from .._meta.types import Obj, WatchEvent
from .bad_events import NO_RV, UNKNOWN_TYPE, BadEvents
from .listwatch import ListerWatcher
from .reflector_stats import ReflectorStats
from .responses import describe, error_from_event, rv_of
from .transforms import TransformFunc

__all__ = [
    "INITIAL_EVENTS_END_ANNOTATION",
    "WatchListMode",
    "WatchListUnsupported",
    "is_rejection",
    "open_watch_list",
    "receive_initial_events",
]

INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"

_REJECTED_STATUSES: Final = frozenset({400, 406, 422})
_REJECTED_REASONS: Final = frozenset({"BadRequest", "Invalid", "NotAcceptable"})


class WatchListUnsupported(Exception):
    """Internal: this watch-list attempt failed; the server does not serve watch-list at
    all when ``permanent`` (never escapes the Reflector)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class WatchListMode:
    """Whether the next sync is a watch-list: the state of the fallback rule.

    :param enabled: the Reflector's ``use_watch_list``.
    :param stats: ``watch_list_fallbacks`` is counted there.
    :param log: the Reflector's logger (``watch_list.fallback``).
    """

    def __init__(self, enabled: bool, *, stats: ReflectorStats, log: Any) -> None:
        self.enabled = enabled
        self.unsupported = False
        """True once the server showed it does not serve watch-list (for good)."""
        self._list_once = False  # a one-attempt fallback is pending
        self._stats = stats
        self._log = log

    def next_sync(self) -> bool:
        """Whether the sync about to start is a watch-list; a pending one-attempt fallback
        makes this one a list (and is spent)."""
        if not self.enabled or self.unsupported:
            return False
        if self._list_once:
            self._list_once = False
            return False
        return True

    def fall_back(self, why: str, exc: BaseException | None = None, *, permanent: bool) -> None:
        """Sync by a list next; for good when ``permanent``, else for one attempt."""
        self._stats.watch_list_fallbacks += 1
        if permanent:
            self.unsupported = True
        else:
            self._list_once = True
        fields = describe(exc) if exc is not None else {}
        self._log.warning("watch_list.fallback", why=why, permanent=permanent, **fields)


def is_rejection(exc: BaseException) -> bool:
    """The server rejected the watch-list request itself (a permanent fallback)."""
    return isinstance(exc, ApiError) and (
        exc.status in _REJECTED_STATUSES or exc.reason in _REJECTED_REASONS
    )


def open_watch_list(
    lister_watcher: ListerWatcher, *, resource_version: str, timeout_seconds: int
) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
    """The watch-list request: initial events first, bookmarks on."""
    return lister_watcher.watch(
        resource_version=resource_version,
        timeout_seconds=timeout_seconds,
        allow_watch_bookmarks=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
    )


async def receive_initial_events(
    events: AsyncIterator[WatchEvent],
    *,
    stats: ReflectorStats,
    clock: Callable[[], float],
    transform: TransformFunc | None,
    bad_events: BadEvents,
    rv: str,
) -> tuple[list[Obj], str]:
    """Buffer the initial ``ADDED`` objects up to the end bookmark; return them and the
    bookmark's RV, leaving the rest of ``events`` unread.

    Counts each event into ``stats`` and stamps ``stats.last_event_monotonic``; skips
    (and counts as bad) an ``ADDED`` without a resourceVersion, one the transform raises
    on, or an unknown type (``rv``, the Reflector's last synced RV, is logged with them). Raises
    :class:`WatchListUnsupported` on any sign that the server is not serving a watch-list
    (see the module docstring), the ``ApiError`` of an ``ERROR`` event, and whatever the
    stream raises.
    """
    buffered: list[Obj] = []
    async for event in events:
        stats.last_event_monotonic = clock()
        type_ = event.get("type") if isinstance(event, dict) else None
        obj = event.get("object") if isinstance(event, dict) else None
        if type_ == "ADDED":
            stats.added += 1
            if rv_of(obj) is None:
                bad_events.unskip("ADDED")
                bad_events.skip(type_, NO_RV, rv=rv)
                continue
            if transform is None:
                buffered.append(obj)
                continue
            try:
                buffered.append(transform(obj))
            except Exception as exc:
                bad_events.store_failed(type_, obj, exc)
        elif type_ == "BOOKMARK":
            stats.bookmarks += 1
            end_rv = rv_of(obj)
            annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
            if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                raise WatchListUnsupported(
                    "a bookmark before the initial-events-end one", permanent=True
                )
            if end_rv is None:
                raise WatchListUnsupported(
                    "initial-events-end bookmark without an RV", permanent=False
                )
            return buffered, end_rv
        elif type_ == "ERROR":
            stats.error_events += 1
            raise error_from_event(obj)
        elif type_ in ("MODIFIED", "DELETED"):
            raise WatchListUnsupported(
                f"a {type_} event before the initial-events-end", permanent=True
            )
        else:
            stats.skipped += 1
            bad_events.skip(type_, UNKNOWN_TYPE, rv=rv)
    raise WatchListUnsupported(
        "stream ended before the initial-events-end bookmark", permanent=False
    )
