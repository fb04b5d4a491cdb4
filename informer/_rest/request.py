"""One request whose answer is a JSON object: :func:`request_json`.

The ListerWatcher's list pages, the Client's reads and writes on raw dicts, discovery
and every other non-streaming call go through it. Bodies are encoded and decoded with
orjson; nothing builds a kubernetes_asyncio model. The request itself is sent by
:func:`informer._rest.transport.open_response` (credentials, pool, status mapping).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import aiohttp
import orjson
from kubernetes_asyncio.client import ApiClient

from .._exceptions import ApiError
from .._meta.types import Obj
from .api_request import QueryParams, patch_content_type
from .errors import map_transport_errors
from .transport import open_response

__all__ = ["BODY_CHUNK_BYTES", "DEFAULT_READ_TIMEOUT", "request_json"]

DEFAULT_READ_TIMEOUT: Final = 60.0
"""Default for non-watch requests: the longest silence tolerated between two reads."""

BODY_CHUNK_BYTES: Final = 64 * 1024
"""The largest chunk :func:`request_json` hands its ``decode_chunks`` at a time (so that
decoding one never holds the loop for long)."""

_VERB_BY_METHOD: Final = {
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


async def request_json(
    api_client: ApiClient,
    method: str,
    path: str,
    *,
    query: QueryParams | None = None,
    body: Obj | list[Any] | bytes | None = None,
    content_type: str | None = None,
    verb: str | None = None,
    resource: str | None = None,
    namespace: str | None = None,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    accept: str = "application/json",
    decode: Callable[[bytes], Any] = orjson.loads,
    decode_chunks: Callable[[AsyncIterator[bytes]], Awaitable[Any]] | None = None,
) -> Obj:
    """Send one request and return the decoded JSON object of the answer.

    ``path`` is the API path (``/api/v1/namespaces/ns/configmaps/name``); ``body`` a dict
    or list encoded with orjson (``bytes`` are sent as they are) as ``content_type``,
    ``application/json`` by default. A PATCH is a JSON merge patch by default;
    ``content_type`` chooses another of
    :data:`~informer._rest.api_request.PATCH_TYPES`, by short name (``merge``,
    ``strategic``, ``json``, ``apply``) or media type
    (``application/strategic-merge-patch+json``...); anything else raises ``ValueError``
    before sending (the server would answer a bare 415).
    ``verb`` (default from the method: get, create, update, patch, delete), ``resource``
    (``plural.group``) and ``namespace`` only name the request in errors. ``accept`` is
    the ``Accept`` header (a JSON media type, e.g. with ``as=PartialObjectMetadataList``
    parameters); the answer must still be JSON. An empty answer (204) returns ``{}``.
    ``decode`` turns the body's bytes into the object (default ``orjson.loads``; a
    replacement raises ``orjson.JSONDecodeError`` for bytes that are not JSON, as it
    does; anything else it raises propagates).
    ``decode_chunks``, when given, replaces ``decode`` and the whole read: it is awaited
    with the body's bytes as they arrive (chunks of at most :data:`BODY_CHUNK_BYTES`; a
    read fails as the whole read would, a broken or silent connection as
    ``ConnectionFailed``), and must consume them to their end (or raise; the connection
    is then closed, not reused). ``read_timeout`` bounds each silence of the server
    (``None``: no bound).

    Raises the :class:`~informer.ApiError` subclass of an HTTP failure,
    :class:`~informer.ConnectionFailed` when the server cannot be reached or the
    connection breaks, and :class:`~informer.ApiError` when a successful answer is not a
    JSON object. The returned dict belongs to the caller.
    """
    method = method.upper()
    if verb is None:
        verb = _VERB_BY_METHOD.get(method, method.lower())
    if method == "PATCH":
        content_type = patch_content_type(content_type, path)
    elif content_type is None:
        content_type = "application/json"
    data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)

    def not_json(exc: orjson.JSONDecodeError) -> ApiError:
        return ApiError(
            f"{method} {path}: the answer is not JSON ({exc}): {raw[:200]!r}",
            status=status,
            verb=verb,
            resource=resource,
            namespace=namespace,
        )

    async with open_response(
        api_client,
        method,
        path,
        query=query,
        data=data,
        content_type=content_type if data is not None else None,
        verb=verb,
        resource=resource,
        namespace=namespace,
        read_timeout=read_timeout,
        accept=accept,
    ) as (response, address):
        status = response.status
        if decode_chunks is None:
            with map_transport_errors(address):
                raw = await response.read()
        else:
            with map_transport_errors(address):
                raw = await response.content.read(BODY_CHUNK_BYTES)
            if raw:
                try:
                    decoded = await decode_chunks(_body_chunks(response, address, raw))
                except orjson.JSONDecodeError as exc:
                    raise not_json(exc) from exc
                finally:
                    if not response.content.at_eof():
                        response.close()  # abandoned halfway: the connection is not reused
    if not raw:
        return {}
    if decode_chunks is None:
        try:
            decoded = decode(raw)
        except orjson.JSONDecodeError as exc:
            raise not_json(exc) from exc
    if not isinstance(decoded, dict):
        raise ApiError(
            f"{method} {path}: the answer is not a JSON object: {raw[:200]!r}",
            status=status,
            verb=verb,
            resource=resource,
            namespace=namespace,
        )
    return decoded


async def _body_chunks(
    response: aiohttp.ClientResponse, address: str, first: bytes
) -> AsyncIterator[bytes]:
    """``first``, then the rest of the body in chunks of at most :data:`BODY_CHUNK_BYTES`
    (transport failures as ``ConnectionFailed``)."""
    yield first
    read = response.content.read
    while True:
        with map_transport_errors(address):
            chunk = await read(BODY_CHUNK_BYTES)
        if not chunk:
            return
        yield chunk
