"""API discovery: ``apiVersion`` + ``kind`` -> :class:`~informer.Resource`.

The analogue of controller-runtime's lazy ``DynamicRESTMapper``: the resources of one
group/version are fetched the first time a kind of it is asked for (``GET /api/v1`` or
``GET /apis/<group>/<version>``, an ``APIResourceList``) and kept. A kind missing from the
kept list (a CRD installed since, a group not served yet) makes discovery fetch that
group/version once more before it gives up with :class:`~informer.ResourceNotServed`,
which names the apiVersion and kind. Nothing expires otherwise: a resource removed from
the server stays mapped (writes to it then fail with ``NotFound``).

Concurrency: lookups run on one event loop; concurrent misses for one group/version share
one fetch.

Sharing: a :class:`~informer.Client` has its own ``Discovery`` unless given one;
:func:`shared_discovery` hands out one per ApiClient (what every ``Controller.client``
uses), so the controllers of a Manager discover each group/version once.
"""

from __future__ import annotations

import weakref
from typing import Any

import anyio

from .._exceptions import NotFound, ResourceNotServed
from .._meta.resource import Resource
from .._meta.types import Obj
from .._rest.request import request_json

__all__ = ["Discovery", "group_version_path", "shared_discovery", "split_api_version"]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` -> ``("apps", "v1")``; ``"v1"`` -> ``("", "v1")`` (the core group)."""
    group, sep, version = api_version.rpartition("/")
    if not version or (sep and not group) or "/" in group:
        raise ValueError(f"malformed apiVersion {api_version!r}: expected 'v1' or 'group/v1'")
    return group, version


def group_version_path(api_version: str) -> str:
    """The discovery path of a group/version: ``/api/v1`` or ``/apis/<group>/<version>``."""
    group, version = split_api_version(api_version)
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _resources_by_kind(api_version: str, resource_list: Obj) -> dict[str, Resource]:
    """The top-level resources of an ``APIResourceList`` (subresources such as
    ``deployments/status`` skipped), by kind. When several plurals serve one kind, the
    first listed wins, as in the API server's own ordering."""
    group, version = split_api_version(api_version)
    found: dict[str, Resource] = {}
    for entry in resource_list.get("resources") or ():
        name = entry.get("name")
        kind = entry.get("kind")
        if not isinstance(name, str) or not isinstance(kind, str) or "/" in name:
            continue
        found.setdefault(
            kind,
            Resource(group, version, name, kind=kind, namespaced=bool(entry.get("namespaced"))),
        )
    return found


class Discovery:
    """Maps ``(apiVersion, kind)`` to the served :class:`~informer.Resource` (with its
    ``kind`` and ``namespaced`` filled from discovery), caching per group/version."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client
        self._by_group_version: dict[str, dict[str, Resource]] = {}
        self._fetching: dict[str, anyio.Event] = {}
        self.fetches = 0
        """How many discovery requests were sent (for tests and debugging)."""

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """The resource serving ``kind`` objects of ``api_version``.

        Served from the cache when known; otherwise the group/version is (re)fetched once.
        Raises :class:`~informer.ResourceNotServed` when the server does not serve it,
        ``ValueError`` for a malformed ``apiVersion`` or an empty ``kind``, and any other
        :class:`~informer.ApiError` of the discovery request.
        """
        if not kind:
            raise ValueError(f"an object of apiVersion {api_version!r} has no kind")
        known = self._by_group_version.get(api_version)
        if known is not None and kind in known:
            return known[kind]
        known = await self._refresh(api_version)
        if kind in known:
            return known[kind]
        if known:
            served = ", ".join(sorted(known))
            detail = f"{api_version} is served but has no kind {kind!r} (it has: {served})"
        else:
            detail = f"the server does not serve {api_version}"
        raise ResourceNotServed(
            f"apiVersion {api_version!r} kind {kind!r} is not served: {detail}; check the"
            " apiVersion and kind, or install the CustomResourceDefinition first",
            api_version=api_version,
            kind=kind,
        )

    def forget(self, api_version: str | None = None) -> None:
        """Drop what is known of one group/version (or of all): the next lookup fetches."""
        if api_version is None:
            self._by_group_version.clear()
        else:
            self._by_group_version.pop(api_version, None)

    async def _refresh(self, api_version: str) -> dict[str, Resource]:
        pending = self._fetching.get(api_version)
        if pending is not None:  # another lookup is fetching this group/version
            await pending.wait()
            return self._by_group_version.get(api_version, {})
        done = self._fetching[api_version] = anyio.Event()
        try:
            path = group_version_path(api_version)
            self.fetches += 1
            try:
                answer = await request_json(self._api, "GET", path, verb="discover")
            except NotFound:
                answer = {}
            known = _resources_by_kind(api_version, answer)
            self._by_group_version[api_version] = known
            return known
        finally:
            del self._fetching[api_version]
            done.set()


_SHARED: weakref.WeakKeyDictionary[Any, Discovery] = weakref.WeakKeyDictionary()


def shared_discovery(api_client: Any) -> Discovery:
    """The :class:`Discovery` of ``api_client``, created on first use and kept while the
    ApiClient lives; an object that cannot be weakly referenced (``None``, a test double)
    gets a new one each call."""
    try:
        found = _SHARED.get(api_client)
    except TypeError:
        return Discovery(api_client)
    if found is None:
        found = _SHARED[api_client] = Discovery(api_client)
    return found
