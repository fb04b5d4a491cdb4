"""``deploy/``: both variants' manifests, checked statically and on the real control plane.

- Static: the rendering of each variant (``deploy/`` cluster-wide, ``deploy/namespaced/``)
  equals ``kubectl kustomize``'s when kubectl is installed; the Deployment's hardening,
  probes and command line; the RBAC rules pinned (least privilege), the namespaced
  variant's the same in one namespace; the Dockerfile's user.
- Real server: the manifests apply with server-side apply (the Deployment is stored;
  nothing runs it: there is no kubelet); the sample controllers work when the runner
  authenticates as the ServiceAccount with a token from the TokenRequest API (what a Pod
  mounts), exercising every verb granted; removing one rule makes the runner fail with a
  403 naming the verb and the resource; the namespaced variant works with its Role only
  and forbids writes elsewhere; the admission policy admits only the reloader's patch
  from the ServiceAccount; secure metrics served as the ServiceAccount (its token and
  access reviews) answer 401/403/200 by the scraper's token and RBAC.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import http_client
import pytest
import yaml
from runner_logs import RunnerLogs

from controllers.configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION
from controllers.deployment_inventory import INVENTORY_NAME
from informer import Forbidden, NotFound, Observability, new_api_client
from informer._kube import request_json
from informer.run import DEFAULT_LEADER_ELECTION_ID, ExitCode, build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAMESPACE = "kube-informer"
SERVICE_ACCOUNT = "kube-informer"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
SA_GROUPS = [
    "system:serviceaccounts",
    f"system:serviceaccounts:{NAMESPACE}",
    "system:authenticated",
]
FIELD_MANAGER = "kube-informer-deploy-test"
RUN = [sys.executable, "-m", "informer.run"]

# kind -> (plural, namespaced)
KINDS = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Deployment": ("deployments", True),
    "Service": ("services", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "NetworkPolicy": ("networkpolicies", True),
    "ValidatingAdmissionPolicy": ("validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": ("validatingadmissionpolicybindings", False),
}


# ------------------------------------------------------------------------------ manifests

WATCHED = "default"
"""The namespace the namespaced variant's Role and ``--namespace`` name."""


def render(directory: Path) -> list[dict[str, Any]]:
    """The documents a kustomization directory produces, in its order: its ``resources``
    (files, or directories rendered the same way), then its inline JSON 6902
    ``patches`` applied to their target. Only what deploy/ uses is supported (checked);
    ``test_rendering_matches_kustomize`` compares the result with kubectl kustomize."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(spec) <= {"apiVersion", "kind", "resources", "patches"}, set(spec)
    docs: list[dict[str, Any]] = []
    for entry in spec["resources"]:
        path = (directory / entry).resolve()
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        assert set(patch) == {"target", "patch"} and set(patch["target"]) == {"kind", "name"}
        [doc] = [
            d
            for d in docs
            if (d["kind"], d["metadata"]["name"])
            == (patch["target"]["kind"], patch["target"]["name"])
        ]
        for op in yaml.safe_load(patch["patch"]):
            assert op["op"] == "add", op
            *parents, last = op["path"].lstrip("/").split("/")
            node: Any = doc
            for token in parents:
                node = node[int(token)] if isinstance(node, list) else node[token]
            if isinstance(node, list):
                node.insert(len(node) if last == "-" else int(last), op["value"])
            else:
                node[last] = op["value"]
    return docs


def manifests() -> list[dict[str, Any]]:
    """The cluster-wide variant (``kubectl apply -k deploy/``), in its order."""
    return render(DEPLOY)


def namespaced(watched: str = WATCHED) -> list[dict[str, Any]]:
    """The namespaced variant (``deploy/namespaced/``), watching ``watched`` instead of
    the namespace it names (as its kustomization tells a user to edit)."""
    docs = render(DEPLOY / "namespaced")
    for doc in docs:
        if doc["metadata"].get("namespace") == WATCHED:
            doc["metadata"]["namespace"] = watched
        if doc["kind"] == "Deployment":
            args = doc["spec"]["template"]["spec"]["containers"][0]["args"]
            args[:] = [
                f"--namespace={watched}" if a == f"--namespace={WATCHED}" else a for a in args
            ]
    return docs


def find(
    kind: str, name: str | None = None, docs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    matches = [
        d
        for d in (manifests() if docs is None else docs)
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, (kind, name, len(matches))
    return matches[0]


def path_of(doc: dict[str, Any]) -> str:
    plural, namespaced = KINDS[doc["kind"]]
    api_version = doc["apiVersion"]
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    ns = f"/namespaces/{doc['metadata']['namespace']}" if namespaced else ""
    return f"{prefix}{ns}/{plural}/{doc['metadata']['name']}"


def container(docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    containers = find("Deployment", docs=docs)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def rules(
    kind: str, name: str, docs: list[dict[str, Any]] | None = None
) -> set[tuple[str, str, str, str]]:
    """The role's rules flattened to (group, resource, verb, resourceName or '')."""
    flat: set[tuple[str, str, str, str]] = set()
    for rule in find(kind, name, docs)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for rname in rule.get("resourceNames") or [""]:
                        flat.add((group, resource, verb, rname))
    return flat


# -------------------------------------------------------------------------------- static


def test_kustomizations_list_every_manifest() -> None:
    """Every YAML file under deploy/ is a resource of exactly one kustomization; every
    document is labelled and lives in the operator's namespace (the namespaced variant's
    Role and RoleBinding: in the watched one)."""
    listed: list[Path] = []
    for spec_path in DEPLOY.rglob("kustomization.yaml"):
        spec = yaml.safe_load(spec_path.read_text())
        listed.extend(
            (spec_path.parent / r).resolve()
            for r in spec["resources"]
            if not (spec_path.parent / r).is_dir()
        )
    on_disk = [p.resolve() for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert sorted(listed) == sorted(on_disk)
    for docs in (manifests(), namespaced()):
        for doc in docs:
            assert doc["kind"] in KINDS, doc["kind"]
            assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "kube-informer"
            if KINDS[doc["kind"]][1]:
                expected = NAMESPACE
                if (
                    doc["kind"] in ("Role", "RoleBinding")
                    and doc["metadata"]["name"] == "kube-informer"
                ):
                    expected = WATCHED
                assert doc["metadata"]["namespace"] == expected, doc["metadata"]


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


def test_deployment_runs_the_runner_with_leader_election_and_probes() -> None:
    deployment = find("Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod.get("automountServiceAccountToken", True) is True
    c = container()
    assert c["command"] == ["python", "-m", "informer.run"]
    assert c["args"] == [
        "--leader-elect",
        "--metrics-bind-address=:8443",
        "--metrics-secure",
        "--health-probe-bind-address=:8081",
    ]
    args = build_parser().parse_args(c["args"])  # every flag exists and is valid
    assert args.leader_elect and args.leader_election_id == DEFAULT_LEADER_ELECTION_ID
    assert args.metrics_secure
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8443, "health": 8081}
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        get = c[probe]["httpGet"]
        assert (get["path"], ports[get["port"]]) == (path, 8081), probe
        assert get.get("scheme", "HTTP") == "HTTP", probe  # probes stay plain HTTP
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # The runner exits within 5 s of SIGTERM; the kubelet must wait longer than that.
    assert pod["terminationGracePeriodSeconds"] > 5
    service = find("Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_deployment_security_context() -> None:
    pod = find("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container()["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc and "hostNetwork" not in pod


def test_dockerfile_runs_as_the_deployments_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    pod = find("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    assert re.search(r"pip install \.", text)
    assert 'ENTRYPOINT ["python", "-m", "informer.run"]' in text


def test_rbac_grants_only_what_the_samples_and_the_runner_use() -> None:
    """Pinned: a change here must be deliberate (and proven by the tests below)."""
    assert rules("ClusterRole", "kube-informer") == {
        ("apps", "deployments", "list", ""),  # informers (and the startup list check)
        ("apps", "deployments", "watch", ""),
        ("", "configmaps", "list", ""),
        ("", "configmaps", "watch", ""),
        ("apps", "deployments", "patch", ""),  # configmap-reloader
        ("", "configmaps", "create", ""),  # deployment-inventory
        ("", "configmaps", "get", INVENTORY_NAME),
        ("", "configmaps", "update", INVENTORY_NAME),
        ("", "configmaps", "delete", INVENTORY_NAME),
    }
    assert rules("Role", "kube-informer-leader-election") == {
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", DEFAULT_LEADER_ELECTION_ID),
        ("coordination.k8s.io", "leases", "update", DEFAULT_LEADER_ELECTION_ID),
    }
    assert rules("ClusterRole", "kube-informer-metrics-auth") == {
        ("authentication.k8s.io", "tokenreviews", "create", ""),  # --metrics-secure
        ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
    }
    # For the scrapers (bound by the operator to Prometheus' ServiceAccount).
    assert find("ClusterRole", "kube-informer-metrics-reader")["rules"] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]
    bindings = [d for d in manifests() if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bindings} == {
        ("ClusterRole", "kube-informer"),
        ("ClusterRole", "kube-informer-metrics-auth"),
        ("Role", "kube-informer-leader-election"),
    }
    for binding in bindings:
        assert binding["roleRef"]["kind"] == binding["kind"].removesuffix("Binding")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
        ]
    assert find("Role")["metadata"]["namespace"] == NAMESPACE


def test_namespaced_variant_grants_the_same_rules_in_one_namespace() -> None:
    """deploy/namespaced/: the controllers' rules in a Role of the watched namespace, no
    cluster-wide grant but the access reviews of secure metrics (cluster-scoped APIs),
    the runner told to watch that namespace; everything else as the cluster-wide one."""
    docs = namespaced()
    assert rules("Role", "kube-informer", docs) == rules("ClusterRole", "kube-informer")
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
    assert args == [*container()["args"], f"--namespace={WATCHED}"]
    assert build_parser().parse_args(args).namespace == [[WATCHED]]  # one flag, one name

    def shared(variant: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        return {
            (d["kind"], d["metadata"]["name"]): d
            for d in variant
            if d["metadata"]["name"] != "kube-informer" or d["kind"] in KINDS_SHARED
        }

    assert shared(docs) == shared(manifests())


KINDS_SHARED = ("Namespace", "ServiceAccount", "Service", "PodDisruptionBudget", "NetworkPolicy")
"""Kinds whose ``kube-informer`` object is the same in both variants."""


def test_network_policy_admits_only_the_metrics_and_probe_ports() -> None:
    policy = find("NetworkPolicy")["spec"]
    pod = find("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"] == pod
    assert policy["policyTypes"] == ["Ingress"]
    named = {p["name"] for p in container()["ports"]}
    ports = [port for rule in policy["ingress"] for port in rule["ports"]]
    assert {p["port"] for p in ports} == named == {"metrics", "health"}
    assert all(p["protocol"] == "TCP" for p in ports)
    metrics_rule = next(r for r in policy["ingress"] if r["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"metrics": "enabled"}}}]


# ----------------------------------------------------------------------- on the server


async def apply(api: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply of one manifest (its JSON is YAML)."""
    return await request_json(
        api,
        "PATCH",
        path_of(doc),
        query={"fieldManager": FIELD_MANAGER},
        body=doc,
        content_type="application/apply-patch+yaml",
    )


async def apply_all(api: Any) -> list[dict[str, Any]]:
    return [await apply(api, doc) for doc in manifests()]


async def allowed(api: Any, verb: str, group: str, resource: str, namespace: str) -> bool:
    """Whether the ServiceAccount may do it (a SubjectAccessReview, as the admin)."""
    review = await request_json(
        api,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": SA_USER,
                "groups": SA_GROUPS,
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "name": DEFAULT_LEADER_ELECTION_ID if resource == "leases" else "",
                },
            },
        },
    )
    return bool(review["status"].get("allowed"))


async def wait_allowed(api: Any, want: bool, *access: str) -> None:
    """RBAC changes reach the authorizer through its informers: wait for them."""
    with anyio.fail_after(10):
        while await allowed(api, *access) != want:  # noqa: ASYNC110 - polls the API
            await anyio.sleep(0.05)


async def token_kubeconfig(api: Any, admin_kubeconfig: Path, path: Path) -> Path:
    """A kubeconfig authenticating as the ServiceAccount with a TokenRequest token."""
    answer = await request_json(
        api,
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    admin = json.loads(await anyio.Path(admin_kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": SA_USER, "user": {"token": answer["status"]["token"]}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": SA_USER}}],
        "current-context": "sa",
    }
    await anyio.Path(path).write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
async def sa_kubeconfig(
    control_plane: Any, api_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The manifests applied; a kubeconfig for their ServiceAccount."""
    await apply_all(api_client)
    return await token_kubeconfig(
        api_client,
        Path(control_plane.kubeconfig_path),
        tmp_path_factory.mktemp("sa") / "kubeconfig",
    )


class Runner(RunnerLogs):
    """A ``python -m informer.run`` child and its JSON log lines."""

    async def wait_for(self, predicate: Callable[[], bool], within: float = 20.0) -> None:
        await self.wait_until(predicate, within)


@asynccontextmanager
async def runner(args: Sequence[str], cwd: Path) -> AsyncIterator[Runner]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "KUBERNETES_"))}
    env.update(HOME=str(cwd), PYTHONUNBUFFERED="1")
    process = await anyio.open_process(
        [*RUN, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    r = Runner(process)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(r.pump)
            yield r
            with anyio.fail_after(10):
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()


def runner_args(kubeconfig: Path, namespace: str) -> list[str]:
    """The Deployment's command line (without the metrics and probe servers), scoped to
    the test's namespace, electing in the operator's namespace as in a Pod."""
    return [
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "--leader-elect",
        "--leader-election-namespace",
        NAMESPACE,
    ]


async def reset_lease(api: Any) -> None:
    """No stale holder from an earlier run (the default lease is 15 s)."""
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{DEFAULT_LEADER_ELECTION_ID}"
    )
    with suppress(NotFound):
        await request_json(api, "DELETE", path)


async def poll(api: Any, path: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """GET ``path`` until ``check(object)``; a missing object is ``{}``."""
    with anyio.fail_after(20):
        while True:
            try:
                obj = await request_json(api, "GET", path)
            except NotFound:
                obj = {}
            if check(obj):
                return obj
            await anyio.sleep(0.05)


def config_hash(deployment: dict[str, Any]) -> str | None:
    annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {})
    return (annotations.get("annotations") or {}).get(CONFIG_HASH_ANNOTATION)


async def create_workload(api: Any, namespace: str) -> None:
    """ConfigMap ``app-config`` and Deployment ``web`` (opted in, consuming it)."""
    await request_json(
        api,
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body={"metadata": {"name": "app-config"}, "data": {"LOG_LEVEL": "info"}},
    )
    await request_json(
        api,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        body={
            "metadata": {"name": "web", "annotations": {RELOAD_ANNOTATION: "true"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.27",
                                "envFrom": [{"configMapRef": {"name": "app-config"}}],
                            }
                        ]
                    },
                },
            },
        },
    )


@pytest.mark.anyio
async def test_manifests_apply_server_side(api_client: Any) -> None:
    first = await apply_all(api_client)
    kinds = [obj["kind"] for obj in first]
    assert kinds == [d["kind"] for d in manifests()]
    deployment = next(o for o in first if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
    assert FIELD_MANAGER in managers
    # Applying again changes nothing: same resourceVersions, no conflicts.
    again = await apply_all(api_client)
    assert [o["metadata"]["resourceVersion"] for o in again] == [
        o["metadata"]["resourceVersion"] for o in first
    ]


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_sample_controllers_work_as_the_service_account(
    api_client: Any, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """Every granted verb is used: list/watch (informers), leases get/create/update,
    deployments patch, inventory create/update/delete."""
    for group, resource in (("apps", "deployments"), ("", "configmaps")):
        for verb in ("list", "watch"):  # what the Deployment (all namespaces) needs
            assert await allowed(api_client, verb, group, resource, "")
    for verb, group, resource in (
        ("list", "", "secrets"),
        ("delete", "apps", "deployments"),
        ("update", "apps", "deployments"),
        ("delete", "", "configmaps"),  # only the inventory, by name
        ("create", "apps", "deployments"),
    ):
        assert not await allowed(api_client, verb, group, resource, namespace), (verb, resource)
    await reset_lease(api_client)
    await create_workload(api_client, namespace)
    deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    inventory_path = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
    async with runner(runner_args(sa_kubeconfig, namespace), tmp_path) as r:
        await r.wait_for(lambda: r.has("leader.acquired"))
        stamped = await poll(api_client, deployment_path, lambda d: bool(config_hash(d)))
        inventory = await poll(api_client, inventory_path, lambda c: "web" in c.get("data", {}))
        assert "replicas: 1" in inventory["data"]["web"]

        await request_json(
            api_client,
            "PATCH",
            f"/api/v1/namespaces/{namespace}/configmaps/app-config",
            body={"data": {"LOG_LEVEL": "debug"}},
            content_type="application/merge-patch+json",
        )
        rolled = await poll(
            api_client,
            deployment_path,
            lambda d: config_hash(d) not in (None, config_hash(stamped)),
        )
        assert rolled["metadata"]["generation"] > stamped["metadata"]["generation"]

        await request_json(
            api_client,
            "PATCH",
            deployment_path,
            body={"spec": {"replicas": 3}},
            content_type="application/merge-patch+json",
        )
        await poll(api_client, inventory_path, lambda c: "replicas: 3" in c["data"].get("web", ""))

        await request_json(api_client, "DELETE", deployment_path)
        await poll(api_client, inventory_path, lambda c: c == {})

        r.process.send_signal(signal.SIGTERM)
    assert r.process.returncode == 0, r.stderr
    assert r.has("leader.released") and r.stderr.strip() == ""
    failures = [e for e in r.events if e.get("level") in ("warning", "error")]
    assert not failures, failures
    lease = await request_json(
        api_client,
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{DEFAULT_LEADER_ELECTION_ID}",
    )
    assert lease["spec"]["holderIdentity"] == ""  # released on SIGTERM


@dataclass(frozen=True)
class MissingRule:
    """Remove ``verbs`` on ``group``/``resource`` from a role; expect a named 403."""

    kind: str
    role: str
    group: str
    resource: str
    verbs: tuple[str, ...]
    fatal: bool = True  # a startup check catches it (exit 7); else a reconcile fails

    def drop(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        before = sum(len(rule["verbs"]) for rule in doc["rules"])
        for rule in doc["rules"]:
            if (
                self.group in rule["apiGroups"]
                and self.resource in rule["resources"]
                and set(self.verbs) <= set(rule["verbs"])
            ):
                rule["verbs"] = [v for v in rule["verbs"] if v not in self.verbs]
        doc["rules"] = [rule for rule in doc["rules"] if rule["verbs"]]
        assert sum(len(rule["verbs"]) for rule in doc["rules"]) == before - len(self.verbs)
        return doc

    def where(self, namespace: str) -> str:
        return NAMESPACE if self.kind == "Role" else namespace

    def message(self, namespace: str) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        return (
            f"forbidden: cannot {self.verbs[0]} {resource} in namespace '{self.where(namespace)}'"
        )


MISSING = [
    MissingRule("ClusterRole", "kube-informer", "", "configmaps", ("watch",)),
    MissingRule("ClusterRole", "kube-informer", "apps", "deployments", ("list", "watch")),
    MissingRule(
        "Role", "kube-informer-leader-election", "coordination.k8s.io", "leases", ("get", "update")
    ),
    MissingRule("ClusterRole", "kube-informer", "apps", "deployments", ("patch",), fatal=False),
]


@pytest.mark.anyio
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "missing",
    MISSING,
    ids=["configmaps-watch", "deployments-list-watch", "leases-get-update", "deployments-patch"],
)
async def test_a_missing_rule_fails_with_a_403_naming_verb_and_resource(
    api_client: Any, sa_kubeconfig: Path, namespace: str, tmp_path: Path, missing: MissingRule
) -> None:
    original = find(missing.kind, missing.role)
    access = (missing.verbs[0], missing.group, missing.resource, missing.where(namespace))
    message = missing.message(namespace)
    await reset_lease(api_client)
    await create_workload(api_client, namespace)
    await apply(api_client, missing.drop(original))
    try:
        await wait_allowed(api_client, False, *access)
        async with runner(runner_args(sa_kubeconfig, namespace), tmp_path) as r:
            if missing.fatal:
                with anyio.fail_after(30):
                    await r.process.wait()
            else:
                await r.wait_for(
                    lambda: any(message in e.get("error", "") for e in r.event("reconcile.failed"))
                )
                r.process.send_signal(signal.SIGTERM)
    finally:
        await apply(api_client, original)
        await wait_allowed(api_client, True, *access)
    assert "Traceback" not in r.stderr, r.stderr
    if missing.fatal:
        lines = r.stderr.strip().splitlines()
        assert r.process.returncode == ExitCode.FORBIDDEN, (r.process.returncode, r.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), r.stderr
        print(lines[0])
    else:
        assert r.process.returncode == 0, r.stderr


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
        with anyio.fail_after(20):  # the API server loads new policies asynchronously
            while True:
                try:
                    await patch(sa_api, WRITES["image"], dry_run=True)
                except Forbidden:
                    break
                await anyio.sleep(0.1)
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
        async with runner([a for a in args if not a.startswith("--namespace")], tmp_path) as r:
            with anyio.fail_after(30):
                await r.process.wait()
        assert r.process.returncode == ExitCode.FORBIDDEN, (r.process.returncode, r.stderr)
        assert r.stderr.startswith("error: forbidden: cannot list"), r.stderr
        print(r.stderr.strip().splitlines()[0])

        deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
        inventory_path = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
        async with runner(args, tmp_path) as r:
            await r.wait_for(lambda: r.has("leader.acquired"))
            await poll(api_client, deployment_path, lambda d: bool(config_hash(d)))
            await poll(api_client, inventory_path, lambda c: "web" in c.get("data", {}))
            r.process.send_signal(signal.SIGTERM)
        assert r.process.returncode == 0, r.stderr
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


async def service_account_token(api: Any, namespace: str, name: str) -> str:
    """A TokenRequest token for a new ServiceAccount ``name`` in ``namespace``."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    await request_json(api, "POST", path, body={"metadata": {"name": name}})
    answer = await request_json(
        api,
        "POST",
        f"{path}/{name}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    return str(answer["status"]["token"])


async def may_get_metrics(api: Any, user: str) -> bool:
    review = await request_json(
        api,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body={"spec": {"user": user, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}},
    )
    return bool(review["status"].get("allowed"))


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_secure_metrics_served_as_the_service_account(
    api_client: Any, sa_kubeconfig: Path, namespace: str
) -> None:
    """metrics-rbac.yaml is enough: the runner, as the ServiceAccount, reviews scrapers'
    tokens; one bound to kube-informer-metrics-reader gets 200, another 403, none 401."""
    scraper = await service_account_token(api_client, namespace, "prometheus")
    stranger = await service_account_token(api_client, namespace, "stranger")
    binding = f"metrics-reader-{namespace}"
    rbac = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    await request_json(
        api_client,
        "POST",
        rbac,
        body={
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kube-informer-metrics-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": namespace}],
        },
    )
    insecure = ssl.create_default_context()  # the certificate is self-signed
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def scrape(token: str | None) -> bytes:
        return http_client.get("/metrics", *([f"Authorization: Bearer {token}"] if token else []))

    try:
        with anyio.fail_after(10):
            while not await may_get_metrics(  # noqa: ASYNC110 - polls the API
                api_client, f"system:serviceaccount:{namespace}:prometheus"
            ):
                await anyio.sleep(0.05)
        obs = Observability(process_metrics=False)
        async with (
            await new_api_client(kubeconfig=str(sa_kubeconfig)) as sa_api,
            obs.serve(
                metrics_address="127.0.0.1:0",
                health_address=None,
                metrics_secure=True,
                api_client=sa_api,
            ) as endpoints,
        ):
            port = endpoints.metrics_port
            assert port is not None
            with anyio.fail_after(20):
                statuses = [
                    (await http_client.request(port, scrape(token), insecure)).status
                    for token in (None, "wrong", stranger, scraper)
                ]
    finally:
        await request_json(api_client, "DELETE", f"{rbac}/{binding}")
    assert statuses == [401, 401, 403, 200]
