"""Sharding for the :class:`~informer.Manager`: the run mode of ``sharding`` (key mode),
its metrics and its readiness check.

:class:`ShardedByKey` builds a :class:`~informer._sharding.replica.Sharding` (membership,
handoff, a key gate on every controller) and, once the caches synced, joins the group
and runs the controllers while the membership holds (a lapse raises
:class:`~informer.ShardMembershipLost`, a 401 becomes :class:`~informer.Unauthorized`
naming the server). Every replica runs every informer; the gates admit this replica's
share of the keys. The controllers' shutdown grace is capped at
:attr:`~informer.ShardingConfig.drain_grace`. Namespace mode extends it
(:mod:`informer._manager.sharded_namespaces`). The protocol is described in
``docs/sharding.md``.

Metrics (:class:`ShardCollector`, registered in the Manager's registry), labelled
``group``:

=========================================== ====================== =========
``informer_shard_members``                  group                  gauge
``informer_shard_view_cleared``             group                  gauge
``informer_shard_rebalances_total``         group                  counter
``informer_shard_handoff_wait_seconds``     group                  histogram
``informer_shard_keys_owned``               group, controller      gauge
``informer_shard_keys_skipped_total``       group, controller      counter
``informer_shard_namespace_synced``         group, namespace       gauge
=========================================== ====================== =========

(``informer_shard_namespace_synced``: namespace mode only, one series per namespace
this replica caches: 1 once its informers synced, 0 while they sync.)

Readiness: ``sharding`` (:meth:`~informer._sharding.replica.Sharding.check`) fails until
the replica has a view (joined, and one list of the group's Leases done), and again once
its membership lapsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import anyio
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .._cache.informer import SharedIndexInformer
from .._exceptions import Unauthorized
from .._leaderelection.elector import LeaderElector
from .._rest.api_client import ApiClient
from .._sharding.config import ShardingConfig
from .._sharding.handoff import HANDOFF_WAIT_BUCKETS
from .._sharding.replica import Sharding
from .mode import FactoryPerNamespace, ModeSetup
from .startup import preflight_lease, unauthorized

__all__ = ["HANDOFF_WAIT_BUCKETS", "ShardCollector", "ShardedByKey"]


class ShardedByKey(FactoryPerNamespace):
    """The controllers reconcile this replica's share of the keys (module docstring)."""

    elector: LeaderElector | None = None

    def __init__(self, config: ShardingConfig) -> None:
        self.config = config
        self.shards: Sharding | None = None

    @property
    def shutdown_grace(self) -> float:
        return self.config.drain_grace

    def prepare(self, setup: ModeSetup) -> list[SharedIndexInformer]:
        """Gate the controllers; register the ``sharding`` readiness check and the
        ``informer_shard_*`` metrics."""
        self.shards = Sharding(setup.api, self.config, setup.controllers)
        setup.observability.checks.add_readiness("sharding", self.shards.check)
        setup.observability.metrics.registry.register(ShardCollector(self.shards))
        return []

    async def preflight(self, api: ApiClient, *, deadline: float, address: str) -> None:
        assert self.shards is not None, "prepare() first"
        await preflight_lease(
            api,
            name=self.shards.lease_name,
            namespace=self.config.namespace,
            deadline=deadline,
            address=address,
        )

    async def run(self, synced: anyio.Event, address: str) -> None:
        """Once synced, join the group; run the controllers while the membership holds."""
        assert self.shards is not None, "prepare() first"
        await synced.wait()
        try:
            await self.shards.run()
        except Unauthorized as exc:
            raise unauthorized(exc, address) from exc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.namespace}/{self.config.group}>"


class ShardCollector(Collector):
    """Exports a :class:`Sharding`'s state (module docstring) at scrape time."""

    def __init__(self, sharding: Sharding) -> None:
        self._sharding = sharding

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        sharding = self._sharding
        group = sharding.config.group
        handoff = sharding.handoff
        members = GaugeMetricFamily(
            "informer_shard_members", "Live members in this replica's view", labels=("group",)
        )
        members.add_metric([group], len(handoff.members or ()))
        cleared = GaugeMetricFamily(
            "informer_shard_view_cleared",
            "1 when every other member drained for this replica's view (it reconciles)",
            labels=("group",),
        )
        cleared.add_metric([group], 1.0 if handoff.cleared else 0.0)
        rebalances = CounterMetricFamily(
            "informer_shard_rebalances_total",
            "Views adopted after the first (membership changes seen)",
            labels=("group",),
        )
        rebalances.add_metric([group], handoff.rebalances)
        waits = HistogramMetricFamily(
            "informer_shard_handoff_wait_seconds",
            "Seconds from adopting a view until every other member drained for it",
            labels=("group",),
        )
        waits.add_metric([group], handoff.handoff_waits.buckets(), handoff.handoff_waits.sum)
        owned = GaugeMetricFamily(
            "informer_shard_keys_owned",
            "Cached keys this replica owns (as of its last cleared view)",
            labels=("group", "controller"),
        )
        skipped = CounterMetricFamily(
            "informer_shard_keys_skipped_total",
            "Keys dequeued and skipped because another member owns them",
            labels=("group", "controller"),
        )
        for gate in handoff.gates:
            owned.add_metric([group, gate.controller.name], gate.owned)
            skipped.add_metric([group, gate.controller.name], gate.skipped)
        yield from (members, cleared, rebalances, waits, owned, skipped)
        if sharding.namespaces is not None:
            namespaces = GaugeMetricFamily(
                "informer_shard_namespace_synced",
                "Namespaces this replica caches (namespace mode): 1 synced, 0 syncing",
                labels=("group", "namespace"),
            )
            for namespace, synced in sorted(sharding.namespaces().items()):
                namespaces.add_metric([group, namespace], 1.0 if synced else 0.0)
            yield namespaces
