"""``Sharding``: one replica's membership and handoff, gating its controllers.

:class:`Sharding` builds the :class:`~informer._sharding.membership.Membership` and the
:class:`~informer._sharding.handoff.Handoff` of a :class:`~informer.ShardingConfig`,
installs a key gate on every controller, and :meth:`Sharding.run` joins the group and
runs the controllers while the membership holds (a lapse raises
:class:`~informer.ShardMembershipLost`). The protocol is described in
``docs/sharding.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, NoReturn

import anyio

from .._controller.controller import Controller
from .._rest.api_client import ApiClient
from .config import ShardingConfig, namespace_of
from .handoff import Handoff
from .membership import Membership

__all__ = ["Sharding"]


class Sharding:
    """Membership and handoff of one replica; gates installed on ``controllers``.

    Namespace mode adds and removes controllers at runtime (:meth:`add_controller`,
    :meth:`remove_controller`), runs its own task beside them (:attr:`tasks`), follows
    the view (``handoff.on_adopt``) and reports its namespaces to the metrics
    (:attr:`namespaces`: namespace -> synced). Everything runs on the event loop."""

    def __init__(
        self, api: ApiClient, config: ShardingConfig, controllers: Sequence[Controller]
    ) -> None:
        self.config = config
        self.controllers = list(controllers)
        self.membership = Membership(
            api,
            group=config.group,
            namespace=config.namespace,
            identity=config.identity,
            timings=config,
            on_change=self._changed,
        )
        self.handoff = Handoff(
            config.identity,
            publish=self.membership.publish,
            valid=lambda: self.membership.valid_for > 0,
            key_of=namespace_of if config.shard_by == "namespace" else lambda key: key,
        )
        self.tasks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.namespaces: Callable[[], Mapping[str, bool]] | None = None
        for controller in self.controllers:
            controller.key_gate = self.handoff.gate(controller)

    def add_controller(self, controller: Controller) -> None:
        """Gate a controller built at runtime (run it yourself)."""
        controller.key_gate = self.handoff.gate(controller)

    def remove_controller(self, controller: Controller) -> None:
        """Forget a controller that stopped (its reconciles ended)."""
        for gate in self.handoff.gates:
            if gate.controller is controller:
                self.handoff.remove_gate(gate)

    @property
    def lease_name(self) -> str:
        return self.membership.lease_name

    def _changed(self) -> None:
        handoff = self.handoff
        handoff.update(self.membership.members, self.membership.drained_of)
        self.membership.hurry = handoff.members is not None and not handoff.cleared

    def check(self) -> str | None:
        """The ``sharding`` readiness check: failing until the replica has a view
        (joined, and one list of the group's Leases done), and again once its membership
        lapsed."""
        if self.membership.lapsed_reason is not None:
            return f"shard membership lapsed: {self.membership.lapsed_reason}"
        if not self.handoff.has_view():
            return f"shard group {self.config.group}: no view of the members yet"
        return None

    async def run(self) -> NoReturn:
        """Join; run the controllers (and the re-enqueueing, and :attr:`tasks`) while the
        membership holds. Raises :class:`~informer.ShardMembershipLost` after a lapse,
        and the 401/403 of the Lease requests."""

        async def work() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.handoff.run, name="shard requeue")
                for task in self.tasks:
                    tg.start_soon(task, name="shard task")
                for controller in self.controllers:
                    tg.start_soon(controller.run, name=f"controller {controller.name}")

        await self.membership.run(work)
        raise AssertionError("Membership.run returned")  # pragma: no cover
