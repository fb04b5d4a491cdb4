"""``BadEvents``: the Reflector's count and throttled log of events and objects it
cannot apply.

Causes, a fixed set (the keys of ``ReflectorStats.bad_events``): ``malformed_event`` (not
a ``{"type", "object"}`` mapping), ``unknown_type``, ``no_resource_version`` (all three
skipped, logged as ``watch.event_skipped``), ``invalid_object`` (an object the store
cannot key: not a mapping, no ``metadata`` mapping, no ``metadata.name``; skipped,
logged as ``object.skipped`` with its namespace, uid and RV) and ``store_failed`` (the
transform or a store method raised: logged as ``store.failed`` with the object's
namespace, name and RV, and reported to the failure hook under its key; the watch goes
on, as client-go's does).

Objects of a list or a watch-list are skipped the same way (``invalid_object``,
``store_failed``): one object the cache cannot hold never fails a sync, so every other
object keeps converging (a sync that failed would be retried, and fail, for as long as
the server sends that object, and the cache would keep objects the server deleted).

Every bad event is counted by cause, logged or not. Log lines go through a
:class:`~informer._cache.throttle.LogThrottle`: the first of a cause at once, then at
most one line per cause per minute carrying ``suppressed=`` (how many were not logged
since); ``report_suppressed`` (the Reflector calls it when a watch ends) writes one
``watch.event_skipped.suppressed`` line per cause with a count still unreported. Lines
not written are counted in ``stats.logs_suppressed``. No line carries object content:
the event type (cut to 64 characters), names and RVs at most.

The Reflector's hot path calls none of this for a good event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from .._failures import report_failure
from .reflector_stats import ReflectorStats
from .throttle import LogThrottle

__all__ = ["INVALID_OBJECT", "MALFORMED", "NO_RV", "STORE_FAILED", "UNKNOWN_TYPE", "BadEvents"]

MALFORMED: Final = "malformed_event"
UNKNOWN_TYPE: Final = "unknown_type"
NO_RV: Final = "no_resource_version"
STORE_FAILED: Final = "store_failed"
INVALID_OBJECT: Final = "invalid_object"
BAD_EVENT_CAUSES: Final = (INVALID_OBJECT, MALFORMED, NO_RV, STORE_FAILED, UNKNOWN_TYPE)
"""Every key ``stats.bad_events`` may hold (metrics export each, zero or not)."""
_REASONS: Final = {
    MALFORMED: "malformed event",
    UNKNOWN_TYPE: "unknown event type",
    NO_RV: "no resourceVersion",
}
LOG_INTERVAL: Final = 60.0
"""At most one log line per bad-event cause per this many seconds."""


class BadEvents:
    """Counts bad events into ``stats`` and logs them on ``log`` (see the module docstring).

    :param name: the reflector's name, the failure hook's ``where``.
    :param log: the reflector's logger (bound to ``resource=``).
    """

    def __init__(
        self,
        name: str,
        *,
        stats: ReflectorStats,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._stats = stats
        self._log = log
        self._throttle = LogThrottle(LOG_INTERVAL, clock=clock)

    def skip(self, type_: object, cause: str, *, rv: str) -> None:
        """Count a skipped event by cause (the caller counted it in ``stats.skipped``);
        log it unless the throttle says not now. ``rv``: the reflector's last synced RV."""
        if (suppressed := self._count(cause)) is None:
            return
        self._log.error(
            "watch.event_skipped",
            type=str(type_)[:64],
            reason=_REASONS[cause],
            cause=cause,
            rv=rv,
            suppressed=suppressed,
        )

    def unskip(self, type_: str) -> None:
        """Move an event already counted under its type to ``stats.skipped``."""
        stats = self._stats
        if type_ == "ADDED":
            stats.added -= 1
        elif type_ == "MODIFIED":
            stats.modified -= 1
        elif type_ == "DELETED":
            stats.deleted -= 1
        stats.skipped += 1

    def invalid_object(self, type_: str, obj: object, exc: Exception) -> None:
        """The store cannot key ``obj`` (``exc``, from the key function): count, log.

        ``type_``: the event type, or ``"list"`` / ``"watch-list"`` for a sync's object.
        """
        if (suppressed := self._count(INVALID_OBJECT)) is None:
            return
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict):
            meta = {}
        self._log.error(
            "object.skipped",
            type=type_,
            cause=INVALID_OBJECT,
            reason=str(exc)[:200],
            namespace=_text(meta.get("namespace")),
            uid=_text(meta.get("uid")),
            rv=_text(meta.get("resourceVersion")),
            suppressed=suppressed,
        )

    def store_failed(self, type_: str, obj: object, exc: Exception) -> None:
        """The transform or a store method raised on ``obj``: count, report to the
        failure hook, log. ``type_`` as for :meth:`invalid_object`."""
        if (suppressed := self._count(STORE_FAILED)) is None:
            return
        meta = (obj.get("metadata") if isinstance(obj, dict) else None) or {}
        if not isinstance(meta, dict):
            meta = {}
        ns, name = meta.get("namespace"), meta.get("name")
        report_failure("store", self._name, exc, key=f"{ns}/{name}" if ns else str(name))
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

    def report_suppressed(self, *, rv: str) -> None:
        """At the end of a watch: one line per cause whose suppressed lines are unreported."""
        for cause, count in self._throttle.drain().items():
            self._log.error("watch.event_skipped.suppressed", cause=cause, suppressed=count, rv=rv)

    def _count(self, cause: str) -> int | None:
        """Count one bad event; ``None`` if its log line is suppressed, else how many of
        its cause were suppressed since the last line."""
        bad = self._stats.bad_events
        bad[cause] = bad.get(cause, 0) + 1
        suppressed = self._throttle.allow(cause)
        if suppressed is None:
            self._stats.logs_suppressed += 1
        return suppressed


def _text(value: object) -> str | None:
    """A metadata value for a log line: a string cut to 128 characters, or None."""
    return value[:128] if isinstance(value, str) else None
