"""Synthetic, realistic objects: a 1.8 KB Deployment (with managedFields) and a 0.3 KB
ConfigMap, as the API server would send them; and their creatable forms for the control
plane (``bench/clientgo/main.go`` mirrors :func:`deployment_spec` / :func:`configmap_spec`).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

KINDS = ("deployments", "configmaps")


def _deployment_body(name: str) -> tuple[dict[str, str], Obj]:
    labels = {"app": name, "tier": "frontend", "team": "payments"}
    spec: Obj = {
        "replicas": 3,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example.com/payments/web:1.24.3",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
            },
        },
    }
    return labels, spec


_MANAGED_FIELDS_SPEC: Obj = {
    "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}, "f:team": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}, "f:ports": {}}
                }
            },
        },
    },
}
_MANAGED_FIELDS_STATUS: Obj = {
    "f:status": {
        "f:availableReplicas": {},
        "f:conditions": {},
        "f:observedGeneration": {},
        "f:readyReplicas": {},
        "f:replicas": {},
        "f:updatedReplicas": {},
    }
}


def deployment(i: int, rv: int, namespace: str = "default") -> Obj:
    """A Deployment as served (status, two managedFields entries): ~1.8 KB of JSON."""
    name = f"web-{i:06d}"
    labels, spec = _deployment_body(name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"5d1e0f3a-9c3b-4a8e-b7a4-{i:012d}",
            "resourceVersion": str(rv),
            "generation": 3,
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2026-11-25T10:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _MANAGED_FIELDS_SPEC,
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2026-11-25T10:00:05Z",
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": _MANAGED_FIELDS_STATUS,
                },
            ],
        },
        "spec": spec,
        "status": {
            "observedGeneration": 3,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": "2026-11-25T10:00:05Z",
                    "lastTransitionTime": "2026-11-25T10:00:05Z",
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                }
            ],
        },
    }


def configmap(i: int, rv: int, namespace: str = "default") -> Obj:
    """A ConfigMap as served (no managedFields): ~0.3 KB of JSON."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i:06d}",
            "namespace": namespace,
            "uid": f"5d1e0f3a-9c3b-4a8e-b7a4-{i:012d}",
            "resourceVersion": str(rv),
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "labels": {"app": "bench", "shard": str(i % 16)},
        },
        "data": {"key": "value", "other": "x" * 40},
    }


def served(kind: str, i: int, rv: int, namespace: str = "default") -> Obj:
    return deployment(i, rv, namespace) if kind == "deployments" else configmap(i, rv, namespace)


def deployment_spec(i: int) -> Obj:
    """The creatable form of :func:`deployment` (what a POST sends)."""
    name = f"web-{i:06d}"
    labels, spec = _deployment_body(name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        },
        "spec": spec,
    }


def configmap_spec(i: int) -> Obj:
    """The creatable form of :func:`configmap`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:06d}", "labels": {"app": "bench", "shard": str(i % 16)}},
        "data": {"key": "value", "other": "x" * 40},
    }
