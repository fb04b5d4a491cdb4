"""One informer per (resource, namespace, selectors) for every controller of a Manager.

``Controller.watch(..., namespace=...)`` watches a namespace other than the controller's
own. Under a Manager with several namespaces, each per-namespace instance asks its own
factory; the factories route the informer of another namespace (or of a cluster-scoped
resource) to the one factory keeping it (``informer/_manager/factories.py``), so the
instances share one watch and one cache. On the real control plane.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from informer import Client, Controller, Manager, Obj, Result, name_of
from informer.resources import CONFIGMAPS, NAMESPACES
from informer.testing import eventually, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

REGISTRY_LABEL = "registry=yes"


class RegistryWatcher(Controller):
    """Reconciles its own ConfigMaps, and all of them again when a registry entry in
    the shared registry namespace changes (the Website operator's pattern)."""

    registry_namespace = ""

    def setup(self) -> None:
        self.reconciled: list[str] = []
        self.configmaps = self.watch(CONFIGMAPS)
        self.registry = self.watch(
            CONFIGMAPS,
            namespace=self.registry_namespace,
            label_selector=REGISTRY_LABEL,
            mapper=lambda _: self.configmaps.lister().keys(),
        )
        self.namespaces = self.watch(NAMESPACES, mapper=lambda _: [])

    async def reconcile(self, key: str) -> Result | None:
        self.reconciled.append(key)
        return None


def configmap(name: str, namespace: str, **labels: str) -> Obj:
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


@asynccontextmanager
async def namespaces(client: Client, base: str, *suffixes: str) -> AsyncIterator[list[str]]:
    names = [f"{base[:50]}-{s}" for s in suffixes]
    for name in names:
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield names
    finally:
        for name in names:
            await client.delete(NAMESPACES, name, missing_ok=True)


async def test_per_namespace_instances_share_the_informer_of_another_namespace(
    api_client: Any, client: Client, namespace: str
) -> None:
    cls = type("Watcher", (RegistryWatcher,), {"registry_namespace": namespace})
    async with namespaces(client, namespace, "a", "b") as (a, b):
        await client.create(configmap("site", a))
        await client.create(configmap("site", b))
        async with run_controllers(api_client, cls, namespace=[a, b]) as manager:
            first, second = manager.controllers
            assert first.registry is second.registry  # one watch, one cache
            assert first.namespaces is second.namespaces  # cluster-scoped: shared too
            assert first.configmaps is not second.configmaps
            registry = [i for i in manager.informers if i is first.registry]
            assert (
                len(registry) == 1 and registry[0].name == f"configmaps@{namespace}[registry=yes]"
            )
            assert len([i for i in manager.informers if i.name == "namespaces"]) == 1
            assert (
                first.registry
                not in manager.factories[0].informers + manager.factories[1].informers
            )

            await eventually(lambda: bool(first.reconciled and second.reconciled))
            before = (len(first.reconciled), len(second.reconciled))
            await client.create(configmap("entry", namespace, registry="yes"))
            await eventually(
                lambda: len(first.reconciled) > before[0] and len(second.reconciled) > before[1]
            )
            assert set(first.reconciled) == {f"{a}/site"}
            assert set(second.reconciled) == {f"{b}/site"}
            # the controllers' client reads that namespace from the shared cache
            [entry] = await first.client.list(
                CONFIGMAPS, namespace=namespace, label_selector=REGISTRY_LABEL
            )
            assert name_of(entry) == "entry"


async def test_a_watch_in_a_namespace_of_the_manager_uses_its_factory(
    api_client: Any, client: Client, namespace: str
) -> None:
    """Instances in namespaces a and b both watching a's ConfigMaps: a's own informer."""
    async with namespaces(client, namespace, "a", "b") as (a, b):
        cls = type("Watcher", (RegistryWatcher,), {"registry_namespace": a})
        manager = Manager(api_client, namespaces=[a, b])
        with pytest.raises(RuntimeError):
            manager.factory  # noqa: B018 - two factories
        built = [
            cls(factory, api_client, name=f"w@{factory.namespace}") for factory in manager.factories
        ]
        assert built[0].registry is built[1].registry
        assert built[0].registry in manager.factories[0].informers
        for controller in built:
            controller.close()
