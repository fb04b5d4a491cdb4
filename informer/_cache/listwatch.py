"""The ``ListerWatcher`` seam between the Reflector and an API server.

A ListerWatcher lists one resource (one page at a time) and opens watches on it. The
Reflector is its only caller. Implementations: :class:`ApiListerWatcher` (the real API
server through ``informer._rest``: list pages decoded by :mod:`.list_decode`, watch
lines by :mod:`.watch_decode`) and ``informer.testing.FakeListerWatcher``.

Contract shared by every implementation:

- ``list`` returns the decoded List object as the server sent it: ``{"metadata":
  {"resourceVersion": ..., "continue": ...}, "items": [...]}`` (a metadata-only
  ``ApiListerWatcher`` has already cut its items down, see :mod:`.metadata`). The caller
  takes ownership of it and of its items; nobody may mutate them afterwards.
- Optionally (:class:`ItemwiseLister`, ``ApiListerWatcher``), ``list_prepared`` also
  passes each item through a function as soon as it is decoded (the Reflector's list
  sync, to transform items before the next is decoded: :mod:`.list_decode`).
- ``watch`` is an async context manager yielding an async iterator of decoded events
  (``{"type": ..., "object": {...}}``). Leaving the context closes the connection. The
  iterator ends when the server ends the watch normally (e.g. ``timeoutSeconds``).
- Failures are raised as the error tree of ``informer._exceptions``: an HTTP failure
  as the matching :class:`~informer.ApiError` subclass (410 -> ``ResourceExpired``), an
  unreachable server as ``ConnectionFailed``, an undecodable line as
  ``WatchDecodeError``. ``ERROR`` events are yielded as they are; the Reflector maps
  them with ``api_error_from_status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

from .._exceptions import ApiError
from .._meta.resource import Resource
from .._meta.types import Obj, WatchEvent
from .._rest.api_client import ApiClient
from .._rest.request import DEFAULT_READ_TIMEOUT, request_json
from .._rest.stream import ResponseStream, stream_request
from .list_decode import Prepare, decode_list_chunks
from .metadata import MetadataEvents, MetadataShape
from .watch_decode import WatchEventStream

__all__ = ["ApiListerWatcher", "ItemwiseLister", "ListerWatcher"]


@runtime_checkable
class ListerWatcher(Protocol):
    """Lists and watches one resource, with the scope and selectors fixed at construction."""

    async def list(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        """One page of the List (see the module docstring for the shape)."""
        ...

    def watch(
        self,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        """Open a watch; the context yields the event iterator."""
        ...


@runtime_checkable
class ItemwiseLister(Protocol):
    """A :class:`ListerWatcher` that can prepare each list item as it decodes it
    (``ApiListerWatcher``); the Reflector's list sync then lets it, instead of preparing
    the decoded page's items itself. Optional: a plain ``ListerWatcher`` is enough."""

    async def list_prepared(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        prepare: Prepare | None,
    ) -> Obj:
        """One page of the List, each item through ``prepare``'s function (see
        :mod:`informer._cache.list_decode`)."""
        ...


_Query: TypeAlias = list[tuple[str, str | int | bool]]
_Decode: TypeAlias = Callable[[AsyncIterator[bytes]], Awaitable[Any]] | None

WATCH_READ_SLACK: Final = 30.0
"""Seconds added to ``timeoutSeconds`` before a silent watch connection counts as dead."""


class ApiListerWatcher:
    """The :class:`ListerWatcher` of one resource on a real API server.

    Requests go through ``informer._rest`` on the given kubernetes_asyncio ``ApiClient``
    (its connection pool, TLS material and token refresh); bodies are decoded with orjson
    into plain dicts, never into kubernetes_asyncio models.

    ``namespace=None`` lists and watches a namespaced resource across all namespaces; a
    cluster-scoped resource ignores ``namespace``. ``label_selector`` and
    ``field_selector`` apply to both list and watch. ``request_timeout`` bounds the
    silence between two reads of a list page (a watch is bounded by its own
    ``timeoutSeconds`` plus :data:`WATCH_READ_SLACK`, or not at all without one).

    Besides the shared contract (module docstring): ``watch`` raises, on entering the
    context, the :class:`~informer.ApiError` of an HTTP failure (410 ->
    ``ResourceExpired``) or :class:`~informer.ConnectionFailed`. While iterating, a
    connection lost mid-stream raises ``ConnectionFailed``, a line that is not JSON, or
    lacks ``type`` or ``object``, raises :class:`~informer.WatchDecodeError`, and a line
    longer than :data:`~informer._cache.watch_decode.MAX_WATCH_EVENT_BYTES` raises
    :class:`~informer.WatchEventTooLarge` as soon as that many bytes are buffered (memory
    stays bounded whatever the server sends); each only after every complete event
    received before the failure was yielded, and the iterator is finished afterwards
    (:class:`~informer._cache.watch_decode.WatchEventStream`). The API server's normal end
    of a watch ends the iterator. Each open watch holds one connection of the client's
    stream session, never one of its request pool.

    ``metadata_only=True`` lists and watches ``PartialObjectMetadata``: every object
    listed or watched is ``{"apiVersion", "kind", "metadata"}`` with the resource's own
    apiVersion and kind (which ``resource`` must name, else ``ValueError``), whether the
    server converted it or sent it whole; a 406 to the metadata media types switches this
    lister-watcher to plain JSON for good. See :mod:`informer._cache.metadata`.
    """

    __slots__ = (
        "_api_client",
        "_metadata",
        "_path",
        "_request_timeout",
        "_selectors",
        "field_selector",
        "label_selector",
        "namespace",
        "resource",
    )

    def __init__(
        self,
        api_client: ApiClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        request_timeout: float | None = DEFAULT_READ_TIMEOUT,
        metadata_only: bool = False,
    ) -> None:
        self._metadata = MetadataShape(resource) if metadata_only else None
        self._api_client = api_client
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._request_timeout = request_timeout
        self._path = resource.path(namespace=self.namespace)
        selectors: list[tuple[str, str]] = []
        if label_selector:
            selectors.append(("labelSelector", label_selector))
        if field_selector:
            selectors.append(("fieldSelector", field_selector))
        self._selectors = tuple(selectors)

    def __repr__(self) -> str:
        where = f" in {self.namespace!r}" if self.namespace else ""
        sel = "".join(f" {k}={v!r}" for k, v in self._selectors)
        meta = " metadata-only" if self._metadata is not None else ""
        return f"<ApiListerWatcher {self.resource.group_resource}{where}{sel}{meta}>"

    @property
    def metadata_only(self) -> bool:
        """True when this lister-watcher lists and watches object metadata only."""
        return self._metadata is not None

    async def list(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        """One page of the List, decoded as the server sent it; the caller owns it.

        Empty or ``None`` arguments are not sent (``resource_version=""`` is the same as
        none: the most recent state, read from etcd).
        """
        return await self.list_prepared(
            resource_version=resource_version,
            resource_version_match=resource_version_match,
            limit=limit,
            continue_token=continue_token,
            prepare=None,
        )

    async def list_prepared(
        self,
        *,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        prepare: Prepare | None,
    ) -> Obj:
        """:meth:`list`, each item going through ``prepare``'s function as soon as it is
        decoded (:func:`~informer._cache.list_decode.decode_list_chunks`), so that what it
        drops is never alive for the whole page at once; the items are decoded while the
        body streams in (the whole raw body is never held, for built-in kinds), yielding
        to the loop as it goes. An exception from that function propagates (the page is
        lost). The Reflector's list sync uses it (:class:`ItemwiseLister`)."""
        query: _Query = [*self._selectors]
        if limit:
            query.append(("limit", limit))
        if continue_token:
            query.append(("continue", continue_token))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if resource_version_match:
            query.append(("resourceVersionMatch", resource_version_match))
        shape = self._metadata
        if shape is not None:
            prepare = shape.prepare(prepare)
        decode: _Decode = None if prepare is None else partial(decode_list_chunks, prepare=prepare)
        if shape is None:
            return await self._list(query, "application/json", decode)
        try:
            return await self._list(query, shape.list_accept(), decode)
        except ApiError as exc:
            if exc.status != 406 or shape.refused:
                raise
            shape.refuse(exc.message)
            return await self._list(query, shape.list_accept(), decode)

    async def _list(self, query: _Query, accept: str, decode: _Decode) -> Obj:
        return await request_json(
            self._api_client,
            "GET",
            self._path,
            query=query,
            verb="list",
            resource=self.resource.group_resource,
            namespace=self.namespace,
            read_timeout=self._request_timeout,
            accept=accept,
            decode_chunks=decode,
        )

    def watch(
        self,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_watch_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
        """Open a watch; the context yields the event iterator (see the class docstring).

        ``allowWatchBookmarks`` and ``sendInitialEvents`` are sent only when true (the
        server rejects ``sendInitialEvents`` without ``resourceVersionMatch=NotOlderThan``).
        """
        query: _Query = [*self._selectors, ("watch", True)]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if resource_version_match:
            query.append(("resourceVersionMatch", resource_version_match))
        if allow_watch_bookmarks:
            query.append(("allowWatchBookmarks", True))
        if send_initial_events:
            query.append(("sendInitialEvents", True))
        read_timeout: float | None = None
        if timeout_seconds:
            query.append(("timeoutSeconds", timeout_seconds))
            read_timeout = timeout_seconds + WATCH_READ_SLACK
        return self._watch(query, read_timeout)

    @asynccontextmanager
    async def _watch(
        self, query: _Query, read_timeout: float | None
    ) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        shape = self._metadata
        if shape is None:
            async with self._stream(query, read_timeout, "application/json") as stream:
                yield WatchEventStream(stream)
            return
        async with AsyncExitStack() as stack:
            try:
                stream = await stack.enter_async_context(
                    self._stream(query, read_timeout, shape.watch_accept())
                )
            except ApiError as exc:
                if exc.status != 406 or shape.refused:
                    raise
                shape.refuse(exc.message)
                stream = await stack.enter_async_context(
                    self._stream(query, read_timeout, shape.watch_accept())
                )
            yield MetadataEvents(WatchEventStream(stream), shape)

    def _stream(
        self, query: _Query, read_timeout: float | None, accept: str
    ) -> AbstractAsyncContextManager[ResponseStream]:
        return stream_request(
            self._api_client,
            self._path,
            query=query,
            verb="watch",
            resource=self.resource.group_resource,
            namespace=self.namespace,
            read_timeout=read_timeout,
            accept=accept,
        )
