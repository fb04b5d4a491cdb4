"""``deploy/``'s two variants and its admission policy.

- Static: the tests' rendering of each variant (``deploy/`` cluster-wide,
  ``deploy/namespaced/``) equals ``kubectl kustomize``'s when kubectl is installed; the
  namespaced variant grants the cluster-wide rules of the controllers that stay in one
  namespace (not configmap-mirror) in a Role of that namespace and tells the runner to
  watch it and run those.
- Real server: the namespaced variant works with its Role only, and its ServiceAccount
  can neither write nor list elsewhere; the admission policies admit only the
  reloader's patch of a Deployment, and updates and deletes of the controllers' own
  ConfigMaps, from the ServiceAccount, whatever RBAC allows.
"""

from __future__ import annotations

import re
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
    SA_USER,
    SERVICE_ACCOUNT,
    WATCHED,
    applied_as_service_account,
    apply,
    apply_all,
    config_hash,
    container,
    create_workload,
    find,
    manifests,
    namespaced,
    object_at,
    path_of,
    render,
    reset_lease,
    rules,
    wait_allowed,
)
from kube_informer_samples.configmap_mirror import MIRROR_LABEL
from kube_informer_samples.configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION
from kube_informer_samples.deployment_inventory import INVENTORY_NAME
from runner_harness import start_runner

from informer import Forbidden, new_api_client
from informer._rest.request import request_json
from informer.run import ExitCode, build_parser
from informer.testing import eventually


@pytest.fixture(scope="module")
async def sa_kubeconfig(
    control_plane: Any, api_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The cluster-wide manifests applied; a kubeconfig for their ServiceAccount."""
    return await applied_as_service_account(control_plane, api_client, tmp_path_factory)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("variant", ["", "namespaced"], ids=["cluster-wide", "namespaced"])
def test_rendering_matches_kustomize(variant: str) -> None:
    """The tests' rendering of a variant is what ``kubectl kustomize`` makes of it."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / variant)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    def by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
        ident = {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
        }
        assert len(ident) == len(docs)
        return ident

    rendered = manifests() if not variant else render(DEPLOY / variant)
    assert by_identity([d for d in yaml.safe_load_all(out) if d]) == by_identity(rendered)


def test_namespaced_variant_grants_the_same_rules_in_one_namespace() -> None:
    """deploy/namespaced/: the controllers' rules in a Role of the watched namespace, no
    cluster-wide grant but the access reviews of secure metrics (cluster-scoped APIs),
    the runner told to watch that namespace; everything else as the cluster-wide one."""
    docs = namespaced()
    # configmap-mirror does not run there (its copies go to other namespaces): the others'
    # rules, the inventory's updates and deletes limited to its name.
    assert rules("Role", "kube-informer", docs) == {
        *{("apps", "deployments", verb, "") for verb in ("get", "list", "watch", "patch")},
        *{("", "configmaps", verb, "") for verb in ("get", "list", "watch", "create")},
        ("", "configmaps", "update", INVENTORY_NAME),
        ("", "configmaps", "delete", INVENTORY_NAME),
        ("events.k8s.io", "events", "create", ""),
        ("events.k8s.io", "events", "patch", ""),
    }
    role = find("Role", "kube-informer", docs)
    binding = find("RoleBinding", "kube-informer", docs)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == WATCHED
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kube-informer",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    ]
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"} == {
        "kube-informer-metrics-auth",
        "kube-informer-metrics-reader",
    }
    assert [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"] == [
        "kube-informer-metrics-auth"
    ]
    args = container(docs)["args"]
    controllers = "--controllers=configmap-reloader,deployment-inventory"
    cluster_args = container()["args"]
    assert cluster_args[1].startswith("--controllers=")
    assert args == [cluster_args[0], controllers, *cluster_args[2:], f"--namespace={WATCHED}"]
    parsed = build_parser().parse_args(args)
    assert parsed.namespace == [[WATCHED]]  # one flag, one name
    assert "configmap-mirror" not in str(parsed.controllers)

    def shared(variant: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {
            (d["kind"], d["metadata"]["name"]): d
            for d in variant
            if (d["metadata"]["name"] != "kube-informer" or d["kind"] in KINDS_SHARED)
            and d["kind"] != "CustomResourceDefinition"
        }

    assert shared(docs) == shared(manifests())
    assert not [d for d in docs if d["kind"] == "CustomResourceDefinition"]


KINDS_SHARED = ("Namespace", "ServiceAccount", "Service", "PodDisruptionBudget", "NetworkPolicy")
"""Kinds whose ``kube-informer`` object is the same in both variants."""


POLICY = "kube-informer-deployment-writes"
WRITES: dict[str, Any] = {
    "config-hash": {"spec": {"template": {"metadata": {"annotations": {
        CONFIG_HASH_ANNOTATION: "0" * 64}}}}},
    "image": {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "attacker.example/miner:latest"}]}}}},
    "service-account": {"spec": {"template": {"spec": {"serviceAccountName": "admin"}}}},
    "other-template-annotation": {"spec": {"template": {"metadata": {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/web": "unconfined"}}}}},
    "template-label": {"spec": {"template": {"metadata": {"labels": {"extra": "x"}}}}},
    "replicas": {"spec": {"replicas": 0}},
    "paused": {"spec": {"paused": True}},
    "deployment-annotation": {"metadata": {"annotations": {RELOAD_ANNOTATION: "false"}}},
    "owner": {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
        "name": "app-config", "uid": "00000000-0000-0000-0000-000000000000"}]}},
    "finalizer": {"metadata": {"finalizers": ["example.com/never"]}},
}  # fmt: skip
"""Strategic-merge patches the ServiceAccount may send (RBAC allows all of them)."""


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_admission_policy_lets_the_service_account_change_only_the_config_hash(
    api_client: Any, sa_kubeconfig: Path, namespace: str
) -> None:
    """deployment-writes-policy.yaml: of the patches RBAC allows the ServiceAccount, only
    the reloader's (the pod template's config-hash annotation) is admitted; an admin is
    not restricted."""
    await create_workload(api_client, namespace)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"

    async def patch(api: Any, body: Any, *, dry_run: bool = False) -> dict[str, Any]:
        return await request_json(
            api,
            "PATCH",
            path,
            query={"dryRun": "All"} if dry_run else None,
            body=body,
            content_type="application/strategic-merge-patch+json",
        )

    before = await request_json(api_client, "GET", path)
    outcomes: dict[str, str] = {}
    async with await new_api_client(kubeconfig=str(sa_kubeconfig)) as sa_api:

        async def image_denied() -> None:
            try:
                await patch(sa_api, WRITES["image"], dry_run=True)
            except Forbidden:
                return
            raise AssertionError("the policy does not deny an image change yet")

        # The API server loads new policies asynchronously.
        await eventually(image_denied, timeout=20, interval=0.1)
        for case, body in WRITES.items():
            try:
                await patch(sa_api, body, dry_run=case != "config-hash")
            except Forbidden as exc:
                assert f"ValidatingAdmissionPolicy '{POLICY}'" in str(exc), exc
                assert "may change only the pod template's informer.dev/config-hash" in str(exc)
                outcomes[case] = "denied"
            else:
                outcomes[case] = "allowed"
    assert outcomes == {case: "denied" for case in WRITES} | {"config-hash": "allowed"}
    # (The denials carry the policy's message, so its expression evaluated to false,
    # not to an error; the config-hash patch shows it evaluates to true.)
    after = await request_json(api_client, "GET", path)
    assert config_hash(after) == "0" * 64
    assert after["spec"]["template"]["spec"] == before["spec"]["template"]["spec"]
    # Anyone else (here the admin) is not restricted by it.
    admin = await patch(api_client, WRITES["image"])
    assert admin["spec"]["template"]["spec"]["containers"][0]["image"].startswith("attacker")


CONFIGMAP_POLICY = "kube-informer-configmap-writes"


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_admission_policy_lets_the_service_account_write_only_its_own_configmaps(
    api_client: Any, sa_kubeconfig: Path, namespace: str
) -> None:
    """configmap-writes-policy.yaml: RBAC lets the ServiceAccount update and delete every
    ConfigMap; the policy admits it for the inventory and configmap-mirror's labelled
    copies only (a label cannot be added to someone else's ConfigMap on the way); an
    admin is not restricted."""
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    labelled = {"labels": {MIRROR_LABEL: "0000"}}
    for name, meta in (("theirs", {}), (INVENTORY_NAME, {}), ("copy", labelled)):
        body = {"metadata": {"name": name, **meta}, "data": {"k": "v"}}
        await request_json(api_client, "POST", configmaps, body=body)

    async def write(api: Any, name: str, verb: str) -> str:
        try:
            if verb == "delete":
                await request_json(api, "DELETE", f"{configmaps}/{name}", query={"dryRun": "All"})
            else:  # a PUT, as the controllers write (RBAC grants no patch)
                cm = await request_json(api_client, "GET", f"{configmaps}/{name}")
                if verb == "update":
                    cm["data"] = {"k": "new"}
                else:
                    cm["metadata"].setdefault("labels", {}).update(labelled["labels"])
                await request_json(
                    api, "PUT", f"{configmaps}/{name}", query={"dryRun": "All"}, body=cm
                )
        except Forbidden as exc:
            assert f"ValidatingAdmissionPolicy '{CONFIGMAP_POLICY}'" in str(exc), exc
            assert "may update or delete only its own ConfigMaps" in str(exc)
            return "denied"
        return "allowed"

    async with await new_api_client(kubeconfig=str(sa_kubeconfig)) as sa_api:

        async def update_denied() -> None:
            assert await write(sa_api, "theirs", "update") == "denied"

        # The API server loads new policies asynchronously.
        await eventually(update_denied, timeout=20, interval=0.1)
        outcomes = {
            (name, verb): await write(sa_api, name, verb)
            for name in ("theirs", INVENTORY_NAME, "copy")
            for verb in ("update", "delete", "label")
        }
    assert outcomes == {
        (name, verb): "denied" if name == "theirs" else "allowed"
        for name in ("theirs", INVENTORY_NAME, "copy")
        for verb in ("update", "delete", "label")
    }
    assert await write(api_client, "theirs", "update") == "allowed"  # the admin
    assert await write(api_client, "theirs", "delete") == "allowed"


def denied(verb: str, resource: str, group: str, namespace: str) -> str:
    """The API server's 403 message for the ServiceAccount, as a regex."""
    return re.escape(
        f'User "{SA_USER}" cannot {verb} resource "{resource}" in API group "{group}" '
        f'in the namespace "{namespace}"'
    )


@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_namespaced_variant_confines_the_samples_to_their_namespace(
    api_client: Any, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """deploy/namespaced/ applied (watching the test's namespace) in place of the
    cluster-wide grant: the samples work with the Role only, started with the
    Deployment's own arguments; the runner without ``--namespace`` cannot start (exit 7);
    the ServiceAccount cannot write, nor list, in another namespace, and the reloader
    leaves an opted-in Deployment there alone."""
    docs = namespaced(namespace)
    cluster_wide = [
        find("ClusterRoleBinding", "kube-informer"),
        find("ClusterRole", "kube-informer"),
    ]
    other = f"{namespace[:50]}-other"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    try:
        for doc in cluster_wide:
            await request_json(api_client, "DELETE", path_of(doc))
        for doc in docs:
            await apply(api_client, doc)
        await wait_allowed(api_client, False, "list", "", "configmaps", "")
        await wait_allowed(api_client, True, "patch", "apps", "deployments", namespace)
        for ns in (namespace, other):
            await create_workload(api_client, ns)
        await reset_lease(api_client)

        serving = ("--metrics-bind-address", "--metrics-secure", "--health-probe-bind-address")
        args = [a for a in container(docs)["args"] if not a.startswith(serving)]
        assert f"--namespace={namespace}" in args and "--leader-elect" in args
        args += ["--kubeconfig", str(sa_kubeconfig), "--leader-election-namespace", NAMESPACE]
        async with start_runner(
            [a for a in args if not a.startswith("--namespace")], tmp_path
        ) as r:
            await r.wait_exit(30)
        assert r.returncode == ExitCode.FORBIDDEN, (r.returncode, r.stderr)
        assert r.stderr.startswith("error: forbidden: cannot list"), r.stderr
        print(r.stderr.strip().splitlines()[0])

        deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
        inventory_path = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
        async with start_runner(args, tmp_path) as r:
            await r.wait_until(lambda: r.has("leader.acquired"))
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
            r.send_signal(signal.SIGTERM)
        assert r.returncode == 0, r.stderr
        failures = [e for e in r.events if e.get("level") in ("warning", "error")]
        assert not failures, failures

        outside = await request_json(
            api_client, "GET", f"/apis/apps/v1/namespaces/{other}/deployments/web"
        )
        assert config_hash(outside) is None  # opted in, but not in the watched namespace
        async with await new_api_client(kubeconfig=str(sa_kubeconfig)) as sa_api:
            with pytest.raises(Forbidden, match=denied("patch", "deployments", "apps", other)):
                await request_json(
                    sa_api,
                    "PATCH",
                    f"/apis/apps/v1/namespaces/{other}/deployments/web",
                    body=WRITES["image"],
                    content_type="application/strategic-merge-patch+json",
                )
            with pytest.raises(Forbidden, match=denied("create", "configmaps", "", other)):
                await request_json(
                    sa_api,
                    "POST",
                    f"/api/v1/namespaces/{other}/configmaps",
                    body={"metadata": {"name": INVENTORY_NAME}},
                )
            with pytest.raises(Forbidden):
                await request_json(sa_api, "GET", "/api/v1/configmaps")
            # In the watched namespace RBAC allows the patch; the admission policy
            # refuses anything but the reloader's annotation.
            with pytest.raises(Forbidden, match=f"ValidatingAdmissionPolicy '{POLICY}'"):
                await request_json(
                    sa_api,
                    "PATCH",
                    deployment_path,
                    body=WRITES["image"],
                    content_type="application/strategic-merge-patch+json",
                )
        after = await request_json(
            api_client, "GET", f"/apis/apps/v1/namespaces/{other}/deployments/web"
        )
        assert after["spec"]["template"]["spec"] == outside["spec"]["template"]["spec"]
    finally:
        await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")
        await apply_all(api_client)  # the cluster-wide variant back, for the other tests
        await wait_allowed(api_client, True, "list", "", "configmaps", "")
