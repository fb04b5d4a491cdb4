"""A pydantic model's JSON schema made *structural*: the OpenAPI v3 a CRD accepts.

The API server requires (``apiextensions.k8s.io/v1``, "structural schemas"): no
``$ref``; a ``type`` on every node but those marked ``x-kubernetes-int-or-string`` or
``x-kubernetes-preserve-unknown-fields``; ``properties`` and ``additionalProperties``
never together; no ``anyOf``/``oneOf`` that changes the type. :func:`structural` turns
pydantic's JSON Schema into that:

- ``$ref`` and single ``allOf`` are inlined (the referring field's description wins);
  a model that refers to itself cannot be structural (``SchemaError``);
- ``X | None`` is ``X``: an optional field may be absent (``None`` is never written);
- ``int | str`` is refused unless marked ``IntOrString``; other unions are refused;
- ``Literal``/``Enum`` become ``enum`` (a single ``const`` too); ``set[X]`` a list of
  type ``set``; ``dict[str, X]`` ``additionalProperties``; ``Any`` and
  ``dict[str, Any]`` an untyped subtree (``x-kubernetes-preserve-unknown-fields``);
- ``title``, ``default: null`` and the ``additionalProperties: true`` of models that keep
  unknown fields (``extra="allow"``) are dropped; JSON Schema 2020's numeric
  ``exclusiveMinimum``/``exclusiveMaximum`` become OpenAPI 3.0's boolean form.

Every refusal is a :class:`SchemaError` naming the field path.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["SchemaError", "structural"]

_KEPT = frozenset({
    "type", "format", "description", "default", "enum", "properties", "required", "items",
    "additionalProperties", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties",
    "maxProperties", "multipleOf", "nullable", "example",
})  # fmt: skip
_ORDER = (
    "type", "description", "format", "enum", "default", "nullable", "minimum",
    "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
    "pattern", "minItems", "maxItems", "minProperties", "maxProperties", "items", "required",
    "properties", "additionalProperties", "example",
)  # fmt: skip
"""Key order of a written node (controller-gen's habit: type and description first)."""
_DROPPED = frozenset({"title", "examples", "deprecated", "readOnly", "writeOnly", "$schema"})
_UNTYPED = ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


class SchemaError(ValueError):
    """The model cannot be said in a structural schema; the message names the field."""


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The structural form of a JSON schema from ``Model.model_json_schema()``."""
    defs = schema.get("$defs", {})
    body = {k: v for k, v in schema.items() if k != "$defs"}
    return _convert(body, defs, "", ())


def _convert(
    node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    node = _inline(node, defs, path, seen)
    seen = (*seen, *node.pop("\0refs", ()))
    if "anyOf" in node or "oneOf" in node:
        node = _union(node, path)
        return _convert(node, defs, path, seen)
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        elif key == "uniqueItems":
            if value:
                out.setdefault("x-kubernetes-list-type", "set")
        elif key not in _KEPT:
            raise SchemaError(f"{path or '<root>'}: {key!r} cannot be said in a CRD schema")
        elif key == "properties":
            out[key] = {
                name: _convert(sub, defs, f"{path}.{name}" if path else name, seen)
                for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]", seen)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _convert(value, defs, f"{path}{{}}", seen)
            elif value is True and "properties" not in node:
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "default":
            if value is not None:
                out[key] = _without_nulls(value)
        else:
            out[key] = copy.deepcopy(value)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if "type" not in out and not any(out.get(k) for k in _UNTYPED):
        if not node or set(out) <= {"description", "default"}:
            out["x-kubernetes-preserve-unknown-fields"] = True  # Any
        else:
            raise SchemaError(f"{path or '<root>'}: no type (a union or an untyped value?)")
    if out.get("type") == "object" and "properties" in out:
        out.pop("additionalProperties", None)
    if "required" in out and "properties" in out:
        out["required"] = [r for r in out["required"] if r in out["properties"]]
        if not out["required"]:
            del out["required"]
    return dict(sorted(out.items(), key=_rank))


def _rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (_ORDER.index(key), "") if key in _ORDER else (len(_ORDER), key)


def _inline(
    node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    """``node`` with its ``$ref`` (or single-entry ``allOf``) replaced by the definition,
    the node's own keys winning; the names inlined are under the key ``"\\0refs"``."""
    node = dict(node)
    refs: list[str] = []
    while True:
        if "$ref" in node:
            name = node.pop("$ref").rsplit("/", 1)[-1]
            if name in seen or name in refs:
                raise SchemaError(
                    f"{path or '<root>'}: {name} refers to itself; a structural schema cannot "
                    "recurse (type the field Any, an untyped subtree)"
                )
            refs.append(name)
            node = {**defs[name], **node}
        elif "allOf" in node and len(node["allOf"]) == 1:
            [only] = node.pop("allOf")
            node = {**only, **node}
        elif "allOf" in node:
            raise SchemaError(f"{path or '<root>'}: allOf of several schemas is not structural")
        else:
            break
    node["\0refs"] = refs
    return node


def _union(node: dict[str, Any], path: str) -> dict[str, Any]:
    """``X | None`` -> ``X``; a marked ``int | str`` -> int-or-string; else refused."""
    key = "anyOf" if "anyOf" in node else "oneOf"
    rest = {k: v for k, v in node.items() if k not in (key, "\0refs")}
    options = [o for o in node[key] if o != {"type": "null"}]
    if len(options) == 1:
        merged = {**options[0], **rest}
        if "$ref" in options[0] and "$ref" not in rest:
            merged["$ref"] = options[0]["$ref"]
        return merged
    types = sorted(o.get("type", "?") for o in options)
    if types == ["integer", "string"] and rest.get("x-kubernetes-int-or-string"):
        return rest
    if types == ["integer", "string"]:
        raise SchemaError(f"{path or '<root>'}: int | str is written IntOrString")
    raise SchemaError(
        f"{path or '<root>'}: a union of {', '.join(types)} is not structural: use one type, "
        "X | None for an optional field, or IntOrString"
    )


def _without_nulls(value: Any) -> Any:
    """A default as the server stores it: ``None`` members are absent fields."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
