"""The one module that touches kubernetes_asyncio and aiohttp.

It loads client configuration, performs raw (non-model) requests for the ListerWatcher
and for writes on raw dicts, and translates transport failures into the error tree of
``informer._exceptions``.

How a raw request goes through the ``ApiClient``
------------------------------------------------
kubernetes_asyncio's generated ``ApiClient.call_api`` deserialises into models (or, with
``_preload_content=False``, hands back the response but still walks the body through
``sanitize_for_serialization`` and ``json.dumps``). We bypass the model layer and keep
everything that makes authentication work:

- the connection pool: ``api_client.rest_client.pool_manager``, the aiohttp
  ``ClientSession`` kubernetes_asyncio built (``connection_pool_maxsize`` connections),
  for every request but streams; streams (watches) use a session of this module
  without a connection limit, so open watches never starve other requests (see
  ``_Transport``);
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

Bodies are encoded and decoded with orjson; nothing builds a model object.

Error mapping (``_map_transport_errors``, the analogue of httpx's ``map_exceptions``)
happens once, here: an HTTP status >= 400 becomes the matching
:class:`~informer.ApiError` subclass through ``api_error_from_status`` (the body decoded
as a ``Status`` when it is one, ``Retry-After`` honoured), and any aiohttp connection
error, TLS error or timeout becomes :class:`~informer.ConnectionFailed` naming the
server address. Both are chained to the transport exception with ``raise ... from``.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, NoReturn

import aiohttp
import orjson
import structlog
import yaml
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import incluster_config
from kubernetes_asyncio.config.exec_provider import ExecProvider
from kubernetes_asyncio.config.kube_config import ConfigNode

from .._exceptions import ApiError, ConfigError, ConnectionFailed, api_error_from_status
from .._meta.types import Obj
from .api_request import (
    PATCH_TYPES,
    QueryParams,
    encode_query,
    parse_retry_after,
    patch_content_type,
)
from .credentials import (
    AuthStatus,
    ClientCredentials,
    ExecToken,
    ExecTokenHook,
    FileToken,
    TokenFileHook,
)
from .kubeconfig import check_kubeconfig, resolve_config, token_file

__all__ = [
    "BODY_CHUNK_BYTES",
    "CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "PATCH_TYPES",
    "RESPONSE_HEADERS_TIMEOUT",
    "ApiClient",
    "QueryParams",
    "ResponseStream",
    "auth_status",
    "new_api_client",
    "request_json",
    "stream_request",
]

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT: Final = 30.0
"""Seconds allowed to open a connection (TCP + TLS), as client-go's dialer."""

DEFAULT_READ_TIMEOUT: Final = 60.0
"""Default for non-watch requests: the longest silence tolerated between two reads."""

RESPONSE_HEADERS_TIMEOUT: Final = 30.0
"""Seconds a stream (a watch) waits for its response headers once the request is sent.
The API server answers a watch's headers as soon as the watch is set up; its body may
then stay silent for minutes (the stream's read timeout). Without this bound a server
that accepted the request but never answers would hold the open for the whole read
timeout (5 to 10 minutes for a watch) instead of letting the reflector retry."""

BODY_CHUNK_BYTES: Final = 64 * 1024
"""The largest chunk :func:`request_json` hands its ``decode_chunks`` at a time (so that
decoding one never holds the loop for long)."""

_MAX_ERROR_BODY: Final = 1 << 20
"""An error response body beyond this many bytes is not kept (nor decoded), whether its
length was announced (``Content-Length``) or not (chunked): reading stops there."""

_VERB_BY_METHOD: Final = {
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

_TRANSPORT_ERRORS: Final = (aiohttp.ClientError, TimeoutError, OSError)


async def new_api_client(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool | None = None
) -> ApiClient:
    """A kubernetes_asyncio ``ApiClient`` for a kubeconfig, or the in-cluster config.

    ``kubeconfig`` defaults to ``$KUBECONFIG`` then ``~/.kube/config``. With
    ``in_cluster=None`` the in-cluster config is used when no kubeconfig file exists and
    the process runs in a Pod (``KUBERNETES_SERVICE_HOST`` set). Raises
    :class:`ConfigError` naming the file, the context and the problem (one line). The
    caller owns the client and closes it (``async with`` or ``await client.close()``).

    Credentials stay fresh for the client's lifetime (through the configuration's
    ``refresh_api_key_hook``): a kubeconfig ``tokenFile`` and the in-cluster token file
    are re-read as client-go does (:class:`~informer._rest.credentials.FileToken`: every
    minute, and after a 401), and an exec plugin giving a token is run again once its
    ``expirationTimestamp`` passed and after a 401
    (:class:`~informer._rest.credentials.ExecToken`, as client-go).
    Client certificate files are re-read by the transport (see :func:`auth_status`).
    """
    cfg = Configuration()
    path, use_in_cluster = resolve_config(kubeconfig, in_cluster)
    if use_in_cluster:
        sa_token: str = incluster_config.SERVICE_TOKEN_FILENAME  # read now: tests patch it
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=cfg, try_refresh_token=False, token_filename=sa_token
            )
        except k8s_config.ConfigException as exc:
            raise ConfigError(f"in-cluster config: {exc}") from exc
        cfg.refresh_api_key_hook = TokenFileHook(FileToken(sa_token))
        return ApiClient(configuration=cfg)
    user = check_kubeconfig(path, context)  # one line naming file, context and what is missing
    token_path = token_file(path, user)
    try:
        loader = await k8s_config.load_kube_config(
            config_file=path, context=context, client_configuration=cfg, persist_config=False
        )
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"kubeconfig {path!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        # AttributeError: a YAML document that is a scalar or a list, not a mapping.
        detail = " ".join(str(exc).split())  # YAML errors span lines; keep one
        raise ConfigError(f"kubeconfig {path!r} is invalid: {detail}") from exc
    exec_config = None if "auth-provider" in user else user.get("exec")  # the provider wins
    token = getattr(loader, "token", None)  # "Bearer ...": unset when the plugin gave a cert
    if isinstance(exec_config, Mapping) and isinstance(token, str) and token:
        provider = ExecProvider(ConfigNode("exec", dict(exec_config)))
        exec_token = ExecToken(
            provider.run,
            token=token.removeprefix("Bearer "),
            expiry=getattr(loader, "exec_plugin_expiry", None),
            command=str(exec_config.get("command")),
        )
        cfg.refresh_api_key_hook = ExecTokenHook(exec_token)
    if token_path is not None:
        cfg.refresh_api_key_hook = TokenFileHook(FileToken(token_path))
    return ApiClient(configuration=cfg)


# --------------------------------------------------------------------------- raw requests


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
    ``content_type`` chooses another of :data:`PATCH_TYPES`, by short name (``merge``,
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
    is then closed, not reused).

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

    async with _open(
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
            with _map_transport_errors(address):
                raw = await response.read()
        else:
            with _map_transport_errors(address):
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
        with _map_transport_errors(address):
            chunk = await read(BODY_CHUNK_BYTES)
        if not chunk:
            return
        yield chunk


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
        except _TRANSPORT_ERRORS as exc:
            if self._closed:
                return b""
            _raise_connection_failed(self._address, exc)
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
    ``accept`` is the ``Accept`` header, as for :func:`request_json`.
    ``read_timeout`` bounds the silence between two reads (``None``: no bound; a watch
    passes its ``timeoutSeconds`` plus slack) and nothing bounds the total time, but
    opening the connection must succeed within :data:`CONNECT_TIMEOUT` and the response
    headers arrive within :data:`RESPONSE_HEADERS_TIMEOUT` of sending the request (or
    ``read_timeout`` if shorter), else :class:`~informer.ConnectionFailed`. Streams use
    a session of their own without a connection limit, so any number of open watches
    never delays other requests. Leaving the context, normally, by an exception or by
    cancellation, closes the response at once: the connection goes back to the pool only
    when the body was read to its end, otherwise it is closed.
    """
    async with _open(
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


@asynccontextmanager
async def _open(
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
    """Send the request; yield a successful response.

    A ``stream`` goes through the client's stream session (no connection limit; opening
    it is bounded by ``CONNECT_TIMEOUT``), any other request through the ApiClient's own
    pool. The answer's status is recorded in :func:`auth_status`; a 401 makes the next
    request re-read a token file and the client certificate files. The response is
    released (or closed, if unread) when the context exits.
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
    with _map_transport_errors(address):
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
    try:
        credentials.answered(response.status, sent_at)
        if response.status >= 400:
            await _raise_for_status(
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


# ------------------------------------------------------------------ per-client transport


def auth_status(api_client: ApiClient) -> AuthStatus:
    """The live :class:`~informer._rest.credentials.AuthStatus` of ``api_client``: how the API
    server answered its credentials (401/403 streaks, totals, rotated files). Read it;
    only this module writes it. Created on first use, it lives as long as the client."""
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
        so that using a closed client fails as it always did."""
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


@contextmanager
def _map_transport_errors(address: str) -> Iterator[None]:
    """Translate aiohttp / socket / TLS errors and timeouts into ``ConnectionFailed``."""
    try:
        yield
    except _TRANSPORT_ERRORS as exc:
        _raise_connection_failed(address, exc)


def _raise_connection_failed(address: str, exc: BaseException) -> NoReturn:
    if isinstance(exc, TimeoutError):
        detail = f"timed out ({type(exc).__name__})"
    else:
        detail = str(exc) or type(exc).__name__
    raise ConnectionFailed(
        f"cannot reach the API server at {address}: {detail}", address=address
    ) from exc


async def _raise_for_status(
    response: aiohttp.ClientResponse,
    address: str,
    *,
    method: str,
    path: str,
    verb: str | None,
    resource: str | None,
    namespace: str | None,
) -> NoReturn:
    """Raise the ``ApiError`` for a failed response (its body decoded as a Status)."""
    code = response.status
    with _map_transport_errors(address):
        body = await _read_at_most(response, _MAX_ERROR_BODY)
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
            text = f"(a body over {_MAX_ERROR_BODY >> 20} MiB, not read)"
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
