"""The README's "Operators" example runs as printed: its code block is executed as a
module and the Website operator it defines is run on the real control plane (the owned
ConfigMap and Deployment, the registry entry in another namespace, status, Events, the
finalizer's cleanup), so the README cannot drift from the library."""

from __future__ import annotations

import contextlib
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from informer import (
    AlreadyExists,
    Client,
    Controller,
    NotFound,
    Obj,
    get_condition,
    has_finalizer,
)
from informer.resources import CONFIGMAPS, DEPLOYMENTS, EVENTS
from informer.testing import eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

README = Path(__file__).resolve().parents[2] / "README.md"

WEBSITE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "websites.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "websites", "singular": "website", "kind": "Website"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["html"],
                                "properties": {
                                    "html": {"type": "string"},
                                    "replicas": {"type": "integer", "minimum": 0},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def readme_operator() -> types.ModuleType:
    section = README.read_text().split("\n## Operators\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the README's Operators section"
    module = types.ModuleType("readme_operator")
    sys.modules[module.__name__] = module  # for the dataclass/typing machinery, if any
    exec(compile(match.group(1), str(README), "exec"), module.__dict__)
    return module


def website(name: str, namespace: str, *, html: str, replicas: int) -> Obj:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Website",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"html": html, "replicas": replicas},
    }


async def test_the_readme_operator_works(api_client: Any, client: Client, namespace: str) -> None:
    module = readme_operator()
    operator = module.WebsiteOperator
    assert issubclass(operator, Controller)
    await install_crds(api_client, WEBSITE_CRD)
    registry = module.REGISTRY
    with contextlib.suppress(AlreadyExists):  # shared by the tests of one control plane
        await client.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": registry}}
        )
    entry = f"{namespace}.home"

    async def get(resource: Any, name: str, ns: str = namespace) -> Obj:
        return await client.get(resource, name, namespace=ns)

    async def notes() -> list[str]:
        events = await client.list(EVENTS, namespace=namespace)
        return [e["note"] for e in events if e["reason"] == "Synced"]

    async with run_controllers(api_client, operator, namespace=namespace):
        await client.create(website("home", namespace, html="<h1>hi</h1>", replicas=2))
        page = await eventually(lambda: get(CONFIGMAPS, "home"))
        assert page["data"] == {"index.html": "<h1>hi</h1>"}
        assert page["metadata"]["ownerReferences"][0]["kind"] == "Website"
        deploy = await eventually(lambda: get(DEPLOYMENTS, "home"))
        assert deploy["spec"]["replicas"] == 2
        assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"  # the server's default
        listed = await eventually(lambda: get(CONFIGMAPS, entry, registry))
        assert listed["data"]["site"] == f"{namespace}/home"

        async def ready(status: str, reason: str) -> None:
            site = await get(module.WEBSITES, "home")
            assert has_finalizer(site, operator.finalizer)
            condition = get_condition(site, "Ready")
            assert condition and (condition["status"], condition["reason"]) == (status, reason)
            assert site["status"]["observedGeneration"] == site["metadata"]["generation"]

        await eventually(lambda: ready("False", "Progressing"))
        deploy["status"] = {"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}
        await client.update_status(deploy)  # no deployment controller here: the test is one
        await eventually(lambda: ready("True", "Available"))

        site = await get(module.WEBSITES, "home")
        site["spec"]["html"] = "<h1>hello</h1>"
        await client.update(site)

        async def html(text: str) -> None:
            assert (await get(CONFIGMAPS, "home"))["data"] == {"index.html": text}

        await eventually(lambda: html("<h1>hello</h1>"))
        await client.delete(CONFIGMAPS, entry, namespace=registry)  # by hand: repaired
        await eventually(lambda: get(CONFIGMAPS, entry, registry))

        async def synced() -> None:
            written = await notes()
            assert any("created Deployment home" in n for n in written), written
            assert any("updated ConfigMap home" in n for n in written), written
            # the Deployment's desired spec lacks the server's defaults: never rewritten
            assert not any("updated Deployment" in n for n in written), written

        await eventually(synced)
        await client.delete(module.WEBSITES, "home", namespace=namespace)

        async def cleaned_up() -> None:
            for resource, name, ns in (
                (module.WEBSITES, "home", namespace),
                (CONFIGMAPS, entry, registry),
            ):
                try:
                    await client.get(resource, name, namespace=ns)
                except NotFound:
                    continue
                raise AssertionError(f"{name} still exists")

        await eventually(cleaned_up)
