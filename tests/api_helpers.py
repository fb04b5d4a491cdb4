"""Test helpers: raw-dict API writes and bounded polling, shared by the e2e tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from informer import Obj, Resource, request_json


async def create(api: Any, resource: Resource, namespace: str, body: Obj) -> Obj:
    return await request_json(api, "POST", resource.path(namespace=namespace), body=body)


async def get(api: Any, resource: Resource, namespace: str, name: str) -> Obj:
    return await request_json(api, "GET", resource.path(name, namespace=namespace))


async def merge_patch(api: Any, resource: Resource, namespace: str, name: str, body: Obj) -> Obj:
    return await request_json(
        api,
        "PATCH",
        resource.path(name, namespace=namespace),
        body=body,
        content_type="application/merge-patch+json",
    )


async def delete(api: Any, resource: Resource, namespace: str, name: str) -> None:
    await request_json(api, "DELETE", resource.path(name, namespace=namespace))


async def until(condition: Callable[[], Any], what: str, within: float) -> None:
    """Poll a synchronous condition on state other tasks change (caches, stats) until it
    holds; fail the test naming ``what`` after ``within`` seconds."""
    try:
        with anyio.fail_after(within):
            while not condition():  # noqa: ASYNC110 - nobody signals these conditions
                await anyio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"not within {within}s: {what}")
