"""SharedIndexInformer and its processor, on the FakeListerWatcher (unit level)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

from informer._cache.handlers import FilteringHandler, HandlerFuncs
from informer._cache.informer import SharedIndexInformer
from informer._cache.transforms import strip_managed_fields
from informer._exceptions import ResourceExpired
from informer._meta.objects import DeletedFinalStateUnknown, meta_namespace_key
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

FAST = {"backoff_initial": 0.01, "backoff_cap": 0.05}


def cm(name: str, ns: str = "default", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "data": dict(data),
    }


class Recorder:
    """A handler recording (event, key, rv) triples and waking waiters."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.objects: list[Any] = []
        self._changed = anyio.Event()

    def _record(self, kind: str, obj: Any) -> None:
        rv = "" if isinstance(obj, DeletedFinalStateUnknown) else obj["metadata"]["resourceVersion"]
        self.events.append((kind, meta_namespace_key(obj), rv))
        self.objects.append(obj)
        self._changed.set()
        self._changed = anyio.Event()

    def on_add(self, obj: Any) -> None:
        self._record("add", obj)

    def on_update(self, old: Any, new: Any) -> None:
        self._record("update", new)

    def on_delete(self, obj: Any) -> None:
        self._record("delete", obj)

    async def wait_for(self, predicate: Callable[[list[tuple[str, str, str]]], bool]) -> None:
        with anyio.fail_after(5):
            while not predicate(self.events):
                await self._changed.wait()

    def kinds(self, kind: str) -> list[str]:
        return [k for e, k, _ in self.events if e == kind]


def make(fake: FakeListerWatcher, **kw: Any) -> SharedIndexInformer:
    return SharedIndexInformer(fake, name="configmaps", reflector_options=FAST, **kw)


async def test_sync_delivers_initial_objects_and_events_in_order() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    inf = make(fake)
    rec = Recorder()
    reg = inf.add_event_handler(rec)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        assert inf.has_synced()
        await rec.wait_for(lambda ev: len(ev) == 2)
        assert reg.has_synced()
        assert sorted(inf.indexer.list_keys()) == ["default/a", "default/b"]
        fake.create(cm("c"))
        updated = fake.modify(cm("a", x="1"))
        fake.delete("default/b")
        await rec.wait_for(lambda ev: len(ev) == 5)
        assert rec.events[2:] == [
            ("add", "default/c", rec.events[2][2]),
            ("update", "default/a", updated["metadata"]["resourceVersion"]),
            ("delete", "default/b", rec.events[4][2]),
        ]
        assert sorted(inf.indexer.list_keys()) == ["default/a", "default/c"]
        assert inf.lister().get("a", namespace="default") == updated
        assert inf.last_sync_resource_version == fake.resource_version
        tg.cancel_scope.cancel()


async def test_store_is_updated_before_handlers_are_told() -> None:
    fake = FakeListerWatcher()
    inf = make(fake)
    seen: list[bool] = []
    all_seen = anyio.Event()

    def on_add(obj: Any) -> None:
        seen.append(inf.indexer.get_by_key(meta_namespace_key(obj)) is obj)
        if len(seen) == 5:
            all_seen.set()

    inf.add_event_handler(HandlerFuncs(on_add=on_add))
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        for i in range(5):
            fake.create(cm(f"o{i}"))
        with anyio.fail_after(5):
            await all_seen.wait()
        assert seen == [True] * 5
        tg.cancel_scope.cancel()


@pytest.mark.allow_handler_failures
async def test_slow_and_failing_handlers_do_not_block_others() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = make(fake)
    gate = anyio.Event()
    slow_seen: list[str] = []
    slow_done = anyio.Event()

    async def slow(event: str, obj: Any) -> None:
        await gate.wait()
        slow_seen.append(f"{event}:{meta_namespace_key(obj)}")
        if len(slow_seen) == 3:
            slow_done.set()

    def failing(event: str, obj: Any) -> None:
        raise RuntimeError("boom")

    rec = Recorder()
    inf.add_event_handler(slow)
    inf.add_event_handler(failing)
    inf.add_event_handler(rec)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(inf.run)
            fake.create(cm("b"))
            fake.delete("default/a")
            # The fast handler sees everything while the slow one is still blocked.
            await rec.wait_for(lambda ev: len(ev) == 3)
            assert slow_seen == []
            gate.set()
            with anyio.fail_after(5):
                await slow_done.wait()
            assert slow_seen == ["add:default/a", "add:default/b", "delete:default/a"]
            tg.cancel_scope.cancel()
    failures = [e for e in logs if e["event"] == "handler.failed"]
    assert [f["key"] for f in failures] == ["default/a", "default/b", "default/a"]
    assert all("failing" in f["handler"] for f in failures)
    assert all(f["resource"] == "configmaps" for f in failures)


async def test_handler_added_late_gets_replay_then_live_events() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    inf = make(fake)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        rec = Recorder()
        reg = inf.add_event_handler(rec)
        assert not reg.has_synced()
        with anyio.fail_after(5):
            await inf.wait_for_sync(reg)
        assert reg.has_synced()
        assert sorted(rec.kinds("add")) == ["default/a", "default/b"]
        fake.create(cm("c"))
        await rec.wait_for(lambda ev: len(ev) == 3)
        tg.cancel_scope.cancel()


async def test_remove_event_handler_stops_delivery() -> None:
    fake = FakeListerWatcher()
    inf = make(fake)
    removed, kept = Recorder(), Recorder()
    reg = inf.add_event_handler(removed)
    inf.add_event_handler(kept)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        fake.create(cm("a"))
        await removed.wait_for(lambda ev: len(ev) == 1)
        inf.remove_event_handler(reg)
        fake.create(cm("b"))
        await kept.wait_for(lambda ev: len(ev) == 2)
        assert removed.kinds("add") == ["default/a"]
        with pytest.raises(ValueError, match="not registered"):
            inf.remove_event_handler(reg)
        tg.cancel_scope.cancel()


async def test_deleted_while_disconnected_reaches_on_delete_as_tombstone() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    inf = make(fake)
    rec = Recorder()
    inf.add_event_handler(rec)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        await rec.wait_for(lambda ev: len(ev) == 2)
        # Cut the watch, then delete while nobody watches and compact the history, so
        # the resume answers 410 and the reflector relists.
        fake.close_watches()
        fake.delete("default/a")
        fake.create(cm("c"))
        fake.compact()
        await rec.wait_for(lambda ev: ("delete", "default/a", "") in ev and len(ev) >= 4)
        tombstone = rec.objects[[k for _, k, _ in rec.events].index("default/a", 1)]
        assert isinstance(tombstone, DeletedFinalStateUnknown)
        assert tombstone.key == "default/a"
        assert tombstone.obj is not None and tombstone.obj["metadata"]["name"] == "a"
        assert sorted(inf.indexer.list_keys()) == ["default/b", "default/c"]
        assert inf.reflector.stats.expired >= 1
        tg.cancel_scope.cancel()


async def test_relist_of_unchanged_objects_is_not_an_update_without_resync() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = make(fake)
    rec = Recorder()
    inf.add_event_handler(rec)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        await rec.wait_for(lambda ev: len(ev) == 1)
        lists = len(fake.list_calls())
        opens = fake.watch_opens
        fake.fail_next_watch(ResourceExpired("gone"))
        fake.close_watches()
        with anyio.fail_after(5):
            await fake.wait_for_calls("list", lists + 1)
            await fake.wait_for_watch_opens(opens + 1)
        fake.create(cm("z"))
        await rec.wait_for(lambda ev: len(ev) == 2)
        assert [e for e, _, _ in rec.events] == ["add", "add"]
        tg.cancel_scope.cancel()


async def test_resync_goes_only_to_handlers_that_asked() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = make(fake)
    syncing, quiet = Recorder(), Recorder()
    inf.add_event_handler(syncing, resync_period=0.2)  # raised to the 1 s minimum
    inf.add_event_handler(quiet)
    assert inf.listeners[0].resync_period == 1.0
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        await syncing.wait_for(lambda ev: len(ev) >= 2)
        assert syncing.events[1][0] == "update"
        assert syncing.events[1][2] == syncing.events[0][2]  # same RV: a resync
        assert quiet.events == [("add", "default/a", syncing.events[0][2])]
        assert len(fake.list_calls()) == 1  # resync never relists
        tg.cancel_scope.cancel()


async def test_transform_and_custom_index() -> None:
    obj = cm("a")
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    fake = FakeListerWatcher([obj, cm("b")])

    def by_app(o: dict[str, Any]) -> list[str]:
        return [o["metadata"]["labels"]["app"]]

    inf = make(fake, transform=strip_managed_fields, indexers={"app": by_app})
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        stored = inf.indexer.get_by_key("default/a")
        assert stored is not None and "managedFields" not in stored["metadata"]
        assert [o["metadata"]["name"] for o in inf.indexer.by_index("app", "b")] == ["b"]
        assert len(inf.lister().list(namespace="default", label_selector="app in (a,b)")) == 2
        assert inf.lister().list(namespace="other") == []
        tg.cancel_scope.cancel()


async def test_filtering_handler_turns_updates_into_adds_and_deletes() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = make(fake)
    rec = Recorder()
    inf.add_event_handler(FilteringHandler(lambda o: o.get("data", {}).get("on") == "1", rec))
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        fake.modify(cm("a", on="1"))  # starts passing -> add
        fake.modify(cm("a", on="1", x="2"))  # still passing -> update
        fake.modify(cm("a"))  # stops passing -> delete
        await rec.wait_for(lambda ev: len(ev) == 3)
        assert [e for e, _, _ in rec.events] == ["add", "update", "delete"]
        tg.cancel_scope.cancel()


async def test_informer_runs_once_and_rejects_bad_handlers() -> None:
    fake = FakeListerWatcher()
    inf = make(fake)
    with pytest.raises(TypeError, match="event handler"):
        inf.add_event_handler(42)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        with pytest.raises(RuntimeError, match="already started"):
            await inf.run()
        tg.cancel_scope.cancel()
    with pytest.raises(RuntimeError, match="stopped"):
        inf.add_event_handler(Recorder())


async def test_handler_removed_before_its_task_ran_gets_nothing() -> None:
    fake = FakeListerWatcher([cm("c0"), cm("c1")])
    inf = make(fake)
    got: list[str] = []
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        reg = inf.add_event_handler(
            HandlerFuncs(on_add=lambda o: got.append(o["metadata"]["name"]))
        )
        inf.remove_event_handler(reg)  # before the listener task was ever scheduled
        witness = Recorder()
        inf.add_event_handler(witness)
        fake.create(cm("c2"))
        await witness.wait_for(lambda ev: len(ev) == 3)
        with anyio.fail_after(1):
            await inf.wait_for_sync(reg)  # a removed registration never blocks a waiter
        tg.cancel_scope.cancel()
    assert got == []


async def test_removing_a_handler_lets_its_call_in_progress_finish() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    inf = make(fake)
    started, release = anyio.Event(), anyio.Event()
    finished: list[str] = []

    async def on_add(obj: Any) -> None:
        started.set()
        await release.wait()  # e.g. an API call in flight
        finished.append(obj["metadata"]["name"])

    reg = inf.add_event_handler(HandlerFuncs(on_add=on_add))
    async with anyio.create_task_group() as tg:
        tg.start_soon(inf.run)
        with anyio.fail_after(5):
            await started.wait()
            inf.remove_event_handler(reg)
            release.set()
            await inf.wait_for_sync(reg)
            while reg.handled < 1:
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert finished == ["a"]  # the call in progress completed; "b" was dropped


async def test_sync_handler_returning_a_value_is_not_a_failure() -> None:
    fake = FakeListerWatcher([cm("a")])
    inf = make(fake)
    seen: dict[str, Any] = {}
    reg = inf.add_event_handler(
        HandlerFuncs(on_add=lambda o: seen.setdefault(o["metadata"]["name"], o))
    )
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        with anyio.fail_after(5):
            await inf.wait_for_sync(reg)
        tg.cancel_scope.cancel()
    assert "a" in seen and reg.failures == 0


async def test_adding_a_handler_during_a_resync_does_not_cut_it_short() -> None:
    n = 500
    fake = FakeListerWatcher([cm(f"c{i}") for i in range(n)])
    inf = make(fake)
    resynced: list[str] = []
    done = anyio.Event()

    def on_update(old: Any, new: Any) -> None:
        resynced.append(meta_namespace_key(new))
        if len(resynced) == 1:
            # Most Sync deltas are still queued: a second controller starts right now.
            assert len(inf._fifo) > 0
            inf.add_event_handler(HandlerFuncs())
        if len(resynced) == n:
            done.set()

    inf.add_event_handler(HandlerFuncs(on_update=on_update), resync_period=1)
    async with anyio.create_task_group() as tg:
        await tg.start(inf.run)
        with anyio.fail_after(10):
            await done.wait()
        tg.cancel_scope.cancel()
    assert len(set(resynced)) == n
