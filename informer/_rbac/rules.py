"""Needs as RBAC rules, and the Role / ClusterRole manifests that grant them.

:func:`policy_rules` merges needs into the fewest rules that grant exactly them: verbs
are grouped per resource and names; a grant limited by name is dropped where the same
verb is granted on every name; resources of one group with the same verbs and names
share a rule. The order is stable (by group, then resource), so a regenerated file only
changes where the needs changed.

:func:`role_documents` wraps them: one ClusterRole (and ClusterRoleBinding) for all
namespaces, or one Role (and RoleBinding) per namespace plus a ClusterRole for what only
a ClusterRole can grant (cluster-scoped resources); the Leases go in a Role of their own
namespace, named ``<name>-leader-election``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .needs import Need

__all__ = ["policy_rules", "role_documents"]

_RBAC = "rbac.authorization.k8s.io/v1"


def policy_rules(needs: Iterable[Need]) -> list[dict[str, Any]]:
    """The rules granting ``needs`` (module docstring)."""
    verbs: dict[tuple[str, str, frozenset[str]], set[str]] = {}
    for need in needs:
        verbs.setdefault((need.group, need.resource, need.names), set()).update(need.verbs)
    for (group, resource, names), granted in verbs.items():
        if names:
            granted -= verbs.get((group, resource, frozenset()), set())
    shared: dict[tuple[str, tuple[str, ...], frozenset[str]], list[str]] = {}
    for (group, resource, names), granted in sorted(verbs.items(), key=_order):
        if granted:
            shared.setdefault((group, tuple(sorted(granted)), names), []).append(resource)
    rules = []
    for (group, granted_verbs, names), resources in shared.items():
        rule: dict[str, Any] = {"apiGroups": [group], "resources": resources}
        if names:
            rule["resourceNames"] = sorted(names)
        rule["verbs"] = list(granted_verbs)
        rules.append(rule)
    return rules


def _order(item: tuple[tuple[str, str, frozenset[str]], set[str]]) -> tuple[str, str, list[str]]:
    (group, resource, names), _ = item
    return (group, resource, sorted(names))


def role_documents(
    needs: Sequence[Need],
    lease_needs: Sequence[Need] = (),
    *,
    name: str,
    namespaces: Sequence[str] = (),
    lease_namespace: str | None = None,
    service_account: tuple[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The manifests granting ``needs`` (and ``lease_needs`` in ``lease_namespace``),
    bound to ``service_account`` (namespace, name) when given (module docstring)."""
    docs: list[dict[str, Any]] = []

    def add(kind: str, role_name: str, namespace: str | None, granted: Sequence[Need]) -> None:
        metadata: dict[str, Any] = {"name": role_name}
        if namespace:
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = dict(labels)
        docs.append(
            {
                "apiVersion": _RBAC,
                "kind": kind,
                "metadata": metadata,
                "rules": policy_rules(granted),
            }
        )
        if service_account is not None:
            sa_namespace, sa_name = service_account
            docs.append(
                {
                    "apiVersion": _RBAC,
                    "kind": f"{kind}Binding",
                    "metadata": dict(metadata),
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": kind,
                        "name": role_name,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}
                    ],
                }
            )

    if needs:
        if not namespaces:
            add("ClusterRole", name, None, needs)
        else:
            cluster = [n for n in needs if not n.namespaced]
            if cluster:
                add("ClusterRole", f"{name}-cluster", None, cluster)
            for namespace in namespaces:
                add("Role", name, namespace, [n for n in needs if n.namespaced])
    if lease_needs:
        if not lease_namespace:
            raise ValueError("leader election and sharding need the Lease namespace")
        add("Role", f"{name}-leader-election", lease_namespace, lease_needs)
    return docs
