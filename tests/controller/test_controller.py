"""Controller: events -> keys -> work queue -> reconcile; retries, requeues, drain.

Informers run on ``FakeListerWatcher`` through the factory's ``lister_watcher_factory``
seam; one test runs on the real control plane. Every test is bounded by
``anyio.fail_after`` and waits for conditions, never for arbitrary sleeps.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import structlog.testing

from informer._cache.factory import SharedInformerFactory
from informer._cache.informer import SharedIndexInformer
from informer._controller.controller import Controller
from informer._controller.mappers import own_key, owner_key
from informer._controller.reconcile import ReconcileStats, Result
from informer._exceptions import ResourceExpired
from informer._meta.objects import DeletedFinalStateUnknown
from informer._meta.resource import CONFIGMAPS, PODS, Resource
from informer._meta.types import Obj
from informer._queue.ratelimit import ExponentialFailureRateLimiter
from informer._rest.request import request_json
from informer.testing._fake import FakeListerWatcher

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
FAST_REFLECTOR = {"backoff_initial": 0.01, "backoff_cap": 0.05, "backoff_jitter": 0.0}


def cm(name: str, ns: str = "ns", **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
        "data": {},
    }


def pod(name: str, owners: list[Obj], ns: str = "ns") -> Obj:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "ownerReferences": owners}}


def ref(kind: str, name: str, *, controller: bool = True, api_version: str = "apps/v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "controller": controller}


def fast_limiter() -> ExponentialFailureRateLimiter:
    return ExponentialFailureRateLimiter(base=0.001, cap=0.01)


def fake_factory(
    fakes: Mapping[Resource, FakeListerWatcher], resync_period: float = 0.0
) -> SharedInformerFactory:
    def lister_watcher(
        resource: Resource,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
    ) -> FakeListerWatcher:
        return fakes[resource]

    return SharedInformerFactory(
        None,
        resync_period=resync_period,
        lister_watcher_factory=lister_watcher,
        reflector_options=FAST_REFLECTOR,
    )


class Changes:
    """Awaitable "something changed": tests wait for predicates, not for time."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def until_notified(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checking it again at each ``notify()``."""
        while not predicate():
            await self._event.wait()


Reconciler = Callable[["Recorder", str], Awaitable[Result | None]]


class Recorder(Controller):
    """Watches what it is told to and records every reconcile."""

    def __init__(
        self,
        factory: SharedInformerFactory,
        watches: Iterable[Mapping[str, Any]] = ({"resource": CONFIGMAPS},),
        reconciler: Reconciler | None = None,
        **kwargs: Any,
    ) -> None:
        self.watch_specs = list(watches)
        self.reconciler = reconciler
        self.calls: list[str] = []
        self.changes = Changes()
        self.informers_by_resource: dict[str, SharedIndexInformer] = {}
        kwargs.setdefault("rate_limiter", fast_limiter())
        super().__init__(factory, None, **kwargs)

    def setup(self) -> None:
        for spec in self.watch_specs:
            informer = self.watch(**spec)
            self.informers_by_resource[informer.name] = informer

    async def reconcile(self, key: str) -> Result | None:
        self.calls.append(key)
        self.changes.notify()
        try:
            if self.reconciler is not None:
                return await self.reconciler(self, key)
            return None
        finally:
            self.changes.notify()

    async def wait_calls(self, predicate: Callable[[list[str]], bool]) -> None:
        await self.changes.until_notified(lambda: predicate(self.calls))


@asynccontextmanager
async def running(
    controller: Controller, *, factory_first: bool = True
) -> AsyncIterator[anyio.CancelScope]:
    """Run the factory and the controller; yields the controller's cancel scope."""
    scope = anyio.CancelScope()

    async def run_controller() -> None:
        with scope:
            await controller.run()

    async with anyio.create_task_group() as tg:
        if factory_first:
            async with controller.factory:
                tg.start_soon(run_controller)
                yield scope
                tg.cancel_scope.cancel()
        else:
            tg.start_soon(run_controller)
            async with controller.factory:
                yield scope
                tg.cancel_scope.cancel()


# ----------------------------------------------------------------------------- mappers


def test_own_key_of_objects_and_tombstones() -> None:
    assert own_key(cm("a")) == ["ns/a"]
    assert own_key({"metadata": {"name": "node-1"}}) == ["node-1"]
    assert own_key(DeletedFinalStateUnknown("ns/gone", None)) == ["ns/gone"]


def test_owner_key_filters_kind_group_and_controller() -> None:
    p = pod(
        "p",
        [
            ref("ReplicaSet", "rs1"),
            ref("ReplicaSet", "rs2", controller=False),
            ref("Deployment", "d1"),
            ref("ReplicaSet", "other-group", api_version="example.com/v1"),
        ],
    )
    assert owner_key("ReplicaSet")(p) == ["ns/rs1", "ns/other-group"]
    assert owner_key("ReplicaSet", api_version="apps/v1")(p) == ["ns/rs1"]
    # Only the group is compared: an owner referenced at another version still matches.
    assert owner_key("ReplicaSet", api_version="apps/v2")(p) == ["ns/rs1"]
    assert owner_key("ReplicaSet", api_version="apps/v1", controller_only=False)(p) == [
        "ns/rs1",
        "ns/rs2",
    ]
    assert owner_key("Deployment")(p) == ["ns/d1"]
    assert owner_key("StatefulSet")(p) == []
    assert owner_key("Node", controller_only=False, namespaced=False)(
        pod("q", [ref("Node", "n1", api_version="v1")])
    ) == ["n1"]
    assert owner_key("Namespace", api_version="v1")(
        pod("q", [ref("Namespace", "x", api_version="v1")])
    ) == ["ns/x"]
    assert owner_key("ReplicaSet")({"metadata": {"name": "no-owners", "namespace": "ns"}}) == []


def test_owner_key_group() -> None:
    p = pod(
        "p",
        [
            ref("Website", "w1", api_version="example.com/v1"),
            ref("Website", "w2", api_version="example.com/v2beta1", controller=False),
            ref("Website", "other", api_version="other.example.com/v1", controller=False),
            ref("Secret", "core", api_version="v1", controller=False),
        ],
    )
    assert owner_key("Website", group="example.com")(p) == ["ns/w1"]
    assert owner_key("Website", group="example.com", controller_only=False)(p) == ["ns/w1", "ns/w2"]
    assert owner_key("Website", api_version="example.com/v1", controller_only=False)(p) == [
        "ns/w1",
        "ns/w2",
    ]
    # A CRD version may be any DNS label; only the group is compared.
    assert owner_key("Website", api_version="example.com/version1")(p) == ["ns/w1"]
    assert owner_key("Secret", group="", controller_only=False)(p) == ["ns/core"]
    assert owner_key("Secret", api_version="v1", controller_only=False)(p) == ["ns/core"]
    assert owner_key("Secret", group="apps", controller_only=False)(p) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_version": "example.com"},
         r"api_version='example.com' has no version.*pass group='example.com'"),
        ({"api_version": "apps"}, r"api_version='apps' has no version.*pass group='apps'"),
        ({"api_version": "example.com/"}, r"not an apiVersion.*pass group="),
        ({"api_version": "/v1"}, r"not an apiVersion"),
        ({"api_version": "a/b/v1"}, r"not an apiVersion"),
        ({"group": "apps/v1"}, r"group='apps/v1' is an apiVersion.*pass group='apps'"),
        ({"group": "apps", "api_version": "apps/v1"}, r"pass group= or api_version=, not both"),
    ],
    ids=["dns-group-as-version", "bare-group", "empty-version", "empty-group", "two-slashes",
         "version-in-group", "both"],
)  # fmt: skip
def test_owner_key_rejects_ambiguous_groups(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        owner_key("Website", **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith("owner_key('Website'): ")


def test_result_validation() -> None:
    assert Result() == Result(requeue=False, requeue_after=None)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="requeue_after"):
            Result(requeue_after=bad)


async def test_controller_name_defaults_to_kebab_case_and_can_be_overridden() -> None:
    class HTTPRouteReconciler(Controller):
        async def reconcile(self, key: str) -> Result | None:
            return None

    class Named(Controller):
        name = "custom-name"

    factory = fake_factory({})
    assert HTTPRouteReconciler.name == "http-route-reconciler"
    assert Recorder.name == "recorder"
    assert Named.name == "custom-name"
    c = HTTPRouteReconciler(factory, None)
    assert c.name == "http-route-reconciler"
    assert c.queue.name == "http-route-reconciler"
    c2 = HTTPRouteReconciler(factory, None, name="routes@ns1")
    assert (c2.name, c2.queue.name, HTTPRouteReconciler.name) == (
        "routes@ns1",
        "routes@ns1",
        "http-route-reconciler",
    )
    with pytest.raises(ValueError, match="workers"):
        HTTPRouteReconciler(factory, None, workers=0)


def test_class_attributes_tune_every_instance_unless_overridden() -> None:
    """``workers``, ``max_retries``, ``shutdown_grace`` and ``rate_limiter`` declared on the
    class are honoured (they used to be overwritten by the constructor's defaults)."""
    made: list[ExponentialFailureRateLimiter] = []

    def limiter() -> ExponentialFailureRateLimiter:
        made.append(ExponentialFailureRateLimiter(base=0.5, cap=2.0))
        return made[-1]

    class Tuned(Controller):
        workers = 3
        max_retries = 2
        shutdown_grace = 0.5
        rate_limiter = limiter

        async def reconcile(self, key: str) -> Result | None:
            return None

    factory = fake_factory({})
    a, b = Tuned(factory, None), Tuned(factory, None)
    assert (a.workers, a.max_retries, a.shutdown_grace, a.stats.workers) == (3, 2, 0.5, 3)
    assert made == [a.queue.rate_limiter, b.queue.rate_limiter]  # one limiter per instance
    assert made[0] is not made[1]
    own = fast_limiter()
    c = Tuned(factory, None, workers=1, max_retries=0, shutdown_grace=2.0, rate_limiter=own)
    assert (c.workers, c.max_retries, c.shutdown_grace, c.stats.workers) == (1, 0, 2.0, 1)
    assert c.queue.rate_limiter is own and len(made) == 2
    assert (Tuned.workers, Tuned.max_retries, Tuned.shutdown_grace) == (3, 2, 0.5)
    plain = Recorder(factory, watches=())
    assert (plain.workers, plain.max_retries, plain.shutdown_grace) == (1, 15, 5.0)


@pytest.mark.parametrize(
    ("attribute", "value", "error"),
    [
        ("workers", 0, "workers must be an int >= 1"),
        ("workers", 2.5, "workers must be an int >= 1"),
        ("max_retries", -1, "max_retries must be an int >= 0"),
        ("shutdown_grace", -1.0, "shutdown_grace must be seconds >= 0"),
    ],
    ids=["workers-zero", "workers-float", "retries-negative", "grace-negative"],
)
def test_bad_class_attributes_are_rejected_naming_the_class(
    attribute: str, value: object, error: str
) -> None:
    cls = type("Bad", (Controller,), {attribute: value})
    with pytest.raises(ValueError, match=f"Bad: {error}"):
        cls(fake_factory({}), None)


def test_a_shared_limiter_instance_as_class_attribute_is_refused() -> None:
    class Shared(Controller):
        rate_limiter = fast_limiter()  # type: ignore[assignment]

    with pytest.raises(TypeError, match="must be a factory"):
        Shared(fake_factory({}), None)


async def test_watch_shares_informers_and_rejects_selectors_on_an_informer() -> None:
    fake = FakeListerWatcher()
    factory = fake_factory({CONFIGMAPS: fake})
    first = Recorder(factory)
    informer = factory.informer_for(CONFIGMAPS)
    assert first.informers == [informer]
    with pytest.raises(ValueError, match="selector"):
        Recorder(factory, watches=[{"resource": informer, "label_selector": "a=b"}])
    second = Recorder(
        factory, watches=[{"resource": informer, "indexers": {"by-x": lambda o: ["x"]}}]
    )
    assert second.informers == [informer]
    assert "by-x" in informer.indexer.indexers


# ------------------------------------------------------------------------- events -> keys


@pytest.mark.parametrize("factory_first", [True, False], ids=["factory-first", "controller-first"])
async def test_own_keys_for_add_update_delete(factory_first: bool) -> None:
    fake = FakeListerWatcher([cm("a"), cm("b")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}))
    with anyio.fail_after(TIMEOUT):
        async with running(controller, factory_first=factory_first):
            await controller.wait_calls(lambda c: sorted(c) == ["ns/a", "ns/b"])
            fake.modify(cm("a", labels={"x": "1"}))
            await controller.wait_calls(lambda c: c.count("ns/a") == 2)
            fake.create(cm("c", ns="other"))
            await controller.wait_calls(lambda c: "other/c" in c)
            fake.delete("ns/b")
            await controller.wait_calls(lambda c: c.count("ns/b") == 2)
    assert controller.stats.total["success"] == len(controller.calls)


async def test_owner_keys_from_owner_references() -> None:
    pods = FakeListerWatcher(
        [pod("p1", [ref("ReplicaSet", "rs1")]), pod("p2", [ref("ReplicaSet", "rs1")])]
    )
    controller = Recorder(
        fake_factory({PODS: pods}),
        watches=[{"resource": PODS, "mapper": owner_key("ReplicaSet", api_version="apps/v1")}],
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: c == ["ns/rs1"])
            # The owner changes: both the old and the new owner are reconciled.
            pods.modify(pod("p1", [ref("ReplicaSet", "rs2")]))
            await controller.wait_calls(lambda c: "ns/rs2" in c and c.count("ns/rs1") == 2)
            pods.create(pod("orphan", []))
            pods.delete("ns/p2")
            await controller.wait_calls(lambda c: c.count("ns/rs1") == 3)
    assert set(controller.calls) == {"ns/rs1", "ns/rs2"}


async def test_custom_mapper_and_predicate() -> None:
    fake = FakeListerWatcher([cm("a", labels={"team": "x"}), cm("b"), cm("c", ns="ns2")])
    controller = Recorder(
        fake_factory({CONFIGMAPS: fake}),
        watches=[
            {
                "resource": CONFIGMAPS,
                "mapper": lambda obj: [f"inventory/{obj['metadata']['namespace']}"],
                "predicate": lambda obj: "team" in (obj["metadata"].get("labels") or {}),
            }
        ],
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: c == ["inventory/ns"])
            fake.create(cm("d", ns="ns3", labels={"team": "y"}))
            await controller.wait_calls(lambda c: "inventory/ns3" in c)
            # b does not match the predicate: no reconcile for it.
            fake.modify(cm("b", annotations={"x": "y"}))
            # a stops matching: enqueued once more (as a delete) so it can be cleaned up.
            fake.modify(cm("a"))
            await controller.wait_calls(lambda c: c.count("inventory/ns") == 2)
    assert sorted(set(controller.calls)) == ["inventory/ns", "inventory/ns3"]


async def test_tombstone_is_unwrapped_before_mapping() -> None:
    fake = FakeListerWatcher([cm("a", labels={"owner": "team-a"}), cm("b")])
    seen: list[Any] = []

    def mapper(obj: Obj) -> list[str]:
        seen.append(obj)
        return [f"owners/{(obj['metadata'].get('labels') or {}).get('owner', 'none')}"]

    controller = Recorder(
        fake_factory({CONFIGMAPS: fake}), watches=[{"resource": CONFIGMAPS, "mapper": mapper}]
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: sorted(c) == ["owners/none", "owners/team-a"])
            # The watch fails with 410 and "a" is deleted meanwhile: the relist delivers
            # a DeletedFinalStateUnknown tombstone for it.
            seen.clear()
            fake.push_error(410, "Expired")
            fake.delete("ns/a")
            await controller.wait_calls(lambda c: c.count("owners/team-a") == 2)
    assert seen, "the mapper was called"
    assert all(isinstance(obj, dict) for obj in seen), seen
    assert any(obj["metadata"]["name"] == "a" for obj in seen)


async def test_resync_updates_are_enqueued() -> None:
    fake = FakeListerWatcher([cm("a")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}, resync_period=1.0))
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: c == ["ns/a", "ns/a"])
    assert len(fake.list_calls()) == 1, "resync replays the cache, it never relists"


# ------------------------------------------------------------------- results and retries


@pytest.mark.allow_handler_failures
async def test_success_forgets_failures() -> None:
    async def fail_once(c: Recorder, key: str) -> Result | None:
        if len(c.calls) == 1:
            raise RuntimeError("transient")
        return None

    fake = FakeListerWatcher([cm("a")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=fail_once)
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: len(c) == 2)
            await controller.changes.until_notified(lambda: controller.stats.total["success"] == 1)
            assert controller.queue.num_requeues("ns/a") == 0
    assert controller.stats.total["error"] == 1
    assert controller.stats.errors == 1


@pytest.mark.allow_handler_failures
async def test_errors_are_retried_rate_limited_then_dropped() -> None:
    async def always_fail(c: Recorder, key: str) -> Result | None:
        raise RuntimeError(f"boom {len(c.calls)}")

    fake = FakeListerWatcher([cm("a")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=always_fail, max_retries=3)
    with structlog.testing.capture_logs() as logs, anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.changes.until_notified(lambda: controller.stats.dropped == 1)
            assert controller.queue.num_requeues("ns/a") == 0  # forgotten when dropped
            assert controller.queue.depth() == 0
            # A new event starts over.
            fake.modify(cm("a", labels={"x": "1"}))
            await controller.changes.until_notified(lambda: controller.stats.dropped == 2)
    assert controller.calls == ["ns/a"] * 8  # (1 attempt + 3 retries) twice
    failed = [e for e in logs if e["event"] == "reconcile.failed"]
    dropped = [e for e in logs if e["event"] == "reconcile.dropped"]
    assert [e["retry"] for e in failed] == [1, 2, 3, 1, 2, 3]
    assert all(e["log_level"] == "warning" and e["exc_info"] for e in failed)
    assert len(dropped) == 2 and dropped[0]["log_level"] == "error"
    assert dropped[0]["retries"] == 3 and "boom" in dropped[0]["error"]
    assert controller.stats.total["error"] == 8


@pytest.mark.allow_handler_failures
async def test_max_retries_zero_drops_at_once() -> None:
    async def always_fail(c: Recorder, key: str) -> Result | None:
        raise RuntimeError("boom")

    controller = Recorder(
        fake_factory(
            {CONFIGMAPS: FakeListerWatcher([cm("a")])},
        ),
        reconciler=always_fail,
        max_retries=0,
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.changes.until_notified(lambda: controller.stats.dropped == 1)
    assert controller.calls == ["ns/a"]


async def test_reconcile_context_is_bound() -> None:
    log = structlog.get_logger("test")

    async def log_something(c: Recorder, key: str) -> Result | None:
        log.info("inside")
        return None

    controller = Recorder(
        fake_factory({CONFIGMAPS: FakeListerWatcher([cm("a")])}), reconciler=log_something
    )
    with (
        structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs,
        anyio.fail_after(TIMEOUT),
    ):
        async with running(controller):
            await controller.changes.until_notified(lambda: controller.stats.total["success"] == 1)
    inside = [e for e in logs if e["event"] == "inside"]
    assert inside == [
        {"event": "inside", "log_level": "info", "controller": "recorder", "key": "ns/a"}
    ]


async def test_requeue_after_runs_again_after_the_delay() -> None:
    times: list[float] = []

    async def later_once(c: Recorder, key: str) -> Result | None:
        times.append(anyio.current_time())
        return Result(requeue_after=0.3) if len(times) == 1 else None

    controller = Recorder(
        fake_factory({CONFIGMAPS: FakeListerWatcher([cm("a")])}), reconciler=later_once
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: len(c) == 2)
            assert controller.queue.num_requeues("ns/a") == 0
    assert times[1] - times[0] >= 0.3
    assert controller.stats.total["requeue_after"] == 1
    assert controller.stats.total["success"] == 1


async def test_requeue_true_runs_again_rate_limited() -> None:
    async def requeue_twice(c: Recorder, key: str) -> Result | None:
        return Result(requeue=True) if len(c.calls) <= 2 else None

    controller = Recorder(
        fake_factory({CONFIGMAPS: FakeListerWatcher([cm("a")])}), reconciler=requeue_twice
    )
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: len(c) == 3)
            await controller.changes.until_notified(lambda: controller.stats.total["success"] == 1)
            assert controller.queue.num_requeues("ns/a") == 0
    assert controller.stats.total["requeue"] == 2


@pytest.mark.allow_handler_failures
async def test_invalid_return_value_is_an_error() -> None:
    async def bad(c: Recorder, key: str) -> Any:
        return "done"

    controller = Recorder(
        fake_factory({CONFIGMAPS: FakeListerWatcher([cm("a")])}), reconciler=bad, max_retries=0
    )
    with structlog.testing.capture_logs() as logs, anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.changes.until_notified(lambda: controller.stats.dropped == 1)
    assert any("TypeError" in e.get("error", "") for e in logs)


# ------------------------------------------------------------------------------ workers


async def test_workers_never_share_a_key() -> None:
    release_a = anyio.Event()
    in_flight: set[str] = set()
    overlap: list[str] = []
    max_parallel = 0

    async def slow(c: Recorder, key: str) -> Result | None:
        nonlocal max_parallel
        if key in in_flight:
            overlap.append(key)
        in_flight.add(key)
        max_parallel = max(max_parallel, len(in_flight))
        try:
            if key == "ns/a" and c.calls.count("ns/a") == 1:
                await release_a.wait()
            else:
                await anyio.sleep(random.uniform(0, 0.003))
        finally:
            in_flight.discard(key)
        return None

    names = [f"k{i}" for i in range(12)]
    fake = FakeListerWatcher([cm("a"), *(cm(n) for n in names)])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=slow, workers=4)
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: "ns/a" in c)
            # "a" changes while it is being reconciled: it waits for its worker.
            fake.modify(cm("a", labels={"v": "1"}))
            fake.modify(cm("a", labels={"v": "2"}))
            await controller.changes.until_notified(lambda: controller.queue.depth() >= 1)
            # The other workers keep going with other keys (and many more events).
            for round_ in range(5):
                for n in names:
                    fake.modify(cm(n, labels={"round": str(round_)}))
            await controller.wait_calls(lambda c: all(f"ns/{n}" in c for n in names))
            assert controller.calls.count("ns/a") == 1
            release_a.set()
            await controller.wait_calls(lambda c: c.count("ns/a") == 2)
            await controller.changes.until_notified(
                lambda: controller.queue.depth() == 0 and not in_flight
            )
    assert overlap == []
    assert max_parallel > 1
    assert controller.calls.count("ns/a") == 2  # the two modifications collapsed into one


async def test_workers_assigned_before_run_are_the_workers_run_starts() -> None:
    """As the options say: ``workers`` takes effect at ``run``, and the stats report it."""
    both = anyio.Event()
    in_flight: set[str] = set()

    async def meet(c: Recorder, key: str) -> Result | None:
        in_flight.add(key)
        if len(in_flight) == 2:
            both.set()
        await both.wait()  # only two workers at once can get past this
        return None

    fake = FakeListerWatcher([cm("a"), cm("b")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=meet)
    controller.workers = 2
    assert controller.options.workers == 2
    with anyio.fail_after(TIMEOUT):
        async with running(controller):
            await controller.wait_calls(lambda c: len(c) == 2)
            await both.wait()
            assert controller.stats.workers == 2


# ---------------------------------------------------------------------- sync and shutdown


async def test_waits_for_sync_before_the_first_reconcile() -> None:
    fake = FakeListerWatcher([cm(f"o{i}") for i in range(50)])
    fake.fail_next_list(ResourceExpired("expired", reason="Expired"), times=1)
    fake.fail_next_list(RuntimeError("list failed once more"), times=1)
    store_sizes: list[int] = []

    async def check(c: Recorder, key: str) -> Result | None:
        store_sizes.append(len(c.informers[0].indexer))
        assert c.has_synced()
        return None

    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=check)
    assert not controller.has_synced()
    with anyio.fail_after(TIMEOUT):
        async with controller.factory, anyio.create_task_group() as tg:
            await tg.start(controller.run)
            assert controller.has_synced()
            assert controller.calls == []  # started() comes before any reconcile
            assert controller.queue.depth() == 50
            await controller.wait_calls(lambda c: len(c) == 50)
            tg.cancel_scope.cancel()
    assert store_sizes[0] == 50
    assert controller.stats.total["success"] == 50


async def test_graceful_drain_completes_the_in_flight_reconcile() -> None:
    started = anyio.Event()
    release = anyio.Event()
    completed: list[str] = []

    async def blocking(c: Recorder, key: str) -> Result | None:
        started.set()
        await release.wait()
        await anyio.lowlevel.checkpoint()
        completed.append(key)
        return None

    fake = FakeListerWatcher([cm("a"), cm("b"), cm("c")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=blocking)
    finished = anyio.Event()
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await controller.run()
        finished.set()

    with anyio.fail_after(TIMEOUT):
        async with controller.factory, anyio.create_task_group() as tg:
            tg.start_soon(run)
            await started.wait()
            scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert not finished.is_set(), "run() waits for the in-flight reconcile"
            assert controller.queue.shutting_down()
            release.set()
            await finished.wait()
            tg.cancel_scope.cancel()
    assert completed == ["ns/a"]  # finished; b and c, still queued, were not started
    assert controller.calls == ["ns/a"]
    assert controller.stats.total["success"] == 1


async def test_drain_is_bounded_by_the_grace() -> None:
    started = anyio.Event()
    cancelled: list[str] = []

    async def stuck(c: Recorder, key: str) -> Result | None:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(key)
            raise
        return None

    controller = Recorder(
        fake_factory({CONFIGMAPS: FakeListerWatcher([cm("a")])}), reconciler=stuck
    )
    controller.shutdown_grace = 0.2
    scope = anyio.CancelScope()
    with structlog.testing.capture_logs() as logs, anyio.fail_after(TIMEOUT):
        async with controller.factory:
            async with anyio.create_task_group() as tg:

                async def run() -> None:
                    with scope:
                        await controller.run()

                tg.start_soon(run)
                await started.wait()
                t0 = anyio.current_time()
                scope.cancel()
            elapsed = anyio.current_time() - t0
    assert cancelled == ["ns/a"]
    assert 0.2 <= elapsed < 2.0
    assert any(e["event"] == "controller.drain_timeout" for e in logs)
    assert not any(controller.stats.total.values()), controller.stats.total


async def test_cancel_before_sync_returns_at_once() -> None:
    fake = FakeListerWatcher([cm("a")])
    controller = Recorder(fake_factory({CONFIGMAPS: fake}))  # the factory never starts
    with anyio.fail_after(TIMEOUT):
        with anyio.move_on_after(0.05):
            await controller.run()
    assert controller.queue.shutting_down()
    assert controller.calls == []
    with pytest.raises(RuntimeError, match="already started"):
        await controller.run()


def test_stats_observers() -> None:
    stats = ReconcileStats(workers=2)
    seen: list[tuple[str, float]] = []
    stats.observers.append(lambda outcome, seconds: seen.append((outcome, seconds)))
    stats.observe("success", 0.5)
    stats.observe("error", 0.25)
    assert seen == [("success", 0.5), ("error", 0.25)]
    assert stats.total["success"] == 1 and stats.errors == 1
    assert stats.duration_seconds_sum == 0.75 and stats.duration_seconds_count == 2


# ---------------------------------------------------------------------- real API server


async def test_reconciles_configmaps_on_the_real_control_plane(
    api_client: Any, namespace: str
) -> None:
    class ConfigMapWatcher(Controller):
        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS)
            self.seen: list[tuple[str, str | None]] = []
            self.changes = Changes()

        async def reconcile(self, key: str) -> Result | None:
            ns, _, name = key.partition("/")
            obj = self.configmaps.lister().get(name, namespace=ns)
            self.seen.append((key, None if obj is None else obj["data"]["v"]))
            self.changes.notify()
            return None

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await request_json(
        api_client, "POST", path, body={"metadata": {"name": "before"}, "data": {"v": "0"}}
    )
    factory = SharedInformerFactory(api_client, namespace=namespace)
    controller = ConfigMapWatcher(factory, api_client, workers=2)
    with anyio.fail_after(30):
        async with running(controller):
            await controller.changes.until_notified(
                lambda: (f"{namespace}/before", "0") in controller.seen
            )
            await request_json(
                api_client, "POST", path, body={"metadata": {"name": "after"}, "data": {"v": "1"}}
            )
            await controller.changes.until_notified(
                lambda: (f"{namespace}/after", "1") in controller.seen
            )
            await request_json(
                api_client,
                "PATCH",
                f"{path}/after",
                body={"data": {"v": "2"}},
                content_type="application/merge-patch+json",
            )
            await controller.changes.until_notified(
                lambda: (f"{namespace}/after", "2") in controller.seen
            )
            await request_json(api_client, "DELETE", f"{path}/after")
            await controller.changes.until_notified(
                lambda: (f"{namespace}/after", None) in controller.seen
            )


@pytest.mark.allow_handler_failures
async def test_requeue_does_not_spend_the_retry_budget() -> None:
    fake = FakeListerWatcher([cm("a")])

    async def reconciler(c: Recorder, key: str) -> Result | None:
        if len(c.calls) <= 3:
            return Result(requeue=True)  # "not ready yet, poll again"
        if len(c.calls) == 4:
            raise RuntimeError("transient")  # the first real failure
        return None

    controller = Recorder(fake_factory({CONFIGMAPS: fake}), reconciler=reconciler, max_retries=1)
    with anyio.fail_after(10):
        async with running(controller):
            await controller.wait_calls(lambda calls: len(calls) == 5)
    assert controller.stats.dropped == 0
