"""The ConfigMap reloader: pure helpers, then end to end on the real control plane.

The end-to-end tests run the controller in-process on a SharedInformerFactory scoped to
the test's namespace and count rollouts by the Deployments' ``metadata.generation`` (it
grows by one per pod-template change; nothing else changes the spec here) and by the
controller's ``deployment.rolled`` log events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import structlog
from kube_informer_samples import configmap_reloader
from kube_informer_samples.configmap_reloader import (
    CONFIG_HASH_ANNOTATION,
    CONFIGMAP_INDEX,
    RELOAD_ANNOTATION,
    ConfigMapReloader,
    config_hash,
    configmaps_index,
    consumed_configmaps,
    is_opted_in,
    template_hash,
)
from structlog.testing import capture_logs

from informer import Client, Resource, SharedInformerFactory
from informer.cache import strip_managed_fields
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import eventually

Obj = dict[str, Any]

WAIT = 20.0  # seconds any awaited condition may take at most
POLL = 0.02  # the controller's caches: cheap to check often


# ------------------------------------------------------------------------------ builders


def make_deployment(
    name: str,
    *,
    opt_in: bool = True,
    containers: list[Obj] | None = None,
    init_containers: list[Obj] | None = None,
    volumes: list[Obj] | None = None,
    namespace: str | None = None,
) -> Obj:
    pod_spec: Obj = {"containers": containers or [{"name": "app", "image": "busybox:1.36"}]}
    if init_containers:
        pod_spec["initContainers"] = init_containers
    if volumes:
        pod_spec["volumes"] = volumes
    meta: Obj = {"name": name, "labels": {"app": name}}
    if namespace is not None:
        meta["namespace"] = namespace
    if opt_in:
        meta["annotations"] = {RELOAD_ANNOTATION: "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def env_ref(cm: str, *, optional: bool | None = None) -> Obj:
    ref: Obj = {"name": cm, "key": "k"}
    if optional is not None:
        ref["optional"] = optional
    return {
        "name": "app",
        "image": "busybox:1.36",
        "env": [{"name": "K", "valueFrom": {"configMapKeyRef": ref}}],
    }


def env_from(cm: str, container: str = "app") -> Obj:
    return {
        "name": container,
        "image": "busybox:1.36",
        "envFrom": [{"configMapRef": {"name": cm}}],
    }


def configmap(
    name: str,
    data: dict[str, str],
    labels: dict[str, str] | None = None,
    *,
    namespace: str | None = None,
) -> Obj:
    meta: Obj = {"name": name, "labels": labels or {}}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# ------------------------------------------------------------------------ pure helpers


def test_consumed_configmaps_finds_every_reference_kind() -> None:
    d = make_deployment(
        "d",
        containers=[env_ref("env"), env_from("envfrom")],
        init_containers=[env_from("init", "init")],
        volumes=[
            {"name": "v", "configMap": {"name": "vol"}},
            {
                "name": "p",
                "projected": {
                    "sources": [{"configMap": {"name": "proj"}}, {"secret": {"name": "s"}}]
                },
            },
            {"name": "e", "emptyDir": {}},
        ],
    )
    assert consumed_configmaps(d) == {
        "env": False,
        "envfrom": False,
        "init": False,
        "vol": False,
        "proj": False,
    }
    d["metadata"]["namespace"] = "ns"
    assert configmaps_index(d) == ["ns/env", "ns/envfrom", "ns/init", "ns/proj", "ns/vol"]


def test_optional_only_when_every_reference_is_optional() -> None:
    both = make_deployment(
        "d", containers=[env_ref("a", optional=True), env_ref("b", optional=True), env_from("b")]
    )
    assert consumed_configmaps(both) == {"a": True, "b": False}


@pytest.mark.parametrize(
    "deployment",
    [
        {},
        {"spec": None},
        {"spec": {"template": {"spec": {"containers": "nope", "volumes": [None, 3]}}}},
        {"spec": {"template": {"spec": {"containers": [{"env": [{"valueFrom": None}]}]}}}},
    ],
    ids=["empty", "null-spec", "wrong-types", "null-valuefrom"],
)
def test_malformed_deployments_consume_nothing(deployment: Obj) -> None:
    assert consumed_configmaps(deployment) == {}
    assert configmaps_index(deployment) == []


def test_opt_in_annotation() -> None:
    assert is_opted_in(make_deployment("d"))
    assert not is_opted_in(make_deployment("d", opt_in=False))
    d = make_deployment("d")
    d["metadata"]["annotations"][RELOAD_ANNOTATION] = "TRUE"
    assert is_opted_in(d)
    d["metadata"]["annotations"][RELOAD_ANNOTATION] = "yes"
    assert not is_opted_in(d)


def test_config_hash_covers_data_and_names_only() -> None:
    a = configmap("a", {"x": "1", "y": "2"})
    base = config_hash({"a": a})
    assert config_hash({"a": configmap("a", {"y": "2", "x": "1"})}) == base  # key order
    assert config_hash({"a": configmap("a", {"x": "1", "y": "2"}, {"l": "v"})}) == base
    assert config_hash({"a": configmap("a", {"x": "1", "y": "3"})}) != base
    assert config_hash({"b": a}) != base  # the name counts
    with_binary = {**a, "binaryData": {"z": "AAE="}}
    assert config_hash({"a": with_binary}) != base
    assert config_hash({"a": None}) != config_hash({"a": configmap("a", {})})
    assert len(base) == 64


# ----------------------------------------------------------------------------- e2e helpers


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    """The reloader's log events (``capture_logs``), whatever structlog config ran before.

    A runner configured earlier in the session (``cache_logger_on_first_use``) may have
    frozen the module's logger; a fresh proxy and default settings make capture reliable.
    """
    monkeypatch.setattr(
        configmap_reloader, "log", structlog.get_logger(configmap_reloader.__name__)
    )
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


@asynccontextmanager
async def running_reloader(api: Any, namespace: str) -> AsyncIterator[ConfigMapReloader]:
    factory = SharedInformerFactory(api, namespace=namespace, transform=strip_managed_fields)
    controller = ConfigMapReloader(factory, api)
    async with factory, anyio.create_task_group() as tg:
        with anyio.fail_after(WAIT):
            await tg.start(controller.run)
        try:
            yield controller
        finally:
            tg.cancel_scope.cancel()


async def settle(controller: ConfigMapReloader, quiet: float = 0.5) -> None:
    """Wait until the controller's queue stayed empty and idle for ``quiet`` seconds."""
    with anyio.fail_after(WAIT):
        idle_since: float | None = None
        while True:
            idle = controller.queue.depth() == 0 and controller.stats.active_workers == 0
            now = anyio.current_time()
            if not idle:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= quiet:
                return
            await anyio.sleep(0.02)


def seen_rv(controller: ConfigMapReloader, resource: Resource, namespace: str, name: str) -> str:
    informer = controller.configmaps if resource is CONFIGMAPS else controller.deployments
    obj = informer.lister().get(name, namespace=namespace)
    return "" if obj is None else str(obj["metadata"]["resourceVersion"])


async def cm_change_seen(controller: ConfigMapReloader, namespace: str, changed: Obj) -> None:
    """Wait until the controller's ConfigMap cache holds ``changed`` (or its deletion)."""
    name = changed["metadata"]["name"]
    rv = changed["metadata"].get("resourceVersion")

    def seen() -> None:
        got = seen_rv(controller, CONFIGMAPS, namespace, name)
        assert got == (rv or ""), f"the ConfigMap cache sees {name} at {got!r}, not {rv!r}"

    await eventually(seen, timeout=WAIT, interval=POLL)


def hash_of(controller: ConfigMapReloader, namespace: str, name: str) -> str | None:
    d = controller.deployments.lister().get(name, namespace=namespace)
    return None if d is None else template_hash(d)


def hashed(
    controller: ConfigMapReloader, namespace: str, want: Mapping[str, str | None]
) -> Callable[[], None]:
    """A check for ``eventually``: the Deployments named in ``want`` carry those config
    hashes in the controller's cache."""

    def check() -> None:
        assert {n: hash_of(controller, namespace, n) for n in want} == want

    return check


def expected_hash(controller: ConfigMapReloader, namespace: str, *names: str) -> str:
    lister = controller.configmaps.lister()
    return config_hash({n: lister.get(n, namespace=namespace) for n in names})


async def generations(client: Client, namespace: str, names: list[str]) -> dict[str, int]:
    return {
        n: int((await client.get(DEPLOYMENTS, n, namespace=namespace))["metadata"]["generation"])
        for n in names
    }


def rolled(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return sorted(e["key"] for e in logs if e["event"] == "deployment.rolled")


# ------------------------------------------------------------------------------ e2e tests

CONSUMERS = ["env", "envfrom", "init", "projected"]
UNTOUCHED = ["not-opted-in", "other-consumer"]


async def make_world(client: Client, namespace: str) -> None:
    """ConfigMaps shared/other and Deployments consuming them in every way."""
    await client.create(configmap("shared", {"k": "v1"}, namespace=namespace))
    await client.create(configmap("other", {"k": "o1"}, namespace=namespace))
    deployments = [
        make_deployment("env", containers=[env_ref("shared")]),
        make_deployment("envfrom", containers=[env_from("shared")]),
        make_deployment("init", init_containers=[env_from("shared", "init")]),
        make_deployment(
            "projected",
            volumes=[
                {"name": "p", "projected": {"sources": [{"configMap": {"name": "shared"}}]}},
                {"name": "o", "configMap": {"name": "other"}},
            ],
        ),
        make_deployment("not-opted-in", opt_in=False, containers=[env_from("shared")]),
        make_deployment("other-consumer", containers=[env_from("other")]),
    ]
    for d in deployments:
        d["metadata"]["namespace"] = namespace
        await client.create(d)


async def stamped(controller: ConfigMapReloader, namespace: str) -> None:
    """Wait until every opted-in Deployment carries its first hash, then for quiet."""
    want = {n: expected_hash(controller, namespace, "shared") for n in CONSUMERS}
    want["projected"] = expected_hash(controller, namespace, "shared", "other")
    want["other-consumer"] = expected_hash(controller, namespace, "other")
    # The first config hash on every opted-in Deployment.
    await eventually(hashed(controller, namespace, want), timeout=WAIT, interval=POLL)
    await settle(controller)


@pytest.mark.anyio
async def test_data_change_rolls_each_opted_in_consumer_exactly_once(
    api_client: Any, client: Client, namespace: str, logs: list[MutableMapping[str, Any]]
) -> None:
    await make_world(client, namespace)
    async with running_reloader(api_client, namespace) as controller:
        await stamped(controller, namespace)
        first = sorted(f"{namespace}/{n}" for n in [*CONSUMERS, "other-consumer"])
        assert rolled(logs) == first  # the first stamp
        assert hash_of(controller, namespace, "not-opted-in") is None
        all_names = [*CONSUMERS, *UNTOUCHED]
        before = await generations(client, namespace, all_names)
        logs.clear()

        changed = await client.patch(
            CONFIGMAPS, "shared", {"data": {"k": "v2"}}, namespace=namespace
        )
        await cm_change_seen(controller, namespace, changed)
        want = dict.fromkeys(CONSUMERS, expected_hash(controller, namespace, "shared"))
        want["projected"] = expected_hash(controller, namespace, "shared", "other")
        # The new hash on the consumers.
        await eventually(hashed(controller, namespace, want), timeout=WAIT, interval=POLL)
        await settle(controller)

        after = await generations(client, namespace, all_names)
        assert {n: after[n] - before[n] for n in all_names} == {
            **dict.fromkeys(CONSUMERS, 1),
            **dict.fromkeys(UNTOUCHED, 0),
        }
        assert rolled(logs) == [f"{namespace}/{n}" for n in sorted(CONSUMERS)]
        assert hash_of(controller, namespace, "not-opted-in") is None
        assert controller.stats.errors == 0


@pytest.mark.anyio
async def test_label_only_change_rolls_nothing(
    api_client: Any, client: Client, namespace: str, logs: list[MutableMapping[str, Any]]
) -> None:
    await make_world(client, namespace)
    async with running_reloader(api_client, namespace) as controller:
        await stamped(controller, namespace)
        names = [*CONSUMERS, *UNTOUCHED]
        before = await generations(client, namespace, names)
        reconciles = controller.stats.total["success"]
        logs.clear()

        changed = await client.patch(
            CONFIGMAPS,
            "shared",
            {"metadata": {"labels": {"touched": "yes"}, "annotations": {"a": "b"}}},
            namespace=namespace,
        )
        await cm_change_seen(controller, namespace, changed)
        await settle(controller)

        assert await generations(client, namespace, names) == before
        assert rolled(logs) == []
        # The consumers were reconciled (the event mapped to them) and found no change.
        assert controller.stats.total["success"] >= reconciles + len(CONSUMERS)


@pytest.mark.anyio
async def test_deleted_configmap_is_logged_and_rolls_nothing_until_it_changes(
    api_client: Any, client: Client, namespace: str, logs: list[MutableMapping[str, Any]]
) -> None:
    await make_world(client, namespace)
    async with running_reloader(api_client, namespace) as controller:
        await stamped(controller, namespace)
        names = [*CONSUMERS, *UNTOUCHED]
        before = await generations(client, namespace, names)
        original_hash = hash_of(controller, namespace, "env")
        logs.clear()

        await client.delete(CONFIGMAPS, "shared", namespace=namespace)

        def deleted() -> None:
            cached = controller.configmaps.lister().get("shared", namespace=namespace)
            assert cached is None, "the deletion reaches the cache"

        await eventually(deleted, timeout=WAIT, interval=POLL)
        await settle(controller)
        missing = [e for e in logs if e["event"] == "configmap.missing"]
        assert {e["deployment"] for e in missing} == {f"{namespace}/{n}" for n in CONSUMERS}
        assert {e["key"] for e in missing} == {f"{namespace}/shared"}
        assert all(e["log_level"] == "warning" for e in missing)
        assert await generations(client, namespace, names) == before
        assert rolled(logs) == []

        # Back with the same data: the hash is the same, nothing rolls.
        again = await client.create(configmap("shared", {"k": "v1"}, namespace=namespace))
        await cm_change_seen(controller, namespace, again)
        await settle(controller)
        assert await generations(client, namespace, names) == before
        assert hash_of(controller, namespace, "env") == original_hash
        assert rolled(logs) == []

        # Back with other data: each consumer rolls once.
        await client.delete(CONFIGMAPS, "shared", namespace=namespace)
        changed = await client.create(configmap("shared", {"k": "v3"}, namespace=namespace))
        await cm_change_seen(controller, namespace, changed)
        await settle(controller)
        after = await generations(client, namespace, names)
        assert {n: after[n] - before[n] for n in names} == {
            **dict.fromkeys(CONSUMERS, 1),
            **dict.fromkeys(UNTOUCHED, 0),
        }
        assert controller.stats.errors == 0


@pytest.mark.anyio
async def test_optional_configmap_deletion_rolls_once(
    api_client: Any, client: Client, namespace: str, logs: list[MutableMapping[str, Any]]
) -> None:
    await client.create(configmap("opt", {"k": "v"}, namespace=namespace))
    await client.create(
        make_deployment(
            "uses-optional", containers=[env_ref("opt", optional=True)], namespace=namespace
        )
    )
    async with running_reloader(api_client, namespace) as controller:
        first = expected_hash(controller, namespace, "opt")
        first_hash = hashed(controller, namespace, {"uses-optional": first})
        await eventually(first_hash, timeout=WAIT, interval=POLL)
        await settle(controller)
        (before,) = (await generations(client, namespace, ["uses-optional"])).values()
        await client.delete(CONFIGMAPS, "opt", namespace=namespace)
        absent = config_hash({"opt": None})
        absent_hash = hashed(controller, namespace, {"uses-optional": absent})
        await eventually(absent_hash, timeout=WAIT, interval=POLL)
        await settle(controller)
        (after,) = (await generations(client, namespace, ["uses-optional"])).values()
        assert after == before + 1
        assert not [e for e in logs if e["event"] == "configmap.missing"]


@pytest.mark.anyio
async def test_opting_in_later_and_index(api_client: Any, client: Client, namespace: str) -> None:
    await client.create(configmap("c", {"k": "v"}, namespace=namespace))
    await client.create(
        make_deployment("late", opt_in=False, containers=[env_from("c")], namespace=namespace)
    )
    async with running_reloader(api_client, namespace) as controller:
        await settle(controller)
        assert hash_of(controller, namespace, "late") is None
        # The index holds consumers whether or not they opted in.
        assert controller.deployments.indexer.index_keys(CONFIGMAP_INDEX, f"{namespace}/c") == [
            f"{namespace}/late"
        ]
        await client.patch(
            DEPLOYMENTS,
            "late",
            {"metadata": {"annotations": {RELOAD_ANNOTATION: "true"}}},
            namespace=namespace,
        )
        want = expected_hash(controller, namespace, "c")
        # The hash on opt-in.
        await eventually(hashed(controller, namespace, {"late": want}), timeout=WAIT, interval=POLL)
        d = await client.get(DEPLOYMENTS, "late", namespace=namespace)
        assert d["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == want
