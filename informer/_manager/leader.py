"""``LeaderElected``: the Manager's run mode with ``leader_election``.

Every replica runs its informers (followers keep warm caches); once the caches synced,
the replica campaigns for the Lease of its :class:`~informer.LeaderElectionConfig` and
runs the controllers only while it leads. The end of leadership becomes
:class:`~informer.LeaderElectionLost` (a 401 becomes :class:`~informer.Unauthorized`
naming the server; a 403 propagates as it is); a stop cancels the controllers, then
releases the Lease. The controllers' shutdown grace is capped at ``lease_duration -
renew_deadline``, so a lost leader's writes end before a follower may take over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import anyio

from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._exceptions import LeaderElectionLost, Unauthorized
from .._leaderelection.config import LeaderElectionConfig
from .._leaderelection.elector import LeaderElector
from .._rest.api_client import ApiClient
from .._sharding.replica import Sharding
from .mode import FactoryPerNamespace, ModeSetup, run_controllers
from .startup import preflight_lease, unauthorized

__all__ = ["LeaderElected", "new_elector", "run_elected"]


def new_elector(
    api: ApiClient, config: LeaderElectionConfig, controllers: Sequence[Controller]
) -> LeaderElector:
    """An elector whose leading work runs every controller (``controllers`` is read when
    leadership starts) until cancelled."""

    async def lead() -> None:
        await run_controllers(controllers)

    return LeaderElector(
        api,
        name=config.name,
        namespace=config.namespace,
        identity=config.identity,
        timings=config,
        on_started_leading=lead,
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


class LeaderElected(FactoryPerNamespace):
    """The controllers run while this replica holds ``config``'s Lease (module docstring)."""

    shards: Sharding | None = None

    def __init__(self, config: LeaderElectionConfig) -> None:
        self.config = config
        self.elector: LeaderElector | None = None

    @property
    def shutdown_grace(self) -> float:
        return self.config.lease_duration - self.config.renew_deadline

    def prepare(self, setup: ModeSetup) -> list[SharedIndexInformer]:
        """Build the elector (its ``leader-election`` liveness check and
        ``leader_election_master_status`` come with it)."""
        self.elector = new_elector(setup.api, self.config, setup.controllers)
        setup.observability.add_elector(self.elector)
        return []

    async def preflight(self, api: ApiClient, *, deadline: float, address: str) -> None:
        await preflight_lease(
            api,
            name=self.config.name,
            namespace=self.config.namespace,
            deadline=deadline,
            address=address,
        )

    async def run(self, synced: anyio.Event, address: str) -> None:
        """Once synced, campaign; lead until leadership is lost (see :func:`run_elected`)."""
        assert self.elector is not None, "prepare() first"
        await synced.wait()
        await run_elected(self.elector, address)

    def __repr__(self) -> str:
        return f"<LeaderElected {self.config.namespace}/{self.config.name}>"
