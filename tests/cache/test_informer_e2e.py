"""Informers against the real control plane (kube-apiserver 1.36 + etcd).

The convergence tests put a TcpProxy between the informer and the API server so that the
informer can be disconnected while the test changes the cluster through a direct
client, then reconnected: the cache must equal a fresh list (keys and resourceVersions)
and objects deleted meanwhile must reach ``on_delete`` as ``DeletedFinalStateUnknown``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from api_helpers import core_object, serves_watch_list

from informer import (
    Client,
    DeletedFinalStateUnknown,
    HandlerFuncs,
    NotFound,
    Resource,
    SharedIndexInformer,
    SharedInformerFactory,
    TooManyRequests,
    meta_namespace_key,
    new_api_client,
    request_json,
)
from informer.cache import strip_managed_fields
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import eventually
from informer.testing._proxy import TcpProxy
from informer.testing.control_plane import ControlPlane

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

FAST = {"backoff_initial": 0.05, "backoff_cap": 0.5}
WAIT = 30.0
POLL = 0.02  # cache conditions: cheap to check often


# -- helpers ---------------------------------------------------------------------------
async def create_cm(
    client: Client, ns: str, name: str, labels: dict[str, str] | None = None
) -> Any:
    return await client.create(core_object("ConfigMap", name, ns, labels=labels, data={"k": "v"}))


async def update_cm(client: Client, ns: str, name: str, value: str) -> Any:
    return await client.patch(CONFIGMAPS, name, {"data": {"k": value}}, namespace=ns)


def deployment(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    sel = {"app": name}
    return {
        "metadata": {"name": name, "labels": {**sel, **(labels or {})}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": sel},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }


async def fresh_list(api: Any, resource: Resource, ns: str) -> dict[str, str]:
    body = await request_json(api, "GET", resource.path(namespace=ns))
    return {meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in body["items"]}


def cache_state(informer: SharedIndexInformer) -> dict[str, str]:
    return {
        meta_namespace_key(o): o["metadata"]["resourceVersion"] for o in informer.indexer.list()
    }


def converged(informer: SharedIndexInformer, truth: dict[str, str]) -> Callable[[], None]:
    """A check for ``eventually``: the cache holds exactly ``truth`` (keys and
    resourceVersions)."""

    def check() -> None:
        assert cache_state(informer) == truth

    return check


def cached(informer: SharedIndexInformer, key: str) -> Callable[[], None]:
    """A check for ``eventually``: the cache holds ``key``."""

    def check() -> None:
        assert key in informer.indexer, sorted(informer.indexer.list_keys())

    return check


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.deleted: list[Any] = []

    def handler(self) -> HandlerFuncs:
        def on_add(obj: Any) -> None:
            self.log.append(("add", meta_namespace_key(obj)))

        def on_update(old: Any, new: Any) -> None:
            if old["metadata"]["resourceVersion"] != new["metadata"]["resourceVersion"]:
                self.log.append(("update", meta_namespace_key(new)))

        def on_delete(obj: Any) -> None:
            self.log.append(("delete", meta_namespace_key(obj)))
            self.deleted.append(obj)

        return HandlerFuncs(on_add, on_update, on_delete)


# -- watching what happens -------------------------------------------------------------
async def test_informer_sees_configmaps_and_deployments_with_selectors(
    api_client: Any, client: Client, namespace: str
) -> None:
    factory = SharedInformerFactory(
        api_client, namespace=namespace, transform=strip_managed_fields, reflector_options=FAST
    )
    cms = factory.informer_for(CONFIGMAPS, label_selector="team=a")
    deps = factory.informer_for(DEPLOYMENTS)
    cm_events, dep_events = Events(), Events()
    cms.add_event_handler(cm_events.handler())
    deps.add_event_handler(dep_events.handler())
    await create_cm(client, namespace, "pre", {"team": "a"})
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)

        # A list at resourceVersion 0 (list-watch mode) is answered from the API server's
        # watch cache, which can lag the creates above on a loaded machine; the watch
        # brings the rest.
        def pre_added() -> None:
            assert cm_events.log == [("add", f"{namespace}/pre")]

        await eventually(pre_added, timeout=WAIT, interval=POLL)
        await create_cm(client, namespace, "mine", {"team": "a"})
        await create_cm(client, namespace, "other-team", {"team": "b"})
        await update_cm(client, namespace, "mine", "2")
        await client.delete(CONFIGMAPS, "pre", namespace=namespace)
        await request_json(
            api_client, "POST", DEPLOYMENTS.path(namespace=namespace), body=deployment("web")
        )
        await request_json(
            api_client,
            "PATCH",
            DEPLOYMENTS.path("web", namespace=namespace),
            body={"spec": {"replicas": 3}},
            content_type="application/merge-patch+json",
        )
        await client.delete(DEPLOYMENTS, "web", namespace=namespace)

        def all_notified() -> None:
            assert (len(cm_events.log), len(dep_events.log)) == (4, 3), (
                cm_events.log,
                dep_events.log,
            )

        await eventually(all_notified, timeout=WAIT, interval=POLL)
        assert cm_events.log == [
            ("add", f"{namespace}/pre"),
            ("add", f"{namespace}/mine"),
            ("update", f"{namespace}/mine"),
            ("delete", f"{namespace}/pre"),
        ]
        assert dep_events.log == [
            ("add", f"{namespace}/web"),
            ("update", f"{namespace}/web"),
            ("delete", f"{namespace}/web"),
        ]
        assert list(cms.indexer.list_keys()) == [f"{namespace}/mine"]
        stored = cms.lister().get("mine", namespace=namespace)
        assert stored is not None and "managedFields" not in stored["metadata"]
        assert stored["data"] == {"k": "2"}


async def test_namespace_scoping(api_client: Any, client: Client, namespace: str) -> None:
    other = f"{namespace[:50]}-x"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    factory = SharedInformerFactory(api_client, namespace=namespace, reflector_options=FAST)
    scoped = factory.informer_for(CONFIGMAPS)
    everywhere = factory.informer_for(CONFIGMAPS, namespace=None)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        await create_cm(client, other, "there")
        await create_cm(client, namespace, "here")

        def both_seen() -> None:
            assert {f"{namespace}/here", f"{other}/there"} <= set(everywhere.indexer.list_keys())
            assert f"{namespace}/here" in scoped.indexer

        await eventually(both_seen, timeout=WAIT, interval=POLL)
        assert f"{other}/there" not in scoped.indexer
        assert all(k.startswith(f"{namespace}/") for k in scoped.indexer.list_keys())
    await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")


@pytest.mark.allow_handler_failures
async def test_slow_and_raising_handlers_both_receive_every_event(
    api_client: Any, client: Client, namespace: str
) -> None:
    factory = SharedInformerFactory(api_client, namespace=namespace, reflector_options=FAST)
    informer = factory.informer_for(CONFIGMAPS)
    slow_seen: list[str] = []
    raising_seen: list[str] = []

    async def slow(event: str, obj: Any) -> None:
        await anyio.sleep(0.05)
        slow_seen.append(f"{event}:{meta_namespace_key(obj)}")

    def raising(event: str, obj: Any) -> None:
        raising_seen.append(f"{event}:{meta_namespace_key(obj)}")
        raise RuntimeError("handler bug")

    informer.add_event_handler(slow)
    informer.add_event_handler(raising)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        for i in range(10):
            await create_cm(client, namespace, f"cm{i}")
        for i in range(10):
            await client.delete(CONFIGMAPS, f"cm{i}", namespace=namespace)

        def all_handled() -> None:
            assert (len(slow_seen), len(raising_seen)) == (20, 20)

        await eventually(all_handled, timeout=WAIT, interval=POLL)
    expected = [f"add:{namespace}/cm{i}" for i in range(10)]
    expected += [f"delete:{namespace}/cm{i}" for i in range(10)]
    assert slow_seen == expected
    assert raising_seen == expected


@pytest.mark.parametrize("watch_list", [False, True], ids=["list-watch", "watch-list"])
async def test_initial_sync_modes(
    api_client: Any, client: Client, namespace: str, watch_list: bool
) -> None:
    for i in range(7):
        await create_cm(client, namespace, f"cm{i}")
    factory = SharedInformerFactory(
        api_client,
        namespace=namespace,
        reflector_options={**FAST, "use_watch_list": watch_list, "page_size": 3},
    )
    informer = factory.informer_for(CONFIGMAPS)
    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        truth = await fresh_list(api_client, CONFIGMAPS, namespace)
        # A list at resourceVersion 0 (list-watch mode) is answered from the API server's
        # watch cache, which can lag the creates above on a loaded machine; the watch
        # brings the rest.
        await eventually(converged(informer, truth), timeout=WAIT, interval=POLL)
        calls = informer.reflector.stats
        if watch_list and await serves_watch_list(api_client, namespace):
            assert calls.lists == 0, "watch-list mode must sync without a List call"
        elif watch_list:  # an older server (make test-compat): one list, then list+watch
            assert informer.reflector.watch_list_fallback and calls.lists == 1
        else:
            assert calls.lists >= 1
        await create_cm(client, namespace, "late")
        await eventually(cached(informer, f"{namespace}/late"), timeout=WAIT, interval=POLL)


@pytest.mark.parametrize("watch_list", [False, True], ids=["list-watch", "watch-list"])
async def test_cached_objects_carry_api_version_and_kind(
    api_client: Any, client: Client, namespace: str, watch_list: bool
) -> None:
    """A List's items come without apiVersion/kind, watch objects with them: the cache
    holds one shape whichever way an object arrived (list, watch, watch-list)."""
    await create_cm(client, namespace, "listed")
    await request_json(
        api_client, "POST", DEPLOYMENTS.path(namespace=namespace), body=deployment("listed")
    )
    factory = SharedInformerFactory(
        api_client,
        namespace=namespace,
        transform=strip_managed_fields,
        reflector_options={**FAST, "use_watch_list": watch_list},
    )
    cms, deps = factory.informer_for(CONFIGMAPS), factory.informer_for(DEPLOYMENTS)
    seen: list[Any] = []
    cms.add_event_handler(HandlerFuncs(seen.append, lambda old, new: seen.append(new)))

    def shapes(informer: SharedIndexInformer) -> set[tuple[str, str]]:
        return {(o.get("apiVersion"), o.get("kind")) for o in informer.indexer.list()}

    async with factory:
        assert await factory.wait_for_cache_sync(timeout=30)
        await create_cm(client, namespace, "watched")
        await request_json(
            api_client, "POST", DEPLOYMENTS.path(namespace=namespace), body=deployment("watched")
        )
        await update_cm(client, namespace, "listed", "2")

        def all_seen() -> None:
            assert (len(deps.indexer), len(seen)) == (2, 3)

        await eventually(all_seen, timeout=WAIT, interval=POLL)
    assert shapes(cms) == {("v1", "ConfigMap")}
    assert shapes(deps) == {("apps/v1", "Deployment")}
    assert {(o["apiVersion"], o["kind"]) for o in seen} == {("v1", "ConfigMap")}
    native = watch_list and await serves_watch_list(api_client, namespace)
    assert cms.reflector.stats.lists == (0 if native else 1)


# -- convergence after failures ----------------------------------------------------------
@pytest.fixture(scope="module")
async def nocache_cp() -> AsyncIterator[ControlPlane]:
    """A control plane without the watch cache: old resourceVersions answer 410."""
    async with ControlPlane(apiserver_args=["--watch-cache=false"]) as cp:
        yield cp


async def _admin(cp: ControlPlane) -> Any:
    return await new_api_client(kubeconfig=str(cp.kubeconfig_path))


@pytest.mark.parametrize("watch_list", [False, True], ids=["list-watch", "watch-list"])
async def test_converges_after_churn_and_apiserver_restart(
    nocache_cp: ControlPlane, watch_list: bool
) -> None:
    ns = f"restart-{secrets.token_hex(3)}"
    async with await _admin(nocache_cp) as api:
        client = Client(api)
        await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        for i in range(20):
            await create_cm(client, ns, f"cm{i}")
        factory = SharedInformerFactory(
            api, namespace=ns, reflector_options={**FAST, "use_watch_list": watch_list}
        )
        informer = factory.informer_for(CONFIGMAPS)
        events = Events()
        informer.add_event_handler(events.handler())
        async with factory:
            assert await factory.wait_for_cache_sync(timeout=30)
            # Churn while watching.
            for i in range(20):
                if i % 3 == 0:
                    await client.delete(CONFIGMAPS, f"cm{i}", namespace=ns)
                else:
                    await update_cm(client, ns, f"cm{i}", f"v{i}")
            await nocache_cp.restart_apiserver()
            # More churn after the restart, through the new server process.
            for i in range(20, 25):
                await create_cm(client, ns, f"cm{i}")
            truth = await fresh_list(api, CONFIGMAPS, ns)
            await eventually(converged(informer, truth), timeout=WAIT, interval=POLL)
            assert informer.reflector.stats.watches >= 2
            if watch_list and not await serves_watch_list(api, ns):  # an older server
                assert informer.reflector.watch_list_fallback
            else:  # a graceful restart never turns watch-list off for good
                assert not informer.reflector.watch_list_fallback
            if watch_list and not informer.reflector.watch_list_fallback:
                assert informer.reflector.stats.watch_lists >= 1


async def test_deletes_while_disconnected_after_compaction_become_tombstones(
    nocache_cp: ControlPlane,
) -> None:
    ns = f"compact-{secrets.token_hex(3)}"
    async with await _admin(nocache_cp) as api, TcpProxy("127.0.0.1", _port(nocache_cp)) as proxy:
        client = Client(api)
        await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        for i in range(6):
            await create_cm(client, ns, f"cm{i}")
        async with await _admin(nocache_cp) as via_proxy:
            via_proxy.configuration.host = proxy.url
            factory = SharedInformerFactory(via_proxy, namespace=ns, reflector_options=FAST)
            informer = factory.informer_for(CONFIGMAPS)
            events = Events()
            informer.add_event_handler(events.handler())
            async with factory:
                assert await factory.wait_for_cache_sync(timeout=30)
                expired_before = informer.reflector.stats.expired
                proxy.cut()  # the informer's watch drops; reconnects are refused
                await client.delete(CONFIGMAPS, "cm0", namespace=ns)
                await client.delete(CONFIGMAPS, "cm1", namespace=ns)
                await update_cm(client, ns, "cm2", "changed")
                await create_cm(client, ns, "new")
                await nocache_cp.compact_etcd()
                proxy.restore()
                truth = await fresh_list(api, CONFIGMAPS, ns)
                await eventually(converged(informer, truth), timeout=WAIT, interval=POLL)

                def both_deleted() -> None:
                    assert len(events.deleted) == 2, events.deleted

                await eventually(both_deleted, timeout=WAIT, interval=POLL)
                assert informer.reflector.stats.expired > expired_before
                assert sorted(meta_namespace_key(d) for d in events.deleted) == [
                    f"{ns}/cm0",
                    f"{ns}/cm1",
                ]
                assert all(isinstance(d, DeletedFinalStateUnknown) for d in events.deleted)
                assert all(d.obj is not None for d in events.deleted)


def _port(cp: ControlPlane) -> int:
    return int(cp.host.rsplit(":", 1)[1])


async def test_custom_resource_by_group_version_plural(
    api_client: Any, client: Client, namespace: str
) -> None:
    group = f"t{secrets.token_hex(4)}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    await request_json(api_client, "POST", crds, body=crd)
    widgets = Resource(group, "v1", "widgets", kind="Widget")
    try:
        # Established: the new REST path answers (404 until served, 429 while its storage
        # initialises).
        await eventually(
            lambda: request_json(api_client, "GET", widgets.path(namespace=namespace), verb="list"),
            timeout=30,
            interval=0.1,
            retry_on=(NotFound, TooManyRequests),
        )
        body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}}
        await request_json(
            api_client, "POST", widgets.path(namespace=namespace), body={**body, "size": 1}
        )
        factory = SharedInformerFactory(api_client, namespace=namespace, reflector_options=FAST)
        informer = factory.informer_for(widgets)
        events = Events()
        informer.add_event_handler(events.handler())
        async with factory:
            assert await factory.wait_for_cache_sync(timeout=30)
            await request_json(
                api_client,
                "PATCH",
                widgets.path("w1", namespace=namespace),
                body={"size": 2},
                content_type="application/merge-patch+json",
            )
            await client.delete(widgets, "w1", namespace=namespace)

            def three_events() -> None:
                assert len(events.log) == 3, events.log

            await eventually(three_events, timeout=WAIT, interval=POLL)
        assert events.log == [
            ("add", f"{namespace}/w1"),
            ("update", f"{namespace}/w1"),
            ("delete", f"{namespace}/w1"),
        ]
    finally:
        await request_json(api_client, "DELETE", f"{crds}/widgets.{group}")
