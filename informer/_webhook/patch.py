"""RFC 6902 JSON patches between two JSON documents: :func:`json_patch` computes one,
:func:`apply_json_patch` applies one.

A mutating webhook's handler changes a copy of the object; :func:`json_patch` turns the
difference into the ``patch`` of the AdmissionResponse (controller-runtime's
``PatchResponseFromRaw``). The patch is minimal in the way that matters to the API
server and to audit logs: an unchanged subtree produces no operation; a changed mapping
produces one ``add``/``remove`` per key added or removed and recurses into the values
of the keys both have; a changed list keeps its longest common prefix and suffix and
turns the middle into pairwise changes plus ``add``\\s or ``remove``\\s (appending to a
list is one ``add``, dropping an element one ``remove``); anything else is one
``replace``. Values compare as JSON values: ``1`` equals ``1.0``, ``True`` does not
equal ``1``.

Documents are the plain values :mod:`orjson` produces (dicts with string keys, lists,
strings, numbers, booleans, ``None``); neither function mutates its arguments, and the
``value`` of an operation may share structure with the modified document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["JsonPatchError", "Operation", "apply_json_patch", "json_equal", "json_patch"]

Operation = dict[str, Any]
"""One patch operation: ``{"op": "add" | "remove" | "replace" | "test", "path": ...,
"value": ...}``."""


class JsonPatchError(ValueError):
    """A patch that cannot be applied to the document (a missing path, a failed ``test``,
    an unknown operation)."""


def json_patch(original: Any, modified: Any) -> list[Operation]:
    """The operations that turn ``original`` into ``modified`` (empty when equal)."""
    ops: list[Operation] = []
    _diff(original, modified, "", ops)
    return ops


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON (``True`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and len(a) == len(b)
            and all(k in b and json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    return type(a) is type(b) and a == b


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _diff(a: Any, b: Any, path: str, ops: list[Operation]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in b.items():
            where = f"{path}/{_escape(key)}"
            if key in a:
                _diff(a[key], value, where, ops)
            else:
                ops.append({"op": "add", "path": where, "value": value})
    elif isinstance(a, list) and isinstance(b, list):
        _diff_list(a, b, path, ops)
    elif not json_equal(a, b):
        ops.append({"op": "replace", "path": path, "value": b})


def _diff_list(a: list[Any], b: list[Any], path: str, ops: list[Operation]) -> None:
    start, end_a, end_b = 0, len(a), len(b)
    while start < end_a and start < end_b and json_equal(a[start], b[start]):
        start += 1
    while end_a > start and end_b > start and json_equal(a[end_a - 1], b[end_b - 1]):
        end_a -= 1
        end_b -= 1
    paired = min(end_a, end_b) - start
    for i in range(start, start + paired):
        _diff(a[i], b[i], f"{path}/{i}", ops)
    # the rest of the middle: removed at one index (the later ones shift down), or
    # inserted in order (each at its final index)
    ops.extend(
        {"op": "remove", "path": f"{path}/{start + paired}"} for _ in range(end_a - start - paired)
    )
    ops.extend(
        {"op": "add", "path": f"{path}/{j}", "value": b[j]} for j in range(start + paired, end_b)
    )


def apply_json_patch(document: Any, patch: Iterable[Mapping[str, Any]]) -> Any:
    """A copy of ``document`` with ``patch`` applied (``add``, ``remove``, ``replace``,
    ``test``); :class:`JsonPatchError` when an operation does not apply."""
    doc = copy.deepcopy(document)
    for op in patch:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(path, str) or (path and not path.startswith("/")):
            raise JsonPatchError(f"bad path in {dict(op)!r}")
        if kind not in ("add", "remove", "replace", "test"):
            raise JsonPatchError(f"unsupported operation {kind!r}")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise JsonPatchError(f"{kind} without a value: {dict(op)!r}")
        if not path:
            if kind == "test":
                if not json_equal(doc, op["value"]):
                    raise JsonPatchError("test failed at the root")
                continue
            if kind == "remove":
                raise JsonPatchError("cannot remove the root")
            doc = copy.deepcopy(op["value"])
            continue
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        parent = doc
        for part in parents:
            parent = _child(parent, part, path)
        doc = _apply(doc, parent, last, kind, op.get("value"), path)
    return doc


def _child(container: Any, part: str, path: str) -> Any:
    if isinstance(container, dict):
        if part not in container:
            raise JsonPatchError(f"{path}: no member {part!r}")
        return container[part]
    if isinstance(container, list):
        return container[_index(container, part, path, allow_end=False)]
    raise JsonPatchError(f"{path}: {part!r} is below a scalar")


def _index(container: list[Any], part: str, path: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(container)
    if not part.isdigit() or (part != "0" and part.startswith("0")):
        raise JsonPatchError(f"{path}: {part!r} is not a list index")
    index = int(part)
    if index > len(container) or (index == len(container) and not allow_end):
        raise JsonPatchError(f"{path}: index {index} out of range")
    return index


def _apply(doc: Any, parent: Any, last: str, kind: str, value: Any, path: str) -> Any:
    value = copy.deepcopy(value)
    if isinstance(parent, dict):
        if kind != "add" and last not in parent:
            raise JsonPatchError(f"{path}: no member {last!r}")
        if kind == "test":
            if not json_equal(parent[last], value):
                raise JsonPatchError(f"{path}: test failed")
        elif kind == "remove":
            del parent[last]
        else:
            parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, path, allow_end=kind == "add")
        if kind == "test":
            if not json_equal(parent[index], value):
                raise JsonPatchError(f"{path}: test failed")
        elif kind == "remove":
            del parent[index]
        elif kind == "replace":
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise JsonPatchError(f"{path}: the parent is a scalar")
    return doc
