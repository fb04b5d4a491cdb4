"""Roles generated from controllers: needs, merged rules, Role/ClusterRole manifests,
the command and its --check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from kube_informer_samples import ConfigMapMirror, ConfigMapReloader, DeploymentInventory
from kube_informer_samples.deployment_inventory import INVENTORY_NAME

from informer import Controller, owner_key
from informer.rbac import Access, controller_needs, lease_needs, policy_rules, role_documents
from informer.rbac._cli import main
from informer.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES, PODS, SECRETS

ROOT = Path(__file__).resolve().parents[2]


def flat(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(group, resource, verb, resourceName or '') of every grant."""
    return {
        (g, r, v, n)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
        for n in rule.get("resourceNames") or [""]
    }


class Everything(Controller):
    writes: ClassVar[tuple[Access, ...]] = (
        Access(DEPLOYMENTS, "patch", subresource="status"),
        Access(CONFIGMAPS, "update", names=["a", "b"]),
        Access(CONFIGMAPS, "update", "delete", names=["b"]),
        Access(CONFIGMAPS, "update"),
    )
    reads: ClassVar[tuple[Access, ...]] = (Access(SECRETS, "get", names=["token"]),)

    def setup(self) -> None:
        self.watch(DEPLOYMENTS)
        self.owns(CONFIGMAPS)
        self.watch(PODS, metadata_only=True, mapper=owner_key("Deployment", group="apps"))
        self.watch(NAMESPACES, mapper=lambda ns: [])

    async def reconcile(self, key: str) -> None: ...


def test_needs_cover_watches_metadata_only_watches_writes_reads_and_events() -> None:
    assert flat(policy_rules(controller_needs(Everything))) == {
        *{("apps", "deployments", v, "") for v in ("get", "list", "watch")},
        *{("", "configmaps", v, "") for v in ("get", "list", "watch", "update")},
        *{("", "pods", v, "") for v in ("get", "list", "watch")},  # metadata-only
        *{("", "namespaces", v, "") for v in ("get", "list", "watch")},
        ("apps", "deployments/status", "patch", ""),
        ("", "configmaps", "delete", "b"),  # update by name: granted for all names already
        ("", "secrets", "get", "token"),
        ("events.k8s.io", "events", "create", ""),
        ("events.k8s.io", "events", "patch", ""),
    }


def test_rules_share_a_rule_per_group_verbs_and_names() -> None:
    rules = policy_rules(controller_needs(Everything))
    pods = next(r for r in rules if "pods" in r["resources"])
    assert pods == {
        "apiGroups": [""],
        "resources": ["namespaces", "pods"],
        "verbs": ["get", "list", "watch"],
    }
    assert rules == policy_rules(controller_needs(Everything))  # stable


def test_a_controller_that_declares_no_writes_is_refused() -> None:
    class Silent(Controller):
        async def reconcile(self, key: str) -> None: ...

    with pytest.raises(ValueError, match=r"Silent does not declare its writes: set writes ="):
        controller_needs(Silent)


def test_namespaced_roles_leave_cluster_scoped_resources_to_a_cluster_role() -> None:
    docs = role_documents(
        controller_needs(Everything),
        name="op",
        namespaces=["a", "b"],
        service_account=("ops", "op"),
    )
    assert [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs] == [
        ("ClusterRole", "op-cluster", None),
        ("ClusterRoleBinding", "op-cluster", None),
        ("Role", "op", "a"),
        ("RoleBinding", "op", "a"),
        ("Role", "op", "b"),
        ("RoleBinding", "op", "b"),
    ]
    assert {r[1] for r in flat(docs[0]["rules"])} == {"namespaces"}
    assert "namespaces" not in {r[1] for r in flat(docs[2]["rules"])}
    assert docs[3]["subjects"] == [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}]


def test_leases_of_leader_election_and_sharding() -> None:
    [role] = role_documents(
        [],
        lease_needs(leader_election_id="op-lock", sharding=False),
        name="op",
        lease_namespace="ops",
    )
    assert (role["kind"], role["metadata"]["name"]) == ("Role", "op-leader-election")
    assert flat(role["rules"]) == {
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", "op-lock"),
        ("coordination.k8s.io", "leases", "update", "op-lock"),
    }
    sharded = lease_needs(leader_election_id=None, sharding=True)
    assert {v for r in flat(policy_rules(sharded)) for v in [r[2]]} == {
        "get",
        "list",
        "create",
        "update",
        "delete",
    }


def test_the_samples_need_what_they_declare() -> None:
    needs = [n for c in (ConfigMapReloader, DeploymentInventory) for n in controller_needs(c)]
    grants = flat(policy_rules(needs))
    assert ("", "configmaps", "update", INVENTORY_NAME) in grants
    assert ("", "configmaps", "update", "") not in grants  # the inventory's by name only
    mirror = flat(policy_rules(controller_needs(ConfigMapMirror)))
    assert ("mirror.informer.dev", "configmapmirrors/status", "patch", "") in mirror


GENERATED = [
    "deploy/cluster/rbac.yaml",
    "deploy/namespaced/watched-namespace-rbac.yaml",
    "deploy/base/leader-election-rbac.yaml",
]


def commands() -> dict[str, list[str]]:
    """The Makefile's check-generated commands for deploy/ (what `make test` runs), its
    variables expanded."""
    lines = (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines()
    variables = {}
    for line in lines:
        name, sep, value = line.partition(" := ")
        if sep and name.isidentifier():
            variables[name] = value
    found = {}
    for line in lines:
        for name, value in variables.items():
            line = line.replace(f"$({name})", value)
        words = line.split()
        if words[1:4] == ["-m", "informer.rbac", "generate"]:
            found[words[words.index("-o") + 1]] = words[3:]
    return found


@pytest.mark.parametrize("path", GENERATED, ids=str)
def test_deploys_roles_are_current(
    path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    argv = commands()[path]
    assert "--check" in argv
    assert main(argv) == 0, capsys.readouterr().err


def test_check_fails_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "role.yaml")
    argv = ["generate", "kube_informer_samples.configmap_reloader:ConfigMapReloader", "-o", out]
    assert main(argv) == 0
    assert main([*argv, "--check"]) == 0
    Path(out).write_text(Path(out).read_text().replace("- patch\n", ""))
    assert main([*argv, "--check"]) == 1
    assert "+      - patch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate"], "nothing to grant"),
        (["generate", "no_such_mod_x:C"], "no_such_mod_x"),
        (["generate", "--leader-elect"], "need the Lease namespace"),
        (["generate", "kube_informer_samples", "--label", "oops"], "expected KEY=VALUE"),
    ],
    ids=["nothing", "target", "lease-namespace", "label"],
)
def test_unusable_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
