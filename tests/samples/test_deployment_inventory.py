"""The Deployment inventory: pure helpers, then end to end on the real control plane.

The controller runs in-process on a SharedInformerFactory scoped to the test's
namespace; the tests observe the inventory ConfigMap through the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import yaml
from kube_informer_samples.deployment_inventory import (
    INVENTORY_LABELS,
    INVENTORY_NAME,
    DeploymentInventory,
    deployment_entry,
    desired_inventory,
    render_template,
)

from informer import Client, NotFound, Result, SharedInformerFactory
from informer.cache import strip_managed_fields
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import eventually

Obj = dict[str, Any]

WITHIN = 5.0  # seconds: "reflects changes within seconds"
POLL = 0.05  # seconds between reads of the inventory


def make_deployment(
    name: str,
    *,
    image: str = "nginx:1.27",
    replicas: int = 1,
    pull: str = "IfNotPresent",
    init_image: str | None = None,
    namespace: str | None = None,
) -> Obj:
    pod_spec: Obj = {"containers": [{"name": "main", "image": image, "imagePullPolicy": pull}]}
    if init_image:
        pod_spec["initContainers"] = [
            {"name": "init", "image": init_image, "imagePullPolicy": "Always"}
        ]
    meta: Obj = {"name": name, "labels": {"app": name, "team": "t1"}}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


# ------------------------------------------------------------------------ pure helpers


def test_entry_lists_images_replicas_pull_policy_labels_and_selector() -> None:
    d = make_deployment("web", image="nginx:1.27", replicas=3, init_image="busybox:1.36")
    entry = yaml.safe_load(deployment_entry(d))
    assert entry == {
        "replicas": 3,
        "images": ["busybox:1.36", "nginx:1.27"],
        "containers": [{"name": "main", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}],
        "initContainers": [{"name": "init", "image": "busybox:1.36", "imagePullPolicy": "Always"}],
        "labels": {"app": "web", "team": "t1"},
        "selector": {"matchLabels": {"app": "web"}},
    }


def test_entry_is_deterministic() -> None:
    a = make_deployment("web")
    b = make_deployment("web")
    b["metadata"]["labels"] = dict(reversed(list(a["metadata"]["labels"].items())))
    assert deployment_entry(a) == deployment_entry(b)


def test_desired_inventory_sorted_with_owner_references() -> None:
    ds = [make_deployment("b"), make_deployment("a")]
    for i, d in enumerate(ds):
        d["metadata"].update(namespace="ns", uid=f"uid-{i}")
    inv = desired_inventory("ns", ds)
    assert inv["metadata"]["name"] == INVENTORY_NAME
    assert inv["metadata"]["namespace"] == "ns"
    assert inv["metadata"]["labels"] == dict(INVENTORY_LABELS)
    assert list(inv["data"]) == ["a", "b"]
    assert inv["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "a", "uid": "uid-1"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "b", "uid": "uid-0"},
    ]


def test_template_values_cannot_inject_yaml() -> None:
    obj = render_template("a: ${x}\nb: ${y}\n", x='evil\nc: "injected"', y="{not: a map}")
    assert obj == {"a": 'evil\nc: "injected"', "b": "{not: a map}"}
    with pytest.raises(KeyError):
        render_template("a: ${missing}\n")


# ----------------------------------------------------------------------------- e2e helpers


async def inventory(client: Client, namespace: str) -> Obj | None:
    try:
        return await client.get(CONFIGMAPS, INVENTORY_NAME, namespace=namespace)
    except NotFound:
        return None


def entries(inv: Obj | None) -> dict[str, Obj]:
    if inv is None:
        return {}
    return {k: yaml.safe_load(v) for k, v in (inv.get("data") or {}).items()}


def inventory_shows(
    client: Client, namespace: str, condition: Callable[[Obj | None], bool], what: str
) -> Callable[[], Awaitable[Obj | None]]:
    """A check for ``eventually``: the inventory, read through the API, satisfies
    ``condition`` (``what``); returns it."""

    async def check() -> Obj | None:
        inv = await inventory(client, namespace)
        assert condition(inv), f"{what}; inventory: {inv}"
        return inv

    return check


@asynccontextmanager
async def running_inventory(api: Any, namespace: str) -> AsyncIterator[DeploymentInventory]:
    factory = SharedInformerFactory(api, namespace=namespace, transform=strip_managed_fields)
    controller = DeploymentInventory(factory, api)
    async with factory, anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            await tg.start(controller.run)
        try:
            yield controller
        finally:
            tg.cancel_scope.cancel()


def owners(inv: Obj | None) -> list[tuple[str, str]]:
    refs = (inv or {}).get("metadata", {}).get("ownerReferences") or []
    return [(r["name"], r["uid"]) for r in refs]


# ------------------------------------------------------------------------------ e2e tests


@pytest.mark.anyio
async def test_reflects_creates_updates_and_deletes(
    api_client: Any, client: Client, namespace: str
) -> None:
    async with running_inventory(api_client, namespace) as controller:
        assert await inventory(client, namespace) is None  # no Deployment, no inventory

        a = await client.create(make_deployment("a", replicas=2, namespace=namespace))
        inv = await eventually(
            inventory_shows(client, namespace, lambda i: "a" in entries(i), "a listed"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert entries(inv)["a"] == {
            "replicas": 2,
            "images": ["nginx:1.27"],
            "containers": [
                {"name": "main", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}
            ],
            "labels": {"app": "a", "team": "t1"},
            "selector": {"matchLabels": {"app": "a"}},
        }
        assert owners(inv) == [("a", a["metadata"]["uid"])]
        assert inv is not None
        ref = inv["metadata"]["ownerReferences"][0]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert not ref.get("controller")
        assert inv["metadata"]["labels"] == dict(INVENTORY_LABELS)

        b = await client.create(
            make_deployment("b", image="redis:7", pull="Always", namespace=namespace)
        )
        inv = await eventually(
            inventory_shows(client, namespace, lambda i: set(entries(i)) == {"a", "b"}, "b"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert entries(inv)["b"]["containers"][0]["imagePullPolicy"] == "Always"
        assert owners(inv) == [("a", a["metadata"]["uid"]), ("b", b["metadata"]["uid"])]

        # Update: scale and change the image.
        await client.patch(DEPLOYMENTS, "a", {"spec": {"replicas": 5}}, namespace=namespace)
        await eventually(
            inventory_shows(
                client, namespace, lambda i: entries(i).get("a", {}).get("replicas") == 5, "scale"
            ),
            timeout=WITHIN,
            interval=POLL,
        )
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "main", "image": "nginx:1.28", "imagePullPolicy": "Never"}
                        ]
                    }
                }
            }
        }
        await client.patch(DEPLOYMENTS, "a", patch, namespace=namespace, patch_type="strategic")
        inv = await eventually(
            inventory_shows(
                client,
                namespace,
                lambda i: entries(i).get("a", {}).get("images") == ["nginx:1.28"],
                "the new image",
            ),
            timeout=WITHIN,
            interval=POLL,
        )
        assert entries(inv)["a"]["containers"][0]["imagePullPolicy"] == "Never"

        # Delete one, then the last: the inventory goes with the last Deployment.
        await client.delete(DEPLOYMENTS, "a", namespace=namespace)
        inv = await eventually(
            inventory_shows(client, namespace, lambda i: set(entries(i)) == {"b"}, "a gone"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert owners(inv) == [("b", b["metadata"]["uid"])]
        await client.delete(DEPLOYMENTS, "b", namespace=namespace)
        await eventually(
            inventory_shows(client, namespace, lambda i: i is None, "inventory deleted"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert controller.stats.errors == 0
        assert controller.stats.dropped == 0


@pytest.mark.anyio
async def test_recreated_when_deleted_by_hand(
    api_client: Any, client: Client, namespace: str
) -> None:
    await client.create(make_deployment("web", namespace=namespace))
    async with running_inventory(api_client, namespace):
        first = await eventually(
            inventory_shows(client, namespace, lambda i: i is not None, "first inventory"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert first is not None
        await client.delete(CONFIGMAPS, INVENTORY_NAME, namespace=namespace)
        again = await eventually(
            inventory_shows(
                client,
                namespace,
                lambda i: i is not None and i["metadata"]["uid"] != first["metadata"]["uid"],
                "the inventory recreated",
            ),
            timeout=WITHIN,
            interval=POLL,
        )
        assert entries(again) == entries(first)
        assert owners(again) == owners(first)


@pytest.mark.anyio
async def test_repaired_when_edited_by_hand(
    api_client: Any, client: Client, namespace: str
) -> None:
    await client.create(make_deployment("web", namespace=namespace))
    async with running_inventory(api_client, namespace):
        good = await eventually(
            inventory_shows(client, namespace, lambda i: i is not None, "first inventory"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert good is not None
        await client.patch(
            CONFIGMAPS,
            INVENTORY_NAME,
            {
                "data": {"web": "tampered", "extra": "x"},
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "someone", "mine": "yes"},
                    "annotations": {"note": "kept"},
                    "ownerReferences": None,
                },
            },
            namespace=namespace,
        )
        fixed = await eventually(
            inventory_shows(
                client,
                namespace,
                lambda i: entries(i) == entries(good) and bool(owners(i)),
                "repair",
            ),
            timeout=WITHIN,
            interval=POLL,
        )
        assert fixed is not None
        assert owners(fixed) == owners(good)
        assert fixed["metadata"]["labels"] == {**INVENTORY_LABELS, "mine": "yes"}
        assert fixed["metadata"]["annotations"] == {"note": "kept"}


@pytest.mark.anyio
async def test_takes_over_a_stale_inventory_at_start(
    api_client: Any, client: Client, namespace: str
) -> None:
    await client.create(make_deployment("web", replicas=4, namespace=namespace))
    stale = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": INVENTORY_NAME, "namespace": namespace},
        "data": {"gone": "old"},
    }
    await client.create(stale)
    async with running_inventory(api_client, namespace):
        inv = await eventually(
            inventory_shows(client, namespace, lambda i: set(entries(i)) == {"web"}, "takeover"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert entries(inv)["web"]["replicas"] == 4


@pytest.mark.anyio
async def test_unchanged_namespace_is_not_rewritten(
    api_client: Any, client: Client, namespace: str
) -> None:
    await client.create(make_deployment("web", namespace=namespace))
    async with running_inventory(api_client, namespace) as controller:
        inv = await eventually(
            inventory_shows(client, namespace, lambda i: i is not None, "first inventory"),
            timeout=WITHIN,
            interval=POLL,
        )
        assert inv is not None
        # A Deployment change the inventory does not show: reconciled, nothing written.
        done = controller.stats.total["success"]
        await client.patch(
            DEPLOYMENTS, "web", {"metadata": {"annotations": {"x": "y"}}}, namespace=namespace
        )

        def reconciled() -> None:
            assert controller.stats.total["success"] > done, "a reconcile"

        await eventually(reconciled, timeout=WITHIN, interval=0.02)
        after = await inventory(client, namespace)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == inv["metadata"]["resourceVersion"]


@pytest.mark.anyio
async def test_a_conflict_from_a_stale_cache_requeues_the_namespace(
    api_client: Any, client: Client, namespace: str
) -> None:
    """docs/guides/samples.md, "Deployment inventory": the inventory is replaced with PUT
    at its cached ``resourceVersion``, and a 409 (the cached copy is older than the
    server's) requeues the namespace (``Result(requeue=True)``) instead of overwriting
    the newer version."""
    deployment = await client.create(make_deployment("web", namespace=namespace))
    stale = await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": INVENTORY_NAME, "namespace": namespace},
            "data": {"old": "x"},
        }
    )
    newer = await client.patch(
        CONFIGMAPS, INVENTORY_NAME, {"data": {"edited": "y"}}, namespace=namespace
    )
    factory = SharedInformerFactory(api_client, namespace=namespace)
    controller = DeploymentInventory(factory, api_client)
    # The caches as a lagging informer would hold them (the factory is never started).
    controller.deployments.indexer.add(deployment)
    controller.inventories.indexer.add(stale)
    with anyio.fail_after(WITHIN):
        result = await controller.reconcile(namespace)
    assert result == Result(requeue=True)
    current = await client.get(CONFIGMAPS, INVENTORY_NAME, namespace=namespace)
    assert current["metadata"]["resourceVersion"] == newer["metadata"]["resourceVersion"]
    assert current["data"] == {"old": "x", "edited": "y"}  # not overwritten
