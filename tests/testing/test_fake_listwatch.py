"""FakeListerWatcher: the in-memory server the Reflector tests stand on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from informer._cache.listwatch import ListerWatcher
from informer._exceptions import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    ResourceExpired,
    ServerError,
    WatchDecodeError,
)
from informer._meta.types import Obj, WatchEvent
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio


def cm(name: str, ns: str = "default", **data: str) -> Obj:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def keys(items: list[Obj]) -> list[str]:
    return [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in items]


async def take(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out = []
    with anyio.fail_after(2):
        for _ in range(n):
            out.append(await events.__anext__())
    return out


def summary(events: list[WatchEvent]) -> list[tuple[str, Any]]:
    return [(e["type"], e["object"]["metadata"].get("resourceVersion")) for e in events]


def test_satisfies_the_protocol() -> None:
    assert isinstance(FakeListerWatcher(), ListerWatcher)


def test_mutations_bump_the_rv_and_stamp_copies() -> None:
    fake = FakeListerWatcher()
    assert fake.resource_version == "1"
    original = cm("a")
    created = fake.create(original)
    assert created["metadata"]["resourceVersion"] == "2"
    assert "resourceVersion" not in original["metadata"]
    assert fake.modify(cm("a", x="1"))["metadata"]["resourceVersion"] == "3"
    deleted = fake.delete("default/a")
    assert deleted["metadata"]["resourceVersion"] == "4"
    assert deleted["data"] == {"x": "1"}
    assert fake.objects == {}
    with pytest.raises(KeyError):
        fake.delete("default/a")
    with pytest.raises(KeyError):
        fake.modify(cm("nope"))
    fake.create(cm("b"))
    with pytest.raises(KeyError):
        fake.create(cm("b"))


async def test_pagination_follows_tokens_over_a_pinned_snapshot() -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(5)])
    page1 = await fake.list(resource_version="", limit=2)
    assert keys(page1["items"]) == ["default/o0", "default/o1"]
    token = page1["metadata"]["continue"]
    assert page1["metadata"]["remainingItemCount"] == 3
    fake.create(cm("o00"))  # after the snapshot: not in the later pages
    page2 = await fake.list(limit=2, continue_token=token)
    page3 = await fake.list(limit=2, continue_token=page2["metadata"]["continue"])
    assert keys(page2["items"]) == ["default/o2", "default/o3"]
    assert keys(page3["items"]) == ["default/o4"]
    assert "continue" not in page3["metadata"]
    assert page3["metadata"]["resourceVersion"] == page1["metadata"]["resourceVersion"] == "6"
    with pytest.raises(BadRequest):
        await fake.list(resource_version="6", limit=2, continue_token=token)


@pytest.mark.parametrize(
    ("watch_cache", "pages"), [(False, 3), (True, 1)], ids=["etcd", "watch-cache"]
)
async def test_rv0_honours_limit_unless_watch_cache(watch_cache: bool, pages: int) -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(5)], watch_cache=watch_cache)
    result = await fake.list(resource_version="0", limit=2)
    n = 1
    while token := result["metadata"].get("continue"):
        result = await fake.list(limit=2, continue_token=token)
        n += 1
    assert n == pages


async def test_list_resource_version_semantics() -> None:
    fake = FakeListerWatcher([cm("a")])  # rv 2
    fake.modify(cm("a", v="2"))  # rv 3
    assert (await fake.list(resource_version="2"))["metadata"]["resourceVersion"] == "3"
    exact = await fake.list(resource_version="2", resource_version_match="Exact")
    assert exact["metadata"]["resourceVersion"] == "2"
    assert "data" not in exact["items"][0] or exact["items"][0]["data"] == {}
    with pytest.raises(ServerError) as too_large:
        await fake.list(resource_version="99")
    assert too_large.value.status == 504
    fake.compact()
    with pytest.raises(ResourceExpired):
        await fake.list(resource_version="2", resource_version_match="Exact")
    assert (await fake.list(resource_version="2"))["items"][0]["data"] == {"v": "2"}


async def test_continue_token_expires_with_compaction() -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(3)])
    page1 = await fake.list(limit=1)
    fake.modify(cm("o0", v="1"))
    fake.compact()
    with pytest.raises(ResourceExpired):
        await fake.list(limit=1, continue_token=page1["metadata"]["continue"])


async def test_scripted_list_faults_hit_the_right_page() -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(3)])
    fake.fail_next_list(ResourceExpired("gone"), page=2)
    page1 = await fake.list(limit=2)
    with pytest.raises(ResourceExpired):
        await fake.list(limit=2, continue_token=page1["metadata"]["continue"])
    await fake.list(limit=2, continue_token=page1["metadata"]["continue"])  # consumed
    fake.fail_next_list(ServerError("boom"), times=2)
    for _ in range(2):
        with pytest.raises(ServerError):
            await fake.list()
    await fake.list()
    assert [c.verb for c in fake.calls] == ["list"] * 6
    assert fake.list_calls()[1]["continue_token"] == page1["metadata"]["continue"]


async def test_watch_replays_history_then_live_events() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])  # rv 2, 3
    fake.modify(cm("a", v="1"))  # rv 4
    async with fake.watch(resource_version="2") as events:
        assert fake.open_watchers == 1
        fake.delete("default/b")  # rv 5
        got = await take(events, 3)
    assert summary(got) == [("ADDED", "3"), ("MODIFIED", "4"), ("DELETED", "5")]
    assert fake.open_watchers == 0
    assert fake.watch_calls()[0]["resource_version"] == "2"


@pytest.mark.parametrize("rv", ["", "0"], ids=["empty", "zero"])
async def test_watch_without_rv_starts_with_synthetic_adds(rv: str) -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    async with fake.watch(resource_version=rv) as events:
        assert summary(await take(events, 2)) == [("ADDED", "2"), ("ADDED", "3")]


async def test_watch_from_compacted_rv_raises_or_sends_an_error_event() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    fake.compact()
    with pytest.raises(ResourceExpired):
        async with fake.watch(resource_version="2"):
            pass
    fake.expired_watch = "event"
    async with fake.watch(resource_version="2") as events:
        (event,) = await take(events, 1)
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()


async def test_watch_list_sends_initial_events_then_the_end_bookmark() -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    async with fake.watch(
        resource_version="", send_initial_events=True, resource_version_match="NotOlderThan"
    ) as events:
        got = await take(events, 3)
    assert [e["type"] for e in got] == ["ADDED", "ADDED", "BOOKMARK"]
    assert got[2]["object"]["metadata"] == {
        "resourceVersion": "3",
        "annotations": {"k8s.io/initial-events-end": "true"},
    }
    with pytest.raises(ApiError) as invalid:
        async with fake.watch(send_initial_events=True):
            pass
    assert invalid.value.status == 422


async def test_watch_list_unsupported_rejects_or_ignores() -> None:
    fake = FakeListerWatcher([cm("a")], supports_watch_list=False)
    with pytest.raises(BadRequest):
        async with fake.watch(send_initial_events=True, resource_version_match="NotOlderThan"):
            pass
    fake.unsupported_watch_list = "ignore"
    async with fake.watch(
        resource_version="2", send_initial_events=True, resource_version_match="NotOlderThan"
    ) as events:
        fake.modify(cm("a", v="1"))
        assert summary(await take(events, 1)) == [("MODIFIED", "3")]


async def test_injected_watch_faults() -> None:
    fake = FakeListerWatcher([cm("a")])
    fake.fail_next_watch(ConnectionFailed("refused"))
    with pytest.raises(ConnectionFailed):
        async with fake.watch(resource_version="2"):
            pass
    async with fake.watch(resource_version="2") as events:
        fake.push_error(500, "InternalError")
        fake.push_unknown("WEIRD")
        fake.push_bookmark(initial_events_end=True)
        got = await take(events, 3)
        assert [e["type"] for e in got] == ["ERROR", "WEIRD", "BOOKMARK"]
        fake.push_malformed(b"{oops")
        with pytest.raises(WatchDecodeError) as bad:
            await events.__anext__()
        assert bad.value.line == b"{oops"
        fake.push_exception(ResourceExpired("gone"))
        with pytest.raises(ResourceExpired):
            await events.__anext__()
        fake.close_watches()
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()


async def test_stalled_watch_yields_nothing() -> None:
    fake = FakeListerWatcher([cm("a")])
    async with fake.watch(resource_version="2") as events:
        fake.stall_watches()
        fake.modify(cm("a", v="1"))
        fake.close_watches()
        with anyio.move_on_after(0.05) as scope:
            await events.__anext__()
        assert scope.cancelled_caught


async def test_wait_helpers() -> None:
    fake = FakeListerWatcher()

    async def open_one(task_status: anyio.abc.TaskStatus[None]) -> None:
        async with fake.watch(resource_version="1"):
            task_status.started()
            await anyio.sleep_forever()

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(fake.wait_for_watchers, 1)
            await tg.start(open_one)
            await fake.wait_for_calls("watch", 1)
            await fake.wait_for_watch_opens(1)
            tg.cancel_scope.cancel()
        await fake.wait_for_watchers(0)
    assert fake.advance_resource_version(3) == "4"
