"""``ControlPlane(controller_manager=True)`` (the plugin's ``gc_control_plane``): a real
kube-controller-manager collects garbage, which envtest does not (controller-runtime#880).

Owner references cascade in the background and in the foreground (the owner waits for
its dependents), ``Orphan`` leaves the dependents without their owner reference, a deleted
namespace goes away with its objects, and each namespace gets its ``default``
ServiceAccount. The session's ``control_plane`` runs no controller-manager.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from informer import Client, NotFound, Obj, Resource
from informer.resources import CONFIGMAPS, NAMESPACES, SECRETS, SERVICE_ACCOUNTS
from informer.testing import ControlPlane, eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

WITHIN = 30.0  # the garbage collector acts within a second or two; a loaded machine is slow
HOLD = "test.kube-informer.dev/hold"


@pytest.fixture
async def gc(gc_control_plane: ControlPlane) -> AsyncIterator[tuple[Client, str]]:
    """A Client on the garbage-collecting control plane, and a fresh namespace there."""
    async with gc_control_plane.api_client() as api:
        client = Client(api, field_manager="tests")
        name = f"gc-{secrets.token_hex(4)}"
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        try:
            yield client, name
        finally:
            await client.delete(NAMESPACES, name, missing_ok=True)


def configmap(name: str, namespace: str, owner: Obj | None = None, **meta: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": namespace, **meta}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


async def gone(client: Client, namespace: str, *names: str) -> None:
    left = {o["metadata"]["name"] for o in await client.list(CONFIGMAPS, namespace=namespace)}
    assert not left & set(names), f"still there: {sorted(left & set(names))}"


async def absent(
    client: Client, resource: Resource, name: str, namespace: str | None = None
) -> None:
    try:
        left = await client.get(resource, name, namespace=namespace)
    except NotFound:
        return
    raise AssertionError(f"{resource.plural} {name} still there: {left.get('status')}")


async def test_background_deletion_deletes_the_dependents(gc: tuple[Client, str]) -> None:
    client, ns = gc
    owner = await client.create(configmap("owner", ns))
    await client.create(configmap("copy-1", ns, owner))
    await client.create(configmap("copy-2", ns, owner))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": configmap("token", ns, owner)["metadata"],
    }
    await client.create(secret)
    await client.delete(CONFIGMAPS, "owner", namespace=ns, propagation_policy="Background")
    await eventually(lambda: gone(client, ns, "owner", "copy-1", "copy-2"), timeout=WITHIN)

    await eventually(lambda: absent(client, SECRETS, "token", ns), timeout=WITHIN)


async def test_foreground_deletion_waits_for_the_dependents(gc: tuple[Client, str]) -> None:
    """The owner stays, with a ``deletionTimestamp`` and the ``foregroundDeletion``
    finalizer, while a dependent holds on (a finalizer of its own); it goes once the
    dependent is gone."""
    client, ns = gc
    owner = await client.create(configmap("owner", ns))
    await client.create(configmap("held", ns, owner, finalizers=[HOLD]))
    await client.delete(CONFIGMAPS, "owner", namespace=ns, propagation_policy="Foreground")

    async def dependent_terminating() -> Obj:
        held = await client.get(CONFIGMAPS, "held", namespace=ns)
        assert held["metadata"].get("deletionTimestamp"), held["metadata"]
        return held

    held = await eventually(dependent_terminating, timeout=WITHIN)
    waiting = await client.get(CONFIGMAPS, "owner", namespace=ns)
    assert waiting["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    await client.remove_finalizer(held, HOLD)
    await eventually(lambda: gone(client, ns, "owner", "held"), timeout=WITHIN)


async def test_orphan_deletion_keeps_the_dependents(gc: tuple[Client, str]) -> None:
    client, ns = gc
    owner = await client.create(configmap("owner", ns))
    await client.create(configmap("kept", ns, owner))
    await client.delete(CONFIGMAPS, "owner", namespace=ns, propagation_policy="Orphan")

    async def orphaned() -> None:
        await gone(client, ns, "owner")
        kept = await client.get(CONFIGMAPS, "kept", namespace=ns)
        assert not kept["metadata"].get("ownerReferences"), kept["metadata"]

    await eventually(orphaned, timeout=WITHIN)


async def test_a_deleted_namespace_goes_away_with_its_objects(gc: tuple[Client, str]) -> None:
    client, ns = gc
    await client.create(configmap("settings", ns))

    async def has_default_service_account() -> None:
        await client.get(SERVICE_ACCOUNTS, "default", namespace=ns)

    await eventually(has_default_service_account, timeout=WITHIN)
    await client.delete(NAMESPACES, ns)

    await eventually(lambda: absent(client, NAMESPACES, ns), timeout=WITHIN)


def test_only_the_gc_control_plane_runs_a_controller_manager(
    control_plane: ControlPlane, gc_control_plane: ControlPlane
) -> None:
    """The session's control plane is envtest's: no kube-controller-manager."""
    assert control_plane.controller_manager_pid is None
    assert gc_control_plane.controller_manager_pid is not None
    assert gc_control_plane.controller_manager
