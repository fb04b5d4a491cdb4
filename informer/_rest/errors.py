"""The error boundary of the transport: where aiohttp failures and HTTP statuses become
the error tree of ``informer._exceptions``.

The analogue of httpx's ``map_exceptions``, and the only place the translation happens:

- :func:`map_transport_errors` turns any aiohttp connection error, TLS error, socket
  error or timeout raised inside it into :class:`~informer.ConnectionFailed` naming the
  server address and the cause in words, without object representations
  (:func:`raise_connection_failed` does the same for one exception; the words come from
  :mod:`.connection_errors`);
- :func:`raise_for_status` turns an HTTP status >= 400 into the matching
  :class:`~informer.ApiError` subclass through ``api_error_from_status``: the body
  decoded as a ``Status`` when it is one (at most :data:`MAX_ERROR_BODY` bytes read),
  ``Retry-After`` honoured, the request named when the server gave no message.

Both chain the transport exception with ``raise ... from``. Callers are the modules of
this folder that perform requests (``transport``, ``request``, ``stream``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, NoReturn

import aiohttp
import orjson

from .._exceptions import ConnectionFailed, api_error_from_status
from .._meta.types import Obj
from .api_request import parse_retry_after
from .connection_errors import describe_connection_error

__all__ = [
    "MAX_ERROR_BODY",
    "TRANSPORT_ERRORS",
    "map_transport_errors",
    "raise_connection_failed",
    "raise_for_status",
]

MAX_ERROR_BODY: Final = 1 << 20
"""An error response body beyond this many bytes is not kept (nor decoded), whether its
length was announced (``Content-Length``) or not (chunked): reading stops there."""

TRANSPORT_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)
"""What the transport may raise for a connection that fails, breaks or stays silent."""


@contextmanager
def map_transport_errors(address: str) -> Iterator[None]:
    """Translate aiohttp / socket / TLS errors and timeouts raised inside into
    :class:`~informer.ConnectionFailed` naming ``address``."""
    try:
        yield
    except TRANSPORT_ERRORS as exc:
        raise_connection_failed(address, exc)


def raise_connection_failed(address: str, exc: BaseException) -> NoReturn:
    """Raise :class:`~informer.ConnectionFailed` for ``exc``, chained to it: one sentence
    with the address and the cause in words (:func:`describe_connection_error`), and
    ``refused`` set when the server's port refused the connection."""
    cause = describe_connection_error(exc)
    raise ConnectionFailed(
        f"cannot reach the API server at {address}: {cause.text}",
        address=address,
        refused=cause.refused,
    ) from exc


async def raise_for_status(
    response: aiohttp.ClientResponse,
    address: str,
    *,
    method: str,
    path: str,
    verb: str | None,
    resource: str | None,
    namespace: str | None,
) -> NoReturn:
    """Raise the ``ApiError`` for a failed response (its body decoded as a Status).

    ``verb``, ``resource`` and ``namespace`` name the request in the error; ``method``
    and ``path`` are added to its message when the body is no ``Status`` with a message.
    Reads the body (a failure to read it is ``ConnectionFailed``); the caller releases
    the response.
    """
    code = response.status
    with map_transport_errors(address):
        body = await _read_at_most(response, MAX_ERROR_BODY)
    raw = body or b""
    status: Obj | None = None
    if raw:
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            status = decoded
    error = api_error_from_status(
        code,
        status,
        verb=verb,
        resource=resource,
        namespace=namespace,
        retry_after=parse_retry_after(response.headers.get("Retry-After"), status),
    )
    if status is None or not status.get("message"):
        # No Status to explain it: say which request failed and what the server said.
        text = raw[:200].decode("utf-8", "replace").strip()
        if body is None:
            text = f"(a body over {MAX_ERROR_BODY >> 20} MiB, not read)"
        error.message = f"{error.message}: {method} {path}" + (f": {text}" if text else "")
        error.args = (error.message,)
    raise error


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` when it is longer than ``limit`` bytes.

    Never holds more than ``limit`` + 1 bytes: a longer body is abandoned (the response is
    then closed, not returned to the pool, when released).
    """
    if (response.content_length or 0) > limit:
        return None
    body = bytearray()
    content = response.content
    while True:
        chunk = await content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            return None
