"""What a CustomResourceDefinition says beside the schema: names, scope, versions.

:class:`Definition` is shared by every version of one resource (group, kind, names,
scope, short names, categories, labels, the conversion stanza); :class:`Version` is one
version's (name, served, storage, deprecation, subresources, printer columns). A
:class:`~informer.crd.CustomResource` subclass declares both, one class per version::

    MIRROR = Definition(group="mirror.informer.dev", kind="ConfigMapMirror", short_names=["cmm"])

    class ConfigMapMirror(CustomResource):
        definition = MIRROR
        version = Version("v1alpha1", printer_columns=[PrinterColumn("Source", ".spec.source")])
        spec: MirrorSpec
        status: MirrorStatus | None = None

Defaults follow kubebuilder: the plural is the lower-case kind plus ``s`` (``es`` after
s, x, z, ch, sh; ``ies`` after a consonant and y), the singular the lower-case kind, the
list kind the kind plus ``List``; a version is served; the status subresource is on
when the class has a ``status`` field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Definition", "PrinterColumn", "Scale", "Version", "default_plural"]

_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


def default_plural(kind: str) -> str:
    """kubebuilder's plural of a kind (``Policy`` -> ``policies``, ``Box`` -> ``boxes``)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


@dataclass(frozen=True)
class Definition:
    """The version-independent part of a CRD (``spec.names``, ``spec.scope``...).

    ``conversion`` is the CRD's ``spec.conversion`` stanza as written in YAML (e.g.
    ``{"strategy": "Webhook", "webhook": {...}}``); ``None`` leaves the server's default
    (``None`` strategy). ``labels``/``annotations`` go on the CRD object itself.
    """

    group: str
    kind: str
    plural: str = ""
    singular: str = ""
    list_kind: str = ""
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    conversion: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.group or "." not in self.group:
            raise ValueError(
                f"Definition({self.kind!r}): group {self.group!r} must be a DNS subdomain "
                "with a dot (e.g. 'mirror.example.com')"
            )
        if not self.kind or not self.kind[0].isupper():
            raise ValueError(f"Definition: kind {self.kind!r} must be CamelCase (e.g. 'Mirror')")
        if self.scope not in ("Namespaced", "Cluster"):
            raise ValueError(f"Definition({self.kind!r}): scope must be Namespaced or Cluster")

    @property
    def plural_name(self) -> str:
        return self.plural or default_plural(self.kind)

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def name(self) -> str:
        """The CRD's ``metadata.name``: ``<plural>.<group>``."""
        return f"{self.plural_name}.{self.group}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry (what ``kubectl get`` shows): ``json_path``
    is a JSONPath into the object (``.spec.source``); ``type`` is one of integer,
    number, string, boolean, date; ``priority`` > 0 shows only with ``-o wide``."""

    name: str
    json_path: str
    type: Literal["integer", "number", "string", "boolean", "date"] = "string"
    description: str = ""
    format: str = ""
    priority: int = 0

    def __post_init__(self) -> None:
        if self.type not in _COLUMN_TYPES:
            raise ValueError(f"PrinterColumn {self.name!r}: type must be one of {_COLUMN_TYPES}")
        if not self.json_path.startswith("."):
            raise ValueError(
                f"PrinterColumn {self.name!r}: json_path {self.json_path!r} must start with "
                "'.' (e.g. '.spec.replicas')"
            )

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.format:
            column["format"] = self.format
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        column["jsonPath"] = self.json_path
        return column


@dataclass(frozen=True)
class Scale:
    """The ``scale`` subresource: where replicas are read and written, and (for HPA) the
    label selector as a string in the status."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        scale = {
            "specReplicasPath": self.spec_replicas_path,
            "statusReplicasPath": self.status_replicas_path,
        }
        if self.label_selector_path:
            scale["labelSelectorPath"] = self.label_selector_path
        return scale


@dataclass(frozen=True)
class Version:
    """One version of a resource. ``storage``: the version objects are stored as (exactly
    one per CRD; ``None`` means "yes" when the CRD has one version only).
    ``status_subresource``: ``None`` turns it on when the class has a ``status`` field.
    ``selectable_fields``: JSONPaths usable in field selectors (Kubernetes 1.31+)."""

    name: str
    served: bool = True
    storage: bool | None = None
    deprecated: bool = False
    deprecation_warning: str | None = None
    status_subresource: bool | None = None
    scale: Scale | None = None
    printer_columns: Sequence[PrinterColumn] = ()
    selectable_fields: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.name.startswith("v") or not self.name[1:2].isdigit():
            raise ValueError(
                f"Version {self.name!r}: a Kubernetes version looks like v1, v1beta1, v2alpha3"
            )
