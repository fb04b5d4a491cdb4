"""Sharding for the :class:`~informer.Manager`: its options, the gates it installs on the
controllers, its metrics and its readiness check.

:class:`ShardingConfig` names the group, the Lease namespace, our identity and the
timings. :class:`Sharding` builds the :class:`~informer._sharding.membership.Membership`
and the :class:`~informer._sharding.handoff.Handoff`, installs a key gate on every
controller, and :meth:`Sharding.run` joins the group and runs the controllers while the
membership holds (a lapse raises :class:`~informer.ShardMembershipLost`, a 401 becomes
:class:`~informer.Unauthorized` naming the server). The protocol is described in
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

Readiness: ``sharding`` fails until the replica has a view (joined, and one list of the
group's Leases done), and again once its membership lapsed.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

import anyio
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .._controller.controller import Controller
from .._exceptions import Unauthorized
from .._leaderelection.elector import validate_timings
from .._rest.api_client import ApiClient
from .._sharding.handoff import Handoff
from .._sharding.membership import Membership
from .._sharding.records import MAX_GROUP_LENGTH, validate_group
from .leader import default_identity
from .startup import unauthorized

__all__ = [
    "HANDOFF_WAIT_BUCKETS",
    "SHARD_MODES",
    "ShardCollector",
    "Sharding",
    "ShardingConfig",
    "default_group",
    "namespace_of",
]

SHARD_MODES: Final = ("key", "namespace")
"""What is hashed over the members: ``key``, the work-queue key; ``namespace``, its
namespace (informers and controllers run per owned namespace:
:mod:`informer._manager.sharded_namespaces`)."""

HANDOFF_WAIT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


def namespace_of(key: str) -> str:
    """What namespace mode hashes: the namespace of a ``namespace/name`` key (``""`` for
    a cluster-scoped key)."""
    namespace, sep, _ = key.partition("/")
    return namespace if sep else ""


def default_group(controller_names: Iterable[str]) -> str:
    """The shard group of replicas running these controllers: their names, sorted and
    joined with ``-`` (made a DNS-1123 label; too long a name keeps a prefix and gains a
    digest of the whole)."""
    text = "-".join(sorted(set(controller_names))).lower()
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-") or "shard"
    if len(label) <= MAX_GROUP_LENGTH:
        return label
    digest = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
    return f"{label[: MAX_GROUP_LENGTH - 13].rstrip('-')}-{digest}"


@dataclass(frozen=True, slots=True)
class ShardingConfig:
    """Sharding for a :class:`Manager`: the shard ``group`` (a DNS-1123 label, at most
    50 characters: it labels the member Leases and prefixes their names), the Lease
    ``namespace``, our ``identity`` (unique per process run: keep the default
    ``<hostname>_<uuid4>``), and the membership timings (seconds, the leader
    elector's rules: ``lease_duration > renew_deadline > retry_period * 1.2``, else
    ``ValueError``). ``shard_by`` is what is hashed (:data:`SHARD_MODES`).
    ``release_timeout`` bounds the Lease release on a graceful stop (2 s: with the 3 s
    drain cap a stop stays within 5 s; 1 s was missed on a saturated 2-core machine)."""

    group: str
    namespace: str = "default"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    shard_by: Literal["key", "namespace"] = "key"
    release_timeout: float = 2.0

    def __post_init__(self) -> None:
        validate_group(self.group)
        if not self.namespace or not self.identity:
            raise ValueError("sharding needs a Lease namespace and an identity")
        validate_timings(self.lease_duration, self.renew_deadline, self.retry_period)
        if self.shard_by not in SHARD_MODES:
            raise ValueError(f"shard_by must be one of {SHARD_MODES}, got {self.shard_by!r}")
        if not (self.release_timeout > 0 and math.isfinite(self.release_timeout)):
            raise ValueError(f"release_timeout must be > 0, got {self.release_timeout!r}")

    @property
    def drain_grace(self) -> float:
        """The cap on the controllers' shutdown grace: ``(lease_duration -
        renew_deadline) / 2``. A lapsed member's reconciles end within the renew deadline
        plus this, half the gap before the others may take its keys over; the other half
        absorbs clock-rate differences and event-loop lag (``docs/sharding.md``)."""
        return (self.lease_duration - self.renew_deadline) / 2


class Sharding:
    """Membership and handoff of one Manager; gates installed on ``controllers``.

    Namespace mode adds and removes controllers at runtime (:meth:`add_controller`,
    :meth:`remove_controller`), runs its own task beside them (:attr:`tasks`), follows
    the view (``handoff.on_adopt``) and reports its namespaces to the metrics
    (:attr:`namespaces`: namespace -> synced)."""

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
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
            release_timeout=config.release_timeout,
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
        """The ``sharding`` readiness check."""
        if self.membership.lapsed_reason is not None:
            return f"shard membership lapsed: {self.membership.lapsed_reason}"
        if not self.handoff.has_view():
            return f"shard group {self.config.group}: no view of the members yet"
        return None

    async def run(self, address: str) -> NoReturn:
        """Join; run the controllers (and the re-enqueueing) while the membership holds.
        Raises :class:`~informer.ShardMembershipLost` after a lapse."""

        async def work() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.handoff.run, name="shard requeue")
                for task in self.tasks:
                    tg.start_soon(task, name="shard task")
                for controller in self.controllers:
                    tg.start_soon(controller.run, name=f"controller {controller.name}")

        try:
            await self.membership.run(work)
        except Unauthorized as exc:
            raise unauthorized(exc, address) from exc
        raise AssertionError("Membership.run returned")  # pragma: no cover


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
        waits.add_metric([group], _buckets(handoff.handoff_waits), sum(handoff.handoff_waits))
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


def _buckets(values: Sequence[float]) -> list[tuple[str, float]]:
    ordered = sorted(values)
    out = [(repr(b), float(bisect.bisect_right(ordered, b))) for b in HANDOFF_WAIT_BUCKETS]
    out.append(("+Inf", float(len(ordered))))
    return out
