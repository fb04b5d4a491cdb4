"""The one HTTP server of the package: a tiny HTTP/1.1 server on anyio streams.

Metrics (:mod:`informer._runtime.metrics`) and health probes
(:mod:`informer._runtime.health`) are served by :class:`HttpServer`; no other module of
the package listens on a socket (``tests/test_layering.py``). Only ``informer._kube`` may
import aiohttp, and an endpoint for scrapers and probes needs nothing more than GET, HEAD
and ``Connection: close``. It answers 400 to a malformed request, 404 to an unknown path,
405 to other methods, 408 when the request head does not arrive within
:data:`READ_TIMEOUT`, 431 when it exceeds :data:`MAX_HEAD_BYTES`, 500 (logged) when a
handler raises, 503 when more than ``max_connections`` are open, and never lets one
connection's failure reach the server or the application.
"""

from __future__ import annotations

import http
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import structlog

from .._exceptions import BindError

__all__ = [
    "MAX_HEAD_BYTES",
    "READ_TIMEOUT",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "parse_bind_address",
    "serve_http",
]

log = structlog.get_logger(__name__)

MAX_HEAD_BYTES: Final = 8192
"""Largest accepted request head (request line and headers); larger is answered 431."""

READ_TIMEOUT: Final = 10.0
"""Seconds a client has to send its request head (then 408), and to read the answer."""

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_PLAIN = "text/plain; charset=utf-8"
_LINGER = 1.0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed request head: ``path`` is percent-decoded-free (as sent), ``query`` maps
    each parameter to its values (``?verbose`` gives ``{"verbose": [""]}``), header
    names are lower-case."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: str = _PLAIN
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        return cls(status, text.encode())


HttpHandler = Callable[[HttpRequest], HttpResponse]
"""A route: sync, fast, runs on the event loop; raising answers 500 (and is logged)."""


def parse_bind_address(address: str) -> tuple[str | None, int]:
    """``":8080"`` -> ``(None, 8080)`` (every interface), ``"127.0.0.1:0"`` ->
    ``("127.0.0.1", 0)``, ``"[::1]:9090"`` -> ``("::1", 9090)``. ``ValueError`` otherwise
    (``"0"``, "disabled", is the caller's business)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT or :PORT, got {address!r}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(f"bad IPv6 address in {address!r}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host must be in brackets: {address!r}")
    return (host or None), int(port)


class HttpServer:
    """A minimal HTTP/1.1 server for GET/HEAD endpoints (see the module docstring).

    ``routes`` maps exact paths to handlers; a key ending in ``/`` also serves every path
    below it (``"/healthz/"`` serves ``/healthz/informers``). Create it with
    :meth:`bind` (which raises :class:`BindError` at once when the address is unusable),
    then run :meth:`serve` until cancelled.
    """

    def __init__(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        max_connections: int = 64,
    ) -> None:
        self._listener = listener
        self._routes = dict(routes)
        self._prefixes = sorted((p for p in routes if p.endswith("/")), key=len, reverse=True)
        self.name = name
        self.max_connections = max_connections
        self._active = 0
        self.port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    @classmethod
    async def bind(
        cls,
        address: str,
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        max_connections: int = 64,
    ) -> HttpServer:
        """Listen on ``address`` (``HOST:PORT``, ``:PORT`` for every interface)."""
        try:
            host, port = parse_bind_address(address)
        except ValueError as exc:
            raise BindError(f"{name}: {exc}", endpoint=name, address=address) from exc
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        except OSError as exc:
            raise BindError(
                f"{name}: cannot listen on {address}: {exc.strerror or exc}",
                endpoint=name,
                address=address,
            ) from exc
        return cls(listener, routes, name=name, max_connections=max_connections)

    async def serve(self) -> None:
        """Accept and answer connections until cancelled; closes the listener on exit."""
        listeners: Sequence[anyio.abc.Listener[anyio.abc.SocketStream]]
        inner = getattr(self._listener, "listeners", None)
        listeners = inner if inner is not None else [self._listener]
        try:
            async with anyio.create_task_group() as tg:
                for listener in listeners:
                    tg.start_soon(self._accept_loop, listener, tg)
        finally:
            with anyio.CancelScope(shield=True):
                await self._listener.aclose()

    async def aclose(self) -> None:
        """Close the listener (only needed when :meth:`serve` was never run)."""
        await self._listener.aclose()

    async def _accept_loop(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], tg: anyio.abc.TaskGroup
    ) -> None:
        accept = getattr(listener, "accept", None)
        if accept is None:  # not a plain socket listener: let anyio drive it
            await listener.serve(self._connection)
            return
        while True:
            try:
                stream: anyio.abc.SocketStream = await accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving
                log.warning("http.accept_failed", server=self.name, error=str(exc))
                await anyio.sleep(0.1)
                continue
            tg.start_soon(self._connection, stream)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self._active += 1
        try:
            async with stream:
                if self._active > self.max_connections:
                    await self._send(stream, HttpResponse.text(503, "too many connections\n"))
                    return
                response, method = await self._respond(stream)
                await self._send(stream, response, head_only=method == "HEAD")
        except Exception as exc:  # a connection never takes the server down
            log.debug("http.connection_failed", server=self.name, error=repr(exc))
        finally:
            self._active -= 1

    async def _respond(self, stream: anyio.abc.SocketStream) -> tuple[HttpResponse, str]:
        try:
            with anyio.fail_after(READ_TIMEOUT):
                head = await _read_head(stream)
        except TimeoutError:
            return HttpResponse.text(408, "request timeout\n"), "GET"
        except _HeadTooLarge:
            return HttpResponse.text(431, "request header fields too large\n"), "GET"
        except _BadRequest as exc:
            return HttpResponse(exc.status, f"{exc.reason}\n".encode()), "GET"
        try:
            request = _parse_head(head)
        except _BadRequest as exc:
            log.debug("http.bad_request", server=self.name, reason=exc.reason)
            return HttpResponse(exc.status, f"{exc.reason}\n".encode()), "GET"
        if request.method not in ("GET", "HEAD"):
            allow = HttpResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
            return allow, request.method
        handler = self._route(request.path)
        if handler is None:
            return HttpResponse.text(404, "not found\n"), request.method
        try:
            return handler(request), request.method
        except Exception:
            log.exception("http.handler_failed", server=self.name, path=request.path)
            return HttpResponse.text(500, "internal error\n"), request.method

    def _route(self, path: str) -> HttpHandler | None:
        handler = self._routes.get(path)
        if handler is not None:
            return handler
        for prefix in self._prefixes:
            if path.startswith(prefix):
                return self._routes[prefix]
        return None

    async def _send(
        self, stream: anyio.abc.SocketStream, response: HttpResponse, *, head_only: bool = False
    ) -> None:
        status = response.status
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: close",
            "Cache-Control: no-store",
            *(f"{k}: {v}" for k, v in response.headers),
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head_only:
            data += response.body
        with anyio.fail_after(READ_TIMEOUT):
            await stream.send(data)
            await stream.send_eof()
        # Wait (briefly) for the client to close: closing first with unread input pending
        # (a request body, pipelined bytes) makes the kernel send RST, and the client
        # could lose the answer.
        with anyio.move_on_after(_LINGER):
            try:
                while True:
                    await stream.receive(4096)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass


class _HeadTooLarge(Exception):
    pass


class _BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def _read_head(stream: anyio.abc.SocketStream) -> bytes:
    """Bytes up to the blank line ending the head (without it); ``_BadRequest`` when the
    client closed first, ``_HeadTooLarge`` past :data:`MAX_HEAD_BYTES`."""
    buf = bytearray()
    searched = 0
    while True:
        match = _HEAD_END.search(buf, max(0, searched - 3))
        if match is not None:
            if match.start() > MAX_HEAD_BYTES:
                raise _HeadTooLarge
            return bytes(buf[: match.start()])
        if len(buf) > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        searched = len(buf)
        try:
            buf += await stream.receive(4096)
        except anyio.EndOfStream:
            raise _BadRequest("incomplete request") from None


def _parse_head(head: bytes) -> HttpRequest:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise _BadRequest("non-ASCII request head") from None
    lines = text.split("\n")
    while lines and not lines[0].strip():  # RFC 9112: ignore leading empty lines
        lines.pop(0)
    if not lines:
        raise _BadRequest("empty request")
    parts = lines[0].rstrip("\r").split(" ")
    if len(parts) != 3:
        raise _BadRequest("malformed request line")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise _BadRequest("malformed method")
    ver = _VERSION.match(version)
    if ver is None:
        raise _BadRequest("malformed HTTP version")
    if ver.group(1) != "1":
        raise _BadRequest("HTTP version not supported", 505)
    if not target.startswith(("/", "http://", "https://")):
        raise _BadRequest("malformed request target")  # origin-form or absolute-form only
    split = urlsplit(target)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        line = line.rstrip("\r")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise _BadRequest("malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpRequest(
        method=method,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
    )


async def serve_http(
    address: str,
    routes: Mapping[str, HttpHandler],
    *,
    name: str = "http",
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` on ``address`` until cancelled; ``task_status.started(port)``
    once listening (the bound port: useful with port 0). Raises :class:`BindError` before
    ``started`` when the address is unusable."""
    server = await HttpServer.bind(address, routes, name=name)
    log.info("http.serving", server=name, address=address, port=server.port)
    task_status.started(server.port)
    await server.serve()
