"""``LeaseTimings``: the one definition of the lease timings, their defaults and rules,
shared by the elector, the shard membership, both Manager configs and the CLI."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from informer import LeaderElectionConfig, ShardingConfig
from informer.leaderelection import LeaseTimings
from informer.run import build_parser

DEFAULTS = {"lease_duration": 15.0, "renew_deadline": 10.0, "retry_period": 2.0}


def test_defaults() -> None:
    timings = LeaseTimings()
    assert dataclasses.asdict(timings) == {**DEFAULTS, "release_timeout": 2.0}
    assert timings.lease_seconds == 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lease_duration": 10.0, "renew_deadline": 10.0}, r"lease_duration \(10s\) must be"),
        ({"lease_duration": 5.0, "renew_deadline": 10.0}, r"lease_duration \(5s\) must be"),
        ({"renew_deadline": 2.4, "retry_period": 2.0}, r"retry_period \* 1.2 \(2.4s\)"),
        ({"retry_period": 0.0}, "retry_period must be a positive"),
        ({"lease_duration": -1.0}, "lease_duration must be a positive"),
        ({"renew_deadline": math.nan}, "renew_deadline must be a positive"),
        ({"lease_duration": math.inf}, "lease_duration must be a positive"),
        ({"release_timeout": 0.0}, "release_timeout must be a positive"),
    ],
    ids=[
        "lease-eq-renew",
        "lease-lt-renew",
        "renew-le-retry-jitter",
        "retry-zero",
        "lease-negative",
        "renew-nan",
        "lease-inf",
        "release-zero",
    ],
)
@pytest.mark.parametrize(
    "build",
    [
        LeaseTimings,
        lambda **kw: LeaderElectionConfig("lease", "ns", **kw),
        lambda **kw: ShardingConfig("group", **kw),
    ],
    ids=["timings", "leader-election-config", "sharding-config"],
)
def test_every_holder_applies_the_same_rules(
    build: Any, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


def test_the_jitter_rule_is_strict() -> None:
    LeaseTimings(lease_duration=3.0, renew_deadline=2.5, retry_period=2.0)  # 2.5 > 2.4
    with pytest.raises(ValueError):
        LeaseTimings(lease_duration=3.0, renew_deadline=2.4, retry_period=2.0)


def test_lease_seconds_round_up_to_whole_seconds() -> None:
    assert LeaseTimings(lease_duration=3.2, renew_deadline=2.0, retry_period=0.1).lease_seconds == 4
    assert LeaseTimings(lease_duration=0.5, renew_deadline=0.3, retry_period=0.1).lease_seconds == 1


def test_timings_are_keyword_only() -> None:
    """Four numbers in a row are easily swapped: none of them is positional."""
    with pytest.raises(TypeError):
        LeaseTimings(15.0, 10.0, 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        LeaderElectionConfig("lease", "ns", "me", 15.0)  # type: ignore[misc]


@pytest.mark.parametrize(
    "config",
    [LeaderElectionConfig(name="lease", namespace="ns"), ShardingConfig(group="group")],
    ids=["leader-election", "sharding"],
)
def test_the_configs_are_lease_timings_with_its_defaults(config: LeaseTimings) -> None:
    assert isinstance(config, LeaseTimings)
    fields = [f.name for f in dataclasses.fields(LeaseTimings)]
    assert {f: getattr(config, f) for f in fields} == dataclasses.asdict(LeaseTimings())
    assert dataclasses.replace(config, retry_period=1.0).retry_period == 1.0


@pytest.mark.parametrize("prefix", ["leader_election", "shard"])
def test_the_flags_default_to_the_timings(prefix: str) -> None:
    args = build_parser().parse_args([])
    assert {f: getattr(args, f"{prefix}_{f}") for f in DEFAULTS} == DEFAULTS
    defaults = LeaseTimings()
    assert {f: getattr(defaults, f) for f in DEFAULTS} == DEFAULTS
