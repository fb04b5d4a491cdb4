"""The ``leader-election`` liveness rule (``informer._observability.health.lease_check``) on the
real ``LeaderElector`` and the real API server.

The rule: an elector that believes it leads but whose record was last renewed more than
``renew_deadline + retry_period + slack`` seconds ago fails ``/healthz`` (13 s with the
defaults, before the 15 s lease is free for the others); a follower is always healthy.

Each elector judges its lease with an injected clock (``FakeClock``) that only the test
moves; its renewals and the event loop run in real time. A successful renewal (or the
acquisition) stamps the elector's record with the clock's current value, so "time since
the last successful renewal" is exactly what the test set, whatever the machine's load:
the clock is moved and the check read with no ``await`` in between, and a renewal is
awaited by watching the elector's record change. The API server is made unreachable for
one elector by cutting the ``TcpProxy`` its client goes through; the proxy's failures are
observed (not assumed) before the clock moves, so no renewal is in flight by then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from api_helpers import until
from http_client import http_get
from prometheus_client.parser import text_string_to_metric_families

import informer._leaderelection.elector as le_module
from informer import ConnectionFailed
from informer._cache.factory import SharedInformerFactory
from informer._controller.controller import Controller
from informer._controller.reconcile import Result
from informer._leaderelection.elector import LeaderElector
from informer._leaderelection.timings import LeaseTimings
from informer._meta.resource import CONFIGMAPS, LEASES, Resource
from informer._meta.types import Obj
from informer._observability.endpoints import Observability
from informer._observability.health import LeaseHolder, lease_check
from informer._rest.request import request_json
from informer.testing._fake import FakeListerWatcher
from informer.testing._proxy import TcpProxy
from informer.testing.control_plane import ControlPlane
from informer.workqueue import use_queue_metrics_provider

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

LEASE = "health-lease"
T0 = 1000.0
"""The injected clock's reading until a test moves it."""
TIMINGS = LeaseTimings(lease_duration=30.0, renew_deadline=20.0, retry_period=0.25)
"""Production-shaped timings with renewals every 0.25 s of real time. The renew deadline
(20 s, real time) is far longer than any test runs with failing renewals, so the elector
never gives up on its own here."""
LIMIT = 20.0 + 0.25 + 1.0
"""``lease_check``'s limit for TIMINGS: renew_deadline + retry_period + slack (1 s)."""
WITHIN = 10.0
"""Bound on every wait for something that takes a few hundred milliseconds."""


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def overdue(namespace: str, seconds: str, lease_duration: str = "30s") -> str:
    return (
        f"leader election: lease {namespace}/{LEASE} not renewed for {seconds} "
        f"(lease duration {lease_duration})"
    )


async def next_renewal(elector: LeaderElector) -> None:
    """Wait for the elector's next successful write or read of a changed record.

    The record and its clock stamp are set together, so once the record changed, the
    stamp is the clock's value at some moment after this call began."""
    before = elector.observed_record

    await until(lambda: elector.observed_record != before, f"{elector.identity} to renew", WITHIN)


class Requests:
    """Wraps the elector module's ``request_json``: counts requests and failures per client."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []
        self.failed: list[Any] = []

    async def __call__(self, api: Any, method: str, path: str, **kwargs: Any) -> Obj:
        self.sent.append((api, method))
        try:
            return await request_json(api, method, path, **kwargs)
        except ConnectionFailed:
            self.failed.append(api)
            raise

    def failures(self, api: Any) -> int:
        return sum(a is api for a in self.failed)

    def reads(self, api: Any) -> int:
        return sum(a is api and method == "GET" for a, method in self.sent)

    async def more_failures(self, api: Any, n: int = 1) -> None:
        """Wait until ``api`` had ``n`` more failed requests (so none is in flight that
        could still succeed: an elector sends one request at a time)."""
        target = self.failures(api) + n
        await until(lambda: self.failures(api) >= target, f"{n} failed request(s)", WITHIN)

    async def more_reads(self, api: Any, n: int) -> None:
        target = self.reads(api) + n
        await until(lambda: self.reads(api) >= target, f"{n} more read(s) of the Lease", WITHIN)


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Requests:
    spy = Requests()
    monkeypatch.setattr(le_module, "request_json", spy)
    return spy


@asynccontextmanager
async def through_proxy(control_plane: ControlPlane) -> AsyncIterator[tuple[Any, TcpProxy]]:
    """An admin client whose connections go through a TcpProxy the test can cut."""
    port = int(control_plane.host.rsplit(":", 1)[1])
    async with TcpProxy("127.0.0.1", port) as proxy, control_plane.api_client() as api:
        api.configuration.host = proxy.url
        yield api, proxy


class Timeline:
    """The leading callbacks of several candidates, in the order they were called."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._changed = anyio.Event()

    def callbacks(self, identity: str) -> dict[str, Any]:
        async def on_started_leading() -> None:
            self._record(identity, "started")
            await anyio.sleep_forever()

        return {
            "on_started_leading": on_started_leading,
            "on_stopped_leading": lambda: self._record(identity, "stopped"),
        }

    def _record(self, identity: str, event: str) -> None:
        self.events.append((identity, event))
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, identity: str, event: str) -> None:
        with anyio.fail_after(WITHIN):
            while (identity, event) not in self.events:
                await self._changed.wait()


class Running:
    """An elector's ``run`` in its own cancel scope (stop one, keep the others)."""

    def __init__(self, elector: LeaderElector) -> None:
        self.elector = elector
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.returned = False

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with self.scope:
            await self.elector.run(task_status=task_status)
            self.returned = True
        self.done.set()

    async def wait_done(self) -> None:
        with anyio.fail_after(WITHIN):
            await self.done.wait()


@asynccontextmanager
async def running(*electors: LeaderElector) -> AsyncIterator[list[Running]]:
    """Run the electors (each past its first attempt, in order); cancel them on exit."""
    runs = [Running(e) for e in electors]
    async with anyio.create_task_group() as tg:
        for r in runs:
            await tg.start(r.run)
        try:
            yield runs
        finally:
            for r in runs:
                r.scope.cancel()


def elector(
    api: Any, namespace: str, identity: str, clock: FakeClock, **kwargs: Any
) -> LeaderElector:
    return LeaderElector(
        api,
        name=LEASE,
        namespace=namespace,
        identity=identity,
        clock=clock,
        timings=TIMINGS,
        **kwargs,
    )


async def lease_spec(api: Any, namespace: str) -> Obj:
    lease = await request_json(api, "GET", LEASES.path(LEASE, namespace=namespace))
    return dict(lease["spec"])


# ------------------------------------------------------------------------------ the rule


async def test_default_timings_fail_13_seconds_after_the_last_renewal(
    api_client: Any, namespace: str
) -> None:
    """Defaults 15/10/2 s and slack 1 s: 13 s, 2 s before the lease is free."""
    clock = FakeClock()
    e = LeaderElector(api_client, name=LEASE, namespace=namespace, identity="alpha", clock=clock)
    assert isinstance(e, LeaseHolder)
    check = lease_check(e)
    assert check() is None  # not running: not leading
    async with running(e):
        assert e.is_leader()
        # Acquired, and renewed (every 2 s) at T0 at the latest: the clock stood still.
        clock.now = T0 + 13.0
        assert check() is None
        clock.now = T0 + 13.5
        assert check() == overdue(namespace, "13.5s", "15s")
        assert e.check() is None  # client-go's own default tolerance (20 s) is looser
        clock.now = T0 + 35.5
        assert e.check() == overdue(namespace, "35.5s", "15s")


async def test_renewals_keep_the_check_green(api_client: Any, namespace: str) -> None:
    clock = FakeClock()
    e = elector(api_client, namespace, "alpha", clock)
    check = lease_check(e)
    async with running(e):
        assert e.is_leader()
        # Four times almost the limit passes, then a renewal: 84 s in all, never red.
        for _ in range(4):
            clock.now += LIMIT - 0.25
            assert check() is None
            await next_renewal(e)
            assert check() is None
        # A jump past the limit is red until the next renewal stamps the record again.
        clock.now += 25.0
        assert check() == overdue(namespace, "25.0s")
        await next_renewal(e)
        assert check() is None and e.is_leader()


async def test_unreachable_api_server_turns_the_check_red_until_a_renewal(
    control_plane: ControlPlane, namespace: str, requests: Requests
) -> None:
    clock = FakeClock()
    async with through_proxy(control_plane) as (api, proxy):
        e = elector(api, namespace, "alpha", clock)
        check = lease_check(e)
        async with running(e):
            assert e.is_leader()
            proxy.cut()
            await requests.more_failures(api)
            last = e.observed_record  # stamped at T0 at the latest: the clock stood still
            clock.now = T0 + LIMIT
            assert check() is None
            clock.now = T0 + LIMIT + 0.75
            assert check() == overdue(namespace, "22.0s")
            # Failing renewals do not stamp the record: it stays red while they fail.
            await requests.more_failures(api, 3)
            assert check() == overdue(namespace, "22.0s")
            assert e.is_leader() and e.observed_record == last
            proxy.restore()
            await next_renewal(e)
            assert check() is None and e.is_leader()


async def test_a_partitioned_leader_is_reported_before_its_lease_is_taken_over(
    control_plane: ControlPlane, api_client: Any, namespace: str, requests: Requests
) -> None:
    """alpha leads through a proxy, beta follows directly; both judge time by one clock.
    The proxy is cut: alpha fails /healthz once past the limit (21.25 s), while the lease
    (30 s) still keeps beta out; then beta takes over, and alpha, reconnected, finds the
    lease held by beta, stops leading and is healthy again."""
    clock = FakeClock()
    timeline = Timeline()
    async with through_proxy(control_plane) as (via_proxy, proxy):
        alpha = elector(via_proxy, namespace, "alpha", clock, **timeline.callbacks("alpha"))
        beta = elector(api_client, namespace, "beta", clock, **timeline.callbacks("beta"))
        alpha_check, beta_check = lease_check(alpha), lease_check(beta)
        async with running(alpha, beta) as (alpha_run, _):
            assert alpha.is_leader() and beta.leader == "alpha"
            await timeline.wait_for("alpha", "started")
            proxy.cut()
            await requests.more_failures(via_proxy)
            # beta has seen alpha's last renewal (at T0): the lease runs out at T0 + 30.
            final = await lease_spec(api_client, namespace)
            await until(lambda: beta.observed_record == final, "beta to see the record", WITHIN)

            clock.now = T0 + LIMIT + 0.75
            assert alpha_check() == overdue(namespace, "22.0s")
            assert beta_check() is None  # a follower has no lease to keep
            await requests.more_reads(api_client, 3)
            assert not beta.is_leader() and beta.leader == "alpha"

            clock.now = T0 + 30.5
            await timeline.wait_for("beta", "started")
            assert beta.is_leader() and beta_check() is None
            assert alpha.is_leader()  # still cut off: it has not noticed
            assert alpha_check() == overdue(namespace, "30.5s")

            proxy.restore()
            await alpha_run.wait_done()
            assert alpha_run.returned and alpha.lost_reason == "the lease is held by beta"
            assert alpha_check() is None  # not leading: healthy
            assert timeline.events == [
                ("alpha", "started"),
                ("beta", "started"),
                ("alpha", "stopped"),
            ]
            spec = await lease_spec(api_client, namespace)
            assert spec["holderIdentity"] == "beta" and spec["leaseTransitions"] == 1


# ------------------------------------------------------------------ served by Observability


def cm(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}}


def fake_factory(fake: FakeListerWatcher) -> SharedInformerFactory:
    def lister_watcher(resource: Resource, **_: Any) -> FakeListerWatcher:
        return fake

    options = {"backoff_initial": 0.01, "backoff_cap": 0.05}
    return SharedInformerFactory(
        None, lister_watcher_factory=lister_watcher, reflector_options=options
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_observability_serves_metrics_and_probes(
    control_plane: ControlPlane, namespace: str, requests: Requests
) -> None:
    fake = FakeListerWatcher()
    fake.create(cm("a"))
    factory = fake_factory(fake)

    class Noop(Controller):
        def setup(self) -> None:
            self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            return None

    obs = Observability(factories=[factory], process_metrics=False)
    with use_queue_metrics_provider(obs.metrics.queue_metrics):  # hooks at construction
        controller = Noop(factory, None)
    obs.add_controller(controller)
    clock = FakeClock()
    master = ("leader_election_master_status", (("name", LEASE),))
    async with through_proxy(control_plane) as (api, proxy):
        e = elector(api, namespace, "alpha", clock)
        obs.add_elector(e)
        obs.add_elector(e)  # idempotent
        obs.add_api_client(api)
        obs.add_api_client(api)  # idempotent
        assert [c.name for c in obs.checks.liveness] == ["event-loop", "watches", "leader-election"]
        assert [c.name for c in obs.checks.readiness] == ["informers", "watches", "credentials"]
        with anyio.fail_after(30):
            async with obs.serve(metrics_address="127.0.0.1:0", health_address="127.0.0.1:0") as ep:
                assert ep.metrics_port is not None and ep.health_port is not None
                assert (await http_get(ep.health_port, "/readyz"))[0] == 500
                assert await http_get(ep.health_port, "/healthz") == (200, "ok")
                _, text = await http_get(ep.metrics_port, "/metrics")
                assert samples(text)[master] == 0.0
                async with (
                    anyio.create_task_group() as tg,
                    factory,
                    running(e),
                ):
                    tg.start_soon(controller.run)
                    assert await factory.wait_for_cache_sync()
                    assert await http_get(ep.health_port, "/readyz") == (200, "ok")
                    status, text = await http_get(ep.metrics_port, "/metrics")
                    assert status == 200
                    assert {
                        "workqueue_adds_total",
                        "controller_runtime_reconcile_total",
                        "informer_store_objects",
                        "informer_auth_failures_total",
                    } <= {name for name, _ in samples(text)}
                    assert samples(text)[master] == 1.0
                    assert await http_get(ep.health_port, "/healthz") == (200, "ok")

                    proxy.cut()
                    await requests.more_failures(api)
                    clock.now = T0 + LIMIT + 0.75
                    status, body = await http_get(ep.health_port, "/healthz")
                    assert status == 500
                    assert f"[-]leader-election failed: {overdue(namespace, '22.0s')}\n" in body
                    proxy.restore()
                    await next_renewal(e)
                    assert await http_get(ep.health_port, "/healthz") == (200, "ok")
                    tg.cancel_scope.cancel()
