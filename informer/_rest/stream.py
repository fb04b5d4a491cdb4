"""Streaming responses (watches): :func:`stream_request` opens one and yields its body
as a :class:`ResponseStream`, read chunk by chunk.

Decoding the events is the cache's business (``informer._cache.watch_decode``); this
module only moves bytes and translates failures (:mod:`informer._rest.errors`). The
request goes through :func:`informer._rest.transport.open_response` on the client's
stream session, so open watches never take the connections other requests use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from kubernetes_asyncio.client import ApiClient

from .api_request import QueryParams
from .errors import TRANSPORT_ERRORS, raise_connection_failed
from .transport import open_response

__all__ = ["ResponseStream", "stream_request"]


class ResponseStream:
    """The body of a streaming response (a watch), read chunk by chunk.

    Obtained from :func:`stream_request`; valid until its context exits. Not safe for
    concurrent readers.
    """

    __slots__ = ("_address", "_closed", "_content", "eof")

    def __init__(self, response: aiohttp.ClientResponse, address: str) -> None:
        self._content = response.content
        self._address = address
        self._closed = False
        self.eof = False
        """True once the server ended the body (a clean end of the watch); stays False
        when the stream ends because our side closed it."""

    async def read_chunk(self) -> bytes:
        """The next bytes received (any size, never split by lines); ``b""`` at the end.

        Raises :class:`~informer.ConnectionFailed` when the connection breaks or stays
        silent longer than the read timeout. After the stream was closed on our side
        (its context exited), returns ``b""``.
        """
        try:
            chunk = await self._content.readany()
        except TRANSPORT_ERRORS as exc:
            if self._closed:
                return b""
            raise_connection_failed(self._address, exc)
        if not chunk:
            self.eof = True
        return chunk


@asynccontextmanager
async def stream_request(
    api_client: ApiClient,
    path: str,
    *,
    query: QueryParams | None = None,
    verb: str = "watch",
    resource: str | None = None,
    namespace: str | None = None,
    read_timeout: float | None = None,
    accept: str = "application/json",
) -> AsyncIterator[ResponseStream]:
    """GET ``path`` and yield its body as a :class:`ResponseStream`, unread.

    The status is checked before anything is yielded (an HTTP failure raises the matching
    :class:`~informer.ApiError`, naming ``verb``, ``resource``, ``namespace``).
    ``accept`` is the ``Accept`` header, as for
    :func:`~informer._rest.request.request_json`.
    ``read_timeout`` bounds the silence between two reads (``None``: no bound; a watch
    passes its ``timeoutSeconds`` plus slack) and nothing bounds the total time, but
    opening the connection must succeed within
    :data:`~informer._rest.transport.CONNECT_TIMEOUT` and the response headers arrive
    within :data:`~informer._rest.transport.RESPONSE_HEADERS_TIMEOUT` of sending the
    request (or ``read_timeout`` if shorter), else :class:`~informer.ConnectionFailed`.
    Streams use a session of their own without a connection limit, so any number of open
    watches never delays other requests. Leaving the context, normally, by an exception
    or by cancellation, closes the response at once: the connection goes back to the
    pool only when the body was read to its end, otherwise it is closed.
    """
    async with open_response(
        api_client,
        "GET",
        path,
        query=query,
        verb=verb,
        resource=resource,
        namespace=namespace,
        read_timeout=read_timeout,
        stream=True,
        accept=accept,
    ) as (response, address):
        stream = ResponseStream(response, address)
        try:
            yield stream
        finally:
            stream._closed = True
            if not stream.eof:
                response.close()
