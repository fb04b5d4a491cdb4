"""``Controller.watch(..., namespace=...)`` / ``owns(..., namespace=...)``: a watch in a
namespace other than the factory's; and a controller's handlers leave the informers it
watched when it stops (a shared informer outlives it)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from informer import Controller, Obj, Result, SharedInformerFactory
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import FakeListerWatcher, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


class Scopes:
    """A lister-watcher factory recording each informer's namespace."""

    def __init__(self) -> None:
        self.fakes: dict[tuple[str, str | None], FakeListerWatcher] = {}

    def __call__(self, resource: Any, *, namespace: str | None, **_: Any) -> FakeListerWatcher:
        fake = FakeListerWatcher()
        self.fakes[(resource.plural, namespace)] = fake
        return fake


def cm(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
    }


class CrossNamespace(Controller):
    def setup(self) -> None:
        self.keys: list[str] = []
        self.deployments = self.watch(DEPLOYMENTS)
        self.registry = self.watch(CONFIGMAPS, namespace="registry", mapper=lambda _: ["ns/all"])
        self.everywhere = self.owns(CONFIGMAPS, namespace=None)

    async def reconcile(self, key: str) -> Result | None:
        self.keys.append(key)
        return None


async def test_watches_in_other_namespaces() -> None:
    scopes = Scopes()
    factory = SharedInformerFactory(None, namespace="ns", lister_watcher_factory=scopes)
    controller = CrossNamespace(factory, None)
    assert set(scopes.fakes) == {
        ("deployments", "ns"),
        ("configmaps", "registry"),
        ("configmaps", None),
    }
    assert controller.registry is not controller.everywhere
    async with factory, anyio.create_task_group() as tg:
        await tg.start(controller.run)
        scopes.fakes[("configmaps", "registry")].create(cm("entry", "registry"))
        await eventually(lambda: controller.keys == ["ns/all"])
        tg.cancel_scope.cancel()


async def test_an_informer_given_takes_no_namespace() -> None:
    factory = SharedInformerFactory(None, lister_watcher_factory=Scopes())
    informer = factory.informer_for(CONFIGMAPS)

    class Given(Controller):
        def setup(self) -> None:
            self.watch(informer, namespace="elsewhere")

    with pytest.raises(ValueError, match="namespace/label_selector"):
        Given(factory, None)


async def test_a_stopped_controller_leaves_the_informers_it_watched() -> None:
    factory = SharedInformerFactory(None, namespace="ns", lister_watcher_factory=Scopes())
    controller = CrossNamespace(factory, None)
    informers = controller.informers
    assert all(len(i.listeners) == 1 for i in informers)
    async with factory, anyio.create_task_group() as tg:
        await tg.start(controller.run)
        tg.cancel_scope.cancel()
    assert all(i.listeners == [] for i in informers)
    controller.close()  # idempotent
    fresh = SharedInformerFactory(None, namespace="ns", lister_watcher_factory=Scopes())
    never_run = CrossNamespace(fresh, None)
    never_run.close()
    assert all(i.listeners == [] for i in never_run.informers)
