"""``Manager(sharding=ShardingConfig(...))``: two Managers in one process share the keys.

The Managers use the session control plane; their controllers record what they
reconcile. Checked: the split follows the rendezvous owners once both cleared the
two-member view, the readiness check and the ``informer_shard_*`` metrics, the
drain-grace cap, the Lease released on exit, and the configuration errors.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from api_helpers import until
from metrics_helpers import sample, scrape

from informer import Controller, LeaderElectionConfig, Manager, ShardingConfig, request_json
from informer._sharding.assignment import owner
from informer._sharding.records import lease_name
from informer.resources import CONFIGMAPS, LEASES

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
GROUP = "mgr"
KEYS = 30


def recorder(seen: list[str]) -> type[Controller]:
    class ShardRecorder(Controller):
        def setup(self) -> None:
            self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> None:
            seen.append(key)

    return ShardRecorder


def config(identity: str, namespace: str) -> ShardingConfig:
    return ShardingConfig(
        group=GROUP,
        namespace=namespace,
        identity=identity,
        lease_duration=4.0,
        renew_deadline=2.5,
        retry_period=0.3,
    )


@pytest.mark.timeout(60)
async def test_two_managers_split_the_keys(api_client: Any, namespace: str) -> None:
    for i in range(KEYS):
        await request_json(
            api_client,
            "POST",
            CONFIGMAPS.path(namespace=namespace),
            body={"metadata": {"name": f"cm-{i:02d}"}, "data": {"k": "v"}},
        )
    keys = [f"{namespace}/cm-{i:02d}" for i in range(KEYS)]
    seen: dict[str, list[str]] = {"one": [], "two": []}
    managers = {
        who: Manager(
            api_client,
            namespaces=[namespace],
            sharding=config(who, namespace),
            metrics_bind_address="127.0.0.1:0",
        )
        for who in seen
    }
    for who, manager in managers.items():
        manager.add(recorder(seen[who]))
    with anyio.fail_after(TIMEOUT):
        async with managers["one"] as one, managers["two"] as two:
            shards = {"one": one.shards, "two": two.shards}
            assert all(s is not None for s in shards.values())

            def cleared() -> bool:
                return all(
                    s is not None and s.handoff.cleared and s.handoff.members == ("one", "two")
                    for s in shards.values()
                )

            await until(cleared, "both cleared the two-member view", TIMEOUT)
            marks = {who: len(seen[who]) for who in seen}
            share = {who: {k for k in keys if owner(["one", "two"], k) == who} for who in seen}
            assert share["one"] and share["two"]
            await until(
                lambda: all(set(seen[w]) >= share[w] for w in seen), "every key reconciled", 20
            )
            for who in seen:  # since the clear: own keys only
                assert set(seen[who][marks[who] :]) <= share[who]
            [controller] = one.controllers
            assert controller.shutdown_grace == pytest.approx(0.75)  # (4 - 2.5) / 2
            assert controller.key_gate is not None
            checks = one.observability.checks
            assert [c.name for c in checks.readiness][-1] == "sharding"
            assert all(c.check() is None for c in checks.readiness)
            gate = one.shards.handoff.gates[0] if one.shards is not None else None
            assert gate is not None
            await until(lambda: gate.owned == len(share["one"]), "keys owned counted", 10)
            assert one.endpoints is not None and one.endpoints.metrics_port is not None
            families = await scrape(one.endpoints.metrics_port)
            assert sample(families, "informer_shard_members", group=GROUP) == 2
            assert sample(families, "informer_shard_view_cleared", group=GROUP) == 1
            owned = sample(
                families, "informer_shard_keys_owned", group=GROUP, controller=controller.name
            )
            assert owned == len(share["one"])
            waits = sample(families, "informer_shard_handoff_wait_seconds_count", group=GROUP)
            assert waits is not None and waits >= 1
            rebalances = sample(families, "informer_shard_rebalances_total", group=GROUP)
            assert rebalances is not None and rebalances >= 0
        for who in seen:
            lease = await request_json(
                api_client, "GET", LEASES.path(lease_name(GROUP, who), namespace=namespace)
            )
            assert lease["spec"]["holderIdentity"] == ""  # released on the way out


def test_readiness_before_a_view(api_client: Any) -> None:
    from informer._sharding.replica import Sharding

    sharding = Sharding(api_client, config("me", "default"), [])
    assert sharding.check() == "shard group mgr: no view of the members yet"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group": "Not_A_Label"}, "must be a DNS-1123 label"),
        ({"group": "x" * 51}, "at most 50 characters"),
        ({"group": "g", "renew_deadline": 20.0}, "lease_duration"),
        ({"group": "g", "shard_by": "pods"}, "shard_by must be one of"),
    ],
    ids=["bad-group", "long-group", "timings", "mode"],
)
def test_sharding_config_validates(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShardingConfig(**kwargs)


def test_leader_election_and_sharding_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        Manager(
            leader_election=LeaderElectionConfig(name="x", namespace="default"),
            sharding=ShardingConfig(group="g"),
        )


def test_default_group() -> None:
    from informer._sharding.config import default_group

    assert default_group(["b-ctl", "a-ctl", "a-ctl"]) == "a-ctl-b-ctl"
    assert default_group(["Cm_Logger@ns"]) == "cm-logger-ns"
    long = default_group([f"controller-number-{i}" for i in range(10)])
    assert len(long) <= 50 and long.startswith("controller-number-0-")
