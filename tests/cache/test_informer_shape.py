"""One key function, one transform, one object shape, end to end (FakeListerWatcher).

- the transform runs exactly once per object received, whether it arrived by list, watch,
  watch-list or a relist, and never on resyncs or tombstones;
- a custom ``key_func`` keys the FIFO, the store, tombstones, handler error logs and the
  keys a controller's ``own_key`` mapping queues;
- listed items get the List's ``apiVersion`` and ``kind`` (the real-server side of this is
  in ``test_informer_e2e.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from informer._cache.factory import SharedInformerFactory
from informer._cache.handlers import HandlerFuncs
from informer._cache.informer import SharedIndexInformer
from informer._cache.list_sync import received_items
from informer._controller.controller import Controller
from informer._controller.reconcile import Result
from informer._meta.objects import DeletedFinalStateUnknown, meta_namespace_key
from informer._meta.types import Obj, WatchEvent
from informer.testing import eventually
from informer.testing._fake import FakeListerWatcher

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TIMEOUT = 10.0
POLL = 0.001  # reflector counters nobody signals: checked at once
FAST = {"backoff_initial": 0.01, "backoff_cap": 0.05}


def cm(name: str, ns: str = "default", **data: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}, "data": data}


class ServerShaped:
    """A ListerWatcher over a FakeListerWatcher that shapes answers like kube-apiserver:
    a List is a ``ConfigMapList`` of ``v1`` whose items carry no ``apiVersion``/``kind``,
    watch objects carry both. Counts the objects it hands out (one per arrival)."""

    def __init__(self, fake: FakeListerWatcher) -> None:
        self.fake = fake
        self.received = 0

    async def list(self, **kwargs: Any) -> Obj:
        page = await self.fake.list(**kwargs)
        items = [
            {k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page["items"]
        ]
        self.received += len(items)
        return {**page, "kind": "ConfigMapList", "apiVersion": "v1", "items": items}

    def watch(self, **kwargs: Any) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        return self._watch(kwargs)

    @asynccontextmanager
    async def _watch(self, kwargs: dict[str, Any]) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        async with self.fake.watch(**kwargs) as events:
            yield self._shaped(events)

    async def _shaped(self, events: AsyncIterator[WatchEvent]) -> AsyncIterator[WatchEvent]:
        async for event in events:
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                self.received += 1
                obj = {"apiVersion": "v1", "kind": "ConfigMap", **event["object"]}
                event = {"type": event["type"], "object": obj}
            yield event


class CountingTransform:
    """Returns a new dict stamped with how many times this arrival was transformed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, obj: Obj) -> Obj:
        self.calls += 1
        return {**obj, "transformed": obj.get("transformed", 0) + 1}


class Seen:
    """Every object a handler received, and a way to await a condition on them."""

    def __init__(self) -> None:
        self.objects: list[Any] = []
        self._changed = anyio.Event()

    def handler(self) -> HandlerFuncs:
        return HandlerFuncs(self._add, lambda old, new: self._add(new), self._add)

    def _add(self, obj: Any) -> None:
        self.objects.append(obj)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()


@pytest.mark.parametrize("watch_list", [False, True], ids=["list-watch", "watch-list"])
async def test_transform_runs_once_per_object_received(watch_list: bool) -> None:
    fake = FakeListerWatcher([cm("a"), cm("b"), cm("c")])
    lw = ServerShaped(fake)
    transform = CountingTransform()
    inf = SharedIndexInformer(
        lw,
        transform=transform,
        resync_period=1.0,
        reflector_options={**FAST, "use_watch_list": watch_list},
    )
    seen = Seen()
    inf.add_event_handler(seen.handler())
    stats = inf.reflector.stats
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(inf.run)
            assert transform.calls == lw.received == 3  # the first sync
            before = stats.added + stats.modified + stats.deleted
            fake.modify(cm("a", v="1"))
            fake.create(cm("d"))
            fake.delete("default/b")

            def three_events() -> None:
                assert stats.added + stats.modified + stats.deleted == before + 3, stats

            await eventually(three_events, timeout=TIMEOUT, interval=POLL)
            assert transform.calls == lw.received == 6  # + three watch events
            fake.push_error(410, "Expired")  # relist (by list or by watch-list)

            def relisted() -> None:
                assert stats.syncs == 2, stats

            await eventually(relisted, timeout=TIMEOUT, interval=POLL)
            assert transform.calls == lw.received == 9  # + the three relisted objects
            # a resync (every second) replays the store: nothing is transformed again
            replayed = len(seen.objects)
            await seen.wait_for(lambda: len(seen.objects) >= replayed + 3)
            assert transform.calls == lw.received == 9
            tg.cancel_scope.cancel()
    assert stats.lists == (0 if watch_list else 2)
    assert {o.get("transformed") for o in seen.objects} == {1}
    assert {o["transformed"] for o in inf.indexer.list()} == {1}
    assert sorted(inf.indexer.list_keys()) == ["default/a", "default/c", "default/d"]


async def test_listed_items_get_the_lists_api_version_and_kind() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    lw = ServerShaped(fake)
    inf = SharedIndexInformer(lw, reflector_options=FAST)
    seen = Seen()
    inf.add_event_handler(seen.handler())
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(inf.run)
            fake.create(cm("c"))
            await seen.wait_for(lambda: len(seen.objects) == 3)
            tg.cancel_scope.cancel()
    shapes = {(o["apiVersion"], o["kind"]) for o in inf.indexer.list()}
    assert shapes == {("v1", "ConfigMap")}
    assert {(o["apiVersion"], o["kind"]) for o in seen.objects} == {("v1", "ConfigMap")}


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            {"kind": "DeploymentList", "apiVersion": "apps/v1", "items": [{"metadata": {}}]},
            [{"metadata": {}, "kind": "Deployment", "apiVersion": "apps/v1"}],
        ),
        (  # custom resources carry their own (kept even if they differ)
            {
                "kind": "WidgetList",
                "apiVersion": "x.io/v1",
                "items": [{"kind": "W", "apiVersion": "x.io/v2"}],
            },
            [{"kind": "W", "apiVersion": "x.io/v2"}],
        ),
        ({"kind": "List", "apiVersion": "v1", "items": [{"metadata": {}}]}, [{"metadata": {}}]),
        ({"items": [{"metadata": {}}]}, [{"metadata": {}}]),
        ({"kind": "ConfigMapList", "apiVersion": "v1", "items": None}, []),
    ],
    ids=["builtin", "custom-resource", "generic-List", "no-kind", "no-items"],
)
@pytest.mark.parametrize("transform", [None, lambda o: {**o, "t": 1}], ids=["plain", "transformed"])
def test_received_items(
    page: Obj, expected: list[Obj], transform: Callable[[Obj], Obj] | None
) -> None:
    if transform is not None:
        expected = [{**o, "t": 1} for o in expected]
    assert received_items(page, transform) == expected


def by_uid(obj: Obj) -> str:
    return str(obj["metadata"]["uid"])


@pytest.mark.allow_handler_failures
async def test_a_custom_key_func_keys_everything_of_the_informer() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b"), cm("c")])
    options = {**FAST, "inactivity_timeout": 0.2}
    inf = SharedIndexInformer(fake, key_func=by_uid, reflector_options=options)
    seen = Seen()
    deleted: list[Any] = []
    inf.add_event_handler(seen.handler())
    inf.add_event_handler(HandlerFuncs(on_delete=deleted.append))

    def fail(obj: Any) -> None:
        raise RuntimeError("handler bug")

    inf.add_event_handler(HandlerFuncs(on_update=lambda old, new: fail(new)))
    with anyio.fail_after(TIMEOUT), capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(inf.run)
            assert sorted(inf.indexer.list_keys()) == ["uid-a", "uid-b", "uid-c"]
            assert inf.key_func(cm("z")) == "uid-z"
            assert inf.key_func(DeletedFinalStateUnknown("k", None)) == "k"
            # b is deleted and c changed while the watch hangs; the history is compacted,
            # so the re-watch after the stall 410s and the relist infers b's deletion
            fake.stall_watches()
            fake.delete("default/b")
            fake.modify(cm("c", v="2"))
            fake.compact()
            await seen.wait_for(lambda: len(deleted) == 1)
            tg.cancel_scope.cancel()
    (tombstone,) = deleted
    assert isinstance(tombstone, DeletedFinalStateUnknown)
    assert tombstone.key == "uid-b"
    assert sorted(inf.indexer.list_keys()) == ["uid-a", "uid-c"]
    assert inf.lister().get_by_key("uid-c") is not None
    with pytest.raises(TypeError, match="get_by_key"):
        inf.lister().get("c", namespace="default")
    failures = [e for e in logs if e["event"] == "handler.failed"]
    assert failures and {e["key"] for e in failures} == {"uid-c"}


async def test_controller_own_keys_follow_the_informers_key_func() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = SharedIndexInformer(fake, key_func=by_uid, reflector_options=FAST)
    keys: list[str] = []
    found: list[bool] = []
    changed = anyio.Event()

    class ByUid(Controller):
        def setup(self) -> None:
            self.watch(inf)

        async def reconcile(self, key: str) -> Result | None:
            keys.append(key)
            found.append(inf.lister().get_by_key(key) is not None)
            changed.set()
            return None

    controller = ByUid(SharedInformerFactory(None), None)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(inf.run)
            tg.start_soon(controller.run)
            while not keys:
                await changed.wait()
            changed = anyio.Event()
            fake.delete("default/a")
            while len(keys) < 2:
                await changed.wait()
            tg.cancel_scope.cancel()
    assert keys == ["uid-a", "uid-a"]
    assert found == [True, False]
    assert meta_namespace_key(cm("a")) == "default/a"  # not what was queued
