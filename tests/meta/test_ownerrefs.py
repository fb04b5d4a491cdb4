"""Owner references (informer._meta.ownerrefs): controller-runtime's
``controllerutil.SetControllerReference`` / ``SetOwnerReference``
(pkg/controller/controllerutil/controllerutil.go): ``validateOwner``,
``referSameObject`` (group + kind + name), ``upsertOwnerRef`` and ``AlreadyOwnedError``;
then the API server's view of the references we build (the local control plane runs no
garbage collector, so we check what it accepts and rejects)."""

from __future__ import annotations

import copy
from typing import Any

import anyio
import pytest

from informer import (
    AlreadyOwnedError,
    ApiError,
    InformerError,
    owner_key,
    request_json,
    set_controller_reference,
    set_owner_reference,
)
from informer._meta.ownerrefs import owner_reference
from informer.meta import controller_of
from informer.resources import CONFIGMAPS, NAMESPACES

TIMEOUT = 30


def owner(
    name: str = "app",
    *,
    kind: str = "Widget",
    api_version: str = "example.com/v1",
    namespace: str | None = "ns",
    uid: str | None = "uid-1",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if uid:
        meta["uid"] = uid
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def child(namespace: str | None = "ns", refs: list[dict[str, Any]] | None = None) -> Any:
    meta: dict[str, Any] = {"name": "child"}
    if namespace:
        meta["namespace"] = namespace
    if refs is not None:
        meta["ownerReferences"] = refs
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


CONTROLLER_REF = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "name": "app",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


# -- SetControllerReference ---------------------------------------------------------------


def test_sets_controller_and_block_owner_deletion() -> None:
    """``SetControllerReference`` appends a ref with controller and blockOwnerDeletion."""
    obj = child()
    o = owner()
    frozen = copy.deepcopy(o)
    assert set_controller_reference(o, obj) is True
    assert obj["metadata"]["ownerReferences"] == [CONTROLLER_REF]
    assert controller_of(obj) == CONTROLLER_REF
    assert o == frozen  # the owner is never touched


def test_idempotent_for_the_same_owner() -> None:
    """Same owner again: ``upsertOwnerRef`` replaces the ref with an equal one."""
    obj = child()
    set_controller_reference(owner(), obj)
    assert set_controller_reference(owner(), obj) is False
    assert obj["metadata"]["ownerReferences"] == [CONTROLLER_REF]


def test_same_owner_at_another_version_or_uid_is_updated_in_place() -> None:
    """``referSameObject`` compares group, kind and name only: a new version or a
    recreated owner's uid updates the existing reference instead of adding one."""
    obj = child(refs=[dict(CONTROLLER_REF)])
    recreated = owner(api_version="example.com/v2", uid="uid-2")
    assert set_controller_reference(recreated, obj) is True
    [ref] = obj["metadata"]["ownerReferences"]
    assert (ref["apiVersion"], ref["uid"], ref["controller"]) == ("example.com/v2", "uid-2", True)


def test_match_uid_refuses_a_recreated_owner_of_the_same_name() -> None:
    """``match_uid=True``: the dependent of a deleted incarnation is not adopted by the
    new owner of that name (nothing changes); the same uid at another version still is
    the same owner."""
    obj = child(refs=[dict(CONTROLLER_REF)])
    before = copy.deepcopy(obj)
    with pytest.raises(AlreadyOwnedError, match=r"earlier Widget 'app' \(uid uid-1, not uid-2\)"):
        set_controller_reference(owner(uid="uid-2"), obj, match_uid=True)
    assert obj == before
    assert set_controller_reference(owner(), obj, match_uid=True) is False
    moved = owner(api_version="example.com/v2")
    assert set_controller_reference(moved, obj, match_uid=True) is True
    fresh = child()
    assert set_controller_reference(owner(uid="uid-2"), fresh, match_uid=True) is True


def test_another_controller_raises_already_owned() -> None:
    """Only one controller: ``AlreadyOwnedError`` names the current one; obj unchanged."""
    obj = child(refs=[dict(CONTROLLER_REF)])
    before = copy.deepcopy(obj)
    with pytest.raises(AlreadyOwnedError) as info:
        set_controller_reference(owner("other", uid="uid-9"), obj)
    err = info.value
    assert isinstance(err, InformerError)
    assert "ns/child is already owned by another Widget controller 'app'" in str(err)
    assert err.owner == CONTROLLER_REF and err.object_key == "ns/child"
    assert obj == before


def test_same_name_in_another_group_is_another_owner() -> None:
    """Different group, same kind and name: not the same object -> AlreadyOwnedError."""
    obj = child(refs=[dict(CONTROLLER_REF)])
    with pytest.raises(AlreadyOwnedError):
        set_controller_reference(owner(api_version="other.io/v1"), obj)


def test_a_plain_owner_reference_to_the_same_owner_is_promoted() -> None:
    """An existing non-controller ref to the same owner becomes the controller ref."""
    obj = child()
    set_owner_reference(owner(), obj)
    set_controller_reference(owner(), obj)
    assert obj["metadata"]["ownerReferences"] == [CONTROLLER_REF]


@pytest.mark.parametrize(
    ("owner_ns", "child_ns", "message"),
    [
        ("a", "b", "cross-namespace owner references are disallowed, owner's namespace a"),
        ("a", None, "cluster-scoped resource must not have a namespace-scoped owner"),
    ],
    ids=["cross-namespace", "namespaced-owner-of-cluster-object"],
)
@pytest.mark.parametrize(
    "setter", [set_controller_reference, set_owner_reference], ids=lambda f: f.__name__
)
def test_validate_owner(owner_ns: str, child_ns: str | None, message: str, setter: Any) -> None:
    """``validateOwner``: a namespaced owner only owns objects of its own namespace."""
    with pytest.raises(ValueError, match=message):
        setter(owner(namespace=owner_ns), child(child_ns))


@pytest.mark.parametrize("child_ns", ["ns", None], ids=["namespaced", "cluster-scoped"])
def test_cluster_scoped_owner_owns_anything(child_ns: str | None) -> None:
    """An owner without a namespace may own namespaced and cluster-scoped objects."""
    obj = child(child_ns)
    set_controller_reference(owner(namespace=None, kind="Tenant"), obj)
    assert controller_of(obj) is not None


@pytest.mark.parametrize(
    ("o", "missing"),
    [
        (owner(uid=None), "metadata.uid"),
        ({"metadata": {"name": "x", "uid": "u", "namespace": "ns"}}, "apiVersion, kind"),
        ({"apiVersion": "v1", "kind": "A", "metadata": {"uid": "u"}}, "metadata.name"),
    ],
    ids=["no-uid", "no-type", "no-name"],
)
def test_owner_must_be_complete(o: dict[str, Any], missing: str) -> None:
    """A reference needs apiVersion, kind, name and uid (the server rejects an empty
    uid): an owner not yet created cannot own anything."""
    with pytest.raises(ValueError, match=f"has no {missing}"):
        set_controller_reference(o, child())


# -- SetOwnerReference ----------------------------------------------------------------------


def test_set_owner_reference_adds_and_overwrites() -> None:
    """``SetOwnerReference``: no controller fields; an existing ref to the same owner is
    overwritten (even a controller one), others are kept in order."""
    obj = child()
    set_owner_reference(owner("a", uid="ua"), obj)
    set_owner_reference(owner("b", uid="ub"), obj)
    assert [r["name"] for r in obj["metadata"]["ownerReferences"]] == ["a", "b"]
    assert all("controller" not in r for r in obj["metadata"]["ownerReferences"])
    assert set_owner_reference(owner("a", uid="ua"), obj) is False
    obj2 = child(refs=[dict(CONTROLLER_REF)])
    assert set_owner_reference(owner(), obj2) is True
    assert obj2["metadata"]["ownerReferences"] == [owner_reference(owner())]
    assert controller_of(obj2) is None


def test_controller_owner_maps_back_to_the_owner_key() -> None:
    """What ``Controller.owns`` relies on: ``owner_key(kind, group=)`` maps an object
    we set a controller reference on to its owner's key (``EnqueueRequestForOwner``
    with ``OnlyControllerOwner``)."""
    obj = child()
    set_owner_reference(owner("plain", uid="u0"), obj)
    set_controller_reference(owner(), obj)
    assert owner_key("Widget", group="example.com")(obj) == ["ns/app"]
    assert owner_key("Widget", group="other.io")(obj) == []


# -- against the real server --------------------------------------------------------------


@pytest.mark.anyio
async def test_server_accepts_our_references(api_client: Any, namespace: str) -> None:
    """A ConfigMap owned by a ConfigMap (controller) and by its Namespace (cluster-scoped
    owner, plain reference) is accepted as built; taking over fails locally with
    AlreadyOwnedError, and the server itself refuses a second controller reference."""
    path = CONFIGMAPS.path(namespace=namespace)
    with anyio.fail_after(TIMEOUT):
        boss = await request_json(api_client, "POST", path, body={"metadata": {"name": "boss"}})
        ns = await request_json(api_client, "GET", NAMESPACES.path(namespace))
        for o in (boss, ns):  # a single GET/POST answer carries apiVersion and kind
            assert o["apiVersion"] == "v1" and o["kind"] in ("ConfigMap", "Namespace")
        owned: dict[str, Any] = {"metadata": {"name": "owned", "namespace": namespace}}
        set_controller_reference(boss, owned)
        set_owner_reference(ns, owned)
        created = await request_json(api_client, "POST", path, body=owned)
        assert created["metadata"]["ownerReferences"] == owned["metadata"]["ownerReferences"]
        assert owner_key("ConfigMap", group="")(created) == [f"{namespace}/boss"]

        rival = await request_json(api_client, "POST", path, body={"metadata": {"name": "rival"}})
        with pytest.raises(AlreadyOwnedError, match="controller 'boss'"):
            set_controller_reference(rival, copy.deepcopy(created))
        forced = copy.deepcopy(created)
        forced["metadata"]["ownerReferences"].append(owner_reference(rival, controller=True))
        with pytest.raises(ApiError, match="Only one reference can have Controller set to true"):
            await request_json(
                api_client, "PUT", CONFIGMAPS.path("owned", namespace=namespace), body=forced
            )

        # Idempotent: setting the same references again changes nothing, and the
        # update the server accepts keeps them.
        again = copy.deepcopy(created)
        assert set_controller_reference(boss, again) is False
        assert set_owner_reference(ns, again) is False
        updated = await request_json(
            api_client, "PUT", CONFIGMAPS.path("owned", namespace=namespace), body=again
        )
        assert updated["metadata"]["ownerReferences"] == created["metadata"]["ownerReferences"]


@pytest.mark.anyio
async def test_server_rejects_a_reference_without_uid(api_client: Any, namespace: str) -> None:
    """The server requires a uid in every owner reference: why owner_reference
    refuses an owner without one (e.g. an object not created yet)."""
    body = {
        "metadata": {
            "name": "orphan",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": ""}],
        }
    }
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(ApiError, match="uid") as info:
            await request_json(api_client, "POST", CONFIGMAPS.path(namespace=namespace), body=body)
        assert info.value.status == 422
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        owner_reference({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
