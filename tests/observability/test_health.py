"""Health probes: /readyz follows the informers' sync, /healthz turns red on a blocked
event loop, a stalled watch the guard cannot heal, or an overdue lease.

Informers run on ``FakeListerWatcher``; clocks are injected where time matters. Every
test is bounded by ``anyio.fail_after`` and waits for conditions.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from http_client import http_get

from informer import ConnectionFailed, Forbidden
from informer._cache.factory import SharedInformerFactory
from informer._leaderelection.elector import LeaderElector
from informer._meta.resource import CONFIGMAPS, Resource
from informer._meta.types import Obj, WatchEvent
from informer._observability.credential_check import credentials_check
from informer._observability.endpoints import Endpoints, Observability, run_observability
from informer._observability.health import (
    EventLoopMonitor,
    HealthChecks,
    LeaseHolder,
    WatchConnectCheck,
    WatchStallCheck,
    informers_synced_check,
    lease_check,
    serve_health,
)
from informer._rest.credentials import AuthStatus
from informer.observability import BindError
from informer.testing import eventually
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
POLL = 0.02  # in-memory state: cheap to check often


# ------------------------------------------------------------------------------ helpers


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cm(name: str, ns: str = "ns") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def fake_factory(fake: FakeListerWatcher, **reflector_options: Any) -> SharedInformerFactory:
    def lister_watcher(resource: Resource, **_: Any) -> FakeListerWatcher:
        return fake

    options = {"backoff_initial": 0.01, "backoff_cap": 0.05, **reflector_options}
    return SharedInformerFactory(
        None, lister_watcher_factory=lister_watcher, reflector_options=options
    )


@asynccontextmanager
async def health_server(checks: HealthChecks) -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_health, "127.0.0.1:0", checks)
        yield port
        tg.cancel_scope.cancel()


# ----------------------------------------------------------------------------- readiness


async def test_readyz_is_red_until_every_informer_synced() -> None:
    fake = FakeListerWatcher()
    fake.create(cm("a"))
    factory = fake_factory(fake)
    informer = factory.informer_for(CONFIGMAPS)
    checks = HealthChecks()
    checks.add_readiness("informers", informers_synced_check(lambda: factory.informers))
    with anyio.fail_after(TIMEOUT):
        async with health_server(checks) as port:
            status, body = await http_get(port, "/readyz")
            assert status == 500
            assert body == (
                "[-]informers failed: not synced yet: configmaps\nreadyz check failed\n"
            )
            assert await http_get(port, "/readyz/informers") == (
                500,
                "[-]informers failed: not synced yet: configmaps\n",
            )
            async with factory:
                await informer.wait_for_sync()
                assert await http_get(port, "/readyz") == (200, "ok")
                assert await http_get(port, "/readyz?verbose") == (
                    200,
                    "[+]informers ok\nreadyz check passed\n",
                )
                assert await http_get(port, "/readyz/informers") == (200, "ok\n")
                assert (await http_get(port, "/readyz/nope"))[0] == 404


async def test_probe_output_exclude_and_a_raising_check() -> None:
    checks = HealthChecks()
    checks.add_liveness("fine", lambda: None)
    checks.add_liveness("sick", lambda: "feeling bad")

    def broken() -> str | None:
        raise RuntimeError("oops")

    checks.add_liveness("broken", broken)
    with pytest.raises(ValueError):
        checks.add_liveness("fine", lambda: None)
    with pytest.raises(ValueError):
        checks.add_liveness("a/b", lambda: None)
    with anyio.fail_after(TIMEOUT):
        async with health_server(checks) as port:
            assert await http_get(port, "/healthz") == (
                500,
                "[+]fine ok\n"
                "[-]sick failed: feeling bad\n"
                "[-]broken failed: check raised RuntimeError: oops\n"
                "healthz check failed\n",
            )
            assert await http_get(port, "/healthz?exclude=sick&exclude=broken") == (200, "ok")
            assert await http_get(port, "/healthz?exclude=sick,broken&verbose") == (
                200,
                "[+]fine ok\n[+]sick excluded: ok\n[+]broken excluded: ok\nhealthz check passed\n",
            )
            assert await http_get(port, "/healthz/fine") == (200, "ok\n")
            assert (await http_get(port, "/metrics"))[0] == 404
            assert await http_get(port, "/readyz") == (200, "ok")  # no readiness checks


# ---------------------------------------------------------------------------- event loop


def test_event_loop_check_with_an_injected_clock() -> None:
    clock = FakeClock()
    monitor = EventLoopMonitor(interval=1.0, max_lag=5.0, clock=clock)
    assert monitor.check() is None  # not running: nothing measured
    monitor.beat()
    clock.now += 5.9
    assert monitor.check() is None
    clock.now += 0.2  # 6.1 s without a beat: blocked now
    assert "no heartbeat for 6.1s" in (monitor.check() or "")
    monitor.beat(lag=5.5)  # woke up 5.5 s late: was blocked
    assert "5.5s late" in (monitor.check() or "")
    monitor.beat(lag=0.01)
    assert monitor.check() is None
    assert monitor.max_observed_lag == 5.5
    with pytest.raises(ValueError):
        EventLoopMonitor(interval=0)


async def test_blocking_the_loop_turns_the_event_loop_check_red() -> None:
    monitor = EventLoopMonitor(interval=0.02, max_lag=0.1)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            await tg.start(monitor.run)
            assert monitor.check() is None
            time.sleep(0.2)  # noqa: ASYNC251 - blocking the event loop is the point
            assert "the event loop is blocked" in (monitor.check() or "")

            # The heartbeat resumes; it reports the lateness, then recovers.
            def recovered() -> None:
                assert monitor.check() is None

            await eventually(recovered, timeout=TIMEOUT, interval=monitor.interval)
            assert monitor.max_observed_lag >= 0.1
            tg.cancel_scope.cancel()


# ------------------------------------------------------------------------------- watches


async def test_a_watch_the_guard_cannot_reopen_turns_healthz_red() -> None:
    """The guard works on the event loop's clock; the reflector's (injected) clock jumps
    past the limit while the guard sees nothing: as if the guard itself had failed."""
    clock = FakeClock()
    fake = FakeListerWatcher()
    factory = fake_factory(fake, clock=clock, inactivity_timeout=60.0)
    informer = factory.informer_for(CONFIGMAPS)
    check = WatchStallCheck(lambda: factory.informers, slack=10.0, clock=clock)
    checks = HealthChecks()
    checks.add_liveness("watches", check)
    with anyio.fail_after(TIMEOUT):
        async with health_server(checks) as port, factory:
            await informer.wait_for_sync()
            await fake.wait_for_watchers(1)
            await fake.wait_until(lambda: informer.reflector.is_watching)
            assert await http_get(port, "/healthz") == (200, "ok")
            clock.now += 99.0  # limit: 60 * 1.5 + 10 = 100
            assert await http_get(port, "/healthz") == (200, "ok")
            clock.now += 2.0
            status, body = await http_get(port, "/healthz")
            assert status == 500
            assert body.startswith("[-]watches failed: configmaps: watching, but nothing received")
            assert "did not re-open the watch (limit 100s)" in body
            # Any event is progress again.
            fake.create(cm("late"))
            await fake.wait_until(lambda: informer.reflector.stats.added == 1)
            assert await http_get(port, "/healthz") == (200, "ok")


async def test_watches_that_keep_stalling_turn_healthz_red() -> None:
    """Every re-opened watch stalls too: the guard fires again and again, in vain."""
    fake = FakeListerWatcher()
    factory = fake_factory(fake, inactivity_timeout=0.1)
    informer = factory.informer_for(CONFIGMAPS)
    reflector = informer.reflector
    check = WatchStallCheck(lambda: factory.informers, stall_strikes=3)
    checks = HealthChecks()
    checks.add_liveness("watches", check)
    stalling = True

    async def stall_every_watch() -> None:
        opened = fake.watch_opens
        while stalling:
            await fake.wait_until(lambda n=opened: fake.watch_opens > n or not stalling)
            opened = fake.watch_opens
            if stalling:
                fake.stall_watches()

    with anyio.fail_after(TIMEOUT):
        async with health_server(checks) as port, factory, anyio.create_task_group() as tg:
            await informer.wait_for_sync()
            await fake.wait_for_watchers(1)
            fake.push_bookmark()  # this server sends bookmarks: a watch is never silent
            await fake.wait_until(lambda: reflector.stats.bookmarks == 1)
            assert check() is None  # notes: the last event was just now
            base = reflector.stats.stalls
            fake.stall_watches()
            tg.start_soon(stall_every_watch)
            await fake.wait_until(lambda: reflector.stats.stalls >= base + 2)
            assert check() is None  # 2 strikes of 3 (checked before the loop can stall again)
            await fake.wait_until(lambda: reflector.stats.stalls >= base + 3)
            status, body = await http_get(port, "/healthz")
            assert status == 500
            assert "configmaps: 3 watches in a row stalled" in body or "configmaps: 4 " in body
            # The network heals: the next watch delivers again.
            stalling = False
            opens = fake.watch_opens
            fake.advance_resource_version()  # wakes the stalling task, which ends
            await fake.wait_until(lambda: fake.watch_opens > opens and fake.open_watchers == 1)
            fake.push_bookmark()
            await fake.wait_until(lambda: reflector.stats.bookmarks == 2)
            assert check() is None
            tg.cancel_scope.cancel()


async def test_stalls_without_bookmarks_or_guard_are_not_failures() -> None:
    """A quiet resource on a server without bookmarks is silent by nature."""
    fake = FakeListerWatcher()
    factory = fake_factory(fake, inactivity_timeout=0.05)
    unguarded = FakeListerWatcher()
    other = fake_factory(unguarded, inactivity_timeout=None)
    informer = factory.informer_for(CONFIGMAPS)
    other.informer_for(CONFIGMAPS)
    check = WatchStallCheck(lambda: [*factory.informers, *other.informers], stall_strikes=2)
    with anyio.fail_after(TIMEOUT):
        async with factory, other:
            await informer.wait_for_sync()
            assert check() is None
            await fake.wait_until(lambda: informer.reflector.stats.stalls >= 3)
            assert check() is None


class Reachable:
    """A ListerWatcher in front of ``fake`` that raises ``error`` at every list and watch
    open while ``error`` is set (an unreachable API server, or one answering 403)."""

    def __init__(self, fake: FakeListerWatcher) -> None:
        self.fake = fake
        self.error: Exception | None = None
        self.refused = 0

    async def list(self, **params: Any) -> Obj:
        self._raise()
        return await self.fake.list(**params)

    def watch(self, **params: Any) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        @asynccontextmanager
        async def opened() -> AsyncIterator[AsyncIterator[WatchEvent]]:
            await anyio.lowlevel.checkpoint()
            self._raise()
            async with self.fake.watch(**params) as events:
                yield events

        return opened()

    def _raise(self) -> None:
        if self.error is not None:
            self.refused += 1
            raise self.error


def refused(server: Reachable, count: int) -> Callable[[], None]:
    """A check for ``eventually``: ``server`` refused ``count`` attempts or more."""

    def check() -> None:
        assert server.refused >= count, f"{server.refused} attempts refused, want {count}"

    return check


REFUSED = ConnectionFailed(
    "cannot reach the API server at https://10.0.0.1:6443: Connect call failed",
    address="https://10.0.0.1:6443",
)


@pytest.mark.parametrize("when", ["from-the-start", "after-sync"])
async def test_a_reflector_that_cannot_reach_the_server_fails_readiness(when: str) -> None:
    """Lists and watch opens failing with ConnectionFailed: the ``watches`` readiness
    check fails once the first unanswered attempt is older than the limit, names the
    informer and the error, and passes again after the next answer."""
    clock = FakeClock()
    fake = FakeListerWatcher()
    fake.create(cm("a"))
    server = Reachable(fake)
    factory = SharedInformerFactory(
        None,
        lister_watcher_factory=lambda resource, **_: server,
        reflector_options={"backoff_initial": 0.01, "backoff_cap": 0.05, "clock": clock},
    )
    informer = factory.informer_for(CONFIGMAPS)
    reflector = informer.reflector
    checks = HealthChecks()
    checks.add_readiness(
        "watches", WatchConnectCheck(lambda: factory.informers, unreachable_after=60, clock=clock)
    )
    with anyio.fail_after(TIMEOUT):
        async with health_server(checks) as port:
            if when == "from-the-start":
                server.error = REFUSED
            async with factory:
                if when == "after-sync":
                    await informer.wait_for_sync()
                    await fake.wait_for_watchers(1)
                    server.error = REFUSED
                    fake.push_exception(REFUSED)  # the open watch breaks
                await eventually(refused(server, 3), timeout=TIMEOUT, interval=POLL)
                assert reflector.stats.connecting_since == clock.now
                assert await http_get(port, "/readyz") == (200, "ok")
                clock.now += 60.0
                assert await http_get(port, "/readyz") == (200, "ok")  # at the limit
                clock.now += 1.0
                status, body = await http_get(port, "/readyz")
                assert status == 500
                assert body.startswith(
                    "[-]watches failed: configmaps: no answer from the API server for 61s "
                    "(limit 60s; "
                ), body
                assert body.endswith(
                    "; last error ConnectionFailed: cannot reach the API server at "
                    "https://10.0.0.1:6443: Connect call failed)\nreadyz check failed\n"
                ), body
                server.error = None

                def watching_again() -> None:
                    assert reflector.is_watching, "the reflector watches again"
                    assert reflector.stats.connecting_since is None

                await eventually(watching_again, timeout=TIMEOUT, interval=POLL)
                assert await http_get(port, "/readyz") == (200, "ok")
            # A stopped reflector is not reported.
            server.error = REFUSED
            reflector.stats.connecting_since = clock.now - 1000.0
            assert await http_get(port, "/readyz") == (200, "ok")


async def test_a_server_answering_errors_is_reachable() -> None:
    """403 (or any status) is an answer: not a connection problem, whatever its length."""
    clock = FakeClock()
    fake = FakeListerWatcher()
    server = Reachable(fake)
    factory = SharedInformerFactory(
        None,
        lister_watcher_factory=lambda resource, **_: server,
        reflector_options={"backoff_initial": 0.01, "backoff_cap": 0.05, "clock": clock},
    )
    informer = factory.informer_for(CONFIGMAPS)
    check = WatchConnectCheck(lambda: factory.informers, clock=clock)
    with anyio.fail_after(TIMEOUT):
        async with factory:
            await informer.wait_for_sync()
            await fake.wait_for_watchers(1)
            server.error = Forbidden("configmaps is forbidden", status=403, reason="Forbidden")
            fake.push_exception(REFUSED)  # the open watch breaks; re-opens get 403
            await eventually(refused(server, 3), timeout=TIMEOUT, interval=POLL)
            clock.now += 1000.0
            assert informer.reflector.stats.connecting_since is None
            assert check() is None


def test_credentials_check_fails_after_the_threshold() -> None:
    """Every answer 401/403 for longer than the threshold; any other answer below 500
    ends the streak, a 5xx does not."""
    status = AuthStatus()
    offset = [0.0]
    check = credentials_check(
        lambda: [("https://api:6443", status)],
        threshold=120.0,
        clock=lambda: time.monotonic() + offset[0],
    )
    assert check() is None
    status.record(401)
    assert status.failing_since is not None
    offset[0] = 120.0 - (time.monotonic() - status.failing_since) - 1.0
    assert check() is None
    offset[0] += 2.0
    reason = check()
    assert reason is not None and reason.startswith(
        "https://api:6443: every answer for 121s was 401/403 (1 in a row, limit 120s), the "
        "last 401 Unauthorized: the API server does not accept the credentials"
    ), reason
    status.record(503)  # no proof either way
    status.record(403)
    reason = check()
    assert reason is not None and "(2 in a row, limit 120s), the last 403 Forbidden" in reason
    assert "RoleBindings" in reason
    status.record(404)  # the server accepted the credentials
    assert check() is None
    with pytest.raises(ValueError, match="threshold"):
        credentials_check(lambda: [], threshold=-1)


# --------------------------------------------------------------------------------- lease


def test_the_real_elector_is_a_lease_holder() -> None:
    elector = LeaderElector(None, name="lease", namespace="ns", identity="me")
    assert isinstance(elector, LeaseHolder)
    assert lease_check(elector)() is None  # not leading


# ------------------------------------------------------------------------- observability


async def test_run_observability_disabled_endpoints_and_bind_errors() -> None:
    factory = fake_factory(FakeListerWatcher())
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            endpoints: Endpoints = await tg.start(
                lambda task_status: run_observability(
                    metrics_address="127.0.0.1:0",
                    health_address="0",
                    factories=[factory],
                    controllers=[],
                    task_status=task_status,
                )
            )
            assert endpoints.health_port is None and endpoints.metrics_port is not None
            taken = f"127.0.0.1:{endpoints.metrics_port}"
            obs = Observability(factories=[factory])
            with pytest.raises(BindError, match=r"cannot listen on 127\.0\.0\.1:"):
                async with obs.serve(metrics_address=None, health_address=taken):
                    pass
            tg.cancel_scope.cancel()
