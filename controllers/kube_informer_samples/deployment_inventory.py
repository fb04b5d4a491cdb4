"""Deployment inventory: one ConfigMap per namespace describing its Deployments.

Contract
--------
For every namespace holding Deployments, the controller keeps a ConfigMap named
``deployment-inventory`` (:data:`INVENTORY_NAME`) whose ``data`` has one key per Deployment
(its name) and, as value, a YAML document with that Deployment's ``replicas``, ``images``,
``containers`` / ``initContainers`` (name, image, ``imagePullPolicy``), ``labels`` and
``selector``. The text is deterministic (keys sorted, containers in spec order), so an
unchanged namespace never causes a write.

- **Level-triggered on namespace keys.** The work-queue key is the namespace name. Every
  Deployment event maps to its namespace; so does every event of an inventory ConfigMap
  (watched with the field selector ``metadata.name=deployment-inventory``), so an inventory
  deleted by hand is recreated and one edited by hand is repaired within seconds. The
  reconciler reads the Deployments from the informer's cache and compares with the cached
  inventory; it writes only when they differ.
- **Create-or-update from a YAML template.** :data:`INVENTORY_TEMPLATE` is rendered (with
  :class:`string.Template`; every value is quoted as a JSON string, which YAML reads
  verbatim, so no value can inject YAML) and loaded; ``data`` and ``ownerReferences`` are
  filled in code. An inventory the cache holds is compared with the desired one and,
  when they differ, replaced (``Client.update``: PUT at its cached ``resourceVersion``).
  A 409 means the cache was stale: the key is requeued (rate-limited) and recomputed.
  One the cache does not hold (yet) goes through ``Client.create_or_update``, which reads
  the API server and creates it, or updates it when it exists already.
  The controller owns ``data`` (``binaryData`` is dropped), the two labels of the template
  and ``ownerReferences``; other labels and annotations added by hand are kept.
- **Owner references.** The inventory lists every Deployment it describes as a
  non-controller owner (``apiVersion: apps/v1``, ``kind: Deployment``, ``name``, ``uid``).
  There is no per-namespace object that "owns" an inventory (a Namespace owner would add
  nothing: deleting a namespace deletes its content anyway); the Deployments are what it
  exists for, so Kubernetes' garbage collector deletes it once the last one is gone.
- **Empty namespaces.** The controller itself deletes the inventory (with a UID
  precondition) when the namespace has no Deployment left, which is what the garbage
  collector would do, so the result is the same on clusters without one (the test control
  plane runs no controller-manager).
- A namespace being terminated refuses creations: the key is dropped with a log line.

Logs (structlog, ``kube_informer_samples.deployment_inventory``): ``inventory.created``,
``inventory.updated``, ``inventory.deleted`` (info: ``namespace``, ``deployments``).
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import structlog
import yaml

from informer import (
    Conflict,
    Controller,
    Forbidden,
    Obj,
    OperationResult,
    Result,
    SharedIndexInformer,
    labels_of,
    name_of,
    namespace_of,
    uid_of,
)
from informer.rbac import Access
from informer.resources import CONFIGMAPS, DEPLOYMENTS

__all__ = [
    "INVENTORY_LABELS",
    "INVENTORY_NAME",
    "INVENTORY_TEMPLATE",
    "DeploymentInventory",
    "deployment_entry",
    "desired_inventory",
    "render_template",
]

log = structlog.get_logger(__name__)

INVENTORY_NAME = "deployment-inventory"
"""Name of the inventory ConfigMap in each namespace."""

INVENTORY_LABELS: Mapping[str, str] = {
    "app.kubernetes.io/name": "deployment-inventory",
    "app.kubernetes.io/managed-by": "kube-informer",
}
"""Labels the template puts on every inventory (and the controller keeps there)."""

INVENTORY_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}
  namespace: ${namespace}
  labels:
    app.kubernetes.io/name: ${app}
    app.kubernetes.io/managed-by: ${manager}
data: {}
"""
"""The inventory ConfigMap as a YAML template; see :func:`render_template`."""


def render_template(template: str, **values: str) -> Obj:
    """Substitute ``${name}`` placeholders with JSON-quoted ``values`` and load the YAML.

    JSON strings are valid YAML scalars, so a value is always read back as exactly that
    string. Raises ``KeyError`` for a placeholder without a value.
    """
    rendered = string.Template(template).substitute(
        {key: json.dumps(value) for key, value in values.items()}
    )
    loaded = yaml.safe_load(rendered)
    if not isinstance(loaded, dict):
        raise ValueError("the template does not describe an object")
    return loaded


def deployment_entry(deployment: Obj) -> str:
    """The inventory text (YAML, keys sorted) describing one Deployment."""
    spec = deployment.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}

    def describe(containers: Iterable[Obj]) -> list[dict[str, Any]]:
        return [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imagePullPolicy": c.get("imagePullPolicy"),
            }
            for c in containers
        ]

    containers = describe(pod_spec.get("containers") or [])
    init_containers = describe(pod_spec.get("initContainers") or [])
    images: list[str] = []
    for c in [*init_containers, *containers]:
        if c["image"] and c["image"] not in images:
            images.append(c["image"])
    entry: dict[str, Any] = {
        "replicas": spec.get("replicas", 1),
        "images": images,
        "containers": containers,
        "labels": dict(labels_of(deployment)),
        "selector": spec.get("selector") or {},
    }
    if init_containers:
        entry["initContainers"] = init_containers
    return yaml.safe_dump(entry, sort_keys=True, default_flow_style=False)


def owner_reference(deployment: Obj) -> Obj:
    """A non-controller owner reference to ``deployment``."""
    return {
        "apiVersion": DEPLOYMENTS.api_version,
        "kind": DEPLOYMENTS.kind,
        "name": name_of(deployment),
        "uid": uid_of(deployment),
    }


def desired_inventory(namespace: str, deployments: Sequence[Obj]) -> Obj:
    """The inventory ConfigMap for ``deployments`` of ``namespace`` (a new dict)."""
    inventory = render_template(
        INVENTORY_TEMPLATE,
        name=INVENTORY_NAME,
        namespace=namespace,
        app=INVENTORY_LABELS["app.kubernetes.io/name"],
        manager=INVENTORY_LABELS["app.kubernetes.io/managed-by"],
    )
    ordered = sorted(deployments, key=name_of)
    inventory["data"] = {name_of(d): deployment_entry(d) for d in ordered}
    inventory["metadata"]["ownerReferences"] = [owner_reference(d) for d in ordered]
    return inventory


def _own(inventory: Obj, desired: Obj) -> None:
    """Set, in place, the fields the controller owns to ``desired``'s: ``data`` (without
    ``binaryData``), the template's labels (others are kept) and ``ownerReferences``."""
    inventory.pop("binaryData", None)
    inventory["data"] = desired["data"]
    meta = inventory.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **desired["metadata"]["labels"]}
    meta["ownerReferences"] = desired["metadata"]["ownerReferences"]


def _namespace_key(obj: Obj) -> list[str]:
    namespace = namespace_of(obj)
    return [namespace] if namespace else []


class DeploymentInventory(Controller):
    """Maintains the ``deployment-inventory`` ConfigMap of every namespace with Deployments.

    Reconciles namespace keys; see the module docstring for the contract.
    """

    name: ClassVar[str] = "deployment-inventory"
    writes = (  # its ConfigMap (RBAC cannot limit a create by name)
        Access(CONFIGMAPS, "create"),
        Access(CONFIGMAPS, "update", "delete", names=[INVENTORY_NAME]),
    )

    deployments: SharedIndexInformer
    inventories: SharedIndexInformer

    def setup(self) -> None:
        self.deployments = self.watch(DEPLOYMENTS, mapper=_namespace_key)
        self.inventories = self.watch(
            CONFIGMAPS, mapper=_namespace_key, field_selector=f"metadata.name={INVENTORY_NAME}"
        )

    async def reconcile(self, key: str) -> Result | None:
        namespace = key
        deployments = self.deployments.lister().list(namespace=namespace)
        current = self.inventories.lister().get(INVENTORY_NAME, namespace=namespace)
        try:
            if not deployments:
                if current is not None:
                    await self._delete(namespace, current)
                return None
            desired = desired_inventory(namespace, deployments)
            if current is None:  # not cached (yet): create it, or update the server's copy
                _, result = await self.client.create_or_update(desired, lambda i: _own(i, desired))
            else:  # update at the cached resourceVersion: 409 Conflict when the cache is stale
                body = copy.deepcopy(current)
                _own(body, desired)
                if body == current:
                    return None
                body["metadata"].pop("managedFields", None)
                await self.client.update(body)
                result = OperationResult.UPDATED
        except Conflict:
            # Our cached inventory is older than the server's: recompute from a fresher cache.
            log.debug("inventory.conflict", namespace=namespace)
            return Result(requeue=True)
        except Forbidden as exc:
            if "NamespaceTerminating" not in str(exc.body):
                raise
            log.info("inventory.namespace_terminating", namespace=namespace)
            return None
        if result is not OperationResult.UNCHANGED:
            names = sorted(desired["data"])
            log.info(f"inventory.{result}", namespace=namespace, deployments=names)
        return None

    async def _delete(self, namespace: str, current: Obj) -> None:
        deleted = await self.client.delete(
            CONFIGMAPS, INVENTORY_NAME, namespace=namespace, uid=uid_of(current), missing_ok=True
        )
        if deleted is not None:
            log.info("inventory.deleted", namespace=namespace, deployments=[])
