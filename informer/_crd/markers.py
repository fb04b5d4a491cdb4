"""Schema markers: what Kubernetes adds to OpenAPI, said in a type annotation.

Each marker goes in ``Annotated[...]`` beside a field's type (kubebuilder's validation
markers, as Python values) and writes its ``x-kubernetes-*`` extension (or OpenAPI
keyword) into the field's schema::

    targets: Annotated[list[str], ListType("set")] = []
    selector: Annotated[LabelSelector | None, MapType("atomic")] = None
    spec: Annotated[Spec, Validation("self.min <= self.max", message="min > max")]
    port: IntOrString = 80
    extra: Annotated[dict[str, Any], PreserveUnknownFields()] = {}

The markers only shape the generated schema; validation in Python is pydantic's (a CEL
:class:`Validation` is checked by the API server only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic_core import core_schema

__all__ = [
    "EmbeddedResource",
    "Format",
    "IntOrString",
    "ListType",
    "MapType",
    "PreserveUnknownFields",
    "Validation",
]


class _Marker:
    """Adds ``extension()`` to the JSON schema pydantic makes of the annotated type."""

    def extension(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        for key, value in self.extension().items():
            if key == "x-kubernetes-validations":
                schema[key] = [*schema.get(key, ()), *value]
            else:
                schema[key] = value
        return schema


@dataclass(frozen=True, slots=True)
class ListType(_Marker):
    """``x-kubernetes-list-type``: ``"atomic"`` (one owner replaces the whole list),
    ``"set"`` (unique scalars, merged by value) or ``"map"`` (objects merged by
    ``keys``, the ``x-kubernetes-list-map-keys``: the Python field names or the
    object's). The model refuses duplicates in a set or a map, as the server does."""

    kind: Literal["atomic", "set", "map"]
    keys: Sequence[str] = ()

    def __post_init__(self) -> None:
        if (self.kind == "map") != bool(self.keys):
            raise ValueError("ListType: keys are required for 'map' lists, and only for them")

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        schema = handler(source)
        if self.kind == "atomic":
            return schema
        return core_schema.no_info_after_validator_function(self._unique, schema)

    def _unique(self, items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for i, item in enumerate(items or ()):
            key = item if self.kind == "set" else tuple(_member(item, k) for k in self.keys)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: compare by value
                duplicate = False
            if duplicate:
                raise ValueError(f"[{i}]: duplicate value {key!r} in a list of type {self.kind}")
        return items

    def extension(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"x-kubernetes-list-type": self.kind}
        if self.keys:
            ext["x-kubernetes-list-map-keys"] = list(self.keys)
        return ext


def _member(item: Any, key: str) -> Any:
    """A map list's key of ``item`` (a model: by field name or alias; a dict: by key)."""
    if isinstance(item, dict):
        return item.get(key)
    fields = type(item).model_fields if hasattr(type(item), "model_fields") else {}
    for name, info in fields.items():
        if key in (name, info.alias):
            return getattr(item, name)
    return getattr(item, key, None)


@dataclass(frozen=True, slots=True)
class MapType(_Marker):
    """``x-kubernetes-map-type``: ``"atomic"`` (replaced whole by server-side apply) or
    ``"granular"`` (merged key by key, the default)."""

    kind: Literal["atomic", "granular"]

    def extension(self) -> dict[str, Any]:
        return {"x-kubernetes-map-type": self.kind}


@dataclass(frozen=True, slots=True)
class PreserveUnknownFields(_Marker):
    """``x-kubernetes-preserve-unknown-fields: true``: the server keeps fields the schema
    does not name (instead of pruning them). On ``dict[str, Any]`` or ``Any`` it makes an
    untyped subtree."""

    def extension(self) -> dict[str, Any]:
        return {"x-kubernetes-preserve-unknown-fields": True}


@dataclass(frozen=True, slots=True)
class EmbeddedResource(_Marker):
    """``x-kubernetes-embedded-resource: true``: the field holds a whole object
    (``apiVersion``, ``kind``, ``metadata`` validated as the server does)."""

    def extension(self) -> dict[str, Any]:
        return {"x-kubernetes-embedded-resource": True}


@dataclass(frozen=True, slots=True)
class Validation(_Marker):
    """One CEL rule of ``x-kubernetes-validations`` (``self`` is the annotated value);
    several markers add several rules. Checked by the API server only."""

    rule: str
    message: str | None = None
    message_expression: str | None = None
    reason: str | None = None
    field_path: str | None = None

    def extension(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"rule": self.rule}
        for key, value in (
            ("message", self.message),
            ("messageExpression", self.message_expression),
            ("reason", self.reason),
            ("fieldPath", self.field_path),
        ):
            if value is not None:
                rule[key] = value
        return {"x-kubernetes-validations": [rule]}


@dataclass(frozen=True, slots=True)
class Format(_Marker):
    """The OpenAPI ``format`` of a field (``"int64"``, ``"int32"``, ``"date-time"``,
    ``"byte"``...), which pydantic would not write."""

    format: str

    def extension(self) -> dict[str, Any]:
        return {"format": self.format}


@dataclass(frozen=True, slots=True)
class _IntOrString(_Marker):
    def extension(self) -> dict[str, Any]:
        return {"x-kubernetes-int-or-string": True}


IntOrString = Annotated[int | str, _IntOrString()]
"""An integer or a string (``intstr.IntOrString``: ports, ``maxSurge: 25%``)."""
