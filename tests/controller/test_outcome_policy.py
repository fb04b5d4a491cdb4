"""The outcome policy (``informer/_controller/reconcile.py``): each row of its table, on a
queue that records what it was asked to do."""

from __future__ import annotations

import pytest
import structlog.testing

from informer import AlreadyExists, Conflict
from informer._controller.reconcile import (
    OutcomePolicy,
    ReconcileOutcome,
    ReconcileStats,
    Result,
)
from informer._failures import Failure

pytestmark = pytest.mark.timeout(30)


class QueueCalls:
    """The queue methods the policy uses, recorded as ``(method, key[, seconds])``."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def forget(self, item: str, /) -> None:
        self.calls.append(("forget", item))

    def add_after(self, item: str, seconds: float, /) -> None:
        self.calls.append(("add_after", item, seconds))

    def add_rate_limited(self, item: str, /) -> None:
        self.calls.append(("add_rate_limited", item))


def policy() -> tuple[OutcomePolicy, QueueCalls, ReconcileStats]:
    queue, stats = QueueCalls(), ReconcileStats()
    return OutcomePolicy(queue, name="ctl", stats=stats), queue, stats


@pytest.mark.parametrize(
    ("result", "outcome", "calls"),
    [
        (None, "success", [("forget", "k")]),
        (Result(), "success", [("forget", "k")]),
        (Result(requeue_after=0), "success", [("forget", "k")]),
        (Result(requeue_after=2.5), "requeue_after", [("forget", "k"), ("add_after", "k", 2.5)]),
        (Result(requeue=True), "requeue", [("add_rate_limited", "k")]),
        (Result(requeue=True, requeue_after=1), "requeue_after",
         [("forget", "k"), ("add_after", "k", 1)]),
    ],
    ids=["none", "empty", "after-zero", "after", "requeue", "after-wins"],
)  # fmt: skip
def test_a_returned_result(
    result: Result | None, outcome: ReconcileOutcome, calls: list[tuple[object, ...]]
) -> None:
    p, queue, _ = policy()
    assert p.succeeded("k", result) == outcome
    assert queue.calls == calls


def test_errors_are_retried_up_to_max_retries_in_a_row_then_dropped(
    handler_failures: list[Failure],
) -> None:
    p, queue, stats = policy()
    boom = RuntimeError("boom")
    with structlog.testing.capture_logs() as logs:
        outcomes = [p.failed("k", boom, max_retries=2) for _ in range(3)]
    assert outcomes == ["error"] * 3
    assert queue.calls == [("add_rate_limited", "k")] * 2 + [("forget", "k")]
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("reconcile.failed", "warning"),
        ("reconcile.failed", "warning"),
        ("reconcile.dropped", "error"),
    ]
    assert [e.get("retry", e.get("retries")) for e in logs] == [1, 2, 2]
    assert logs[0]["error"] == "RuntimeError: boom" and logs[0]["exc_info"] is boom
    assert stats.dropped == 1
    assert [(f.kind, f.where, f.key, f.error) for f in handler_failures] == [
        ("reconcile", "ctl", "k", boom)
    ] * 3
    queue.calls.clear()  # dropped: the count starts over
    with structlog.testing.capture_logs():
        p.failed("k", boom, max_retries=2)
    assert queue.calls == [("add_rate_limited", "k")]


@pytest.mark.allow_handler_failures
@pytest.mark.parametrize(
    "reset",
    ["success", "requeue", "not-admitted"],
    ids=str,
)
def test_the_failure_count_resets_on_success_and_when_not_admitted(reset: str) -> None:
    p, queue, stats = policy()
    p.failed("k", ValueError("x"), max_retries=1)
    if reset == "not-admitted":
        p.not_admitted("k")
    else:
        p.succeeded("k", Result(requeue=reset == "requeue"))
    queue.calls.clear()
    with structlog.testing.capture_logs():
        p.failed("k", ValueError("x"), max_retries=1)
    assert queue.calls == [("add_rate_limited", "k")]  # a retry again, not a drop
    assert stats.dropped == 0


@pytest.mark.allow_handler_failures
def test_max_retries_zero_drops_at_once_and_keys_count_apart() -> None:
    p, queue, stats = policy()
    with structlog.testing.capture_logs():
        p.failed("a", ValueError("x"), max_retries=1)
        p.failed("b", ValueError("x"), max_retries=0)
    assert queue.calls == [("add_rate_limited", "a"), ("forget", "b")]
    assert stats.dropped == 1


def test_not_admitted_forgets_the_key() -> None:
    p, queue, _ = policy()
    p.not_admitted("k")
    assert queue.calls == [("forget", "k")]


@pytest.mark.parametrize(
    "conflict",
    [
        Conflict("the object has been modified; please apply your changes", status=409),
        AlreadyExists('configmaps "a" already exists', status=409, reason="AlreadyExists"),
    ],
    ids=["conflict", "already-exists"],
)
def test_a_conflict_is_a_routine_rate_limited_requeue(
    conflict: Conflict, handler_failures: list[Failure]
) -> None:
    """Not an absorbed failure (no hook: the plugin does not fail the test), logged at
    info with the key, counted apart, retried after the limiter's backoff; it neither
    spends nor resets the retry budget."""
    p, queue, stats = policy()
    with structlog.testing.capture_logs() as logs:
        assert p.failed("k", conflict, max_retries=0) == "conflict"
    assert queue.calls == [("add_rate_limited", "k")]  # max_retries=0 would have dropped it
    assert [(e["event"], e["log_level"], e["key"]) for e in logs] == [
        ("reconcile.conflict", "info", "k")
    ]
    assert type(conflict).__name__ in logs[0]["error"]
    assert handler_failures == [] and stats.dropped == 0


@pytest.mark.allow_handler_failures
def test_a_conflict_leaves_the_failure_count_as_it_is() -> None:
    p, queue, stats = policy()
    with structlog.testing.capture_logs():
        p.failed("k", ValueError("x"), max_retries=1)
        p.failed("k", Conflict("modified", status=409), max_retries=1)
        p.failed("k", ValueError("x"), max_retries=1)  # the second failure in a row
    assert queue.calls[-1] == ("forget", "k") and stats.dropped == 1
