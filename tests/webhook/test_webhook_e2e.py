"""Webhooks on the real control plane: kube-apiserver calls the Manager's webhook server
(``informer.testing.serve_webhooks``): rejections with the handler's message (typed
errors through the Client), defaulted fields, warnings, validated deletes, a handler
that raises, CRD conversion between two versions, a certificate rotation under load, and
malformed bodies."""

from __future__ import annotations

import secrets
import ssl
from typing import Any

import anyio
import orjson
import pytest
from http_client import request

from informer import Client, Forbidden, Manager, Resource, ServerError
from informer._failures import Failure
from informer._rest.transport import open_response
from informer.resources import CONFIGMAPS, CUSTOM_RESOURCE_DEFINITIONS
from informer.testing import eventually, serve_webhooks
from informer.webhook import (
    AdmissionRequest,
    ConversionWebhook,
    Defaulter,
    Denied,
    MutatingWebhook,
    Spoke,
    ValidatingWebhook,
    Validator,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

PROTECTED = "example.com/protected"


class ConfigMapChecks(Validator):
    """Denies ``data.bad``, warns on ``data.legacy``, records dry runs, protects deletes."""

    def __init__(self) -> None:
        self.dry_runs: list[bool] = []

    def validate_create(self, obj: Any, request: AdmissionRequest) -> Any:
        self.dry_runs.append(request.dry_run)
        data = obj.get("data") or {}
        if "bad" in data:
            raise Denied(f"data.bad is not allowed (got {data['bad']!r})")
        if "boom" in data:
            raise RuntimeError("the handler broke")
        return ["data.legacy is deprecated: use data.modern"] if "legacy" in data else None

    async def validate_update(self, old: Any, new: Any, request: AdmissionRequest) -> Any:
        return self.validate_create(new, request)

    def validate_delete(self, obj: Any, request: AdmissionRequest) -> None:
        if (obj["metadata"].get("labels") or {}).get(PROTECTED) == "true":
            raise Denied(
                f"{obj['metadata']['name']} is protected: remove the label {PROTECTED} first"
            )


class Stamp(Defaulter):
    def default(self, obj: Any, request: AdmissionRequest) -> None:
        obj.setdefault("data", {}).setdefault("owner", "platform-team")
        obj["metadata"].setdefault("labels", {})["example.com/defaulted"] = "true"


def configmap(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def hooks() -> tuple[ConfigMapChecks, list[Any]]:
    checks = ConfigMapChecks()
    return checks, [
        ValidatingWebhook(CONFIGMAPS, checks, name="vconfigmap.example.com"),
        MutatingWebhook(CONFIGMAPS, Stamp(), name="mconfigmap.example.com"),
    ]


async def test_admission_through_the_api_server(
    api_client: Any, client: Client, namespace: str, handler_failures: list[Failure]
) -> None:
    checks, webhooks = hooks()
    manager = Manager(api_client, namespaces=[namespace])
    for webhook in webhooks:
        manager.add_webhook(webhook)
    with anyio.fail_after(60):
        async with serve_webhooks(manager) as served:
            # a bad object is rejected with the handler's message, as a typed error
            with pytest.raises(Forbidden) as rejected:
                await client.create(configmap("bad", namespace, bad="yes"))
            denied = 'admission webhook "vconfigmap.example.com" denied the request: '
            assert f"{denied}data.bad is not allowed (got 'yes')" in str(rejected.value)
            assert rejected.value.status == 403

            # a defaulted field and label appear on create
            created = await client.create(configmap("good", namespace, app="1"))
            assert created["data"] == {"app": "1", "owner": "platform-team"}
            assert created["metadata"]["labels"] == {"example.com/defaulted": "true"}

            # warnings reach the client (Warning headers)
            body = orjson.dumps(configmap("old", namespace, legacy="1"))
            async with open_response(
                api_client,
                "POST",
                CONFIGMAPS.path(namespace=namespace),
                query=None,
                data=body,
                content_type="application/json",
                verb="create",
                resource="configmaps",
                namespace=namespace,
                read_timeout=30,
            ) as (response, _):
                assert response.status == 201
                warnings = response.headers.getall("Warning", [])
            assert any("data.legacy is deprecated: use data.modern" in w for w in warnings), (
                warnings
            )

            # dryRun is visible to the handler
            checks.dry_runs.clear()
            async with open_response(
                api_client,
                "POST",
                CONFIGMAPS.path(namespace=namespace),
                query={"dryRun": "All"},
                data=orjson.dumps(configmap("dry", namespace)),
                content_type="application/json",
                verb="create",
                resource="configmaps",
                namespace=namespace,
                read_timeout=30,
            ) as (response, _):
                assert response.status == 201
            assert checks.dry_runs == [True]

            # a delete is validated
            await client.create(
                {
                    **configmap("keep", namespace),
                    "metadata": {
                        "name": "keep",
                        "namespace": namespace,
                        "labels": {PROTECTED: "true"},
                    },
                }
            )
            with pytest.raises(Forbidden, match=r"keep is protected: remove the label"):
                await client.delete(CONFIGMAPS, "keep", namespace=namespace)
            await client.delete(CONFIGMAPS, "good", namespace=namespace)

            # a handler that raises: a clear denial (code 500), an absorbed failure
            with pytest.raises(
                ServerError,
                match=r"webhook vconfigmap.example.com failed: RuntimeError: the handler broke",
            ):
                await client.create(configmap("boom", namespace, boom="1"))
            assert [(f.kind, f.where) for f in handler_failures] == [
                ("webhook", "vconfigmap.example.com")
            ]

            # metrics and readiness of the Manager
            text = manager.metrics.render()[0].decode()
            path = webhooks[0].path
            assert (
                f'controller_runtime_webhook_requests_total{{code="200",webhook="{path}"}}' in text
            )
            (ready,) = [c for c in manager.observability.checks.readiness if c.name == "webhooks"]
            assert ready.check() is None
            assert served.configurations and all(
                e["namespaceSelector"]["matchExpressions"][-1]["values"] == [namespace]
                for c in served.configurations
                for e in c["webhooks"][:-1]
            )
    # the configurations are gone with the block: the namespace accepts anything again
    await eventually(
        lambda: client.create(configmap(f"after-{secrets.token_hex(2)}", namespace, bad="ok")),
        timeout=20,
        retry_on=(AssertionError, Forbidden),
    )


async def test_malformed_bodies_get_400_and_the_webhook_keeps_serving(
    api_client: Any, client: Client, namespace: str
) -> None:
    _, webhooks = hooks()
    manager = Manager(api_client, namespaces=[namespace])
    for webhook in webhooks:
        manager.add_webhook(webhook)
    with anyio.fail_after(60):
        async with serve_webhooks(manager) as served:
            context = ssl.create_default_context(cadata=served.ca_pem.decode())
            for body in (
                b"{",
                b"[1, 2]",
                b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}',
            ):
                raw = (
                    f"POST {webhooks[0].path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                answer = await request(served.port, raw, context)
                assert answer.status == 400
                assert orjson.loads(answer.body)["reason"] == "BadRequest"
            created = await client.create(configmap("still-served", namespace))
            assert created["data"]["owner"] == "platform-team"


async def test_the_webhook_survives_a_certificate_rotation_without_dropping_requests(
    api_client: Any, client: Client, namespace: str
) -> None:
    _, webhooks = hooks()
    manager = Manager(api_client, namespaces=[namespace])
    for webhook in webhooks:
        manager.add_webhook(webhook)
    failures: list[BaseException] = []
    done = 0
    with anyio.fail_after(75):
        async with serve_webhooks(manager) as served:
            context = ssl.create_default_context(cadata=served.ca_pem.decode())

            async def serial() -> int:
                import anyio.streams.tls
                from cryptography import x509

                stream = await anyio.connect_tcp(
                    "127.0.0.1", served.port, ssl_context=context, tls_standard_compatible=False
                )
                async with stream:
                    der = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate_binary)
                return x509.load_der_x509_certificate(der).serial_number

            async def writer(worker: int, stop: anyio.Event) -> None:
                nonlocal done
                i = 0
                while not stop.is_set():
                    try:
                        created = await client.create(
                            configmap(f"w{worker}-{i}", namespace, n=str(i))
                        )
                        assert created["data"]["owner"] == "platform-team"
                        done += 1
                    except BaseException as exc:
                        failures.append(exc)
                        raise
                    i += 1

            before = await serial()
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                for worker in range(3):
                    tg.start_soon(writer, worker, stop)
                await eventually(lambda: done >= 20, timeout=20)
                served.rotate_certificate(check_interval=0.1)

                async def rotated() -> None:
                    assert await serial() != before

                await eventually(rotated, timeout=10)
                at_rotation = done
                await eventually(lambda: done >= at_rotation + 20, timeout=20)
                stop.set()
    assert failures == []
    assert done >= 40


# ------------------------------------------------------------------------- conversion


def shapes_crd(group: str) -> dict[str, Any]:
    def version(name: str, storage: bool, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "served": True,
            "storage": storage,
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": spec}},
                }
            },
        }

    size = {
        "type": "object",
        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"shapes.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "shapes", "singular": "shape", "kind": "Shape"},
            "versions": [
                version(
                    "v1alpha1", False, {"width": {"type": "integer"}, "height": {"type": "integer"}}
                ),
                version("v1", True, {"size": size}),
            ],
        },
    }


def to_hub(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    obj["spec"] = {"size": {"width": spec.get("width", 0), "height": spec.get("height", 0)}}
    return obj


def from_hub(obj: dict[str, Any]) -> dict[str, Any]:
    size = (obj.get("spec") or {}).get("size") or {}
    obj["spec"] = {"width": size.get("width", 0), "height": size.get("height", 0)}
    return obj


async def test_a_crd_served_at_two_versions_converts_through_the_webhook(
    api_client: Any, client: Client, namespace: str
) -> None:
    group = f"conv{secrets.token_hex(3)}.example.com"
    hub = Resource(group, "v1", "shapes", kind="Shape")
    alpha = Resource(group, "v1alpha1", "shapes", kind="Shape")
    conversion = ConversionWebhook(hub, {"v1alpha1": Spoke(to_hub=to_hub, from_hub=from_hub)})
    manager = Manager(api_client, namespaces=[namespace])
    manager.add_webhook(conversion)
    try:
        with anyio.fail_after(75):
            async with serve_webhooks(manager, crds=[shapes_crd(group)]):
                old = {
                    "apiVersion": alpha.api_version,
                    "kind": "Shape",
                    "metadata": {"name": "a", "namespace": namespace},
                    "spec": {"width": 2, "height": 3},
                }
                await client.create(old, resource=alpha)
                new = {
                    "apiVersion": hub.api_version,
                    "kind": "Shape",
                    "metadata": {"name": "b", "namespace": namespace},
                    "spec": {"size": {"width": 5, "height": 7}},
                }
                await client.create(new, resource=hub)
                # stored at v1, read back at both versions
                assert (await client.get(hub, "a", namespace=namespace, cached=False))["spec"] == {
                    "size": {"width": 2, "height": 3}
                }
                assert (await client.get(alpha, "a", namespace=namespace, cached=False))[
                    "spec"
                ] == {"width": 2, "height": 3}
                read_b = await client.get(alpha, "b", namespace=namespace, cached=False)
                assert (read_b["apiVersion"], read_b["spec"]) == (
                    alpha.api_version,
                    {"width": 5, "height": 7},
                )
                listed = await client.list(alpha, namespace=namespace, cached=False)
                assert sorted((o["metadata"]["name"], o["spec"]["width"]) for o in listed) == [
                    ("a", 2),
                    ("b", 5),
                ]
                definition = await client.get(
                    CUSTOM_RESOURCE_DEFINITIONS, f"shapes.{group}", cached=False
                )
                assert definition["status"]["storedVersions"] == ["v1"]
                assert definition["spec"]["conversion"]["strategy"] == "Webhook"
                assert manager.webhook_server is not None
                assert manager.webhook_server.metrics.requests(conversion.path, 200) >= 3
    finally:
        await client.delete(CUSTOM_RESOURCE_DEFINITIONS, f"shapes.{group}", missing_ok=True)
