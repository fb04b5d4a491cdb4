"""The Reflector's observable state: ``ReflectorState`` and ``ReflectorStats``.

Only the Reflector and the helpers it delegates to (``ListSync``, ``Recovery``,
``BadEvents``, the watch-list receiver and ``WatchListMode``) write them; metrics and
health read them. One event loop, no
locks: a reader sees each counter as of its last plain (non-awaiting) update.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["ReflectorState", "ReflectorStats"]


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
    """Skipped events and objects, and store failures, by cause: ``malformed_event``,
    ``unknown_type``, ``no_resource_version``, ``invalid_object``, ``store_failed`` (each
    counted, logged or not; see ``_cache/bad_events.py``)."""
    logs_suppressed: int = 0
    """Log lines about bad events not written (rate limit: see ``_cache/bad_events.py``)."""
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
