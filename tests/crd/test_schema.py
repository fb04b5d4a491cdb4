"""informer._crd.schema: pydantic's JSON schema made structural (what a CRD accepts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from informer._crd.schema import structural
from informer.crd import (
    Format,
    IntOrString,
    ListType,
    MapType,
    PreserveUnknownFields,
    Schema,
    SchemaError,
    Validation,
)


def schema_of(annotation: Any, **field: Any) -> dict[str, Any]:
    """The structural schema of one field ``x`` of that type."""

    class M(Schema):
        x: annotation = Field(**field)  # type: ignore[valid-type]

    M.model_rebuild()
    return structural(M.model_json_schema(by_alias=True))["properties"]["x"]


def walk(node: Any) -> list[dict[str, Any]]:
    found = [node] if isinstance(node, dict) else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found.extend(walk(child))
    return found


class Inner(Schema):
    """Inner doc."""

    some_value: int
    """The value."""


CASES: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = [
    ("int", int, {}, {"type": "integer"}),
    ("optional-is-absent", int | None, {"default": None}, {"type": "integer"}),
    ("default", int, {"default": 4}, {"type": "integer", "default": 4}),
    ("bounds", int, {"ge": 1, "le": 5}, {"type": "integer", "minimum": 1, "maximum": 5}),
    (
        "exclusive-bounds",
        float,
        {"gt": 0, "lt": 1},
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": 1,
            "exclusiveMaximum": True,
        },
    ),
    (
        "string-limits",
        str,
        {"min_length": 1, "max_length": 3, "pattern": "^a"},
        {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^a"},
    ),
    ("enum", Literal["a", "b"], {}, {"type": "string", "enum": ["a", "b"]}),
    ("const", Literal["only"], {}, {"type": "string", "enum": ["only"]}),
    ("int-or-string", IntOrString, {}, {"x-kubernetes-int-or-string": True}),
    (
        "list-set",
        Annotated[list[str], ListType("set")],
        {},
        {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    ),
    (
        "python-set",
        set[str],
        {},
        {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
    ),
    (
        "map",
        dict[str, int],
        {},
        {"type": "object", "additionalProperties": {"type": "integer"}},
    ),
    (
        "untyped-map",
        dict[str, Any],
        {},
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
    (
        "preserved-map",
        Annotated[dict[str, Any], PreserveUnknownFields()],
        {},
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
    ("any", Any, {}, {"x-kubernetes-preserve-unknown-fields": True}),
    ("format", Annotated[int, Format("int64")], {}, {"type": "integer", "format": "int64"}),
    ("date-time", __import__("datetime").datetime, {}, {"type": "string", "format": "date-time"}),
    (
        "atomic-map",
        Annotated[dict[str, str], MapType("atomic")],
        {},
        {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "x-kubernetes-map-type": "atomic",
        },
    ),
    (
        "nested-model",
        Inner,
        {"description": "The field's own."},
        {
            "type": "object",
            "description": "The field's own.",
            "required": ["someValue"],
            "properties": {"someValue": {"type": "integer", "description": "The value."}},
        },
    ),
    (
        "cel",
        Annotated[Inner, Validation("self.someValue > 0", message="positive")],
        {},
        {
            "type": "object",
            "description": "Inner doc.",
            "required": ["someValue"],
            "properties": {"someValue": {"type": "integer", "description": "The value."}},
            "x-kubernetes-validations": [{"rule": "self.someValue > 0", "message": "positive"}],
        },
    ),
]


@pytest.mark.parametrize(
    ("annotation", "field", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_field_schema(annotation: Any, field: dict[str, Any], expected: dict[str, Any]) -> None:
    assert schema_of(annotation, **field) == expected


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (int | str, "IntOrString"),
        (int | bool, "union of boolean, integer"),
        (list[int] | dict[str, int], "union"),
    ],
    ids=["int-or-str-unmarked", "scalar-union", "container-union"],
)
def test_unions_are_refused_with_the_field_path(annotation: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=rf"^x: .*{message}"):
        schema_of(annotation)


class Tree(Schema):
    name: str
    children: list[Tree] | None = None


def test_a_recursive_model_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"children\[\]: Tree refers to itself"):
        structural(Tree.model_json_schema(by_alias=True))


def test_every_node_is_structural() -> None:
    """No $ref, anyOf or title anywhere; a type on every node but the marked untyped
    ones; never properties beside additionalProperties."""
    from crd_models import Widget

    root = structural(Widget.model_json_schema(by_alias=True))
    nodes = walk(root["properties"])
    schemas = [n for n in walk(root) if "type" in n or "x-kubernetes-int-or-string" in n]
    assert len(schemas) > 30
    for node in walk(root):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs"} & set(node), node
    for name, node in ((k, v) for n in nodes for k, v in (n.get("properties") or {}).items()):
        untyped = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        assert "type" in node or untyped, name
        assert not ("properties" in node and "additionalProperties" in node), name


def test_descriptions_come_from_docstrings() -> None:
    from crd_models import Widget

    spec = structural(Widget.model_json_schema(by_alias=True))["properties"]["spec"]
    assert spec["description"] == "What a widget should be."
    assert spec["properties"]["size"]["description"] == "How big (defaults to 3)."


def test_plain_pydantic_models_work_too() -> None:
    class Plain(BaseModel):
        count: int = 0

    assert structural(Plain.model_json_schema()) == {
        "type": "object",
        "properties": {"count": {"type": "integer", "default": 0}},
    }
