"""``deploy/``: the cluster-wide variant's manifests, checked statically and on the real
control plane (the namespaced variant and the admission policy: test_deploy_variants.py).

- Static: every manifest listed by a kustomization; the Deployment's hardening, probes
  and command line; the RBAC rules pinned (least privilege); the Dockerfile's user.
- Real server: the manifests apply with server-side apply (the Deployment is stored;
  nothing runs it: there is no kubelet); the sample controllers work when the runner
  authenticates as the ServiceAccount with a token from the TokenRequest API (what a Pod
  mounts), exercising every verb granted; removing one rule makes the runner fail with a
  403 naming the verb and the resource; secure metrics served as the ServiceAccount (its
  token and access reviews) answer 401/403/200 by the scraper's token and RBAC.
"""

from __future__ import annotations

import copy
import re
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import http_client
import pytest
import yaml
from deploy_helpers import (
    API_POLL,
    API_WAIT,
    DEPLOY,
    FIELD_MANAGER,
    KINDS,
    NAMESPACE,
    SERVICE_ACCOUNT,
    WATCHED,
    allowed,
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
    reset_lease,
    rules,
    runner_args,
    wait_allowed,
)
from kube_informer_samples.configmap_mirror import MIRRORS
from kube_informer_samples.deployment_inventory import INVENTORY_NAME
from runner_harness import start_runner

from informer import new_api_client
from informer._rest.request import request_json
from informer.observability import Observability
from informer.run import ExitCode, build_parser
from informer.run.cli import DEFAULT_LEADER_ELECTION_ID
from informer.testing import eventually


@pytest.fixture(scope="module")
async def sa_kubeconfig(
    control_plane: Any, api_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The cluster-wide manifests applied; a kubeconfig for their ServiceAccount."""
    return await applied_as_service_account(control_plane, api_client, tmp_path_factory)


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
        "--controllers=configmap-reloader,deployment-inventory,configmap-mirror",
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
    """Pinned: a change here must be deliberate (and proven by the tests below). The
    controllers' ClusterRole is generated from their watches and declared writes
    (tests/rbac/test_generate.py checks the file is current)."""
    assert rules("ClusterRole", "kube-informer") == {
        # informers (and the startup list check); a watch grants get too
        *{("apps", "deployments", verb, "") for verb in ("get", "list", "watch")},
        *{("", "configmaps", verb, "") for verb in ("get", "list", "watch")},
        ("apps", "deployments", "patch", ""),  # configmap-reloader
        # deployment-inventory and configmap-mirror (configmap-writes-policy.yaml limits
        # updates and deletes to their ConfigMaps)
        ("", "configmaps", "create", ""),
        ("", "configmaps", "update", ""),
        ("", "configmaps", "delete", ""),
        # configmap-mirror
        *{("mirror.informer.dev", "configmapmirrors", v, "") for v in ("get", "list", "watch")},
        ("mirror.informer.dev", "configmapmirrors", "patch", ""),  # finalizer
        ("mirror.informer.dev", "configmapmirrors/status", "patch", ""),
        *{("", "namespaces", verb, "") for verb in ("get", "list", "watch")},
        ("events.k8s.io", "events", "create", ""),  # every controller's Events (and series)
        ("events.k8s.io", "events", "patch", ""),
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


@pytest.mark.anyio
async def test_manifests_apply_server_side(api_client: Any) -> None:
    # Applied once before, so that the API server's own writes to a new CRD's status
    # (Established...) are over: they change its resourceVersion.
    await apply_all(api_client)
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
    deployments patch, inventory create/update/delete; the mirror's finalizer and status
    patches, its copy created, read, updated and deleted in another namespace, an Event."""
    for group, resource in (
        ("apps", "deployments"),
        ("", "configmaps"),
        ("mirror.informer.dev", "configmapmirrors"),
        ("", "namespaces"),
    ):
        for verb in ("list", "watch"):  # what the Deployment (all namespaces) needs
            assert await allowed(api_client, verb, group, resource, "")
    for verb, group, resource in (
        ("list", "", "secrets"),
        ("delete", "apps", "deployments"),
        ("update", "apps", "deployments"),
        ("create", "apps", "deployments"),
        ("update", "mirror.informer.dev", "configmapmirrors"),
        ("delete", "", "namespaces"),
    ):
        assert not await allowed(api_client, verb, group, resource, namespace), (verb, resource)
    await reset_lease(api_client)
    await create_workload(api_client, namespace)
    other = f"{namespace[:50]}-copies"
    await request_json(api_client, "POST", "/api/v1/namespaces", body={"metadata": {"name": other}})
    deployment_path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    inventory_path = f"/api/v1/namespaces/{namespace}/configmaps/{INVENTORY_NAME}"
    mirror_path = MIRRORS.path("mirror", namespace=namespace)
    copy_path = f"/api/v1/namespaces/{other}/configmaps/app-config"
    try:
        async with start_runner(runner_args(sa_kubeconfig, namespace), tmp_path) as r:
            await r.wait_until(lambda: r.has("leader.acquired"))
            stamped = await eventually(
                object_at(api_client, deployment_path, lambda d: bool(config_hash(d))),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            inventory = await eventually(
                object_at(api_client, inventory_path, lambda c: "web" in c.get("data", {})),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            assert "replicas: 1" in inventory["data"]["web"]
            await request_json(
                api_client,
                "POST",
                MIRRORS.path(namespace=namespace),
                body={
                    "apiVersion": "mirror.informer.dev/v1alpha1",
                    "kind": "ConfigMapMirror",
                    "metadata": {"name": "mirror"},
                    "spec": {"source": "app-config", "targetNamespaces": [other]},
                },
            )
            await eventually(
                object_at(api_client, copy_path, lambda c: c.get("data") == {"LOG_LEVEL": "info"}),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            await eventually(
                object_at(
                    api_client, mirror_path, lambda m: m.get("status", {}).get("syncedNamespaces")
                ),
                timeout=API_WAIT,
                interval=API_POLL,
            )

            await request_json(
                api_client,
                "PATCH",
                f"/api/v1/namespaces/{namespace}/configmaps/app-config",
                body={"data": {"LOG_LEVEL": "debug"}},
                content_type="application/merge-patch+json",
            )
            rolled = await eventually(
                object_at(
                    api_client,
                    deployment_path,
                    lambda d: config_hash(d) not in (None, config_hash(stamped)),
                ),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            assert rolled["metadata"]["generation"] > stamped["metadata"]["generation"]
            await eventually(
                object_at(api_client, copy_path, lambda c: c.get("data") == {"LOG_LEVEL": "debug"}),
                timeout=API_WAIT,
                interval=API_POLL,
            )

            await request_json(
                api_client,
                "PATCH",
                deployment_path,
                body={"spec": {"replicas": 3}},
                content_type="application/merge-patch+json",
            )
            await eventually(
                object_at(
                    api_client, inventory_path, lambda c: "replicas: 3" in c["data"].get("web", "")
                ),
                timeout=API_WAIT,
                interval=API_POLL,
            )

            await request_json(api_client, "DELETE", deployment_path)
            await eventually(
                object_at(api_client, inventory_path, lambda c: c == {}),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            await request_json(api_client, "DELETE", mirror_path)
            await eventually(
                object_at(api_client, mirror_path, lambda m: m == {}),
                timeout=API_WAIT,
                interval=API_POLL,
            )
            assert (
                await eventually(
                    object_at(api_client, copy_path, lambda c: c == {}),
                    timeout=API_WAIT,
                    interval=API_POLL,
                )
                == {}
            )

            r.send_signal(signal.SIGTERM)
    finally:
        await request_json(api_client, "DELETE", f"/api/v1/namespaces/{other}")
    assert r.returncode == 0, r.stderr
    assert r.has("leader.released") and r.stderr.strip() == ""
    failures = [e for e in r.events if e.get("level") in ("warning", "error")]
    assert not failures, failures
    lease = await request_json(
        api_client,
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{DEFAULT_LEADER_ELECTION_ID}",
    )
    assert lease["spec"]["holderIdentity"] == ""  # released on SIGTERM
    events = await request_json(
        api_client, "GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    )
    synced = [e for e in events["items"] if e["reason"] == "Synced"]
    assert synced and synced[0]["reportingController"] == "configmap-mirror"


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
    MissingRule(
        "ClusterRole", "kube-informer", "mirror.informer.dev", "configmapmirrors", ("list",)
    ),
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
    ids=[
        "configmaps-watch",
        "configmapmirrors-list",
        "deployments-list-watch",
        "leases-get-update",
        "deployments-patch",
    ],
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
        async with start_runner(runner_args(sa_kubeconfig, namespace), tmp_path) as r:
            if missing.fatal:
                await r.wait_exit(30)
            else:
                await r.wait_until(
                    lambda: any(message in e.get("error", "") for e in r.event("reconcile.failed"))
                )
                r.send_signal(signal.SIGTERM)
    finally:
        await apply(api_client, original)
        await wait_allowed(api_client, True, *access)
    assert "Traceback" not in r.stderr, r.stderr
    if missing.fatal:
        lines = r.stderr.strip().splitlines()
        assert r.returncode == ExitCode.FORBIDDEN, (r.returncode, r.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), r.stderr
        print(lines[0])
    else:
        assert r.returncode == 0, r.stderr


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

        async def scraper_allowed() -> bool:  # RBAC sees the binding a moment later
            return await may_get_metrics(
                api_client, f"system:serviceaccount:{namespace}:prometheus"
            )

        await eventually(scraper_allowed, timeout=10, interval=0.05)
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
