"""share_strings / StringTable: equal objects, one copy of each value, a table that
forgets what nobody holds."""

from __future__ import annotations

import copy
import sys
from typing import Any

import orjson
import pytest

import informer.cache
from informer._cache.strings import SHARED_STRINGS, StringTable, share_strings
from informer._meta.types import Obj


def deployment(i: int, *, namespace: str = "shop") -> Obj:
    """Decoded from bytes, as objects arrive: no string is shared yet."""
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"web-{i}",
            "namespace": namespace,
            "uid": f"uid-{i % 2}",  # equal on purpose: never shared all the same
            "resourceVersion": "7",
            "labels": {"app": f"web-{i}", "team": "payments"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Thing", "name": "owner"}],
            "finalizers": ["example.com/cleanup"],
        },
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "registry.example.com/web:1.0", "args": ["-v"]}
                    ],
                    "restartPolicy": "Always",
                }
            },
        },
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    }
    return orjson.loads(orjson.dumps(obj))  # type: ignore[no-any-return]


def strings(obj: Any) -> list[str]:
    """Every string value in ``obj`` (keys excluded), depth first."""
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return [obj] if isinstance(obj, str) else []


def test_equal_objects_share_every_value_but_uid_and_resource_version() -> None:
    table = StringTable()
    a, b = deployment(1), deployment(3)
    expected = copy.deepcopy(a), copy.deepcopy(b)
    a, b = table.share(a), table.share(b)
    assert (a, b) == expected
    for x, y in zip(strings(a), strings(b), strict=True):
        if x == y and x not in ("uid-1", "7"):
            assert x is y, x
    assert a["metadata"]["uid"] is not b["metadata"]["uid"]
    assert a["metadata"]["resourceVersion"] is not b["metadata"]["resourceVersion"]
    # "web-1" once, though the name and a label value
    assert a["metadata"]["name"] is a["metadata"]["labels"]["app"]


def test_the_exported_transform_uses_the_process_table() -> None:
    assert informer.cache.share_strings is share_strings
    a = share_strings(deployment(1, namespace="ns-only-in-this-test"))
    b = share_strings(deployment(2, namespace="ns-only-in-this-test"))
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert "ns-only-in-this-test" in SHARED_STRINGS._table


def test_dicts_of_eight_keys_or_more_are_rebuilt_smaller_and_equal() -> None:
    table = StringTable()
    big = {f"key{i}": f"v{i}" for i in range(9)}
    obj = orjson.loads(
        orjson.dumps({"metadata": {**big, "managedFields": [{}]}, "spec": {"a": [big]}, **big})
    )
    del obj["metadata"]["managedFields"]  # 9 keys left, decoded with 10
    before = copy.deepcopy(obj)
    sizes = (
        sys.getsizeof(obj),
        sys.getsizeof(obj["metadata"]),
        sys.getsizeof(obj["spec"]["a"][0]),
    )
    out = table.share(obj)
    assert out == before
    after = (sys.getsizeof(out), sys.getsizeof(out["metadata"]), sys.getsizeof(out["spec"]["a"][0]))
    assert all(a < b for a, b in zip(after, sizes, strict=True)), (after, sizes)


def test_unused_strings_are_dropped_when_the_table_doubles() -> None:
    table = StringTable(prune_at=64)
    kept = [table.share(deployment(i, namespace=f"ns-{i}")) for i in range(4)]
    for i in range(200):  # objects dropped at once: their unique strings die
        table.share(deployment(1000 + i, namespace=f"gone-{i}"))
    assert len(table) < 64 + 40
    assert table.prune() >= 0
    live = {s for obj in kept for s in strings(obj)} - {"uid-0", "uid-1", "7"}
    assert live <= set(table._table)  # what cached objects hold is still shared
    assert not any(s.startswith("gone-") for s in table._table)
    again = table.share(deployment(2, namespace="ns-2"))
    assert again["metadata"]["namespace"] is kept[2]["metadata"]["namespace"]


def test_prune_keeps_strings_held_elsewhere() -> None:
    table = StringTable()
    held = table.share(deployment(5))
    table.share(deployment(6))  # dropped: its own strings go, the common ones stay
    dropped = table.prune()
    assert dropped > 0
    assert set(strings(held)) - {"uid-1", "7"} <= set(table._table)
    assert "web-6" not in table._table


def test_ints_outside_the_small_int_cache_are_shared_too() -> None:
    table = StringTable()
    decode = lambda: orjson.loads(  # noqa: E731
        b'{"metadata": {"name": "alpha", "generation": 1000},'
        b' "spec": {"port": 8080, "ports": [8080, 300000], "n": 7, "flag": true}}'
    )
    a, b = table.share(decode()), table.share(decode())
    assert a == b == decode()
    assert a["spec"]["port"] is b["spec"]["port"] is a["spec"]["ports"][0]
    assert a["spec"]["ports"][1] is b["spec"]["ports"][1]
    assert a["metadata"]["generation"] is not b["metadata"]["generation"]  # metadata's own
    del a, b
    assert table.prune() > 0
    assert len(table) == 0  # nothing holds them any more: strings and ints dropped


def test_deep_objects_do_not_recurse() -> None:
    table = StringTable()
    node: Any = {"leaf": "x" * 3}
    for _ in range(5000):
        node = {"child": node, "list": ["y"]}
    out = table.share(node)
    depth = 0
    while "child" in out:
        assert out["list"][0] is node["list"][0]
        out = out["child"]
        depth += 1
    assert depth == 5000


@pytest.mark.parametrize("prune_at", [0, -1])
def test_prune_at_must_be_positive(prune_at: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        StringTable(prune_at=prune_at)
