"""Models from an existing CRD: Python source of pydantic models for its schema.

For operators that read other people's resources (cert-manager's Certificates, the
Prometheus operator's ServiceMonitors...): :func:`models_source` turns each version of a
CRD into :class:`~informer.crd.Schema` classes (one per object node, named after its
path: ``CertificateSpec``, ``CertificateSpecPrivateKey``...) and one
:class:`~informer.crd.CustomResource` class per version with its
:class:`~informer.crd.Definition` and :class:`~informer.crd.Version`, so that
``Certificate.parse(obj)`` reads a cached object typed.

The models say what the schema says: required fields are required, the others ``X |
None = None`` or their default; constraints become ``Field`` arguments and the
``x-kubernetes-*`` extensions markers (``ListType``, ``MapType``, ``Validation``,
``IntOrString``, ``PreserveUnknownFields``). Generating the CRD from the models again
gives the same schema (descriptions of ``apiVersion``/``kind`` aside); a node the
models cannot say (``anyOf``, ``allOf``, ``not``) becomes an untyped ``Any``.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel, to_snake

from .._meta.types import Obj

__all__ = ["models_source"]

_RESERVED = frozenset(dir(BaseModel)) | {"definition", "version", "resource"}
_CONSTRAINTS = (
    ("minLength", "min_length"), ("maxLength", "max_length"), ("pattern", "pattern"),
    ("minItems", "min_length"), ("maxItems", "max_length"), ("multipleOf", "multiple_of"),
    ("minProperties", "min_length"), ("maxProperties", "max_length"),
)  # fmt: skip


def models_source(crd: Obj, *, command: str = "") -> str:
    """Python source defining models for every version of ``crd``."""
    return _Generator(crd, command).source()


class _Generator:
    def __init__(self, crd: Obj, command: str) -> None:
        self.crd = crd
        self.command = command
        self.classes: list[str] = []
        self.names: set[str] = set()
        self.uses: set[str] = set()

    def source(self) -> str:
        spec = self.crd["spec"]
        names = spec["names"]
        kind = names["kind"]
        versions = spec["versions"]
        definition = f"{_constant(kind)}_DEFINITION"
        args = [f"group={spec['group']!r}", f"kind={kind!r}"]
        if names.get("plural"):
            args.append(f"plural={names['plural']!r}")
        if names.get("singular"):
            args.append(f"singular={names['singular']!r}")
        if names.get("listKind") and names["listKind"] != f"{kind}List":
            args.append(f"list_kind={names['listKind']!r}")
        if spec.get("scope", "Namespaced") != "Namespaced":
            args.append(f"scope={spec['scope']!r}")
        if names.get("shortNames"):
            args.append(f"short_names={list(names['shortNames'])!r}")
        if names.get("categories"):
            args.append(f"categories={list(names['categories'])!r}")
        body = [f"{definition} = Definition({', '.join(args)})\n"]
        for version in versions:
            suffix = _pascal(version["name"]) if len(versions) > 1 else ""
            body.append(self._resource(kind, suffix, version, definition, len(versions)))
        header = [
            f'"""Models of {self.crd["metadata"]["name"]} (generated'
            + (f" by `{self.command}`" if self.command else "")
            + ')."""\n',
            "\nfrom __future__ import annotations\n\n",
        ]
        imports = ["from typing import Annotated, Any, Literal  # noqa: F401\n"]
        if "datetime" in self.uses:
            imports.insert(0, "from datetime import datetime\n")
        imports.append("\nfrom pydantic import ConfigDict, Field  # noqa: F401\n\n")
        imports.append(
            "from informer.crd import (  # noqa: F401\n    CustomResource,\n    Definition,\n"
            "    EmbeddedResource,\n    Format,\n    IntOrString,\n    ListType,\n    MapType,\n"
            "    PreserveUnknownFields,\n    PrinterColumn,\n    Scale,\n    Schema,\n"
            "    Validation,\n    Version,\n)\n"
        )
        return "".join(header + imports + ["\n\n", "\n\n".join(self.classes), "\n\n"] + body)

    def _resource(self, kind: str, suffix: str, version: Obj, definition: str, count: int) -> str:
        root = version.get("schema", {}).get("openAPIV3Schema", {"type": "object"})
        name = self._name(f"{kind}{suffix}")
        fields = []
        props = root.get("properties") or {}
        required = set(root.get("required") or ())
        for prop, node in props.items():
            if prop in ("apiVersion", "kind", "metadata"):
                continue
            fields.append(self._field(prop, node, prop in required, f"{name}{_pascal(prop)}"))
        vargs = [repr(version["name"])]
        if not version.get("served", True):
            vargs.append("served=False")
        if count > 1 or not version.get("storage", True):
            vargs.append(f"storage={bool(version.get('storage'))}")
        if version.get("deprecated"):
            vargs.append("deprecated=True")
        if version.get("deprecationWarning"):
            vargs.append(f"deprecation_warning={version['deprecationWarning']!r}")
        sub = version.get("subresources") or {}
        if ("status" in sub) != ("status" in props):
            vargs.append(f"status_subresource={'status' in sub}")
        if "scale" in sub:
            s = sub["scale"]
            sargs = [
                f"spec_replicas_path={s.get('specReplicasPath', '.spec.replicas')!r}",
                f"status_replicas_path={s.get('statusReplicasPath', '.status.replicas')!r}",
            ]
            if s.get("labelSelectorPath"):
                sargs.append(f"label_selector_path={s['labelSelectorPath']!r}")
            vargs.append(f"scale=Scale({', '.join(sargs)})")
        columns = []
        for c in version.get("additionalPrinterColumns") or ():
            cargs = [repr(c["name"]), repr(c["jsonPath"])]
            if c.get("type", "string") != "string":
                cargs.append(f"type={c['type']!r}")
            for key, arg in (("description", "description"), ("format", "format")):
                if c.get(key):
                    cargs.append(f"{arg}={c[key]!r}")
            if c.get("priority"):
                cargs.append(f"priority={c['priority']!r}")
            columns.append(f"        PrinterColumn({', '.join(cargs)}),\n")
        if columns:
            vargs.append("printer_columns=[\n" + "".join(columns) + "    ]")
        if version.get("selectableFields"):
            paths = [f["jsonPath"] for f in version["selectableFields"]]
            vargs.append(f"selectable_fields={paths!r}")
        lines = [f"class {name}(CustomResource):\n", _docstring(root.get("description"), "    ", 1)]
        extra = _extensions(root, root_level=True)
        if extra:
            lines.append(f"    model_config = ConfigDict(json_schema_extra={extra!r})\n\n")
        lines.append(f"    definition = {definition}\n")
        lines.append(f"    version = Version({', '.join(vargs)})\n")
        lines.extend(fields)
        return "\n\n" + "".join(lines)

    def _name(self, wanted: str) -> str:
        name, n = wanted, 2
        while name in self.names:
            name, n = f"{wanted}{n}", n + 1
        self.names.add(name)
        return name

    def _field(self, prop: str, node: Obj, required: bool, class_name: str) -> str:
        attr = to_snake(prop)
        if not attr.isidentifier() or keyword.iskeyword(attr) or attr in _RESERVED:
            attr = f"{re.sub(r'[^0-9a-zA-Z_]', '_', attr)}_"
        annotation = self._type(node, class_name)
        field_args: list[str] = []
        if to_camel(attr) != prop:
            field_args.append(f"alias={prop!r}")
        if "default" in node:
            default = self._default(node, class_name)
        elif required:
            default = ""
        else:
            annotation, default = f"{annotation} | None", "None"
        if field_args:
            inner = ", ".join([*([f"default={default}"] if default else []), *field_args])
            line = f"    {attr}: {annotation} = Field({inner})\n"
        else:
            line = f"    {attr}: {annotation}" + (f" = {default}" if default else "") + "\n"
        return line + _docstring(node.get("description"), "    ")

    def _default(self, node: Obj, class_name: str) -> str:
        value = node["default"]
        if node.get("type") == "object" and node.get("properties"):
            return f"{class_name}.model_validate({value!r})"
        return repr(value)

    def _type(self, node: Obj, class_name: str) -> str:
        """The annotation of one schema node (nested classes appended to the module)."""
        markers = _markers(node)
        if node.get("x-kubernetes-int-or-string"):
            base = "IntOrString"
        elif any(k in node for k in ("anyOf", "allOf", "oneOf", "not")):
            base, markers = "Any", ["PreserveUnknownFields()"]
        else:
            base = self._base(node, class_name)
        args = _field_constraints(node)
        if args:
            markers.insert(0, f"Field({', '.join(args)})")
        return f"Annotated[{base}, {', '.join(markers)}]" if markers else base

    def _base(self, node: Obj, class_name: str) -> str:
        kind = node.get("type")
        if kind == "object" and node.get("properties"):
            return self._class(node, class_name)
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            return f"dict[str, {self._type(node['additionalProperties'], class_name + 'Value')}]"
        if kind == "object" or kind is None:
            return "dict[str, Any]" if kind == "object" else "Any"
        if kind == "array":
            return f"list[{self._type(node.get('items') or {}, class_name + 'Item')}]"
        if "enum" in node:
            return f"Literal[{', '.join(repr(v) for v in node['enum'])}]"
        if kind == "string" and node.get("format") == "date-time":
            self.uses.add("datetime")
            return "datetime"
        return {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}.get(
            kind, "Any"
        )

    def _class(self, node: Obj, wanted: str) -> str:
        name = self._name(wanted)
        required = set(node.get("required") or ())
        fields = [
            self._field(prop, sub, prop in required, f"{name}{_pascal(prop)}")
            for prop, sub in node["properties"].items()
        ]
        lines = [f"class {name}(Schema):\n", _docstring(node.get("description"), "    ", 1)]
        lines.extend(fields)
        self.classes.append("".join(lines).rstrip("\n") + "\n")
        return name


def _markers(node: Obj) -> list[str]:
    markers: list[str] = []
    if node.get("x-kubernetes-preserve-unknown-fields") and (
        node.get("properties") or node.get("type") not in ("object", None)
    ):
        markers.append("PreserveUnknownFields()")
    if node.get("x-kubernetes-embedded-resource"):
        markers.append("EmbeddedResource()")
    if node.get("x-kubernetes-list-type"):
        keys = node.get("x-kubernetes-list-map-keys")
        extra = f", keys={tuple(keys)!r}" if keys else ""
        markers.append(f"ListType({node['x-kubernetes-list-type']!r}{extra})")
    if node.get("x-kubernetes-map-type"):
        markers.append(f"MapType({node['x-kubernetes-map-type']!r})")
    fmt = node.get("format")
    if fmt and not (node.get("type") == "string" and fmt == "date-time"):
        markers.append(f"Format({fmt!r})")
    for rule in node.get("x-kubernetes-validations") or ():
        args = [repr(rule["rule"])]
        for key, arg in (
            ("message", "message"),
            ("messageExpression", "message_expression"),
            ("reason", "reason"),
            ("fieldPath", "field_path"),
        ):
            if rule.get(key):
                args.append(f"{arg}={rule[key]!r}")
        markers.append(f"Validation({', '.join(args)})")
    return markers


def _field_constraints(node: Obj) -> list[str]:
    args = [f"{arg}={node[key]!r}" for key, arg in _CONSTRAINTS if key in node]
    for key, inclusive, exclusive in (("minimum", "ge", "gt"), ("maximum", "le", "lt")):
        if key in node:
            flag = node.get(f"exclusive{key[0].upper()}{key[1:]}")
            args.append(f"{exclusive if flag else inclusive}={node[key]!r}")
    return args


def _extensions(node: Obj, *, root_level: bool) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k.startswith("x-kubernetes-")} if root_level else {}


def _docstring(text: str | None, indent: str, blank_lines: int = 0) -> str:
    if not text:
        return ""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.strip().splitlines()
    after = "\n" * blank_lines
    if len(lines) == 1:
        return f'{indent}"""{lines[0]}"""\n{after}'
    inner = "\n".join(f"{indent}{line}".rstrip() for line in lines)
    return f'{indent}"""\n{inner}\n{indent}"""\n{after}'


def _pascal(name: str) -> str:
    """``namespaceSelector`` -> ``NamespaceSelector``; ``v1beta1`` -> ``V1beta1``."""
    parts = re.split(r"[^0-9A-Za-z]+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def _constant(kind: str) -> str:
    return to_snake(kind).upper()
