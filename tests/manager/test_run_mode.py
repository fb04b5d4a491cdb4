"""The Manager's run modes (``informer/_manager/mode.py``): one chosen per Manager at
construction, from its ``leader_election`` and ``sharding``; what each caps and builds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from informer import LeaderElectionConfig, Manager, ShardingConfig
from informer._manager.leader import LeaderElected
from informer._manager.mode import Plain
from informer._manager.run_modes import run_mode
from informer._manager.sharded import ShardedByKey
from informer._manager.sharded_namespaces import ShardedByNamespace

ELECTION = LeaderElectionConfig(name="l", namespace="ns", lease_duration=20, renew_deadline=15)
BY_KEY = ShardingConfig(group="g", lease_duration=20, renew_deadline=15)
BY_NAMESPACE = ShardingConfig(group="g", shard_by="namespace")


@pytest.mark.parametrize(
    ("kwargs", "mode", "grace"),
    [
        ({}, Plain, math.inf),
        ({"leader_election": ELECTION}, LeaderElected, 5.0),
        ({"sharding": BY_KEY}, ShardedByKey, 2.5),
        ({"sharding": BY_NAMESPACE}, ShardedByNamespace, 2.5),
    ],
    ids=["plain", "leader-election", "shard-by-key", "shard-by-namespace"],
)
def test_one_mode_per_configuration(kwargs: dict[str, Any], mode: type, grace: float) -> None:
    chosen = run_mode(kwargs.get("leader_election"), kwargs.get("sharding"))
    assert type(chosen) is mode
    assert chosen.shutdown_grace == grace
    assert chosen.elector is None and chosen.shards is None  # built when prepared
    manager = Manager(**kwargs)
    assert manager.elector is None and manager.shards is None


def test_both_modes_at_once_are_refused() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        run_mode(ELECTION, BY_KEY)


def factory(namespace: str | None) -> Any:
    return ("factory", namespace)


@pytest.mark.parametrize(
    "mode",
    [Plain(), LeaderElected(ELECTION), ShardedByKey(BY_KEY)],
    ids=["plain", "leader-election", "shard-by-key"],
)
def test_a_factory_and_the_classes_per_namespace(mode: Any) -> None:
    factories = mode.new_factories(["a", "b"], factory)
    assert factories == [("factory", "a"), ("factory", "b")]
    assert mode.class_factories(["a", "b"], factories) == list(
        zip(["a", "b"], factories, strict=True)
    )
