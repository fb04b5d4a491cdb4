"""Finalizers (informer._meta.finalizers): controller-runtime's ``controllerutil``
``ContainsFinalizer`` / ``AddFinalizer`` / ``RemoveFinalizer`` semantics, the API
server's finalizer-name and deleting-object rules, and the resourceVersion-guarded merge
patch (``MergeFromWithOptimisticLock``), checked against the real server."""

from __future__ import annotations

import copy
from typing import Any

import anyio
import pytest

from informer import ApiError, Conflict, NotFound, has_finalizer, is_being_deleted, request_json
from informer._meta.finalizers import (
    add_finalizer_patch,
    finalizers_after_add,
    finalizers_after_remove,
    finalizers_patch,
    remove_finalizer_patch,
    validate_finalizer_name,
)
from informer.resources import CONFIGMAPS

FIN = "example.com/cleanup"
TIMEOUT = 30


def cm(*finalizers: str, rv: str | None = "7", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "c", "namespace": "ns"}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if rv is not None:
        meta["resourceVersion"] = rv
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


# -- pure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (cm(FIN), True),
        (cm("other.io/x", FIN), True),
        (cm("other.io/x"), False),
        (cm(), False),
        ({"metadata": None}, False),
        ({}, False),
    ],
    ids=["only", "among-others", "absent", "no-list", "null-metadata", "no-metadata"],
)
def test_has_finalizer(obj: dict[str, Any], expected: bool) -> None:
    """``ContainsFinalizer``: membership in metadata.finalizers."""
    assert has_finalizer(obj, FIN) is expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [(cm(deleting=True), True), (cm(), False), ({}, False)],
    ids=["deletion-timestamp", "live", "no-metadata"],
)
def test_is_being_deleted(obj: dict[str, Any], expected: bool) -> None:
    """``!obj.GetDeletionTimestamp().IsZero()``."""
    assert is_being_deleted(obj) is expected


def test_add_appends_and_is_idempotent_without_mutating() -> None:
    """``AddFinalizer`` appends when absent and reports no change when present."""
    obj = cm("other.io/x")
    before = copy.deepcopy(obj)
    assert finalizers_after_add(obj, FIN) == ["other.io/x", FIN]
    assert finalizers_after_add(cm(FIN), FIN) is None
    assert add_finalizer_patch(cm(FIN), FIN) is None
    assert obj == before  # pure: the caller's (maybe cached) dict is untouched


def test_remove_drops_every_occurrence() -> None:
    """``RemoveFinalizer`` filters out every occurrence; absent -> no change."""
    assert finalizers_after_remove(cm(FIN, "a.io/b", FIN), FIN) == ["a.io/b"]
    assert finalizers_after_remove(cm("a.io/b"), FIN) is None
    assert remove_finalizer_patch(cm(), FIN) is None


def test_patches_are_guarded_by_resource_version() -> None:
    """The merge patch carries the resourceVersion (optimistic lock); an empty list
    removes the field (null in a merge patch)."""
    assert add_finalizer_patch(cm(rv="42"), FIN) == {
        "metadata": {"resourceVersion": "42", "finalizers": [FIN]}
    }
    assert remove_finalizer_patch(cm(FIN, rv="43"), FIN) == {
        "metadata": {"resourceVersion": "43", "finalizers": None}
    }
    with pytest.raises(ValueError, match=r"no metadata\.resourceVersion"):
        finalizers_patch(cm(rv=None), [FIN])


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "name part must be non-empty"),
        ("example.com/", "name part must be non-empty"),
        ("/cleanup", "prefix part must be non-empty"),
        ("Example.com/cleanup", "prefix part a lowercase RFC 1123 subdomain"),
        ("a/b/c", "a qualified name must consist"),
        ("example.com/-cleanup", "name part must consist"),
        ("example.com/" + "x" * 64, "no more than 63 characters"),
    ],
    ids=["empty", "empty-name", "empty-prefix", "uppercase-prefix", "two-slashes", "dash", "long"],
)
def test_invalid_finalizer_names_are_rejected(name: str, problem: str) -> None:
    """``ValidateFinalizerName`` = ``IsQualifiedName``; the message says what is wrong."""
    with pytest.raises(ValueError, match="invalid finalizer name") as info:
        finalizers_after_add(cm(), name)
    assert problem in str(info.value)
    assert "example.com/cleanup" in str(info.value)  # what to use instead


@pytest.mark.parametrize(
    "name", ["example.com/cleanup", "cleanup", "kubernetes", "a.b-c/X_y.z"], ids=str
)
def test_valid_finalizer_names(name: str) -> None:
    """Unqualified names are valid (the server only warns about them)."""
    validate_finalizer_name(name)


def test_no_new_finalizer_on_a_deleting_object() -> None:
    """The API server forbids new finalizers once deletionTimestamp is set; removing
    (and re-adding one already present, a no-op) stays allowed."""
    with pytest.raises(ValueError, match="being deleted"):
        finalizers_after_add(cm(deleting=True), FIN)
    assert finalizers_after_add(cm(FIN, deleting=True), FIN) is None
    assert finalizers_after_remove(cm(FIN, deleting=True), FIN) == []


def test_orphan_and_foreground_deletion_are_exclusive() -> None:
    """``ValidateFinalizers``: 'orphan' and 'foregroundDeletion' cannot both be set."""
    with pytest.raises(ValueError, match="cannot both be set"):
        finalizers_after_add(cm("orphan"), "foregroundDeletion")


# -- against the real server -----------------------------------------------------------


async def _patch(api: Any, namespace: str, name: str, body: Any, kind: str = "merge") -> Any:
    return await request_json(
        api, "PATCH", CONFIGMAPS.path(name, namespace=namespace), body=body, content_type=kind
    )


async def _create(api: Any, namespace: str, name: str) -> dict[str, Any]:
    body = {"metadata": {"name": name}, "data": {"k": "v"}}
    return await request_json(api, "POST", CONFIGMAPS.path(namespace=namespace), body=body)


@pytest.mark.anyio
async def test_guarded_patch_conflicts_on_a_stale_object(api_client: Any, namespace: str) -> None:
    """A stale copy cannot lose a finalizer added concurrently: the server answers the
    resourceVersion-guarded merge patch with 409 Conflict (not a silent overwrite)."""
    with anyio.fail_after(TIMEOUT):
        created = await _create(api_client, namespace, "guarded")
        added = await _patch(api_client, namespace, "guarded", add_finalizer_patch(created, FIN))
        assert added["metadata"]["finalizers"] == [FIN]
        # Someone else adds theirs; our copy `added` is now stale.
        other = add_finalizer_patch(added, "other.io/keep")
        assert other is not None
        fresh = await _patch(api_client, namespace, "guarded", other)
        with pytest.raises(Conflict):
            await _patch(api_client, namespace, "guarded", remove_finalizer_patch(added, FIN))
        # Re-read and retry: only ours goes.
        done = await _patch(api_client, namespace, "guarded", remove_finalizer_patch(fresh, FIN))
        assert done["metadata"]["finalizers"] == ["other.io/keep"]
        last = remove_finalizer_patch(done, "other.io/keep")
        await _patch(api_client, namespace, "guarded", last)


@pytest.mark.anyio
async def test_removing_the_last_finalizer_lets_the_delete_finish(
    api_client: Any, namespace: str
) -> None:
    """The deletion waits for the finalizers; the server refuses a new one meanwhile
    (the rule finalizers_after_add enforces locally)."""
    with anyio.fail_after(TIMEOUT):
        created = await _create(api_client, namespace, "held")
        held = await _patch(api_client, namespace, "held", add_finalizer_patch(created, FIN))
        path = CONFIGMAPS.path("held", namespace=namespace)
        await request_json(api_client, "DELETE", path)
        deleting = await request_json(api_client, "GET", path)
        assert is_being_deleted(deleting) and has_finalizer(deleting, FIN)
        assert not is_being_deleted(held)
        with pytest.raises(ApiError, match="no new finalizers") as info:
            forced = {"metadata": {"finalizers": [FIN, "other.io/late"]}}
            await _patch(api_client, namespace, "held", forced)
        assert info.value.status == 422
        with pytest.raises(ValueError, match="being deleted"):
            add_finalizer_patch(deleting, "other.io/late")
        await _patch(api_client, namespace, "held", remove_finalizer_patch(deleting, FIN))
        with pytest.raises(NotFound):
            await request_json(api_client, "GET", path)


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["/cleanup", "a/b/c", "example.com/-x"], ids=str)
async def test_server_rejects_the_names_we_reject(
    api_client: Any, namespace: str, name: str
) -> None:
    """Our name check agrees with the server's ``ValidateFinalizerName``."""
    with pytest.raises(ValueError, match="invalid finalizer name"):
        validate_finalizer_name(name)
    with anyio.fail_after(TIMEOUT):
        body = {"metadata": {"name": "badname", "finalizers": [name]}}
        with pytest.raises(ApiError) as info:
            await request_json(api_client, "POST", CONFIGMAPS.path(namespace=namespace), body=body)
        assert info.value.status == 422


@pytest.mark.anyio
async def test_a_failed_json_patch_test_is_422_not_conflict(
    api_client: Any, namespace: str
) -> None:
    """Why the guard is a resourceVersion in a merge patch: a JSON patch ``test`` op that
    fails is answered 422, not 409 Conflict."""
    with anyio.fail_after(TIMEOUT):
        created = await _create(api_client, namespace, "jsonpatch")
        stale = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
            {"op": "add", "path": "/metadata/finalizers", "value": [FIN]},
        ]
        with pytest.raises(ApiError) as info:
            await _patch(api_client, namespace, "jsonpatch", stale, kind="json")
        assert info.value.status == 422 and not isinstance(info.value, Conflict)
        assert created["metadata"]["resourceVersion"] != "1"
