"""Writes that would change nothing are not sent, and the results say what happened.

``create_or_update`` with a ``mutate`` that replaces a Deployment's whole spec by a
desired one omitting every field the server defaults: controller-runtime updates (and
reports ``updated``) on every call, since the comparison always differs. Here the
client remembers what its last write asked for and what the server answered
(``informer/_client/written.py``): the second call is ``UNCHANGED`` and sends no write.
``apply_with_result`` is server-side apply telling created / updated / unchanged.
Requests are counted (``ApiCalls``): "nothing sent" is asserted as requests not sent.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from api_calls import ApiCalls

from informer import Client, Obj, OperationResult, SharedInformerFactory
from informer.resources import CONFIGMAPS, DEPLOYMENTS

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

IMAGE = "registry.example/web:1"


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    return ApiCalls(monkeypatch)


def desired_spec(image: str = IMAGE) -> Obj:
    """A Deployment spec with only what the user means: every defaulted field omitted
    (replicas, strategy, revisionHistoryLimit, progressDeadlineSeconds, the pod's
    restartPolicy, dnsPolicy..., the container's imagePullPolicy, resources...)."""
    labels = {"app": "web"}
    return {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": image}]},
        },
    }


def stub(namespace: str, name: str = "web") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
    }


def replace_spec(image: str = IMAGE) -> Any:
    def mutate(obj: Obj) -> None:
        obj["spec"] = desired_spec(image)

    return mutate


@asynccontextmanager
async def cached(api_client: Any, namespace: str) -> AsyncIterator[Client]:
    """A client whose factory caches the namespace's Deployments (a controller's)."""
    factory = SharedInformerFactory(api_client, namespace=namespace)
    factory.informer_for(DEPLOYMENTS)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        yield Client(api_client, factory=factory)


# -- create_or_update ------------------------------------------------------------------


async def test_a_desired_spec_without_defaults_is_unchanged_from_the_second_call(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """The server filled in a dozen defaults the desired spec lacks: the second call sends
    nothing (from the cache: no request at all), a new image is one update, and asking
    for it again sends nothing either."""
    async with cached(api_client, namespace) as client:
        await client.discovery.resource_for("apps/v1", "Deployment")
        created, result = await client.create_or_update(stub(namespace), replace_spec())
        assert result is OperationResult.CREATED
        assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
        await client.wait_cached(created)
        api_calls.clear()
        same, result = await client.create_or_update(stub(namespace), replace_spec())
        assert result is OperationResult.UNCHANGED and api_calls.calls == []
        assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

        updated, result = await client.create_or_update(stub(namespace), replace_spec("web:2"))
        assert result is OperationResult.UPDATED and api_calls.methods() == ["PUT"]
        [container] = updated["spec"]["template"]["spec"]["containers"]
        assert (container["image"], container["imagePullPolicy"]) == ("web:2", "IfNotPresent")
        await client.wait_cached(updated)
        api_calls.clear()
        _, result = await client.create_or_update(stub(namespace), replace_spec("web:2"))
        assert result is OperationResult.UNCHANGED and api_calls.calls == []


async def test_without_a_cache_the_second_call_only_reads(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    client = Client(api_client)
    _, result = await client.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.CREATED
    api_calls.clear()
    _, result = await client.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.UNCHANGED and api_calls.methods() == ["GET"]


async def test_a_client_that_did_not_write_it_sends_one_no_op_update(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """After a restart the client knows nothing of its earlier writes: the first call
    sends the update, the server changes nothing (the resourceVersion stays), and the
    result is ``UNCHANGED``; from then on nothing is sent."""
    created, _ = await Client(api_client).create_or_update(stub(namespace), replace_spec())
    restarted = Client(api_client)
    await restarted.discovery.resource_for("apps/v1", "Deployment")
    api_calls.clear()
    answer, result = await restarted.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.UNCHANGED and api_calls.methods() == ["GET", "PUT"]
    assert answer["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    api_calls.clear()
    _, result = await restarted.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.UNCHANGED and api_calls.methods() == ["GET"]


async def test_changes_by_another_writer_are_seen(
    api_client: Any, namespace: str, api_calls: ApiCalls, client: Client
) -> None:
    """A status write by someone else changes nothing the desired spec asks for (no
    write); a spec change by someone else is undone (an update)."""
    ours = Client(api_client)
    await ours.discovery.resource_for("apps/v1", "Deployment")
    created, _ = await ours.create_or_update(stub(namespace), replace_spec())
    status = copy.deepcopy(created)
    status["status"] = {"observedGeneration": 1, "replicas": 0}
    await client.update_status(status)
    api_calls.clear()
    _, result = await ours.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.UNCHANGED and api_calls.writes() == []

    current = await client.get(DEPLOYMENTS, "web", namespace=namespace)
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "someone:else"
    await client.update(current)
    api_calls.clear()
    restored, result = await ours.create_or_update(stub(namespace), replace_spec())
    assert result is OperationResult.UPDATED and api_calls.methods() == ["GET", "PUT"]
    assert restored["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


async def test_a_removed_key_is_a_change(api_client: Any, namespace: str, client: Client) -> None:
    """The comparison never takes a missing field for a default: data replaced by a dict
    without one of its keys updates the ConfigMap."""
    ours = Client(api_client)
    cm = {"apiVersion": "v1", "kind": "ConfigMap"}
    cm["metadata"] = {"name": "c", "namespace": namespace}

    def data(values: dict[str, str]) -> Any:
        def mutate(obj: Obj) -> None:
            obj["data"] = dict(values)

        return mutate

    await ours.create_or_update(cm, data({"a": "1", "b": "2"}))
    written, result = await ours.create_or_update(cm, data({"a": "1"}))
    assert result is OperationResult.UPDATED and written["data"] == {"a": "1"}
    assert (await client.get(CONFIGMAPS, "c", namespace=namespace))["data"] == {"a": "1"}


# -- apply_with_result -----------------------------------------------------------------


def apply_config(namespace: str, image: str = IMAGE) -> Obj:
    return {**stub(namespace), "spec": desired_spec(image)}


async def test_apply_with_result_created_unchanged_updated(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """Read first (here from the API: no cache), then apply: missing -> CREATED; the same
    configuration again over the state it left -> UNCHANGED, no apply sent; another
    configuration -> UPDATED."""
    client = Client(api_client, field_manager="website-operator")
    await client.discovery.resource_for("apps/v1", "Deployment")
    api_calls.clear()
    created, result = await client.apply_with_result(apply_config(namespace))
    assert result is OperationResult.CREATED and api_calls.methods() == ["GET", "PATCH"]
    api_calls.clear()
    same, result = await client.apply_with_result(apply_config(namespace))
    assert result is OperationResult.UNCHANGED and api_calls.methods() == ["GET"]
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    api_calls.clear()
    updated, result = await client.apply_with_result(apply_config(namespace, "web:2"))
    assert result is OperationResult.UPDATED and api_calls.methods() == ["GET", "PATCH"]
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"


async def test_apply_with_result_by_a_new_client_reports_a_no_op(
    api_client: Any, namespace: str, api_calls: ApiCalls
) -> None:
    """Without a memory of the earlier apply, the apply is sent; the server leaves the
    resourceVersion, so the result is UNCHANGED (and the next call sends nothing)."""
    await Client(api_client, field_manager="op").apply_with_result(apply_config(namespace))
    async with cached(api_client, namespace) as client:
        client.field_manager = "op"
        await client.discovery.resource_for("apps/v1", "Deployment")
        api_calls.clear()
        _, result = await client.apply_with_result(apply_config(namespace))
        assert result is OperationResult.UNCHANGED and api_calls.methods() == ["PATCH"]
        api_calls.clear()
        _, result = await client.apply_with_result(apply_config(namespace))
        assert result is OperationResult.UNCHANGED and api_calls.calls == []
