"""Admission webhooks without a server: the AdmissionReview codec, the handler shapes
(functions, ``Validator``, ``Defaulter``, sync and async), denials, warnings, the
computed patch, and the failure rules (a raising or slow handler answers a denial and is
reported as an absorbed failure)."""

from __future__ import annotations

import base64
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

from informer import Resource
from informer._failures import Failure
from informer._webhook.base import ReviewError
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.webhook import (
    AdmissionRequest,
    Defaulter,
    Denied,
    MutatingWebhook,
    ValidatingWebhook,
    Validator,
    apply_json_patch,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MIRRORS = Resource("mirror.example.com", "v1", "mirrors", kind="Mirror")


def cm(name: str = "c", **data: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def review(
    operation: str,
    obj: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    *,
    api_version: str = "admission.k8s.io/v1",
    dry_run: bool = False,
) -> bytes:
    request = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": "c",
        "namespace": "ns",
        "operation": operation,
        "userInfo": {"username": "alice"},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    return orjson.dumps({"apiVersion": api_version, "kind": "AdmissionReview", "request": request})


async def answer(webhook: ValidatingWebhook | MutatingWebhook, body: bytes) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(await webhook.review(body))
    assert out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == "u-1"
    return out


class Checks(Validator):
    def validate_create(self, obj: Any, request: AdmissionRequest) -> Any:
        if obj["data"].get("bad"):
            raise Denied(f"bad is {obj['data']['bad']}", code=422, warnings=["look closer"])
        return "created"

    async def validate_update(self, old: Any, new: Any, request: AdmissionRequest) -> Any:
        await anyio.lowlevel.checkpoint()
        return [f"{old['data']} -> {new['data']}", "second"]


@pytest.mark.parametrize(
    ("operation", "obj", "old", "allowed", "warnings"),
    [
        ("CREATE", cm(), None, True, ["created"]),
        ("UPDATE", cm(a="2"), cm(a="1"), True, ["{'a': '1'} -> {'a': '2'}", "second"]),
        ("DELETE", None, cm(), True, None),
        ("CONNECT", None, None, True, None),
    ],
    ids=["create", "update-async", "delete-not-overridden", "connect"],
)
async def test_a_validator_dispatches_by_operation(
    operation: str, obj: Any, old: Any, allowed: bool, warnings: list[str] | None
) -> None:
    webhook = ValidatingWebhook(CONFIGMAPS, Checks(), name="vcm.example.com")
    response = (await answer(webhook, review(operation, obj, old)))["response"]
    assert response["allowed"] is allowed
    assert response.get("warnings") == warnings
    assert "patch" not in response


async def test_a_denial_carries_message_code_reason_and_warnings() -> None:
    webhook = ValidatingWebhook(CONFIGMAPS, Checks(), name="vcm.example.com")
    response = (await answer(webhook, review("CREATE", cm(bad="yes"))))["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "metadata": {},
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": "bad is yes",
    }
    assert response["warnings"] == ["look closer"]


def test_a_validators_default_operations_are_the_ones_it_overrides() -> None:
    assert ValidatingWebhook(CONFIGMAPS, Checks(), name="v.example.com").operations == (
        "CREATE",
        "UPDATE",
    )

    class OnDelete(Validator):
        def validate_delete(self, obj: Any, request: AdmissionRequest) -> None:
            return None

    assert ValidatingWebhook(CONFIGMAPS, OnDelete(), name="v.example.com").operations == ("DELETE",)
    fn = ValidatingWebhook(CONFIGMAPS, lambda r: None, name="v.example.com")
    assert fn.operations == ("CREATE", "UPDATE")


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
async def test_a_function_sees_the_request_and_dry_run(dry_run: bool) -> None:
    seen: list[AdmissionRequest] = []

    def check(request: AdmissionRequest) -> None:
        seen.append(request)

    webhook = ValidatingWebhook(CONFIGMAPS, check, name="vcm.example.com")
    body = review(
        "UPDATE", cm(a="2"), cm(a="1"), api_version="admission.k8s.io/v1beta1", dry_run=dry_run
    )
    out = await answer(webhook, body)
    assert out["apiVersion"] == "admission.k8s.io/v1beta1", "answered in the request's version"
    (request,) = seen
    assert request.dry_run is dry_run
    assert (request.operation, request.key, request.user_info["username"]) == (
        "UPDATE",
        "ns/c",
        "alice",
    )
    assert request.object == cm(a="2") and request.old_object == cm(a="1")


class AddLabel(Defaulter):
    def default(self, obj: Any, request: AdmissionRequest) -> str:
        obj["metadata"].setdefault("labels", {})["defaulted"] = "yes"
        obj["data"].pop("drop", None)
        return "defaulted a label"


async def test_a_defaulter_gets_a_minimal_patch() -> None:
    original = cm(keep="1", drop="2")
    webhook = MutatingWebhook(CONFIGMAPS, AddLabel(), name="mcm.example.com")
    response = (await answer(webhook, review("CREATE", original)))["response"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patch = orjson.loads(base64.b64decode(response["patch"]))
    assert patch == [
        {"op": "add", "path": "/metadata/labels", "value": {"defaulted": "yes"}},
        {"op": "remove", "path": "/data/drop"},
    ]
    assert apply_json_patch(original, patch)["metadata"]["labels"] == {"defaulted": "yes"}
    assert response["warnings"] == ["defaulted a label"]


async def test_a_mutation_that_changes_nothing_sends_no_patch_and_delete_is_allowed() -> None:
    async def untouched(obj: Any, request: AdmissionRequest) -> None:
        return None

    webhook = MutatingWebhook(CONFIGMAPS, untouched, name="mcm.example.com", operations=["*"])
    for body in (review("CREATE", cm()), review("DELETE", None, cm())):
        response = (await answer(webhook, body))["response"]
        assert response == {"uid": "u-1", "allowed": True}


async def test_a_raising_handler_answers_a_denial_and_is_an_absorbed_failure(
    handler_failures: list[Failure],
) -> None:
    def broken(request: AdmissionRequest) -> None:
        raise KeyError("spec")

    webhook = ValidatingWebhook(CONFIGMAPS, broken, name="vcm.example.com")
    response = (await answer(webhook, review("CREATE", cm())))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert response["status"]["message"] == "webhook vcm.example.com failed: KeyError: 'spec'"
    (failure,) = handler_failures
    assert (failure.kind, failure.where, failure.key) == ("webhook", "vcm.example.com", "ns/c")
    assert isinstance(failure.error, KeyError)


async def test_a_slow_handler_is_cut_off_at_its_timeout(handler_failures: list[Failure]) -> None:
    async def slow(obj: Any, request: AdmissionRequest) -> None:
        await anyio.sleep_forever()

    webhook = MutatingWebhook(CONFIGMAPS, slow, name="mcm.example.com", handler_timeout=0.1)
    with anyio.fail_after(5):
        response = (await answer(webhook, review("CREATE", cm())))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 504
    assert "did not answer within 0.1s" in response["status"]["message"]
    assert [f.kind for f in handler_failures] == ["webhook"]
    assert isinstance(handler_failures[0].error, TimeoutError)


async def test_a_handler_returning_a_wrong_type_is_a_failure(
    handler_failures: list[Failure],
) -> None:
    webhook = ValidatingWebhook(CONFIGMAPS, lambda r: 42, name="vcm.example.com")  # type: ignore[arg-type, return-value]
    response = (await answer(webhook, review("CREATE", cm())))["response"]
    assert response["allowed"] is False and "TypeError" in response["status"]["message"]
    assert len(handler_failures) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not an AdmissionReview"),
        (
            orjson.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v2"}),
            "unsupported",
        ),
        (
            orjson.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}),
            "no request",
        ),
        (
            orjson.dumps(
                {
                    "kind": "AdmissionReview",
                    "apiVersion": "admission.k8s.io/v1",
                    "request": {"operation": "CREATE"},
                }
            ),
            "no uid",
        ),
        (
            orjson.dumps(
                {
                    "kind": "AdmissionReview",
                    "apiVersion": "admission.k8s.io/v1",
                    "request": {"uid": "u", "operation": "EAT"},
                }
            ),
            "unknown operation",
        ),
    ],
    ids=["not-json", "not-a-review", "bad-version", "no-request", "no-uid", "bad-operation"],
)
async def test_a_malformed_review_is_a_review_error(body: bytes, message: str) -> None:
    webhook = ValidatingWebhook(CONFIGMAPS, lambda r: None, name="vcm.example.com")
    with pytest.raises(ReviewError, match=message):
        await webhook.review(body)


def test_paths_default_to_kubebuilders_and_names_are_checked() -> None:
    assert ValidatingWebhook(MIRRORS, lambda r: None, name="v.example.com").path == (
        "/validate-mirror-example-com-v1-mirror"
    )
    assert MutatingWebhook(DEPLOYMENTS, lambda o, r: None, name="m.example.com").path == (
        "/mutate-apps-v1-deployment"
    )
    assert (
        MutatingWebhook(CONFIGMAPS, lambda o, r: None, name="m.example.com").path
        == "/mutate--v1-configmap"
    )
    with pytest.raises(ValueError, match="at least three"):
        ValidatingWebhook(MIRRORS, lambda r: None, name="short.name")
    with pytest.raises(ValueError, match="absolute URL path"):
        ValidatingWebhook(MIRRORS, lambda r: None, name="v.example.com", path="validate?x=1")
    with pytest.raises(ValueError, match="timeout_seconds"):
        ValidatingWebhook(MIRRORS, lambda r: None, name="v.example.com", timeout_seconds=31)
    with pytest.raises(ValueError, match="400-599"):
        Denied("no", code=200)
    assert ValidatingWebhook(MIRRORS, lambda r: None, name="v.example.com").handler_timeout == 9.0
    assert (
        ValidatingWebhook(
            MIRRORS, lambda r: None, name="v.example.com", timeout_seconds=2
        ).handler_timeout
        == 1.6
    )
