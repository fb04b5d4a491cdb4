"""The local control plane (real etcd + kube-apiserver) and its pytest fixtures.

Tests on the session ``control_plane`` / ``api_client`` / ``namespace`` fixtures share one
control plane; tests that need other flags, or that check process lifetime, start their
own. Needs the binaries (the repo's conftest builds them when missing, with ``python -m
informer.testing.envtest install``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from kubernetes_asyncio.client import (
    AppsV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
    RbacV1Subject,
    V1ConfigMap,
    V1Container,
    V1Deployment,
    V1DeploymentSpec,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from informer.testing import eventually
from informer.testing.control_plane import ControlPlane, ControlPlaneError
from informer.testing.control_plane._flags import merge_args
from informer.testing.control_plane._state_dir import remove_stale_temp_dirs
from informer.testing.pytest_plugin import namespace_name

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def pinned_k8s_version() -> str:
    """The Kubernetes version the kit and ``make test`` build."""
    from informer.testing.envtest import PINNED

    return PINNED.kubernetes


POLL = 0.05
"""Seconds between checks of conditions with no event to await (RBAC caches, process
tables)."""


def processes_in(folder: Path) -> dict[int, str]:
    """Live (non-zombie) processes whose command line mentions ``folder``."""
    return {
        pid: cmdline
        for pid, (ppid, state, cmdline) in _proc_table().items()
        if str(folder) in cmdline and state != "Z"
    }


def children_of(parent: int) -> dict[int, str]:
    """Live (non-zombie) processes whose parent is ``parent``."""
    return {
        pid: cmdline
        for pid, (ppid, state, cmdline) in _proc_table().items()
        if ppid == parent and state != "Z"
    }


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, cmdline) from /proc; processes that vanish are skipped."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        table[int(entry)] = (int(ppid), state, cmdline)
    return table


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# -- the session control plane ------------------------------------------------------------


async def test_serves_its_version(control_plane: ControlPlane, api_client: Any) -> None:
    info = await VersionApi(api_client).get_code()

    assert info.git_version == pinned_k8s_version()
    assert control_plane.host.startswith("https://127.0.0.1:")
    assert control_plane.etcd_url.startswith("http://127.0.0.1:")
    assert control_plane.kubeconfig_path.is_file()


@pytest.fixture(scope="session")
async def session_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@pytest.mark.parametrize("run", [1, 2], ids=["first-test", "second-test"])
async def test_session_fixtures_share_the_test_event_loop(
    session_loop: asyncio.AbstractEventLoop, api_client: Any, run: int
) -> None:
    """Session-scoped async fixtures and each test run on one loop (the session
    ``anyio_backend``); the session client keeps working from test to test."""
    assert asyncio.get_running_loop() is session_loop
    assert (await VersionApi(api_client).get_code()).major == "1"


async def test_configmap_create_get_list_watch_delete(api_client: Any, namespace: str) -> None:
    core = CoreV1Api(api_client)
    created = await core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="settings"), data={"mode": "a"})
    )
    got = await core.read_namespaced_config_map("settings", namespace)
    listed = await core.list_namespaced_config_map(namespace)

    assert got.data == {"mode": "a"}
    assert got.metadata.uid == created.metadata.uid
    assert [cm.metadata.name for cm in listed.items] == ["settings"]

    # Changes after the list's resourceVersion reach a watch started from it.
    await core.patch_namespaced_config_map("settings", namespace, {"data": {"mode": "b"}})
    await core.delete_namespaced_config_map("settings", namespace)
    events: list[tuple[str, str | None]] = []
    with anyio.fail_after(30):
        async with Watch() as watch:
            async for event in watch.stream(
                core.list_namespaced_config_map,
                namespace,
                resource_version=listed.metadata.resource_version,
                timeout_seconds=30,
            ):
                events.append((event["type"], (event["object"].data or {}).get("mode")))
                if event["type"] == "DELETED":
                    break

    assert events == [("MODIFIED", "b"), ("DELETED", "b")]
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_config_map("settings", namespace)
    assert missing.value.status == 404


async def test_deployment_is_stored_but_nothing_runs_it(api_client: Any, namespace: str) -> None:
    apps, core = AppsV1Api(api_client), CoreV1Api(api_client)
    labels = {"app": "web"}
    deployment = V1Deployment(
        metadata=V1ObjectMeta(name="web"),
        spec=V1DeploymentSpec(
            replicas=2,
            selector=V1LabelSelector(match_labels=labels),
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(labels=labels),
                spec=V1PodSpec(containers=[V1Container(name="web", image="nginx:1.27")]),
            ),
        ),
    )

    await apps.create_namespaced_deployment(namespace, deployment)
    got = await apps.read_namespaced_deployment("web", namespace)

    assert got.spec.replicas == 2
    assert got.spec.template.spec.containers[0].image == "nginx:1.27"
    # There is no controller-manager: no controller ever observed it, and nothing exists
    # below it.
    assert got.status.observed_generation is None
    assert (await apps.list_namespaced_replica_set(namespace)).items == []
    assert (await core.list_namespaced_pod(namespace)).items == []


@pytest.mark.parametrize(
    ("kill", "watch_outcome"),
    [(False, "ends normally"), (True, "breaks")],
    ids=["SIGTERM", "SIGKILL"],
)
async def test_restart_apiserver_drops_open_watches_and_keeps_data(
    control_plane: ControlPlane, api_client: Any, namespace: str, kill: bool, watch_outcome: str
) -> None:
    core = CoreV1Api(api_client)
    await core.create_namespaced_config_map(
        namespace, V1ConfigMap(metadata=V1ObjectMeta(name="before"), data={"k": "v"})
    )
    old_pid = control_plane.apiserver_pid

    async with control_plane.api_client() as watch_client, Watch() as watch:
        stream = watch.stream(
            CoreV1Api(watch_client).list_namespaced_config_map, namespace, timeout_seconds=300
        )
        with anyio.fail_after(30):
            first = await stream.__anext__()  # the watch is open: it replays "before"
        assert (first["type"], first["object"].metadata.name) == ("ADDED", "before")

        outcome = "still open"
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(control_plane.restart_apiserver, kill=kill))
                # Long before the watch's 300 s server-side timeout:
                try:
                    rest = [event async for event in stream]
                except aiohttp.ClientPayloadError:  # the connection was cut mid-response
                    outcome = "breaks"
                else:
                    assert rest == []
                    outcome = "ends normally"
        assert outcome == watch_outcome

    assert control_plane.apiserver_pid not in (None, old_pid)
    got = await core.read_namespaced_config_map("before", namespace)  # same session client
    assert got.data == {"k": "v"}


async def test_apiserver_down_for_a_while(
    control_plane: ControlPlane, api_client: Any, namespace: str
) -> None:
    core = CoreV1Api(api_client)
    await control_plane.stop_apiserver()
    try:
        assert control_plane.apiserver_pid is None
        assert control_plane.etcd_pid is not None
        with pytest.raises(aiohttp.ClientConnectorError):
            await core.read_namespace(namespace)
    finally:
        await control_plane.start_apiserver()

    assert (await core.read_namespace(namespace)).metadata.name == namespace


@pytest.mark.parametrize("subject_kind", ["User", "Group"])
async def test_rbac_forbids_a_plain_user_until_a_role_grants_the_verb(
    control_plane: ControlPlane, api_client: Any, namespace: str, subject_kind: str
) -> None:
    user = control_plane.user(f"alice-{subject_kind.lower()}", groups=["developers"])
    rbac = RbacAuthorizationV1Api(api_client)

    async with user.api_client() as alice_client:
        alice = CoreV1Api(alice_client)
        with pytest.raises(ApiException) as forbidden:
            await alice.list_namespaced_config_map(namespace)
        assert forbidden.value.status == 403
        message = json.loads(forbidden.value.body or "{}")["message"]
        assert f'User "{user.name}" cannot list resource "configmaps"' in message

        await rbac.create_namespaced_role(
            namespace,
            V1Role(
                metadata=V1ObjectMeta(name="configmap-reader"),
                rules=[V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
            ),
        )
        await rbac.create_namespaced_role_binding(
            namespace,
            V1RoleBinding(
                metadata=V1ObjectMeta(name="configmap-reader"),
                role_ref=V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
                ),
                subjects=[
                    RbacV1Subject(
                        api_group="rbac.authorization.k8s.io",
                        kind=subject_kind,
                        name=user.name if subject_kind == "User" else "developers",
                    )
                ],
            ),
        )

        async def can_list() -> bool:  # the authorizer's cache catches up asynchronously
            try:
                await alice.list_namespaced_config_map(namespace)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return False
            return True

        await eventually(can_list, timeout=30, interval=POLL)
        with pytest.raises(ApiException) as still_forbidden:  # only the granted verb
            await alice.read_namespaced_config_map("any", namespace)
        assert still_forbidden.value.status == 403


async def test_user_is_cached_and_has_its_own_kubeconfig(control_plane: ControlPlane) -> None:
    bob = control_plane.user("bob", groups=["a", "b"])

    assert control_plane.user("bob", groups=["a", "b"]) is bob
    assert bob.kubeconfig_path != control_plane.kubeconfig_path
    assert bob.kubeconfig_path.is_file()


# -- control planes of their own ------------------------------------------------------------


@pytest.mark.control_plane
async def test_compacted_etcd_makes_old_resource_versions_gone() -> None:
    async with (
        ControlPlane(apiserver_args=["--watch-cache=false"]) as cp,
        cp.api_client() as api,
    ):
        core = CoreV1Api(api)
        await core.create_namespaced_config_map(
            "default", V1ConfigMap(metadata=V1ObjectMeta(name="old"))
        )
        old_rv = (await core.list_namespaced_config_map("default")).metadata.resource_version
        for i in range(3):  # revisions after old_rv, so that old_rv + 1 gets compacted away
            await core.create_namespaced_config_map(
                "default", V1ConfigMap(metadata=V1ObjectMeta(name=f"new-{i}"))
            )

        revision = await cp.compact_etcd()
        assert revision > int(old_rv) + 1

        with anyio.fail_after(30), pytest.raises(ApiException) as gone:
            async with Watch() as watch:
                async for _event in watch.stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=old_rv,
                    timeout_seconds=30,
                ):
                    pass
        assert gone.value.status == 410


@pytest.mark.control_plane
@pytest.mark.parametrize("how", ["clean-exit", "body-raises", "cancelled-during-start"])
async def test_no_child_process_outlives_the_control_plane(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "cp"
    cp = ControlPlane(state_dir=folder)
    pids: list[int | None] = []

    if how == "cancelled-during-start":
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(cp.start)

                def apiserver_spawned() -> bool:
                    return (folder / "kube-apiserver.log").exists()

                await eventually(apiserver_spawned, timeout=60, interval=POLL)
                pids.extend(processes_in(folder))
                tg.cancel_scope.cancel()
        assert len(pids) == 2
    else:

        class Boom(Exception):
            pass

        with pytest.raises(Boom) if how == "body-raises" else contextlib.nullcontext():
            async with cp:
                pids.extend([cp.etcd_pid, cp.apiserver_pid])
                assert all(pids)
                if how == "body-raises":
                    raise Boom

    assert not [pid for pid in pids if pid and alive(pid)]
    assert processes_in(folder) == {}


@pytest.mark.control_plane
@pytest.mark.parametrize("child", ["etcd", "kube-apiserver"])
async def test_a_child_that_dies_at_start_fails_with_its_log(tmp_path: Path, child: str) -> None:
    folder = tmp_path / "cp"
    bad = ["--no-such-flag=1"]
    cp = ControlPlane(
        state_dir=folder,
        etcd_args=bad if child == "etcd" else [],
        apiserver_args=bad if child == "kube-apiserver" else [],
    )

    with anyio.fail_after(60), pytest.raises(ControlPlaneError) as failed:
        await cp.start()

    message = str(failed.value)
    assert f"{child} exited with code" in message
    assert "no-such-flag" in message  # from the last lines of the child's log
    assert processes_in(folder) == {}


@pytest.mark.control_plane
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
async def test_command_line_runner_never_leaks_children(
    tmp_path: Path, sig: signal.Signals
) -> None:
    folder = tmp_path / "cp"
    stderr_path = tmp_path / "stderr.log"
    argv = [sys.executable, "-m", "informer.testing.control_plane", "--dir", str(folder)]
    stderr = os.open(stderr_path, os.O_WRONLY | os.O_CREAT)
    try:
        process = await anyio.open_process(argv, stdout=subprocess.PIPE, stderr=stderr)
    finally:
        os.close(stderr)
    async with process:
        try:
            assert process.stdout is not None
            stdout = BufferedByteReceiveStream(process.stdout)
            lines: list[str] = []
            with anyio.fail_after(90):
                while not lines or not lines[-1].startswith("export KUBECONFIG="):
                    lines.append((await stdout.receive_until(b"\n", 65536)).decode())
            assert f"kubeconfig: {folder / 'kubeconfig'}" in lines
            assert lines[-1] == f"export KUBECONFIG={folder / 'kubeconfig'}"

            children = children_of(process.pid)
            assert sorted(Path(c.split()[0]).name for c in children.values()) == [
                "etcd",
                "kube-apiserver",
            ], stderr_path.read_text()

            process.send_signal(sig)
            with anyio.fail_after(30):
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), stderr_path.read_text()

    def children_gone() -> None:  # after SIGKILL, PDEATHSIG ends them
        assert not [pid for pid in children if alive(pid)], "children still alive"

    await eventually(children_gone, timeout=10, interval=POLL)
    assert processes_in(folder) == {}


# -- no control plane needed ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["empty-assets-dir", "empty-env", "nowhere"])
async def test_missing_binaries_say_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from informer.testing.envtest import _locate

    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(_locate, "checkout_root", lambda: None)
    if where == "empty-env":
        monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    cp = ControlPlane(assets_dir=tmp_path if where == "empty-assets-dir" else None)

    with pytest.raises(ControlPlaneError) as missing:
        async with cp:
            pass

    message = str(missing.value)
    assert "python -m informer.testing.envtest install" in message
    assert "has no kube-apiserver or etcd" in message
    if where == "nowhere":  # every folder searched is named
        assert str(tmp_path / "cache" / "kube-informer" / "control-plane") in message
        assert str(tmp_path / "data" / "kubebuilder-envtest" / "k8s") in message
    if where == "empty-env":
        assert "KUBEBUILDER_ASSETS" in message


async def test_a_controller_manager_needs_its_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder with kube-apiserver and etcd only (setup-envtest's) does not do."""
    for name in ("kube-apiserver", "etcd"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    with pytest.raises(ControlPlaneError, match="has no kube-controller-manager"):
        async with ControlPlane(assets_dir=tmp_path, controller_manager=True):
            pass


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ["--a=1", "--b"]),
        (["--a=2"], ["--a=2", "--b"]),
        (["--a", "3"], ["--a=3", "--b"]),
        (["--c=x=y", "--d"], ["--a=1", "--b", "--c=x=y", "--d"]),
        (["--audit-log-path", "-"], ["--a=1", "--b", "--audit-log-path=-"]),
    ],
    ids=["none", "replace", "two-token-form", "new-flags", "stdout-dash-value"],
)
def test_merge_args(extra: list[str], expected: list[str]) -> None:
    assert merge_args(["--a=1", "--b"], extra) == expected


def test_merge_args_rejects_a_stray_value() -> None:
    with pytest.raises(ValueError, match="expected a flag"):
        merge_args([], ["value"])


@pytest.mark.parametrize(
    ("test_name", "prefix"),
    [
        ("test_x[User]", "test-x-user-"),
        ("Ünïcode__name", "n-code-name-"),
        ("x" * 100, "x" * 48 + "-"),
        ("___", "test-"),
    ],
    ids=["brackets", "non-ascii", "long", "empty-slug"],
)
def test_namespace_names_are_dns_labels(test_name: str, prefix: str) -> None:
    name = namespace_name(test_name)

    assert name.startswith(prefix)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert len(name) <= 63


def test_stale_temporary_folders_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder left by a SIGKILLed owner goes; live, young or foreign folders stay."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = time.time() - 3600
    folders = {}
    for name in ["stale", "young", "locked", "no-lock"]:
        folders[name] = tmp_path / f"kube-informer-cp-{name}"
        folders[name].mkdir()
        if name != "no-lock":
            (folders[name] / ".lock").touch()
            if name != "young":
                os.utime(folders[name] / ".lock", (old, old))
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()

    with open(folders["locked"] / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        remove_stale_temp_dirs()

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kube-informer-cp-locked",
        "kube-informer-cp-no-lock",
        "kube-informer-cp-young",
        "something-else",
    ]
