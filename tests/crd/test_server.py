"""Generated CRDs on the real API server: they install, both versions are served, the
server enforces the generated validation (naming the field) and applies the defaults;
typed reads and writes through the Client round-trip; and, property-style, the server
accepts every generated value the model accepts."""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from crd_models import Widget, WidgetSpec, WidgetStatus, WidgetV2
from pydantic import ValidationError

from informer import ApiError, Client, Resource, request_json
from informer.crd import InvalidObject, ObjectMeta, Schema, definitions
from informer.testing import install_crds

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

CRD = definitions([Widget, WidgetV2])[0]


@pytest.fixture(scope="module")
async def widgets(api_client: Any) -> AsyncIterator[Resource]:
    [resource] = await install_crds(api_client, CRD)
    yield resource


def widget(name: str, namespace: str, /, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": Widget.resource.api_version,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"name": "ab", **spec},
    }


async def test_both_versions_are_served(widgets: Resource, client: Client, namespace: str) -> None:
    assert widgets == Widget.resource  # the storage version
    await client.create(widget("w", namespace, size=4))
    as_v2 = await client.get(WidgetV2.resource, "w", namespace=namespace)
    assert as_v2["apiVersion"] == WidgetV2.resource.api_version
    assert WidgetV2.parse(as_v2).metadata.name == "w"


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"size": 11}, "spec.size", "should be less than or equal to 10"),
        ({"color": "purple"}, "spec.color", 'supported values: "red", "green", "blue"'),
        ({"name": "a"}, "spec.name", "should be at least 2 chars long"),
        ({"ratio": 1}, "spec.ratio", "should be less than 1"),
        ({"tags": ["x", "x"]}, "spec.tags[1]", "Duplicate value"),
        (
            {"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]},
            "spec.ports[1]",
            "Duplicate value",
        ),
        ({"ports": [{"name": "UP", "port": 1}]}, "spec.ports[0].name", "should match"),
        ({"labels": {str(i): "v" for i in range(5)}}, "spec.labels", "must have at most 4"),
        ({"size": 1, "ratio": 0.5}, "spec", "a ratio needs size > 1"),
    ],
    ids=[
        "maximum",
        "enum",
        "min-length",
        "exclusive-maximum",
        "set",
        "map-list",
        "pattern",
        "max-properties",
        "cel",
    ],
)
async def test_the_server_rejects_a_bad_spec_naming_the_field(
    widgets: Resource,
    client: Client,
    namespace: str,
    spec: dict[str, Any],
    field: str,
    message: str,
) -> None:
    obj = widget("bad", namespace, **spec)
    with pytest.raises(ApiError) as caught:
        await client.create(obj, resource=widgets)
    assert caught.value.status == 422
    assert f"{field}: " in str(caught.value) and message in str(caught.value), caught.value
    with pytest.raises((InvalidObject, ValidationError)):  # the model refuses it too
        Widget.parse(obj)


async def test_defaults_appear(widgets: Resource, client: Client, namespace: str) -> None:
    created = await client.create(widget("d", namespace))
    assert created["spec"] == {"name": "ab", "size": 3, "enabled": True}
    assert Widget.parse(created).to_dict() == created


class OlderWidgetSpec(Schema):
    """A model that predates ``color`` and ``tags``."""

    name: str
    size: int = 3


class OlderWidget(Widget):
    spec: OlderWidgetSpec  # type: ignore[assignment]


async def test_typed_writes_round_trip(widgets: Resource, client: Client, namespace: str) -> None:
    """create/update/update_status from to_dict(), apply from to_apply(): fields the
    model does not know are kept, the status survives a spec update, and an update from
    a stale read is refused (the resourceVersion is kept)."""
    new = Widget(
        metadata=ObjectMeta(name="t", namespace=namespace),
        spec=WidgetSpec(name="typed", size=2, color="red", tags=["a"]),
    )
    created = Widget.parse(await client.create(new.to_dict()))
    assert created.spec.color == "red" and created.metadata.uid
    created.status = WidgetStatus(replicas=2)
    with_status = Widget.parse(await client.update_status(created.to_dict()))
    assert with_status.status is not None and with_status.status.replicas == 2

    older = OlderWidget.parse(await client.get(widgets, "t", namespace=namespace))
    older.spec.size = 5
    updated = await client.update(older.to_dict())
    assert updated["spec"]["color"] == "red" and updated["spec"]["tags"] == ["a"]
    assert updated["spec"]["size"] == 5
    assert updated["status"] == {"replicas": 2}
    with pytest.raises(ApiError) as stale:
        await client.update(older.to_dict())  # older's resourceVersion is behind now
    assert stale.value.status == 409

    config = Widget(
        metadata=ObjectMeta(name="t", namespace=namespace),
        spec=WidgetSpec(name="typed", size=6),
    ).to_apply()
    applied = Widget.parse(await client.apply(config, force=True))
    assert applied.spec.size == 6 and applied.spec.color == "red"  # apply leaves the rest


# -- property-style: the schema accepts what the model accepts ------------------------


def sample(node: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A random value for a structural schema node: mostly in bounds, sometimes out."""
    if node.get("x-kubernetes-int-or-string"):
        return rng.choice([rng.randint(0, 100), rng.choice(["http", "8080", "x"])])
    if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
        return {rng.choice("abc"): rng.choice([1, "s", [1, 2], {"k": None}])}
    kind = node.get("type")
    if "enum" in node:
        return rng.choice([*node["enum"], "other"])
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", 12)
        size = rng.randint(max(0, low - 1), min(high + 1, 24))
        return "".join(rng.choice(string.ascii_lowercase + "Z1") for _ in range(size))
    if kind == "integer":
        return rng.randint(node.get("minimum", -5) - 1, node.get("maximum", 100) + 1)
    if kind == "number":
        return rng.uniform(node.get("minimum", -1) - 0.5, node.get("maximum", 10) + 0.5)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        items = [sample(node["items"], rng, depth + 1) for _ in range(rng.randint(0, 4))]
        if node.get("x-kubernetes-list-type") == "set" and rng.random() < 0.7:
            items = list(dict.fromkeys(items))
        return items
    if kind == "object" and "properties" in node:
        required = set(node.get("required", ()))
        return {
            name: sample(sub, rng, depth + 1)
            for name, sub in node["properties"].items()
            if name in required or rng.random() < 0.5
        }
    if kind == "object":
        values = node.get("additionalProperties", {"type": "string"})
        return {f"k{i}": sample(values, rng, depth + 1) for i in range(rng.randint(0, 5))}
    raise AssertionError(f"no sampler for {node}")


async def test_the_server_accepts_every_generated_value_the_model_accepts(
    widgets: Resource, client: Client, namespace: str
) -> None:
    spec_schema = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rng = random.Random(21)
    accepted = rejected = 0
    while accepted < 40:
        spec = sample(spec_schema, rng)
        obj = widget(f"p{accepted}", namespace) | {"spec": spec}
        try:
            Widget.parse(obj)
        except InvalidObject:
            rejected += 1
            continue
        stored = await request_json(
            client.api_client,
            "POST",
            widgets.path(namespace=namespace),
            query={"dryRun": "All"},
            body=obj,
        )
        assert Widget.parse(stored).spec.name == spec["name"]
        accepted += 1
    assert rejected > 10  # the corpus also held values the model refused
