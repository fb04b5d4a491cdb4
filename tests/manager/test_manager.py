"""``informer.Manager``: controllers run in-process, on the real control plane.

Startup (connect, preflight, endpoints, sync), clean exit, typed errors (never an
exception group), queue metrics for controllers added as classes, class-attribute
tuning, several namespaces, leader election, and the error boundary (linear in the
nesting of exception groups). Waits are on conditions, every test is bounded.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from api_helpers import core_object, write_kubeconfig
from metrics_helpers import sample, scrape

from informer import (
    CacheSyncTimeout,
    Client,
    ConfigError,
    ConnectionFailed,
    Controller,
    Forbidden,
    InformerError,
    LeaderElectionConfig,
    Manager,
    NotFound,
    Result,
    SharedIndexInformer,
    request_json,
)
from informer._manager.startup import collapse
from informer.observability import BindError
from informer.resources import CONFIGMAPS, LEASES
from informer.testing import FakeListerWatcher, eventually

pytestmark = pytest.mark.anyio

TIMEOUT = 30.0
RBAC = "/apis/rbac.authorization.k8s.io/v1"


class Seen:
    """What the controllers reconciled: ``(controller name, key)``, awaitable."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self._event = anyio.Event()

    def add(self, name: str, key: str) -> None:
        self.keys.append((name, key))
        self._event.set()
        self._event = anyio.Event()

    async def until_reconciled(self, name: str, key: str, within: float = TIMEOUT) -> None:
        """Return once controller ``name`` reconciled ``key`` (woken by each reconcile)."""
        with anyio.fail_after(within):
            while (name, key) not in self.keys:
                await self._event.wait()


def recorder(seen: Seen) -> type[Controller]:
    class CmRecorder(Controller):
        """Records every ConfigMap key; tuned by class attributes only."""

        workers = 3
        max_retries = 4

        def setup(self) -> None:
            self.configmaps = self.watch(CONFIGMAPS)

        async def reconcile(self, key: str) -> Result | None:
            seen.add(self.name, key)
            return None

    return CmRecorder


def configmap(name: str, namespace: str) -> dict[str, Any]:
    return core_object("ConfigMap", name, namespace, data={"k": "v"})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def other_namespace(api: Any, base: str) -> AsyncIterator[str]:
    name = f"{base[:50]}-b"
    await request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    try:
        yield name
    finally:
        await request_json(api, "DELETE", f"/api/v1/namespaces/{name}")


async def grant(api: Any, user: str, verbs: list[str], namespace: str | None = None) -> None:
    """Give ``user`` these verbs on ConfigMaps (in ``namespace``, or cluster-wide)."""
    name = f"cm-{'-'.join(verbs)}-{user}"
    scope = f"{RBAC}/namespaces/{namespace}" if namespace else RBAC
    kind = "Role" if namespace else "ClusterRole"
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}
    await request_json(
        api, "POST", f"{scope}/{kind.lower()}s", body={"metadata": {"name": name}, "rules": [rule]}
    )
    await request_json(
        api,
        "POST",
        f"{scope}/{kind.lower()}bindings",
        body={
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


# ------------------------------------------------------------------------------ running


async def test_a_controller_class_runs_in_process(
    api_client: Any, client: Client, namespace: str
) -> None:
    seen = Seen()
    cls = recorder(seen)
    await client.create(configmap("before", namespace))
    manager = Manager(api_client, namespaces=[namespace], metrics_bind_address="127.0.0.1:0")
    manager.add(cls)
    assert manager.controllers == []  # classes are instantiated when the Manager starts
    with pytest.raises(RuntimeError, match="started Manager"):
        await manager.wait_for_cache_sync()
    with anyio.fail_after(TIMEOUT):
        async with manager:
            assert manager.has_synced()
            await manager.wait_for_cache_sync(timeout=5)  # synced already: returns at once
            [controller] = manager.controllers
            assert controller.name == "cm-recorder" and controller.factory is manager.factory
            # Class attributes are honoured, the grace capped by the Manager's (3 s).
            assert (controller.workers, controller.max_retries) == (3, 4)
            assert controller.shutdown_grace == 3.0
            await seen.until_reconciled("cm-recorder", f"{namespace}/before")
            await client.create(configmap("after", namespace))
            await seen.until_reconciled("cm-recorder", f"{namespace}/after")
            endpoints = manager.endpoints
            assert endpoints is not None and endpoints.metrics_port is not None
            assert endpoints.health_port is None  # "0": disabled
            await eventually(lambda: controller.queue.depth() == 0, timeout=TIMEOUT)
            families = await scrape(endpoints.metrics_port)
            # The Manager's ApiClient is judged: readiness and metrics.
            checks = manager.observability.checks
            assert [c.name for c in checks.readiness] == ["informers", "watches", "credentials"]
            assert all(c.check() is None for c in checks.readiness)
        assert controller.queue.metrics is not None  # built with the Manager's hooks
    # Queue hooks were given at construction: adds and durations are exported.
    queue = {"name": "cm-recorder", "controller": "cm-recorder"}
    adds = sample(families, "workqueue_adds_total", **queue)
    assert adds is not None and adds >= 2
    done = sample(families, "workqueue_work_duration_seconds_count", **queue)
    assert done is not None and done >= 2
    assert (
        sample(families, "controller_runtime_max_concurrent_reconciles", controller="cm-recorder")
        == 3
    )
    assert sample(families, "informer_synced", resource=f"configmaps@{namespace}") == 1
    assert sample(families, "informer_auth_failures_total", code="401") == 0
    assert sample(families, "informer_auth_failing_seconds") == 0
    # The caller's client is not closed by the Manager.
    assert (await client.get(CONFIGMAPS, "after", namespace=namespace))["data"] == {"k": "v"}


async def test_one_instance_per_namespace(api_client: Any, client: Client, namespace: str) -> None:
    seen = Seen()
    async with other_namespace(api_client, namespace) as other:
        manager = Manager(api_client, namespaces=[namespace, other, namespace], workers=2)
        manager.add(recorder(seen))
        with anyio.fail_after(TIMEOUT):
            async with manager:
                names = [c.name for c in manager.controllers]
                assert names == [f"cm-recorder@{namespace}", f"cm-recorder@{other}"]
                assert [c.workers for c in manager.controllers] == [2, 2]  # workers= wins
                assert [f.namespace for f in manager.factories] == [namespace, other]
                for ns in (namespace, other):
                    await client.create(configmap("x", ns))
                for ns in (namespace, other):
                    await seen.until_reconciled(f"cm-recorder@{ns}", f"{ns}/x")
        # Each instance sees only its own namespace.
        assert all(key.startswith(name.split("@")[1] + "/") for name, key in seen.keys)


async def test_instances_built_on_the_managers_factory(
    control_plane: Any, api_client: Any, client: Client, namespace: str
) -> None:
    seen = Seen()
    cls = recorder(seen)
    manager = Manager(api_client, namespaces=[namespace])
    stray = cls(manager.factory.__class__(api_client), api_client)
    with pytest.raises(ValueError, match=r"build it with manager\.factory"):
        manager.add(stray)
    mine = cls(manager.factory, api_client, name="mine", workers=1)
    manager.add(mine)
    with pytest.raises(ValueError, match="added twice"):
        manager.add(mine)
    with pytest.raises(TypeError):
        manager.add("cm-recorder")  # type: ignore[arg-type]
    assert manager.controllers == [mine]
    await client.create(configmap("inst", namespace))
    with anyio.fail_after(TIMEOUT):
        async with manager:
            await seen.until_reconciled("mine", f"{namespace}/inst")
            with pytest.raises(RuntimeError, match="before the Manager starts"):
                manager.add(cls)
    with pytest.raises(RuntimeError, match="runs once"):
        await manager.__aenter__()
    # Without an ApiClient the factories exist only once the Manager connected.
    lazy = Manager(kubeconfig=str(control_plane.kubeconfig_path))
    with pytest.raises(RuntimeError, match="api_client="):
        _ = lazy.factory


async def test_created_client_runs_and_is_closed(control_plane: Any, namespace: str) -> None:
    seen = Seen()
    manager = Manager(kubeconfig=str(control_plane.kubeconfig_path), namespaces=[namespace])
    manager.add(recorder(seen))
    with anyio.fail_after(TIMEOUT):
        async with manager:
            api = manager.api_client
            await Client(api).create(configmap("own-client", namespace))
            await seen.until_reconciled("cm-recorder", f"{namespace}/own-client")
    assert api.rest_client.pool_manager.closed


async def test_body_errors_pass_through_unchanged(
    api_client: Any, client: Client, namespace: str
) -> None:
    manager = Manager(api_client, namespaces=[namespace])
    manager.add(recorder(Seen()))
    with anyio.fail_after(TIMEOUT), pytest.raises(ValueError, match="mine") as caught:
        async with manager:
            raise ValueError("mine")
    assert type(caught.value) is ValueError
    manager = Manager(api_client, namespaces=[namespace])
    manager.add(recorder(Seen()))
    with anyio.fail_after(TIMEOUT), pytest.raises(NotFound) as not_found:
        async with manager:
            await client.get(CONFIGMAPS, "missing", namespace=namespace)
    assert type(not_found.value) is NotFound  # not an exception group


# --------------------------------------------------------------------------- typed errors


async def test_unreachable_server_is_connection_failed(tmp_path: Path) -> None:
    address = f"https://127.0.0.1:{closed_port()}"
    path = write_kubeconfig(tmp_path / "kubeconfig", address, {"token": "t"})
    manager = Manager(kubeconfig=str(path), startup_timeout=1.0)
    manager.add(recorder(Seen()))
    start = time.monotonic()
    with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionFailed) as caught:
        await manager.run()
    assert time.monotonic() - start < 5
    assert address in str(caught.value) and "connection refused" in str(caught.value)
    assert caught.value.refused  # at once: nothing listens there


async def test_missing_kubeconfig_is_config_error(tmp_path: Path) -> None:
    manager = Manager(kubeconfig=str(tmp_path / "nope"))
    with anyio.fail_after(TIMEOUT), pytest.raises(ConfigError, match="nope"):
        await manager.run()


async def test_list_forbidden_fails_at_preflight(control_plane: Any, namespace: str) -> None:
    nobody = control_plane.user("nobody")
    async with nobody.api_client() as api:
        manager = Manager(api, namespaces=[namespace])
        manager.add(recorder(Seen()))
        with anyio.fail_after(TIMEOUT), pytest.raises(Forbidden) as caught:
            await manager.run()
    assert f"cannot list configmaps in namespace '{namespace}'" in str(caught.value)


async def test_watch_forbidden_while_list_allowed(
    control_plane: Any, api_client: Any, namespace: str
) -> None:
    user = f"lister-{secrets.token_hex(3)}"
    await grant(api_client, user, ["list"], namespace)
    async with control_plane.user(user).api_client() as api:
        manager = Manager(api, namespaces=[namespace], metrics_bind_address="127.0.0.1:0")
        manager.add(recorder(Seen()))
        with anyio.fail_after(TIMEOUT), pytest.raises(Forbidden) as caught:
            async with manager:
                raise AssertionError("started although the watch is forbidden")
    assert f"cannot watch configmaps in namespace '{namespace}'" in str(caught.value)


async def test_exit_stays_fast_with_a_hundred_namespaces(
    control_plane: Any, api_client: Any
) -> None:
    """Every namespace adds a factory, hence a level of exception groups: the error is
    found in time linear in their depth (an exponential walk takes minutes at 24)."""
    user = f"wide-lister-{secrets.token_hex(3)}"
    await grant(api_client, user, ["list"])  # cluster-wide list, no watch
    namespaces = [f"ns-{i:03d}" for i in range(100)]  # need not exist: lists are empty
    async with control_plane.user(user).api_client() as api:
        manager = Manager(api, namespaces=namespaces)
        manager.add(recorder(Seen()))
        start = time.monotonic()
        with anyio.fail_after(TIMEOUT), pytest.raises(Forbidden, match="cannot watch configmaps"):
            await manager.run()
        elapsed = time.monotonic() - start
    print(f"100 namespaces: Forbidden raised {elapsed:.2f}s after start")
    assert len(manager.controllers) == 100
    assert elapsed < 10, elapsed


async def test_bind_error(api_client: Any, namespace: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        manager = Manager(
            api_client, namespaces=[namespace], health_probe_bind_address=f"127.0.0.1:{port}"
        )
        manager.add(recorder(Seen()))
        with anyio.fail_after(TIMEOUT), pytest.raises(BindError, match=f"127.0.0.1:{port}"):
            await manager.run()


async def test_caches_that_never_sync_are_cache_sync_timeout(
    api_client: Any, namespace: str
) -> None:
    never = SharedIndexInformer(FakeListerWatcher(), name="never-run")  # nobody runs it

    class Stuck(Controller):
        def setup(self) -> None:
            self.watch(never)

        async def reconcile(self, key: str) -> Result | None:
            return None

    manager = Manager(api_client, namespaces=[namespace], startup_timeout=1.0)
    manager.add(Stuck)
    with anyio.fail_after(TIMEOUT), pytest.raises(CacheSyncTimeout) as caught:
        await manager.run()
    assert "caches not synced within startup_timeout=1s" in str(caught.value)


# ------------------------------------------------------------------------ leader election


async def test_leader_election_runs_controllers_and_releases_the_lease(
    api_client: Any, client: Client, namespace: str
) -> None:
    seen = Seen()
    election = LeaderElectionConfig(
        name="manager-test",
        namespace=namespace,
        identity="me",
        lease_duration=4.0,
        renew_deadline=2.5,
        retry_period=0.3,
    )
    manager = Manager(api_client, namespaces=[namespace], leader_election=election)
    manager.add(recorder(seen))
    await client.create(configmap("elected", namespace))
    with anyio.fail_after(TIMEOUT):
        async with manager:
            elector = manager.elector
            assert elector is not None
            await seen.until_reconciled("cm-recorder", f"{namespace}/elected")
            assert elector.is_leader()
            # A lost leader must stop writing before a follower may take over.
            assert manager.controllers[0].shutdown_grace == pytest.approx(1.5)
        lease = await request_json(
            api_client, "GET", LEASES.path("manager-test", namespace=namespace)
        )
    assert lease["spec"]["holderIdentity"] == ""  # released on the way out


def test_leader_election_config_validates_timings() -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        LeaderElectionConfig(name="x", namespace="y", lease_duration=5, renew_deadline=10)
    config = LeaderElectionConfig(name="x", namespace="y")
    host, _, suffix = config.identity.rpartition("_")
    assert host and len(suffix) == 36


# --------------------------------------------------------------------------- error boundary


def nested(depth: int, cause: BaseException) -> BaseExceptionGroup[BaseException]:
    """``depth`` levels of groups, each also holding an unrelated error (as task groups of
    cancelled siblings do), the cause at the bottom."""
    group: BaseException = cause
    for level in range(depth):
        group = BaseExceptionGroup(f"level {level}", [RuntimeError(f"noise {level}"), group])
    assert isinstance(group, BaseExceptionGroup)
    return group


@pytest.mark.parametrize("depth", [1, 24, 1000], ids=lambda d: f"depth-{d}")
def test_collapse_is_linear_in_the_nesting_depth(depth: int) -> None:
    cause = Forbidden("forbidden: cannot watch configmaps")
    group = nested(depth, cause)
    start = time.perf_counter()
    assert collapse(group) is cause
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, elapsed  # exponential at depth 24 took 92 s


def test_collapse_without_an_informer_error() -> None:
    bug = KeyError("bug")
    assert collapse(BaseExceptionGroup("g", [BaseExceptionGroup("h", [bug])])) is bug
    several = BaseExceptionGroup("g", [KeyError("a"), ValueError("b")])
    assert collapse(several) is several  # two unrelated bugs: keep the group
    plain = ValueError("x")
    assert collapse(plain) is plain
    first = InformerError("first")
    group = BaseExceptionGroup("g", [ValueError("v"), BaseExceptionGroup("h", [first]), first])
    assert collapse(group) is first
