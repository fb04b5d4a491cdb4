"""The cluster side of webhooks, generated from the registered ones: the
ValidatingWebhookConfiguration and MutatingWebhookConfiguration
(``admissionregistration.k8s.io/v1``) and each CRD's ``spec.conversion``.

Where the API server reaches the webhook server is a :class:`ClientConfig`: a Service
(in a cluster: ``ClientConfig(service=ServiceReference("ns", "name"))``, port 443 of
the Service forwarding to the Manager's ``--webhook-bind-address``) or a URL (the test
control plane: ``https://127.0.0.1:<port>``), each webhook's ``path`` appended, and the
PEM CA bundle the API server verifies the serving certificate with.

With cert-manager, leave ``ca_bundle`` out and pass ``cert_manager_certificate=
"<namespace>/<Certificate name>"``: every generated object carries the annotation
``cert-manager.io/inject-ca-from`` (:data:`CERT_MANAGER_INJECT_CA_FROM`), and
cert-manager's CA injector fills in ``caBundle`` (and keeps it current when the CA
rotates). The Certificate's Secret is mounted as the Manager's ``--webhook-cert-dir``
(``tls.crt``, ``tls.key``), re-read when cert-manager renews it.

Every generated entry lists ``admissionReviewVersions: [v1]`` (or
``conversionReviewVersions``), the webhook's ``sideEffects``, ``failurePolicy``,
``matchPolicy``, ``timeoutSeconds``, its rules (one per resource: group, version,
plural, operations, ``scope: "*"``) and, when set, its selectors and
``matchConditions``.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .._meta.types import Obj
from .admission import AdmissionWebhook, MutatingWebhook, ValidatingWebhook
from .base import Webhook
from .conversion import ConversionWebhook

__all__ = [
    "CERT_MANAGER_INJECT_CA_FROM",
    "ClientConfig",
    "ServiceReference",
    "admission_entry",
    "configure_crd",
    "crd_conversion",
    "webhook_configurations",
    "webhook_manifests",
]

CERT_MANAGER_INJECT_CA_FROM: Final = "cert-manager.io/inject-ca-from"
"""cert-manager's CA injector fills ``caBundle`` of objects annotated with it (the value:
``<namespace>/<Certificate name>``)."""

ADMISSION_API_VERSION: Final = "admissionregistration.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class ServiceReference:
    """The Service in front of the webhook server (``port`` is the Service's)."""

    namespace: str
    name: str
    port: int = 443


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How the API server reaches the webhook server: ``url`` (``https://host:port``,
    without a path) or ``service``, and ``ca_bundle`` (PEM) to verify its certificate
    (``None``: injected by cert-manager, or the API server's own trust store)."""

    url: str | None = None
    service: ServiceReference | None = None
    ca_bundle: bytes | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.service is None):
            raise ValueError("a webhook ClientConfig has either a url or a service")
        if self.url is not None and not self.url.startswith("https://"):
            raise ValueError(f"the API server calls webhooks over HTTPS only, got {self.url!r}")

    def for_path(self, path: str) -> Obj:
        """The ``clientConfig`` of the webhook served at ``path``."""
        config: Obj
        if self.service is not None:
            service = self.service
            config = {
                "service": {
                    "namespace": service.namespace,
                    "name": service.name,
                    "path": path,
                    "port": service.port,
                }
            }
        else:
            assert self.url is not None
            config = {"url": self.url.rstrip("/") + path}
        if self.ca_bundle is not None:
            config["caBundle"] = base64.b64encode(self.ca_bundle).decode()
        return config


def admission_entry(webhook: AdmissionWebhook, client_config: ClientConfig) -> Obj:
    """``webhook``'s entry in the ``webhooks`` list of its configuration."""
    rules = [
        {
            "apiGroups": [r.group],
            "apiVersions": [r.version],
            "resources": [r.plural],
            "operations": list(webhook.operations),
            "scope": "*",
        }
        for r in webhook.resources
    ]
    entry: Obj = {
        "name": webhook.name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config.for_path(webhook.path),
        "rules": rules,
        "sideEffects": webhook.side_effects,
        "failurePolicy": webhook.failure_policy,
        "matchPolicy": webhook.match_policy,
        "timeoutSeconds": webhook.timeout_seconds,
    }
    if webhook.namespace_selector is not None:
        entry["namespaceSelector"] = copy.deepcopy(webhook.namespace_selector)
    if webhook.object_selector is not None:
        entry["objectSelector"] = copy.deepcopy(webhook.object_selector)
    if webhook.match_conditions:
        entry["matchConditions"] = [
            {"name": n, "expression": e} for n, e in webhook.match_conditions.items()
        ]
    if isinstance(webhook, MutatingWebhook):
        entry["reinvocationPolicy"] = webhook.reinvocation_policy
    return entry


def _metadata(
    name: str, labels: Mapping[str, str] | None, cert_manager_certificate: str | None
) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    if cert_manager_certificate:
        meta["annotations"] = {CERT_MANAGER_INJECT_CA_FROM: cert_manager_certificate}
    return meta


def webhook_configurations(
    webhooks: Iterable[Webhook],
    client_config: ClientConfig,
    *,
    name: str,
    labels: Mapping[str, str] | None = None,
    cert_manager_certificate: str | None = None,
) -> list[Obj]:
    """The ValidatingWebhookConfiguration and the MutatingWebhookConfiguration (each only
    when there are webhooks of its type), both called ``name``, of the admission webhooks
    among ``webhooks`` (conversion webhooks are configured in their CRD:
    :func:`configure_crd`)."""
    hooks = list(webhooks)
    out: list[Obj] = []
    for kind, cls in (
        ("ValidatingWebhookConfiguration", ValidatingWebhook),
        ("MutatingWebhookConfiguration", MutatingWebhook),
    ):
        entries = [admission_entry(h, client_config) for h in hooks if isinstance(h, cls)]
        names = [e["name"] for e in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"two {kind} webhooks share a name: {sorted(names)}")
        if entries:
            out.append(
                {
                    "apiVersion": ADMISSION_API_VERSION,
                    "kind": kind,
                    "metadata": _metadata(name, labels, cert_manager_certificate),
                    "webhooks": entries,
                }
            )
    return out


def crd_conversion(webhook: ConversionWebhook, client_config: ClientConfig) -> Obj:
    """The CRD's ``spec.conversion`` calling ``webhook``."""
    return {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": client_config.for_path(webhook.path),
            "conversionReviewVersions": ["v1"],
        },
    }


def configure_crd(
    crd: Mapping[str, Any],
    webhook: ConversionWebhook,
    client_config: ClientConfig,
    *,
    cert_manager_certificate: str | None = None,
) -> Obj:
    """A copy of ``crd`` converting through ``webhook``: ``spec.conversion`` set
    (:func:`crd_conversion`) and every version the webhook converts served (a version
    whose conversion is not served is best not served: a client reading it would get
    errors, or, without a conversion, another version's fields). ``ValueError`` when
    ``crd`` is not the webhook's CRD or lacks one of its versions."""
    out: Obj = copy.deepcopy(dict(crd))
    name = (out.get("metadata") or {}).get("name")
    if out.get("kind") != "CustomResourceDefinition" or name != webhook.crd_name:
        raise ValueError(
            f"{webhook.name} converts the CRD {webhook.crd_name!r}, got {out.get('kind')} {name!r}"
        )
    spec = out["spec"]
    versions = {v.get("name"): v for v in spec.get("versions") or ()}
    missing = [v for v in webhook.versions if v not in versions]
    if missing:
        raise ValueError(f"the CRD {name} has no version {', '.join(missing)}")
    for version in webhook.versions:
        versions[version]["served"] = True
    spec["conversion"] = crd_conversion(webhook, client_config)
    if cert_manager_certificate:
        annotations = out["metadata"].setdefault("annotations", {})
        annotations[CERT_MANAGER_INJECT_CA_FROM] = cert_manager_certificate
    return out


def webhook_manifests(
    webhooks: Iterable[Webhook],
    client_config: ClientConfig,
    *,
    name: str,
    crds: Sequence[Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
    cert_manager_certificate: str | None = None,
) -> list[Obj]:
    """Everything to apply for ``webhooks``: :func:`webhook_configurations`, then each
    CRD of ``crds`` configured for its conversion webhook (:func:`configure_crd`; a CRD
    without one is left out). ``ValueError`` for a conversion webhook whose CRD is not
    among ``crds``."""
    hooks = list(webhooks)
    out = webhook_configurations(
        hooks,
        client_config,
        name=name,
        labels=labels,
        cert_manager_certificate=cert_manager_certificate,
    )
    by_name = {(c.get("metadata") or {}).get("name"): c for c in crds}
    for hook in hooks:
        if isinstance(hook, ConversionWebhook):
            crd = by_name.get(hook.crd_name)
            if crd is None:
                raise ValueError(
                    f"{hook.name} converts the CRD {hook.crd_name}: pass its definition in crds"
                )
            out.append(
                configure_crd(
                    crd, hook, client_config, cert_manager_certificate=cert_manager_certificate
                )
            )
    return out
