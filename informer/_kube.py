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
  ``ClientSession`` whose SSL context carries the CA, the client certificate and key
  (kubeconfig ``client-certificate``, or an exec plugin's), ``tls-server-name`` and the
  proxy settings;
- the headers the generated code would send: ``api_client.default_headers``
  (``User-Agent``), the cookie, and the ``authorization`` header produced by
  ``api_client.update_params_for_auth(..., ["BearerToken"])``, which runs the
  configuration's ``refresh_api_key_hook`` on every request (in-cluster token rotation,
  exec plugins and ``refresh_token`` update the same ``api_key`` it reads).

Bodies are encoded and decoded with orjson; nothing builds a model object.

Error mapping (``_map_transport_errors``, the analogue of httpx's ``map_exceptions``)
happens once, here: an HTTP status >= 400 becomes the matching
:class:`~informer.ApiError` subclass through ``api_error_from_status`` (the body decoded
as a ``Status`` when it is one, ``Retry-After`` honoured), and any aiohttp connection
error, TLS error or timeout becomes :class:`~informer.ConnectionFailed` naming the
server address. Both are chained to the transport exception with ``raise ... from``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, NoReturn, TypeAlias
from urllib.parse import urlencode

import aiohttp
import orjson
import yaml
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration

from ._exceptions import ApiError, ConfigError, ConnectionFailed, api_error_from_status
from ._types import Obj

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "ApiClient",
    "QueryParams",
    "ResponseStream",
    "new_api_client",
    "request_json",
    "stream_request",
]

CONNECT_TIMEOUT: Final = 30.0
"""Seconds allowed to open a connection (TCP + TLS), as client-go's dialer."""

DEFAULT_READ_TIMEOUT: Final = 60.0
"""Default for non-watch requests: the longest silence tolerated between two reads."""

_MAX_ERROR_BODY: Final = 1 << 20
"""An error response body beyond this many bytes is not kept (nor decoded), whether its
length was announced (``Content-Length``) or not (chunked): reading stops there."""

QueryParams: TypeAlias = Mapping[str, str | int | bool] | Sequence[tuple[str, str | int | bool]]
"""Query parameters; booleans are sent as ``true``/``false``."""

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
    :class:`ConfigError` naming the file and the problem. The caller owns the client and
    closes it (``async with`` or ``await client.close()``).

    Credentials stay fresh for the client's lifetime: the in-cluster token file is
    re-read as kubernetes_asyncio does, and an exec plugin whose token carries an
    ``expirationTimestamp`` is run again (through the configuration's
    ``refresh_api_key_hook``) once the token is within 5 minutes of expiring.

    Each open watch holds one HTTP/1.1 connection of the client's pool, whose size is
    ``Configuration.connection_pool_maxsize`` (100 by default).
    """
    cfg = Configuration()
    path, use_in_cluster = _resolve_config(kubeconfig, in_cluster)
    if use_in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException as exc:
            raise ConfigError(f"in-cluster config: {exc}") from exc
        return ApiClient(configuration=cfg)
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
    _refresh_exec_tokens(loader, cfg)
    return ApiClient(configuration=cfg)


def _refresh_exec_tokens(loader: Any, cfg: Any) -> None:
    """Install a hook re-running an exec plugin whose bearer token expires.

    kubernetes_asyncio runs the plugin once at load time and only refreshes it from a
    separate ``refresh_token`` task. ``load_from_exec_plugin`` returns at once while the
    cached token is valid, so the hook costs a date comparison per request. A plugin
    without ``expirationTimestamp`` (or giving client certificates) gets no hook:
    kubernetes_asyncio would run it on every request.
    """
    if getattr(loader, "exec_plugin_expiry", None) is None or cfg.refresh_api_key_hook:
        return

    async def refresh(configuration: Any) -> None:
        if await loader.load_from_exec_plugin() and getattr(loader, "token", None):
            configuration.api_key["BearerToken"] = loader.token

    cfg.refresh_api_key_hook = refresh


def _resolve_config(kubeconfig: str | None, in_cluster: bool | None) -> tuple[str, bool]:
    """The kubeconfig path to load, and whether to use the in-cluster config instead."""
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = kubeconfig or env or os.path.expanduser("~/.kube/config")
    exists = os.path.exists(path)
    if in_cluster is None:
        in_cluster = (
            kubeconfig is None and not exists and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        )
    if not in_cluster and not exists:
        raise ConfigError(f"kubeconfig {path!r} does not exist")
    return path, in_cluster


# --------------------------------------------------------------------------- raw requests


async def request_json(
    api_client: ApiClient,
    method: str,
    path: str,
    *,
    query: QueryParams | None = None,
    body: Obj | list[Any] | bytes | None = None,
    content_type: str = "application/json",
    verb: str | None = None,
    resource: str | None = None,
    namespace: str | None = None,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT,
) -> Obj:
    """Send one request and return the decoded JSON object of the answer.

    ``path`` is the API path (``/api/v1/namespaces/ns/configmaps/name``); ``body`` a dict
    or list encoded with orjson (``bytes`` are sent as they are), with ``content_type``
    (``application/merge-patch+json``, ``application/json-patch+json``,
    ``application/strategic-merge-patch+json``, ``application/apply-patch+yaml``...).
    ``verb`` (default from the method: get, create, update, patch, delete), ``resource``
    (``plural.group``) and ``namespace`` only name the request in errors. An empty answer
    (204) returns ``{}``.

    Raises the :class:`~informer.ApiError` subclass of an HTTP failure,
    :class:`~informer.ConnectionFailed` when the server cannot be reached or the
    connection breaks, and :class:`~informer.ApiError` when a successful answer is not a
    JSON object. The returned dict belongs to the caller.
    """
    method = method.upper()
    if verb is None:
        verb = _VERB_BY_METHOD.get(method, method.lower())
    data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
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
    ) as (response, address):
        with _map_transport_errors(address):
            raw = await response.read()
    if not raw:
        return {}
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            f"{method} {path}: the answer is not JSON ({exc}): {raw[:200]!r}",
            status=response.status,
            verb=verb,
            resource=resource,
            namespace=namespace,
        ) from exc
    if not isinstance(decoded, dict):
        raise ApiError(
            f"{method} {path}: the answer is not a JSON object: {raw[:200]!r}",
            status=response.status,
            verb=verb,
            resource=resource,
            namespace=namespace,
        )
    return decoded


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
) -> AsyncIterator[ResponseStream]:
    """GET ``path`` and yield its body as a :class:`ResponseStream`, unread.

    The status is checked before anything is yielded (an HTTP failure raises the matching
    :class:`~informer.ApiError`, naming ``verb``, ``resource``, ``namespace``).
    ``read_timeout`` bounds the silence between two reads (``None``: no bound; a watch
    passes its ``timeoutSeconds`` plus slack) and nothing bounds the total time. Leaving
    the context, normally, by an exception or by cancellation, closes the response at
    once: the connection goes back to the pool only when the body was read to its end,
    otherwise it is closed.
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
) -> AsyncIterator[tuple[aiohttp.ClientResponse, str]]:
    """Send the request through the ApiClient's session; yield a successful response.

    The response is released (or closed, if unread) when the context exits.
    """
    cfg = api_client.configuration
    address: str = (cfg.host or "").rstrip("/")
    headers: dict[str, str] = dict(api_client.default_headers)
    headers["Accept"] = "application/json"
    if api_client.cookie:
        headers["Cookie"] = api_client.cookie
    if content_type is not None:
        headers["Content-Type"] = content_type
    auth_query: list[tuple[str, str]] = []
    try:
        # Runs the refresh_api_key_hook (token file rotation, exec plugin, OIDC...).
        await api_client.update_params_for_auth(headers, auth_query, ["BearerToken"])
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(f"cannot obtain credentials for {address}: {exc}") from exc
    url = address + path
    params = _encode_query(query, auth_query)
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
    session: aiohttp.ClientSession = rest.pool_manager
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout
    )
    with _map_transport_errors(address):
        response = await session.request(
            method, url, headers=headers, data=data, timeout=timeout, **kwargs
        )
    try:
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


def _encode_query(query: QueryParams | None, extra: list[tuple[str, str]]) -> str:
    if not query and not extra:
        return ""
    items = query.items() if isinstance(query, Mapping) else (query or ())
    pairs = [(k, ("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in items]
    pairs.extend(extra)
    return urlencode(pairs)


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
        retry_after=_retry_after(response.headers.get("Retry-After"), status),
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


def _retry_after(header: str | None, status: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds), else the Status details."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass  # an HTTP-date: the API server never sends one
    details = status.get("details") if status else None
    if isinstance(details, Mapping):
        seconds = details.get("retryAfterSeconds")
        if isinstance(seconds, int | float) and seconds > 0:
            return float(seconds)
    return None
