"""The operators guide's examples run as printed (docs/guides/operators.md): the Website
operator is executed as a module and run on the real control plane (the owned ConfigMap
and Deployment, the registry entry in another namespace, status, Events, repairs, the
finalizer's cleanup), and so are the guide's test of it and the owner-reference example
(a summary ConfigMap controlled by its mirror), so the guide cannot drift from the
library."""

from __future__ import annotations

import contextlib
import types
from typing import Any

import pytest
from docs_helpers import DOCS, load_module, python_blocks
from kube_informer_samples.configmap_mirror import CRD_PATH

from informer import (
    AlreadyExists,
    Client,
    Controller,
    NotFound,
    Obj,
    get_condition,
    has_finalizer,
)
from informer.meta import controller_of
from informer.resources import CONFIGMAPS, DEPLOYMENTS, EVENTS
from informer.testing import eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

GUIDE = DOCS / "guides" / "operators.md"

WEBSITE_CRD: Obj = {
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


def guide_module(name: str, section: str, *, index: int = 0) -> types.ModuleType:
    return load_module(name, python_blocks(GUIDE, section=section)[index], GUIDE)


def website(name: str, namespace: str, *, html: str, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Website",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"html": html, "replicas": replicas},
    }


async def registry_namespace(client: Client, name: str) -> None:
    """The operator's registry namespace (shared by the tests of one control plane)."""
    with contextlib.suppress(AlreadyExists):
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def test_the_website_operator_works(api_client: Any, client: Client, namespace: str) -> None:
    module = guide_module("docs_website_operator", "A complete operator")
    operator = module.WebsiteOperator
    assert issubclass(operator, Controller)
    await install_crds(api_client, WEBSITE_CRD)
    registry = module.REGISTRY
    await registry_namespace(client, registry)
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
        # owns(label_selector=): an owned page edited by hand reconciles its site
        await client.patch(CONFIGMAPS, "home", {"data": {"index.html": "x"}}, namespace=namespace)
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


async def test_the_guides_test_of_it_passes(
    api_client: Any, client: Client, namespace: str
) -> None:
    operator = guide_module("docs_website_operator_under_test", "A complete operator")
    await registry_namespace(client, operator.REGISTRY)
    [code] = python_blocks(GUIDE, section="Testing an operator")
    test = types.ModuleType("docs_test_website")
    # what the guide's test imports from the operator's module and its test helpers
    test.__dict__.update(
        WEBSITE_CRD=WEBSITE_CRD, WebsiteOperator=operator.WebsiteOperator, website=website
    )
    exec(compile(code, str(GUIDE), "exec"), test.__dict__)
    await test.test_a_site(api_client, namespace)
    page = await client.get(CONFIGMAPS, "home", namespace=namespace)
    assert page["data"] == {"index.html": "<h1>hi</h1>"}


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
        cm = await summary()  # NotFound (not yet) is retried by eventually
        assert cm["data"] == {"source": "settings"}
        ref = controller_of(cm)
        assert ref and ref["uid"] == created["metadata"]["uid"], cm["metadata"]

    async with run_controllers(api_client, module.MirrorSummary, namespace=namespace):
        await eventually(owned)
        # owns(): an edit of the owned ConfigMap reconciles its mirror, which repairs it
        await client.patch(CONFIGMAPS, "m-summary", {"data": {"source": "x"}}, namespace=namespace)
        await eventually(owned)
