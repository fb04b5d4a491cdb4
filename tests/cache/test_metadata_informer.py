"""Metadata-only informers against the real control plane (kube-apiserver 1.36 + etcd).

``informer_for(resource, metadata_only=True)`` lists and watches ``PartialObjectMetadata``
(list+watch and watch-list): the cache holds ``{"apiVersion", "kind", "metadata"}`` with
the resource's own apiVersion and kind and the server's whole ``metadata``, and updates,
deletes, listers, indexes, controllers and the Manager work on them. The fallbacks the
real server never takes (whole objects, 406) are in ``test_metadata_listwatch.py``;
memory per object is measured by ``python -m bench memory`` (the metadata-only rows).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from informer import (
    Client,
    Controller,
    DeletedFinalStateUnknown,
    HandlerFuncs,
    Manager,
    Obj,
    Resource,
    Result,
    SharedIndexInformer,
    SharedInformerFactory,
    request_json,
)
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

TIMEOUT = 30.0
POLL = 0.02  # cache conditions: cheap to check often
FAST = {"backoff_initial": 0.05, "backoff_cap": 0.5}
SYNC_MODES = {"list-watch": {"use_watch_list": False}, "watch-list": {"use_watch_list": True}}
METADATA_ONLY = {"apiVersion", "kind", "metadata"}


def placed(namespace: str, obj: Obj) -> Obj:
    """``obj`` with its ``metadata.namespace`` set, for ``Client.create``."""
    return {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}


def configmap(name: str, labels: dict[str, str]) -> Obj:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def deployment(name: str, labels: dict[str, str]) -> Obj:
    sel = {"app": name}
    return {
        "metadata": {"name": name, "labels": {**sel, **labels}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": sel},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }


KINDS = {"configmaps": (CONFIGMAPS, configmap), "deployments": (DEPLOYMENTS, deployment)}
# A change outside metadata: it must still reach the metadata-only informer (a new
# resourceVersion), as it reaches client-go's metadatainformer.
NON_METADATA_CHANGE = {
    "configmaps": {"data": {"k": "changed"}},
    "deployments": {"spec": {"replicas": 2}},
}


class Events:
    """Every notification as (kind, object); awaited with ``eventually``."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def handler(self) -> HandlerFuncs:
        return HandlerFuncs(
            on_add=lambda obj: self.log.append(("add", obj)),
            on_update=lambda old, new: self.log.append(("update", new)),
            on_delete=lambda obj: self.log.append(("delete", obj)),
        )

    def of(self, kind: str, name: str) -> list[Obj]:
        """The objects of the ``kind`` notifications about ``name`` (tombstones unwrapped)."""
        objs = [
            o.obj if isinstance(o, DeletedFinalStateUnknown) else o
            for k, o in self.log
            if k == kind
        ]
        return [o for o in objs if o["metadata"]["name"] == name]


async def server_objects(api: Any, resource: Resource, namespace: str) -> dict[str, Obj]:
    body = await request_json(api, "GET", resource.path(namespace=namespace))
    return {o["metadata"]["name"]: o for o in body["items"]}


def metadata_only(resource: Resource, metadata: Obj) -> Obj:
    return {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata}


@pytest.mark.parametrize("sync", list(SYNC_MODES))
@pytest.mark.parametrize("kind", list(KINDS))
async def test_sync_updates_and_deletes_carry_metadata_only(
    api_client: Any, namespace: str, kind: str, sync: str
) -> None:
    resource, body = KINDS[kind]
    for name in ("one", "two"):
        await Client(api_client).create(
            resource=resource, obj=placed(namespace, body(name, {"team": "a"}))
        )
    factory = SharedInformerFactory(
        api_client, namespace=namespace, reflector_options={**FAST, **SYNC_MODES[sync]}
    )
    informer = factory.informer_for(resource, metadata_only=True)
    events = Events()
    informer.add_event_handler(events.handler())
    lister = informer.lister()
    with anyio.fail_after(TIMEOUT):
        async with factory:
            assert await factory.wait_for_cache_sync(timeout=TIMEOUT)
            assert informer.reflector.use_watch_list is (sync == "watch-list")
            assert not informer.reflector.watch_list_fallback

            # Synced: the server's metadata, under the real apiVersion/kind, and nothing else.
            # A list at resourceVersion 0 (list-watch mode) is answered from the API server's
            # watch cache, which can lag the creates above on a loaded machine; the watch
            # brings the rest.
            def both_cached() -> None:
                assert len(lister.list()) == 2, f"both objects in the cache: {lister.list()}"

            await eventually(both_cached, timeout=TIMEOUT, interval=POLL)
            whole = await server_objects(api_client, resource, namespace)
            assert {o["metadata"]["name"]: o for o in lister.list()} == {
                name: metadata_only(resource, obj["metadata"]) for name, obj in whole.items()
            }
            assert all(set(o) == METADATA_ONLY for _, o in events.log)

            # A metadata change flows...
            await Client(api_client).patch(
                resource, "one", namespace=namespace, patch={"metadata": {"labels": {"team": "b"}}}
            )

            def relabelled() -> None:
                one = lister.get("one", namespace=namespace)
                assert label(one, "team") == "b", f"the label change in the cache: {one}"

            await eventually(relabelled, timeout=TIMEOUT, interval=POLL)
            # ...and so does a change outside metadata (a new resourceVersion).
            changed = await Client(api_client).patch(
                resource, "two", namespace=namespace, patch=NON_METADATA_CHANGE[kind]
            )
            rv = changed["metadata"]["resourceVersion"]

            def updated() -> None:
                seen = [o["metadata"]["resourceVersion"] for o in events.of("update", "two")]
                assert rv in seen, f"the update of two to {rv}: updates seen {seen}"

            await eventually(updated, timeout=TIMEOUT, interval=POLL)
            await Client(api_client).delete(resource, "two", namespace=namespace)

            def deleted() -> None:
                assert events.of("delete", "two"), "the delete of two"

            await eventually(deleted, timeout=TIMEOUT, interval=POLL)
            assert lister.get("two", namespace=namespace) is None
            latest = await server_objects(api_client, resource, namespace)
            assert lister.list() == [metadata_only(resource, latest["one"]["metadata"])]
    assert [o["metadata"]["name"] for o in events.of("update", "one")] == ["one"]
    assert all(set(o) == METADATA_ONLY for _, o in events.log), events.log
    [gone] = events.of("delete", "two")
    assert gone["kind"] == resource.kind


def label(obj: Obj | None, key: str) -> str | None:
    return None if obj is None else (obj["metadata"].get("labels") or {}).get(key)


def annotation(obj: Obj | None, key: str) -> str | None:
    return None if obj is None else (obj["metadata"].get("annotations") or {}).get(key)


def by_team(obj: Obj) -> list[str]:
    team = label(obj, "team")
    return [team] if team else []


async def test_lister_and_index_beside_the_whole_object_informer(
    api_client: Any, namespace: str
) -> None:
    for name, team in (("d1", "a"), ("d2", "b"), ("d3", "a")):
        await Client(api_client).create(
            resource=DEPLOYMENTS, obj=placed(namespace, deployment(name, {"team": team}))
        )
    factory = SharedInformerFactory(api_client, namespace=namespace, reflector_options=FAST)
    meta = factory.informer_for(DEPLOYMENTS, metadata_only=True, indexers={"team": by_team})
    whole = factory.informer_for(DEPLOYMENTS)
    assert meta is not whole and meta.name == f"deployments.apps@{namespace}(metadata)"
    lister = meta.lister()

    def names(objs: list[Obj]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs)

    with anyio.fail_after(TIMEOUT):
        async with factory:
            assert await factory.wait_for_cache_sync(timeout=TIMEOUT)

            # The informers list at resourceVersion 0, which the API server answers from
            # its watch cache: on a loaded machine that cache can lag the creates above
            # (a list of 2), and the watch brings the third one a moment later.
            def all_three() -> None:
                held = (names(lister.list()), names(whole.lister().list()))
                assert len(held[0]) == len(held[1]) == 3, f"both informers hold 3: {held}"

            await eventually(all_three, timeout=TIMEOUT, interval=POLL)
            assert names(lister.by_index("team", "a")) == ["d1", "d3"]
            assert lister.index_keys("team", "b") == [f"{namespace}/d2"]
            assert names(lister.list(namespace=namespace, label_selector="team=b")) == ["d2"]
            d1 = lister.get("d1", namespace=namespace)
            assert d1 is not None and set(d1) == METADATA_ONLY and d1["kind"] == "Deployment"
            # The whole-object informer of the same resource is untouched by it.
            full = whole.lister().get("d1", namespace=namespace)
            assert full is not None and full["spec"]["replicas"] == 1
            assert full["metadata"] == d1["metadata"]
            # The index follows a relabelling.
            await Client(api_client).patch(
                DEPLOYMENTS,
                "d3",
                namespace=namespace,
                patch={"metadata": {"labels": {"team": "b"}}},
            )

            def moved() -> None:
                team_b = names(lister.by_index("team", "b"))
                assert team_b == ["d2", "d3"], f"d3 moved to team b in the index: {team_b}"

            await eventually(moved, timeout=TIMEOUT, interval=POLL)
            assert names(lister.by_index("team", "a")) == ["d1"]


MIRROR = "informer.test/mirror"


class LabelMirror(Controller):
    """Copies each ConfigMap's ``mirror`` label into an annotation, reading only the
    metadata-only cache (a ConfigMap's data is never downloaded)."""

    name = "label-mirror"
    configmaps: SharedIndexInformer

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS, metadata_only=True)

    async def reconcile(self, key: str) -> Result | None:
        obj = self.configmaps.lister().get_by_key(key)
        if obj is None:
            return None
        assert set(obj) == METADATA_ONLY, obj
        meta = obj["metadata"]
        want = label(obj, "mirror")
        if want is None or annotation(obj, MIRROR) == want:
            return None
        await request_json(
            self.api_client,
            "PATCH",
            CONFIGMAPS.path(meta["name"], namespace=meta["namespace"]),
            body={"metadata": {"annotations": {MIRROR: want}}},
        )
        return None


async def test_controller_under_the_manager_reconciles_from_a_metadata_only_watch(
    api_client: Any, namespace: str
) -> None:
    await Client(api_client).create(
        resource=CONFIGMAPS, obj=placed(namespace, configmap("before", {"mirror": "x"}))
    )
    manager = Manager(api_client, namespaces=[namespace])
    manager.add(LabelMirror)

    with anyio.fail_after(TIMEOUT * 2):
        async with manager:
            [controller] = manager.controllers
            [informer] = controller.informers
            assert informer.name == f"configmaps@{namespace}(metadata)"
            lister = informer.lister()

            async def wait_annotation(name: str, value: str) -> None:
                # The controller's own cache shows its write once the server has it.
                def annotated() -> None:
                    obj = lister.get(name, namespace=namespace)
                    assert annotation(obj, MIRROR) == value, f"{name} annotated {value!r}: {obj}"

                await eventually(annotated, timeout=TIMEOUT, interval=POLL)

            await wait_annotation("before", "x")
            await Client(api_client).create(
                resource=CONFIGMAPS, obj=placed(namespace, configmap("after", {"mirror": "y"}))
            )
            await wait_annotation("after", "y")
            await Client(api_client).patch(
                CONFIGMAPS,
                "before",
                namespace=namespace,
                patch={"metadata": {"labels": {"mirror": "z"}}},
            )
            await wait_annotation("before", "z")
            # The Manager's transform ran on the metadata-only objects too.
            cached = lister.get("before", namespace=namespace)
            assert cached is not None and "managedFields" not in cached["metadata"]
            assert set(cached) == METADATA_ONLY
    server = await Client(api_client).get(CONFIGMAPS, "after", namespace=namespace)
    assert annotation(server, MIRROR) == "y" and server["data"] == {"k": "v"}
