"""``LeaseTimings``: the four timings of holding a Lease, their defaults and their rules.

One definition for every Lease holder: the :class:`~informer.LeaderElector`, the shard
membership, and the configurations that build them
(:class:`~informer.LeaderElectionConfig` and :class:`~informer.ShardingConfig` extend
this class, so their timing fields, defaults and validation are these).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["JITTER_FACTOR", "LeaseTimings"]

JITTER_FACTOR: Final = 1.2
"""client-go's ``JitterFactor``: acquire attempts wait ``retry_period * (1 + rand * 1.2)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseTimings:
    """How long a Lease is held, renewed and waited for (seconds; keyword-only).

    The rules are client-go's ``NewLeaderElector``: every value is a positive, finite
    number of seconds and ``lease_duration > renew_deadline > retry_period * 1.2``. The
    holder must give up (``renew_deadline``) before the others may take over
    (``lease_duration``), and must get more than one jittered attempt within its renew
    deadline. Anything else raises ``ValueError`` naming the field.
    """

    lease_duration: float = 15.0
    """How long the others wait, after they last saw the record change, before they take
    the Lease over. Written to the Lease rounded up to whole seconds
    (:attr:`lease_seconds`)."""
    renew_deadline: float = 10.0
    """How long the holder keeps trying to renew before it gives the Lease up for lost."""
    retry_period: float = 2.0
    """The pause between attempts to acquire or renew (and between lists of the shard
    group's Leases)."""
    release_timeout: float = 2.0
    """Bound on releasing the Lease on a graceful stop, after the work stopped: with the
    Manager's 3 s cap on draining the controllers, a stop stays within 5 s."""

    def __post_init__(self) -> None:
        for label in ("lease_duration", "renew_deadline", "retry_period", "release_timeout"):
            value = getattr(self, label)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        if not self.lease_duration > self.renew_deadline:
            raise ValueError(
                f"lease_duration ({self.lease_duration:g}s) must be greater than "
                f"renew_deadline ({self.renew_deadline:g}s)"
            )
        if not self.renew_deadline > self.retry_period * JITTER_FACTOR:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline:g}s) must be greater than retry_period "
                f"* {JITTER_FACTOR:g} ({self.retry_period * JITTER_FACTOR:g}s)"
            )

    @property
    def lease_seconds(self) -> int:
        """``leaseDurationSeconds`` as written to the Lease: whole seconds, at least 1."""
        return max(1, math.ceil(self.lease_duration))
