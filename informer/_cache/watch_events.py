"""Applying watch events to the Reflector's store: client-go's ``watchHandler`` loop.

:func:`apply_watch_events` is the hot path of a synced cache: per event, one type
dispatch, one ``metadata.resourceVersion`` lookup, the transform, the store call and a
counter (the counters and the last RV are kept in locals and written back once per
batch). What it skips and why is :class:`~informer._cache.bad_events.BadEvents`'
business; it never logs itself and never awaits. Only the Reflector calls it, from its
watch task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .._exceptions import ObjectKeyError
from .._meta.types import Obj, WatchEvent
from .bad_events import MALFORMED, NO_RV, UNKNOWN_TYPE, BadEvents
from .reflector_stats import ReflectorStats
from .responses import error_from_event, rv_of
from .transforms import TransformFunc

__all__ = ["EventStore", "apply_watch_events"]


class EventStore(Protocol):
    """What watch events are applied to (the Reflector's store); plain methods."""

    def add(self, obj: Obj) -> object: ...

    def update(self, obj: Obj) -> object: ...

    def delete(self, obj: Obj) -> object: ...


def apply_watch_events(
    events: Sequence[WatchEvent],
    *,
    store: EventStore,
    transform: TransformFunc | None,
    stats: ReflectorStats,
    bad_events: BadEvents,
    last_rv: str,
    set_last_rv: Callable[[str], object],
) -> None:
    """Apply ``events`` to ``store`` in order: ``ADDED``/``MODIFIED``/``DELETED`` to
    ``add``/``update``/``delete`` (after ``transform``), ``BOOKMARK`` only advances the
    RV. Each applied event's RV (or a bookmark's) becomes the last RV, handed to
    ``set_last_rv`` once at the end, also when an ``ERROR`` event raises its
    ``ApiError`` (the events after it are not applied). Malformed events, events
    without a resourceVersion or of an unknown type, objects the store cannot key and
    store calls that raise are skipped and reported to ``bad_events``."""
    add, update, delete = store.add, store.update, store.delete
    modified = added = deleted = 0
    try:
        for event in events:
            try:
                type_ = event["type"]
                obj = event["object"]
            except (KeyError, TypeError):
                stats.skipped += 1
                bad_events.skip(None, MALFORMED, rv=last_rv)
                continue
            if type_ == "MODIFIED":
                modified += 1
                apply = update
            elif type_ == "ADDED":
                added += 1
                apply = add
            elif type_ == "DELETED":
                deleted += 1
                apply = delete
            elif type_ == "BOOKMARK":
                rv = rv_of(obj)
                if rv is None:
                    stats.skipped += 1
                    bad_events.skip(type_, NO_RV, rv=last_rv)
                else:
                    stats.bookmarks += 1
                    last_rv = rv
                continue
            elif type_ == "ERROR":
                stats.error_events += 1
                raise error_from_event(obj)
            else:
                stats.skipped += 1
                bad_events.skip(type_, UNKNOWN_TYPE, rv=last_rv)
                continue
            try:
                rv = obj["metadata"]["resourceVersion"]
            except (KeyError, TypeError):
                rv = None
            if not rv or rv.__class__ is not str:
                # Counted above under its type: a skipped event instead.
                if type_ == "MODIFIED":
                    modified -= 1
                elif type_ == "ADDED":
                    added -= 1
                else:
                    deleted -= 1
                stats.skipped += 1
                bad_events.skip(type_, NO_RV, rv=last_rv)
                continue
            try:
                apply(obj if transform is None else transform(obj))
            except ObjectKeyError as exc:
                bad_events.invalid_object(type_, obj, exc)
            except Exception as exc:
                bad_events.store_failed(type_, obj, exc)
            last_rv = rv
    finally:
        set_last_rv(last_rv)
        stats.modified += modified
        stats.added += added
        stats.deleted += deleted
