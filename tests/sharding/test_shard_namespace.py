"""Sharding by namespace in one process: units of informers and controllers started and
stopped at runtime as the view changes (``informer/_manager/sharded_namespaces.py``).

The view is driven by hand (``Handoff.update``) in the unit tests, so add/remove cycles
are fast and deterministic; two Managers on the session control plane check the
membership wiring. Checked: keys reconciled only from a synced cache and only in owned
namespaces, no task or socket left behind by N add/remove cycles, metrics series and
health checks of stopped informers gone, client reads of other namespaces served by the
API, and the configuration errors.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from api_helpers import until
from metrics_helpers import sample, scrape

from informer import (
    ConfigError,
    Controller,
    Manager,
    ShardingConfig,
    SharedInformerFactory,
    request_json,
)
from informer._manager.sharded_namespaces import ShardNamespaces
from informer._observability.endpoints import Observability
from informer._sharding.assignment import owner, view_digest
from informer._sharding.config import namespace_of
from informer._sharding.replica import Sharding
from informer.resources import CONFIGMAPS, NAMESPACES
from informer.testing import eventually

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
COUNT = 4  # namespaces
PER_NAMESPACE = 3  # ConfigMaps in each


def config(identity: str, lease_namespace: str, group: str = "nsmode") -> ShardingConfig:
    return ShardingConfig(
        group=group,
        namespace=lease_namespace,
        identity=identity,
        lease_duration=4.0,
        renew_deadline=2.5,
        retry_period=0.3,
        shard_by="namespace",
    )


def recorder(seen: list[tuple[str, bool]], peek: str | None = None) -> type[Controller]:
    """Records (key, found in its cache) per reconcile; with ``peek``, also reads
    ``peek/cm-0`` through its client (cached when its factory covers it, else the API)."""

    class NsRecorder(Controller):
        name = "ns-recorder"

        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> None:
            seen.append((key, self.configmaps.lister().get_by_key(key) is not None))
            if peek is not None:
                obj = await self.client.get(CONFIGMAPS, "cm-0", namespace=peek)
                assert obj["metadata"]["namespace"] == peek

    return NsRecorder


async def make_namespaces(api: Any, prefix: str, count: int = COUNT) -> list[str]:
    names = [f"{prefix}-s{i}" for i in range(count)]
    for ns in names:
        await request_json(api, "POST", NAMESPACES.path(), body={"metadata": {"name": ns}})
        for j in range(PER_NAMESPACE):
            await request_json(
                api,
                "POST",
                CONFIGMAPS.path(namespace=ns),
                body={"metadata": {"name": f"cm-{j}"}, "data": {"k": "v"}},
            )
    return names


def split_identity(me: str, namespaces: Sequence[str]) -> str:
    """Another member's identity that takes some, not all, of ``namespaces`` from ``me``."""
    for i in range(1000):
        other = f"other-{i}"
        taken = [ns for ns in namespaces if owner([me, other], ns) == other]
        if 0 < len(taken) < len(namespaces):
            return other
    raise AssertionError("no splitting identity")


def sockets() -> int:
    """Open sockets of this process (watch connections included)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def task_names() -> collections.Counter[str]:
    """The names of this event loop's tasks, with their multiplicity."""
    return collections.Counter(t.get_name() for t in asyncio.all_tasks())


def view(handoff: Any, members: Sequence[str]) -> None:
    """Adopt ``members`` as the view, every other member having drained for it."""
    digest = view_digest(members)
    handoff.update(tuple(members), lambda _member: digest)


@pytest.mark.timeout(90)
async def test_units_follow_the_view_without_leaking(api_client: Any, namespace: str) -> None:
    namespaces = await make_namespaces(api_client, namespace)
    seen: list[tuple[str, bool]] = []
    sharding = Sharding(api_client, config("me", namespace), [])
    sharding.handoff.valid = lambda: True  # no Lease here: the view is driven by hand
    observability = Observability(process_metrics=False)
    units = ShardNamespaces(
        sharding,
        api_client,
        [recorder(seen)],
        new_factory=lambda ns: SharedInformerFactory(api_client, namespace=ns),
        namespaces=namespaces,
        informer=None,
        workers=2,
        grace=1.0,
        observability=observability,
    )
    other = split_identity("me", namespaces)
    mine = [ns for ns in namespaces if owner(["me", other], ns) == "me"]
    lost = [ns for ns in namespaces if ns not in mine]
    all_keys = {f"{ns}/cm-{j}" for ns in namespaces for j in range(PER_NAMESPACE)}

    def synced(expected: Sequence[str]) -> bool:
        return units.status() == dict.fromkeys(expected, True) and set(units.units) == set(expected)

    def watching() -> bool:
        """Every unit's informers have their watch open (so its watchdog task runs)."""
        informers = [i for u in units.units.values() for i in u.factory.informers]
        return all(i.reflector.is_watching for i in informers)

    def exported() -> set[str]:
        text = observability.metrics.render()[0].decode()
        return {ns for ns in namespaces if f'resource="configmaps@{ns}"' in text}

    with anyio.fail_after(80):
        async with anyio.create_task_group() as tg:
            tg.start_soon(units.run)
            view(sharding.handoff, ["me"])
            await until(lambda: synced(namespaces), "every namespace synced", TIMEOUT)
            await until(lambda: {k for k, _ in seen} >= all_keys, "every key reconciled", 20)
            assert all(found for _, found in seen), "a key was reconciled from an empty cache"
            assert exported() == set(namespaces)
            cycles = 6
            for cycle in range(cycles):
                view(sharding.handoff, ["me", other])
                await until(lambda: synced(mine), "lost namespaces stopped", TIMEOUT)
                assert exported() == set(mine)
                assert observability.checks.readiness  # the informers check ignores them
                assert all(c.check() is None for c in observability.checks.readiness)
                controllers = {g.controller.name for g in sharding.handoff.gates}
                assert controllers == {f"ns-recorder@{ns}" for ns in mine}
                mark = len(seen)
                view(sharding.handoff, ["me"])
                await until(lambda: synced(namespaces), "namespaces regained", TIMEOUT)
                await until(
                    lambda mark=mark: {namespace_of(k) for k, _ in seen[mark:]} >= set(lost),
                    "regained keys reconciled",
                    20,
                )
                await until(watching, "every unit watching", TIMEOUT)
                if cycle == 0:
                    await anyio.wait_all_tasks_blocked()  # every unit's tasks are up
                    baseline = task_names()
                    baseline_sockets = sockets()
            # Each cycle started and stopped informers and controllers: the same tasks run
            # as after the first cycle, and no socket is left over (a leaked watch would
            # keep one of each per cycle). Both are compared in the same state: every
            # watch open (each has a watchdog task) and every task blocked. A watch being
            # re-opened at that instant could still miss one, hence eventually; a leak
            # never settles. (200 and 600 cycles, bench/RESULTS.md "Namespace mode":
            # tasks and sockets flat.)

            async def same_tasks() -> None:
                await anyio.wait_all_tasks_blocked()
                names = task_names()
                extra, missing = names - baseline, baseline - names
                assert not extra and not missing, (sorted(extra.elements()), sorted(missing))
                assert sockets() <= baseline_sockets + 1, (baseline_sockets, sockets())

            await eventually(same_tasks, timeout=TIMEOUT, interval=0.1)
            tasks, socks = sum(baseline.values()), sockets()
            assert units.started == COUNT + cycles * len(lost)
            assert units.stopped == cycles * len(lost)
            assert all(found for _, found in seen)
            assert {namespace_of(k) for k, _ in seen} == set(namespaces)
            tg.cancel_scope.cancel()
    assert not units.units
    assert not sharding.handoff.gates
    print(f"\n{cycles} cycles: {tasks} tasks, {socks} sockets (baseline {baseline_sockets})")


@pytest.mark.timeout(30)
async def test_a_controller_stopped_as_it_starts_stops(api_client: Any) -> None:
    """A unit lost just as its controllers start (its recorder entered in a cancelled
    scope) must stop, not hang: it did, and kept a lapsed replica from exiting."""

    class Idle(recorder([])):  # type: ignore[misc]
        def setup(self) -> None:  # nothing to sync: straight to the workers and recorder
            pass

    controller = Idle(SharedInformerFactory(api_client, namespace="a"), api_client)
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        scope.cancel()
        await controller.run()
    assert controller.queue.shutting_down()


@pytest.mark.timeout(60)
async def test_keys_of_an_unsynced_namespace_are_parked(api_client: Any, namespace: str) -> None:
    """A key mapped into an owned namespace whose informers did not sync yet waits for
    them (here: a controller in namespace ``a`` enqueues keys of ``b``)."""
    sharding = Sharding(api_client, config("me", namespace), [])
    sharding.handoff.valid = lambda: True
    controller = recorder([])(SharedInformerFactory(api_client, namespace="a"), api_client)
    sharding.add_controller(controller)
    ready = {"a"}
    sharding.handoff.ready = ready.__contains__
    view(sharding.handoff, ["me"])
    gate = controller.key_gate
    assert gate is not None
    assert not gate.admit("b/x")
    assert gate.admit("a/x")
    gate.release("a/x")
    ready.add("b")
    assert sharding.handoff.unit_ready("b") == 1
    assert controller.queue.depth() == 1
    assert gate.admit("b/x")
    gate.release("b/x")
    sharding.remove_controller(controller)
    assert not sharding.handoff.gates


@pytest.mark.timeout(60)
async def test_two_managers_split_the_namespaces(api_client: Any, namespace: str) -> None:
    namespaces = await make_namespaces(api_client, namespace)
    ids = ["one", split_identity("one", namespaces)]
    seen: dict[str, list[tuple[str, bool]]] = {who: [] for who in ids}
    managers = {
        who: Manager(
            api_client,
            namespaces=namespaces,
            sharding=config(who, namespace, group="nsmgr"),
            metrics_bind_address="127.0.0.1:0",
        )
        for who in ids
    }
    for who, manager in managers.items():
        # Peeks at a namespace of the other manager's: served by the API server.
        theirs = next(ns for ns in namespaces if owner(ids, ns) != who)
        manager.add(recorder(seen[who], peek=theirs))
    share = {w: {ns for ns in namespaces if owner(ids, ns) == w} for w in ids}
    with anyio.fail_after(TIMEOUT + 20):
        async with managers[ids[0]] as one, managers[ids[1]] as two:
            shards = {ids[0]: one.shards, ids[1]: two.shards}

            def split() -> bool:
                return all(
                    s is not None
                    and s.handoff.cleared
                    and s.handoff.members == tuple(sorted(ids))
                    and s.namespaces is not None
                    and s.namespaces() == dict.fromkeys(share[w], True)
                    for w, s in shards.items()
                )

            await until(split, "both cache their own namespaces only", TIMEOUT)
            marks = {w: len(seen[w]) for w in seen}
            keys = {
                w: {f"{ns}/cm-{j}" for ns in share[w] for j in range(PER_NAMESPACE)} for w in seen
            }
            await until(
                lambda: all({k for k, _ in seen[w]} >= keys[w] for w in seen),
                "every key reconciled",
                20,
            )
            for w in seen:
                assert {namespace_of(k) for k, _ in seen[w][marks[w] :]} <= share[w]
                assert all(found for _, found in seen[w])
            assert one.endpoints is not None and one.endpoints.metrics_port is not None
            families = await scrape(one.endpoints.metrics_port)
            for ns in namespaces:
                cached = sample(families, "informer_shard_namespace_synced", namespace=ns)
                objects = sample(families, "informer_store_objects", resource=f"configmaps@{ns}")
                if ns in share[ids[0]]:
                    assert (cached, objects) == (1, PER_NAMESPACE)
                else:
                    assert (cached, objects) == (None, None)
            assert sample(families, "informer_store_objects", resource="namespaces") is None
            assert all(c.check() is None for c in one.observability.checks.readiness)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("cluster", "watches the cluster-scoped namespaces"),
        ("instance", "add\\(\\) controller classes, not instances"),
    ],
    ids=["cluster-scoped-watch", "instance"],
)
@pytest.mark.timeout(30)
async def test_configuration_errors(
    api_client: Any, namespace: str, kind: str, message: str
) -> None:
    manager = Manager(api_client, sharding=config("me", namespace, group="nsbad"))

    class WatchesNamespaces(Controller):
        def setup(self) -> None:
            self.watch(CONFIGMAPS)
            self.watch(NAMESPACES, mapper=lambda obj: [])

    if kind == "cluster":
        manager.add(WatchesNamespaces)
    else:
        manager.add(recorder([])(manager.factory, api_client))
    with pytest.raises(ConfigError, match=message), anyio.fail_after(20):
        async with manager:
            pass
