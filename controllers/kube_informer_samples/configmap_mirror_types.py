"""The ConfigMapMirror custom resource (``mirror.informer.dev``) as Python models: the
source of ``controllers/kube_informer_samples/crds/configmapmirror.yaml``, regenerated with::

    python -m informer.crd generate kube_informer_samples.configmap_mirror_types \
        -o controllers/kube_informer_samples/crds/configmapmirror.yaml

(``make test`` runs it with ``--check``). A new version of the resource is one more
class with the same :data:`MIRROR_DEFINITION` and its own :class:`~informer.crd.Version`
(exactly one of them ``storage=True``).

Typed access in a reconcile: ``mirror = Mirror.parse(lister.get(name, namespace=ns))``,
then ``mirror.spec.source``; write back with ``client.update_status(mirror.to_dict())``.
Needs the ``crd`` extra (pydantic); the controller itself reads dicts and does not.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from informer.crd import (
    Conditions,
    CustomResource,
    Definition,
    Format,
    LabelSelector,
    ListType,
    PrinterColumn,
    Schema,
    Validation,
    Version,
)

__all__ = [
    "MIRROR_DEFINITION",
    "Mirror",
    "MirrorSpec",
    "MirrorStatus",
    "MirrorV1beta1",
    "MirrorV1beta1Spec",
]

MIRROR_DEFINITION = Definition(
    group="mirror.informer.dev",
    kind="ConfigMapMirror",
    short_names=["cmm"],
    labels={"app.kubernetes.io/name": "kube-informer"},
)

Namespace = Annotated[str, Field(min_length=1, max_length=63)]


class MirrorSpec(Schema):
    """What to copy, and where."""

    source: Annotated[str, Field(min_length=1, max_length=253)]
    """The name of the ConfigMap to copy, in the mirror's namespace."""
    target_namespaces: Annotated[list[Namespace], ListType("set")] | None = None
    """The namespaces to copy it into (the mirror's own is skipped)."""
    namespace_selector: LabelSelector | None = None
    """Copies go to every namespace whose labels match (metav1.LabelSelector)."""

    @model_validator(mode="after")
    def _one_target(self) -> Self:  # the CEL rule of Mirror.spec, checked in Python too
        if (self.target_namespaces is None) == (self.namespace_selector is None):
            raise ValueError("set exactly one of targetNamespaces and namespaceSelector")
        return self


class MirrorStatus(Schema):
    """What the controller last did."""

    observed_generation: Annotated[int, Field(ge=0), Format("int64")] | None = None
    """The generation of the spec last acted on."""
    synced_namespaces: list[str] | None = None
    """The namespaces holding an up-to-date copy."""
    conditions: Conditions = None
    """Ready: whether every target holds an up-to-date copy."""


class Mirror(CustomResource):
    """Copies a ConfigMap of its namespace into other namespaces."""

    definition = MIRROR_DEFINITION
    version = Version(
        "v1alpha1",
        storage=True,
        printer_columns=[
            PrinterColumn("Source", ".spec.source"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Synced", ".status.syncedNamespaces"),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ],
    )

    spec: Annotated[
        MirrorSpec,
        Validation(
            "has(self.targetNamespaces) != has(self.namespaceSelector)",
            message="set exactly one of targetNamespaces and namespaceSelector",
        ),
    ]
    status: MirrorStatus | None = None


class SourceRef(Schema):
    """The ConfigMap to copy."""

    name: Annotated[str, Field(min_length=1, max_length=253)]
    """The name of the ConfigMap to copy, in the mirror's namespace."""


class Targets(Schema):
    """Where the copies go: exactly one of ``namespaces`` and ``selector``."""

    namespaces: Annotated[list[Namespace], ListType("set")] | None = None
    """The namespaces to copy it into (the mirror's own is skipped)."""
    selector: LabelSelector | None = None
    """Copies go to every namespace whose labels match (metav1.LabelSelector)."""

    @model_validator(mode="after")
    def _one_target(self) -> Self:  # the CEL rule of MirrorV1beta1Spec.targets
        if (self.namespaces is None) == (self.selector is None):
            raise ValueError("set exactly one of namespaces and selector")
        return self


class MirrorV1beta1Spec(Schema):
    """What to copy, and where (v1beta1: the source by reference, the targets grouped)."""

    source: SourceRef
    """The ConfigMap to copy."""
    targets: Annotated[
        Targets,
        Validation(
            "has(self.namespaces) != has(self.selector)",
            message="set exactly one of namespaces and selector",
        ),
    ]
    """Where the copies go."""


# v1beta1 is not served until its conversion webhook is (configmap_mirror_webhooks.py):
# informer.webhook.configure_crd serves it and sets spec.conversion (a served version
# without its conversion would answer other versions' fields, or errors).
class MirrorV1beta1(CustomResource):
    """Copies a ConfigMap of its namespace into other namespaces."""

    definition = MIRROR_DEFINITION
    version = Version(
        "v1beta1",
        served=False,
        printer_columns=[
            PrinterColumn("Source", ".spec.source.name"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            PrinterColumn("Synced", ".status.syncedNamespaces"),
            PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        ],
    )

    spec: MirrorV1beta1Spec
    status: MirrorStatus | None = None
