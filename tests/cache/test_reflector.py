"""The Reflector state machine, driven through FakeListerWatcher.

One test per rule. Nothing sleeps for real: backoffs go through an injected ``sleep``
that records the delay; the tests await conditions on the fake or on the recording store,
and every test is bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import structlog

from informer._cache.backoff import ExponentialBackoff
from informer._cache.delta_fifo import REPLACE_STEP, Delta, DeltaFIFO
from informer._cache.reflector import DEFAULT_INACTIVITY_TIMEOUT, Reflector
from informer._cache.reflector_stats import ReflectorState
from informer._exceptions import (
    ApiError,
    ConnectionFailed,
    ResourceExpired,
    ServerError,
    TooManyRequests,
    WatchDecodeError,
    WatchEventTooLarge,
)
from informer._meta.types import Obj, WatchEvent
from informer.testing import eventually
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

TIMEOUT = 5.0
POLL = 0.001  # reflector internals nobody signals: checked at once


def cm(name: str, ns: str = "default", **data: str) -> Obj:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


class RecordingStore:
    """Records every call as ``(op, key(s), rv)`` and lets tests await a condition."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, Any, str]] = []
        self.objects: dict[str, Obj] = {}
        self.fail_on: set[str] = set()
        self._event: anyio.Event | None = None

    def _changed(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    def replace(self, objs: list[Obj], resource_version: str) -> None:
        self.objects = {key(o): o for o in objs}
        self.ops.append(("replace", sorted(self.objects), resource_version))
        self._changed()

    def _one(self, op: str, obj: Obj) -> None:
        self.ops.append((op, key(obj), obj["metadata"]["resourceVersion"]))
        self._changed()
        if op in self.fail_on:
            raise RuntimeError(f"store {op} failed")
        if op == "delete":
            self.objects.pop(key(obj), None)
        else:
            self.objects[key(obj)] = obj

    def add(self, obj: Obj) -> None:
        self._one("add", obj)

    def update(self, obj: Obj) -> None:
        self._one("update", obj)

    def delete(self, obj: Obj) -> None:
        self._one("delete", obj)

    def kinds(self) -> list[str]:
        return [op for op, _, _ in self.ops]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()

    async def wait_for_ops(self, n: int) -> None:
        await self.wait_for(lambda: len(self.ops) >= n)


@dataclass
class FakeTime:
    """Injected clock, random and sleep: sleeping records the delay and advances time."""

    now: float = 1000.0
    rand: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    journal: list[tuple[str, Any]] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def random(self) -> float:
        return self.rand

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.journal.append(("sleep", seconds))
        self.now += seconds
        await anyio.lowlevel.checkpoint()


@dataclass
class Env:
    fake: FakeListerWatcher
    store: RecordingStore
    time: FakeTime
    reflector: Reflector

    @property
    def lists(self) -> list[Any]:
        return self.fake.list_calls()

    @property
    def watches(self) -> list[Any]:
        return self.fake.watch_calls()


def make(
    objects: int = 3,
    *,
    fake: FakeListerWatcher | None = None,
    real_clock: bool = True,
    **kwargs: Any,
) -> Env:
    fake = fake or FakeListerWatcher([cm(f"o{i}") for i in range(objects)])
    store = RecordingStore()
    t = FakeTime()
    kwargs.setdefault("random", t.random)
    kwargs.setdefault("sleep", t.sleep)
    if not real_clock:
        kwargs.setdefault("clock", t.clock)
    reflector = Reflector(fake, store, name="configmaps", **kwargs)
    return Env(fake, store, t, reflector)


@asynccontextmanager
async def running(env: Env, *, wait_watch: bool = True) -> AsyncIterator[Env]:
    """Start the reflector (returns once its first sync reached the store), optionally
    wait for its first watch, and cancel it on exit; everything within TIMEOUT."""
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(env.reflector.run)
            if wait_watch:
                await env.fake.wait_for_watchers(1)
            yield env
            tg.cancel_scope.cancel()


def one_bookmark(env: Env) -> Callable[[], None]:
    """A check for ``eventually``: the reflector has taken one bookmark."""

    def check() -> None:
        assert env.reflector.stats.bookmarks == 1, env.reflector.stats

    return check


async def settle(env: Env, opens: int) -> None:
    """Wait until the reflector has a watch open again after ``opens`` opens in total."""
    await env.fake.wait_for_watch_opens(opens)
    await env.fake.wait_for_watchers(1)


# ---------------------------------------------------------------------------- list


@pytest.mark.parametrize(
    ("watch_cache", "expected_pages"), [(False, 3), (True, 1)], ids=["paginated", "watch-cache"]
)
async def test_first_list_is_rv0_paginated_and_one_replace(
    watch_cache: bool, expected_pages: int
) -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(5)], watch_cache=watch_cache)
    env = make(fake=fake, page_size=2)
    async with running(env):
        assert len(env.lists) == expected_pages
        first, *rest = env.lists
        assert (first["resource_version"], first["limit"], first["continue_token"]) == (
            "0",
            2,
            None,
        )
        for call in rest:  # continuation pages carry the token and no resourceVersion
            assert call["resource_version"] is None
            assert call["limit"] == 2
            assert call["continue_token"]
        assert env.store.ops == [("replace", [f"default/o{i}" for i in range(5)], "6")]
        assert env.reflector.last_sync_resource_version == "6"
        (watch,) = env.watches
        assert watch["resource_version"] == "6"
        assert watch["allow_watch_bookmarks"] is True
        assert watch["send_initial_events"] is False
        assert env.reflector.is_watching
        assert env.reflector.stats.lists == 1
        assert env.reflector.stats.list_pages == expected_pages


@pytest.mark.parametrize(
    ("page", "error"),
    [
        (1, ResourceExpired("gone", reason="Expired")),
        (2, ResourceExpired("continue token expired", reason="Expired")),
        (
            1,
            ServerError(
                "Too large resource version",
                status=504,
                reason="Timeout",
                body={"details": {"causes": [{"reason": "ResourceVersionTooLarge"}]}},
            ),
        ),
    ],
    ids=["410-page-1", "410-page-2", "too-large-rv"],
)
async def test_list_rv_unavailable_retries_at_empty_rv(page: int, error: ApiError) -> None:
    env = make(5, page_size=2)
    env.fake.fail_next_list(error, page=page)
    async with running(env):
        calls = env.lists
        retry = calls[page]  # the first call after the failing one
        assert retry["resource_version"] == ""
        assert retry["continue_token"] is None
        # a 410 on a continuation page (expired token) retries in one unpaginated read
        assert retry["limit"] == (2 if page == 1 else None)
        assert env.store.kinds() == ["replace"]
        assert env.store.ops[0][1] == [f"default/o{i}" for i in range(5)]
        assert env.time.sleeps == []
        assert env.reflector.stats.lists == 2
        assert env.reflector.stats.expired == (1 if isinstance(error, ResourceExpired) else 0)


async def test_relists_after_410_at_list_stay_at_empty_rv_until_a_list_succeeds() -> None:
    env = make()
    env.fake.fail_next_list(ResourceExpired("gone"))
    env.fake.fail_next_list(ServerError("boom"))  # the "" retry fails too
    async with running(env):
        assert [c["resource_version"] for c in env.lists] == ["0", "", ""]
        assert env.time.sleeps == [0.8]
        env.fake.push_error(500, "InternalError")
        await env.fake.wait_for_calls("list", 4)
        assert env.lists[3]["resource_version"] == "4"  # the last synced RV once more


@pytest.mark.parametrize(
    ("page_size", "objects", "relist_limit"),
    [(500, 3, None), (2, 5, 2)],
    ids=["watch-cache-served-relist-no-limit", "paginated-at-rv0-keeps-limit"],
)
async def test_relist_uses_the_last_synced_rv(
    page_size: int, objects: int, relist_limit: int | None
) -> None:
    env = make(objects, page_size=page_size)
    async with running(env):
        env.fake.modify(cm("o1", v="1"))
        await env.store.wait_for_ops(2)
        last = env.reflector.last_sync_resource_version
        assert last == env.fake.resource_version
        env.fake.push_error(500, "InternalError")
        await settle(env, 2)
        relist = env.lists[-1 if relist_limit is None else -3]
        assert relist["resource_version"] == last
        assert relist["limit"] == relist_limit
        assert env.store.kinds() == ["replace", "update", "replace"]
        assert env.reflector.stats.relists == 1


async def test_list_failure_backs_off_then_relists() -> None:
    env = make()
    env.fake.fail_next_list(ServerError("boom"), times=2)
    async with running(env):
        assert [c["resource_version"] for c in env.lists] == ["0", "0", "0"]
        assert env.time.sleeps == [0.8, 1.6]
        assert env.store.kinds() == ["replace"]


# --------------------------------------------------------------------------- watch


async def test_watch_events_reach_the_store_and_advance_the_rv() -> None:
    env = make()
    async with running(env):
        env.fake.create(cm("new"))
        env.fake.modify(cm("o0", v="1"))
        env.fake.delete("default/o1")
        await env.store.wait_for_ops(4)
        assert env.store.ops[1:] == [
            ("add", "default/new", "5"),
            ("update", "default/o0", "6"),
            ("delete", "default/o1", "7"),
        ]
        assert env.reflector.last_sync_resource_version == "7"
        assert env.reflector.stats.events_by_type == {
            "ADDED": 1,
            "MODIFIED": 1,
            "DELETED": 1,
            "BOOKMARK": 0,
            "ERROR": 0,
            "skipped": 0,
        }


@pytest.mark.parametrize(
    "inject",
    [
        lambda f: (f.fail_next_watch(ResourceExpired("gone")), f.close_watches()),
        lambda f: f.push_exception(ResourceExpired("gone")),
        lambda f: f.push_error(410, "Expired"),
        lambda f: f.push_error(410, "Gone"),
    ],
    ids=["http-410-at-open", "http-410-mid-stream", "error-event-expired", "error-event-gone"],
)
async def test_watch_410_relists_at_once_at_the_last_rv(inject: Callable[[Any], Any]) -> None:
    env = make()
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
        inject(env.fake)
        await env.fake.wait_for_calls("list", 2)
        await settle(env, 2)
        assert env.lists[1]["resource_version"] == "5"
        assert env.store.kinds() == ["replace", "update", "replace"]
        assert env.time.sleeps == []
        assert env.reflector.stats.expired == 1


async def test_repeated_410_without_progress_backs_off() -> None:
    env = make()
    async with running(env):
        env.fake.fail_next_watch(ResourceExpired("gone"), times=2)
        env.fake.push_error(410, "Expired")
        await env.fake.wait_for_calls("list", 3)
        await settle(env, 2)
        # 1st 410 (an ERROR event): relist now; the watch after that relist fails 410 at
        # once, with no event in between: back off; and once more: longer.
        assert env.time.sleeps == [0.8, 1.6]
        assert env.reflector.stats.expired == 3


async def test_compacted_rv_after_a_stall_relists_via_error_event() -> None:
    """The realistic chain: a half-open watch misses events, the history gets compacted,
    the inactivity guard re-watches, the server answers ERROR 410, the reflector relists."""
    fake = FakeListerWatcher([cm("a")], expired_watch="event")
    env = make(fake=fake, inactivity_timeout=0.05)
    async with running(env):
        fake.stall_watches()
        fake.modify(cm("a", v="1"))
        fake.compact()
        await fake.wait_for_calls("list", 2)
        await settle(env, 3)
        assert [w["resource_version"] for w in env.watches] == ["2", "2", "3"]
        assert env.lists[1]["resource_version"] == "2"
        assert env.store.ops[-1] == ("replace", ["default/a"], "3")
        assert env.reflector.stats.stalls == 1


@pytest.mark.parametrize(
    "inject",
    [
        lambda f: (f.fail_next_watch(TooManyRequests("slow down")), f.close_watches()),
        lambda f: f.push_exception(TooManyRequests("slow down")),
        lambda f: f.push_error(429, "TooManyRequests"),
        lambda f: (f.fail_next_watch(ConnectionFailed("refused")), f.close_watches()),
        lambda f: f.push_exception(ConnectionFailed("reset by peer")),
        lambda f: f.push_malformed(),
    ],
    ids=[
        "429-at-open",
        "429-mid-stream",
        "429-error-event",
        "connection-refused-at-open",
        "connection-lost-mid-stream",
        "malformed-line",
    ],
)
async def test_transient_watch_errors_back_off_and_rewatch_without_relist(
    inject: Callable[[Any], Any],
) -> None:
    env = make()
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
        inject(env.fake)
        opens = env.fake.watch_opens
        await settle(env, opens + 1)
        assert env.time.sleeps == [0.8]
        assert len(env.lists) == 1
        assert env.watches[-1]["resource_version"] == "5"
        assert env.store.kinds() == ["replace", "update"]


async def test_retry_after_stretches_the_backoff() -> None:
    env = make()
    async with running(env):
        env.fake.push_exception(TooManyRequests("slow down", retry_after=7.0))
        await settle(env, 2)
        assert env.time.sleeps == [7.0]


async def test_retry_after_of_a_429_at_list_stretches_the_backoff() -> None:
    env = make()
    env.fake.fail_next_list(TooManyRequests("slow down", retry_after=20.0))
    async with running(env):
        assert env.time.sleeps[0] >= 20.0
        assert isinstance(env.reflector.last_error, TooManyRequests)


async def test_malformed_line_is_logged_without_its_bytes() -> None:
    env = make()
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            env.fake.push_malformed(b'{"type":"MODIFIED","object":{"data":{"password":"hunter2"')
            await settle(env, 2)
    (entry,) = [e for e in logs if e["event"] == "watch.error"]
    assert entry["error"] == "WatchDecodeError"
    assert entry["line_bytes"] > 0
    assert entry["resource"] == "configmaps"
    assert "hunter2" not in repr(logs)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "SURPRISE", "object": {"metadata": {"resourceVersion": "99"}}},
        {"type": "MODIFIED", "object": {"metadata": {"name": "o0", "namespace": "default"}}},
        {"type": "ADDED", "object": None},
        {"type": "BOOKMARK", "object": {"metadata": {}}},
        {"object": {}},
    ],
    ids=["unknown-type", "no-resource-version", "no-object", "bookmark-no-rv", "no-type"],
)
async def test_bad_events_are_skipped_and_the_watch_goes_on(event: dict[str, Any]) -> None:
    env = make()
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            env.fake.push_event(event)
            env.fake.modify(cm("o0", v="1"))
            await env.store.wait_for_ops(2)
        assert env.store.ops[1] == ("update", "default/o0", "5")
        assert env.fake.watch_opens == 1
        assert env.reflector.stats.skipped == 1
        assert env.reflector.last_sync_resource_version == "5"
        assert [e["log_level"] for e in logs if e["event"] == "watch.event_skipped"] == ["error"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (403, "Forbidden"), (0, "")],
    ids=["500", "403", "status-without-code"],
)
async def test_error_event_other_than_410_backs_off_and_relists(code: int, reason: str) -> None:
    env = make()
    async with running(env):
        env.fake.push_error(code, reason)
        await env.fake.wait_for_calls("list", 2)
        await settle(env, 2)
        assert env.time.sleeps == [0.8]
        assert env.lists[1]["resource_version"] == "4"
        assert env.store.kinds() == ["replace", "replace"]


async def test_unexpected_exception_backs_off_and_relists() -> None:
    env = make()
    async with running(env):
        env.fake.push_exception(ValueError("a bug in the transport"))
        await env.fake.wait_for_calls("list", 2)
        await settle(env, 2)
        assert env.time.sleeps == [0.8]


async def test_a_watch_event_too_large_drops_the_watch_and_relists_after_a_backoff() -> None:
    env = make()
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
        with structlog.testing.capture_logs() as logs:
            env.fake.push_exception(
                WatchEventTooLarge("too large", limit=16 << 20, line=b'{"type":"ADDED"')
            )
            await env.fake.wait_for_calls("list", 2)
            await settle(env, 2)
        assert env.time.sleeps == [0.8]
        assert env.lists[1]["resource_version"] == "5"  # relist at the last synced RV
        assert env.store.kinds() == ["replace", "update", "replace"]
        (entry,) = [e for e in logs if e["event"] == "watch.error"]
        assert (entry["error"], entry["action"]) == ("WatchEventTooLarge", "relist")


async def test_clean_close_rewatches_at_the_last_rv_without_relist() -> None:
    env = make()
    async with running(env):
        env.fake.modify(cm("o2", v="1"))
        await env.store.wait_for_ops(2)
        env.fake.close_watches()
        await settle(env, 2)
        assert [w["resource_version"] for w in env.watches] == ["4", "5"]
        assert len(env.lists) == 1
        assert env.time.sleeps == []
        assert env.reflector.stats.watches == 2


async def test_very_short_empty_watch_backs_off_before_rewatching() -> None:
    env = make()
    async with running(env):
        env.fake.close_watches()
        await settle(env, 2)
        assert env.time.sleeps == [0.8]
        assert len(env.lists) == 1
        assert env.watches[1]["resource_version"] == "4"


async def test_bookmark_advances_the_rv_without_touching_the_store() -> None:
    env = make()
    async with running(env):
        rv = env.fake.advance_resource_version(5)  # writes to other resources
        env.fake.push_bookmark(rv)
        await eventually(one_bookmark(env), timeout=TIMEOUT, interval=POLL)
        assert env.reflector.last_sync_resource_version == rv == "9"
        assert env.store.kinds() == ["replace"]
        env.fake.close_watches()
        await settle(env, 2)
        assert env.watches[1]["resource_version"] == "9"


@pytest.mark.parametrize(
    ("event", "cause"),
    [
        ({"type": "BOOKMARK", "object": {"metadata": {}}}, "no_resource_version"),
        ({"type": "MODIFIED", "object": {"metadata": {"name": "x"}}}, "no_resource_version"),
        ({"type": "SURPRISE", "object": {}}, "unknown_type"),
        ({"object": {}}, "malformed_event"),
    ],
    ids=["bookmark-no-rv", "modified-no-rv", "unknown-type", "no-type"],
)
async def test_repeated_bad_events_are_counted_and_logged_once_a_minute(
    event: dict[str, Any], cause: str
) -> None:
    n = 20_000
    env = make(real_clock=False)
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            for _ in range(n):
                env.fake.push_event(event)
            env.fake.modify(cm("o0", v="1"))
            await env.store.wait_for_ops(2)
            skipped = [e for e in logs if e["event"] == "watch.event_skipped"]
            assert [(e["cause"], e["suppressed"]) for e in skipped] == [(cause, 0)]
            stats = env.reflector.stats
            assert stats.bad_events == {cause: n}
            assert stats.skipped == n
            assert stats.logs_suppressed == n - 1
            env.time.now += 61.0  # a minute later the next one is logged, with the count
            env.fake.push_event(event)
            env.fake.modify(cm("o0", v="2"))
            await env.store.wait_for_ops(3)
            skipped = [e for e in logs if e["event"] == "watch.event_skipped"]
            assert [(e["cause"], e["suppressed"]) for e in skipped] == [(cause, 0), (cause, n - 1)]
            # when the watch ends, suppressed lines not reported yet are summed up
            env.fake.push_event(event)
            env.fake.close_watches()
            await settle(env, 2)
        (summary,) = [e for e in logs if e["event"] == "watch.event_skipped.suppressed"]
        assert (summary["cause"], summary["suppressed"]) == (cause, 1)
        assert stats.bad_events == {cause: n + 2}
        assert stats.logs_suppressed == n


@pytest.mark.allow_handler_failures
async def test_store_failures_are_counted_and_their_logs_throttled() -> None:
    env = make(real_clock=False)
    env.store.fail_on.add("update")
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            for i in range(50):
                env.fake.modify(cm("o0", v=str(i)))
            env.fake.create(cm("new"))
            await env.store.wait_for_ops(52)
        assert env.reflector.stats.bad_events == {"store_failed": 50}
        assert env.reflector.stats.logs_suppressed == 49
        assert len([e for e in logs if e["event"] == "store.failed"]) == 1


@pytest.mark.allow_handler_failures
async def test_store_failure_is_logged_and_the_watch_goes_on() -> None:
    env = make()
    env.store.fail_on.add("update")
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            env.fake.modify(cm("o0", v="1"))
            env.fake.create(cm("new"))
            await env.store.wait_for_ops(3)
        assert env.reflector.last_sync_resource_version == "6"
        assert env.fake.watch_opens == 1
    (entry,) = [e for e in logs if e["event"] == "store.failed"]
    assert entry["object_name"] == "o0"
    assert "data" not in entry


async def test_inactivity_guard_rewatches_a_silent_watch() -> None:
    env = make(inactivity_timeout=0.05)
    async with running(env):
        with structlog.testing.capture_logs() as logs:
            env.fake.stall_watches()
            await settle(env, 2)
        assert [w["resource_version"] for w in env.watches] == ["4", "4"]
        assert len(env.lists) == 1
        assert env.time.sleeps == []
        assert env.reflector.stats.stalls == 1
        assert [e["event"] for e in logs if e["event"] == "watch.stalled"] == ["watch.stalled"]


async def test_inactivity_guard_leaves_a_lively_watch_alone() -> None:
    env = make(inactivity_timeout=0.2)
    async with running(env):
        for i in range(6):
            env.fake.modify(cm("o0", v=str(i)))
            await anyio.sleep(0.05)
        assert env.fake.watch_opens == 1
        assert env.reflector.stats.stalls == 0


def test_inactivity_timeout_default_and_validation() -> None:
    env = make()
    assert env.reflector.inactivity_timeout == DEFAULT_INACTIVITY_TIMEOUT == 180.0
    assert make(inactivity_timeout=None).reflector.inactivity_timeout is None
    with pytest.raises(ValueError):
        make(inactivity_timeout=0)


async def test_no_inactivity_guard_when_disabled() -> None:
    env = make(inactivity_timeout=None)
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
        env.fake.close_watches()
        await settle(env, 2)
        assert env.store.kinds() == ["replace", "update"]


@pytest.mark.parametrize(
    ("rand", "expected"),
    [(0.0, 300), (0.5, 450), (0.999999, 599)],
    ids=["min", "middle", "just-below-2x"],
)
async def test_watch_timeout_seconds_is_uniform_in_min_to_twice_min(
    rand: float, expected: int
) -> None:
    env = make(random=lambda: rand)
    async with running(env):
        assert env.watches[0]["timeout_seconds"] == expected


async def test_watch_timeout_seconds_with_the_real_random() -> None:
    env = make(random=__import__("random").random, min_watch_timeout=10.0)
    async with running(env):
        for _ in range(20):
            env.fake.modify(cm("o0", v=str(env.fake.resource_version)))
            await env.store.wait_for_ops(len(env.store.ops) + 1)
            env.fake.close_watches()
            await settle(env, env.fake.watch_opens + 1)
        assert all(10 <= w["timeout_seconds"] < 20 for w in env.watches)


# ------------------------------------------------------------------------- backoff


def test_backoff_doubles_to_the_cap_and_resets_after_quiet() -> None:
    t = FakeTime()
    backoff = ExponentialBackoff(clock=t.clock, random=t.random)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])
    t.now += 30.0 + 119.0  # the last backoff ends at +30; 119 s of quiet: not yet
    assert backoff.next_delay() == pytest.approx(30.0)
    t.now += 30.0 + 120.0
    assert backoff.next_delay() == pytest.approx(0.8)


@pytest.mark.parametrize(("rand", "factor"), [(0.5, 1.5), (0.999, 1.999)], ids=["half", "max"])
def test_backoff_jitter_stretches_each_delay(rand: float, factor: float) -> None:
    t = FakeTime(rand=rand)
    backoff = ExponentialBackoff(clock=t.clock, random=t.random, jitter=1.0)
    assert [backoff.next_delay() for _ in range(3)] == pytest.approx(
        [0.8 * factor, 1.6 * factor, 3.2 * factor]
    )
    for _ in range(10):
        backoff.next_delay()
    assert backoff.next_delay() == pytest.approx(30.0 * factor)


async def test_reflector_backoff_sequence_caps_and_resets_after_health() -> None:
    env = make(real_clock=False)
    env.fake.fail_next_list(ServerError("boom"), times=8)
    async with running(env):
        assert env.time.sleeps == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])
        env.fake.push_error(500, "InternalError")  # no time passed: still at the cap
        await env.fake.wait_for_calls("list", 10)
        await settle(env, 2)
        assert env.time.sleeps[-1] == pytest.approx(30.0)
        env.time.now += 121.0  # two minutes of health
        env.fake.push_error(500, "InternalError")
        await env.fake.wait_for_calls("list", 11)
        await settle(env, 3)
        assert env.time.sleeps[-1] == pytest.approx(0.8)
        assert env.reflector.stats.backoffs == 10


# ---------------------------------------------------------------------- watch-list


async def test_watch_list_replaces_once_at_the_end_bookmark_and_keeps_the_stream() -> None:
    env = make(use_watch_list=True)
    async with running(env):
        assert env.lists == []
        (watch,) = env.watches
        assert watch["send_initial_events"] is True
        assert watch["resource_version_match"] == "NotOlderThan"
        assert watch["resource_version"] == ""
        assert watch["allow_watch_bookmarks"] is True
        assert env.store.ops == [("replace", ["default/o0", "default/o1", "default/o2"], "4")]
        env.fake.modify(cm("o1", v="1"))
        await env.store.wait_for_ops(2)
        assert env.store.ops[1] == ("update", "default/o1", "5")
        assert env.fake.watch_opens == 1
        assert env.reflector.is_watching
        assert env.reflector.stats.watch_lists == 1
        assert not env.reflector.watch_list_fallback


async def test_watch_list_buffers_initial_events_until_the_end_bookmark() -> None:
    # An "ignoring" server sends the synthetic ADDs of a plain watch at RV ""; the test
    # plays the part of a slow watch-list server by sending the end bookmark by hand.
    fake = FakeListerWatcher(
        [cm("a"), cm("b")], supports_watch_list=False, unsupported_watch_list="ignore"
    )
    env = make(fake=fake, use_watch_list=True)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(env.reflector.run)
            await fake.wait_until(lambda: fake.events_delivered == 2)
            await anyio.wait_all_tasks_blocked()
            assert env.store.ops == []
            assert env.reflector.state is ReflectorState.WATCH_LISTING
            assert not env.reflector.synced
            fake.push_bookmark("7", initial_events_end=True)
            await env.store.wait_for_ops(1)
            assert env.store.ops == [("replace", ["default/a", "default/b"], "7")]
            assert env.reflector.last_sync_resource_version == "7"
            tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    "scenario",
    [
        "reject-400",
        "reject-422-invalid",
        "ignored-then-error-event-400",
        "ignored-then-modified",
        "ignored-then-plain-bookmark",
    ],
)
async def test_watch_list_falls_back_for_good_when_the_server_does_not_serve_it(
    scenario: str,
) -> None:
    ignored = scenario.startswith("ignored")
    fake = FakeListerWatcher(
        [cm("a"), cm("b")],
        supports_watch_list=False,
        unsupported_watch_list="ignore" if ignored else "reject",
    )
    if scenario == "reject-422-invalid":
        fake.supports_watch_list = True
        fake.fail_next_watch(ApiError("forbidden: sendInitialEvents", status=422, reason="Invalid"))
    env = make(fake=fake, use_watch_list=True, inactivity_timeout=None)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(env.reflector.run)
            if ignored:
                await fake.wait_until(lambda: fake.events_delivered == 2)  # the plain ADDs
                if scenario == "ignored-then-error-event-400":
                    fake.push_error(400, "BadRequest")
                elif scenario == "ignored-then-modified":
                    fake.modify(cm("a", v="1"))
                else:
                    fake.push_bookmark()
            await settle(env, 2 if ignored else 1)
            assert env.reflector.watch_list_fallback
            assert env.reflector.stats.watch_list_fallbacks == 1
            assert env.lists[0]["resource_version"] == "0"
            assert env.store.kinds() == ["replace"]
            assert env.store.ops[0][1] == ["default/a", "default/b"]
            plain = env.watches[-1]
            assert plain["send_initial_events"] is False
            assert plain["resource_version"] == env.reflector.last_sync_resource_version
            # sticky: a later relist is a list again, never a new watch-list
            fake.fail_next_watch(ServerError("boom"))
            fake.close_watches()
            await fake.wait_for_calls("list", 2)

            def watching_again() -> None:
                assert (fake.calls[-1].verb, fake.open_watchers) == ("watch", 1)

            await eventually(watching_again, timeout=TIMEOUT, interval=POLL)
            assert [w["send_initial_events"] for w in env.watches].count(True) == 1
            assert env.store.kinds() == ["replace", "replace"]
            tg.cancel_scope.cancel()


class CutWatchList:
    """A ListerWatcher over a FakeListerWatcher whose first watch-list stream ends (or
    hangs, when ``hang``) after its first event, before the end bookmark: an API server
    restarting gracefully mid-stream. Later watches are the fake's own."""

    def __init__(self, fake: FakeListerWatcher, *, hang: bool) -> None:
        self.fake = fake
        self.hang = hang
        self.cut = False

    async def list(self, **kwargs: Any) -> Obj:
        return await self.fake.list(**kwargs)

    def watch(self, **kwargs: Any) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        if kwargs.get("send_initial_events") and not self.cut:
            self.cut = True
            return self._cut(kwargs)
        return self.fake.watch(**kwargs)

    @asynccontextmanager
    async def _cut(self, kwargs: dict[str, Any]) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        async with self.fake.watch(**kwargs) as events:
            yield self._first_only(events)

    async def _first_only(self, events: AsyncIterator[WatchEvent]) -> AsyncIterator[WatchEvent]:
        async for event in events:
            yield event
            break
        if self.hang:
            await anyio.sleep_forever()


@pytest.mark.parametrize("hang", [False, True], ids=["stream-ends", "stream-stalls"])
async def test_watch_list_cut_before_its_end_bookmark_falls_back_for_that_sync_only(
    hang: bool,
) -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    store, t = RecordingStore(), FakeTime()
    reflector = Reflector(
        CutWatchList(fake, hang=hang),
        store,
        name="configmaps",
        use_watch_list=True,
        inactivity_timeout=0.05 if hang else None,
        random=t.random,
        sleep=t.sleep,
    )
    env = Env(fake, store, t, reflector)
    async with running(env):
        # this sync: a list, then a plain watch
        assert [w["send_initial_events"] for w in env.watches] == [True, False]
        assert [c["resource_version"] for c in env.lists] == ["0"]
        assert store.ops == [("replace", ["default/a", "default/b"], "3")]
        assert not reflector.watch_list_fallback
        assert reflector.stats.watch_list_fallbacks == 1
        # the next sync is a watch-list again
        fake.modify(cm("a", v="1"))
        await store.wait_for_ops(2)
        fake.push_error(500, "InternalError")
        await store.wait_for_ops(3)
        assert store.ops[2] == ("replace", ["default/a", "default/b"], "4")
        assert [w["send_initial_events"] for w in env.watches] == [True, False, True]
        assert env.watches[2]["resource_version"] == "4"
        assert len(env.lists) == 1
        assert reflector.stats.watch_list_fallbacks == 1
        assert not reflector.watch_list_fallback


async def test_watch_list_relists_by_watch_list_at_the_last_rv() -> None:
    env = make(use_watch_list=True)
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
        env.fake.push_error(500, "InternalError")
        await settle(env, 2)
        await env.store.wait_for_ops(3)
        second = env.watches[1]
        assert second["send_initial_events"] is True
        assert second["resource_version"] == "5"
        assert env.lists == []
        assert env.store.kinds() == ["replace", "update", "replace"]
        assert env.time.sleeps == [0.8]


async def test_watch_list_410_retries_at_empty_rv_without_fallback() -> None:
    env = make(use_watch_list=True)
    async with running(env):
        env.fake.fail_next_watch(ResourceExpired("too old", reason="Expired"))
        env.fake.push_error(410, "Expired")  # the running stream expires: re-sync
        await settle(env, 2)
        await env.store.wait_for_ops(2)
        rvs = [(w["send_initial_events"], w["resource_version"]) for w in env.watches]
        # expired mid-stream: watch-list at the last RV; that open 410s: at "" at once,
        # then (410s repeating with no event between) after a backoff
        assert rvs == [(True, ""), (True, "4"), (True, "")]
        assert env.time.sleeps == [0.8]
        assert not env.reflector.watch_list_fallback
        assert env.store.kinds() == ["replace", "replace"]


async def test_watch_list_transient_error_retries_the_watch_list() -> None:
    env = make(use_watch_list=True)
    env.fake.fail_next_watch(ConnectionFailed("refused"))
    async with running(env):
        assert [w["send_initial_events"] for w in env.watches] == [True, True]
        assert env.time.sleeps == [0.8]
        assert not env.reflector.watch_list_fallback


# ---------------------------------------------------------------- hook, lifecycle


async def test_on_watch_error_is_called_for_every_error_before_backing_off() -> None:
    t = FakeTime()
    seen: list[BaseException] = []

    def hook(exc: BaseException) -> None:
        seen.append(exc)
        t.journal.append(("hook", type(exc).__name__))

    env = make(on_watch_error=hook, sleep=t.sleep)
    env.fake.fail_next_list(ServerError("boom"))
    async with running(env):
        env.fake.push_exception(TooManyRequests("slow"))
        await settle(env, 2)
        env.fake.push_error(410, "Expired")
        await settle(env, 3)
        env.fake.push_malformed()
        await settle(env, 4)
    assert [type(e) for e in seen] == [
        ServerError,
        TooManyRequests,
        ResourceExpired,
        WatchDecodeError,
    ]
    assert t.journal == [
        ("hook", "ServerError"),
        ("sleep", 0.8),
        ("hook", "TooManyRequests"),
        ("sleep", 1.6),
        ("hook", "ResourceExpired"),
        ("hook", "WatchDecodeError"),
        ("sleep", 3.2),
    ]
    assert env.reflector.stats.errors == 4


@pytest.mark.allow_handler_failures
async def test_a_failing_hook_does_not_kill_the_reflector() -> None:
    def hook(exc: BaseException) -> None:
        raise RuntimeError("hook bug")

    env = make(on_watch_error=hook)
    async with running(env):
        env.fake.push_error(500, "InternalError")
        await env.fake.wait_for_calls("list", 2)
        await settle(env, 2)


async def test_cancellation_closes_the_open_watch_promptly() -> None:
    env = make()
    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            await tg.start(env.reflector.run)
            await env.fake.wait_for_watchers(1)
            tg.cancel_scope.cancel()
    assert env.fake.open_watchers == 0
    assert env.reflector.state is ReflectorState.STOPPED


async def test_cancellation_during_backoff_and_restart_is_refused_while_running() -> None:
    env = make(sleep=anyio.sleep, backoff_initial=60.0, backoff_cap=60.0)
    env.fake.fail_next_list(ServerError("boom"))
    with anyio.fail_after(1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(env.reflector.run)
            await env.fake.wait_for_calls("list", 1)
            await anyio.wait_all_tasks_blocked()
            assert env.reflector.state is ReflectorState.BACKING_OFF
            with pytest.raises(RuntimeError):
                await env.reflector.run()
            tg.cancel_scope.cancel()
    assert env.reflector.state is ReflectorState.STOPPED


async def test_started_only_after_the_first_list_reached_the_store() -> None:
    env = make()
    env.fake.fail_next_list(ServerError("boom"), times=3)
    gate = anyio.Event()

    async def gated_sleep(seconds: float) -> None:
        env.time.sleeps.append(seconds)
        if len(env.time.sleeps) == 3:
            await gate.wait()

    env.reflector = Reflector(env.fake, env.store, sleep=gated_sleep, random=lambda: 0.0)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            started = False

            async def start() -> None:
                nonlocal started
                await tg.start(env.reflector.run)
                started = True

            tg.start_soon(start)
            await env.fake.wait_for_calls("list", 3)
            await anyio.wait_all_tasks_blocked()
            assert not started
            assert env.store.ops == []
            assert not env.reflector.synced
            gate.set()
            await env.store.wait_for_ops(1)
            await anyio.wait_all_tasks_blocked()
            assert started
            assert env.reflector.synced
            tg.cancel_scope.cancel()


async def test_stats_and_state_for_health() -> None:
    env = make(real_clock=False)
    assert env.reflector.state is ReflectorState.IDLE
    assert env.reflector.stats.last_event_monotonic is None
    async with running(env):
        assert env.reflector.stats.last_event_monotonic == env.time.now
        env.time.now += 10
        env.fake.push_bookmark()
        await eventually(one_bookmark(env), timeout=TIMEOUT, interval=POLL)
        stats = env.reflector.stats
        assert stats.last_event_monotonic == env.time.now
        assert (stats.lists, stats.watches, stats.relists, stats.syncs) == (1, 1, 0, 1)
        assert stats.events == 1


async def test_with_the_delta_fifo() -> None:
    from informer._cache.delta_fifo import DeltaFIFO, DeltaType

    fake = FakeListerWatcher([cm("a"), cm("b")])
    fifo = DeltaFIFO()
    reflector = Reflector(fake, fifo, name="configmaps")
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(reflector.run)
            await fake.wait_for_watchers(1)
            fake.modify(cm("a", v="1"))

            def two_deltas() -> None:
                assert len(fifo.get_by_key("default/a") or []) == 2, fifo.get_by_key("default/a")

            await eventually(two_deltas, timeout=TIMEOUT, interval=POLL)
            deltas = fifo.get_by_key("default/a") or []
            assert [d.type for d in deltas] == [DeltaType.SYNC, DeltaType.UPDATED]
            assert fifo.list_keys() == ["default/a", "default/b"]
            tg.cancel_scope.cancel()


async def test_a_second_run_resumes_from_the_last_rv_and_signals_started_again() -> None:
    env = make()
    async with running(env):
        env.fake.modify(cm("o0", v="1"))
        await env.store.wait_for_ops(2)
    assert env.reflector.state is ReflectorState.STOPPED
    assert "rv=5" in repr(env.reflector)
    async with running(env):
        assert [c["resource_version"] for c in env.lists] == ["0", "5"]
        assert env.watches[-1]["resource_version"] == "5"
        assert env.store.kinds() == ["replace", "update", "replace"]


async def test_watch_list_applies_the_transform_while_buffering() -> None:
    seen: list[int] = []

    def transform(obj: Obj) -> Obj:
        seen.append(len(obj))
        obj.setdefault("metadata", {})["annotations"] = {"transformed": "yes"}
        return obj

    env = make(objects=3, use_watch_list=True, transform=transform)
    async with running(env):
        assert env.store.ops[0][0] == "replace"
        stored = env.store.objects.values()
        assert len(stored) == 3
        assert all(o["metadata"]["annotations"] == {"transformed": "yes"} for o in stored)
        assert len(seen) == 3
        assert env.reflector.stats.lists == 0  # it was a watch-list sync


# ------------------------------------------------------------------ the event loop


@pytest.mark.parametrize("use_watch_list", [False, True], ids=["list", "watch-list"])
async def test_a_big_first_sync_lets_other_tasks_run_while_the_fifo_fills(
    use_watch_list: bool,
) -> None:
    """25,000 objects: another task runs while the DeltaFIFO takes them (steps of
    REPLACE_STEP), and nothing of the list can be popped before all of it is queued."""
    total = 2 * REPLACE_STEP + 5_000
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(total)])
    fifo = DeltaFIFO()
    reflector = Reflector(fake, fifo, name="configmaps", use_watch_list=use_watch_list)
    seen: list[int] = []  # the FIFO's length each time the other task ran

    async def watch() -> None:
        while True:
            seen.append(len(fifo))
            await anyio.lowlevel.checkpoint()

    popped: list[int] = []  # the FIFO's length when a pop got its first key

    async def consume() -> None:
        def process(deltas: list[Delta], is_in_initial_list: bool) -> None:
            if not popped:
                popped.append(len(fifo) + 1)

        while True:
            await fifo.pop(process)

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            tg.start_soon(consume)
            await tg.start(reflector.run)
            await eventually(fifo.has_synced, timeout=TIMEOUT, interval=POLL)
            tg.cancel_scope.cancel()
    assert REPLACE_STEP in seen and 2 * REPLACE_STEP in seen  # paused at each step
    assert popped == [total]  # the first pop saw the whole list queued


@pytest.mark.allow_handler_failures  # the transform failure is reported on purpose
@pytest.mark.parametrize("watch_list", [False, True], ids=["list", "watch-list"])
async def test_a_sync_object_the_transform_raises_on_is_left_out(watch_list: bool) -> None:
    def transform(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "o1":
            raise ValueError("cannot transform")
        return obj

    env = make(transform=transform, use_watch_list=watch_list)
    with structlog.testing.capture_logs() as logs:
        async with running(env):
            assert env.store.ops == [("replace", ["default/o0", "default/o2"], "4")]
            assert env.reflector.stats.bad_events == {"store_failed": 1}
            assert env.reflector.stats.syncs == 1
    (entry,) = [e for e in logs if e["event"] == "store.failed"]
    assert entry["object_name"] == "o1"
    assert entry["type"] == ("ADDED" if watch_list else "list")
