"""Declarative finalizers (``informer/_controller/finalizing.py``), on the real control
plane: the finalizer is on the object before any reconcile sees it, deletion waits for
``finalize`` (called instead of ``reconcile``), a raising ``finalize`` is retried with the
rate limiter, and a class declares the pair or neither."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest

from informer import Client, Controller, NotFound, Obj, Result, has_finalizer, is_being_deleted
from informer._failures import Failure
from informer.resources import CONFIGMAPS
from informer.testing import eventually, run_controllers

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

FINALIZER = "test.informer.dev/cleanup"


def cleaner(*, fail: int = 0) -> type[Controller]:
    """A controller of ConfigMaps labelled ``finalized=yes`` whose ``finalize`` waits for
    ``release`` and raises ``fail`` times first."""

    class Cleaner(Controller):
        finalizer = FINALIZER
        reconciled: ClassVar[list[tuple[str, bool, bool]]] = []  # key, had it, deleting
        finalized: ClassVar[list[str]] = []
        release = anyio.Event()

        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS, label_selector="finalized=yes")

        async def reconcile(self, key: str) -> Result | None:
            namespace, _, name = key.partition("/")
            cm = self.configmaps.lister().get(name, namespace=namespace)
            if cm is not None:
                self.reconciled.append((key, has_finalizer(cm, FINALIZER), is_being_deleted(cm)))
            return None

        async def finalize(self, obj: Obj) -> None:
            self.finalized.append(obj["metadata"]["name"])
            await self.release.wait()
            if len(self.finalized) <= fail:
                raise RuntimeError(f"cleanup failed (attempt {len(self.finalized)})")

    return Cleaner


def configmap(name: str, namespace: str) -> Obj:
    meta = {"name": name, "namespace": namespace, "labels": {"finalized": "yes"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


async def gone(client: Client, name: str, namespace: str) -> None:
    try:
        held = await client.get(CONFIGMAPS, name, namespace=namespace)
    except NotFound:
        return
    raise AssertionError(f"still there: {held['metadata']}")


async def test_the_finalizer_is_added_before_reconcile_and_deletion_waits_for_finalize(
    api_client: Any, client: Client, namespace: str
) -> None:
    cls: Any = cleaner()
    async with run_controllers(api_client, cls, namespace=namespace):
        await client.create(configmap("site", namespace))
        await eventually(lambda: bool(cls.reconciled))
        assert all(had for _, had, _ in cls.reconciled), cls.reconciled
        live = await client.get(CONFIGMAPS, "site", namespace=namespace)
        assert live["metadata"].get("finalizers") == [FINALIZER], live["metadata"]

        await client.delete(CONFIGMAPS, "site", namespace=namespace)
        await eventually(lambda: cls.finalized == ["site"])
        held = await client.get(CONFIGMAPS, "site", namespace=namespace)
        assert is_being_deleted(held) and has_finalizer(held, FINALIZER)  # blocked
        assert not [r for r in cls.reconciled if r[2]]  # finalize, not reconcile
        cls.release.set()
        await eventually(lambda: gone(client, "site", namespace))
    assert cls.finalized == ["site"]


async def test_a_raising_finalize_is_retried_until_it_returns(
    api_client: Any, client: Client, namespace: str, handler_failures: list[Failure]
) -> None:
    cls: Any = cleaner(fail=2)
    cls.release.set()
    async with run_controllers(api_client, cls, namespace=namespace):
        await client.create(configmap("site", namespace))
        await eventually(lambda: bool(cls.reconciled))
        await client.delete(CONFIGMAPS, "site", namespace=namespace)
        await eventually(lambda: gone(client, "site", namespace))
    assert cls.finalized == ["site"] * 3
    failures = [f for f in handler_failures if f.kind == "reconcile"]
    assert [str(f.error) for f in failures] == [
        "cleanup failed (attempt 1)",
        "cleanup failed (attempt 2)",
    ]


async def test_an_object_deleted_before_its_finalizer_is_not_finalized(
    api_client: Any, client: Client, namespace: str
) -> None:
    """Without our finalizer an object being deleted is left alone (never ours)."""
    cls: Any = cleaner()
    cm = configmap("other", namespace)
    cm["metadata"]["finalizers"] = ["someone.else/keep"]
    await client.create(cm)
    await client.delete(CONFIGMAPS, "other", namespace=namespace)
    try:
        async with run_controllers(api_client, cls, namespace=namespace) as manager:
            await eventually(lambda: manager.controllers[0].queue.depth() == 0)
            assert cls.finalized == [] and cls.reconciled == []
            held = await client.get(CONFIGMAPS, "other", namespace=namespace)
            assert held["metadata"]["finalizers"] == ["someone.else/keep"]
    finally:
        held = await client.get(CONFIGMAPS, "other", namespace=namespace)
        await client.remove_finalizer(held, "someone.else/keep", missing_ok=True)


# -- declaring --------------------------------------------------------------------------


def test_a_finalizer_needs_finalize_and_finalize_needs_a_finalizer() -> None:
    with pytest.raises(TypeError, match="implement async def finalize"):

        class NoCleanup(Controller):
            finalizer = "example.com/cleanup"

    with pytest.raises(TypeError, match="names no finalizer"):

        class NoName(Controller):
            async def finalize(self, obj: Obj) -> None:
                return None

    with pytest.raises(ValueError, match=r"BadName\.finalizer: invalid finalizer name"):

        class BadName(Controller):
            finalizer = "not a name"

            async def finalize(self, obj: Obj) -> None:
                return None


def test_a_finalizer_needs_a_primary_watch() -> None:
    class NoPrimary(Controller):
        finalizer = "example.com/cleanup"

        def setup(self) -> None:
            self.watch(CONFIGMAPS, mapper=lambda _: [])

        async def finalize(self, obj: Obj) -> None:
            return None

    from informer import SharedInformerFactory

    with pytest.raises(RuntimeError, match=r"self.watch\(<primary Resource>\)"):
        NoPrimary(SharedInformerFactory(None), None)
