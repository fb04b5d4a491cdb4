"""``observe``: one rule for judging a Lease held by someone else, on our own clock
(used by the leader elector and the shard membership)."""

from __future__ import annotations

from typing import Any

import pytest

from informer._leaderelection.observation import ObservedLease, observe


def lease(rv: str = "1", **spec: Any) -> dict[str, Any]:
    record = {"holderIdentity": "b", "leaseDurationSeconds": 10, "renewTime": "t1", **spec}
    return {"metadata": {"name": "l", "resourceVersion": rv}, "spec": record}


def test_a_first_observation_starts_now() -> None:
    seen = observe(None, lease(), 100.0)
    assert (seen.since, seen.holder, seen.lease_seconds) == (100.0, "b", 10.0)
    assert seen.resource_version == "1" and not seen.released


def test_expiry_is_the_duration_after_the_record_was_first_seen() -> None:
    seen = observe(None, lease(), 100.0)
    assert not seen.expired(109.999)
    assert seen.expired(110.0)


def test_an_unchanged_record_keeps_its_time_but_the_latest_lease() -> None:
    """A write that leaves the record alone (an annotation) is no renewal."""
    first = observe(None, lease("1"), 100.0)
    again = observe(first, lease("2"), 105.0)
    assert again.since == 100.0 and again.resource_version == "2"
    assert again.expired(110.0)


def test_a_changed_record_starts_again() -> None:
    """A renewal writes a new renewTime: the holder keeps its lease."""
    first = observe(None, lease("1"), 100.0)
    renewed = observe(first, lease("2", renewTime="t2"), 105.0)
    assert renewed.since == 105.0 and not renewed.expired(110.0)


def test_the_holders_clock_is_never_read() -> None:
    """A renewTime far in the past or future changes nothing but the record."""
    seen = observe(None, lease(renewTime="1970-01-01T00:00:00.000000Z"), 100.0)
    assert not seen.expired(105.0)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(None, 0.0), ("10", 0.0), (True, 0.0), (7, 7.0), (2.5, 2.5)],
    ids=["missing", "string", "bool", "int", "float"],
)
def test_lease_seconds_that_are_not_numbers_are_zero(seconds: Any, expected: float) -> None:
    seen = observe(None, lease(leaseDurationSeconds=seconds), 0.0)
    assert seen.lease_seconds == expected
    assert seen.expired(expected)


def test_released_and_empty() -> None:
    assert observe(None, lease(holderIdentity=""), 0.0).released
    empty = observe(None, {"metadata": {}}, 0.0)
    assert empty.released and empty.record == {} and empty.expired(0.0)


def test_observations_are_immutable() -> None:
    seen = observe(None, lease(), 0.0)
    assert isinstance(seen, ObservedLease)
    with pytest.raises(AttributeError):
        seen.since = 1.0  # type: ignore[misc]
