"""The Lease record of leader election: its format and the rules of its timings.

Shared by :class:`~informer.LeaderElector` (``informer._leaderelection.elector``) and the shard
membership Leases (``informer._sharding``, which import them from
``informer._leaderelection.elector``). Pure functions on plain dicts: nothing here talks to the
API server.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

from .._meta.resource import LEASES
from .._meta.types import Obj

__all__ = [
    "JITTER_FACTOR",
    "RELEASED_LEASE_SECONDS",
    "lease_spec",
    "micro_time",
    "new_lease",
    "validate_timings",
]

JITTER_FACTOR: Final = 1.2
"""client-go's ``JitterFactor``: acquire attempts wait ``retry_period * (1 + rand * 1.2)``."""

RELEASED_LEASE_SECONDS: Final = 1
"""``leaseDurationSeconds`` of a released Lease (client-go's ``release``)."""


def micro_time(when: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 in UTC with microseconds (``...:05.000123Z``)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_timings(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """Raise ``ValueError`` unless ``lease_duration > renew_deadline > retry_period * 1.2 > 0``.

    The rules of client-go's ``NewLeaderElector``: the leader must give up (renew deadline)
    before followers may take over (lease duration), and must get more than one jittered
    attempt within its renew deadline.
    """
    for label, value in (
        ("lease_duration", lease_duration),
        ("renew_deadline", renew_deadline),
        ("retry_period", retry_period),
    ):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
    if not lease_duration > renew_deadline:
        raise ValueError(
            f"lease_duration ({lease_duration:g}s) must be greater than "
            f"renew_deadline ({renew_deadline:g}s)"
        )
    if not renew_deadline > retry_period * JITTER_FACTOR:
        raise ValueError(
            f"renew_deadline ({renew_deadline:g}s) must be greater than retry_period * "
            f"{JITTER_FACTOR:g} ({retry_period * JITTER_FACTOR:g}s)"
        )


def lease_spec(lease: Obj) -> Obj:
    """A copy of ``lease``'s ``spec`` (the record); empty when it has none."""
    spec = lease.get("spec")
    return dict(spec) if isinstance(spec, dict) else {}


def new_lease(spec: Obj, *, name: str, namespace: str) -> Obj:
    """A ``coordination.k8s.io/v1`` Lease ``namespace/name`` holding the record ``spec``."""
    return {
        "apiVersion": LEASES.api_version,
        "kind": LEASES.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
