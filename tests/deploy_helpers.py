"""``deploy/`` as the tests see it: each variant rendered from its kustomization, the
manifests applied with server-side apply, the runner run as the ServiceAccount
(test_deploy.py, test_deploy_variants.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_helpers import write_kubeconfig
from kube_informer_samples.configmap_reloader import CONFIG_HASH_ANNOTATION, RELOAD_ANNOTATION

from informer import NotFound
from informer._rest.request import request_json
from informer.run.cli import DEFAULT_LEADER_ELECTION_ID
from informer.testing import eventually, wait_for_crds

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
API_WAIT = 20.0
"""Seconds a controller's write may take to show on the API server."""
API_POLL = 0.05
"""Seconds between reads of the API server while waiting for it."""

# kind -> (plural, namespaced)
KINDS = {
    "CustomResourceDefinition": ("customresourcedefinitions", False),
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
    ``patches`` (``add``, ``replace``) applied to their target. Only what deploy/ uses
    is supported (checked); ``test_rendering_matches_kustomize`` compares the result with
    kubectl kustomize."""
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
            assert op["op"] in ("add", "replace"), op
            *parents, last = op["path"].lstrip("/").split("/")
            node: Any = doc
            for token in parents:
                node = node[int(token)] if isinstance(node, list) else node[token]
            if isinstance(node, list) and op["op"] == "add":
                node.insert(len(node) if last == "-" else int(last), op["value"])
            elif isinstance(node, list):
                node[int(last)] = op["value"]
            else:
                assert op["op"] == "add" or last in node, op  # replace needs a target
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
    """Apply the cluster-wide variant; return once its CRDs are served (the runner's
    startup check lists them)."""
    docs = manifests()
    applied = [await apply(api, doc) for doc in docs]
    await wait_for_crds(api, [d for d in docs if d["kind"] == "CustomResourceDefinition"])
    return applied


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
    """Until the ServiceAccount's access is ``want`` (RBAC changes reach the authorizer
    through its informers a moment later); fails after 10 s."""

    async def settled() -> None:
        assert await allowed(api, *access) == want, f"allowed {access}: want {want}"

    await eventually(settled, timeout=10, interval=0.05)


async def token_kubeconfig(api: Any, control_plane: Any, path: Path) -> Path:
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
    return write_kubeconfig(path, control_plane, {"token": answer["status"]["token"]})


async def applied_as_service_account(
    control_plane: Any, api_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The cluster-wide manifests applied; a kubeconfig for their ServiceAccount (each
    test module's ``sa_kubeconfig`` fixture)."""
    await apply_all(api_client)
    return await token_kubeconfig(
        api_client, control_plane, tmp_path_factory.mktemp("sa") / "kubeconfig"
    )


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
        "--controllers=configmap-reloader,deployment-inventory,configmap-mirror",
    ]


async def reset_lease(api: Any) -> None:
    """No stale holder from an earlier run (the default lease is 15 s)."""
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{DEFAULT_LEADER_ELECTION_ID}"
    )
    with suppress(NotFound):
        await request_json(api, "DELETE", path)


def object_at(
    api: Any, path: str, check: Callable[[dict[str, Any]], Any]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A check for ``eventually``: the object at ``path`` (``{}`` when missing) passes
    ``check``; returns it."""

    async def read() -> dict[str, Any]:
        try:
            obj = await request_json(api, "GET", path)
        except NotFound:
            obj = {}
        assert check(obj), f"{path}: {obj}"
        return obj

    return read


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
