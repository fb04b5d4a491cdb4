"""ConfigMap reloader: roll Deployments whose ConfigMaps' data changed.

Contract
--------
A Deployment **opts in** with the annotation ``informer.dev/reload: "true"`` on its own
``metadata`` (case-insensitive ``true``; anything else, or no annotation, opts out). For
every opted-in Deployment that **consumes** ConfigMaps, the reloader keeps the pod-template
annotation ``informer.dev/config-hash`` equal to a SHA-256 over those ConfigMaps' ``data``
and ``binaryData``. Changing a pod-template annotation changes the template, so the
Deployment controller rolls the Pods once per change.

A Deployment consumes a ConfigMap when its pod template references it from any container
or init container (``env[].valueFrom.configMapKeyRef``, ``envFrom[].configMapRef``) or from
a volume (``volumes[].configMap``, ``volumes[].projected.sources[].configMap``).

- **Exactly once.** The reconciler is level-triggered on Deployment keys: it recomputes the
  hash from the informers' caches and patches only when the annotation differs, so any
  number of events for one data change produce one patch (and one rollout).
- **Data only.** Labels, annotations and other metadata of a ConfigMap are not hashed: a
  label-only change rolls nothing. Keys are hashed with their values, and each ConfigMap
  with its name, so renaming a reference also rolls.
- **Untouched.** Deployments that do not opt in, or consume no ConfigMap, are never written.
  Opting out leaves an existing hash annotation in place (removing it would roll again).
- **First sight.** An opted-in Deployment without the annotation gets it at once (one
  rollout when it opts in or is created; none afterwards unless the data changes).
- **Missing ConfigMaps.** When a ConfigMap the Deployment *requires* is missing (deleted,
  or not created yet) the Deployment is left as it is and ``configmap.missing`` is logged
  (warning, with the ConfigMap's ``key`` and the ``deployment``): new Pods could not start
  without it, and running Pods keep the data they loaded. When it comes back, the hash is
  recomputed: the same data rolls nothing, other data rolls once. A reference marked
  ``optional: true`` everywhere it appears is hashed as *absent* instead, so deleting (or
  creating) an optional ConfigMap rolls the Deployment once, as Pods then see a change.
- **Writes** are strategic-merge patches of ``spec.template.metadata.annotations`` only.

How events become keys: the Deployments informer carries the index
:data:`CONFIGMAP_INDEX` (``"ns/configmap"`` -> Deployments consuming it, all of them,
opted in or not, so other controllers sharing the informer may use it too); a ConfigMap
event maps to the keys filed under its own key. Deployment events map to their own key.

Logs (structlog, ``kube_informer_samples.configmap_reloader``): ``deployment.rolled``
(info: ``key``, ``hash``, ``previous``, ``configmaps``), ``configmap.missing`` (warning:
``key``, ``deployment``). ConfigMap contents are never logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import orjson
import structlog

from informer import (
    Controller,
    NotFound,
    Obj,
    Result,
    SharedIndexInformer,
    annotations_of,
    meta_namespace_key,
    namespace_of,
)
from informer.meta import split_meta_namespace_key
from informer.rbac import Access
from informer.resources import CONFIGMAPS, DEPLOYMENTS

__all__ = [
    "CONFIGMAP_INDEX",
    "CONFIG_HASH_ANNOTATION",
    "RELOAD_ANNOTATION",
    "ConfigMapReloader",
    "config_hash",
    "configmaps_index",
    "consumed_configmaps",
    "is_opted_in",
    "template_hash",
]

log = structlog.get_logger(__name__)

RELOAD_ANNOTATION = "informer.dev/reload"
"""Deployment annotation; ``"true"`` opts the Deployment in."""

CONFIG_HASH_ANNOTATION = "informer.dev/config-hash"
"""Pod-template annotation holding the hash of the consumed ConfigMaps' data."""

CONFIGMAP_INDEX = "deployments-by-configmap"
"""Index on the Deployments informer: ``"ns/configmap"`` -> Deployments consuming it."""

_EMPTY: Mapping[str, Any] = {}


def is_opted_in(deployment: Obj) -> bool:
    """Whether the Deployment carries ``informer.dev/reload: "true"``."""
    return str(annotations_of(deployment).get(RELOAD_ANNOTATION, "")).lower() == "true"


def consumed_configmaps(deployment: Obj) -> dict[str, bool]:
    """ConfigMaps the pod template references: ``name -> optional``.

    ``optional`` is True only when every reference to that ConfigMap is marked
    ``optional: true``. Malformed parts are skipped (this runs inside an index function,
    which must not raise).
    """
    found: dict[str, bool] = {}

    def note(ref: Any) -> None:
        if not isinstance(ref, Mapping):
            return
        name = ref.get("name")
        if not isinstance(name, str) or not name:
            return
        optional = ref.get("optional") is True
        found[name] = found.get(name, True) and optional

    spec = _mapping(_mapping(_mapping(deployment.get("spec")).get("template")).get("spec"))
    for field in ("initContainers", "containers"):
        for container in _sequence(spec.get(field)):
            container = _mapping(container)
            for env in _sequence(container.get("env")):
                note(_mapping(_mapping(env).get("valueFrom")).get("configMapKeyRef"))
            for env_from in _sequence(container.get("envFrom")):
                note(_mapping(env_from).get("configMapRef"))
    for volume in _sequence(spec.get("volumes")):
        volume = _mapping(volume)
        note(volume.get("configMap"))
        for source in _sequence(_mapping(volume.get("projected")).get("sources")):
            note(_mapping(source).get("configMap"))
    return found


def configmaps_index(deployment: Obj) -> list[str]:
    """Index function: the ``"ns/name"`` keys of the ConfigMaps a Deployment consumes."""
    namespace = namespace_of(deployment)
    if namespace is None:
        return []
    return [f"{namespace}/{name}" for name in sorted(consumed_configmaps(deployment))]


def config_hash(configmaps: Mapping[str, Obj | None]) -> str:
    """SHA-256 (hex) over ``name -> ConfigMap`` (``None``: an absent optional ConfigMap).

    Only ``data`` and ``binaryData`` of each ConfigMap enter the hash, with its name;
    the result does not depend on the order of the mapping or of the keys.
    """
    canonical = [
        [name, None if cm is None else [cm.get("data") or {}, cm.get("binaryData") or {}]]
        for name, cm in sorted(configmaps.items())
    ]
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def template_hash(deployment: Obj) -> str | None:
    """The Deployment's current ``informer.dev/config-hash`` pod-template annotation."""
    template = _mapping(_mapping(deployment.get("spec")).get("template"))
    value = _mapping(_mapping(template.get("metadata")).get("annotations")).get(
        CONFIG_HASH_ANNOTATION
    )
    return value if isinstance(value, str) else None


class ConfigMapReloader(Controller):
    """Keeps ``informer.dev/config-hash`` on opted-in Deployments' pod templates current.

    Reconciles Deployment keys (``"ns/name"``); see the module docstring for the contract.
    """

    name: ClassVar[str] = "configmap-reloader"
    writes = (Access(DEPLOYMENTS, "patch"),)  # the pod template's config-hash annotation

    deployments: SharedIndexInformer
    configmaps: SharedIndexInformer

    def setup(self) -> None:
        self.deployments = self.watch(DEPLOYMENTS, indexers={CONFIGMAP_INDEX: configmaps_index})
        self.configmaps = self.watch(CONFIGMAPS, mapper=self._consumers_of)

    def _consumers_of(self, configmap: Obj) -> Iterable[str]:
        """Keys of the Deployments consuming ``configmap`` (from the index)."""
        return self.deployments.indexer.index_keys(CONFIGMAP_INDEX, meta_namespace_key(configmap))

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_meta_namespace_key(key)
        deployment = self.deployments.lister().get(name, namespace=namespace)
        if deployment is None or namespace is None or not is_opted_in(deployment):
            return None
        references = consumed_configmaps(deployment)
        if not references:
            return None

        configmaps: dict[str, Obj | None] = {}
        missing: list[str] = []
        lister = self.configmaps.lister()
        for cm_name, optional in sorted(references.items()):
            configmap = lister.get(cm_name, namespace=namespace)
            if configmap is None and not optional:
                missing.append(cm_name)
            configmaps[cm_name] = configmap
        if missing:
            for cm_name in missing:
                log.warning("configmap.missing", key=f"{namespace}/{cm_name}", deployment=key)
            return None

        wanted = config_hash(configmaps)
        current = template_hash(deployment)
        if wanted == current:
            return None
        patch = {
            "spec": {"template": {"metadata": {"annotations": {CONFIG_HASH_ANNOTATION: wanted}}}}
        }
        try:
            await self.client.patch(
                DEPLOYMENTS, name, patch, namespace=namespace, patch_type="strategic"
            )
        except NotFound:
            return None  # deleted meanwhile: its delete event ends the story
        log.info(
            "deployment.rolled",
            key=key,
            hash=wanted,
            previous=current,
            configmaps=sorted(configmaps),
        )
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
