"""LogThrottle: one line per cause per interval, the rest counted."""

from __future__ import annotations

import pytest

from informer._cache.throttle import LogThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_line_of_each_cause_is_logged_then_suppressed_within_the_interval() -> None:
    clock = Clock()
    throttle = LogThrottle(60.0, clock=clock)
    assert throttle.allow("a") == 0
    assert throttle.allow("b") == 0  # causes are independent
    assert [throttle.allow("a") for _ in range(5)] == [None] * 5
    clock.now += 59.9
    assert throttle.allow("a") is None
    clock.now += 0.1
    assert throttle.allow("a") == 6  # logged, reporting the six suppressed
    assert throttle.allow("a") is None


def test_drain_reports_and_resets_the_unreported_counts() -> None:
    clock = Clock()
    throttle = LogThrottle(60.0, clock=clock)
    throttle.allow("a")
    throttle.allow("a")
    throttle.allow("b")
    assert throttle.drain() == {"a": 1}
    assert throttle.drain() == {}
    assert throttle.allow("a") is None  # the interval still runs
    clock.now += 60.0
    assert throttle.allow("a") == 1  # only what drain did not report


def test_zero_interval_logs_everything_and_negative_is_refused() -> None:
    throttle = LogThrottle(0.0, clock=Clock())
    assert [throttle.allow("a") for _ in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="interval"):
        LogThrottle(-1.0)
