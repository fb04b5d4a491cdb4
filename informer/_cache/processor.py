"""``SharedProcessor``: fans notifications out to every listener of an informer.

The informer's processing loop hands each notification to every listener (``add``)
after it updated its store, so a listener never sees an object the store does not hold
yet; it never awaits there, and may call handlers (an idle listener delivers at once:
``listener.py``).

Resync: a listener with a resync period gets the resync notifications (an update from a
Sync delta, or from a Replaced delta of an unchanged object after a relist: its old and
new resourceVersion are equal) only while it is in :attr:`SharedProcessor.syncing`, the
set chosen by the last :meth:`should_resync`; all other notifications go to every
listener (:attr:`SharedProcessor.listeners`).
"""

from __future__ import annotations

import time

from .listener import ProcessorListener

__all__ = ["MIN_RESYNC_PERIOD", "SharedProcessor"]

MIN_RESYNC_PERIOD = 1.0


class SharedProcessor:
    """The set of listeners of one informer, and which of them are due a resync."""

    __slots__ = ("listeners", "syncing")

    def __init__(self) -> None:
        self.listeners: list[ProcessorListener] = []
        self.syncing: list[ProcessorListener] = []

    # The lists are replaced, never changed in place: a handler called while the
    # processing loop iterates one of them may add or remove listeners.

    def add_listener(self, listener: ProcessorListener) -> None:
        self.listeners = [*self.listeners, listener]
        if listener.resync_period > 0:
            listener.determine_next_resync(time.monotonic())

    def remove_listener(self, listener: ProcessorListener) -> bool:
        """Remove ``listener``; False if it was not registered."""
        if listener not in self.listeners:
            return False
        self.listeners = [lst for lst in self.listeners if lst is not listener]
        self.syncing = [lst for lst in self.syncing if lst is not listener]
        return True

    def resync_check_period(self) -> float:
        """Smallest listener resync period (at least 1 s); 0 when no listener wants one."""
        periods = [lst.resync_period for lst in self.listeners if lst.resync_period > 0]
        return max(MIN_RESYNC_PERIOD, min(periods)) if periods else 0.0

    def should_resync(self, now: float | None = None) -> bool:
        """Pick the listeners whose resync is due; True if there is any."""
        now = time.monotonic() if now is None else now
        due = [lst for lst in self.listeners if lst.should_resync(now)]
        for lst in due:
            lst.determine_next_resync(now)
        self.syncing = due
        return bool(due)
