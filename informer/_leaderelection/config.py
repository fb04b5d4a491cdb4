"""``LeaderElectionConfig``: leader election for a :class:`~informer.Manager`, and the
default identity of a Lease holder."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field

from .timings import LeaseTimings

__all__ = ["LeaderElectionConfig", "default_identity"]


def default_identity() -> str:
    """``<hostname>_<uuid4>``: unique per process run (the Pod name, in a cluster)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig(LeaseTimings):
    """Leader election for a :class:`~informer.Manager`: the Lease ``namespace/name``, our
    ``identity``, and the keyword-only timings of :class:`LeaseTimings` (their defaults
    and rules; a bad value raises ``ValueError``)."""

    name: str
    namespace: str
    identity: str = field(default_factory=default_identity)

    def __post_init__(self) -> None:
        if not self.name or not self.namespace or not self.identity:
            raise ValueError("leader election needs a Lease name, a namespace and an identity")
        LeaseTimings.__post_init__(self)
