"""Sending one request through a kubernetes_asyncio ``ApiClient``, bypassing its model
layer, and what the transport keeps per client.

kubernetes_asyncio's generated ``ApiClient.call_api`` deserialises into models (or, with
``_preload_content=False``, hands back the response but still walks the body through
``sanitize_for_serialization`` and ``json.dumps``). :func:`open_response` bypasses the
model layer and keeps everything that makes authentication work:

- the connection pool: ``api_client.rest_client.pool_manager``, the aiohttp
  ``ClientSession`` kubernetes_asyncio built (``connection_pool_maxsize`` connections),
  for every request but streams; streams (watches) use a session of this module
  without a connection limit, so open watches never starve other requests (see
  :class:`_Transport`);
- the TLS material of the configuration: CA, client certificate and key (kubeconfig
  ``client-certificate``, or an exec plugin's), ``tls-server-name``, proxy settings;
  certificate files are re-read when they change
  (:class:`~informer._rest.credentials.ClientCredentials`);
- the headers the generated code would send: ``api_client.default_headers``
  (``User-Agent``), the cookie, and the ``authorization`` header produced by
  ``api_client.update_params_for_auth(..., ["BearerToken"])``, which runs the
  configuration's ``refresh_api_key_hook`` on every request (token files re-read,
  exec plugins and ``refresh_token`` update the same ``api_key`` it reads).

Every answer's status is recorded in the client's :func:`auth_status` (401/403 streaks,
for health checks and metrics); a 401 makes the next request re-read a token file.
Failures are translated by :mod:`informer._rest.errors`. What is done with the body is
the callers' business: :mod:`informer._rest.request` (one JSON answer) and
:mod:`informer._rest.stream` (a watch).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient

from .._exceptions import ConfigError, ConnectionFailed
from .api_request import QueryParams, encode_query
from .credentials import AuthStatus, ClientCredentials
from .errors import map_transport_errors, raise_for_status

__all__ = [
    "CONNECT_TIMEOUT",
    "RESPONSE_HEADERS_TIMEOUT",
    "WATCH_TLS_READ_BUFFER",
    "auth_status",
    "open_response",
]

CONNECT_TIMEOUT: Final = 30.0
"""Seconds allowed to open a connection (TCP + TLS), as client-go's dialer."""

WATCH_TLS_READ_BUFFER: Final = 16 * 1024
"""Bytes of the TLS read buffer of a stream's connection. asyncio gives every TLS
connection a 256 KiB one (``asyncio.sslproto.SSLProtocol.max_size``), allocated for the
connection's life: with a watch per resource and namespace (namespace-mode sharding),
that buffer was more than half of what a cached namespace cost (an idle TLS connection:
307 KiB of RSS with it, 76 KiB with 16 KiB). A watch mostly reads a few events at a
time; 16 KiB is one full TLS record, and the socket is read again at once while more is
ready (a large watch-list stream costs more reads, ~1 per 16 KiB, each a few
microseconds)."""

RESPONSE_HEADERS_TIMEOUT: Final = 30.0
"""Seconds a stream (a watch) waits for its response headers once the request is sent.
The API server answers a watch's headers as soon as the watch is set up; its body may
then stay silent for minutes (the stream's read timeout). Without this bound a server
that accepted the request but never answers would hold the open for the whole read
timeout (5 to 10 minutes for a watch) instead of letting the reflector retry."""


@asynccontextmanager
async def open_response(
    api_client: ApiClient,
    method: str,
    path: str,
    *,
    query: QueryParams | None,
    data: bytes | None = None,
    content_type: str | None = None,
    verb: str | None,
    resource: str | None,
    namespace: str | None,
    read_timeout: float | None,
    stream: bool = False,
    accept: str = "application/json",
) -> AsyncIterator[tuple[aiohttp.ClientResponse, str]]:
    """Send the request; yield a successful response, unread, and the server address.

    A ``stream`` goes through the client's stream session (no connection limit; opening
    it is bounded by :data:`CONNECT_TIMEOUT`, its headers by
    :data:`RESPONSE_HEADERS_TIMEOUT` or ``read_timeout`` if shorter, then its body's
    silences by ``read_timeout``), any other request through the ApiClient's own pool
    (``read_timeout`` bounds every silence). The answer's status is recorded in
    :func:`auth_status`; a 401 makes the next request re-read a token file and the
    client certificate files. A status >= 400 raises its
    :class:`~informer.ApiError` (named by ``verb``, ``resource``, ``namespace``); a
    connection failure raises :class:`~informer.ConnectionFailed`; credentials that
    cannot be obtained raise :class:`~informer.ConfigError`. The response is released
    (returned to the pool if read to its end, else closed) when the context exits.
    """
    cfg = api_client.configuration
    transport = _transport(api_client)
    address: str = (cfg.host or "").rstrip("/")
    headers: dict[str, str] = dict(api_client.default_headers)
    headers["Accept"] = accept
    if api_client.cookie:
        headers["Cookie"] = api_client.cookie
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth_query: list[tuple[str, str]] = []
    sent_at = time.monotonic()  # before the token is read: see FileToken.reset_older_than
    try:
        # Runs the refresh_api_key_hook (token file rotation, exec plugin, OIDC...).
        await api_client.update_params_for_auth(headers, auth_query, ["BearerToken"])
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(f"cannot obtain credentials for {address}: {exc}") from exc
    url = address + path
    params = encode_query(query, auth_query)
    if params:
        url += "?" + params
    rest = api_client.rest_client
    kwargs: dict[str, Any] = {}
    if getattr(rest, "proxy", None):
        kwargs["proxy"] = rest.proxy
        if getattr(rest, "proxy_headers", None):
            kwargs["proxy_headers"] = rest.proxy_headers
    if getattr(rest, "server_hostname", None):
        kwargs["server_hostname"] = rest.server_hostname
    credentials = transport.credentials
    if address.startswith("https"):
        kwargs["ssl"] = credentials.ssl_context()
    headers_timeout = read_timeout
    if stream:
        session = transport.stream_session(rest.pool_manager)
        # Until the headers: RESPONSE_HEADERS_TIMEOUT; the body: read_timeout (set below).
        headers_timeout = min(RESPONSE_HEADERS_TIMEOUT, read_timeout or math.inf)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=CONNECT_TIMEOUT,
            sock_connect=CONNECT_TIMEOUT,
            sock_read=headers_timeout,
        )
    else:
        session = rest.pool_manager
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout
        )
    with map_transport_errors(address):
        try:
            response = await session.request(
                method, url, headers=headers, data=data, timeout=timeout, **kwargs
            )
        except aiohttp.SocketTimeoutError as exc:
            raise ConnectionFailed(
                f"cannot reach the API server at {address}: no response headers within "
                f"{headers_timeout:g}s of sending {method} {path} (the connection is open; "
                "the server or a proxy on the way does not answer)",
                address=address,
            ) from exc
    connection = response.connection
    if stream and connection is not None and (protocol := connection.protocol) is not None:
        protocol.read_timeout = read_timeout  # the body's idle bound, from now on
        protocol.start_timeout()
        _shrink_tls_read_buffer(connection.transport)
    try:
        credentials.answered(response.status, sent_at)
        if response.status >= 400:
            await raise_for_status(
                response,
                address,
                method=method,
                path=path,
                verb=verb,
                resource=resource,
                namespace=namespace,
            )
        yield response, address
    finally:
        response.release()


def _shrink_tls_read_buffer(transport: object) -> None:
    """Give the TLS connection under ``transport`` a read buffer of
    :data:`WATCH_TLS_READ_BUFFER` bytes instead of asyncio's 256 KiB. Safe between two
    reads (asyncio asks the protocol for its buffer before each one and copies what it
    read out of it at once); a transport that is not asyncio's TLS one, or whose
    internals differ, is left alone."""
    ssl_protocol: Any = getattr(transport, "_ssl_protocol", None)
    buffer = getattr(ssl_protocol, "_ssl_buffer", None)
    if not isinstance(buffer, bytearray) or len(buffer) <= WATCH_TLS_READ_BUFFER:
        return
    if not hasattr(ssl_protocol, "_ssl_buffer_view") or not hasattr(ssl_protocol, "max_size"):
        return
    smaller = bytearray(WATCH_TLS_READ_BUFFER)
    ssl_protocol.max_size = WATCH_TLS_READ_BUFFER  # read() sizes and get_buffer's cap
    ssl_protocol._ssl_buffer = smaller
    ssl_protocol._ssl_buffer_view = memoryview(smaller)


def auth_status(api_client: ApiClient) -> AuthStatus:
    """The live :class:`~informer._rest.credentials.AuthStatus` of ``api_client``: how the
    API server answered its credentials (401/403 streaks, totals, rotated files). Read it;
    only :func:`open_response` writes it. Created on first use, it lives as long as the
    client."""
    return _transport(api_client).credentials.auth


class _Transport:
    """What this module keeps per ApiClient, beside kubernetes_asyncio's own pool.

    - The **stream session**: watches hold their connection for minutes, so they get an
      aiohttp session of their own, without a connection limit (one HTTP/1.1 connection
      per open watch, as client-go over HTTP/1.1), created on the first stream and
      closed with the ApiClient. Open watches can then never take the connections of
      the ApiClient's pool (``connection_pool_maxsize``, 100), which requests keep.
    - The :class:`~informer._rest.credentials.ClientCredentials`: the SSL context of both
      (rotated client certificates) and the :class:`AuthStatus`.

    Attached to the ApiClient on first use; its ``rest_client.close`` is wrapped so that
    closing the ApiClient closes the stream session too.
    """

    __slots__ = ("_closed", "_streams", "credentials")

    def __init__(self, configuration: Any) -> None:
        self.credentials = ClientCredentials(configuration)
        self._streams: aiohttp.ClientSession | None = None
        self._closed = False

    def stream_session(self, pool: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """The session for streams; ``pool`` (the ApiClient's) once the client is closed,
        so that a stream on a closed client fails as any request on it does."""
        if self._closed or pool.closed:
            return pool
        if self._streams is None:
            # As kubernetes_asyncio's own session: proxies from the environment, and a
            # read buffer for watch events of large objects (etcd allows 1.5 MiB).
            self._streams = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), trust_env=True, read_bufsize=2**21
            )
        return self._streams

    async def close(self) -> None:
        self._closed = True
        streams, self._streams = self._streams, None
        if streams is not None:
            await streams.close()


def _transport(api_client: ApiClient) -> _Transport:
    transport: _Transport | None = getattr(api_client, _TRANSPORT_ATTRIBUTE, None)
    if transport is None:
        transport = _Transport(api_client.configuration)
        setattr(api_client, _TRANSPORT_ATTRIBUTE, transport)
        rest = api_client.rest_client
        close_pool = rest.close

        async def close() -> None:
            try:
                await transport.close()
            finally:
                await close_pool()

        setattr(rest, "close", close)  # noqa: B010 - an instance attribute, not the method
    return transport


_TRANSPORT_ATTRIBUTE: Final = "_informer_transport"
