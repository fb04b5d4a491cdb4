"""The ConfigMapMirror sample's webhooks
(controllers/kube_informer_samples/configmap_mirror_webhooks.py): the
validator and the defaulter on their own, the v1beta1 <-> v1alpha1 conversion round
trip, and all three called by kube-apiserver on the sample's CRD (a rejected apply, a
defaulted label, a warning, a converted read)."""

from __future__ import annotations

import copy
from typing import Any

import anyio
import orjson
import pytest
from kube_informer_samples.configmap_mirror_webhooks import (
    CONVERSION,
    CRD_PATH,
    MAX_TARGETS,
    MIRRORS_V1ALPHA1,
    MIRRORS_V1BETA1,
    SOURCE_LABEL,
    WEBHOOKS,
    MirrorDefaulter,
    MirrorValidator,
)

from informer import ApiError, Client, Manager
from informer._rest.transport import open_response
from informer.resources import CUSTOM_RESOURCE_DEFINITIONS
from informer.testing import install_crds, serve_webhooks
from informer.webhook import AdmissionRequest, Denied, check_round_trip

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def alpha(namespace: str, name: str = "m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": MIRRORS_V1ALPHA1.api_version,
        "kind": "ConfigMapMirror",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": "app-config", **spec},
    }


def beta(namespace: str, name: str = "m", **targets: Any) -> dict[str, Any]:
    return {
        "apiVersion": MIRRORS_V1BETA1.api_version,
        "kind": "ConfigMapMirror",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"name": "app-config"}, "targets": targets},
    }


def create_request(obj: dict[str, Any]) -> AdmissionRequest:
    return AdmissionRequest("u", "CREATE", object=obj, namespace=obj["metadata"]["namespace"])


def test_the_validator_rejects_its_own_namespace_and_warns_on_many_targets() -> None:
    validator = MirrorValidator()
    own = alpha("shop", targetNamespaces=["a", "shop"])
    with pytest.raises(Denied, match="includes the mirror's own namespace 'shop'") as denied:
        validator.validate_create(own, create_request(own))
    assert denied.value.code == 422
    few = alpha("shop", targetNamespaces=[f"n{i}" for i in range(MAX_TARGETS)])
    assert validator.validate_create(few, create_request(few)) is None
    many = alpha("shop", targetNamespaces=[f"n{i}" for i in range(MAX_TARGETS + 1)])
    warning = validator.validate_create(many, create_request(many))
    assert isinstance(warning, str) and f"targets {MAX_TARGETS + 1} namespaces" in warning
    selected = alpha("shop", namespaceSelector={"matchLabels": {"team": "a"}})
    assert validator.validate_create(selected, create_request(selected)) is None


def test_the_defaulter_labels_the_source() -> None:
    obj = alpha("shop", targetNamespaces=["a"])
    MirrorDefaulter().default(obj, create_request(obj))
    assert obj["metadata"]["labels"] == {SOURCE_LABEL: "app-config"}


@pytest.mark.parametrize(
    "obj",
    [
        beta("shop", namespaces=["a", "b"]),
        beta("shop", selector={"matchLabels": {"team": "a"}}),
        {
            **alpha("shop", targetNamespaces=["a"]),
            "status": {"observedGeneration": 2, "syncedNamespaces": ["a"]},
        },
        alpha("shop", namespaceSelector={"matchExpressions": [{"key": "t", "operator": "Exists"}]}),
    ],
    ids=["beta-namespaces", "beta-selector", "alpha-with-status", "alpha-selector"],
)
def test_the_conversion_round_trips(obj: dict[str, Any]) -> None:
    check_round_trip(CONVERSION, obj)


def test_the_conversion_moves_the_fields() -> None:
    converted = CONVERSION.convert(beta("shop", namespaces=["a"]), "v1alpha1")
    assert converted["spec"] == {"source": "app-config", "targetNamespaces": ["a"]}
    assert converted["apiVersion"] == MIRRORS_V1ALPHA1.api_version


async def test_the_api_server_calls_the_samples_webhooks(
    api_client: Any, client: Client, namespace: str
) -> None:
    await install_crds(api_client, CRD_PATH)
    name = f"{MIRRORS_V1ALPHA1.plural}.{MIRRORS_V1ALPHA1.group}"
    before = await client.get(CUSTOM_RESOURCE_DEFINITIONS, name, cached=False)
    manager = Manager(api_client, namespaces=[namespace])
    for webhook in WEBHOOKS:
        manager.add_webhook(webhook)
    with anyio.fail_after(75):
        async with serve_webhooks(manager):
            # a rejected apply, with the handler's message
            with pytest.raises(ApiError, match="cannot be mirrored onto itself") as rejected:
                await client.apply(
                    alpha(namespace, "own", targetNamespaces=[namespace]), resource=MIRRORS_V1ALPHA1
                )
            assert rejected.value.status == 422
            # written at v1beta1, read at v1alpha1 (the storage version): converted, defaulted
            await client.create(
                beta(namespace, "new", namespaces=["a", "b"]), resource=MIRRORS_V1BETA1
            )
            stored = await client.get(MIRRORS_V1ALPHA1, "new", namespace=namespace, cached=False)
            assert stored["spec"] == {"source": "app-config", "targetNamespaces": ["a", "b"]}
            assert stored["metadata"]["labels"] == {SOURCE_LABEL: "app-config"}
            # written at v1alpha1, read at v1beta1
            await client.create(
                alpha(namespace, "old", namespaceSelector={"matchLabels": {"x": "y"}}),
                resource=MIRRORS_V1ALPHA1,
            )
            read = await client.get(MIRRORS_V1BETA1, "old", namespace=namespace, cached=False)
            assert read["spec"] == {
                "source": {"name": "app-config"},
                "targets": {"selector": {"matchLabels": {"x": "y"}}},
            }
            # a beta mirror targeting its own namespace is converted, then rejected
            with pytest.raises(ApiError, match="cannot be mirrored onto itself"):
                await client.create(
                    beta(namespace, "own2", namespaces=[namespace]), resource=MIRRORS_V1BETA1
                )
            # many targets: allowed, with a warning
            body = orjson.dumps(
                alpha(namespace, "many", targetNamespaces=[f"n{i}" for i in range(MAX_TARGETS + 2)])
            )
            async with open_response(
                api_client,
                "POST",
                MIRRORS_V1ALPHA1.path(namespace=namespace),
                query=None,
                data=body,
                content_type="application/json",
                verb="create",
                resource=MIRRORS_V1ALPHA1.group_resource,
                namespace=namespace,
                read_timeout=30,
            ) as (response, _):
                assert response.status == 201
                warnings = response.headers.getall("Warning", [])
            assert any(f"targets {MAX_TARGETS + 2} namespaces" in w for w in warnings), warnings
    after = await client.get(CUSTOM_RESOURCE_DEFINITIONS, name, cached=False)
    assert after["spec"]["conversion"] == before["spec"]["conversion"], "the CRD is restored"
    served = {v["name"]: v["served"] for v in after["spec"]["versions"]}
    assert served == {"v1alpha1": True, "v1beta1": False}
    assert copy.deepcopy(before["spec"]["versions"]) == after["spec"]["versions"]
