"""What every ``Controller`` gets for writing: ``owns()``, ``self.client``, ``self.recorder``.

- ``owns(resource)`` is controller-runtime's ``Builder.Owns``: the watched objects enqueue
  their controlling owner of the primary kind (``handler.EnqueueRequestForOwner`` with
  ``OnlyControllerOwner()``): only the ``controller: true`` reference counts, matched by
  kind and API group; a cluster-scoped owner's key has no namespace.
- ``self.client`` is an ``informer.Client`` on the controller's factory, writing as the
  controller (controller-runtime's ``client.WithFieldOwner``), with discovery shared per
  ApiClient (controller-runtime: one RESTMapper per manager).
- ``self.recorder`` is an ``EventRecorder`` run by ``Controller.run`` (so by the Manager
  too): events recorded by a reconcile still in flight at shutdown are written before
  ``run`` returns, within a bounded time (controller-runtime's manager shuts its event
  broadcaster down after the controllers stopped, ``Options.EventBroadcaster``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import anyio
import pytest

from informer import (
    Client,
    Controller,
    EventRecorder,
    Resource,
    Result,
    SharedInformerFactory,
    request_json,
)
from informer._client.discovery import shared_discovery
from informer._controller.controller import EVENT_FLUSH_MIN
from informer._meta.types import Obj
from informer.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS
from informer.testing import FakeListerWatcher, eventually, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

FAST_REFLECTOR = {"backoff_initial": 0.01, "backoff_cap": 0.05, "backoff_jitter": 0.0}


def fake_factory(fakes: Mapping[Resource, FakeListerWatcher]) -> SharedInformerFactory:
    def lister_watcher(resource: Resource, **_: Any) -> FakeListerWatcher:
        return fakes.get(resource) or FakeListerWatcher()

    return SharedInformerFactory(
        None, lister_watcher_factory=lister_watcher, reflector_options=FAST_REFLECTOR
    )


def obj(kind: str, name: str, ns: str | None = "ns", owners: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": name, "ownerReferences": owners or []}
    if ns is not None:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def ref(kind: str, name: str, *, api_version: str = "apps/v1", controller: bool = True) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "controller": controller}


class KeyRecorder(Controller):
    """Records the keys it reconciles; ``setup_watches`` declares the watches."""

    def __init__(self, factory: SharedInformerFactory, api: Any = None, **kwargs: Any) -> None:
        self.keys: list[str] = []
        super().__init__(factory, api, **kwargs)

    async def reconcile(self, key: str) -> Result | None:
        self.keys.append(key)
        return None


@asynccontextmanager
async def running(controller: Controller) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg, controller.factory:
        await tg.start(controller.run)
        yield
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------------- owns


async def test_owns_enqueues_the_controlling_owner_of_the_primary_kind() -> None:
    """``EnqueueRequestForOwner(..., OnlyControllerOwner())``: a non-controller reference,
    another kind, or the same kind in another API group enqueue nothing."""
    deployments = FakeListerWatcher([obj("Deployment", "web"), obj("Deployment", "api")])
    pods = FakeListerWatcher()

    class Owner(KeyRecorder):
        def setup(self) -> None:
            self.watch(DEPLOYMENTS)
            self.owns(PODS)

    controller = Owner(fake_factory({DEPLOYMENTS: deployments, PODS: pods}))
    assert controller.primary_resource == DEPLOYMENTS
    with anyio.fail_after(10):
        async with running(controller):
            await eventually(lambda: sorted(controller.keys) == ["ns/api", "ns/web"])
            pods.create(obj("Pod", "p1", owners=[ref("Deployment", "api", controller=False)]))
            pods.create(obj("Pod", "p2", owners=[ref("ReplicaSet", "api")]))
            pods.create(obj("Pod", "p3", owners=[ref("Deployment", "api", api_version="x/v1")]))
            pods.create(obj("Pod", "p4", owners=[ref("Deployment", "web")]))
            # One worker and FIFO queues: had p1-p3 enqueued ns/api, it came first.
            await eventually(lambda: controller.keys.count("ns/web") == 2)
            assert controller.keys.count("ns/api") == 1
            pods.delete("ns/p4")  # a deleted dependent enqueues its owner too
            await eventually(lambda: controller.keys.count("ns/web") == 3)


async def test_owns_a_cluster_scoped_primary_gives_keys_without_namespace() -> None:
    namespaces = FakeListerWatcher([obj("Namespace", "team-a", ns=None)])
    configmaps = FakeListerWatcher()

    class PerNamespace(KeyRecorder):
        def setup(self) -> None:
            self.watch(NAMESPACES)
            self.owns(CONFIGMAPS)

    controller = PerNamespace(fake_factory({NAMESPACES: namespaces, CONFIGMAPS: configmaps}))
    with anyio.fail_after(10):
        async with running(controller):
            await eventually(lambda: controller.keys == ["team-a"])
            owner = ref("Namespace", "team-a", api_version="v1")
            configmaps.create(obj("ConfigMap", "c", ns="team-a", owners=[owner]))
            await eventually(lambda: controller.keys == ["team-a", "team-a"])


def test_the_primary_is_the_first_watch_with_own_keys() -> None:
    """A watch with a mapper (keys of something else) is not the primary."""

    class Inventory(KeyRecorder):
        def setup(self) -> None:
            self.watch(PODS, mapper=lambda o: [o["metadata"]["namespace"]])
            self.watch(DEPLOYMENTS)
            self.watch(CONFIGMAPS)

    assert Inventory(fake_factory({})).primary_resource == DEPLOYMENTS


@pytest.mark.parametrize(
    ("watches", "error", "message"),
    [
        pytest.param([], RuntimeError, "before self.owns()", id="no-primary"),
        pytest.param(
            [{"resource": PODS, "mapper": lambda o: ["x"]}],
            RuntimeError,
            "without mapper=",
            id="only-mapped-watches",
        ),
        pytest.param(
            [{"resource": Resource("example.com", "v1", "things")}],
            ValueError,
            "has no kind",
            id="primary-without-kind",
        ),
    ],
)
def test_owns_needs_a_primary_with_a_kind(
    watches: list[dict[str, Any]], error: type[Exception], message: str
) -> None:
    class Bad(KeyRecorder):
        def setup(self) -> None:
            for spec in watches:
                self.watch(**spec)
            self.owns(CONFIGMAPS)

    with pytest.raises(error, match=message):
        Bad(fake_factory({}))


async def test_owns_on_the_real_control_plane(api_client: Any, namespace: str) -> None:
    """A ConfigMap owned (controller reference) by a Deployment reconciles the Deployment."""

    class DeploymentOwner(KeyRecorder):
        def setup(self) -> None:
            self.watch(DEPLOYMENTS)
            self.owns(CONFIGMAPS)

    deployment = await request_json(
        api_client,
        "POST",
        DEPLOYMENTS.path(namespace=namespace),
        body={
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        },
    )
    async with run_controllers(api_client, DeploymentOwner, namespace=namespace) as manager:
        [controller] = manager.controllers
        assert isinstance(controller, DeploymentOwner)
        key = f"{namespace}/web"
        await eventually(lambda: controller.keys.count(key) == 1)
        owner = ref("Deployment", "web") | {"uid": deployment["metadata"]["uid"]}
        await Client(api_client).create(
            obj("ConfigMap", "web-config", ns=namespace, owners=[owner])
        )
        await eventually(lambda: controller.keys.count(key) == 2)


# ------------------------------------------------------------------------------- client


class _ApiLike:
    """Stands for an ApiClient (weakly referenceable, hashable)."""


def test_every_controller_has_a_client_on_its_factory_writing_as_itself() -> None:
    factory = fake_factory({})
    api, other_api = _ApiLike(), _ApiLike()
    first = KeyRecorder(factory, api, name="mirror@ns1")
    second = KeyRecorder(factory, api, name="mirror@ns2")
    third = KeyRecorder(factory, other_api, name="mirror@ns3")
    assert first.client.factory is factory and first.client.api_client is api
    assert first.client.field_manager == "mirror" == first.recorder.component
    # One discovery per ApiClient: the controllers of a Manager discover once.
    assert first.client.discovery is second.client.discovery is shared_discovery(api)
    assert third.client.discovery is not first.client.discovery
    # Without an ApiClient (unit tests), a client and a recorder exist all the same.
    alone = KeyRecorder(factory, None, name="odd name!")
    assert alone.client.field_manager == alone.recorder.component == "odd-name"


# ----------------------------------------------------------------------------- recorder


class Announcer(KeyRecorder):
    """Writes through ``self.client`` and records an Event for every ConfigMap."""

    delay: ClassVar[float] = 0.0
    started: ClassVar[anyio.Event]

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> Result | None:
        ns, _, name = key.partition("/")
        cm = self.configmaps.lister().get(name, namespace=ns)
        if cm is None or cm["metadata"].get("annotations"):
            return None
        type(self).started.set()
        await anyio.sleep(self.delay)  # still in flight when the shutdown starts
        cm = await self.client.patch(
            CONFIGMAPS, name, {"metadata": {"annotations": {"seen": "yes"}}}, namespace=ns
        )
        self.recorder.event(cm, reason="Seen", note=f"saw {key}")
        self.keys.append(key)
        return None


async def events_about(api: Any, namespace: str, name: str) -> list[Obj]:
    answer = await request_json(api, "GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
    return [e for e in answer["items"] if e["regarding"]["name"] == name]


async def one_event_about(api: Any, namespace: str, name: str) -> Obj:
    events = await events_about(api, namespace, name)
    assert len(events) == 1, events
    return events[0]


async def test_a_controller_run_alone_writes_its_events(api_client: Any, namespace: str) -> None:
    """No Manager: ``Controller.run`` runs the recorder; writes carry the field manager."""
    Announcer.started = anyio.Event()
    # With data: a server tracks no field of an object created without managed fields.
    await Client(api_client).create(obj("ConfigMap", "hello", ns=namespace) | {"data": {"k": "v"}})
    factory = SharedInformerFactory(api_client, namespace=namespace)
    controller = Announcer(factory, api_client)
    with anyio.fail_after(30):
        async with running(controller):
            event = await eventually(lambda: one_event_about(api_client, namespace, "hello"))
    assert (event["reason"], event["note"]) == ("Seen", f"saw {namespace}/hello")
    assert event["reportingController"] == "announcer"
    cm = await Client(api_client).get(CONFIGMAPS, "hello", namespace=namespace)
    assert "announcer" in {m["manager"] for m in cm["metadata"]["managedFields"]}


async def test_events_recorded_during_shutdown_are_flushed(api_client: Any, namespace: str) -> None:
    """A reconcile in flight when the Manager stops records its Event after the stop
    began; it is on the server once ``run_controllers`` returned."""

    class SlowAnnouncer(Announcer):
        delay = 0.5

    SlowAnnouncer.started = anyio.Event()
    with anyio.fail_after(30):
        async with run_controllers(api_client, SlowAnnouncer, namespace=namespace) as manager:
            [controller] = manager.controllers
            assert isinstance(controller, SlowAnnouncer)
            await Client(api_client).create(obj("ConfigMap", "late", ns=namespace))
            await SlowAnnouncer.started.wait()
            assert controller.keys == []  # the shutdown starts mid-reconcile
    assert controller.keys == [f"{namespace}/late"]
    [event] = await events_about(api_client, namespace, "late")
    assert event["reportingController"] == "slow-announcer"


class ListSink:
    def __init__(self) -> None:
        self.created: list[Obj] = []

    async def create(self, event: Obj) -> Obj:
        await anyio.sleep(0.05)  # a write takes time
        self.created.append(event)
        return event

    async def patch(self, event: Obj, patch: Obj) -> Obj:
        return await self.create(event)


async def test_leaving_the_recorder_by_cancellation_still_writes_the_buffer() -> None:
    """What ``Controller.run`` relies on: its recorder's block is left by cancellation."""
    sink = ListSink()
    recorder = EventRecorder(None, "test", sink=sink)
    with anyio.fail_after(5), anyio.CancelScope() as scope:
        async with recorder:
            for i in range(3):
                recorder.event(obj("ConfigMap", f"c{i}"), reason="Seen", note="x")
            scope.cancel()
            await anyio.sleep_forever()
    assert [e["regarding"]["name"] for e in sink.created] == ["c0", "c1", "c2"]
    recorder.event(obj("ConfigMap", "late"), reason="Seen", note="x")
    assert recorder.stats.dropped == 1  # closed: counted, not buffered forever


class HangingSink:
    """An Event sink whose writes never finish."""

    async def create(self, event: Obj) -> Obj:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def patch(self, event: Obj, patch: Obj) -> Obj:
        return await self.create(event)


async def test_the_final_flush_is_bounded_by_what_is_left_of_the_grace() -> None:
    """An unreachable API server cannot hold the stop: the flush gets the rest of
    ``shutdown_grace``, at least EVENT_FLUSH_MIN, not the recorder's 5 s."""
    configmaps = FakeListerWatcher([obj("ConfigMap", "a")])

    class Noisy(KeyRecorder):
        def setup(self) -> None:
            self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            self.recorder.event(obj("ConfigMap", key), reason="Seen", note="x")
            return await super().reconcile(key)

    controller = Noisy(fake_factory({CONFIGMAPS: configmaps}), shutdown_grace=0.1)
    controller.recorder = EventRecorder(None, "noisy", sink=HangingSink())
    with anyio.fail_after(10):
        async with running(controller):
            await eventually(lambda: controller.keys == ["ns/a"])
            stop = anyio.current_time()
        elapsed = anyio.current_time() - stop
    assert EVENT_FLUSH_MIN <= elapsed < EVENT_FLUSH_MIN + 1.0
    assert controller.recorder.stats.written == 0
