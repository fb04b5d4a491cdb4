"""ConfigMapMirror (``mirror.informer.dev/v1alpha1``): copies the ConfigMap ``spec.source``
of its namespace into ``spec.targetNamespaces`` or the namespaces matching
``spec.namespaceSelector`` (not its own, nor terminating ones), labelled with the mirror's
uid; leaves a same-named ConfigMap it did not make alone; repairs copies; deletes them with
the source, a target, or the mirror (its finalizer). Run it for all namespaces, its CRD
(``CRD_PATH``) installed. Contract in detail: docs/guides/operators.md, "The
ConfigMapMirror sample".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import ClassVar

from informer import (
    Controller,
    Forbidden,
    NotFound,
    Obj,
    OperationResult,
    Resource,
    is_being_deleted,
    labels_of,
    name_of,
    namespace_of,
    set_condition,
    uid_of,
)
from informer.cache import IndexFunc
from informer.meta import format_label_selector, parse_label_selector
from informer.predicates import generation_changed
from informer.rbac import Access
from informer.resources import CONFIGMAPS, NAMESPACES

MIRRORS = Resource("mirror.informer.dev", "v1alpha1", "configmapmirrors", kind="ConfigMapMirror")
CRD_PATH = Path(__file__).parent / "crds" / "configmapmirror.yaml"
FINALIZER = "mirror.informer.dev/copies"
MIRROR_LABEL = "mirror.informer.dev/mirror-uid"


class ConfigMapMirror(Controller):
    name: ClassVar[str] = "configmap-mirror"
    finalizer = FINALIZER  # copies live in other namespaces: finalize() deletes them
    writes = (
        Access(CONFIGMAPS, "create", "update", "delete"),  # the copies
        Access(MIRRORS, "patch"),  # its finalizer
        Access(MIRRORS, "patch", subresource="status"),
    )

    def setup(self) -> None:
        by: dict[str, IndexFunc] = {
            "uid": lambda m: [uid_of(m) or ""],
            "source": lambda m: [f"{namespace_of(m)}/{m['spec']['source']}"],
        }
        # generation_changed: its own status (and finalizer) writes do not reconcile it
        self.mirrors = self.watch(MIRRORS, predicate=generation_changed, indexers=by)
        self.configmaps = self.watch(CONFIGMAPS, mapper=self.mirrors_of)
        self.namespaces = self.watch(NAMESPACES, mapper=self.mirrors_targeting)

    def mirrors_of(self, cm: Obj) -> list[str]:  # a source: its mirrors; a copy: its maker
        mirrors, uid = self.mirrors.lister(), labels_of(cm).get(MIRROR_LABEL, "")
        source = f"{namespace_of(cm)}/{name_of(cm)}"
        return [*mirrors.index_keys("source", source), *mirrors.index_keys("uid", uid)]

    def mirrors_targeting(self, ns: Obj) -> list[str]:  # a namespace: the mirrors it concerns
        mirrors = self.mirrors.lister().list()
        return [f"{namespace_of(m)}/{name_of(m)}" for m in mirrors if self.targets(m, [ns])]

    def targets(self, mirror: Obj, namespaces: list[Obj]) -> list[str]:
        spec = mirror["spec"]
        selector = spec.get("namespaceSelector")
        match = parse_label_selector(format_label_selector(selector)) if selector else None
        return sorted(
            name_of(ns)
            for ns in namespaces
            if (match(labels_of(ns)) if match else name_of(ns) in spec.get("targetNamespaces", ()))
            and name_of(ns) != namespace_of(mirror)
            and not is_being_deleted(ns)
        )

    async def finalize(self, mirror: Obj) -> None:  # listed from the API: copies not cached yet
        mine = f"{MIRROR_LABEL}={uid_of(mirror)}"
        for cm in await self.client.list(CONFIGMAPS, label_selector=mine, cached=False):
            await self.delete(cm)

    async def reconcile(self, key: str) -> None:
        mirror = self.mirrors.lister().get_by_key(key)
        if mirror is None:
            return
        spec, mine = mirror["spec"], f"{MIRROR_LABEL}={uid_of(mirror)}"
        source = self.configmaps.lister().get(spec["source"], namespace=namespace_of(mirror))
        targets = self.targets(mirror, self.namespaces.lister().list()) if source else []
        done = {ns: await self.copy(mirror, source, ns) for ns in targets if source}
        synced = [ns for ns, result in done.items() if result]
        copies = self.configmaps.lister().list(label_selector=mine)
        stale = [c for c in copies if namespace_of(c) not in synced or name_of(c) != spec["source"]]
        removed = [await self.delete(c) for c in stale]
        skipped = ", ".join(ns for ns, result in done.items() if not result)
        if source is None:
            ready, reason, message = False, "SourceMissing", f"no ConfigMap {spec['source']}"
        elif skipped:
            ready, reason, message = False, "NotSynced", f"{skipped}: name taken or terminating"
        else:
            ready, reason, message = True, "Synced", f"copied to {len(synced)} namespaces"
        gen, status = mirror["metadata"]["generation"], copy.deepcopy(mirror.get("status", {}))
        status.update(observedGeneration=gen, syncedNamespaces=synced)
        new = {**mirror, "status": status}
        changed = set_condition(
            new, "Ready", ready, reason=reason, message=message, observed_generation=gen
        )
        if changed and not source:
            self.recorder.event(mirror, type="Warning", reason="SourceMissing", note=message)
        if status != mirror.get("status"):
            ns, holder = namespace_of(mirror), {"status": status}
            await self.client.patch(
                MIRRORS, name_of(mirror), holder, namespace=ns, subresource="status"
            )
        written = [ns for ns in synced if done[ns] != OperationResult.UNCHANGED]
        if written or removed:
            note = f"copied to [{', '.join(written)}], removed from [{', '.join(removed)}]"
            self.recorder.event(mirror, reason="Synced", note=note)

    async def copy(self, mirror: Obj, source: Obj, namespace: str) -> OperationResult | None:
        """Create or update the copy in ``namespace``; None when it cannot be written."""

        def mutate(cm: Obj) -> None:
            labels = cm["metadata"].setdefault("labels", {})
            if "resourceVersion" in cm["metadata"] and labels.get(MIRROR_LABEL) != uid_of(mirror):
                raise _NotOurs  # a ConfigMap of that name we did not make
            labels[MIRROR_LABEL] = uid_of(mirror)
            cm["data"], cm["binaryData"] = source.get("data", {}), source.get("binaryData", {})

        meta = {"name": name_of(source), "namespace": namespace}
        stub = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
        try:
            return (await self.client.create_or_update(stub, mutate, resource=CONFIGMAPS))[1]
        except (_NotOurs, NotFound):  # not ours, or the namespace is gone
            return None
        except Forbidden as exc:  # a terminating namespace refuses creations
            if not exc.has_cause("NamespaceTerminating"):
                raise
            return None

    async def delete(self, cm: Obj) -> str:
        ns = namespace_of(cm) or ""
        await self.client.delete(CONFIGMAPS, name_of(cm), namespace=ns, missing_ok=True)
        return ns


class _NotOurs(Exception):
    pass
