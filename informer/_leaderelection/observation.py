"""Observing a Lease: whether its holder still holds it, judged on our own clock.

client-go's rule (``observedRecord`` and ``observedTime``): the times written in a Lease
come from the holder's clock, which may disagree with ours, so they are never compared
with our clock. The observer keeps the record (the Lease's ``spec``) it last saw and the
local time at which it first saw the record in that form; the record is **expired** once
``leaseDurationSeconds`` of local time passed since then. A holder that renews writes a
new ``renewTime``, so its record changes and the observation starts again; a write that
leaves the record as it was (e.g. someone else's label or annotation) does not.

One rule for every observer: the :class:`~informer.LeaderElector` observes the Lease it
campaigns for, the shard membership (:mod:`informer._sharding.membership`) every other
member's Lease. Observations are immutable: :func:`observe` returns the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._meta.objects import resource_version
from .._meta.types import Obj
from .record import lease_spec

__all__ = ["ObservedLease", "observe"]


@dataclass(frozen=True, slots=True)
class ObservedLease:
    """A Lease as last observed, and since when its record is unchanged.

    ``lease`` is the Lease object as last read or written (its ``resourceVersion`` is the
    one to write at); ``record`` a copy of its ``spec``; ``since`` the observer's clock
    reading when ``record`` was first observed. Nobody mutates ``lease`` or ``record``.
    """

    lease: Obj
    record: Obj
    since: float

    @property
    def holder(self) -> str:
        """The ``holderIdentity`` (``""``: nobody holds the Lease)."""
        return str(self.record.get("holderIdentity") or "")

    @property
    def released(self) -> bool:
        """Nobody holds the Lease (its holder released it, or never took it)."""
        return not self.holder

    @property
    def lease_seconds(self) -> float:
        """The ``leaseDurationSeconds`` of the record (0 when missing or not a number)."""
        seconds = self.record.get("leaseDurationSeconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return 0.0
        return float(seconds)

    @property
    def resource_version(self) -> str:
        return resource_version(self.lease) or ""

    def expired(self, now: float) -> bool:
        """The record's duration passed since it was first observed: ``now`` (the same
        clock as ``since``) ``>= since + leaseDurationSeconds``."""
        return now >= self.since + self.lease_seconds


def observe(previous: ObservedLease | None, lease: Obj, now: float) -> ObservedLease:
    """The observation of ``lease`` at ``now``: ``since`` carries over from ``previous``
    when the record is unchanged, else starts at ``now`` (as without ``previous``)."""
    record = lease_spec(lease)
    if previous is not None and previous.record == record:
        return ObservedLease(lease, previous.record, previous.since)
    return ObservedLease(lease, record, now)
