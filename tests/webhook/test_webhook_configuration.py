"""Configurations generated from the webhooks: Validating/MutatingWebhookConfiguration
entries, the CRD conversion stanza, cert-manager's injection annotation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from informer import Resource
from informer.resources import CONFIGMAPS
from informer.webhook import (
    CERT_MANAGER_INJECT_CA_FROM,
    ClientConfig,
    ConversionWebhook,
    MutatingWebhook,
    ServiceReference,
    Spoke,
    ValidatingWebhook,
    configure_crd,
    webhook_configurations,
    webhook_manifests,
)

pytestmark = pytest.mark.timeout(30)

HUB = Resource("shapes.example.com", "v1", "shapes", kind="Shape")
CONVERSION = ConversionWebhook(HUB, {"v1alpha1": Spoke(to_hub=dict, from_hub=dict)})
VALIDATING = ValidatingWebhook(
    [CONFIGMAPS, HUB],
    lambda r: None,
    name="vshape.example.com",
    operations=["CREATE", "UPDATE", "DELETE"],
    failure_policy="Ignore",
    timeout_seconds=5,
    namespace_selector={"matchLabels": {"team": "a"}},
    match_conditions={"not-kube-system": "request.namespace != 'kube-system'"},
)
MUTATING = MutatingWebhook(
    HUB, lambda o, r: None, name="mshape.example.com", reinvocation_policy="IfNeeded"
)
SERVICE = ClientConfig(service=ServiceReference("ops", "hooks"), ca_bundle=b"PEM")


def crd(served_alpha: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "shapes.shapes.example.com"},
        "spec": {
            "group": "shapes.example.com",
            "versions": [
                {"name": "v1", "served": True, "storage": True},
                {"name": "v1alpha1", "served": served_alpha, "storage": False},
            ],
        },
    }


def test_admission_configurations_carry_every_setting() -> None:
    validating, mutating = webhook_configurations(
        [VALIDATING, MUTATING, CONVERSION], SERVICE, name="shapes"
    )
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    assert validating["apiVersion"] == "admissionregistration.k8s.io/v1"
    (entry,) = validating["webhooks"]
    assert entry == {
        "name": "vshape.example.com",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {
            "service": {"namespace": "ops", "name": "hooks", "path": VALIDATING.path, "port": 443},
            "caBundle": base64.b64encode(b"PEM").decode(),
        },
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "scope": "*",
            },
            {
                "apiGroups": ["shapes.example.com"],
                "apiVersions": ["v1"],
                "resources": ["shapes"],
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "scope": "*",
            },
        ],
        "sideEffects": "None",
        "failurePolicy": "Ignore",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": 5,
        "namespaceSelector": {"matchLabels": {"team": "a"}},
        "matchConditions": [
            {"name": "not-kube-system", "expression": "request.namespace != 'kube-system'"}
        ],
    }
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    (entry,) = mutating["webhooks"]
    assert entry["reinvocationPolicy"] == "IfNeeded"
    assert entry["failurePolicy"] == "Fail" and entry["timeoutSeconds"] == 10


def test_a_url_client_config_appends_the_path() -> None:
    config = ClientConfig(url="https://127.0.0.1:9443/", ca_bundle=b"x").for_path("/validate-x")
    assert config == {"url": "https://127.0.0.1:9443/validate-x", "caBundle": "eA=="}
    with pytest.raises(ValueError, match="HTTPS"):
        ClientConfig(url="http://127.0.0.1:9443")
    with pytest.raises(ValueError, match="either a url or a service"):
        ClientConfig()


def test_configure_crd_sets_the_conversion_and_serves_its_versions() -> None:
    original = crd()
    configured = configure_crd(original, CONVERSION, SERVICE)
    assert original == crd(), "the definition given is not changed"
    assert configured["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": SERVICE.for_path(CONVERSION.path),
            "conversionReviewVersions": ["v1"],
        },
    }
    assert [v["served"] for v in configured["spec"]["versions"]] == [True, True]
    with pytest.raises(ValueError, match="converts the CRD"):
        configure_crd({**crd(), "metadata": {"name": "other"}}, CONVERSION, SERVICE)


def test_manifests_with_cert_manager_annotate_everything_and_omit_the_bundle() -> None:
    injected = ClientConfig(service=ServiceReference("ops", "hooks"))
    manifests = webhook_manifests(
        [VALIDATING, CONVERSION],
        injected,
        name="shapes",
        crds=[crd()],
        cert_manager_certificate="ops/hooks-cert",
    )
    assert [m["kind"] for m in manifests] == [
        "ValidatingWebhookConfiguration",
        "CustomResourceDefinition",
    ]
    for manifest in manifests:
        assert manifest["metadata"]["annotations"] == {
            CERT_MANAGER_INJECT_CA_FROM: "ops/hooks-cert"
        }
    assert "caBundle" not in manifests[0]["webhooks"][0]["clientConfig"]
    with pytest.raises(ValueError, match="pass its definition in crds"):
        webhook_manifests([CONVERSION], injected, name="shapes")


def test_two_webhooks_of_one_configuration_cannot_share_a_name() -> None:
    twin = ValidatingWebhook(CONFIGMAPS, lambda r: None, name="vshape.example.com", path="/other")
    with pytest.raises(ValueError, match="share a name"):
        webhook_configurations([VALIDATING, twin], SERVICE, name="x")
