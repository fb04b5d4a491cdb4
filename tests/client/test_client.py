"""``informer.Client`` against the real control plane (kube-apiserver 1.36 + etcd).

Each test names the controller-runtime / client-go behaviour it matches. Requests are
counted by wrapping ``request_json`` where the client module looks it up (``api_calls``),
so "served from the cache" is asserted as "no request was sent". A stale cache cannot be
produced on demand by a real informer (its watch is milliseconds behind), so the tests of
what happens on a stale cache feed the factory's informer from a ``FakeListerWatcher``
into which the test pushes real objects read from the server.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from api_calls import ApiCalls

from informer import (
    AlreadyExists,
    ApiError,
    Client,
    Conflict,
    NotFound,
    Obj,
    OperationResult,
    Resource,
    ResourceNotServed,
    SharedInformerFactory,
    request_json,
)
from informer._client.wait import DeleteLedger
from informer.resources import CONFIGMAPS, CUSTOM_RESOURCE_DEFINITIONS, DEPLOYMENTS, NAMESPACES
from informer.testing import FakeListerWatcher, eventually, install_crds

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

FAST = {"backoff_initial": 0.05, "backoff_cap": 0.5}


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    return ApiCalls(monkeypatch)


def configmap(name: str, namespace: str, data: dict[str, str] | None = None, **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "data": data or {},
    }


def widget_crd(group: str, *, status: bool = True) -> Obj:
    version: Obj = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [version],
        },
    }


async def install_crd(api: Any, crd: Obj) -> Resource:
    """Install ``crd``; return once its resource is served (``install_crds``)."""
    [resource] = await install_crds(api, crd)
    return resource


@pytest.fixture(scope="module")
async def widgets(api_client: Any) -> AsyncIterator[Resource]:
    """A namespaced ``Widget`` custom resource with a status subresource."""
    crd = widget_crd(f"t{secrets.token_hex(4)}.client.test")
    resource = await install_crd(api_client, crd)
    yield resource
    await request_json(
        api_client, "DELETE", CUSTOM_RESOURCE_DEFINITIONS.path(crd["metadata"]["name"])
    )


def widget(resource: Resource, name: str, namespace: str, spec: Obj) -> Obj:
    return {
        "apiVersion": resource.api_version,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def running_factory(
    api: Any, resource: Resource, namespace: str | None
) -> tuple[SharedInformerFactory, Any]:
    """A factory with one informer (not started: the test enters it)."""
    factory = SharedInformerFactory(api, reflector_options=FAST)
    informer = factory.informer_for(resource, namespace=namespace)
    return factory, informer


# -- reads -----------------------------------------------------------------------------


async def test_cached_reads_send_no_request(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controller-runtime's delegating client reads through the informer cache: get and
    list of a resource an informer caches send nothing to the API server, filter by
    labels and by ``metadata.name`` locally, raise NotFound for an uncached name, and
    hand out deep copies (``UnsafeDisableDeepCopy`` unset)."""
    factory, informer = running_factory(api_client, CONFIGMAPS, namespace)
    factory.informer_for(NAMESPACES)
    client = Client(api_client, factory=factory)
    writer = Client(api_client)
    await writer.create(configmap("a", namespace, {"k": "1"}, labels={"app": "x"}))
    await writer.create(configmap("b", namespace, {"k": "2"}))
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        await eventually(lambda: len(informer.lister().list()) == 2, timeout=30)
        api_calls.clear()
        got = await client.get(CONFIGMAPS, "a", namespace=namespace)
        assert got["data"] == {"k": "1"} and got["kind"] == "ConfigMap"
        by_label = await client.list(CONFIGMAPS, namespace=namespace, label_selector="app=x")
        by_mapping = await client.list(CONFIGMAPS, namespace=namespace, label_selector={"app": "x"})
        by_name = await client.list(
            CONFIGMAPS, namespace=namespace, field_selector="metadata.name=b"
        )
        not_a = await client.list(
            CONFIGMAPS,
            namespace=namespace,
            field_selector=f"metadata.namespace={namespace},metadata.name!=a",
        )
        everything = await client.list(CONFIGMAPS, namespace=namespace)
        with pytest.raises(NotFound):
            await client.get(CONFIGMAPS, "missing", namespace=namespace)
        cluster_scoped = await client.get(NAMESPACES, namespace)
        assert cluster_scoped["metadata"]["name"] == namespace
        assert api_calls.calls == []
        assert [o["metadata"]["name"] for o in by_label] == ["a"]
        assert [o["metadata"]["name"] for o in by_mapping] == ["a"]
        assert [o["metadata"]["name"] for o in by_name] == ["b"]
        assert [o["metadata"]["name"] for o in not_a] == ["b"]
        assert sorted(o["metadata"]["name"] for o in everything) == ["a", "b"]
        got["data"]["k"] = "mutated"  # a copy: the cache is untouched
        assert informer.lister().get("a", namespace=namespace)["data"] == {"k": "1"}


async def test_reads_not_covered_by_an_informer_go_to_the_api(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """A read the cache cannot answer completely goes to the API server: another
    namespace, all namespaces from a one-namespace informer, ``cached=False``, and an
    informer that has not synced yet
    (controller-runtime would block until it syncs; the API answer is never staler)."""
    await Client(api_client).create(configmap("a", namespace, {"k": "1"}))
    factory, _ = running_factory(api_client, CONFIGMAPS, namespace)
    client = Client(api_client, factory=factory)
    api_calls.clear()
    await client.get(CONFIGMAPS, "a", namespace=namespace)  # not started: not synced
    assert len(api_calls.calls) == 1
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        api_calls.clear()
        await client.get(CONFIGMAPS, "a", namespace=namespace, cached=False)
        await client.list(CONFIGMAPS, namespace="default")
        everywhere = await client.list(CONFIGMAPS)
        assert [m for m, _ in api_calls.calls] == ["GET"] * 3
        assert f"{namespace}/a" in {
            f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in everywhere
        }


async def test_list_from_the_api_fills_api_version_and_kind(
    api_client: Any, namespace: str
) -> None:
    """A List's items come without apiVersion/kind; like the informer cache (and the
    typed objects controller-runtime decodes into), listed items carry both."""
    client = Client(api_client)
    await client.create(configmap("a", namespace))
    items = await client.list(CONFIGMAPS, namespace=namespace, cached=False)
    assert [(o["apiVersion"], o["kind"]) for o in items] == [("v1", "ConfigMap")]


# -- discovery -------------------------------------------------------------------------


async def test_discovery_finds_a_crd_installed_later_after_one_refresh(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controller-runtime's lazy DynamicRESTMapper: a kind not known is looked up again
    (one discovery request for its group/version) before NoKindMatchError; once found it
    is cached (no further discovery request)."""
    group = f"t{secrets.token_hex(4)}.discovery.test"
    client = Client(api_client)
    obj = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
    obj["metadata"]["namespace"] = namespace
    with pytest.raises(ResourceNotServed, match=rf"{group}/v1.*Widget") as info:
        await client.create(obj)
    assert (info.value.api_version, info.value.kind) == (f"{group}/v1", "Widget")
    assert client.discovery.fetches == 1
    resource = await install_crd(api_client, widget_crd(group))
    try:

        async def discovered() -> None:  # discovery documents follow the CRD asynchronously
            doc = await request_json(api_client, "GET", f"/apis/{group}/v1")
            assert any(r.get("kind") == "Widget" for r in doc.get("resources", [])), doc

        await eventually(discovered, timeout=30)
        created = await client.create(obj)
        assert client.discovery.fetches == 2  # refreshed once, on the miss
        assert await client.discovery.resource_for(f"{group}/v1", "Widget") == resource
        await client.update(created)
        assert client.discovery.fetches == 2  # cached
    finally:
        await request_json(
            api_client, "DELETE", CUSTOM_RESOURCE_DEFINITIONS.path(f"widgets.{group}")
        )


async def test_unknown_kind_names_api_version_and_kind(api_client: Any) -> None:
    """A kind the group does not serve, and a group the server does not serve, raise
    ResourceNotServed (controller-runtime's NoKindMatchError) naming both, with the kinds
    the group does serve; a missing apiVersion/kind is a ValueError before any request."""
    client = Client(api_client)
    with pytest.raises(ResourceNotServed, match=r"'apps/v1' kind 'Deploymnet'.*Deployment"):
        await client.discovery.resource_for("apps/v1", "Deploymnet")
    with pytest.raises(ResourceNotServed, match=r"does not serve nope\.example/v9"):
        await client.discovery.resource_for("nope.example/v9", "Thing")
    with pytest.raises(ValueError, match="apiVersion and kind"):
        await client.create({"metadata": {"name": "x", "namespace": "default"}})
    deployment = await client.discovery.resource_for("apps/v1", "Deployment")
    assert deployment == DEPLOYMENTS
    assert await client.discovery.resource_for("v1", "Namespace") == NAMESPACES


# -- writes ----------------------------------------------------------------------------


async def test_create_existing_raises_already_exists(api_client: Any, namespace: str) -> None:
    """client-go's IsAlreadyExists: creating a taken name is a 409 with reason
    AlreadyExists, raised as AlreadyExists (a Conflict)."""
    client = Client(api_client)
    created = await client.create(configmap("a", namespace, {"k": "1"}))
    assert created["metadata"]["uid"] and created["kind"] == "ConfigMap"
    with pytest.raises(AlreadyExists) as info:
        await client.create(configmap("a", namespace))
    assert isinstance(info.value, Conflict) and info.value.reason == "AlreadyExists"
    with pytest.raises(ValueError, match=r"metadata\.namespace"):
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})


async def test_update_at_a_stale_resource_version_conflicts(
    api_client: Any, namespace: str
) -> None:
    """client.Update is a PUT at the object's resourceVersion (optimistic concurrency):
    writing a copy older than the server's raises Conflict and changes nothing."""
    client = Client(api_client)
    first = await client.create(configmap("a", namespace, {"k": "1"}))
    second = await client.update({**first, "data": {"k": "2"}})
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    with pytest.raises(Conflict):
        await client.update({**first, "data": {"k": "stale"}})
    current = await client.get(CONFIGMAPS, "a", namespace=namespace)
    assert current["data"] == {"k": "2"}
    assert current["metadata"]["managedFields"][0]["manager"] == "kube-informer"


async def test_patch_types(api_client: Any, namespace: str) -> None:
    """client.Patch with client.MergeFrom (RFC 7386 merge patch: lists replaced, null
    deletes), client.StrategicMergeFrom (lists of containers merged by name) and
    client.RawPatch(types.JSONPatchType) (RFC 6902 operations; a failed ``test`` is
    rejected); a merge patch carrying metadata.resourceVersion is conditional on it."""
    client = Client(api_client)
    cm = await client.create(configmap("a", namespace, {"k": "1", "drop": "x"}))
    merged = await client.patch(
        CONFIGMAPS, "a", {"data": {"k": "2", "drop": None}}, namespace=namespace
    )
    assert merged["data"] == {"k": "2"}
    jsonp = await client.patch(
        CONFIGMAPS,
        "a",
        [
            {"op": "test", "path": "/data/k", "value": "2"},
            {"op": "add", "path": "/data/j", "value": "3"},
        ],
        namespace=namespace,
        patch_type="json",
    )
    assert jsonp["data"] == {"k": "2", "j": "3"}
    with pytest.raises(ApiError) as failed_test:
        await client.patch(
            CONFIGMAPS,
            "a",
            [{"op": "test", "path": "/data/k", "value": "other"}],
            namespace=namespace,
            patch_type="json",
        )
    assert failed_test.value.status == 422
    with pytest.raises(Conflict):
        stale = {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]}}
        await client.patch(CONFIGMAPS, "a", {**stale, "data": {"k": "9"}}, namespace=namespace)
    with pytest.raises(ValueError, match="patch_type"):
        await client.patch(CONFIGMAPS, "a", {}, namespace=namespace, patch_type="apply")  # type: ignore[arg-type]

    def container(name: str) -> Obj:
        return {"name": name, "image": f"registry.invalid/{name}:1"}

    labels = {"app": "web"}
    await client.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [container("a")]},
                },
            },
        }
    )
    body = {"spec": {"template": {"spec": {"containers": [container("b")]}}}}
    strategic = await client.patch(
        DEPLOYMENTS, "web", body, namespace=namespace, patch_type="strategic"
    )
    names = [c["name"] for c in strategic["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["a", "b"]  # merged by the patchMergeKey "name"
    replaced = await client.patch(DEPLOYMENTS, "web", body, namespace=namespace)
    assert [c["name"] for c in replaced["spec"]["template"]["spec"]["containers"]] == ["b"]


async def test_server_side_apply_conflicts_and_force(api_client: Any, namespace: str) -> None:
    """client.Apply / client.Patch(client.Apply, FieldOwner, ForceOwnership): apply
    creates the object, a second manager changing a field the first owns gets a Conflict
    naming the owner, force takes the field over, fields nobody else owns merge; a field
    written by create/update belongs to an Update manager, which conflicts with apply
    even under the same name."""
    alpha = Client(api_client, field_manager="alpha")
    beta = Client(api_client, field_manager="beta")
    created = await alpha.apply(configmap("a", namespace, {"k": "1"}))
    assert created["data"] == {"k": "1"}
    again = await alpha.apply(configmap("a", namespace, {"k": "1"}))
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    with pytest.raises(Conflict, match='conflict with "alpha"'):
        await beta.apply(configmap("a", namespace, {"k": "2"}))
    shared = await beta.apply(configmap("a", namespace, {"j": "3"}))
    assert shared["data"] == {"k": "1", "j": "3"}
    taken = await beta.apply(configmap("a", namespace, {"k": "2", "j": "3"}), force=True)
    assert taken["data"] == {"k": "2", "j": "3"}
    owners = {m["manager"]: m["fieldsV1"] for m in taken["metadata"]["managedFields"]}
    assert "f:k" in owners["beta"]["f:data"]
    assert "f:data" not in owners.get("alpha", {})
    other = await beta.apply(configmap("b", namespace, {"k": "1"}), field_manager="gamma")
    assert [m["manager"] for m in other["metadata"]["managedFields"]] == ["gamma"]

    await alpha.create(configmap("c", namespace, {"k": "1"}))
    with pytest.raises(Conflict, match='conflict with "alpha"'):
        await alpha.apply(configmap("c", namespace, {"k": "2"}))
    assert (await alpha.apply(configmap("c", namespace, {"k": "2"}), force=True))["data"] == {
        "k": "2"
    }


async def test_status_subresource(api_client: Any, namespace: str, widgets: Resource) -> None:
    """client.Status().Update / .Apply write the status subresource only (the server
    ignores spec changes there) and a main-resource update ignores status, as for any
    resource with a status subresource."""
    client = Client(api_client)
    obj = await client.create(widget(widgets, "w", namespace, {"size": 1}))
    obj["spec"]["size"] = 99
    obj["status"] = {"phase": "Ready"}
    status_written = await client.update_status(obj)
    assert status_written["spec"] == {"size": 1}
    assert status_written["status"] == {"phase": "Ready"}
    status_written["status"] = {"phase": "Ignored"}
    status_written["spec"] = {"size": 2}
    spec_written = await client.update(status_written)
    assert spec_written["spec"] == {"size": 2}
    assert spec_written["status"] == {"phase": "Ready"}
    applied = await client.apply_status(
        {
            "apiVersion": widgets.api_version,
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": namespace},
            "spec": {"size": 3},
            "status": {"observed": 2},
        }
    )
    assert applied["status"] == {"phase": "Ready", "observed": 2}
    assert applied["spec"] == {"size": 2}
    with pytest.raises(Conflict):  # update_status is at the resourceVersion too
        await client.update_status({**status_written, "status": {"phase": "stale"}})


async def test_delete_preconditions_missing_ok_and_propagation(
    api_client: Any, namespace: str
) -> None:
    """client.Delete with Preconditions{UID, ResourceVersion} (Conflict when they do not
    match), ``client.IgnoreNotFound`` as ``missing_ok``, and PropagationPolicy passed in
    the DeleteOptions body (Foreground leaves the object with the foregroundDeletion
    finalizer for the garbage collector)."""
    client = Client(api_client)
    cm = await client.create(configmap("a", namespace, {"k": "1"}))
    meta = cm["metadata"]
    with pytest.raises(Conflict):
        await client.delete(CONFIGMAPS, "a", namespace=namespace, uid="not-" + meta["uid"])
    await client.update({**cm, "data": {"k": "2"}})
    with pytest.raises(Conflict):
        await client.delete(
            CONFIGMAPS, "a", namespace=namespace, resource_version=meta["resourceVersion"]
        )
    answer = await client.delete(CONFIGMAPS, "a", namespace=namespace, uid=meta["uid"])
    assert answer is not None and answer["status"] == "Success"
    with pytest.raises(NotFound):
        await client.delete(CONFIGMAPS, "a", namespace=namespace)
    assert await client.delete(CONFIGMAPS, "a", namespace=namespace, missing_ok=True) is None

    await client.create(configmap("fg", namespace))
    held = await client.delete(
        CONFIGMAPS, "fg", namespace=namespace, propagation_policy="Foreground"
    )
    assert held is not None and held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    # No garbage collector runs here: release it ourselves.
    await client.remove_finalizer(held, "foregroundDeletion")
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "fg", namespace=namespace)


# -- create_or_update ------------------------------------------------------------------


async def test_create_or_update_results(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controllerutil.CreateOrUpdate: missing -> mutate + create (OperationResultCreated);
    mutate producing the current object -> no write at all (OperationResultNone, the
    resourceVersion unchanged); otherwise an update (OperationResultUpdated). The mutate
    function may be async; the object passed in is not modified."""
    client = Client(api_client)
    template = {"apiVersion": "v1", "kind": "ConfigMap"}
    template["metadata"] = {"name": "a", "namespace": namespace}
    wanted = {"k": "1"}

    def mutate(obj: Obj) -> None:
        obj["data"] = dict(wanted)

    created, result = await client.create_or_update(template, mutate)
    assert result is OperationResult.CREATED and created["data"] == {"k": "1"}
    assert "data" not in template
    api_calls.clear()
    same, result = await client.create_or_update(template, mutate)
    assert result is OperationResult.UNCHANGED
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert api_calls.writes() == []
    wanted["k"] = "2"

    async def mutate_async(obj: Obj) -> None:
        await anyio.lowlevel.checkpoint()
        mutate(obj)

    updated, result = await client.create_or_update(template, mutate_async)
    assert result is OperationResult.UPDATED and updated["data"] == {"k": "2"}
    assert [m for m, _ in api_calls.writes()] == ["PUT"]


async def test_create_or_update_rejects_renaming(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controllerutil's mutate wrapper: "MutateFn cannot mutate object name and/or object
    namespace" (an error, nothing written), on the create path and the update path."""
    client = Client(api_client)

    def rename(obj: Obj) -> None:
        obj["metadata"]["name"] = "other"

    def move(obj: Obj) -> None:
        obj["metadata"]["namespace"] = "default"

    with pytest.raises(ValueError, match="name or namespace"):
        await client.create_or_update(configmap("a", namespace), rename)
    await client.create(configmap("a", namespace))
    api_calls.clear()
    with pytest.raises(ValueError, match="name or namespace"):
        await client.create_or_update(configmap("a", namespace), move)
    assert api_calls.writes() == []


def stale_cache(api: Any, obj: Obj) -> tuple[SharedInformerFactory, FakeListerWatcher]:
    """A factory whose ConfigMap informer (namespace of ``obj``) holds ``obj`` and only
    changes when the test pushes events: a cache as stale as the test wants."""
    fake = FakeListerWatcher()
    factory = SharedInformerFactory(api, lister_watcher_factory=lambda *a, **kw: fake)
    factory.informer_for(CONFIGMAPS, namespace=obj["metadata"]["namespace"])
    return factory, fake


async def push(fake: FakeListerWatcher, factory: SharedInformerFactory, event: Obj) -> None:
    """Push a watch event into the fake's watch; return once the store applied it."""
    informer = factory.informers[0]
    meta = event["object"]["metadata"]
    fake.push_event(event)

    def applied() -> None:
        assert informer.last_sync_resource_version == meta["resourceVersion"]
        assert not informer.has_queued(f"{meta['namespace']}/{meta['name']}")

    await eventually(applied, timeout=10)


async def test_create_or_update_retries_from_the_api_after_a_stale_cache(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controller-runtime reads CreateOrUpdate's object from the cache and a lagging
    cache fails the write (Conflict, AlreadyExists), retrying the whole reconcile. Here
    the first read is the cache's (an UNCHANGED steady state costs no request), and on
    such a Conflict the sequence runs once more from an API read."""
    client0 = Client(api_client)
    old = await client0.create(configmap("a", namespace, {"k": "1"}))
    current = await client0.update({**old, "data": {"k": "2"}})
    factory, fake = stale_cache(api_client, old)
    client = Client(api_client, factory=factory)
    await client.discovery.resource_for("v1", "ConfigMap")
    async with factory:
        await fake.wait_for_watchers(1)
        assert await factory.wait_for_cache_sync(timeout=10)
        await push(fake, factory, {"type": "ADDED", "object": old})
        api_calls.clear()

        def to_three(obj: Obj) -> None:
            obj["data"] = {"k": "3"}

        updated, result = await client.create_or_update(configmap("a", namespace), to_three)
        assert result is OperationResult.UPDATED and updated["data"] == {"k": "3"}
        assert [m for m, _ in api_calls.calls] == ["PUT", "GET", "PUT"]  # stale PUT, retry
        await push(fake, factory, {"type": "MODIFIED", "object": updated})
        api_calls.clear()
        _, result = await client.create_or_update(configmap("a", namespace), to_three)
        assert result is OperationResult.UNCHANGED and api_calls.calls == []

        await client0.create(configmap("b", namespace, {"k": "1"}))  # not in the cache
        api_calls.clear()
        b, result = await client.create_or_update(configmap("b", namespace), to_three)
        assert result is OperationResult.UPDATED and b["data"] == {"k": "3"}
        assert [m for m, _ in api_calls.calls] == ["POST", "GET", "PUT"]  # AlreadyExists
    assert current["data"] == {"k": "2"}


# -- apply_manifests -------------------------------------------------------------------


async def test_apply_manifests(api_client: Any, namespace: str) -> None:
    """``kubectl apply --server-side -f``: every document in order (a Namespace before the
    objects in it), empty documents skipped, namespaced objects without a namespace put
    into ``namespace=``, cluster-scoped ones left without; applying again is a no-op."""
    client = Client(api_client)
    extra = f"{namespace[:50]}-m"
    text = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {extra}
  labels: {{team: client-test}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: in-extra
  namespace: {extra}
data:
  a: "1"
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: defaulted
  data:
    b: "2"
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
  spec:
    selector:
      matchLabels: {{app: web}}
    template:
      metadata:
        labels: {{app: web}}
      spec:
        containers:
        - name: web
          image: registry.invalid/web:1
"""
    try:
        applied = await client.apply_manifests(text, namespace=namespace)
        assert [(o["kind"], o["metadata"].get("namespace")) for o in applied] == [
            ("Namespace", None),
            ("ConfigMap", extra),
            ("ConfigMap", namespace),
            ("Deployment", namespace),
        ]
        assert (await client.get(CONFIGMAPS, "defaulted", namespace=namespace))["data"] == {
            "b": "2"
        }
        again = await client.apply_manifests(text, namespace=namespace)
        assert [o["metadata"]["resourceVersion"] for o in again] == [
            o["metadata"]["resourceVersion"] for o in applied
        ]
    finally:
        await client.delete(NAMESPACES, extra, missing_ok=True)


async def test_apply_manifests_errors(api_client: Any, namespace: str) -> None:
    """Invalid YAML, or a document without apiVersion/kind/name, applies nothing; a
    namespaced object without a namespace and no ``namespace=`` is an error naming it
    (documents before it are applied, as with kubectl)."""
    client = Client(api_client)
    first = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: first, namespace: {namespace}}}\n"
    with pytest.raises(ValueError, match="not valid YAML"):
        await client.apply_manifests(first + "---\nkind: [unclosed\n")
    with pytest.raises(ValueError, match=r"document 2 .*metadata\.name"):
        await client.apply_manifests(first + "---\napiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "first", namespace=namespace)
    second = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\n"
    with pytest.raises(ValueError, match=r"object 2 \(ConfigMap 'second'\).*namespace="):
        await client.apply_manifests(first + second)
    assert await client.get(CONFIGMAPS, "first", namespace=namespace)


# -- wait_cached -----------------------------------------------------------------------


async def test_wait_cached_after_writes_on_a_real_informer(api_client: Any, namespace: str) -> None:
    """Read-your-writes (what controller-runtime leaves to expectations or requeues):
    after a write, wait_cached returns once the informer holds the object at the written
    resourceVersion or newer; after this client's delete, once the cache dropped it."""
    factory, informer = running_factory(api_client, CONFIGMAPS, namespace)
    client = Client(api_client, factory=factory)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        written = await client.create(configmap("a", namespace, {"k": "1"}))
        for value in ("2", "3"):
            written = await client.patch(
                CONFIGMAPS, "a", {"data": {"k": value}}, namespace=namespace
            )
            cached = await client.wait_cached(written, timeout=10)
            assert cached is not None and cached["data"] == {"k": value}
            held = informer.lister().get("a", namespace=namespace)
            assert held["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
        await client.delete(CONFIGMAPS, "a", namespace=namespace)
        assert await client.wait_cached(written, timeout=10) is None
        assert informer.lister().get("a", namespace=namespace) is None


async def test_wait_cached_waits_for_the_informer(api_client: Any, namespace: str) -> None:
    """wait_cached does not return while the cache holds an older resourceVersion, nor
    while it still holds an object this client deleted (TimeoutError naming what it
    holds), and returns as soon as the informer applies the newer state."""
    client0 = Client(api_client)
    old = await client0.create(configmap("a", namespace, {"k": "1"}))
    factory, fake = stale_cache(api_client, old)
    client = Client(api_client, factory=factory)
    async with factory:
        await fake.wait_for_watchers(1)
        assert await factory.wait_for_cache_sync(timeout=10)
        await push(fake, factory, {"type": "ADDED", "object": old})
        new = await client.update({**old, "data": {"k": "2"}})
        with pytest.raises(
            TimeoutError, match=rf"resourceVersion {old['metadata']['resourceVersion']}"
        ):
            await client.wait_cached(new, timeout=0.3)
        await push(fake, factory, {"type": "MODIFIED", "object": new})
        cached = await client.wait_cached(new, timeout=5)
        assert cached is not None and cached["data"] == {"k": "2"}
        await client.delete(CONFIGMAPS, "a", namespace=namespace)
        with pytest.raises(TimeoutError, match="deleted"):
            await client.wait_cached(new, timeout=0.3)
        with pytest.raises(NotFound):  # deleted on the server, still in the cache
            await client.get(CONFIGMAPS, "a", namespace=namespace, cached=False)
        deletion_rv = str(int(new["metadata"]["resourceVersion"]) + 1)
        deleted = {**new, "metadata": {**new["metadata"], "resourceVersion": deletion_rv}}
        await push(fake, factory, {"type": "DELETED", "object": deleted})
        assert await client.wait_cached(new, timeout=5) is None


async def test_wait_cached_needs_a_covering_informer(api_client: Any, namespace: str) -> None:
    """wait_cached never starts an informer: without a factory, or without an informer
    covering the resource and namespace, it says what to do."""
    cm = await Client(api_client).create(configmap("a", namespace))
    with pytest.raises(ValueError, match="factory="):
        await Client(api_client).wait_cached(cm)
    factory = SharedInformerFactory(api_client)
    factory.informer_for(CONFIGMAPS, namespace="default")
    with pytest.raises(ValueError, match="informer_for"):
        await Client(api_client, factory=factory).wait_cached(cm)
    assert len(factory.informers) == 1


def test_delete_ledger_keeps_the_last_finished_deletes() -> None:
    """The client's ledger of deletes (what wait_cached given a pre-delete object waits
    for): a delete answered by a ``Status`` or by an object with nothing left to hold it
    is kept, with its uid; one still held by finalizers or a grace period is not; only
    the last ``capacity`` are kept; another incarnation (another uid) is not deleted."""
    ledger = DeleteLedger(capacity=2)

    def obj(name: str, uid: str | None = None, **meta: Any) -> Obj:
        return configmap(name, "ns", uid=uid, **meta) if uid else configmap(name, "ns", **meta)

    status = {"kind": "Status", "status": "Success", "details": {"uid": "u-a"}}
    ledger.record(CONFIGMAPS, "ns", "a", status)
    ledger.record(CONFIGMAPS, "ns", "held", obj("held", "u-h", finalizers=["x.test/y"]))
    ledger.record(CONFIGMAPS, "ns", "grace", obj("grace", deletionGracePeriodSeconds=30))
    assert ledger.deleted(CONFIGMAPS, obj("a", "u-a")) == (True, "u-a")
    assert ledger.deleted(CONFIGMAPS, obj("a")) == (True, "u-a")
    assert ledger.deleted(CONFIGMAPS, obj("a", "u-other")) == (False, "u-a")
    assert ledger.deleted(CONFIGMAPS, obj("held", "u-h")) == (False, None)
    assert ledger.deleted(CONFIGMAPS, obj("grace")) == (False, None)
    assert ledger.deleted(CONFIGMAPS, configmap("a", "elsewhere")) == (False, None)
    ledger.record(CONFIGMAPS, "ns", "b", obj("b", "u-b"))
    ledger.record(CONFIGMAPS, "ns", "c", {"kind": "Status", "status": "Success"})
    assert ledger.deleted(CONFIGMAPS, obj("a", "u-a")) == (False, None)  # the oldest went
    assert ledger.deleted(CONFIGMAPS, obj("b", "u-b")) == (True, "u-b")
    assert ledger.deleted(CONFIGMAPS, obj("c", "u-c")) == (True, None)
    with pytest.raises(ValueError, match="capacity"):
        DeleteLedger(capacity=0)


# -- finalizers ------------------------------------------------------------------------


async def test_finalizers_are_idempotent(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """controllerutil.AddFinalizer / RemoveFinalizer report no change when there is
    nothing to do: no write is sent, the object comes back as it was; other finalizers
    are kept."""
    client = Client(api_client)
    cm = await client.create(configmap("a", namespace, finalizers=["other.test/keep"]))
    api_calls.clear()
    added = await client.add_finalizer(cm, "client.test/cleanup")
    assert added["metadata"]["finalizers"] == ["other.test/keep", "client.test/cleanup"]
    assert await client.add_finalizer(added, "client.test/cleanup") is added
    assert len(api_calls.writes()) == 1
    removed = await client.remove_finalizer(added, "client.test/cleanup")
    assert removed["metadata"]["finalizers"] == ["other.test/keep"]
    assert await client.remove_finalizer(removed, "client.test/cleanup") is removed
    assert len(api_calls.writes()) == 2
    assert "finalizers" not in cm["metadata"] or cm["metadata"]["finalizers"] == ["other.test/keep"]
    last = await client.remove_finalizer(removed, "other.test/keep")
    assert "finalizers" not in last["metadata"]


async def test_finalizer_change_on_a_stale_object_conflicts(
    api_client: Any, namespace: str
) -> None:
    """A finalizer patch is a merge patch with the object's resourceVersion
    (controller-runtime's MergeFromWithOptimisticLock): after a concurrent change, adding
    or removing from the stale copy raises Conflict and nobody's finalizer is lost."""
    client = Client(api_client)
    stale = await client.create(configmap("a", namespace, finalizers=["client.test/a"]))
    await client.add_finalizer(stale, "other.test/b")  # someone else, meanwhile
    with pytest.raises(Conflict):
        await client.add_finalizer(stale, "client.test/c")
    with pytest.raises(Conflict):
        await client.remove_finalizer(stale, "client.test/a")
    current = await client.get(CONFIGMAPS, "a", namespace=namespace)
    assert current["metadata"]["finalizers"] == ["client.test/a", "other.test/b"]
    with pytest.raises(ValueError, match="resourceVersion"):
        await client.add_finalizer(configmap("a", namespace), "client.test/c")
    for name in ("client.test/a", "other.test/b"):
        current = await client.remove_finalizer(current, name)


async def test_removing_the_last_finalizer_of_a_deleting_object_deletes_it(
    api_client: Any, namespace: str, widgets: Resource
) -> None:
    """The finalizer protocol: delete marks the object (deletionTimestamp) while
    finalizers remain; removing the last one lets the server delete it."""
    client = Client(api_client)
    obj = await client.create(widget(widgets, "w", namespace, {"size": 1}))
    obj = await client.add_finalizer(obj, "client.test/cleanup")
    marked = await client.delete(widgets, "w", namespace=namespace)
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    await client.remove_finalizer(marked, "client.test/cleanup")
    with pytest.raises(NotFound):
        await client.get(widgets, "w", namespace=namespace)


async def test_remove_finalizer_of_an_object_already_gone(api_client: Any, namespace: str) -> None:
    """An object whose last finalizer someone else removed is gone; removing ours from a
    stale copy is ``NotFound``, or ``None`` with ``missing_ok`` (as ``delete``)."""
    client = Client(api_client)
    cm = await client.create(configmap("gone", namespace, finalizers=["client.test/cleanup"]))
    marked = await client.delete(CONFIGMAPS, "gone", namespace=namespace)
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    await client.remove_finalizer(marked, "client.test/cleanup")  # someone else, meanwhile
    with pytest.raises(NotFound):
        await client.remove_finalizer(marked, "client.test/cleanup")
    assert await client.remove_finalizer(marked, "client.test/cleanup", missing_ok=True) is None
    assert await client.remove_finalizer(cm, "client.test/absent", missing_ok=True) is cm


@pytest.mark.parametrize(
    ("finalizers", "name", "problem"),
    [
        ([], "bad name", "invalid finalizer name"),
        ([], "example.com/", "invalid finalizer name"),
        (["orphan"], "foregroundDeletion", "cannot both be set"),
    ],
    ids=["space-in-name", "empty-name-part", "orphan-and-foreground"],
)
async def test_add_finalizer_is_checked_before_any_request(
    api_client: Any,
    namespace: str,
    api_calls: ApiCalls,
    finalizers: list[str],
    name: str,
    problem: str,
) -> None:
    """``add_finalizer`` builds its patch with ``informer.meta``'s finalizer rules: a name
    the API server rejects (``ValidateFinalizerName``) and 'orphan' beside
    'foregroundDeletion' (``ValidateFinalizers``) are a ``ValueError`` saying what is
    wrong, before any request (discovery included); the object is left as it was."""
    client = Client(api_client)
    cm = await client.create(configmap("a", namespace, finalizers=finalizers))
    api_calls.clear()
    with pytest.raises(ValueError, match=problem):
        await client.add_finalizer(cm, name)
    assert api_calls.calls == []
    current = await client.get(CONFIGMAPS, "a", namespace=namespace)
    assert current["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    if finalizers:
        await client.remove_finalizer(current, finalizers[0])


async def test_no_new_finalizer_on_an_object_being_deleted(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """Once ``deletionTimestamp`` is set the API server forbids new finalizers: adding one
    is a ``ValueError`` naming the rule, before any request; adding one already present
    is still a no-op and removing stays allowed (and lets the delete finish)."""
    client = Client(api_client)
    await client.create(configmap("held", namespace, finalizers=["client.test/cleanup"]))
    marked = await client.delete(CONFIGMAPS, "held", namespace=namespace)
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    api_calls.clear()
    with pytest.raises(ValueError, match="being deleted"):
        await client.add_finalizer(marked, "client.test/late")
    assert api_calls.calls == []
    assert await client.add_finalizer(marked, "client.test/cleanup") is marked
    assert api_calls.calls == []
    await client.remove_finalizer(marked, "client.test/cleanup")
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "held", namespace=namespace)
