"""The handoff (informer._sharding.handoff): gates, drained, parking and re-enqueueing.

Two replicas ``a`` and ``b`` run in one process, each a real Controller on its own
informers (``FakeListerWatcher`` with the same ConfigMaps); the membership is played by
the test, which hands each Handoff its view and the other's published "drained" views
(:class:`Board`). This covers the protocol's steps one at a time, in orders the real
membership loop makes hard to force; ``test_shard_runner.py`` covers the whole on the
real API server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from informer._cache.factory import SharedInformerFactory
from informer._controller.controller import Controller
from informer._controller.mappers import KeyMapper
from informer._meta.resource import CONFIGMAPS, Resource
from informer._sharding.assignment import owner, view_digest
from informer._sharding.handoff import Gate, Handoff
from informer.testing._fake import FakeListerWatcher

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

KEYS = [f"ns/cm-{i:02d}" for i in range(40)]


def cm(key: str) -> dict[str, Any]:
    ns, name = key.split("/")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def factory(fake: FakeListerWatcher) -> SharedInformerFactory:
    def lister_watcher(resource: Resource, **_: Any) -> FakeListerWatcher:
        return fake

    return SharedInformerFactory(None, lister_watcher_factory=lister_watcher)


class Board:
    """What each replica published (the Leases' drained annotations, as the test lets
    the others see them)."""

    def __init__(self) -> None:
        self.drained: dict[str, str] = {}
        self.published: list[tuple[str, str]] = []

    def publisher(self, me: str) -> Callable[..., None]:
        def publish(*, view: str, drained: str) -> None:
            if drained and self.drained.get(me) != drained:
                self.published.append((me, drained))
            self.drained[me] = drained

        return publish


class Replica(Controller):
    name = "recorder"

    def __init__(self, me: str, board: Board, mapper: KeyMapper | None = None) -> None:
        self.me = me
        self.mapper = mapper
        self.calls: list[str] = []
        self.blocked: dict[str, anyio.Event] = {}
        self.running: set[str] = set()
        self.changed = anyio.Event()
        super().__init__(factory(FakeListerWatcher([cm(k) for k in KEYS])), None, workers=4)
        self.handoff = Handoff(me, publish=board.publisher(me))
        self.gate: Gate = self.handoff.gate(self)
        self.key_gate = self.gate

    def setup(self) -> None:
        self.watch(CONFIGMAPS, mapper=self.mapper)

    async def reconcile(self, key: str) -> None:
        self.calls.append(key)
        self.running.add(key)
        self._notify()
        try:
            if key in self.blocked:
                await self.blocked[key].wait()
        finally:
            self.running.discard(key)
            self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_steps_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checking it at each reconcile step (a start
        or an end wakes this at once) and every 10 ms for the state the gate changes
        without a reconcile (parked and skipped keys)."""
        with anyio.fail_after(10):
            while not predicate():
                with anyio.move_on_after(0.01):
                    await self.changed.wait()


def share(members: list[str], me: str) -> set[str]:
    return {k for k in KEYS if owner(members, k) == me}


@asynccontextmanager
async def running(*replicas: Replica) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        for r in replicas:
            await tg.start(_run, r)
        yield
        tg.cancel_scope.cancel()


async def _run(replica: Replica, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    async with replica.factory, anyio.create_task_group() as tg:
        tg.start_soon(replica.handoff.run)
        await tg.start(replica.run)
        task_status.started()


async def test_no_view_parks_then_a_lone_member_reconciles_everything() -> None:
    board = Board()
    a = Replica("a", board)
    async with running(a):
        await a.wait_steps_until(lambda: len(a.gate.parked) == len(KEYS))  # no view yet: all parked
        assert a.calls == []
        a.handoff.update(["a"], board.drained.get)  # alone: cleared at once
        assert a.handoff.cleared and board.drained["a"] == view_digest(["a"])
        await a.wait_steps_until(lambda: set(a.calls) == set(KEYS))
        assert a.gate.owned == len(KEYS) and not a.gate.parked


async def test_a_joiner_waits_for_the_drained_barrier_and_in_flight_reconciles() -> None:
    board = Board()
    a, b = Replica("a", board), Replica("b", board)
    both = ["a", "b"]
    moving = sorted(share(both, "b"))
    slow = moving[0]
    a.blocked[slow] = anyio.Event()
    async with running(a, b):
        await a.wait_steps_until(lambda: len(a.gate.parked) == len(KEYS))
        a.handoff.update(["a"], board.drained.get)
        await a.wait_steps_until(lambda: slow in a.running and len(a.calls) == len(KEYS))
        assert set(a.calls) == set(KEYS)

        # b joins: its view {a, b} is not cleared until a drained for it.
        b.handoff.update(both, board.drained.get)
        assert not b.handoff.cleared
        # a adopts {a, b}: it refuses b's keys at once, but a reconcile of one of them
        # is still running, so a does not publish "drained" yet.
        a.handoff.update(both, board.drained.get)
        v = view_digest(both)
        assert board.drained["a"] == view_digest(["a"])
        assert a.handoff.cleared  # b published drained for {a, b} (nothing in flight)
        b.handoff.update(both, board.drained.get)
        assert not b.handoff.cleared
        calls_before = len(a.calls)
        for key in moving[1:4]:
            a.queue.add(key)  # events for b's keys reach a too: skipped, not reconciled
        await a.wait_steps_until(lambda: a.gate.skipped >= 3)
        assert len(a.calls) == calls_before, (a.calls[calls_before:], moving[1:4], slow)
        await b.wait_steps_until(lambda: len(b.gate.parked) > 0)  # b's initial keys: parked
        assert b.calls == []

        a.blocked[slow].set()  # the in-flight reconcile ends: a drains
        await a.wait_steps_until(lambda: board.drained["a"] == v)
        b.handoff.update(both, board.drained.get)
        assert b.handoff.cleared
        # b reconciles exactly its share (parked and replayed from its cache), and the
        # slow key only after a's reconcile of it ended.
        await b.wait_steps_until(lambda: set(b.calls) == set(moving))
        assert b.gate.owned == len(moving)
        assert ("a", v) in board.published and ("b", v) in board.published
        assert board.published.index(("a", v)) > board.published.index(("b", v))


async def test_gained_keys_are_replayed_from_the_cache_through_the_mapper() -> None:
    """A key whose events were dropped while another member owned it is enqueued again
    when ownership arrives, here through a mapper (keys are not the objects' own)."""
    board = Board()

    def by_namespace_and_index(obj: dict[str, Any]) -> list[str]:
        return [f"group-{int(obj['metadata']['name'].split('-')[1]) % 8}"]

    b = Replica("b", board, mapper=by_namespace_and_index)
    groups = [f"group-{i}" for i in range(8)]
    board.drained["a"] = view_digest(["a", "b"])
    async with running(b):
        await b.wait_steps_until(lambda: len(b.gate.parked) == len(groups))
        b.handoff.update(["a", "b"], board.drained.get)
        mine = {g for g in groups if owner(["a", "b"], g) == "b"}
        await b.wait_steps_until(lambda: set(b.calls) == mine)
        # a leaves (its lease released): every group is b's; b reconciles the gained
        # ones without any new event.
        b.handoff.update(["b"], board.drained.get)
        await b.wait_steps_until(lambda: set(b.calls) == set(groups))
        assert sorted(b.calls) == sorted(groups)  # each key once: no duplicates
        assert b.handoff.rebalances == 1 and len(b.handoff.handoff_waits) == 2


async def test_an_invalid_membership_admits_nothing() -> None:
    board = Board()
    a = Replica("a", board)
    valid = [True]
    a.handoff.valid = lambda: valid[0]
    async with running(a):
        valid[0] = False  # the renew deadline passed, before the lapse is even noticed
        a.handoff.update(["a"], board.drained.get)
        await a.wait_steps_until(lambda: len(a.gate.parked) == len(KEYS))
        assert a.calls == []


def test_the_wait_histogram_is_cumulative_and_does_not_grow() -> None:
    from informer._sharding.handoff import WaitHistogram

    waits = WaitHistogram((0.1, 1.0))
    size = len(waits._counts)
    for seconds in (0.05, 0.1, 0.5, 3.0) * 1000:
        waits.observe(seconds)
    assert waits.buckets() == [("0.1", 2000.0), ("1.0", 3000.0), ("+Inf", 4000.0)]
    assert waits.sum == pytest.approx(3650.0)
    assert len(waits) == 4000
    assert len(waits._counts) == size
