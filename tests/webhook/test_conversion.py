"""Conversion webhooks without a server: hub and spoke, the ConversionReview codec,
clear failures, and the round-trip check helper."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from informer import Resource
from informer._failures import Failure
from informer._webhook.base import ReviewError
from informer.webhook import ConversionWebhook, Spoke, check_round_trip

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

HUB = Resource("shapes.example.com", "v1", "shapes", kind="Shape")


def v1alpha1_to_hub(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    obj["spec"] = {"size": {"width": spec.pop("width"), "height": spec.pop("height")}, **spec}
    return obj


def hub_to_v1alpha1(obj: dict[str, Any]) -> dict[str, Any]:
    size = obj["spec"].pop("size")
    obj["spec"].update(width=size["width"], height=size["height"])
    return obj


class V2:
    """A spoke as a class: ``colour`` is ``color`` in the hub."""

    def to_hub(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["color"] = obj["spec"].pop("colour")
        return obj

    def from_hub(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["colour"] = obj["spec"].pop("color")
        return obj


WEBHOOK = ConversionWebhook(
    HUB, {"v1alpha1": Spoke(to_hub=v1alpha1_to_hub, from_hub=hub_to_v1alpha1), "v2": V2()}
)


def shape(version: str, **spec: Any) -> dict[str, Any]:
    meta = {"name": "s", "namespace": "ns", "uid": "1"}
    return {
        "apiVersion": f"shapes.example.com/{version}",
        "kind": "Shape",
        "metadata": meta,
        "spec": spec,
    }


ALPHA = shape("v1alpha1", width=2, height=3, color="red")
HUB_SHAPE = shape("v1", size={"width": 2, "height": 3}, color="red")
V2_SHAPE = shape("v2", size={"width": 2, "height": 3}, colour="red")


@pytest.mark.parametrize(
    ("obj", "version", "expected"),
    [
        (ALPHA, "v1", HUB_SHAPE),
        (HUB_SHAPE, "v1alpha1", ALPHA),
        (ALPHA, "v2", V2_SHAPE),
        (V2_SHAPE, "v1alpha1", ALPHA),
        (HUB_SHAPE, "v1", HUB_SHAPE),
    ],
    ids=["spoke-to-hub", "hub-to-spoke", "spoke-to-spoke", "back", "same-version"],
)
def test_conversions_go_through_the_hub(obj: Any, version: str, expected: Any) -> None:
    before = orjson.dumps(obj)
    assert WEBHOOK.convert(obj, version) == expected
    assert orjson.dumps(obj) == before, "the object given is not changed"


async def test_a_review_converts_every_object() -> None:
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "r1",
            "desiredAPIVersion": "shapes.example.com/v1",
            "objects": [ALPHA, V2_SHAPE],
        },
    }
    out = orjson.loads(await WEBHOOK.review(orjson.dumps(body)))
    assert out["kind"] == "ConversionReview" and out["apiVersion"] == "apiextensions.k8s.io/v1"
    assert out["response"] == {
        "uid": "r1",
        "convertedObjects": [HUB_SHAPE, HUB_SHAPE],
        "result": {"status": "Success"},
    }


@pytest.mark.parametrize(
    ("objects", "desired", "message"),
    [
        (
            [shape("v1alpha1", width=1)],
            "shapes.example.com/v1",
            "from v1alpha1 to the hub: KeyError: 'height'",
        ),
        ([shape("v9")], "shapes.example.com/v1", "version 'v9' is unknown"),
        ([HUB_SHAPE], "shapes.example.com/v3", "version 'v3' is unknown"),
        ([HUB_SHAPE], "other.example.com/v1", "converts objects of shapes.example.com"),
    ],
    ids=["function-raised", "unknown-source", "unknown-target", "other-group"],
)
async def test_a_failed_conversion_answers_failure_naming_it(
    objects: list[Any], desired: str, message: str, handler_failures: list[Failure]
) -> None:
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "r2", "desiredAPIVersion": desired, "objects": objects},
    }
    response = orjson.loads(await WEBHOOK.review(orjson.dumps(body)))["response"]
    assert response["uid"] == "r2" and response["convertedObjects"] == []
    assert response["result"]["status"] == "Failure"
    assert message in response["result"]["message"]
    assert [f.kind for f in handler_failures] == ["webhook"]


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"{}",
        orjson.dumps({"kind": "ConversionReview", "apiVersion": "apiextensions.k8s.io/v1"}),
    ],
    ids=["not-json", "not-a-review", "no-request"],
)
async def test_a_malformed_conversion_review_is_a_review_error(body: bytes) -> None:
    with pytest.raises(ReviewError):
        await WEBHOOK.review(body)


@pytest.mark.parametrize("obj", [ALPHA, HUB_SHAPE, V2_SHAPE], ids=["spoke", "hub", "other-spoke"])
def test_a_lossless_conversion_passes_the_round_trip(obj: Any) -> None:
    check_round_trip(WEBHOOK, obj)


def test_a_lossy_conversion_fails_the_round_trip_with_the_difference() -> None:
    def lossy_from_hub(obj: dict[str, Any]) -> dict[str, Any]:
        obj = hub_to_v1alpha1(obj)
        obj["spec"].pop("color", None)
        return obj

    lossy = ConversionWebhook(
        HUB, {"v1alpha1": Spoke(to_hub=v1alpha1_to_hub, from_hub=lossy_from_hub)}
    )
    with pytest.raises(
        AssertionError, match=r"v1alpha1 -> v1 -> v1alpha1 .*'remove', 'path': '/spec/color'"
    ):
        check_round_trip(lossy, ALPHA)


def test_the_webhook_is_checked_at_construction() -> None:
    assert (WEBHOOK.path, WEBHOOK.crd_name, WEBHOOK.versions) == (
        "/convert-shapes-shapes-example-com",
        "shapes.shapes.example.com",
        ["v1", "v1alpha1", "v2"],
    )
    with pytest.raises(ValueError, match="is the hub"):
        ConversionWebhook(HUB, {"v1": V2()})
    with pytest.raises(TypeError, match="to_hub and from_hub"):
        ConversionWebhook(HUB, {"v2": object()})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="group and a kind"):
        ConversionWebhook(Resource("", "v1", "configmaps"), {"v2": V2()})
