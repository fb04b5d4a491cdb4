"""Prometheus metrics (controller-runtime names) and their ``/metrics`` endpoint.

Metrics are scraped over HTTP with a raw anyio-socket client and parsed with
``prometheus_client.parser``; the end-to-end test scrapes during a run on the real control
plane. Every test is bounded by ``anyio.fail_after`` and waits for conditions.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from informer._cache.factory import SharedInformerFactory
from informer._controller.controller import Controller
from informer._controller.reconcile import Result
from informer._meta.resource import CONFIGMAPS, Resource
from informer._meta.types import Obj
from informer._observability import controller_metrics as _controller_metrics
from informer._observability.metrics import (
    RECONCILE_TIME_BUCKETS,
    WORKQUEUE_DURATION_BUCKETS,
    Metrics,
    QueueRecorder,
    serve_metrics,
)
from informer._queue.metrics import use_queue_metrics_provider
from informer._queue.ratelimit import ExponentialFailureRateLimiter
from informer._queue.workqueue import RateLimitingQueue
from informer._rest.request import request_json
from informer.testing import eventually
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


# ------------------------------------------------------------------------------ helpers


async def http_request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` to 127.0.0.1:``port``, half-close; return status, headers and body."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(raw)
        await stream.send_eof()  # "that is all": an incomplete head is not waited for
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    status, _, body = await http_request(
        port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    return status, body


async def scrape(port: int) -> dict[str, list[Sample]]:
    """``/metrics`` parsed: family name -> samples."""
    status, body = await http_get(port, "/metrics")
    assert status == 200, body
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def value(families: dict[str, list[Sample]], sample_name: str, **labels: str) -> float | None:
    """The value of the one sample named ``sample_name`` whose labels include ``labels``."""
    found = [
        s.value
        for samples in families.values()
        for s in samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, f"{sample_name}{labels} is ambiguous: {found}"
    return found[0] if found else None


@asynccontextmanager
async def serving(metrics: Metrics) -> AsyncIterator[int]:
    """Serve ``/metrics`` on a free loopback port; yields the port."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_metrics, "127.0.0.1:0", metrics)
        yield port
        tg.cancel_scope.cancel()


class Changes:
    """Awaitable "something changed" (a reconcile ended, an Event was recorded): tests
    wait for predicates on the state, not for time, and never poll."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true, re-checking it on every :meth:`notify`
        only (``asyncio.Condition.wait_for``); the caller's ``fail_after`` bounds it."""
        while not predicate():
            await self._event.wait()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cm(name: str, ns: str = "ns") -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def fake_factory(fake: FakeListerWatcher) -> SharedInformerFactory:
    def lister_watcher(resource: Resource, **_: Any) -> FakeListerWatcher:
        return fake

    return SharedInformerFactory(
        None,
        lister_watcher_factory=lister_watcher,
        reflector_options={"backoff_initial": 0.01, "backoff_cap": 0.05},
    )


# --------------------------------------------------------------------------- recording


def test_bucket_layouts_are_controller_runtimes() -> None:
    assert len(WORKQUEUE_DURATION_BUCKETS) == 12
    for got, want in zip(
        WORKQUEUE_DURATION_BUCKETS, [10e-9 * 10**i for i in range(12)], strict=True
    ):
        assert math.isclose(got, want)
    assert len(RECONCILE_TIME_BUCKETS) == 40
    assert RECONCILE_TIME_BUCKETS[0] == 0.005 and RECONCILE_TIME_BUCKETS[-1] == 60.0
    assert list(RECONCILE_TIME_BUCKETS) == sorted(RECONCILE_TIME_BUCKETS)


def test_histogram_buckets_are_less_or_equal() -> None:
    hist = _controller_metrics._Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 5.0):
        hist.observe(v)
    assert hist.cumulative() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert hist.count == 5 and math.isclose(hist.sum, 6.65)


async def test_queue_metrics_from_hooks_and_live_gauges() -> None:
    clock = FakeClock()
    metrics = Metrics(process_metrics=False, clock=clock)
    queue: RateLimitingQueue[str] = RateLimitingQueue(
        ExponentialFailureRateLimiter(base=0.001, cap=0.001),
        name="q",
        clock=clock,
        metrics=metrics.queue_metrics("q"),
    )
    recorder = metrics.add_queue(queue)
    assert isinstance(recorder, QueueRecorder) and recorder is queue.metrics
    assert metrics.add_queue(queue) is recorder  # idempotent

    queue.add("a")
    queue.add("a")  # de-duplicated: not an add
    queue.add("b")
    clock.now += 2.0
    item = await queue.get()  # waited 2 s
    clock.now += 30.0
    families = parse(metrics)
    q = {"name": "q", "controller": "q"}
    assert value(families, "workqueue_adds_total", **q) == 2
    assert value(families, "workqueue_depth", **q) == 1
    assert value(families, "workqueue_unfinished_work_seconds", **q) == 30.0
    assert value(families, "workqueue_longest_running_processor_seconds", **q) == 30.0
    assert value(families, "workqueue_queue_duration_seconds_count", **q) == 1
    assert value(families, "workqueue_queue_duration_seconds_sum", **q) == 2.0
    assert value(families, "workqueue_queue_duration_seconds_bucket", le="1.0", **q) == 0
    assert value(families, "workqueue_queue_duration_seconds_bucket", le="10.0", **q) == 1

    queue.add_rate_limited(item)  # a retry, parked behind the in-flight copy
    queue.done(item)
    families = parse(metrics)
    assert value(families, "workqueue_retries_total", **q) == 1
    assert value(families, "workqueue_work_duration_seconds_count", **q) == 1
    assert value(families, "workqueue_work_duration_seconds_sum", **q) == 30.0
    assert value(families, "workqueue_unfinished_work_seconds", **q) == 0


class CountingHooks:
    """Someone else's QueueMetrics: the exporter cannot read these."""

    def __init__(self) -> None:
        self.adds = 0

    def add(self) -> None:
        self.adds += 1

    def get(self, queue_seconds: float) -> None:
        pass

    def done(self, work_seconds: float) -> None:
        pass

    def retry(self) -> None:
        pass

    def set_depth(self, depth: int) -> None:
        pass


@pytest.mark.parametrize("hooks", ["foreign", "none"])
def test_a_queue_without_our_hooks_exports_only_gauges(hooks: str) -> None:
    metrics = Metrics(process_metrics=False)
    foreign = CountingHooks() if hooks == "foreign" else None
    queue: RateLimitingQueue[str] = RateLimitingQueue(name="mine", metrics=foreign)
    assert metrics.add_queue(queue) is None
    queue.add("x")
    families = parse(metrics)
    assert value(families, "workqueue_depth", name="mine") == 1
    assert value(families, "workqueue_adds_total", name="mine") is None
    if foreign is not None:
        assert foreign.adds == 1  # the queue kept the hooks it was built with


def test_queue_hooks_come_from_the_provider_at_construction() -> None:
    metrics = Metrics(process_metrics=False)
    asked: list[str] = []

    def provider(name: str) -> QueueRecorder:
        asked.append(name)
        return metrics.queue_metrics(name)

    class Noop(Controller):
        async def reconcile(self, key: str) -> Result | None:
            return None

    factory = fake_factory(FakeListerWatcher())
    outside = Noop(factory, None, name="outside")
    with use_queue_metrics_provider(provider):
        inside = Noop(factory, None, name="inside")
        explicit = RateLimitingQueue[str](name="explicit", metrics=CountingHooks())
        with use_queue_metrics_provider(None):  # switched off in a nested block
            off = RateLimitingQueue[str](name="off")
    after = RateLimitingQueue[str](name="after")
    assert asked == ["inside"]  # once, at construction, with the queue's name
    assert isinstance(inside.queue.metrics, QueueRecorder)
    assert outside.queue.metrics is None and off.metrics is None and after.metrics is None
    assert isinstance(explicit.metrics, CountingHooks)  # explicit hooks win
    metrics.add_controller(inside)
    inside.queue.add("ns/a")
    assert value(parse(metrics), "workqueue_adds_total", name="inside") == 1


def parse(metrics: Metrics) -> dict[str, list[Sample]]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


@pytest.mark.allow_handler_failures
async def test_informer_and_controller_metrics_on_the_fake() -> None:
    fake = FakeListerWatcher()
    for name in ("a", "b", "c"):
        fake.create(cm(name))
    factory = fake_factory(fake)

    class Flaky(Controller):
        def setup(self) -> None:
            self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            if key == "ns/b":
                raise RuntimeError("boom")
            return Result(requeue_after=60.0) if key == "ns/c" else None

    metrics = Metrics(process_metrics=False)
    with use_queue_metrics_provider(metrics.queue_metrics):
        controller = Flaky(
            factory, None, max_retries=0, rate_limiter=ExponentialFailureRateLimiter(0.001, 0.001)
        )
    metrics.add_factory(factory)
    metrics.add_controller(controller)
    metrics.add_controller(controller)  # idempotent
    reconciled = Changes()
    controller.stats.observers.append(lambda outcome, seconds: reconciled.notify())
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg, factory:
            tg.start_soon(controller.run)
            await reconciled.wait_for(lambda: sum(controller.stats.total.values()) >= 3)
            fake.push_bookmark()
            fake.modify(cm("a"))
            await reconciled.wait_for(lambda: controller.stats.total["success"] >= 2)
            families = parse(metrics)
            tg.cancel_scope.cancel()

    ctl = {"controller": "flaky"}
    assert value(families, "controller_runtime_reconcile_total", result="success", **ctl) == 2
    assert value(families, "controller_runtime_reconcile_total", result="error", **ctl) == 1
    assert value(families, "controller_runtime_reconcile_total", result="requeue_after", **ctl) == 1
    assert value(families, "controller_runtime_reconcile_total", result="requeue", **ctl) == 0
    assert value(families, "controller_runtime_reconcile_errors_total", **ctl) == 1
    assert value(families, "controller_runtime_reconcile_time_seconds_count", **ctl) == 4
    assert value(families, "controller_runtime_max_concurrent_reconciles", **ctl) == 1
    assert value(families, "controller_runtime_active_workers", **ctl) == 0
    assert value(families, "workqueue_adds_total", name="flaky") == 4  # a, b, c, a again

    res = {"resource": "configmaps"}
    assert value(families, "informer_store_objects", **res) == 3
    assert value(families, "informer_synced", **res) == 1
    assert value(families, "informer_lists_total", **res) == 1
    assert value(families, "informer_watches_total", **res) == 1
    assert value(families, "informer_relists_total", **res) == 0
    assert value(families, "informer_expired_total", **res) == 0
    assert value(families, "informer_watch_events_total", type="MODIFIED", **res) == 1
    assert value(families, "informer_watch_events_total", type="BOOKMARK", **res) == 1
    assert value(families, "informer_watch_events_total", type="ADDED", **res) == 0
    age = value(families, "informer_last_watch_event_age_seconds", **res)
    assert age is not None and 0 <= age < TIMEOUT
    handler = {
        "resource": "configmaps",
        "handler": "Enqueue(flaky, informer._controller.mappers.own_key)",
    }
    assert value(families, "informer_handler_buffer_depth", **handler) == 0
    assert value(families, "informer_handler_notifications_total", **handler) == 4
    assert value(families, "informer_handler_failures_total", **handler) == 0


async def test_expired_and_relists_are_counted() -> None:
    fake = FakeListerWatcher()
    factory = fake_factory(fake)
    informer = factory.informer_for(CONFIGMAPS)
    metrics = Metrics(process_metrics=False)
    metrics.add_informer(informer)
    with anyio.fail_after(TIMEOUT):
        async with factory:
            await informer.wait_for_sync()
            await fake.wait_for_watchers(1)
            fake.push_error(410, "Expired")
            await fake.wait_until(lambda: informer.reflector.stats.relists >= 1)
            await fake.wait_for_watchers(1)
            families = parse(metrics)
    res = {"resource": "configmaps"}
    assert value(families, "informer_expired_total", **res) == 1
    assert value(families, "informer_relists_total", **res) == 1
    assert value(families, "informer_lists_total", **res) == 2
    assert value(families, "informer_watch_events_total", type="ERROR", **res) == 1
    assert value(families, "informer_list_watch_errors_total", **res) == 1


@pytest.mark.allow_handler_failures  # the store failure is reported on purpose
async def test_bad_events_suppressed_logs_and_watch_list_fallbacks_are_scraped() -> None:
    """ReflectorStats' bad-event causes, throttled log lines and watch-list fallbacks,
    read from ``/metrics`` over HTTP."""
    fake = FakeListerWatcher(supports_watch_list=False)  # watch-list open: 400 -> fallback

    def transform(obj: Obj) -> Obj:
        if obj["metadata"]["name"] == "poison":
            raise ValueError("cannot transform")
        return obj

    factory = SharedInformerFactory(
        None,
        lister_watcher_factory=lambda resource, **_: fake,
        transform=transform,
        reflector_options={"use_watch_list": True, "backoff_initial": 0.01, "backoff_cap": 0.05},
    )
    informer = factory.informer_for(CONFIGMAPS)
    stats = informer.reflector.stats
    metrics = Metrics(process_metrics=False)
    metrics.add_factory(factory)
    res = {"resource": "configmaps"}
    with anyio.fail_after(TIMEOUT):
        async with serving(metrics) as port:
            before = await scrape(port)
            async with factory:
                await informer.wait_for_sync()
                await fake.wait_for_watchers(1)
                for _ in range(3):
                    fake.push_event({"object": {"metadata": {"resourceVersion": "1"}}})
                fake.push_unknown()
                fake.push_event({"type": "BOOKMARK", "object": {"metadata": {}}})
                fake.create(cm("poison"))
                fake.create(cm("fine"))

                def stored() -> None:
                    fine = informer.indexer.get_by_key("ns/fine")
                    assert fine is not None, "the event after the bad ones is stored"

                await eventually(stored, timeout=TIMEOUT, interval=0.02)
                families = await scrape(port)
    for cause in ("malformed_event", "unknown_type", "no_resource_version", "store_failed"):
        assert value(before, "informer_reflector_bad_events_total", cause=cause, **res) == 0
    assert value(before, "informer_reflector_suppressed_logs_total", **res) == 0
    assert value(before, "informer_reflector_watch_list_fallbacks_total", **res) == 0

    bad = {
        cause: value(families, "informer_reflector_bad_events_total", cause=cause, **res)
        for cause in ("malformed_event", "unknown_type", "no_resource_version", "store_failed")
    }
    assert bad == {
        "malformed_event": 3,
        "unknown_type": 1,
        "no_resource_version": 1,
        "store_failed": 1,
    }
    assert bad == stats.bad_events
    # One line per cause at once; the 2nd and 3rd malformed events within the minute not.
    assert value(families, "informer_reflector_suppressed_logs_total", **res) == 2
    assert stats.logs_suppressed == 2
    assert value(families, "informer_reflector_watch_list_fallbacks_total", **res) == 1
    assert informer.reflector.watch_list_fallback  # the 400 made it permanent


async def test_duplicate_label_values_get_a_suffix_and_registries_are_separate() -> None:
    fakes = [FakeListerWatcher(), FakeListerWatcher()]
    factories = [fake_factory(f) for f in fakes]
    one, two = (Metrics(process_metrics=False) for _ in range(2))
    for factory in factories:
        factory.informer_for(CONFIGMAPS)  # both informers are named "configmaps"
        one.add_factory(factory)
    two.add_factory(factories[0])
    families = parse(one)
    assert value(families, "informer_synced", resource="configmaps") == 0
    assert value(families, "informer_synced", resource="configmaps#2") == 0
    assert value(parse(two), "informer_synced", resource="configmaps#2") is None


class Elector:
    def __init__(self, name: str, leading: bool) -> None:
        self.name = name
        self.leading = leading

    def is_leader(self) -> bool:
        return self.leading


def test_leader_election_master_status() -> None:
    metrics = Metrics(process_metrics=False)
    elector = Elector("my-lease", leading=False)
    metrics.add_elector(elector)
    assert value(parse(metrics), "leader_election_master_status", name="my-lease") == 0
    elector.leading = True
    assert value(parse(metrics), "leader_election_master_status", name="my-lease") == 1


def test_process_metrics_are_registered_in_the_runners_registry() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    names = {f.name for f in registry.collect()}
    assert {"python_info", "python_gc_objects_collected", "workqueue_depth"} <= names


# --------------------------------------------------------------------------- serving


async def test_concurrent_scrapes() -> None:
    metrics = Metrics()
    queue: RateLimitingQueue[str] = RateLimitingQueue(name="q")
    metrics.add_queue(queue)
    queue.add("x")
    results: list[dict[str, list[Sample]]] = []

    async def one(port: int) -> None:
        results.append(await scrape(port))

    with anyio.fail_after(TIMEOUT):
        async with serving(metrics) as port, anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(one, port)
    assert len(results) == 25
    assert all(value(r, "workqueue_depth", name="q") == 1 for r in results)


async def test_openmetrics_is_negotiated() -> None:
    metrics = Metrics(process_metrics=False)
    with anyio.fail_after(TIMEOUT):
        async with serving(metrics) as port:
            status, headers, body = await http_request(
                port,
                b"GET /metrics HTTP/1.1\r\n"
                b"Accept: application/openmetrics-text; version=1.0.0\r\n\r\n",
            )
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


# ----------------------------------------------------------------- real control plane


async def test_scrape_during_an_end_to_end_run(api_client: Any, namespace: str) -> None:
    """A factory and a controller on the real API server, scraped while they work."""

    class Counter(Controller):
        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            return None

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(3):
        await request_json(
            api_client, "POST", path, body={"metadata": {"name": f"cm-{i}"}, "data": {"v": "0"}}
        )
    factory = SharedInformerFactory(api_client, namespace=namespace)
    metrics = Metrics()
    with use_queue_metrics_provider(metrics.queue_metrics):
        controller = Counter(factory, api_client, workers=2)
    metrics.add_factory(factory)
    metrics.add_controller(controller)
    informer = controller.configmaps
    resource = {"resource": informer.name}
    stats = controller.stats
    reconciled = Changes()
    stats.observers.append(lambda outcome, seconds: reconciled.notify())

    with anyio.fail_after(30):
        async with (
            anyio.create_task_group() as tg,
            serving(metrics) as port,
            factory,
        ):
            tg.start_soon(controller.run)
            await reconciled.wait_for(lambda: stats.total["success"] >= 3)
            await request_json(
                api_client, "POST", path, body={"metadata": {"name": "cm-new"}, "data": {}}
            )
            await request_json(
                api_client,
                "PATCH",
                f"{path}/cm-0",
                body={"data": {"v": "1"}},
                content_type="application/merge-patch+json",
            )
            # Each write makes exactly one reconcile (level-triggered, one key each).
            await reconciled.wait_for(
                lambda: stats.total["success"] >= 5 and controller.queue.depth() == 0
            )
            families = await scrape(port)
            tg.cancel_scope.cancel()

    name = {"name": "counter", "controller": "counter"}
    adds = value(families, "workqueue_adds_total", **name)
    assert adds is not None and adds >= 5
    assert value(families, "workqueue_depth", **name) == 0
    assert (value(families, "workqueue_queue_duration_seconds_count", **name) or 0) >= 5
    assert (value(families, "workqueue_work_duration_seconds_count", **name) or 0) >= 5
    assert value(families, "workqueue_retries_total", **name) == 0
    assert value(families, "workqueue_unfinished_work_seconds", **name) == 0
    assert value(families, "workqueue_longest_running_processor_seconds", **name) == 0
    ctl = {"controller": "counter"}
    success = value(families, "controller_runtime_reconcile_total", result="success", **ctl)
    assert success is not None and success >= 5
    assert value(families, "controller_runtime_reconcile_errors_total", **ctl) == 0
    count = value(families, "controller_runtime_reconcile_time_seconds_count", **ctl)
    assert count == success
    assert value(families, "controller_runtime_max_concurrent_reconciles", **ctl) == 2
    assert value(families, "controller_runtime_active_workers", **ctl) == 0
    assert value(families, "informer_store_objects", **resource) == len(informer.indexer) == 4
    assert value(families, "informer_synced", **resource) == 1
    assert value(families, "informer_lists_total", **resource) == 1
    assert value(families, "informer_watches_total", **resource) == 1
    assert value(families, "informer_relists_total", **resource) == 0
    assert value(families, "informer_expired_total", **resource) == 0
    added = value(families, "informer_watch_events_total", type="ADDED", **resource)
    modified = value(families, "informer_watch_events_total", type="MODIFIED", **resource)
    # cm-new; the first list (from the watch cache) may have missed some of cm-0..2 too.
    assert added is not None and 1 <= added <= 4 and modified == 1
    age = value(families, "informer_last_watch_event_age_seconds", **resource)
    assert age is not None and 0 <= age < 30
    handler = {"handler": "Enqueue(counter, informer._controller.mappers.own_key)", **resource}
    assert value(families, "informer_handler_buffer_depth", **handler) == 0
    assert value(families, "informer_handler_notifications_total", **handler) == 5
    assert "process_resident_memory_bytes" in families or "python_info" in families


@pytest.mark.allow_handler_failures  # the invalid event is reported as a failure
async def test_event_recorder_counters_on_metrics(api_client: Any, namespace: str) -> None:
    """A controller's EventRecorderStats are exported (``informer_event*``), written
    to the real API server and scraped over HTTP."""

    class Noting(Controller):
        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            obj = self.configmaps.lister().get_by_key(key)
            if obj is not None and key.partition("/")[2].startswith("cm-"):  # not the CA's
                self.recorder.event(obj, reason="Seen", note="reconciled")
            return None

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(2):
        await request_json(api_client, "POST", path, body={"metadata": {"name": f"cm-{i}"}})
    factory = SharedInformerFactory(api_client, namespace=namespace)
    metrics = Metrics(process_metrics=False)
    controller = Noting(factory, api_client)
    metrics.add_controller(controller)
    reconciled = Changes()
    controller.stats.observers.append(lambda outcome, seconds: reconciled.notify())
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg, serving(metrics) as port, factory:
            tg.start_soon(controller.run)
            await reconciled.wait_for(lambda: controller.recorder.stats.recorded >= 2)
            cm0 = controller.configmaps.lister().get_by_key(f"{namespace}/cm-0")
            assert cm0 is not None
            controller.recorder.event(cm0, type="Error", reason="Seen", note="not a type")
            await controller.recorder.flush()
            families = await scrape(port)
            tg.cancel_scope.cancel()

    ctl = {"controller": "noting"}
    assert value(families, "informer_events_total", outcome="recorded", **ctl) == 2
    assert value(families, "informer_events_total", outcome="invalid", **ctl) == 1
    assert value(families, "informer_events_total", outcome="filtered", **ctl) == 0
    assert value(families, "informer_events_total", outcome="dropped", **ctl) == 0
    assert value(families, "informer_events_aggregated_total", **ctl) == 0
    assert value(families, "informer_event_writes_total", result="success", **ctl) == 2
    assert value(families, "informer_event_writes_total", result="failed", **ctl) == 0
