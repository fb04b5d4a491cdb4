"""ApiListerWatcher against a real kube-apiserver + etcd (informer.testing fixtures).

Objects are written with ``request_json``, the same raw path controllers use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from api_helpers import serves_watch_list

from informer._cache.listwatch import ApiListerWatcher
from informer._exceptions import Forbidden, ResourceExpired, api_error_from_status
from informer._meta.resource import Resource
from informer._meta.types import Obj, WatchEvent
from informer._rest.api_client import ApiClient
from informer._rest.request import request_json
from informer.testing.control_plane import ControlPlane

pytestmark = pytest.mark.anyio

CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
DEPLOYMENTS = Resource("apps", "v1", "deployments", kind="Deployment")


async def create(
    api: ApiClient, resource: Resource, namespace: str, name: str, **fields: Any
) -> Obj:
    labels = fields.pop("labels", {})
    body = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name, "labels": labels},
        **fields,
    }
    return await request_json(
        api,
        "POST",
        resource.path(namespace=namespace),
        body=body,
        resource=resource.group_resource,
        namespace=namespace,
    )


async def patch(api: ApiClient, resource: Resource, namespace: str, name: str, body: Obj) -> Obj:
    return await request_json(
        api,
        "PATCH",
        resource.path(name, namespace=namespace),
        body=body,
        content_type="application/merge-patch+json",
        resource=resource.group_resource,
        namespace=namespace,
    )


async def delete(api: ApiClient, resource: Resource, namespace: str, name: str) -> Obj:
    return await request_json(
        api,
        "DELETE",
        resource.path(name, namespace=namespace),
        resource=resource.group_resource,
        namespace=namespace,
    )


def deployment_spec(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
            },
        }
    }


async def next_events(events: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    """The next ``count`` non-BOOKMARK events."""
    got: list[WatchEvent] = []
    async for e in events:
        if e["type"] != "BOOKMARK":
            got.append(e)
            if len(got) == count:
                break
    return got


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


async def test_list_paginates(api_client: ApiClient, namespace: str) -> None:
    for i in range(5):
        await create(api_client, CONFIGMAPS, namespace, f"cm-{i}", data={"i": str(i)})
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace=namespace)
    pages: list[Obj] = []
    token: str | None = None
    with anyio.fail_after(30):
        while True:
            page = await lw.list(limit=2, continue_token=token)
            pages.append(page)
            token = page["metadata"].get("continue")
            if not token:
                break
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    names = [item["metadata"]["name"] for p in pages for item in p["items"]]
    assert names == [f"cm-{i}" for i in range(5)]
    assert pages[0]["kind"] == "ConfigMapList"
    # Every page is a snapshot at the first page's resourceVersion.
    assert {p["metadata"]["resourceVersion"] for p in pages} == {
        pages[0]["metadata"]["resourceVersion"]
    }
    assert "remainingItemCount" not in pages[-1]["metadata"]


async def test_watch_added_modified_deleted(api_client: ApiClient, namespace: str) -> None:
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace=namespace)
    with anyio.fail_after(30):
        rv = (await lw.list())["metadata"]["resourceVersion"]
        async with lw.watch(resource_version=rv, timeout_seconds=60) as events:
            created = await create(api_client, CONFIGMAPS, namespace, "w", data={"k": "1"})
            await patch(api_client, CONFIGMAPS, namespace, "w", {"data": {"k": "2"}})
            await delete(api_client, CONFIGMAPS, namespace, "w")
            got = await next_events(events, 3)
    assert summary(got) == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert got[0]["object"] == created
    assert got[1]["object"]["data"] == {"k": "2"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert rvs == sorted(rvs) and int(rv) < rvs[0]


async def test_label_selector_filters_list_and_watch(api_client: ApiClient, namespace: str) -> None:
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace=namespace, label_selector="app=x")
    with anyio.fail_after(30):
        rv = (await lw.list())["metadata"]["resourceVersion"]
        async with lw.watch(resource_version=rv, timeout_seconds=60) as events:
            await create(api_client, CONFIGMAPS, namespace, "other", labels={"app": "y"})
            await create(api_client, CONFIGMAPS, namespace, "mine", labels={"app": "x"})
            await patch(api_client, CONFIGMAPS, namespace, "other", {"data": {"a": "b"}})
            await patch(api_client, CONFIGMAPS, namespace, "mine", {"data": {"a": "b"}})
            got = await next_events(events, 2)
        page = await lw.list()
    assert summary(got) == [("ADDED", "mine"), ("MODIFIED", "mine")]
    assert [i["metadata"]["name"] for i in page["items"]] == ["mine"]


async def test_field_selector_and_all_namespaces(api_client: ApiClient, namespace: str) -> None:
    await create(api_client, CONFIGMAPS, namespace, "a")
    await create(api_client, CONFIGMAPS, namespace, "b")
    lw = ApiListerWatcher(api_client, CONFIGMAPS, field_selector=f"metadata.namespace={namespace}")
    page = await lw.list()
    assert sorted(i["metadata"]["name"] for i in page["items"]) == ["a", "b"]
    assert page["metadata"].get("selfLink") is None


async def test_deployments(api_client: ApiClient, namespace: str) -> None:
    lw = ApiListerWatcher(api_client, DEPLOYMENTS, namespace=namespace)
    with anyio.fail_after(30):
        first = await lw.list()
        assert first["kind"] == "DeploymentList" and first["items"] == []
        async with lw.watch(resource_version=first["metadata"]["resourceVersion"]) as events:
            await create(api_client, DEPLOYMENTS, namespace, "web", **deployment_spec("web"))
            await patch(api_client, DEPLOYMENTS, namespace, "web", {"spec": {"replicas": 3}})
            got = await next_events(events, 2)
        page = await lw.list()
    assert summary(got) == [("ADDED", "web"), ("MODIFIED", "web")]
    assert got[1]["object"]["spec"]["replicas"] == 3
    assert got[0]["object"]["apiVersion"] == "apps/v1"
    assert [d["metadata"]["name"] for d in page["items"]] == ["web"]


async def test_bookmark_arrives_before_watch_timeout(api_client: ApiClient, namespace: str) -> None:
    """The watch cache sends a bookmark ~2 s before a watch's deadline (only once the
    resourceVersion moved past the watch's start), then the server ends the watch: the
    iterator yields the BOOKMARK and ends normally.

    The bookmark timer is best effort (a busy server may skip it), so up to three short
    watches are tried; every one of them must end normally."""
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace=namespace)
    with anyio.fail_after(60):
        rv = (await lw.list())["metadata"]["resourceVersion"]
        for attempt in range(3):
            async with lw.watch(resource_version=rv, timeout_seconds=6) as events:
                await create(api_client, CONFIGMAPS, namespace, f"a{attempt}")
                got = [e async for e in events]
            assert got[0]["type"] == "ADDED"
            assert {e["type"] for e in got[1:]} <= {"BOOKMARK"}
            rv = got[-1]["object"]["metadata"]["resourceVersion"]
            if got[-1]["type"] == "BOOKMARK":
                break
    bookmark = got[-1]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["kind"] == "ConfigMap"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(
        got[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_list_initial_events_end_with_bookmark(
    api_client: ApiClient, namespace: str
) -> None:
    if not await serves_watch_list(api_client, namespace):
        pytest.skip("this server does not serve watch-list (Kubernetes 1.33 without WatchList)")
    for name in ("a", "b"):
        await create(api_client, CONFIGMAPS, namespace, name)
    lw = ApiListerWatcher(api_client, CONFIGMAPS, namespace=namespace)
    got: list[WatchEvent] = []
    with anyio.fail_after(30):
        async with lw.watch(
            send_initial_events=True, resource_version_match="NotOlderThan", timeout_seconds=60
        ) as events:
            async for e in events:
                got.append(e)
                if e["type"] == "BOOKMARK":
                    annotations = e["object"]["metadata"].get("annotations", {})
                    if annotations.get("k8s.io/initial-events-end") == "true":
                        break
    assert sorted(summary(got[:-1])) == [("ADDED", "a"), ("ADDED", "b")]


async def test_non_admin_is_forbidden(control_plane: ControlPlane, namespace: str) -> None:
    user = control_plane.user("lw-nobody")
    async with user.api_client() as api:
        lw = ApiListerWatcher(api, CONFIGMAPS, namespace=namespace)
        with pytest.raises(Forbidden) as info:
            await lw.list()
        with pytest.raises(Forbidden) as watch_info:
            async with lw.watch():
                pass
    err = info.value
    assert str(err).startswith(f"forbidden: cannot list configmaps in namespace '{namespace}'")
    assert (err.verb, err.resource, err.namespace, err.status) == (
        "list",
        "configmaps",
        namespace,
        403,
    )
    assert 'User "lw-nobody" cannot list resource "configmaps"' in str(err)
    assert str(watch_info.value).startswith(
        f"forbidden: cannot watch configmaps in namespace '{namespace}'"
    )


@pytest.fixture(scope="module")
async def uncached_plane() -> AsyncIterator[ControlPlane]:
    """A control plane without the watch cache: old resourceVersions go to etcd."""
    async with ControlPlane(apiserver_args=["--watch-cache=false"]) as cp:
        yield cp


async def test_too_old_resource_version_after_compaction(uncached_plane: ControlPlane) -> None:
    async with uncached_plane.api_client() as api:
        ns = "compaction"
        await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        first = await create(api, CONFIGMAPS, ns, "a", data={"n": "0"})
        await create(api, CONFIGMAPS, ns, "b")
        old_rv = first["metadata"]["resourceVersion"]
        for n in range(1, 4):
            await patch(api, CONFIGMAPS, ns, "a", {"data": {"n": str(n)}})
        lw = ApiListerWatcher(api, CONFIGMAPS, namespace=ns)
        page = await lw.list(limit=1)
        await patch(api, CONFIGMAPS, ns, "b", {"data": {"n": "1"}})  # the page is now old
        await uncached_plane.compact_etcd()

        with pytest.raises(ResourceExpired) as info:
            await lw.list(resource_version=old_rv, resource_version_match="Exact")
        assert info.value.status == 410
        with pytest.raises(ResourceExpired):
            await lw.list(limit=1, continue_token=page["metadata"]["continue"])

        # etcd answers a watch from a compacted revision after the HTTP 200: the 410 comes
        # as an ERROR event, which is yielded as it is, and then the watch ends.
        with anyio.fail_after(30):
            async with lw.watch(resource_version=old_rv, timeout_seconds=30) as events:
                got = [e async for e in events]
        assert [(e["type"], e["object"]["code"]) for e in got] == [("ERROR", 410)]
        assert isinstance(api_error_from_status(410, got[0]["object"]), ResourceExpired)
