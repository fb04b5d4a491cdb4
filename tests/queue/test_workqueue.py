"""Work queues: one test per rule of client-go's util/workqueue (see informer._queue.workqueue)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from informer._exceptions import QueueShutDown
from informer._queue.ratelimit import ExponentialFailureRateLimiter, MaxOfRateLimiter
from informer._queue.workqueue import DelayingQueue, RateLimitingQueue, WorkQueue

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(
    params=[
        pytest.param(WorkQueue, id="WorkQueue"),
        pytest.param(DelayingQueue, id="DelayingQueue"),
        pytest.param(RateLimitingQueue, id="RateLimitingQueue"),
    ]
)
def queue(request: pytest.FixtureRequest) -> WorkQueue[str]:
    q: WorkQueue[str] = request.param()
    return q


async def get_now(q: WorkQueue[str]) -> str:
    with anyio.fail_after(TIMEOUT):
        return await q.get()


# -- WorkQueue -----------------------------------------------------------------------------


async def test_add_while_queued_is_noop(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert [await get_now(queue), await get_now(queue)] == ["a", "b"]
    assert len(queue) == 0


async def test_fifo_order(queue: WorkQueue[str]) -> None:
    items = [f"k{i}" for i in range(20)]
    for item in items:
        queue.add(item)
    assert [await get_now(queue) for _ in items] == items


async def test_add_while_processing_requeued_after_done(queue: WorkQueue[str]) -> None:
    queue.add("a")
    assert await get_now(queue) == "a"
    queue.add("b")
    queue.add("a")  # while processing: parked, not handed out
    queue.add("a")
    assert len(queue) == 1
    assert await get_now(queue) == "b"
    assert len(queue) == 0
    queue.done("a")  # re-queued now, behind anything queued meanwhile
    assert len(queue) == 1
    assert await get_now(queue) == "a"
    queue.done("a")
    queue.done("b")
    assert len(queue) == 0


async def test_done_without_re_add_does_not_requeue(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.done(await get_now(queue))
    assert len(queue) == 0
    assert queue.depth() == 0


@pytest.mark.parametrize("processed_twice", [False, True], ids=["never-got", "done-twice"])
async def test_done_of_item_not_processing_raises(
    queue: WorkQueue[str], processed_twice: bool
) -> None:
    queue.add("a")
    if processed_twice:
        queue.done(await get_now(queue))
    with pytest.raises(ValueError, match="not being processed"):
        queue.done("a")


async def test_get_takes_a_ready_item_without_yielding(queue: WorkQueue[str]) -> None:
    queue.add("a")
    coro = queue.get()
    with pytest.raises(StopIteration) as stopped:
        coro.send(None)  # completes in one step: no checkpoint
    assert stopped.value.value == "a"


async def test_waiting_getters_served_in_order(queue: WorkQueue[str]) -> None:
    got: list[tuple[int, str]] = []

    async def worker(n: int) -> None:
        got.append((n, await queue.get()))

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(worker, n)
                await anyio.wait_all_tasks_blocked()
            for item in ("a", "b", "c"):
                queue.add(item)
    assert got == [(0, "a"), (1, "b"), (2, "c")]


async def test_get_is_cancellable_while_waiting(queue: WorkQueue[str]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.get)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        queue.add("a")  # not swallowed by the cancelled getter
        assert len(queue) == 1
        assert await queue.get() == "a"


async def test_woken_then_cancelled_getter_passes_the_item_on(queue: WorkQueue[str]) -> None:
    # Raw asyncio: cancel a getter after its wake-up was delivered but before it ran.
    with anyio.fail_after(TIMEOUT):
        first = asyncio.create_task(queue.get())
        await anyio.wait_all_tasks_blocked()
        second = asyncio.create_task(queue.get())
        await anyio.wait_all_tasks_blocked()
        queue.add("a")  # wakes `first` ...
        first.cancel()  # ... which is cancelled before it can take the item
        assert await second == "a"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert len(queue) == 0


async def test_concurrent_workers_never_hold_the_same_item() -> None:
    rng = random.Random(20240501)
    q: WorkQueue[int] = WorkQueue()
    held: set[int] = set()
    owed: set[int] = set()  # accepted adds not yet followed by a hand-out
    handed_out = 0

    def add(item: int) -> None:
        if not q.shutting_down():
            owed.add(item)
        q.add(item)

    async def worker() -> None:
        nonlocal handed_out
        while True:
            try:
                item = await q.get()
            except QueueShutDown:
                return
            assert item not in held, f"{item} handed to two workers"
            held.add(item)
            owed.discard(item)
            handed_out += 1
            try:
                for _ in range(rng.randrange(3)):
                    await anyio.lowlevel.checkpoint()
                if rng.random() < 0.3:
                    add(item)  # re-add while processing
                if rng.random() < 0.2:
                    add(rng.randrange(50))
                await anyio.lowlevel.checkpoint()
            finally:
                held.discard(item)
                q.done(item)

    async def producer() -> None:
        for _ in range(3000):
            add(rng.randrange(50))
            if rng.random() < 0.3:
                await anyio.lowlevel.checkpoint()
        await q.shut_down_with_drain()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(worker)
            tg.start_soon(producer)

    assert not held
    assert not owed, f"adds lost: {sorted(owed)}"
    assert len(q) == 0 and q.depth() == 0
    assert handed_out > 500


# -- shut down -----------------------------------------------------------------------------


async def test_shut_down_drains_then_raises(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.add("b")
    queue.shut_down()
    assert queue.shutting_down()
    assert await get_now(queue) == "a"
    assert await get_now(queue) == "b"
    with pytest.raises(QueueShutDown):
        await get_now(queue)
    queue.done("a")  # items handed out before still complete normally
    queue.done("b")


async def test_shut_down_wakes_waiting_getters(queue: WorkQueue[str]) -> None:
    outcomes: list[str] = []

    async def worker() -> None:
        try:
            await queue.get()
        except QueueShutDown:
            outcomes.append("shut down")

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(worker)
            await anyio.wait_all_tasks_blocked()
            queue.shut_down()
    assert outcomes == ["shut down"] * 3


async def test_item_parked_before_shut_down_is_still_drained(queue: WorkQueue[str]) -> None:
    queue.add("a")
    await get_now(queue)
    queue.add("a")  # parked behind the in-flight copy
    queue.shut_down()
    queue.done("a")
    assert await get_now(queue) == "a"
    queue.done("a")
    with pytest.raises(QueueShutDown):
        await get_now(queue)


async def _shut_down(q: WorkQueue[str]) -> None:
    q.shut_down()


async def _shut_down_with_drain(q: WorkQueue[str]) -> None:
    await q.shut_down_with_drain()


def _add(q: RateLimitingQueue[str], item: str) -> None:
    q.add(item)


def _add_after_now(q: RateLimitingQueue[str], item: str) -> None:
    q.add_after(item, 0)


def _add_after_later(q: RateLimitingQueue[str], item: str) -> None:
    q.add_after(item, 0.001)


def _add_rate_limited(q: RateLimitingQueue[str], item: str) -> None:
    q.add_rate_limited(item)


@pytest.mark.parametrize(
    "shut_down",
    [_shut_down, _shut_down_with_drain],
    ids=["shut_down", "shut_down_with_drain"],
)
@pytest.mark.parametrize(
    "add",
    [_add, _add_after_now, _add_after_later, _add_rate_limited],
    ids=["add", "add_after-now", "add_after-later", "add_rate_limited"],
)
async def test_adds_ignored_after_shut_down(
    shut_down: Callable[[WorkQueue[str]], Awaitable[None]],
    add: Callable[[RateLimitingQueue[str], str], None],
) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    with anyio.fail_after(TIMEOUT):
        await shut_down(q)
        add(q, "a")
        assert len(q) == 0 and q.depth() == 0
        with pytest.raises(QueueShutDown):
            await q.get()


async def test_shut_down_with_drain_waits_for_in_flight(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.add("b")
    a = await get_now(queue)
    drained = anyio.Event()

    async def drain() -> None:
        await queue.shut_down_with_drain()
        drained.set()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            await anyio.wait_all_tasks_blocked()
            assert queue.shutting_down()
            assert not drained.is_set()
            b = await queue.get()  # workers keep draining what is queued
            queue.done(a)
            await anyio.wait_all_tasks_blocked()
            assert not drained.is_set()
            queue.done(b)
            await drained.wait()


async def test_shut_down_with_drain_returns_when_idle(queue: WorkQueue[str]) -> None:
    with anyio.fail_after(TIMEOUT):
        await queue.shut_down_with_drain()
    assert queue.shutting_down()


async def test_shut_down_releases_shut_down_with_drain(queue: WorkQueue[str]) -> None:
    queue.add("a")
    await get_now(queue)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.shut_down_with_drain)
            await anyio.wait_all_tasks_blocked()
            queue.shut_down()  # forces the drain to give up waiting for "a"


# -- delays --------------------------------------------------------------------------------


async def test_add_after_fires() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    with anyio.fail_after(TIMEOUT):
        start = anyio.current_time()
        q.add_after("a", 0.01)
        assert len(q) == 0
        assert await q.get() == "a"
        assert anyio.current_time() - start >= 0.009


@pytest.mark.parametrize("seconds", [0.0, -1.0], ids=["zero", "negative"])
async def test_add_after_non_positive_adds_now(seconds: float) -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("a", seconds)
    assert len(q) == 1


@pytest.mark.parametrize(
    "delays",
    [(0.03, 0.01), (0.01, 0.03)],
    ids=["later-then-earlier", "earlier-then-later"],
)
async def test_add_after_earliest_wins(delays: tuple[float, float]) -> None:
    q: DelayingQueue[str] = DelayingQueue()
    for delay in delays:
        q.add_after("a", delay)
    q.add_after("marker", 0.02)
    q.add_after("end", 0.06)
    order = []
    with anyio.fail_after(TIMEOUT):
        for _ in range(3):
            item = await q.get()
            order.append(item)
            q.done(item)
    # "a" came at 0.01 (before the marker) and only once (not again at 0.03).
    assert order == ["a", "marker", "end"]
    assert len(q) == 0


async def test_add_after_fires_in_time_order() -> None:
    q: DelayingQueue[int] = DelayingQueue()
    delays = [5, 1, 4, 2, 3]
    for n in delays:
        q.add_after(n, n / 100)
    with anyio.fail_after(TIMEOUT):
        assert [await q.get() for _ in delays] == sorted(delays)


async def test_add_after_of_queued_item_is_deduplicated_when_due() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add("a")
    q.add_after("a", 0.01)
    q.add_after("end", 0.02)
    with anyio.fail_after(TIMEOUT):
        assert await q.get() == "a"
        assert await q.get() == "end"  # "a" became due while processing: parked
    q.done("end")
    assert len(q) == 0
    q.done("a")
    assert len(q) == 1


async def test_shut_down_drops_delayed_items() -> None:
    q: DelayingQueue[str] = DelayingQueue()
    q.add_after("a", 0.01)
    q.shut_down()
    with anyio.fail_after(TIMEOUT), pytest.raises(QueueShutDown):
        await q.get()


# -- rate limiting -------------------------------------------------------------------------


class RecordingLimiter:
    def __init__(self, inner: ExponentialFailureRateLimiter) -> None:
        self.inner = inner
        self.delays: list[float] = []

    def when(self, item: Hashable) -> float:
        delay = self.inner.when(item)
        self.delays.append(delay)
        return delay

    def forget(self, item: Hashable) -> None:
        self.inner.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.inner.num_requeues(item)


async def test_rate_limited_retries_grow_exponentially_and_forget_resets() -> None:
    limiter = RecordingLimiter(ExponentialFailureRateLimiter(0.001, 1.0))
    q: RateLimitingQueue[str] = RateLimitingQueue(limiter)
    with anyio.fail_after(TIMEOUT):
        for attempt in range(1, 5):
            start = anyio.current_time()
            q.add_rate_limited("a")
            assert q.num_requeues("a") == attempt
            assert await q.get() == "a"
            assert anyio.current_time() - start >= limiter.delays[-1] * 0.9
            q.done("a")
        q.forget("a")
        assert q.num_requeues("a") == 0
        q.add_rate_limited("a")
        assert await q.get() == "a"
    assert limiter.delays == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.001])


async def test_rate_limiting_queue_defaults_to_controller_limiter() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue()
    assert isinstance(q.rate_limiter, MaxOfRateLimiter)


# -- statistics and metrics ----------------------------------------------------------------


async def test_depth_counts_parked_items_len_counts_ready_ones(queue: WorkQueue[str]) -> None:
    queue.add("a")
    await get_now(queue)
    queue.add("a")
    assert (len(queue), queue.depth()) == (0, 1)
    queue.done("a")
    assert (len(queue), queue.depth()) == (1, 1)


async def test_unfinished_work_and_longest_running_processor() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    assert q.unfinished_work_seconds() == 0.0
    assert q.longest_running_processor_seconds() == 0.0
    for item in ("a", "b", "c"):
        q.add(item)
    await get_now(q)  # a at t=0
    clock.advance(1.0)
    await get_now(q)  # b at t=1
    clock.advance(2.0)
    assert q.unfinished_work_seconds() == pytest.approx(3.0 + 2.0)
    assert q.longest_running_processor_seconds() == pytest.approx(3.0)
    q.done("a")
    assert q.unfinished_work_seconds() == pytest.approx(2.0)
    assert q.longest_running_processor_seconds() == pytest.approx(2.0)
    q.add("a")
    await get_now(q)  # c at t=3
    await get_now(q)  # a again at t=3: now the newest
    clock.advance(1.0)
    assert q.unfinished_work_seconds() == pytest.approx(3.0 + 1.0 + 1.0)
    assert q.longest_running_processor_seconds() == pytest.approx(3.0)
    for item in ("b", "c", "a"):
        q.done(item)
    assert q.unfinished_work_seconds() == 0.0
    assert q.longest_running_processor_seconds() == 0.0


class RecordingMetrics:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def add(self) -> None:
        self.events.append(("add",))

    def get(self, queue_seconds: float) -> None:
        self.events.append(("get", queue_seconds))

    def done(self, work_seconds: float) -> None:
        self.events.append(("done", work_seconds))

    def retry(self) -> None:
        self.events.append(("retry",))

    def set_depth(self, depth: int) -> None:
        self.events.append(("depth", depth))


async def test_metrics_hooks() -> None:
    clock = FakeClock()
    metrics = RecordingMetrics()
    q: RateLimitingQueue[str] = RateLimitingQueue(name="things", metrics=metrics, clock=clock)
    assert q.name == "things"
    q.add("a")
    q.add("a")  # de-duplicated: not reported
    clock.advance(2.0)
    await get_now(q)
    q.add("a")  # parked while processing: counts as an add
    clock.advance(3.0)
    q.done("a")
    await get_now(q)
    q.add_after("b", 0)
    q.shut_down()
    q.add_after("b", 0)  # ignored: no retry reported
    assert metrics.events == [
        ("add",),
        ("depth", 1),
        ("get", 2.0),
        ("depth", 0),
        ("add",),
        ("depth", 1),
        ("done", 3.0),
        ("get", 3.0),
        ("depth", 0),
        ("retry",),
        ("add",),
        ("depth", 1),
    ]
