"""Each sample runs as a ServiceAccount bound to exactly the ClusterRole generated for it
(``informer.rbac``) on the real control plane, through a scenario that makes every write
it declares: a missing grant is a 403, which fails the startup (a list) or a reconcile
(the pytest plugin fails the test). And an undeclared write fails the test in strict mode
before any request."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from api_helpers import write_kubeconfig
from deploy_helpers import config_hash, create_workload, object_at
from kube_informer_samples import ConfigMapMirror, ConfigMapReloader, DeploymentInventory
from kube_informer_samples.configmap_mirror import MIRRORS
from kube_informer_samples.deployment_inventory import INVENTORY_NAME

from informer import Controller, new_api_client, request_json
from informer.rbac import Access, UndeclaredAccess, controller_needs, role_documents
from informer.resources import CONFIGMAPS
from informer.testing import eventually, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

RBAC = "/apis/rbac.authorization.k8s.io/v1"
WAIT = 30.0


@asynccontextmanager
async def as_its_role(
    api: Any, control_plane: Any, namespace: str, tmp_path: Path, cls: type[Controller]
) -> AsyncIterator[Any]:
    """An ApiClient authenticated as a new ServiceAccount bound to exactly the ClusterRole
    generated for ``cls`` (removed on exit)."""
    account = "sample"
    name = f"sample-{secrets.token_hex(4)}"
    docs = role_documents(controller_needs(cls), name=name, service_account=(namespace, account))
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding"]
    accounts = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    await request_json(api, "POST", accounts, body={"metadata": {"name": account}})
    for doc in docs:
        plural = "clusterroles" if doc["kind"] == "ClusterRole" else "clusterrolebindings"
        await request_json(api, "POST", f"{RBAC}/{plural}", body=doc)
    try:
        token = await request_json(
            api,
            "POST",
            f"{accounts}/{account}/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", control_plane, {"token": token["status"]["token"]}
        )
        user = f"system:serviceaccount:{namespace}:{account}"
        first = docs[0]["rules"][0]

        async def bound() -> None:  # the authorizer sees new bindings a moment later
            review = await request_json(
                api,
                "POST",
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                body={
                    "spec": {
                        "user": user,
                        "resourceAttributes": {
                            "verb": first["verbs"][0],
                            "group": first["apiGroups"][0],
                            "resource": first["resources"][0],
                        },
                    }
                },
            )
            assert review["status"].get("allowed"), review["status"]

        await eventually(bound, timeout=10, interval=0.05)
        async with await new_api_client(kubeconfig=str(kubeconfig)) as sa_api:
            yield sa_api
    finally:
        await request_json(api, "DELETE", f"{RBAC}/clusterrolebindings/{name}")
        await request_json(api, "DELETE", f"{RBAC}/clusterroles/{name}")


def at(api: Any, path: str, check: Callable[[dict[str, Any]], Any]) -> Any:
    return eventually(object_at(api, path, check), timeout=WAIT, interval=0.05)


@pytest.fixture
async def mirror_crd(api_client: Any) -> None:
    """The ConfigMapMirror CRD installed and served (the mirror's runner checks it)."""
    from kube_informer_samples.configmap_mirror import CRD_PATH

    from informer.testing import install_crds

    await install_crds(api_client, CRD_PATH)


async def test_configmap_reloader_as_its_role(
    api_client: Any, control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    async with (
        as_its_role(api_client, control_plane, namespace, tmp_path, ConfigMapReloader) as sa,
        run_controllers(sa, ConfigMapReloader, namespace=namespace),
    ):
        await create_workload(api_client, namespace)
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
        await at(api_client, path, lambda d: config_hash(d))  # patched


async def test_deployment_inventory_as_its_role(
    api_client: Any, control_plane: Any, namespace: str, tmp_path: Path
) -> None:
    inventory = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
    deployment = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    async with (
        as_its_role(api_client, control_plane, namespace, tmp_path, DeploymentInventory) as sa,
        run_controllers(sa, DeploymentInventory, namespace=namespace),
    ):
        await create_workload(api_client, namespace)
        await at(api_client, inventory, lambda c: "web" in c.get("data", {}))  # created
        await request_json(
            api_client,
            "PATCH",
            deployment,
            body={"spec": {"replicas": 2}},
            content_type="application/merge-patch+json",
        )
        await at(api_client, inventory, lambda c: "replicas: 2" in c["data"]["web"])  # updated
        await request_json(api_client, "DELETE", deployment)
        await at(api_client, inventory, lambda c: c == {})  # deleted


async def test_configmap_mirror_as_its_role(
    api_client: Any, control_plane: Any, namespace: str, tmp_path: Path, mirror_crd: None
) -> None:
    other = f"{namespace[:50]}-copy"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    copy = f"/api/v1/namespaces/{other}/configmaps/app-config"
    mirror = MIRRORS.path("m", namespace=namespace)
    try:
        async with (
            as_its_role(api_client, control_plane, namespace, tmp_path, ConfigMapMirror) as sa,
            run_controllers(sa, ConfigMapMirror),
        ):
            await create_workload(api_client, namespace)
            await request_json(
                api_client,
                "POST",
                MIRRORS.path(namespace=namespace),
                body={
                    "apiVersion": MIRRORS.api_version,
                    "kind": "ConfigMapMirror",
                    "metadata": {"name": "m"},
                    "spec": {"source": "app-config", "targetNamespaces": [other]},
                },
            )
            await at(api_client, copy, lambda c: c.get("data") == {"LOG_LEVEL": "info"})
            await at(api_client, mirror, lambda m: m.get("status", {}).get("syncedNamespaces"))
            await request_json(
                api_client,
                "PATCH",
                f"/api/v1/namespaces/{namespace}/configmaps/app-config",
                body={"data": {"LOG_LEVEL": "debug"}},
                content_type="application/merge-patch+json",
            )
            await at(api_client, copy, lambda c: c.get("data") == {"LOG_LEVEL": "debug"})
            await request_json(api_client, "DELETE", mirror)
            await at(api_client, mirror, lambda m: m == {})  # finalizer removed
            await at(api_client, copy, lambda c: c == {})  # copy deleted
    finally:
        await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")


class WritesWithoutSayingSo(Controller):
    writes: ClassVar[tuple[Access, ...]] = ()

    def setup(self) -> None:
        self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        if name == "trigger":
            await self.client.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "made", "namespace": namespace},
                }
            )


async def test_an_undeclared_write_fails_the_test(
    api_client: Any, namespace: str, handler_failures: list[Any]
) -> None:
    async with run_controllers(api_client, WritesWithoutSayingSo, namespace=namespace):
        await request_json(
            api_client,
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body={"metadata": {"name": "trigger"}},
        )

        def refused() -> Any:
            [failure, *_] = handler_failures
            return failure

        failure = await eventually(refused, timeout=WAIT, retry_on=(ValueError,))
    assert failure.kind == "reconcile" and isinstance(failure.error, UndeclaredAccess)
    assert "create configmaps" in str(failure.error)
    with pytest.raises(Exception, match="not found"):
        await request_json(api_client, "GET", f"/api/v1/namespaces/{namespace}/configmaps/made")
