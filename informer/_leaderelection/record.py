"""The Lease record of leader election: its format, and the records written to hold and
to release a Lease.

A Lease's ``spec`` is the record (client-go's ``LeaderElectionRecord``):
``holderIdentity`` (empty: released), ``leaseDurationSeconds``, ``acquireTime``,
``renewTime`` (MicroTime) and ``leaseTransitions``. Used by the
:class:`~informer.LeaderElector` and by the shard membership Leases
(:mod:`informer._sharding`). Pure functions on plain dicts: nothing here talks to the API
server, and no function mutates its arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from .._meta.resource import LEASES
from .._meta.types import Obj

__all__ = [
    "RELEASED_LEASE_SECONDS",
    "lease_spec",
    "micro_time",
    "new_lease",
    "released_record",
]

RELEASED_LEASE_SECONDS: Final = 1
"""``leaseDurationSeconds`` of a released Lease (client-go's ``release``)."""


def micro_time(when: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 in UTC with microseconds (``...:05.000123Z``)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def released_record(record: Obj) -> Obj:
    """The record that gives up the Lease holding ``record`` (client-go's ``release``):
    empty holder, :data:`RELEASED_LEASE_SECONDS`, acquired and renewed now,
    ``leaseTransitions`` kept. The others may take the Lease at their next attempt."""
    now = micro_time()
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": RELEASED_LEASE_SECONDS,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": record.get("leaseTransitions") or 0,
    }
