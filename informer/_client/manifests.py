"""``apply_manifests``: ``kubectl apply --server-side -f`` for a YAML string.

The text is parsed completely first (a YAML error, or a document that is not an object
with ``apiVersion``, ``kind`` and ``metadata.name``, applies nothing), then every document
is server-side applied in order, so a Namespace or a ServiceAccount listed first exists
before what uses it. Empty documents are skipped; a ``kind: List`` (``v1/List``) applies
its ``items`` in order. A namespaced object without ``metadata.namespace`` goes into
``namespace=``; without one, it is an error (``ValueError`` naming the document) before
that document is sent. A cluster-scoped object is applied without a namespace (one it
sets is dropped, as kubectl does). A failure
stops at that document: the ones before it stay applied (as with kubectl).

Custom resources whose CustomResourceDefinition is in the same text are resolved once
the definition is served; apply the definitions first and wait until they are served
when both come together.
"""

from __future__ import annotations

from typing import Any

import yaml

from .._meta.types import Obj
from .protocol import Writer

__all__ = ["apply_manifests", "parse_manifests"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_manifests(text: str) -> list[Obj]:
    """The objects of a multi-document YAML string, in order (``List`` items expanded).

    Raises ``ValueError`` naming the document (1-based) that is invalid YAML or not an
    object with ``apiVersion``, ``kind`` and ``metadata.name``.
    """
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))  # a safe loader
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"manifests are not valid YAML: {detail}") from exc
    objects: list[Obj] = []
    for index, doc in enumerate(documents, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"document {index} is a {type(doc).__name__}, not an object")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                objects.append(_checked(item, f"document {index} (List item)"))
        else:
            objects.append(_checked(doc, f"document {index}"))
    return objects


def _checked(doc: Any, where: str) -> Obj:
    if not isinstance(doc, dict):
        raise ValueError(f"{where} is a {type(doc).__name__}, not an object")
    meta = doc.get("metadata")
    missing = [
        field
        for field, ok in (
            ("apiVersion", isinstance(doc.get("apiVersion"), str) and doc["apiVersion"]),
            ("kind", isinstance(doc.get("kind"), str) and doc["kind"]),
            ("metadata.name", isinstance(meta, dict) and meta.get("name")),
        )
        if not ok
    ]
    if missing:
        raise ValueError(
            f"{where} (kind={doc.get('kind')!r}) has no {', '.join(missing)}: "
            "server-side apply needs apiVersion, kind and metadata.name"
        )
    return doc


async def apply_manifests(
    client: Writer,
    text: str,
    *,
    namespace: str | None = None,
    force: bool = False,
    field_manager: str | None = None,
) -> list[Obj]:
    """Server-side apply each object of ``text`` in order; the server's objects.

    ``namespace`` is given to namespaced objects that have none; ``force`` and
    ``field_manager`` are :meth:`~informer.Client.apply`'s.
    """
    applied: list[Obj] = []
    for index, doc in enumerate(parse_manifests(text), 1):
        resource = await client.resource_for(doc)
        meta = doc["metadata"]
        if resource.namespaced and not meta.get("namespace"):
            if namespace is None:
                raise ValueError(
                    f"object {index} ({doc['kind']} {meta['name']!r}) is namespaced but "
                    "sets no metadata.namespace: pass namespace= to apply_manifests"
                )
            doc = {**doc, "metadata": {**meta, "namespace": namespace}}
        elif not resource.namespaced and "namespace" in meta:  # kubectl ignores it too
            doc = {**doc, "metadata": {k: v for k, v in meta.items() if k != "namespace"}}
        applied.append(
            await client.apply(doc, force=force, field_manager=field_manager, resource=resource)
        )
    return applied
