"""``examples/``: the client-operations script runs against the control plane; the demo
manifests are valid and exercise the reloader as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from kube_informer_samples.configmap_reloader import (
    RELOAD_ANNOTATION,
    consumed_configmaps,
    is_opted_in,
)

from informer import Client
from informer.resources import CONFIGMAPS, DEPLOYMENTS
from informer.testing import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "client_operations.py"
EXAMPLES = ROOT / "controllers" / "kube_informer_samples" / "manifests"


async def run_script(*args: str) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, str(SCRIPT), *args], check=False, cwd=str(ROOT)
        )


@pytest.mark.anyio
async def test_client_operations_script(
    control_plane: ControlPlane, client: Client, namespace: str
) -> None:
    kubeconfig = str(control_plane.kubeconfig_path)
    result = await run_script("--kubeconfig", kubeconfig, "--namespace", namespace)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    for step in ("1. client for https://127.0.0.1:", "2. created", "3. applied", "4. API GET"):
        assert step in out
    assert f"5. cached get: {namespace}/hello-code replicas=2" in out
    assert "cached list: hello-code, hello-yaml" in out
    assert "cached list created-by=client-operations: 2 Deployment(s)" in out
    assert f"6. ConfigMap {namespace}/hello-config (created)" in out
    assert result.stderr == b""  # informer logs below warning are not printed

    code = await client.get(DEPLOYMENTS, "hello-code", namespace=namespace)
    assert code["metadata"]["labels"] == {"app": "hello-code", "created-by": "client-operations"}
    assert code["spec"]["selector"] == {"matchLabels": {"app": "hello-code"}}
    container = code["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    from_yaml = await client.get(DEPLOYMENTS, "hello-yaml", namespace=namespace)
    assert from_yaml["metadata"]["namespace"] == namespace
    cm = await client.get(CONFIGMAPS, "hello-config", namespace=namespace)
    assert cm["data"] == {"greeting": "hello", "color": "blue"}

    # Idempotent: a second run writes nothing.
    again = await run_script("--kubeconfig", kubeconfig, "--namespace", namespace)
    assert again.returncode == 0, again.stderr.decode()
    assert "2. unchanged" in again.stdout.decode()
    assert f"6. ConfigMap {namespace}/hello-config (unchanged)" in again.stdout.decode()
    for name, before in (("hello-code", code), ("hello-yaml", from_yaml)):
        after = await client.get(DEPLOYMENTS, name, namespace=namespace)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.anyio
async def test_client_operations_script_fails_in_one_line(tmp_path: Path) -> None:
    result = await run_script("--kubeconfig", str(tmp_path / "missing"))
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("error: kubeconfig ") and "does not exist" in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def load_examples() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_demo_manifests_cover_the_reloader_cases() -> None:
    docs = load_examples()
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"  # applied first (file order)
    assert {"Namespace", "ConfigMap", "Deployment"} == set(kinds)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    opted = {n for n, d in deployments.items() if is_opted_in(d)}
    assert opted == {"web", "worker"}
    assert "app-config" in consumed_configmaps(deployments["legacy"])
    assert all("app-config" in consumed_configmaps(deployments[n]) for n in opted)
    for d in deployments.values():
        assert d["metadata"]["namespace"] == "demo"
    assert deployments["web"]["metadata"]["annotations"][RELOAD_ANNOTATION] == "true"
