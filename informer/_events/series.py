"""Aggregation of repeated events into one Event with a ``series``: client-go's
``tools/events`` ``eventBroadcasterImpl`` (``event_broadcaster.go``).

What client-go does, and this module with it:

- The first occurrence of an event is written (created) and kept in a cache under its
  key.
- An *isomorphic* occurrence while the key is cached starts a series:
  ``series = {count: 2, lastObservedTime: now}`` written at once (a PATCH of ``series``;
  client-go's ``recordToSink``).
- Later occurrences only bump ``count`` and ``lastObservedTime`` in the cache: nothing is
  written for them then.
- Every ``refreshTime`` (30 min) the series still running are written again
  (``refreshExistingEventSeries``: it keeps the Event's count current and its TTL alive).
- ``finishTime`` (6 min) after its last observation a series is written one last time
  with its final count and leaves the cache (``finishSeries``); a single event leaves
  the cache ``finishTime`` after its ``eventTime``. The next occurrence creates a new
  Event.

Where this module differs, deliberately:

- The key (see :func:`event_key`) is the regarding object *without its
  resourceVersion*, plus type, reason, action, note, reporting controller and instance
  and related object. client-go's ``getKey`` holds the full reference (resourceVersion
  included) and not the note: a controller whose own status writes bump the object's
  resourceVersion would never aggregate, and a different note would be folded into the
  first Event and lost. The key here is ``tools/record``'s ``getEventKey`` (which has the
  message and no resourceVersion) plus the events.k8s.io fields.
- client-go checks ``finishSeries`` every 6 minutes (so a series ends 6 to 12 minutes
  after its last occurrence); :meth:`SeriesCache.due` is meant to be called about every
  :data:`SCAN_INTERVAL` (1 min), so it ends 6 to 7 minutes after.
- A final write is skipped when the server already has the final count.
- The cache holds at most ``max_entries`` (4096, ``tools/record``'s LRU size; client-go's
  map here is unbounded): beyond it the least recently observed key leaves early, with a
  final write when its series has an unwritten count.

Pure and synchronous: methods return the writes to make (``Write``), the caller makes
them and reports success with :meth:`SeriesCache.written`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final

from .._meta.types import Obj
from .model import micro_time, reference_identity

__all__ = [
    "FINISH_TIME",
    "REFRESH_TIME",
    "SCAN_INTERVAL",
    "SERIES_CACHE_SIZE",
    "SeriesCache",
    "Write",
    "event_key",
]

FINISH_TIME: Final = 6 * 60.0
REFRESH_TIME: Final = 30 * 60.0
SCAN_INTERVAL: Final = 60.0
SERIES_CACHE_SIZE: Final = 4096


def event_key(event: Obj) -> tuple[Any, ...]:
    """Which cached Event an occurrence aggregates into (see the module docstring)."""
    related = event.get("related")
    return (
        reference_identity(event["regarding"]),
        event["type"],
        event["reason"],
        event["action"],
        event["note"],
        event["reportingController"],
        event["reportingInstance"],
        reference_identity(related) if related else None,
    )


@dataclass(frozen=True, slots=True)
class Write:
    """One write to make: ``event`` is created when it has no ``series``, else its series
    is patched (and the Event created with it when the server lost it)."""

    key: Hashable
    event: Obj

    @property
    def count(self) -> int:
        series = self.event.get("series")
        return int(series["count"]) if series else 1


@dataclass(slots=True)
class _Entry:
    event: Obj  # the Event as first written (no series); never handed out
    event_time: float
    count: int = 1
    last_observed: float = 0.0
    written_count: int = 0  # the count the server is known to hold (0: not yet)
    last_written: float = 0.0

    def write(self, key: Hashable) -> Write:
        event = copy.deepcopy(self.event)
        if self.count >= 2:
            event["series"] = {
                "count": self.count,
                "lastObservedTime": micro_time(self.last_observed),
            }
        return Write(key, event)


class SeriesCache:
    """The cache of recent Events, by :func:`event_key`. Not thread-safe."""

    __slots__ = ("_entries", "finish_time", "max_entries", "refresh_time")

    def __init__(
        self,
        *,
        finish_time: float = FINISH_TIME,
        refresh_time: float = REFRESH_TIME,
        max_entries: int = SERIES_CACHE_SIZE,
    ) -> None:
        self.finish_time = finish_time
        self.refresh_time = refresh_time
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def observe(self, event: Obj, now: float) -> tuple[bool, list[Write]]:
        """Record one occurrence of ``event`` (an events.k8s.io/v1 Event without
        ``series``; the cache keeps it, the caller must not change it afterwards) at
        ``now``. Returns whether it was folded into a cached Event, and the writes it
        calls for: the new Event, the start of a series, nothing for a running series,
        and possibly the final write of an evicted one."""
        key = event_key(event)
        entry = self._entries.get(key)
        if entry is None:
            writes = self._evict_for_one()
            entry = _Entry(event=event, event_time=now, last_observed=now)
            self._entries[key] = entry
            writes.append(entry.write(key))
            return False, writes
        self._entries.move_to_end(key)
        entry.count += 1
        entry.last_observed = now
        return True, [entry.write(key)] if entry.count == 2 else []

    def written(self, write: Write, now: float) -> None:
        """The server now holds ``write`` (its count)."""
        entry = self._entries.get(write.key)
        if entry is not None and write.count > entry.written_count:
            entry.written_count = write.count
            entry.last_written = now

    def due(self, now: float) -> list[Write]:
        """The periodic writes due at ``now``: finished series (final count; they leave
        the cache), running series not written for ``refresh_time``; single events older
        than ``finish_time`` leave the cache."""
        writes: list[Write] = []
        for key, entry in list(self._entries.items()):
            if entry.count >= 2:
                if now - entry.last_observed > self.finish_time:
                    del self._entries[key]
                    if entry.count != entry.written_count:
                        writes.append(entry.write(key))
                elif now - entry.last_written >= self.refresh_time:
                    writes.append(entry.write(key))
            elif now - entry.event_time > self.finish_time:
                del self._entries[key]
        return writes

    def _evict_for_one(self) -> list[Write]:
        writes: list[Write] = []
        while len(self._entries) >= self.max_entries:
            key, entry = self._entries.popitem(last=False)
            if entry.count >= 2 and entry.count != entry.written_count:
                writes.append(entry.write(key))
        return writes

    def __len__(self) -> int:
        return len(self._entries)
