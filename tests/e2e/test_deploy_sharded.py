"""``deploy/sharded/``: three replicas of the runner split the keys (``--shard``).

- Static: the tests' rendering equals ``kubectl kustomize``'s (when kubectl is
  installed); the only differences from the cluster-wide variant are the Lease rules
  (``get``, ``list``, ``create``, ``update``, ``delete`` on leases, in the Pod's
  namespace), three replicas and ``--shard`` in place of ``--leader-elect``.
- Real server: two runners with the Deployment's arguments, as the ServiceAccount with
  the sharded variant's RBAC only, join one group, run the samples, and stop cleanly.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    API_POLL,
    API_WAIT,
    DEPLOY,
    NAMESPACE,
    applied_as_service_account,
    apply,
    apply_all,
    config_hash,
    container,
    create_workload,
    find,
    manifests,
    object_at,
    render,
    rules,
    wait_allowed,
)
from kube_informer_samples.deployment_inventory import INVENTORY_NAME
from runner_harness import start_runner

from informer.run import build_parser
from informer.run import runner as run_module
from informer.testing import eventually

ROLE = "kube-informer-leader-election"
LEASE_RULES = {
    ("coordination.k8s.io", "leases", verb, "")
    for verb in ("get", "list", "create", "update", "delete")
}


def sharded() -> list[dict[str, Any]]:
    return render(DEPLOY / "sharded")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_rendering_matches_kustomize() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "sharded")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    def by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
        }

    assert by_identity([d for d in yaml.safe_load_all(out) if d]) == by_identity(sharded())


def test_sharded_variant_differs_only_in_leases_replicas_and_flag() -> None:
    docs = sharded()
    assert rules("Role", ROLE, docs) == LEASE_RULES
    assert find("Role", ROLE, docs)["metadata"]["namespace"] == NAMESPACE
    deployment = find("Deployment", docs=docs)
    assert deployment["spec"]["replicas"] == 3
    args = container(docs)["args"]
    assert args == ["--shard", *container()["args"][1:]]
    assert container()["args"][0] == "--leader-elect"
    parsed = build_parser().parse_args(args)
    config = run_module._sharding_options(parsed, [])
    assert config is not None and config.shard_by == "key" and not parsed.leader_elect

    def rest(variant: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {
            (d["kind"], d["metadata"]["name"]): d
            for d in variant
            if (d["kind"], d["metadata"]["name"])
            not in (("Role", ROLE), ("Deployment", "kube-informer"))
        }

    assert rest(docs) == rest(manifests())


@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_two_sharded_runners_as_the_service_account(
    control_plane: Any,
    api_client: Any,
    namespace: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    sa_kubeconfig = await applied_as_service_account(control_plane, api_client, tmp_path_factory)
    try:
        for doc in sharded():
            await apply(api_client, doc)
        await wait_allowed(api_client, True, "list", "coordination.k8s.io", "leases", NAMESPACE)
        await create_workload(api_client, namespace)
        serving = ("--metrics-bind-address", "--metrics-secure", "--health-probe-bind-address")
        args = [a for a in container(sharded())["args"] if not a.startswith(serving)]
        args += [
            "--kubeconfig",
            str(sa_kubeconfig),
            "--namespace",
            namespace,
            "--shard-lease-namespace",
            NAMESPACE,
            "--shard-retry-period",
            "0.3",
        ]
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with start_runner(args, tmp_path / "a") as a, start_runner(args, tmp_path / "b") as b:

            def two_members(r: Any) -> bool:
                cleared = r.event("shard.view_cleared")
                return bool(cleared) and cleared[-1]["members"] == 2

            await a.wait_until(lambda: two_members(a), within=40)
            await b.wait_until(lambda: two_members(b), within=40)
            deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
            inventory_path = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
            await eventually(
                object_at(api_client, deployment_path, lambda d: bool(config_hash(d))),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            await eventually(
                object_at(api_client, inventory_path, lambda c: "web" in c.get("data", {})),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            b.send_signal(signal.SIGTERM)
            await b.wait_exit(10)
            await a.wait_until(lambda: a.event("shard.view_cleared")[-1]["members"] == 1)
            a.send_signal(signal.SIGTERM)
        for r in (a, b):
            assert r.returncode == 0, r.stderr
            assert r.has("shard.released")
            bad = [
                e
                for e in r.events
                if e.get("level") == "error"
                or (e.get("level") == "warning" and str(e.get("event")).startswith("shard."))
            ]
            assert not bad, bad
    finally:
        await apply_all(api_client)  # the cluster-wide variant back, for the other tests
