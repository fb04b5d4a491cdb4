"""``install_crds``: CustomResourceDefinitions installed and served before a test goes on
(controller-runtime envtest's ``InstallCRDs`` with ``WaitForCRDs``).

An ``Established`` CRD is not yet usable: for a moment its resources still answer 404
(the handler chain catches up), then 429 "storage is (re)initializing" (the watch cache
of the new resource starting), and discovery may lag behind both. :func:`install_crds`
server-side applies each definition (``force=True``: installing again, changed or not,
takes the fields over) and returns once, for every served version of every definition,
discovery lists the resource (what a :class:`~informer.Client` maps kinds with) and a
``list`` answers 200, retrying 404, 429 and 503 answers within ``timeout`` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import yaml

from .._client.client import Client
from .._exceptions import ApiError, NotFound, ServerError, TooManyRequests
from .._meta.resource import CUSTOM_RESOURCE_DEFINITIONS, Resource
from .._meta.types import Obj
from .._rest.request import request_json

__all__ = ["CrdSource", "install_crds", "load_crds", "wait_for_crds"]

CrdSource = str | os.PathLike[str] | Mapping[str, Any]
"""A YAML/JSON file of one or more definitions, a folder of such files, or one as a dict."""

_SUFFIXES = (".yaml", ".yml", ".json")
_NOT_YET = (NotFound, TooManyRequests, ServerError)


def load_crds(sources: CrdSource | Iterable[CrdSource]) -> list[Obj]:
    """The definitions named by ``sources``, in order (a folder's files sorted by name,
    but its ``kustomization.yaml``, as kubebuilder's ``config/crd/`` has one; empty
    documents skipped). ``ValueError`` for a document that is not a
    ``CustomResourceDefinition`` (or a path that does not exist)."""
    if isinstance(sources, str | os.PathLike | Mapping):
        sources = [sources]
    crds: list[Obj] = []
    for source in sources:
        if isinstance(source, Mapping):
            crds.append(_checked(dict(source), "a dict"))
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix in _SUFFIXES and p.stem != "kustomization"
            )
        elif path.is_file():
            files = [path]
        else:
            raise ValueError(f"install_crds: {str(path)!r} is neither a file nor a folder")
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if doc is not None:
                    crds.append(_checked(doc, str(file)))
    return crds


def _checked(doc: Any, where: str) -> Obj:
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"install_crds: {where} holds a {kind}, not a CustomResourceDefinition")
    return doc


def served_resources(crd: Obj) -> list[Resource]:
    """One :class:`~informer.Resource` per served version of ``crd``, storage first."""
    spec = crd["spec"]
    group, plural, kind = spec["group"], spec["names"]["plural"], spec["names"]["kind"]
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    versions = sorted(
        (v for v in spec.get("versions") or () if v.get("served", True)),
        key=lambda v: not v.get("storage", False),
    )
    return [Resource(group, v["name"], plural, kind=kind, namespaced=namespaced) for v in versions]


async def _check_served(api_client: Any, resource: Resource) -> None:
    """Raise unless discovery lists ``resource`` and a ``list`` of it answers 200."""
    found = await request_json(api_client, "GET", resource.api_prefix, verb="discover")
    names = {r.get("name") for r in found.get("resources") or ()}
    if resource.plural not in names:
        raise NotFound(
            f"discovery of {resource.api_version} does not list {resource.plural} yet",
            status=404,
        )
    await request_json(api_client, "GET", resource.path(), query={"limit": "1"}, verb="list")


async def install_crds(
    api_client: Any,
    crds: CrdSource | Iterable[CrdSource],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - a bound on the whole installation
    field_manager: str = "kube-informer-testing",
) -> list[Resource]:
    """Server-side apply the definitions of ``crds`` (paths, folders or dicts: see
    :func:`load_crds`) and wait until each is served (:func:`wait_for_crds`); returns the
    :class:`~informer.Resource` of each definition's storage version, in order.

    Raises ``TimeoutError`` naming the resources still not served (and their last answer)
    after ``timeout`` seconds, and the :class:`~informer.ApiError` of a rejected
    definition at once (an invalid schema answers 422).
    """
    objects = load_crds(crds)
    client = Client(api_client, field_manager=field_manager)
    for crd in objects:
        await client.apply(crd, force=True, resource=CUSTOM_RESOURCE_DEFINITIONS)
    return await wait_for_crds(api_client, objects, timeout=timeout)


async def wait_for_crds(
    api_client: Any,
    crds: CrdSource | Iterable[CrdSource],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - a bound on the whole wait
) -> list[Resource]:
    """Wait until every served version of the definitions of ``crds`` (applied by
    someone else, e.g. with a kustomization) is served: see :func:`install_crds`."""
    objects = load_crds(crds)
    waiting = [r for crd in objects for r in served_resources(crd)]
    last: dict[Resource, ApiError] = {}
    delay = 0.02
    with anyio.move_on_after(timeout):
        while waiting:
            for resource in list(waiting):
                try:
                    await _check_served(api_client, resource)
                except _NOT_YET as exc:
                    last[resource] = exc
                else:
                    waiting.remove(resource)
            if waiting:
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.25)
    if waiting:
        pending = "; ".join(
            f"{r.group_resource}/{r.version}: {last.get(r, 'no answer')}" for r in waiting
        )
        raise TimeoutError(f"install_crds: not served after {timeout:g}s: {pending}")
    return [served_resources(crd)[0] for crd in objects]
