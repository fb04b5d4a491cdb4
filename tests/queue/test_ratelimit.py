"""Rate limiters: one test per rule of client-go's default_rate_limiters.go."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from informer._queue.ratelimit import (
    BucketRateLimiter,
    ExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def whens(limiter: RateLimiter, item: Hashable, n: int) -> list[float]:
    return [limiter.when(item) for _ in range(n)]


@pytest.mark.parametrize(
    ("base", "cap", "expected"),
    [
        pytest.param(0.005, 1000.0, [0.005, 0.01, 0.02, 0.04, 0.08], id="default-doubles"),
        pytest.param(1.0, 10.0, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0], id="capped"),
        pytest.param(0.0, 5.0, [0.0, 0.0, 0.0], id="zero-base"),
    ],
)
def test_exponential_doubles_per_failure_up_to_cap(
    base: float, cap: float, expected: list[float]
) -> None:
    limiter = ExponentialFailureRateLimiter(base, cap)
    assert whens(limiter, "a", len(expected)) == pytest.approx(expected)
    assert limiter.num_requeues("a") == len(expected)


def test_exponential_never_overflows() -> None:
    limiter = ExponentialFailureRateLimiter(0.005, 1000.0)
    delays = whens(limiter, "a", 5000)
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0
    assert limiter.num_requeues("a") == 5000


def test_exponential_forget_resets_only_that_item() -> None:
    limiter = ExponentialFailureRateLimiter(0.005, 1000.0)
    whens(limiter, "a", 3)
    whens(limiter, "b", 2)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.num_requeues("b") == 2
    assert limiter.when("b") == pytest.approx(0.02)
    limiter.forget("never-seen")  # no error


def test_fast_slow_switches_after_max_fast_attempts() -> None:
    limiter = ItemFastSlowRateLimiter(0.01, 5.0, 3)
    assert whens(limiter, "a", 5) == [0.01, 0.01, 0.01, 5.0, 5.0]
    assert limiter.num_requeues("a") == 5
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.01


def test_bucket_burst_then_qps_spacing() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=3, clock=clock)
    # The bucket starts full: the burst passes at once, then one token every 1/qps.
    assert whens(limiter, "x", 3) == [0.0, 0.0, 0.0]
    assert whens(limiter, "y", 3) == pytest.approx([0.1, 0.2, 0.3])
    # 0.2 s later two tokens have been repaid; the next reservation queues behind one.
    clock.advance(0.2)
    assert limiter.when("z") == pytest.approx(0.2)
    # Idle long enough: refilled to the burst, not beyond.
    clock.advance(60.0)
    assert whens(limiter, "x", 4) == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_bucket_has_no_per_item_state() -> None:
    limiter = BucketRateLimiter(qps=1, burst=1, clock=FakeClock())
    limiter.when("a")
    limiter.when("a")
    assert limiter.num_requeues("a") == 0
    limiter.forget("a")  # no-op
    assert limiter.when("b") == pytest.approx(2.0)


def test_bucket_clock_going_backwards_adds_no_tokens() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=1, clock=clock)
    assert limiter.when("a") == 0.0
    clock.advance(-5.0)
    assert limiter.when("a") == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("qps", "burst"),
    [
        pytest.param(0.0, 1, id="zero-qps"),
        pytest.param(-1.0, 1, id="negative-qps"),
        pytest.param(1.0, 0, id="zero-burst"),
    ],
)
def test_bucket_rejects_unusable_parameters(qps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=qps, burst=burst)


def test_bucket_infinite_qps_never_delays() -> None:
    limiter = BucketRateLimiter(qps=float("inf"), burst=1, clock=FakeClock())
    assert whens(limiter, "a", 1000) == [0.0] * 1000


def test_max_of_answers_worst_case_and_forgets_everywhere() -> None:
    clock = FakeClock()
    limiter = MaxOfRateLimiter(
        ExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10, burst=2, clock=clock),
        ItemFastSlowRateLimiter(0.001, 0.001, 1),
    )
    # exponential 0.005, 0.01 dominates while the bucket has tokens; then the bucket's 0.1.
    assert whens(limiter, "a", 3) == pytest.approx([0.005, 0.01, 0.1])
    assert limiter.num_requeues("a") == 3  # max over limiters (bucket says 0)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    clock.advance(10.0)
    assert limiter.when("a") == pytest.approx(0.005)


def test_max_of_nothing_is_no_delay() -> None:
    limiter = MaxOfRateLimiter()
    assert limiter.when("a") == 0.0
    assert limiter.num_requeues("a") == 0


def test_default_controller_rate_limiter() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    # Per item: 5 ms doubling.
    assert whens(limiter, "a", 3) == pytest.approx([0.005, 0.01, 0.02])
    # Overall: 100 tokens burst (3 used), then 10 qps.
    delays = [limiter.when(f"k{i}") for i in range(97)]
    assert delays == pytest.approx([0.005] * 97)
    assert limiter.when("k-next") == pytest.approx(0.1)
    assert limiter.when("k-after") == pytest.approx(0.2)
