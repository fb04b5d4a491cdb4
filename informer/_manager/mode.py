"""The Manager's run modes: how its controllers run, behind one interface.

A :class:`~informer.Manager` picks one :class:`RunMode` at construction and never
branches on it again:

- :class:`Plain`: the controllers run from startup until the Manager stops;
- :class:`~informer._manager.leader.LeaderElected`: the controllers run only while this
  replica holds the Lease (``leader_election``);
- :class:`~informer._manager.sharded.ShardedByKey` and
  :class:`~informer._manager.sharded_namespaces.ShardedByNamespace`: the controllers
  reconcile this replica's share of the keys while its shard membership holds
  (``sharding``).

The Manager calls a mode in this order: :meth:`RunMode.new_factories` (once it has an
ApiClient); :meth:`RunMode.class_factories` and :attr:`RunMode.shutdown_grace` while it
builds the controllers; :meth:`RunMode.prepare` once they are registered with the
observability; :meth:`RunMode.preflight` after the informers' preflight; then
:meth:`RunMode.run` as a task beside the factories, setting ``synced`` once every cache
synced. Everything runs on the Manager's event loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio

from .._cache.factory import SharedInformerFactory
from .._cache.informer import SharedIndexInformer
from .._controller.controller import Controller
from .._leaderelection.elector import LeaderElector
from .._observability.endpoints import Observability
from .._rest.api_client import ApiClient
from .._sharding.replica import Sharding

__all__ = [
    "FactoryPerNamespace",
    "ModeSetup",
    "NewFactory",
    "Plain",
    "RunMode",
    "run_controllers",
]

NewFactory = Callable[[str | None], SharedInformerFactory]
"""Builds one of the Manager's factories for a namespace (``None``: all namespaces)."""


@dataclass(frozen=True, slots=True)
class ModeSetup:
    """What a mode gets from the Manager in :meth:`RunMode.prepare`.

    ``controllers`` is the Manager's list (the instances built so far; the mode may keep
    it and read it when the controllers start). ``namespaces`` are the Manager's (``[None]``:
    all); ``shutdown_grace`` is the Manager's cap on the controllers' grace.
    """

    api: ApiClient
    controllers: Sequence[Controller]
    classes: Sequence[type[Controller]]
    namespaces: Sequence[str | None]
    factories: Sequence[SharedInformerFactory]
    new_factory: NewFactory
    workers: int | None
    shutdown_grace: float
    observability: Observability


class RunMode(Protocol):
    """How a Manager runs its controllers (see the module docstring for the call order)."""

    @property
    def elector(self) -> LeaderElector | None:
        """The leader elector, once prepared (leader election only)."""

    @property
    def shards(self) -> Sharding | None:
        """The sharding state (membership, handoff), once prepared (sharding only)."""

    @property
    def shutdown_grace(self) -> float:
        """Cap on every controller's ``shutdown_grace`` (seconds; ``inf``: none), so that
        a replica's writes end before another may take its work over."""

    def new_factories(
        self, namespaces: Sequence[str | None], new_factory: NewFactory
    ) -> list[SharedInformerFactory]:
        """The Manager's factories (:attr:`~informer.Manager.factories`)."""

    def class_factories(
        self, namespaces: Sequence[str | None], factories: Sequence[SharedInformerFactory]
    ) -> list[tuple[str | None, SharedInformerFactory]]:
        """Where the added controller classes are instantiated at startup: one instance
        of each class per ``(namespace, factory)``."""

    def prepare(self, setup: ModeSetup) -> list[SharedIndexInformer]:
        """Build what the mode runs with, register its health checks and metrics with
        ``setup.observability``; return informers to preflight beside the factories'."""

    async def preflight(self, api: ApiClient, *, deadline: float, address: str) -> None:
        """Check once, before anything starts, what the mode will need (its Lease's
        RBAC); raise the startup error to report."""

    async def run(self, synced: anyio.Event, address: str) -> None:
        """Run the controllers until cancelled (a stop: then give up what the mode
        holds, e.g. release its Lease). Raises what ends the Manager:
        :class:`~informer.LeaderElectionLost`, :class:`~informer.ShardMembershipLost`,
        :class:`~informer.Unauthorized` naming ``address``, a controller's error."""


class FactoryPerNamespace:
    """The factories of the plain, leader-elected and key-sharded modes: one per
    namespace, in order (``[None]``: one for all namespaces), and one instance of each
    controller class per factory."""

    def new_factories(
        self, namespaces: Sequence[str | None], new_factory: NewFactory
    ) -> list[SharedInformerFactory]:
        return [new_factory(ns) for ns in namespaces]

    def class_factories(
        self, namespaces: Sequence[str | None], factories: Sequence[SharedInformerFactory]
    ) -> list[tuple[str | None, SharedInformerFactory]]:
        return list(zip(namespaces, factories, strict=True))


async def run_controllers(controllers: Sequence[Controller]) -> None:
    """Run every controller in ``controllers`` until cancelled (or one raises)."""
    async with anyio.create_task_group() as tg:
        for controller in controllers:
            tg.start_soon(controller.run, name=f"controller {controller.name}")


class Plain(FactoryPerNamespace):
    """The controllers run from startup until the Manager stops; nothing is held."""

    elector: LeaderElector | None = None
    shards: Sharding | None = None
    shutdown_grace = math.inf

    def __init__(self) -> None:
        self._controllers: Sequence[Controller] = ()

    def prepare(self, setup: ModeSetup) -> list[SharedIndexInformer]:
        self._controllers = setup.controllers
        return []

    async def preflight(self, api: ApiClient, *, deadline: float, address: str) -> None:
        pass

    async def run(self, synced: anyio.Event, address: str) -> None:
        """Start the controllers at once: each waits for its own caches."""
        await run_controllers(self._controllers)

    def __repr__(self) -> str:
        return "<Plain>"
