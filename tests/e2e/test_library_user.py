"""A library user's project, with the wheel installed as they install it.

The ``kube-informer`` wheel is built from the checkout and installed, not editable, into
a fresh venv (``wheel_venv``; the samples are not installed). An outside project with its
own ``controllers`` package (the name most operator projects use) then:

- runs its own test suite with the plugin's fixtures in that venv: a reconcile test on
  ``control_plane``, an owner-reference garbage-collection test and a namespace-deletion
  test on ``gc_control_plane``; the binaries are found in the user cache with no
  ``KUBEBUILDER_ASSETS``, as after ``python -m informer.testing.envtest install``;
- runs its controller with ``python -m informer.run controllers.labeller``: it becomes
  ready, logs on stderr (stdout stays empty) and exits 0 on SIGTERM;

and the wheel holds what it should: ``informer`` only (no ``controllers``, no samples),
the LICENSE, ``py.typed`` and the Go sources of the control plane.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from wheel_venv import WheelVenv, wheel_venv

from informer.testing import ControlPlane, eventually
from informer.testing.envtest import PINNED

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]

LABELLER = '''
"""The project's controller: a managed ConfigMap gets a copy it owns."""

from informer import Controller, Obj, NotFound, name_of, uid_of
from informer.resources import CONFIGMAPS

MANAGED = "example.com/managed"


class Labeller(Controller):
    name = "labeller"

    def setup(self) -> None:
        self.configmaps = self.watch(CONFIGMAPS)

    async def reconcile(self, key: str) -> None:
        source = self.configmaps.lister().get_by_key(key)
        if source is None or (source["metadata"].get("labels") or {}).get(MANAGED) != "true":
            return
        owner = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": name_of(source),
            "uid": uid_of(source),
            "controller": True,
            "blockOwnerDeletion": True,
        }
        copy: Obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{name_of(source)}-copy",
                "namespace": source["metadata"]["namespace"],
            },
        }

        def mutate(cm: Obj) -> None:
            cm["metadata"]["ownerReferences"] = [owner]
            cm["data"] = dict(source.get("data") or {})

        await self.client.create_or_update(copy, mutate)
'''

PROJECT_TESTS = """
import secrets

import pytest

from informer import Client, NotFound
from informer.resources import CONFIGMAPS, NAMESPACES
from informer.testing import eventually, run_controllers

from controllers.labeller import MANAGED, Labeller

pytestmark = pytest.mark.anyio


def managed(name, namespace):
    meta = {"name": name, "namespace": namespace, "labels": {MANAGED: "true"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def absent(client, resource, name, namespace=None):
    try:
        await client.get(resource, name, namespace=namespace)
    except NotFound:
        return
    raise AssertionError(f"{name} still there")


async def test_the_copy_is_made(api_client, namespace):
    client = Client(api_client)
    async with run_controllers(api_client, Labeller, namespace=namespace):
        await client.create(managed("settings", namespace))
        copy = await eventually(
            lambda: client.get(CONFIGMAPS, "settings-copy", namespace=namespace),
            retry_on=(NotFound,),
            timeout=30,
        )
    assert copy["data"] == {"k": "v"}


async def test_the_copy_goes_with_its_owner(gc_control_plane):
    async with gc_control_plane.api_client() as api:
        client = Client(api)
        ns = f"gc-{secrets.token_hex(3)}"
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        async with run_controllers(api, Labeller, namespace=ns):
            await client.create(managed("settings", ns))
            await eventually(
                lambda: client.get(CONFIGMAPS, "settings-copy", namespace=ns),
                retry_on=(NotFound,),
                timeout=30,
            )
            await client.delete(CONFIGMAPS, "settings", namespace=ns)
            await eventually(lambda: absent(client, CONFIGMAPS, "settings-copy", ns), timeout=60)
        await client.delete(NAMESPACES, ns)


async def test_a_deleted_namespace_goes_away(gc_control_plane):
    async with gc_control_plane.api_client() as api:
        client = Client(api)
        ns = f"gone-{secrets.token_hex(3)}"
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await client.create(managed("settings", ns))
        await client.delete(NAMESPACES, ns)
        await eventually(lambda: absent(client, NAMESPACES, ns), timeout=60)
"""

PYPROJECT = """
[project]
name = "my-operator"
version = "0.1.0"
dependencies = ["kube-informer"]

[tool.pytest.ini_options]
addopts = "-p anyio"
timeout = 300
kube_informer = true
"""


def write_project(root: Path) -> Path:
    """The outside project: its own ``controllers`` package, its tests."""
    (root / "controllers").mkdir(parents=True)
    (root / "controllers" / "__init__.py").write_text("")
    (root / "controllers" / "labeller.py").write_text(textwrap.dedent(LABELLER).lstrip())
    (root / "tests").mkdir()
    (root / "tests" / "test_labeller.py").write_text(textwrap.dedent(PROJECT_TESTS).lstrip())
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT).lstrip())
    return root


def user_cache_with_binaries(home: Path) -> Path:
    """An ``XDG_CACHE_HOME`` whose kube-informer cache holds this run's binaries (a
    symlink): what ``python -m informer.testing.envtest install`` leaves behind."""
    from informer.testing.envtest import find_binaries

    folder = find_binaries(controller_manager=True)
    release_dir = home / "kube-informer" / "control-plane" / PINNED.folder_name
    release_dir.parent.mkdir(parents=True)
    release_dir.symlink_to(folder)
    return home


@pytest.fixture(scope="module")
def venv() -> WheelVenv:
    return wheel_venv()


def test_the_wheel_holds_the_library_only(venv: WheelVenv) -> None:
    names = zipfile.ZipFile(venv.wheel).namelist()
    dist_info = "-".join(venv.wheel.name.split("-")[:2]) + ".dist-info"
    assert {n.split("/")[0] for n in names} == {"informer", dist_info}
    assert not [n for n in names if n.startswith(("controllers/", "kube_informer_samples/"))]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "informer/py.typed" in names
    for source in (
        "informer/testing/envtest/go/etcd/go.sum",
        "informer/testing/envtest/go/kubernetes/cmd/kube-controller-manager/main.go",
        f"informer/testing/envtest/go/kubernetes/{PINNED.kubernetes}/go.sum",
    ):
        assert source in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(venv.wheel).read(entry_points).decode()
    assert "kube_informer.controllers" not in text  # the samples register them


def test_the_project_suite_passes_in_the_wheel_venv(venv: WheelVenv, tmp_path: Path) -> None:
    project = write_project(tmp_path / "my-operator")
    cache = user_cache_with_binaries(tmp_path / "xdg-cache")
    env = venv.env(XDG_CACHE_HOME=str(cache), HOME=str(tmp_path))
    env.pop("KUBEBUILDER_ASSETS", None)
    proc = subprocess.run(
        [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout, proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


async def test_the_runner_runs_the_projects_controller(
    venv: WheelVenv, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """``python -m informer.run controllers.labeller`` from the project's folder: the
    project's ``controllers`` package is the one imported; ready, logs on stderr, exit 0
    on SIGTERM."""
    project = write_project(tmp_path / "my-operator")
    port = free_port()
    argv = [
        str(venv.python),
        "-m",
        "informer.run",
        "controllers.labeller",
        "--kubeconfig",
        str(control_plane.kubeconfig_path),
        "--namespace",
        namespace,
        "--health-probe-bind-address",
        f"127.0.0.1:{port}",
    ]
    out = {"stdout": b"", "stderr": b""}
    process = await anyio.open_process(argv, cwd=project, env=venv.env(HOME=str(tmp_path)))
    async with process, anyio.create_task_group() as tg:

        async def pump(name: str, stream: Any) -> None:
            async for chunk in stream:
                out[name] += chunk

        tg.start_soon(pump, "stdout", process.stdout)
        tg.start_soon(pump, "stderr", process.stderr)
        try:

            async def ready() -> None:
                assert process.returncode is None, out["stderr"].decode()
                assert await anyio.to_thread.run_sync(readyz, port) == 200
                # readyz answers once the caches synced, a moment before the runner logs
                # runner.started: a SIGTERM in between would leave no such line.
                assert b"runner.started" in out["stderr"]

            await eventually(ready, timeout=60, interval=0.2)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    assert code == 0, out["stderr"].decode()
    assert out["stdout"] == b""
    events = parse_json_lines(out["stderr"].decode())
    started = [e for e in events if e.get("event") == "runner.started"]
    assert started and started[0]["controllers"] == ["labeller"], events[-5:]
    assert [e for e in events if e.get("event") == "runner.stopped"], events[-5:]


def test_without_a_target_or_samples_the_runner_says_how(venv: WheelVenv, tmp_path: Path) -> None:
    write_project(tmp_path)
    proc = subprocess.run(
        [str(venv.python), "-m", "informer.run", "--kubeconfig", str(tmp_path / "none")],
        cwd=tmp_path,
        env=venv.env(HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: no controller to run: name yours as TARGETs")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def parse_json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
