"""Lists decoded item by item against the real API server: the bytes it writes for
built-in kinds, custom resources and PartialObjectMetadataList are cut item by item (no
fallback to a whole decode) into what a whole decode gives; built-in kinds' and
metadata-only lists while the body streams in, custom resources' once it is in (their
List's kind follows the items)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from crd_helpers import widgets

from informer import Resource, request_json
from informer._cache import list_decode
from informer._cache.list_sync import item_function
from informer._cache.listwatch import ApiListerWatcher
from informer._meta.types import Obj
from informer.resources import CONFIGMAPS, DEPLOYMENTS, STATEFULSETS

pytestmark = pytest.mark.anyio


@pytest.fixture
def whole_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Items prepared before each fall back to a whole decode (none expected)."""
    calls: list[int] = []
    real = list_decode._whole

    def whole(raw: bytes, prepare: Any, envelope: Any = None, each: Any = None, done: Any = None):
        calls.append(len(done or []))
        return real(raw, prepare, envelope, each, done)

    monkeypatch.setattr(list_decode, "_whole", whole)
    real_rest = list_decode.ListStreamDecoder._whole_rest

    def whole_rest(self: list_decode.ListStreamDecoder) -> Any:
        calls.append(len(self._items))
        return real_rest(self)

    monkeypatch.setattr(list_decode.ListStreamDecoder, "_whole_rest", whole_rest)
    return calls


@pytest.fixture
def buffered(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bodies buffered whole by the streaming decoder (their size), not streamed."""
    sizes: list[int] = []
    real = list_decode._decode_steps

    def steps(raw: bytes, prepare: Any) -> Any:
        sizes.append(len(raw))
        return real(raw, prepare)

    monkeypatch.setattr(list_decode, "_decode_steps", steps)
    return sizes


def labels(i: int) -> dict[str, str]:
    return {"app": f"web-{i}", "tier": "front"}


def statefulset(i: int) -> Obj:
    """Two volumeClaimTemplates: nested objects with their own metadata (the server
    writes them with kind and apiVersion first, so they never look like an item)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": f"db-{i}", "labels": labels(i)},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": labels(i)},
            "template": {
                "metadata": {"labels": labels(i)},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": name},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
                for name in ("data", "wal")
            ],
        },
    }


def deployment(i: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"web-{i}", "labels": labels(i)},
        "spec": {
            "selector": {"matchLabels": labels(i)},
            "template": {
                "metadata": {"labels": labels(i)},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def widget(resource: Resource, i: int) -> Obj:
    """The objects listed in its spec begin as the List's items do (keys sorted:
    ``{"apiVersion":"<the same>","kind":``): each is a false cut to skip."""
    thing = {"apiVersion": resource.api_version, "kind": "Widget", "n": i}
    return {
        "apiVersion": resource.api_version,
        "kind": "Widget",
        "metadata": {"name": f"w-{i}", "labels": labels(i)},
        "spec": {"things": [thing, thing, thing]},
    }


async def create_all(api: Any, resource: Resource, namespace: str, bodies: list[Obj]) -> None:
    for body in bodies:
        await request_json(api, "POST", resource.path(namespace=namespace), body=body)


def transform(obj: Obj) -> Obj:
    obj["metadata"].pop("managedFields", None)
    obj["seen"] = obj.get("seen", 0) + 1
    return obj


async def assert_itemwise_is_whole(lw: ApiListerWatcher, *, pages: int) -> None:
    """Listing item by item (pages of 2 at "", then one page at "0") gives the whole
    decode's items, each prepared once."""
    prepare = lambda page: item_function(page, transform)  # noqa: E731
    for rv, limit in (("", 2), ("0", None)):
        token: str | None = None
        got: list[Obj] = []
        expected: list[Obj] = []
        n = 0
        while True:
            n += 1
            kwargs: dict[str, Any] = {
                "resource_version": rv if token is None else None,
                "limit": limit,
                "continue_token": token,
            }
            whole = await lw.list(**kwargs)
            each = item_function(whole, transform)
            assert each is not None
            expected += [each(copy.deepcopy(o)) for o in whole["items"]]
            page = await lw.list_prepared(**kwargs, prepare=prepare)
            got += page["items"]
            token = page["metadata"].get("continue") or None
            if token is None:
                break
        assert got == expected
        assert all(o["seen"] == 1 for o in got)
        if limit:
            assert n == pages


async def test_built_in_kinds(
    api_client: Any, namespace: str, whole_decodes: list[int], buffered: list[int]
) -> None:
    await create_all(api_client, DEPLOYMENTS, namespace, [deployment(i) for i in range(5)])
    await create_all(api_client, STATEFULSETS, namespace, [statefulset(i) for i in range(5)])
    await create_all(
        api_client,
        CONFIGMAPS,
        namespace,
        [
            {"metadata": {"name": f"c{i}"}, "data": {"k": '},{"metadata":{"name":'}}
            for i in range(5)
        ],
    )
    for resource in (DEPLOYMENTS, STATEFULSETS, CONFIGMAPS):
        await assert_itemwise_is_whole(
            ApiListerWatcher(api_client, resource, namespace=namespace), pages=3
        )
        await assert_itemwise_is_whole(
            ApiListerWatcher(api_client, resource, namespace=namespace, metadata_only=True), pages=3
        )
    assert whole_decodes == []
    assert buffered == []  # streamed


async def test_custom_resources(
    api_client: Any, namespace: str, whole_decodes: list[int], buffered: list[int]
) -> None:
    async with widgets(api_client, namespace) as resource:
        await create_all(api_client, resource, namespace, [widget(resource, i) for i in range(5)])
        for i in range(5):  # a second manager: two managedFields entries
            await request_json(
                api_client,
                "PATCH",
                resource.path(f"w-{i}", namespace=namespace),
                body={"metadata": {"annotations": {"by": "other"}}},
                content_type="application/merge-patch+json",
                query=[("fieldManager", "other")],
            )
        await assert_itemwise_is_whole(
            ApiListerWatcher(api_client, resource, namespace=namespace), pages=3
        )
        await assert_itemwise_is_whole(
            ApiListerWatcher(api_client, resource, namespace=namespace, metadata_only=True), pages=3
        )
    assert whole_decodes == []
    # whole objects buffered (3 pages of 2, 1 at "0"); PartialObjectMetadataList streams
    assert len(buffered) == 3 + 1
