"""ProcessorListener delivers at once when idle (informer/_cache/listener.py): a
synchronous handler runs as the processing loop hands the notification over, an
asynchronous one (or a backlog) goes through the listener's buffer and task, and one
handler's notifications stay in order either way."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import pytest

from informer._cache.handlers import HandlerFuncs
from informer._cache.informer import SharedIndexInformer
from informer._cache.listener import ADD, DELETE, UPDATE, ProcessorListener
from informer.testing import eventually
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


class Obj(dict[str, Any]):
    """A dict that can be weakly referenced (plain dicts cannot)."""


def cm(name: str, rv: int) -> Obj:
    """``rv``: pushed events use 100 and more, above what the fake stamps on its list (an
    update with the stored object's RV would be a resync notification)."""
    return Obj(
        apiVersion="v1",
        kind="ConfigMap",
        metadata={"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        data={"v": str(rv)},
    )


def informer_on(fake: FakeListerWatcher) -> SharedIndexInformer:
    return SharedIndexInformer(
        fake, name="configmaps", reflector_options={"backoff_initial": 0.01, "backoff_cap": 0.05}
    )


def test_an_idle_listener_calls_a_synchronous_handler_at_once() -> None:
    """``add`` delivers before it returns: no buffer entry, no task switch."""
    seen: list[tuple[str, Any]] = []
    listener = ProcessorListener(
        HandlerFuncs(
            on_add=lambda obj: seen.append(("add", obj)),
            on_update=lambda old, new: seen.append(("update", new)),
            on_delete=lambda obj: seen.append(("delete", obj)),
        ),
        0,
        lambda: True,
    )
    a1, a2 = cm("a", 1), cm("a", 2)
    listener.add(ADD, None, a1, True)
    listener.add(UPDATE, a1, a2)
    listener.add(DELETE, None, a2)
    assert seen == [("add", a1), ("update", a2), ("delete", a2)]
    assert listener.buffer_depth() == 0
    assert listener.handled == 3
    assert listener.has_synced()


def test_a_notification_delivered_at_once_keeps_nothing_alive() -> None:
    """Once the handler returned, the listener holds neither object: a replaced object
    is freed by reference counting as soon as the store and the processing loop drop
    it, as in a dict store, not left for the cyclic GC (a buffered notification kept
    it until the listener's task ran)."""
    listener = ProcessorListener(HandlerFuncs(on_update=lambda old, new: None), 0, lambda: True)
    old, new = cm("a", 1), cm("a", 2)
    gone = weakref.ref(old)
    gc.disable()  # reference counting alone
    try:
        listener.add(UPDATE, old, new)
        del old
        assert gone() is None
    finally:
        gc.enable()


async def test_an_async_handler_is_awaited_in_order_beside_a_synchronous_one() -> None:
    fake = FakeListerWatcher([cm("a", 1)])
    informer = informer_on(fake)
    sync_seen: list[str] = []
    async_seen: list[str] = []
    gate = anyio.Event()

    async def slow_update(old: Any, new: Any) -> None:
        await gate.wait()
        async_seen.append(new["metadata"]["resourceVersion"])

    informer.add_event_handler(
        HandlerFuncs(
            on_update=lambda old, new: sync_seen.append(new["metadata"]["resourceVersion"])
        )
    )
    slow = informer.add_event_handler(HandlerFuncs(on_update=slow_update))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(informer.run)
            await fake.wait_for_watchers(1)
            for rv in range(102, 112):
                fake.push_event({"type": "MODIFIED", "object": cm("a", rv)})
            await eventually(lambda: len(sync_seen) == 10, timeout=TIMEOUT, interval=0.01)
            assert async_seen == []  # the slow handler holds its own notifications only
            assert slow.buffer_depth() == 9  # the first one in flight, nine waiting
            gate.set()
            await eventually(lambda: len(async_seen) == 10, timeout=TIMEOUT, interval=0.01)
            tg.cancel_scope.cancel()
    assert sync_seen == async_seen == [str(rv) for rv in range(102, 112)]


async def test_a_plain_function_returning_an_awaitable_is_awaited_before_the_next() -> None:
    fake = FakeListerWatcher([cm("a", 1)])
    informer = informer_on(fake)
    order: list[str] = []

    async def later(rv: str) -> None:
        await anyio.sleep(0.01)
        order.append(f"done {rv}")

    def on_update(old: Any, new: Any) -> Any:
        rv = new["metadata"]["resourceVersion"]
        order.append(f"called {rv}")
        return later(rv)

    informer.add_event_handler(HandlerFuncs(on_update=on_update))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(informer.run)
            await fake.wait_for_watchers(1)
            for rv in (102, 103, 104):
                fake.push_event({"type": "MODIFIED", "object": cm("a", rv)})
            await eventually(lambda: len(order) == 6, timeout=TIMEOUT, interval=0.01)
            tg.cancel_scope.cancel()
    assert order == ["called 102", "done 102", "called 103", "done 103", "called 104", "done 104"]


async def test_a_late_handler_gets_the_store_first_then_what_follows() -> None:
    fake = FakeListerWatcher([cm("a", 1), cm("b", 1)])
    informer = informer_on(fake)
    seen: list[tuple[str, str]] = []
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(informer.run)
            await fake.wait_for_watchers(1)
            registration = informer.add_event_handler(
                HandlerFuncs(
                    on_add=lambda obj: seen.append(("add", obj["metadata"]["name"])),
                    on_update=lambda old, new: seen.append(("update", new["data"]["v"])),
                )
            )
            assert seen == []  # the replay is delivered by the listener's task
            fake.push_event({"type": "MODIFIED", "object": cm("a", 102)})
            await informer.wait_for_sync(registration)
            await eventually(lambda: len(seen) == 3, timeout=TIMEOUT, interval=0.01)
            tg.cancel_scope.cancel()
    assert sorted(seen[:2]) == [("add", "a"), ("add", "b")]
    assert seen[2] == ("update", "102")


async def test_a_handler_may_remove_itself_while_notified() -> None:
    fake = FakeListerWatcher([cm("a", 1)])
    informer = informer_on(fake)
    calls: list[str] = []
    registrations: list[Any] = []

    def first(old: Any, new: Any) -> None:
        calls.append("first")
        informer.remove_event_handler(registrations[0])

    registrations.append(informer.add_event_handler(HandlerFuncs(on_update=first)))
    informer.add_event_handler(HandlerFuncs(on_update=lambda old, new: calls.append("second")))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(informer.run)
            await fake.wait_for_watchers(1)
            fake.push_event({"type": "MODIFIED", "object": cm("a", 102)})
            fake.push_event({"type": "MODIFIED", "object": cm("a", 103)})
            await eventually(lambda: calls.count("second") == 2, timeout=TIMEOUT, interval=0.01)
            tg.cancel_scope.cancel()
    assert calls == ["first", "second", "second"]
