"""Object keys, tombstones and accessors on raw object dicts (informer._meta.objects)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from informer._exceptions import InformerError
from informer._meta.objects import (
    DeletedFinalStateUnknown,
    ObjectKeyError,
    annotations_of,
    controller_of,
    labels_of,
    meta_namespace_key,
    name_of,
    namespace_of,
    owner_references,
    resource_version,
    split_meta_namespace_key,
    uid_of,
    unwrap_tombstone,
)


def obj(name: str = "web", namespace: str | None = "default", **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


# -- meta_namespace_key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("o", "key"),
    [
        pytest.param(obj("web", "default"), "default/web", id="namespaced"),
        pytest.param(obj("node-1", None), "node-1", id="cluster-scoped-no-namespace"),
        pytest.param(obj("node-1", ""), "node-1", id="cluster-scoped-empty-namespace"),
        pytest.param(DeletedFinalStateUnknown("ns/gone", None), "ns/gone", id="tombstone"),
        pytest.param(
            DeletedFinalStateUnknown("ns/x", obj("other", "elsewhere")),
            "ns/x",
            id="tombstone-key-wins-over-its-object",
        ),
    ],
)
def test_meta_namespace_key(o: Any, key: str) -> None:
    assert meta_namespace_key(o) == key


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({}, id="no-metadata"),
        pytest.param({"metadata": {}}, id="no-name"),
        pytest.param({"metadata": {"name": ""}}, id="empty-name"),
        pytest.param({"metadata": {"generateName": "web-"}}, id="generate-name-only"),
        pytest.param({"metadata": None}, id="metadata-null"),
        pytest.param("default/web", id="a-string"),
        pytest.param(None, id="none"),
    ],
)
def test_meta_namespace_key_without_name_raises(bad: Any) -> None:
    with pytest.raises(ObjectKeyError) as info:
        meta_namespace_key(bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InformerError)


def test_meta_namespace_key_error_message_names_the_problem() -> None:
    with pytest.raises(ObjectKeyError, match=r"metadata\.name.*generateName='web-'"):
        meta_namespace_key({"kind": "Pod", "metadata": {"generateName": "web-"}})


# -- split_meta_namespace_key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        pytest.param("default/web", ("default", "web"), id="namespaced"),
        pytest.param("node-1", (None, "node-1"), id="cluster-scoped"),
    ],
)
def test_split_meta_namespace_key(key: str, parts: tuple[str | None, str]) -> None:
    assert split_meta_namespace_key(key) == parts


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("a/b/c", id="too-many-parts"),
        pytest.param("", id="empty"),
        pytest.param("/web", id="empty-namespace"),
        pytest.param("default/", id="empty-name"),
        pytest.param("/", id="only-separator"),
    ],
)
def test_split_meta_namespace_key_malformed(key: str) -> None:
    with pytest.raises(ValueError, match="malformed key"):
        split_meta_namespace_key(key)


@pytest.mark.parametrize(
    "o",
    [
        pytest.param(obj("web", "default"), id="namespaced"),
        pytest.param(obj("n", None), id="cluster"),
    ],
)
def test_split_inverts_meta_namespace_key(o: dict[str, Any]) -> None:
    assert split_meta_namespace_key(meta_namespace_key(o)) == (namespace_of(o), name_of(o))


# -- DeletedFinalStateUnknown / unwrap_tombstone ----------------------------------------


def test_tombstone_is_frozen_with_slots() -> None:
    t = DeletedFinalStateUnknown("ns/a", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.key = "other"  # type: ignore[misc]
    assert not hasattr(t, "__dict__")
    assert t == DeletedFinalStateUnknown("ns/a", None)


def test_unwrap_tombstone_returns_the_same_dict() -> None:
    o = obj()
    assert unwrap_tombstone(o) is o
    assert unwrap_tombstone(DeletedFinalStateUnknown("default/web", o)) is o
    assert unwrap_tombstone(DeletedFinalStateUnknown("default/web", None)) is None


# -- accessors --------------------------------------------------------------------------

OWNED = obj(
    "web-abc",
    "prod",
    resourceVersion="42",
    uid="u-1",
    labels={"app": "web"},
    annotations={"a": "b"},
    ownerReferences=[
        {"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "u-0"},
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": "u-9",
            "controller": True,
        },
    ],
)
BARE = obj("n", None)


@pytest.mark.parametrize(
    ("accessor", "full", "empty"),
    [
        pytest.param(name_of, "web-abc", "n", id="name_of"),
        pytest.param(namespace_of, "prod", None, id="namespace_of"),
        pytest.param(resource_version, "42", None, id="resource_version"),
        pytest.param(uid_of, "u-1", None, id="uid_of"),
        pytest.param(labels_of, {"app": "web"}, {}, id="labels_of"),
        pytest.param(annotations_of, {"a": "b"}, {}, id="annotations_of"),
    ],
)
def test_accessors(accessor: Any, full: Any, empty: Any) -> None:
    assert accessor(OWNED) == full
    assert accessor(BARE) == empty


def test_namespace_of_empty_string_is_none() -> None:
    assert namespace_of(obj("n", "")) is None


def test_name_of_missing_raises() -> None:
    with pytest.raises(ObjectKeyError):
        name_of({"metadata": {}})


def test_accessors_return_the_objects_own_values_not_copies() -> None:
    assert labels_of(OWNED) is OWNED["metadata"]["labels"]
    assert owner_references(OWNED) is OWNED["metadata"]["ownerReferences"]


def test_empty_labels_are_read_only() -> None:
    empty = labels_of(BARE)
    with pytest.raises(TypeError):
        empty["x"] = "y"  # type: ignore[index]
    assert labels_of(obj()) == {}


def test_owner_references_and_controller_of() -> None:
    assert [r["kind"] for r in owner_references(OWNED)] == ["Thing", "ReplicaSet"]
    assert owner_references(BARE) == ()
    ref = controller_of(OWNED)
    assert ref is not None
    assert ref["uid"] == "u-9"
    assert controller_of(BARE) is None


def test_nothing_mutates_the_object() -> None:
    before = copy.deepcopy(OWNED)
    for fn in (
        meta_namespace_key,
        name_of,
        namespace_of,
        resource_version,
        uid_of,
        labels_of,
        annotations_of,
        owner_references,
        controller_of,
        unwrap_tombstone,
    ):
        fn(OWNED)
        fn(BARE)
    assert before == OWNED
    assert obj("n", None) == BARE
