"""The operators guide's examples run as printed (docs/guides/operators.md): the
condensed mirror operator is executed as a module and run on the real control plane
(copies, status, an Event, the finalizer's cleanup), and so is the owner-reference
example (a summary ConfigMap controlled by its mirror), so the guide cannot drift from
the library."""

from __future__ import annotations

from typing import Any

import pytest
from docs_helpers import DOCS, load_module, python_blocks

from controllers.configmap_mirror import CRD_PATH
from informer import Client, Controller, NotFound, get_condition
from informer.meta import controller_of
from informer.resources import CONFIGMAPS, EVENTS, NAMESPACES
from informer.testing import eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

GUIDE = DOCS / "guides" / "operators.md"


def guide_module(name: str, section: str) -> Any:
    [code] = python_blocks(GUIDE, section=section)
    return load_module(name, code, GUIDE)


async def test_the_condensed_operator_works(api_client: Any, namespace: str) -> None:
    module = guide_module("docs_operator", "A complete operator, condensed")
    operator = module.MiniMirror
    assert issubclass(operator, Controller)
    await install_crds(api_client, CRD_PATH)
    client = Client(api_client)
    target = f"{namespace[:40]}-target"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}})
    source = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}
    source["metadata"] = {"name": "settings", "namespace": namespace}
    await client.create(source)

    async def copy_data() -> dict[str, str] | None:
        try:
            cm = await client.get(CONFIGMAPS, "settings", namespace=target, cached=False)
        except NotFound:
            return None
        return dict(cm.get("data") or {})

    async def copied(data: dict[str, str] | None) -> None:
        assert await copy_data() == data

    try:
        async with run_controllers(api_client, operator):
            mirror = {"apiVersion": "mirror.informer.dev/v1alpha1", "kind": "ConfigMapMirror"}
            mirror["metadata"] = {"name": "m", "namespace": namespace}
            mirror["spec"] = {"source": "settings", "targetNamespaces": [target]}
            await client.create(mirror)
            await eventually(lambda: copied({"a": "1"}))

            async def ready() -> None:
                m = await client.get(module.MIRRORS, "m", namespace=namespace, cached=False)
                condition = get_condition(m, "Ready")
                assert condition and condition["status"] == "True", m.get("status")
                assert m["status"]["observedGeneration"] == m["metadata"]["generation"]

            await eventually(ready)
            await client.patch(CONFIGMAPS, "settings", {"data": {"a": "2"}}, namespace=namespace)
            await eventually(lambda: copied({"a": "2"}))

            async def synced_event() -> None:
                events = await client.list(EVENTS, namespace=namespace, cached=False)
                assert [e for e in events if e["reason"] == "Synced"], events

            await eventually(synced_event)
            await client.delete(module.MIRRORS, "m", namespace=namespace)
            await eventually(lambda: copied(None))
    finally:
        await client.delete(NAMESPACES, target, missing_ok=True)


async def test_the_owner_reference_example_works(api_client: Any, namespace: str) -> None:
    module = guide_module("docs_owner", "Owner references")
    await install_crds(api_client, CRD_PATH)
    client = Client(api_client)
    mirror = {"apiVersion": "mirror.informer.dev/v1alpha1", "kind": "ConfigMapMirror"}
    mirror["metadata"] = {"name": "m", "namespace": namespace}
    mirror["spec"] = {"source": "settings", "targetNamespaces": []}
    created = await client.create(mirror)

    async def summary() -> dict[str, Any]:
        return await client.get(CONFIGMAPS, "m-summary", namespace=namespace, cached=False)

    async def owned() -> None:
        try:
            cm = await summary()
        except NotFound as exc:
            raise AssertionError("no summary yet") from exc
        assert cm["data"] == {"source": "settings"}
        ref = controller_of(cm)
        assert ref and ref["uid"] == created["metadata"]["uid"], cm["metadata"]

    async with run_controllers(api_client, module.MirrorSummary, namespace=namespace):
        await eventually(owned)
        # owns(): an edit of the owned ConfigMap reconciles its mirror, which repairs it
        await client.patch(CONFIGMAPS, "m-summary", {"data": {"source": "x"}}, namespace=namespace)
        await eventually(owned)
