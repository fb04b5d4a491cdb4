"""The ConfigMapMirror sample operator, end to end on the real control plane.

The controller runs in-process for all namespaces (``run_controllers``), its CRD
installed with ``install_crds``; every behaviour is observed through the API. The
session's control plane has no namespace controller: a deleted namespace stays
``Terminating`` and refuses creations (403 NamespaceTerminating), which the mirror must
survive. The deletion path through a namespace controller and a garbage collector runs
on ``gc_control_plane`` (a kube-controller-manager beside the apiserver).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from kube_informer_samples.configmap_mirror import (
    CRD_PATH,
    FINALIZER,
    MIRROR_LABEL,
    MIRRORS,
    ConfigMapMirror,
)

from informer import Client, Forbidden, NotFound, Obj, get_condition, has_finalizer
from informer.resources import CONFIGMAPS, EVENTS, NAMESPACES
from informer.testing import ControlPlane, eventually, install_crds, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

WITHIN = 15.0


@pytest.fixture
async def client(api_client: Any) -> Client:
    await install_crds(api_client, CRD_PATH)  # idempotent: a no-op once served
    return Client(api_client)


class World:
    """The test's namespaces and mirrors; cleans both up (mirrors first, while the
    controller still runs, so their finalizers are handled)."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.namespaces: list[str] = []
        self.mirrors: list[str] = []

    async def new_namespace(self, labels: dict[str, str] | None = None, *, name: str = "") -> str:
        name = name or f"{self.namespace[:40]}-{secrets.token_hex(3)}"
        meta: Obj = {"name": name, "labels": labels or {}}
        await self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        self.namespaces.append(name)
        return name

    async def source(self, data: dict[str, str], name: str = "settings") -> Obj:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": data, "binaryData": {"b": "AAE="}}
        cm["metadata"] = {"name": name, "namespace": self.namespace}
        return await self.client.create(cm)

    async def mirror(self, spec: Obj, name: str = "mirror") -> Obj:
        self.mirrors.append(name)
        return await self.client.create(
            {
                "apiVersion": "mirror.informer.dev/v1alpha1",
                "kind": "ConfigMapMirror",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": spec,
            }
        )

    async def get_mirror(self, name: str = "mirror") -> Obj:
        return await self.client.get(MIRRORS, name, namespace=self.namespace, cached=False)

    async def copy_in(self, namespace: str, name: str = "settings") -> Obj | None:
        try:
            return await self.client.get(CONFIGMAPS, name, namespace=namespace, cached=False)
        except NotFound:
            return None

    async def ready(self, name: str = "mirror", *, synced: list[str], status: str = "True") -> Obj:
        """The mirror's status once it reports ``synced`` for its current generation."""

        async def check() -> Obj:
            mirror = await self.get_mirror(name)
            st = mirror.get("status") or {}
            assert st.get("observedGeneration") == mirror["metadata"]["generation"], st
            assert st.get("syncedNamespaces") == synced, st
            condition = get_condition(mirror, "Ready")
            assert condition is not None and condition["status"] == status, st
            assert condition["observedGeneration"] == mirror["metadata"]["generation"]
            return mirror

        return await eventually(check, timeout=WITHIN)

    async def events(self, name: str = "mirror") -> list[Obj]:
        answer = await self.client.list(EVENTS, namespace=self.namespace, cached=False)
        return [e for e in answer if e["regarding"]["name"] == name]

    async def one_event(self, reason: str) -> Obj:
        events = [e for e in await self.events() if e["reason"] == reason]
        assert len(events) == 1, events
        return events[0]

    async def cleanup(self) -> None:
        with anyio.CancelScope(shield=True), anyio.fail_after(WITHIN):
            for name in self.mirrors:
                await self.client.delete(MIRRORS, name, namespace=self.namespace, missing_ok=True)
            for name in self.mirrors:
                await eventually(lambda: self.gone(name), timeout=WITHIN)  # noqa: B023 - awaited here
            for ns in self.namespaces:
                await self.client.delete(NAMESPACES, ns, missing_ok=True)

    async def gone(self, name: str) -> None:
        try:
            mirror = await self.get_mirror(name)
        except NotFound:
            return
        raise AssertionError(f"mirror {name} still exists: {mirror['metadata']}")


@pytest.fixture
async def world(
    api_client: Any, client: Client, namespace: str
) -> AsyncIterator[tuple[World, ConfigMapMirror]]:
    w = World(client, namespace)
    async with run_controllers(api_client, ConfigMapMirror) as manager:
        [controller] = manager.controllers
        assert isinstance(controller, ConfigMapMirror)
        try:
            yield w, controller
        finally:
            await w.cleanup()


def copied(cm: Obj | None, data: dict[str, str], mirror: Obj) -> bool:
    return (
        cm is not None
        and cm.get("data") == data
        and cm.get("binaryData") == {"b": "AAE="}
        and cm["metadata"]["labels"][MIRROR_LABEL] == mirror["metadata"]["uid"]
    )


async def test_copies_into_target_namespaces_with_status_and_events(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """Copies in every target but the mirror's own namespace; status.observedGeneration,
    status.syncedNamespaces, Ready=True; the finalizer; a Synced Event."""
    w, _ = world
    t1, t2 = await w.new_namespace(), await w.new_namespace()
    await w.source({"LOG_LEVEL": "info"})
    mirror = await w.mirror({"source": "settings", "targetNamespaces": [t2, t1, w.namespace]})
    done = await w.ready(synced=sorted([t1, t2]))
    assert has_finalizer(done, FINALIZER)
    condition = get_condition(done, "Ready")
    assert condition is not None and condition["reason"] == "Synced"
    for ns in (t1, t2):
        assert copied(await w.copy_in(ns), {"LOG_LEVEL": "info"}, mirror)
    source = await w.copy_in(w.namespace)
    assert source is not None and MIRROR_LABEL not in (source["metadata"].get("labels") or {})
    event = await eventually(lambda: w.one_event("Synced"))
    assert event["type"] == "Normal" and t1 in event["note"] and t2 in event["note"]
    assert event["reportingController"] == "configmap-mirror"


async def test_copies_follow_the_source_and_are_repaired(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """Source edited: copies follow; a copy edited or deleted by hand: restored."""
    w, _ = world
    target = await w.new_namespace()
    await w.source({"k": "1"})
    mirror = await w.mirror({"source": "settings", "targetNamespaces": [target]})
    await w.ready(synced=[target])
    await w.client.patch(CONFIGMAPS, "settings", {"data": {"k": "2"}}, namespace=w.namespace)
    await eventually(lambda: _copied_now(w, target, {"k": "2"}, mirror), timeout=WITHIN)
    await w.client.patch(CONFIGMAPS, "settings", {"data": {"k": "hand"}}, namespace=target)
    await eventually(lambda: _copied_now(w, target, {"k": "2"}, mirror), timeout=WITHIN)
    await w.client.delete(CONFIGMAPS, "settings", namespace=target)
    await eventually(lambda: _copied_now(w, target, {"k": "2"}, mirror), timeout=WITHIN)


async def _copied_now(w: World, namespace: str, data: dict[str, str], mirror: Obj) -> None:
    cm = await w.copy_in(namespace)
    assert copied(cm, data, mirror), cm


async def test_deleting_the_source_deletes_the_copies_until_it_returns(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """Ready=False SourceMissing, a Warning Event, no copies; recreated: copied again."""
    w, _ = world
    target = await w.new_namespace()
    await w.source({"k": "1"})
    mirror = await w.mirror({"source": "settings", "targetNamespaces": [target]})
    await w.ready(synced=[target])
    await w.client.delete(CONFIGMAPS, "settings", namespace=w.namespace)
    missing = await w.ready(synced=[], status="False")
    condition = get_condition(missing, "Ready")
    assert condition is not None and condition["reason"] == "SourceMissing"
    assert await w.copy_in(target) is None
    warning = await eventually(lambda: w.one_event("SourceMissing"))
    assert warning["type"] == "Warning" and "settings" in warning["note"]
    await w.source({"k": "back"})
    await w.ready(synced=[target])
    assert copied(await w.copy_in(target), {"k": "back"}, mirror)


async def test_a_target_namespace_appearing_later_gets_its_copy(
    world: tuple[World, ConfigMapMirror],
) -> None:
    w, _ = world
    first = await w.new_namespace()
    later = f"{w.namespace[:40]}-later"
    await w.source({"k": "1"})
    mirror = await w.mirror({"source": "settings", "targetNamespaces": [first, later]})
    await w.ready(synced=[first])  # a missing namespace is not a failure: nothing to do
    await w.new_namespace(name=later)
    await w.ready(synced=sorted([first, later]))
    assert copied(await w.copy_in(later), {"k": "1"}, mirror)


async def test_a_namespace_selector_follows_labels_and_terminating_namespaces(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """Labelled later: copied; label removed: its copy deleted; namespace deleted (stays
    Terminating here): its copy deleted, nothing created there again."""
    w, _ = world
    team = f"team-{secrets.token_hex(3)}"
    selected = await w.new_namespace({"mirror-test": team})
    other = await w.new_namespace()
    await w.source({"k": "1"})
    selector = {"matchExpressions": [{"key": "mirror-test", "operator": "In", "values": [team]}]}
    mirror = await w.mirror({"source": "settings", "namespaceSelector": selector})
    await w.ready(synced=[selected])
    labels = {"metadata": {"labels": {"mirror-test": team}}}
    await w.client.patch(NAMESPACES, other, labels)
    await w.ready(synced=sorted([selected, other]))
    assert copied(await w.copy_in(other), {"k": "1"}, mirror)
    await w.client.patch(NAMESPACES, other, {"metadata": {"labels": {"mirror-test": None}}})
    await w.ready(synced=[selected])
    assert await w.copy_in(other) is None
    await w.client.delete(NAMESPACES, selected)
    await w.ready(synced=[])
    assert await w.copy_in(selected) is None
    namespace = await w.client.get(NAMESPACES, selected, cached=False)
    assert namespace["status"]["phase"] == "Terminating"


async def test_a_configmap_it_did_not_make_is_left_alone(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """Same name in a target, not labelled by this mirror: untouched, Ready=False naming
    that namespace; the other target is synced."""
    w, _ = world
    taken, free = await w.new_namespace(), await w.new_namespace()
    theirs = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"owner": "someone"}}
    theirs["metadata"] = {"name": "settings", "namespace": taken}
    await w.client.create(theirs)
    await w.source({"k": "1"})
    await w.mirror({"source": "settings", "targetNamespaces": [taken, free]})
    status = await w.ready(synced=[free], status="False")
    condition = get_condition(status, "Ready")
    assert condition is not None and condition["reason"] == "NotSynced"
    assert taken in condition["message"]
    untouched = await w.copy_in(taken)
    assert untouched is not None and untouched["data"] == {"owner": "someone"}
    assert MIRROR_LABEL not in (untouched["metadata"].get("labels") or {})


async def test_deleting_the_mirror_deletes_its_copies_first(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """The finalizer: every copy is gone before the mirror is (cross-namespace, so no
    owner reference could do it); retargeting deletes the copies left behind."""
    w, _ = world
    t1, t2 = await w.new_namespace(), await w.new_namespace()
    await w.source({"k": "1"})
    await w.mirror({"source": "settings", "targetNamespaces": [t1, t2]})
    await w.ready(synced=sorted([t1, t2]))
    await w.client.patch(
        MIRRORS, "mirror", {"spec": {"targetNamespaces": [t1]}}, namespace=w.namespace
    )
    await w.ready(synced=[t1])
    assert await w.copy_in(t2) is None
    await w.client.delete(MIRRORS, "mirror", namespace=w.namespace)
    await eventually(lambda: w.gone("mirror"), timeout=WITHIN)
    assert await w.copy_in(t1) is None


async def test_its_own_status_writes_do_not_reconcile_it(
    world: tuple[World, ConfigMapMirror],
) -> None:
    """``generation_changed`` (controller-runtime's ``GenerationChangedPredicate``): a
    status write (here, by hand) enqueues nothing, a spec change does."""
    w, controller = world
    target = await w.new_namespace()
    await w.source({"k": "1"})
    await w.mirror({"source": "settings", "targetNamespaces": [target]})
    await w.ready(synced=[target])
    # Settled: the reconciles its own copy writes caused are over.
    counts: list[int] = []

    def settled() -> None:
        counts.append(sum(controller.stats.total.values()))
        busy = controller.queue.depth() or controller.stats.active_workers
        assert not busy and counts[-3:] == [counts[-1]] * 3, counts

    await eventually(settled, timeout=WITHIN, interval=0.1)
    before = counts[-1]
    bogus = {"status": {"syncedNamespaces": ["bogus"]}}
    await w.client.patch(MIRRORS, "mirror", bogus, namespace=w.namespace, subresource="status")

    def cached_bogus() -> None:
        cached = controller.mirrors.lister().get("mirror", namespace=w.namespace)
        assert cached is not None and cached["status"]["syncedNamespaces"] == ["bogus"]

    await eventually(cached_bogus, timeout=WITHIN)
    # Nothing can be awaited for "not reconciled": give a reconcile the time it takes.
    await anyio.sleep(0.5)
    assert sum(controller.stats.total.values()) == before
    spec = {"spec": {"targetNamespaces": [target, "nowhere"]}}
    await w.client.patch(MIRRORS, "mirror", spec, namespace=w.namespace)
    await w.ready(synced=[target])


async def test_a_terminating_namespace_refuses_creations_with_a_named_cause(
    client: Client, namespace: str
) -> None:
    """What ``copy`` skips: the 403 of a creation in a namespace being deleted carries the
    cause ``NamespaceTerminating`` (``ApiError.has_cause``, apimachinery's
    ``HasStatusCause``); other 403s do not."""
    doomed = f"{namespace[:40]}-doomed"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": doomed}})
    await client.delete(NAMESPACES, doomed)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": doomed}}
    with pytest.raises(Forbidden) as caught:
        await client.create(cm)
    assert caught.value.has_cause("NamespaceTerminating")
    assert not caught.value.has_cause("FieldValueInvalid")
    assert not Forbidden("no body").has_cause("NamespaceTerminating")


# ------------------------------------------- with a controller-manager (garbage collection)


async def test_deleting_the_mirrors_namespace_cleans_up_everywhere(
    gc_control_plane: ControlPlane,
) -> None:
    """On a control plane whose namespace controller really deletes namespaces: the
    mirror's namespace deleted, the namespace controller deletes the mirror, whose
    finalizer holds it until the controller deleted its copies in the other namespaces;
    then the namespace goes away. A deleted target namespace takes its copy with it."""
    async with gc_control_plane.api_client() as api:
        await install_crds(api, CRD_PATH)
        client = Client(api, field_manager="tests")
        home = f"mirror-home-{secrets.token_hex(3)}"
        w = World(client, home)
        await w.new_namespace(name=home)
        t1, t2 = await w.new_namespace(), await w.new_namespace()
        async with run_controllers(api, ConfigMapMirror):
            await w.source({"k": "v"})
            mirror = await w.mirror({"source": "settings", "targetNamespaces": [t1, t2]})
            await w.ready(synced=sorted([t1, t2]))
            for ns in (t1, t2):
                assert copied(await w.copy_in(ns), {"k": "v"}, mirror)

            await client.delete(NAMESPACES, t2)  # a target goes: its copy goes with it
            await eventually(lambda: namespace_gone(client, t2), timeout=GC_WITHIN)
            await w.ready(synced=[t1])

            await client.delete(NAMESPACES, home)
            await eventually(lambda: namespace_gone(client, home), timeout=GC_WITHIN)
            assert await w.copy_in(t1) is None  # deleted before the finalizer let go
            await client.delete(NAMESPACES, t1)


GC_WITHIN = 60.0  # the namespace controller's sweeps take seconds; a loaded machine, more


async def namespace_gone(client: Client, name: str) -> None:
    try:
        left = await client.get(NAMESPACES, name, cached=False)
    except NotFound:
        return
    raise AssertionError(f"namespace {name} still there: {left.get('status')}")
