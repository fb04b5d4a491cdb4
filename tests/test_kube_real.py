"""``informer._kube`` against the real control plane: what only the API server can tell
(which patch types it accepts)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from api_helpers import create, get

from informer import CONFIGMAPS
from informer._kube import request_json

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("content_type", "body", "data"),
    [
        (None, {"data": {"a": None, "c": "3"}}, {"b": "2", "c": "3"}),
        ("merge", {"data": {"a": "10"}}, {"a": "10", "b": "2"}),
        ("strategic", {"data": {"b": None}}, {"a": "1"}),
        ("json", [{"op": "replace", "path": "/data/a", "value": "x"}], {"a": "x", "b": "2"}),
        ("application/json-patch+json", [{"op": "remove", "path": "/data/b"}], {"a": "1"}),
    ],
    ids=["default-is-merge", "merge", "strategic", "json", "json-media-type"],
)  # fmt: skip
async def test_patch_types_accepted_by_the_server(
    api_client: Any, namespace: str, content_type: str | None, body: Any, data: dict[str, str]
) -> None:
    with anyio.fail_after(30):
        await create(api_client, CONFIGMAPS, namespace,
                     {"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}})  # fmt: skip
        path = CONFIGMAPS.path("p", namespace=namespace)
        got = await request_json(api_client, "PATCH", path, body=body, content_type=content_type)
        assert got["data"] == data
        assert (await get(api_client, CONFIGMAPS, namespace, "p"))["data"] == data


async def test_apply_patch(api_client: Any, namespace: str) -> None:
    path = CONFIGMAPS.path("applied", namespace=namespace)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"},
            "data": {"k": "v"}}  # fmt: skip
    with anyio.fail_after(30):
        got = await request_json(api_client, "PATCH", path, body=body, content_type="apply",
                                 query={"fieldManager": "test"})  # fmt: skip
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["managedFields"][0]["manager"] == "test"


async def test_plain_json_patch_is_refused_before_sending(api_client: Any, namespace: str) -> None:
    """The server would answer ``application/json`` with a bare 415."""
    with anyio.fail_after(30):
        created = await create(api_client, CONFIGMAPS, namespace, {"metadata": {"name": "p"}})
        path = CONFIGMAPS.path("p", namespace=namespace)
        with pytest.raises(ValueError, match="not a patch type"):
            await request_json(
                api_client, "PATCH", path, body={"data": {}}, content_type="application/json"
            )
        after = await get(api_client, CONFIGMAPS, namespace, "p")
    assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
