"""CustomResourceDefinitions assembled from :class:`~informer.crd.CustomResource` classes.

:func:`definitions` groups the classes by resource (their :class:`Definition`'s group and
plural), one version per class, and builds one ``apiextensions.k8s.io/v1``
CustomResourceDefinition per resource: ``spec.names`` and ``scope`` from the Definition
(every version of a resource must share it), and per version its flags, subresources,
printer columns and the structural schema of the class (``schema.py``): ``apiVersion``,
``kind``, ``metadata`` (``type: object``, as controller-gen writes it: the server
validates metadata itself) and the class's own fields, the class docstring as the root
description. A spec field without a default is required, as in the model.

Rules checked (``ValueError`` naming the classes): one class per version; exactly one
storage version (``Version.storage``, implied for a single version); the same
Definition on every version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._meta.types import Obj
from .model import CustomResource
from .schema import structural

__all__ = ["definition_of", "definitions", "version_schema"]

_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values."
)
_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. In CamelCase."
)


def definitions(classes: Iterable[type[CustomResource]]) -> list[Obj]:
    """One CRD per resource of ``classes`` (in the order each resource first appears;
    versions in the order given)."""
    grouped: dict[tuple[str, str], list[type[CustomResource]]] = {}
    for cls in classes:
        if not cls.declared():
            raise ValueError(
                f"{cls.__qualname__} declares no definition and version: it is not a resource"
            )
        key = (cls.definition.group, cls.definition.plural_name)
        grouped.setdefault(key, []).append(cls)
    return [definition_of(versions) for versions in grouped.values()]


def definition_of(classes: list[type[CustomResource]]) -> Obj:
    """The CRD of one resource whose versions are ``classes``."""
    first = classes[0]
    definition = first.definition
    names = ", ".join(c.__qualname__ for c in classes)
    if any(c.definition != definition for c in classes):
        raise ValueError(f"{names}: versions of one resource must share one Definition")
    seen: set[str] = set()
    for cls in classes:
        if cls.version.name in seen:
            raise ValueError(f"{names}: version {cls.version.name} is declared twice")
        seen.add(cls.version.name)
    storage = [
        c for c in classes if c.version.storage or (len(classes) == 1 and c.version.storage is None)
    ]
    if len(storage) != 1:
        raise ValueError(
            f"{names}: exactly one version must be the storage version (Version(storage=True)), "
            f"found {len(storage)}"
        )
    spec_names: dict[str, Any] = {
        "kind": definition.kind,
        "listKind": definition.list_kind_name,
        "plural": definition.plural_name,
        "singular": definition.singular_name,
    }
    if definition.short_names:
        spec_names["shortNames"] = list(definition.short_names)
    if definition.categories:
        spec_names["categories"] = list(definition.categories)
    metadata: dict[str, Any] = {"name": definition.name}
    if definition.labels:
        metadata["labels"] = dict(definition.labels)
    if definition.annotations:
        metadata["annotations"] = dict(definition.annotations)
    spec: dict[str, Any] = {"group": definition.group}
    if definition.conversion is not None:
        spec["conversion"] = dict(definition.conversion)
    spec["names"] = spec_names
    spec["scope"] = definition.scope
    spec["versions"] = [_version(cls, cls is storage[0]) for cls in classes]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": spec,
    }


def version_schema(cls: type[CustomResource]) -> Obj:
    """The ``openAPIV3Schema`` of one version's class."""
    schema = structural(cls.model_json_schema(by_alias=True, mode="validation"))
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": _API_VERSION},
        "kind": {"type": "string", "description": _KIND},
        "metadata": {"type": "object"},
    }
    for name, sub in (schema.get("properties") or {}).items():
        if name not in properties:
            properties[name] = sub
    root: dict[str, Any] = {"type": "object"}
    if schema.get("description"):
        root["description"] = schema["description"]
    required = [r for r in schema.get("required", ()) if r not in ("apiVersion", "kind")]
    if required:
        root["required"] = required
    root["properties"] = properties
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") and key != "x-kubernetes-preserve-unknown-fields":
            root[key] = value
    return root


def _version(cls: type[CustomResource], storage: bool) -> Obj:
    version = cls.version
    out: dict[str, Any] = {"name": version.name, "served": version.served, "storage": storage}
    if version.deprecated:
        out["deprecated"] = True
        if version.deprecation_warning:
            out["deprecationWarning"] = version.deprecation_warning
    subresources: dict[str, Any] = {}
    has_status = "status" in cls.model_fields
    if version.status_subresource or (version.status_subresource is None and has_status):
        subresources["status"] = {}
    if version.scale is not None:
        subresources["scale"] = version.scale.to_dict()
    if subresources:
        out["subresources"] = subresources
    if version.printer_columns:
        out["additionalPrinterColumns"] = [c.to_dict() for c in version.printer_columns]
    if version.selectable_fields:
        out["selectableFields"] = [{"jsonPath": p} for p in version.selectable_fields]
    out["schema"] = {"openAPIV3Schema": version_schema(cls)}
    return out
