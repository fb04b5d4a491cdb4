"""The webhooks of the ConfigMapMirror sample (:mod:`kube_informer_samples.configmap_mirror`):

- ``VALIDATING`` (:class:`MirrorValidator`): rejects a mirror whose ``targetNamespaces``
  include its own namespace (422), and warns when it targets more than
  :data:`MAX_TARGETS` namespaces (each copy is one more object to keep in sync);
- ``DEFAULTING`` (:class:`MirrorDefaulter`): labels each mirror with its source
  (:data:`SOURCE_LABEL`), so that ``kubectl get cmm -l mirror.informer.dev/source=app``
  finds the mirrors of a ConfigMap;
- ``CONVERSION``: ``v1beta1`` <-> ``v1alpha1``, the hub and storage version. ``v1beta1``
  names its source ``spec.source.name`` and groups the targets under ``spec.targets``
  (``namespaces`` or ``selector``) where ``v1alpha1`` has ``spec.source``,
  ``spec.targetNamespaces`` and ``spec.namespaceSelector``; statuses are the same.

The admission webhooks match ``v1alpha1`` with ``matchPolicy: Equivalent``: a mirror
written at ``v1beta1`` is converted (by ``CONVERSION``) before they see it, so they
handle one shape. The CRD (:data:`CRD_PATH`) lists ``v1beta1`` unserved;
``informer.webhook.configure_crd`` serves it with the conversion. ``WEBHOOKS`` is what
the entry point ``configmap-mirror`` of the group ``kube_informer.webhooks`` registers::

    python -m informer.run --webhooks configmap-mirror --webhook-cert-dir DIR
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from informer import Obj, Resource, namespace_of
from informer.webhook import (
    AdmissionRequest,
    ConversionWebhook,
    Defaulter,
    Denied,
    MutatingWebhook,
    Spoke,
    ValidatingWebhook,
    Validator,
    Warnings,
)

__all__ = [
    "CONVERSION",
    "CRD_PATH",
    "DEFAULTING",
    "MAX_TARGETS",
    "MIRRORS_V1ALPHA1",
    "MIRRORS_V1BETA1",
    "SOURCE_LABEL",
    "VALIDATING",
    "WEBHOOKS",
    "MirrorDefaulter",
    "MirrorValidator",
]

GROUP: Final = "mirror.informer.dev"
MIRRORS_V1ALPHA1 = Resource(GROUP, "v1alpha1", "configmapmirrors", kind="ConfigMapMirror")
MIRRORS_V1BETA1 = Resource(GROUP, "v1beta1", "configmapmirrors", kind="ConfigMapMirror")
CRD_PATH = Path(__file__).parent / "crds" / "configmapmirror.yaml"
MAX_TARGETS: Final = 10
"""More target namespaces than this get a warning (not a rejection)."""
SOURCE_LABEL: Final = "mirror.informer.dev/source"


class MirrorValidator(Validator):
    def validate_create(self, obj: Obj, request: AdmissionRequest) -> Warnings:
        spec = obj.get("spec") or {}
        own = namespace_of(obj) or request.namespace
        targets = list(spec.get("targetNamespaces") or ())
        if own in targets:
            raise Denied(
                f"spec.targetNamespaces includes the mirror's own namespace {own!r}: a "
                "ConfigMap cannot be mirrored onto itself; remove it",
                code=422,
            )
        if len(targets) > MAX_TARGETS:
            return (
                f"this mirror targets {len(targets)} namespaces (more than {MAX_TARGETS}): "
                "each copy is one more object to keep in sync; a namespaceSelector may suit"
            )
        return None

    def validate_update(self, old: Obj, new: Obj, request: AdmissionRequest) -> Warnings:
        return self.validate_create(new, request)


class MirrorDefaulter(Defaulter):
    def default(self, obj: Obj, request: AdmissionRequest) -> None:
        source = (obj.get("spec") or {}).get("source")
        if isinstance(source, str) and source:
            obj["metadata"].setdefault("labels", {})[SOURCE_LABEL] = source


def v1beta1_to_v1alpha1(obj: Obj) -> Obj:
    spec: dict[str, Any] = obj.get("spec") or {}
    out = {k: v for k, v in spec.items() if k not in ("source", "targets")}
    source = spec.get("source")
    if isinstance(source, dict) and "name" in source:
        out["source"] = source["name"]
    targets = spec.get("targets") or {}
    if "namespaces" in targets:
        out["targetNamespaces"] = targets["namespaces"]
    if "selector" in targets:
        out["namespaceSelector"] = targets["selector"]
    if "spec" in obj:
        obj["spec"] = out
    return obj


def v1alpha1_to_v1beta1(obj: Obj) -> Obj:
    spec: dict[str, Any] = obj.get("spec") or {}
    moved = ("source", "targetNamespaces", "namespaceSelector")
    out = {k: v for k, v in spec.items() if k not in moved}
    if "source" in spec:
        out["source"] = {"name": spec["source"]}
    targets: dict[str, Any] = {}
    if "targetNamespaces" in spec:
        targets["namespaces"] = spec["targetNamespaces"]
    if "namespaceSelector" in spec:
        targets["selector"] = spec["namespaceSelector"]
    if targets:
        out["targets"] = targets
    if "spec" in obj:
        obj["spec"] = out
    return obj


VALIDATING = ValidatingWebhook(
    MIRRORS_V1ALPHA1, MirrorValidator(), name="vconfigmapmirror.mirror.informer.dev"
)
DEFAULTING = MutatingWebhook(
    MIRRORS_V1ALPHA1, MirrorDefaulter(), name="mconfigmapmirror.mirror.informer.dev"
)
CONVERSION = ConversionWebhook(
    MIRRORS_V1ALPHA1,
    {"v1beta1": Spoke(to_hub=v1beta1_to_v1alpha1, from_hub=v1alpha1_to_v1beta1)},
)
WEBHOOKS = [VALIDATING, DEFAULTING, CONVERSION]
