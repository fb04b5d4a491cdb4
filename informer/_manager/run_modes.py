"""Which :class:`~informer._manager.mode.RunMode` a Manager's configuration selects.

Kept apart from :mod:`.mode` (the protocol and the plain mode), which the modes
themselves import.
"""

from __future__ import annotations

from .._leaderelection.config import LeaderElectionConfig
from .._sharding.config import ShardingConfig
from .leader import LeaderElected
from .mode import Plain, RunMode
from .sharded import ShardedByKey
from .sharded_namespaces import ShardedByNamespace

__all__ = ["run_mode"]


def run_mode(
    leader_election: LeaderElectionConfig | None, sharding: ShardingConfig | None
) -> RunMode:
    """The run mode of a Manager configured with these (``ValueError`` for both)."""
    if leader_election is not None and sharding is not None:
        raise ValueError(
            "leader election and sharding exclude each other: one leader runs every "
            "key, shards split the keys over every replica; pass one of them"
        )
    if leader_election is not None:
        return LeaderElected(leader_election)
    if sharding is not None and sharding.shard_by == "namespace":
        return ShardedByNamespace(sharding)
    if sharding is not None:
        return ShardedByKey(sharding)
    return Plain()
