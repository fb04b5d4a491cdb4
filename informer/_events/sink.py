"""Where Events are written: the :class:`EventSink` protocol and the API server's sink.

The recorder hands a sink events.k8s.io/v1 Events (dicts) and series patches; a sink
raises :class:`~informer.NotFound` when a patched Event is gone (the recorder creates it
again, as client-go's ``recordEvent``) and any :class:`~informer.InformerError` on
failure. Tests inject their own sink; :class:`ApiEventSink` is the default.

:class:`ApiEventSink` finds out once whether the server serves events.k8s.io/v1 Events
(discovery of the group-version, as client-go's ``NewEventBroadcasterAdapter``; a 404
means it does not) and keeps the answer for its lifetime (a failed discovery is tried
again at the next write). When the group is not served it writes core/v1 Events the
way client-go's ``tools/record`` does: ``involvedObject``, ``message``, ``source``,
``firstTimestamp``/``lastTimestamp`` and ``count`` (a series patch becomes a patch of
``count`` and ``lastTimestamp``), with ``action`` and ``reportingComponent``/
``reportingInstance``; no ``eventTime``, so the server applies its legacy validation.

Series patches are JSON merge patches of ``series`` (client-go sends the equivalent
strategic merge patch, computed as the two-way diff of the Event with and without its
series: the same body).
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from .._exceptions import NotFound
from .._meta.resource import Resource
from .._meta.types import Obj
from .._rest.api_client import ApiClient
from .._rest.request import request_json
from .model import seconds_time

__all__ = ["CORE_EVENTS", "ApiEventSink", "EventSink", "to_core_v1"]

log = structlog.get_logger(__name__)

CORE_EVENTS = Resource("", "v1", "events", kind="Event")


class EventSink(Protocol):
    """What the recorder writes Events to (see the module docstring)."""

    async def create(self, event: Obj) -> Obj:
        """Create ``event`` (an events.k8s.io/v1 Event dict, maybe with a ``series``) in
        ``event["metadata"]["namespace"]``; return what the server stored."""
        ...

    async def patch(self, event: Obj, patch: Obj) -> Obj:
        """Apply ``patch`` (a JSON merge patch of the events.k8s.io/v1 shape, today
        ``{"series": {...}}``) to the Event named by ``event["metadata"]``; raise
        :class:`~informer.NotFound` when it does not exist."""
        ...


class ApiEventSink:
    """Writes Events to the API server (see the module docstring).

    ``client`` is a kubernetes_asyncio ``ApiClient``, or an object whose ``api_client``
    attribute holds one (an ``informer.Client``, a ``Controller``), read at each write so
    it may be set after construction (a write without one raises ``TypeError``).
    ``group_version`` is the Events API probed and used (``events.k8s.io/v1``); pointing
    it at a group-version the server does not serve makes the sink write core/v1 Events,
    which is how the tests take that path on a current server. :attr:`api_version` is the
    ``apiVersion`` written, ``None`` until the first write found out.
    """

    def __init__(self, client: Any, *, group_version: str = "events.k8s.io/v1") -> None:
        group, _, version = group_version.rpartition("/")
        if not group or not version:
            raise ValueError(f"group_version must be 'group/version', not {group_version!r}")
        self.client = client
        self.events = Resource(group, version, "events", kind="Event")
        self.api_version: str | None = None

    @property
    def api_client(self) -> ApiClient:
        """The ApiClient written through: ``client``, or its ``api_client``."""
        api = getattr(self.client, "api_client", self.client)
        if not isinstance(api, ApiClient):
            raise TypeError(
                f"cannot write Events: {type(self.client).__name__} holds no kubernetes_asyncio "
                f"ApiClient (found {type(api).__name__})"
            )
        return api

    async def _resource(self) -> Resource:
        if self.api_version is None:
            try:
                found = await request_json(
                    self.api_client, "GET", self.events.api_prefix, verb="get"
                )
            except NotFound:
                served = False
            else:
                served = any(r.get("name") == "events" for r in found.get("resources", ()))
            self.api_version = self.events.api_version if served else CORE_EVENTS.api_version
            if not served:
                log.info(
                    "events API not served; writing core/v1 Events",
                    group_version=self.events.api_version,
                )
        return self.events if self.api_version == self.events.api_version else CORE_EVENTS

    async def create(self, event: Obj) -> Obj:
        resource = await self._resource()
        namespace = event["metadata"]["namespace"]
        body = event if resource is self.events else to_core_v1(event)
        return await request_json(
            self.api_client,
            "POST",
            resource.path(namespace=namespace),
            body=body,
            resource=resource.group_resource,
            namespace=namespace,
        )

    async def patch(self, event: Obj, patch: Obj) -> Obj:
        resource = await self._resource()
        meta = event["metadata"]
        if resource is not self.events:
            patch = _core_v1_patch(patch)
        return await request_json(
            self.api_client,
            "PATCH",
            resource.path(meta["name"], namespace=meta["namespace"]),
            body=patch,
            content_type="merge",
            resource=resource.group_resource,
            namespace=meta["namespace"],
        )


def to_core_v1(event: Obj) -> Obj:
    """The core/v1 Event client-go's ``tools/record`` would write for an events.k8s.io/v1
    one (its ``makeEvent``, with the series as ``count``/``lastTimestamp``)."""
    series = event.get("series")
    first = seconds_time(event["eventTime"])
    core: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": dict(event["metadata"]),
        "involvedObject": event["regarding"],
        "reason": event["reason"],
        "message": event["note"],
        "type": event["type"],
        "action": event["action"],
        "source": {"component": event["reportingController"]},
        "reportingComponent": event["reportingController"],
        "reportingInstance": event["reportingInstance"],
        "firstTimestamp": first,
        "lastTimestamp": seconds_time(series["lastObservedTime"]) if series else first,
        "count": int(series["count"]) if series else 1,
    }
    if event.get("related"):
        core["related"] = event["related"]
    return core


def _core_v1_patch(patch: Obj) -> Obj:
    series: Any = patch.get("series")
    if not isinstance(series, dict):
        raise ValueError(f"a core/v1 Event patch is derived from a series patch, not {patch!r}")
    return {"count": series["count"], "lastTimestamp": seconds_time(series["lastObservedTime"])}
