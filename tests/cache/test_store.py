"""The indexed store (informer._cache.store.Indexer)."""

from __future__ import annotations

from typing import Any

import pytest

from informer import DeletedFinalStateUnknown, meta_namespace_key
from informer._cache.store import NAMESPACE_INDEX, Indexer, namespace_index
from informer._meta.types import Obj
from informer.meta import ObjectKeyError


def obj(name: str, namespace: str | None = "default", rv: str = "1", **labels: str) -> Obj:
    metadata: dict[str, Any] = {"name": name, "resourceVersion": rv, "labels": labels}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"metadata": metadata}


def by_app(o: Obj) -> list[str]:
    app = o["metadata"]["labels"].get("app")
    return [app] if app else []


def by_tiers(o: Obj) -> list[str]:
    """Multi-valued: "a,b" -> ["a", "b"]."""
    tiers = o["metadata"]["labels"].get("tiers", "")
    return tiers.split(",") if tiers else []


def new_indexer() -> Indexer:
    return Indexer(indexers={NAMESPACE_INDEX: namespace_index, "app": by_app, "tiers": by_tiers})


def keys(objs: list[Obj]) -> set[str]:
    return {f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in objs}


# -- namespace_index --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("o", "values"),
    [
        pytest.param(obj("a", "prod"), ["prod"], id="namespaced"),
        pytest.param(obj("a", None), [""], id="cluster-scoped"),
    ],
)
def test_namespace_index(o: Obj, values: list[str]) -> None:
    assert namespace_index(o) == values


# -- Store ------------------------------------------------------------------------------


def test_add_get_list_len_contains() -> None:
    idx = Indexer()
    a, b = obj("a"), obj("b", None)
    idx.add(a)
    idx.add(b)
    assert len(idx) == 2
    assert "default/a" in idx
    assert "b" in idx
    assert "default/b" not in idx
    assert idx.get_by_key("default/a") is a
    assert idx.get(obj("a")) is a
    assert idx.get_by_key("nope") is None
    assert idx.list_keys() == ["default/a", "b"]
    assert idx.list() == [a, b]


def test_store_keeps_the_given_dict_without_copying() -> None:
    idx = Indexer()
    a = obj("a")
    idx.add(a)
    assert idx.get_by_key("default/a") is a
    assert idx.list()[0] is a


def test_returned_lists_are_fresh() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.list().clear()
    idx.list_keys().clear()
    idx.by_index("app", "web").clear()
    idx.index_keys("app", "web").clear()
    assert len(idx) == 1
    assert idx.index_keys("app", "web") == ["default/a"]


@pytest.mark.parametrize("method", ["add", "update"], ids=["add", "update"])
def test_add_and_update_overwrite_in_place_keeping_order(method: str) -> None:
    idx = Indexer()
    idx.add(obj("a"))
    idx.add(obj("b"))
    newer = obj("a", rv="2")
    getattr(idx, method)(newer)
    assert len(idx) == 2
    assert idx.get_by_key("default/a") is newer
    assert idx.list_keys() == ["default/a", "default/b"]


def test_delete_removes_object() -> None:
    idx = Indexer()
    idx.add(obj("a"))
    idx.delete(obj("a", rv="9"))
    assert len(idx) == 0
    assert idx.get_by_key("default/a") is None


def test_delete_unknown_key_is_a_noop() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.delete(obj("zzz", app="web"))
    assert idx.list_keys() == ["default/a"]
    assert idx.index_keys("app", "web") == ["default/a"]


def test_delete_accepts_a_tombstone() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.delete(DeletedFinalStateUnknown("default/a", None))
    assert len(idx) == 0
    assert idx.list_index_func_values("app") == []
    assert idx.get(DeletedFinalStateUnknown("default/a", None)) is None


def test_replace_swaps_content_and_rebuilds_indexes() -> None:
    idx = new_indexer()
    idx.add(obj("old", app="legacy"))
    idx.add(obj("keep", app="web", rv="1"))
    keep2 = obj("keep", app="api", rv="2")
    idx.replace([keep2, obj("new", "prod", app="web")], "123")
    assert sorted(idx.list_keys()) == ["default/keep", "prod/new"]
    assert idx.get_by_key("default/keep") is keep2
    assert sorted(idx.list_index_func_values("app")) == ["api", "web"]
    assert idx.index_keys("app", "web") == ["prod/new"]
    assert sorted(idx.list_index_func_values(NAMESPACE_INDEX)) == ["default", "prod"]


def test_replace_is_atomic_when_a_key_cannot_be_computed() -> None:
    idx = new_indexer()
    a = obj("a", app="web")
    idx.add(a)
    with pytest.raises(ObjectKeyError):
        idx.replace([obj("b"), {"metadata": {}}], "1")
    assert idx.list() == [a]
    assert idx.index_keys("app", "web") == ["default/a"]


def test_replace_with_nothing_empties_the_store() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.replace([], "")
    assert len(idx) == 0
    assert idx.list_index_func_values("app") == []


def test_custom_key_func() -> None:
    idx = Indexer(key_func=lambda o: o["metadata"]["uid"])
    o = {"metadata": {"name": "a", "uid": "u-1"}}
    idx.add(o)
    assert idx.list_keys() == ["u-1"]
    assert idx.get(o) is o
    idx.delete(o)
    assert len(idx) == 0


def test_add_without_name_raises_and_leaves_store_unchanged() -> None:
    idx = Indexer()
    with pytest.raises(ObjectKeyError):
        idx.add({"metadata": {}})
    assert len(idx) == 0


# -- Indexes ----------------------------------------------------------------------------


def test_by_index_and_index_keys() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.add(obj("b", "prod", app="web"))
    idx.add(obj("c", app="db"))
    assert keys(idx.by_index("app", "web")) == {"default/a", "prod/b"}
    assert sorted(idx.index_keys("app", "web")) == ["default/a", "prod/b"]
    assert sorted(idx.index_keys(NAMESPACE_INDEX, "default")) == ["default/a", "default/c"]
    assert idx.by_index("app", "missing") == []
    assert idx.index_keys("app", "missing") == []
    assert sorted(idx.list_index_func_values("app")) == ["db", "web"]


def test_update_removes_stale_index_entries() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web", tiers="front,back"))
    idx.update(obj("a", app="api", tiers="back,cache", rv="2"))
    assert idx.index_keys("app", "web") == []
    assert "web" not in idx.list_index_func_values("app")
    assert idx.index_keys("app", "api") == ["default/a"]
    assert sorted(idx.list_index_func_values("tiers")) == ["back", "cache"]
    assert idx.index_keys("tiers", "back") == ["default/a"]


def test_update_to_no_values_unindexes() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web"))
    idx.update(obj("a", rv="2"))
    assert idx.list_index_func_values("app") == []
    assert idx.index_keys(NAMESPACE_INDEX, "default") == ["default/a"]


def test_delete_removes_index_entries_and_empty_values() -> None:
    idx = new_indexer()
    idx.add(obj("a", app="web", tiers="x,y"))
    idx.add(obj("b", app="web"))
    idx.delete(obj("a"))
    assert idx.index_keys("app", "web") == ["default/b"]
    assert idx.list_index_func_values("tiers") == []
    idx.delete(obj("b"))
    assert idx.list_index_func_values("app") == []
    assert idx.list_index_func_values(NAMESPACE_INDEX) == []


def test_duplicate_index_values_are_harmless() -> None:
    idx = Indexer(indexers={"dup": lambda o: ["v", "v"]})
    idx.add(obj("a"))
    assert idx.index_keys("dup", "v") == ["default/a"]
    idx.delete(obj("a"))
    assert idx.list_index_func_values("dup") == []


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        pytest.param(obj("p", tiers="front"), {"default/a", "default/b"}, id="one-value"),
        pytest.param(
            obj("p", tiers="front,db"),
            {"default/a", "default/b", "default/d"},
            id="union-of-values",
        ),
        pytest.param(obj("p", tiers="none"), set(), id="no-match"),
        pytest.param(obj("p"), set(), id="probe-has-no-values"),
    ],
)
def test_index_returns_objects_sharing_any_value(probe: Obj, expected: set[str]) -> None:
    idx = new_indexer()
    idx.add(obj("a", tiers="front"))
    idx.add(obj("b", tiers="front,back"))
    idx.add(obj("c", tiers="back"))
    idx.add(obj("d", tiers="db"))
    assert keys(idx.index("tiers", probe)) == expected


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda i: i.index("nope", obj("a")), id="index"),
        pytest.param(lambda i: i.by_index("nope", "v"), id="by_index"),
        pytest.param(lambda i: i.index_keys("nope", "v"), id="index_keys"),
        pytest.param(lambda i: i.list_index_func_values("nope"), id="list_index_func_values"),
    ],
)
def test_unknown_index_name_raises_key_error(call: Any) -> None:
    idx = new_indexer()
    with pytest.raises(KeyError, match=r"no index named 'nope'.*'app'"):
        call(idx)


def test_add_indexers_after_data_indexes_existing_objects() -> None:
    idx = Indexer()
    idx.add(obj("a", app="web"))
    idx.add(obj("b", app="db"))
    idx.add_indexers({"app": by_app})
    assert idx.index_keys("app", "web") == ["default/a"]
    idx.add(obj("c", app="web"))
    idx.delete(obj("a"))
    assert idx.index_keys("app", "web") == ["default/c"]
    assert set(idx.get_indexers()) == {"app"}
    assert set(idx.indexers) == {"app"}


def test_add_indexers_conflict_raises_and_adds_nothing() -> None:
    idx = new_indexer()
    with pytest.raises(ValueError, match="indexer conflict"):
        idx.add_indexers({"extra": by_app, "app": by_app})
    assert "extra" not in idx.get_indexers()


def test_indexers_view_is_read_only() -> None:
    idx = new_indexer()
    with pytest.raises(TypeError):
        idx.indexers["x"] = by_app  # type: ignore[index]


def test_failing_index_func_on_add_leaves_store_unchanged() -> None:
    def boom(o: Obj) -> list[str]:
        raise RuntimeError("boom")

    idx = Indexer(indexers={"boom": boom})
    with pytest.raises(RuntimeError):
        idx.add(obj("a"))
    assert len(idx) == 0


# -- precomputed keys ---------------------------------------------------------------------


def test_add_with_key_returns_previous_object() -> None:
    idx = new_indexer()
    a1, a2 = obj("a", app="web"), obj("a", app="api", rv="2")
    assert idx.add_with_key("default/a", a1) is None
    assert idx.add_with_key("default/a", a2) is a1
    assert idx.get_by_key("default/a") is a2
    assert idx.index_keys("app", "web") == []
    assert idx.index_keys("app", "api") == ["default/a"]


def test_delete_key_returns_removed_object_or_none() -> None:
    idx = new_indexer()
    a = obj("a", app="web")
    idx.add(a)
    assert idx.delete_by_key("default/a") is a
    assert idx.delete_by_key("default/a") is None
    assert idx.list_index_func_values("app") == []


def test_key_func_is_exposed() -> None:
    def by_uid(o: Obj) -> str:
        return str(o["metadata"]["uid"])

    assert Indexer().key_func is meta_namespace_key
    assert Indexer(key_func=by_uid).key_func is by_uid


def test_update_under_the_same_key_keeps_the_namespace_index_and_moves_the_others() -> None:
    def by_app(obj: Obj) -> list[str]:
        return [obj["metadata"].get("labels", {}).get("app", "")]

    idx = Indexer(indexers={NAMESPACE_INDEX: namespace_index, "app": by_app})
    first = {"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "x"}}}
    second = {"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "y"}}}
    assert idx.add_with_key("ns/a", first) is None
    assert idx.add_with_key("ns/a", second) is first
    assert idx.by_index(NAMESPACE_INDEX, "ns") == [second]
    assert idx.index_keys("app", "x") == []
    assert idx.by_index("app", "y") == [second]
    idx.delete_by_key("ns/a")
    assert idx.list_index_func_values(NAMESPACE_INDEX) == []
    assert idx.list_index_func_values("app") == []


def test_custom_key_func_still_updates_the_namespace_index() -> None:
    idx = Indexer(
        key_func=lambda o: o["metadata"]["name"],
        indexers={NAMESPACE_INDEX: namespace_index},
    )
    idx.add({"metadata": {"name": "a", "namespace": "one"}})
    idx.update({"metadata": {"name": "a", "namespace": "two"}})
    assert idx.list_index_func_values(NAMESPACE_INDEX) == ["two"]
