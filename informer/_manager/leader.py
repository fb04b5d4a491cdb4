"""Leader election for the :class:`~informer.Manager`: its options, and the elector that
runs the controllers while leading.

:class:`LeaderElectionConfig` names the Lease, our identity and the timings.
:func:`new_elector` builds a :class:`~informer.LeaderElector` whose leading work runs
every controller until cancelled; :func:`run_elected` campaigns and turns the end of
leadership into :class:`~informer.LeaderElectionLost` (a 401 into
:class:`~informer.Unauthorized` naming the server; a 403 propagates as it is).
"""

from __future__ import annotations

import math
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import anyio

from .._controller.controller import Controller
from .._exceptions import LeaderElectionLost, Unauthorized
from .._leaderelection.elector import LeaderElector, validate_timings
from .._rest.api_client import ApiClient
from .startup import unauthorized

__all__ = ["LeaderElectionConfig", "default_identity", "new_elector", "run_elected"]


def default_identity() -> str:
    """``<hostname>_<uuid4>``: unique per process (the Pod name, in a cluster)."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    """Leader election for a :class:`Manager`: the Lease ``namespace/name``, our
    ``identity`` and the timings of :class:`~informer.LeaderElector` (seconds;
    ``lease_duration > renew_deadline > retry_period * 1.2``, else ``ValueError``).
    ``release_timeout`` bounds the Lease release on a graceful stop (2 s: with the 3 s
    drain cap a stop stays within 5 s; 1 s was missed on a saturated 2-core machine)."""

    name: str
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_timeout: float = 2.0

    def __post_init__(self) -> None:
        if not self.name or not self.namespace or not self.identity:
            raise ValueError("leader election needs a Lease name, a namespace and an identity")
        validate_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        if not (self.release_timeout > 0 and math.isfinite(self.release_timeout)):
            raise ValueError(f"release_timeout must be > 0, got {self.release_timeout!r}")


def new_elector(
    api: ApiClient, config: LeaderElectionConfig, controllers: Sequence[Controller]
) -> LeaderElector:
    """An elector whose leading work runs every controller (``controllers`` is read when
    leadership starts) until cancelled."""

    async def lead() -> None:
        async with anyio.create_task_group() as tg:
            for controller in controllers:
                tg.start_soon(controller.run, name=f"controller {controller.name}")

    return LeaderElector(
        api,
        name=config.name,
        namespace=config.namespace,
        identity=config.identity,
        lease_duration=config.lease_duration,
        renew_deadline=config.renew_deadline,
        retry_period=config.retry_period,
        on_started_leading=lead,
        release_timeout=config.release_timeout,
    )


async def run_elected(elector: LeaderElector, address: str) -> NoReturn:
    """Campaign; the controllers run while leading. Raises :class:`LeaderElectionLost`
    when leadership is lost, the 401/403 of the Lease requests; cancellation (a stop)
    stops the controllers, then releases the Lease."""
    try:
        await elector.run()
    except Unauthorized as exc:
        raise unauthorized(exc, address) from exc
    lease = f"{elector.namespace}/{elector.name}"
    raise LeaderElectionLost(
        f"leader election lost: lease {lease} (identity {elector.identity}): "
        f"{elector.lost_reason}; controllers stopped",
        lease=lease,
        identity=elector.identity,
    )
