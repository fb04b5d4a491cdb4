"""The one HTTP server of the package: a small HTTP/1.1 server on anyio streams.

Metrics (:mod:`informer._observability.metrics`), health probes
(:mod:`informer._observability.health`) and admission and conversion webhooks
(:mod:`informer._webhook.server`) are served by :class:`HttpServer`; no other module of
the package listens on a socket (``tests/test_layering.py``). Only ``informer._rest`` may
import aiohttp, and the endpoints need nothing more than GET and HEAD (``routes``: sync
handlers) and POST with a body of known length (``post_routes``: async handlers, the
webhooks). Request heads are parsed by :mod:`informer._http.head`, POST bodies read by
:mod:`informer._http.body` (its framing and limits).

Answers: 400 to a malformed request, 401/403 from the ``request_filter`` (the secure
metrics' authentication and authorization), 404 to an unknown path, 405 to other
methods, 408 when a started request head (or a POST body) does not complete in time,
411 to a POST body without ``Content-Length`` (chunked), 413 to one over
``max_body_bytes``, 431 when a head exceeds ``max_head_bytes``, 500 (logged) when a
handler raises, 505 to HTTP/2+. One connection's failure never reaches the server or
the application.

Connections and timeouts (:class:`HttpLimits`), as Go's ``http.Server``:

- ``header_timeout`` (Go's ``ReadHeaderTimeout``): a request head must arrive within it,
  counted from the accept (TLS handshake included) for the first request and from its
  first byte for the next ones. A connection that sent nothing is closed silently, one
  that sent part of a head gets 408: a slowloris client is gone after ``header_timeout``.
- ``idle_timeout``: a kept-alive connection (HTTP/1.1 without ``Connection: close``, no
  request body) waiting longer for its next request is closed.
- ``write_timeout``: the time to hand an answer to the kernel.
- ``body_timeout``: a POST body must arrive within it, counted from the end of its head
  (``max_body_bytes`` bounds its size; a body is read only for a POST route, and a
  connection whose body was read stays alive for the next request).
- ``max_connections``: when a new connection would exceed it, the server closes the
  connection that matters least to make room, in this order: lingering after their
  answer, idle between requests, then those still reading their request head, oldest
  first. A fresh connection that sends its request at once, like a kubelet probe, is
  therefore always served, however many idle or slow connections are open (a connection
  flood no longer turns ``/healthz`` red). Only when every open connection is busy
  answering (bounded by the handlers and ``write_timeout``) is the new one answered 503.

TLS: with ``tls`` (a function returning the current ``ssl.SSLContext``, see
:mod:`informer._http.tls`) every connection is wrapped server-side before its first
request; the handshake counts against ``header_timeout``.
"""

from __future__ import annotations

import enum
import http
import ipaddress
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
import anyio.abc
import structlog
from anyio.streams.tls import TLSStream

from .._exceptions import BindError
from .body import MAX_BODY_BYTES, read_body
from .head import (
    MAX_HEAD_BYTES,
    BadRequest,
    HeadReader,
    HeadTooLarge,
    HttpRequest,
    HttpResponse,
    parse_head,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "HttpHandler",
    "HttpLimits",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "PostHandler",
    "RequestFilter",
    "parse_bind_address",
    "serve_http",
]

log = structlog.get_logger(__name__)

_LINGER = 1.0
_HOST = re.compile(r"^[A-Za-z0-9.-]+$")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Timeouts (seconds) and sizes of one server; see the module docstring."""

    header_timeout: float = 5.0
    idle_timeout: float = 30.0
    write_timeout: float = 10.0
    max_connections: int = 64
    max_head_bytes: int = MAX_HEAD_BYTES
    body_timeout: float = 10.0
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        timeouts = (self.header_timeout, self.idle_timeout, self.write_timeout, self.body_timeout)
        if min(timeouts) <= 0:
            raise ValueError("HTTP timeouts must be positive")
        if self.max_connections < 1 or self.max_head_bytes < 256:
            raise ValueError("max_connections must be >= 1 and max_head_bytes >= 256")
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")


DEFAULT_LIMITS = HttpLimits()

HttpHandler = Callable[[HttpRequest], HttpResponse]
"""A route: sync, fast, runs on the event loop; raising answers 500 (and is logged)."""

PostHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""A POST route: awaited on the event loop with the request, its ``body`` read; must
bound its own time (the connection is busy meanwhile); raising answers 500 (logged)."""

RequestFilter = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
"""Runs before routing, for every GET/HEAD: ``None`` lets the request through, a
response (401, 403...) is sent instead. May await (an API call); must bound its time."""


def parse_bind_address(address: str) -> tuple[str | None, int]:
    """Split and validate a listen address: the one rule for every bind-address flag.

    ``":8080"`` -> ``(None, 8080)`` (every interface), ``"127.0.0.1:0"`` ->
    ``("127.0.0.1", 0)``, ``"[::1]:9090"`` -> ``("::1", 9090)``, ``"localhost:1"`` ->
    ``("localhost", 1)``. Raises ``ValueError`` with a one-line message naming the
    problem otherwise (``"0"``, meaning "disabled" for the runner's flags, is the caller's
    business).
    """
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT or :PORT, got {address!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in {address!r} (expected 0-65535)")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"bad IPv6 address in {address!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"bad IPv6 address in {address!r}") from None
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host must be in brackets: {address!r}")
    elif host and not _HOST.match(host):
        raise ValueError(f"bad host in {address!r} (a name or an IPv4 address)")
    return (host or None), int(port)


class _Phase(enum.IntEnum):
    """Where a connection is; when the server is full, the lowest phase is closed first."""

    LINGERING = 0  # answered; waiting (briefly) for the client to close
    IDLE = 1  # kept alive, between requests
    READING = 2  # TLS handshake or request head under way (a fresh connection too)
    BUSY = 3  # a request is being answered: never closed early


@dataclass(eq=False, slots=True)
class _Connection:
    scope: anyio.CancelScope
    phase: _Phase
    since: float
    evicted: bool = False

    def enter(self, phase: _Phase) -> None:
        self.phase = phase
        self.since = anyio.current_time()


class HttpServer:
    """A small HTTP/1.1 server for GET/HEAD endpoints (see the module docstring).

    ``routes`` maps exact paths to GET/HEAD handlers; a key ending in ``/`` also serves
    every path below it (``"/healthz/"`` serves ``/healthz/informers``). ``post_routes``
    maps exact paths to POST handlers (no ``request_filter``: the webhooks' callers are
    authenticated by TLS). Create it with
    :meth:`bind` (which raises :class:`BindError` at once when the address is unusable),
    then run :meth:`serve` until cancelled. ``evictions`` counts connections closed to
    make room (see ``max_connections``), ``refusals`` newcomers answered 503. Everything
    runs on the event loop.
    """

    def __init__(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        limits: HttpLimits = DEFAULT_LIMITS,
        tls: Callable[[], ssl.SSLContext] | None = None,
        request_filter: RequestFilter | None = None,
        post_routes: Mapping[str, PostHandler] | None = None,
    ) -> None:
        self._listener = listener
        self._routes = dict(routes)
        self._post_routes = dict(post_routes or {})
        self._prefixes = sorted((p for p in routes if p.endswith("/")), key=len, reverse=True)
        self.name = name
        self.limits = limits
        self._tls = tls
        self._filter = request_filter
        self._connections: dict[_Connection, None] = {}
        self.evictions = 0
        self.refusals = 0
        self._quiet_until = -math.inf
        self.port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    @classmethod
    async def bind(
        cls,
        address: str,
        routes: Mapping[str, HttpHandler],
        *,
        name: str = "http",
        limits: HttpLimits = DEFAULT_LIMITS,
        tls: Callable[[], ssl.SSLContext] | None = None,
        request_filter: RequestFilter | None = None,
        post_routes: Mapping[str, PostHandler] | None = None,
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
        return cls(
            listener,
            routes,
            name=name,
            limits=limits,
            tls=tls,
            request_filter=request_filter,
            post_routes=post_routes,
        )

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def serve(self) -> None:
        """Accept and answer connections until cancelled; closes the listener on exit."""
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
        conn = _Connection(anyio.CancelScope(), _Phase.READING, anyio.current_time())
        self._connections[conn] = None
        try:
            with conn.scope:
                async with stream:
                    if self._make_room(conn):
                        await self._serve(stream, conn)
                    else:
                        conn.enter(_Phase.BUSY)
                        busy = HttpResponse.text(503, "too many connections\n")
                        await self._send(stream, busy, head_only=False, keep_alive=False)
                        conn.enter(_Phase.LINGERING)
                        await self._linger(stream)
        except Exception as exc:  # a connection never takes the server down
            log.debug("http.connection_failed", server=self.name, error=repr(exc))
        finally:
            del self._connections[conn]

    def _make_room(self, new: _Connection) -> bool:
        """Close the least useful connection when ``new`` exceeds ``max_connections``;
        ``False`` when every other one is busy."""
        live = [c for c in self._connections if not c.evicted and c is not new]
        if len(live) < self.limits.max_connections:
            return True
        candidates = [c for c in live if c.phase < _Phase.BUSY]
        if not candidates:
            self.refusals += 1
            now = anyio.current_time()
            if now >= self._quiet_until:  # at most one warning per 10 s during a flood
                self._quiet_until = now + 10.0
                log.warning(
                    "http.all_connections_busy",
                    server=self.name,
                    open=len(live),
                    refused=self.refusals,
                )
            return False
        victim = min(candidates, key=lambda c: (c.phase, c.since))
        victim.evicted = True
        victim.scope.cancel()
        self.evictions += 1
        log.debug("http.connection_evicted", server=self.name, phase=victim.phase.name)
        return True

    async def _serve(self, raw: anyio.abc.SocketStream, conn: _Connection) -> None:
        """Answer the requests of one connection until it closes or is not kept alive."""
        limits = self.limits
        deadline = anyio.current_time() + limits.header_timeout
        stream: anyio.abc.ByteStream = raw
        if self._tls is not None:
            with anyio.move_on_at(deadline):
                stream = await TLSStream.wrap(
                    raw, server_side=True, ssl_context=self._tls(), standard_compatible=False
                )
            if stream is raw:
                return  # handshake timed out
        reader = HeadReader(stream, limits.max_head_bytes)
        while True:
            request: HttpRequest | None = None
            try:
                with anyio.fail_at(deadline):
                    head = await reader.read_head()
                if head is None:
                    return  # closed before sending anything
                request = parse_head(head)
            except TimeoutError:
                if not reader.buffered:
                    return  # sent nothing: nobody to answer
                response = HttpResponse.text(408, "request timeout\n")
            except HeadTooLarge:
                response = HttpResponse.text(431, "request header fields too large\n")
            except BadRequest as exc:
                log.debug("http.bad_request", server=self.name, reason=exc.reason)
                response = HttpResponse(exc.status, f"{exc.reason}\n".encode())
            if (
                request is not None
                and request.method == "POST"
                and request.path in self._post_routes
            ):
                request, refused = await read_body(
                    stream,
                    reader,
                    request,
                    max_bytes=limits.max_body_bytes,
                    time_limit=limits.body_timeout,
                )
                if refused is not None:
                    response = refused
            conn.enter(_Phase.BUSY)
            if request is not None:
                response = await self._respond(request)
            keep_alive = request is not None and request.keep_alive
            head_only = request is not None and request.method == "HEAD"
            await self._send(stream, response, head_only=head_only, keep_alive=keep_alive)
            if not keep_alive:
                conn.enter(_Phase.LINGERING)
                await self._linger(stream)
                return
            conn.enter(_Phase.IDLE)
            with anyio.move_on_after(limits.idle_timeout):
                if not await reader.wait_for_data():
                    return  # the client closed
            if not reader.buffered:
                return  # idle for too long
            conn.enter(_Phase.READING)
            deadline = anyio.current_time() + limits.header_timeout

    async def _respond(self, request: HttpRequest) -> HttpResponse:
        post = self._post_routes.get(request.path)
        if post is not None:
            if request.method != "POST":
                return HttpResponse(405, b"method not allowed\n", headers=(("Allow", "POST"),))
            try:
                return await post(request)
            except Exception:
                log.exception("http.handler_failed", server=self.name, path=request.path)
                return HttpResponse.text(500, "internal error\n")
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        if self._filter is not None:
            denied = await self._filter(request)
            if denied is not None:
                return denied
        handler = self._route(request.path)
        if handler is None:
            return HttpResponse.text(404, "not found\n")
        try:
            return handler(request)
        except Exception:
            log.exception("http.handler_failed", server=self.name, path=request.path)
            return HttpResponse.text(500, "internal error\n")

    def _route(self, path: str) -> HttpHandler | None:
        handler = self._routes.get(path)
        if handler is not None:
            return handler
        for prefix in self._prefixes:
            if path.startswith(prefix):
                return self._routes[prefix]
        return None

    async def _send(
        self,
        stream: anyio.abc.ByteStream,
        response: HttpResponse,
        *,
        head_only: bool,
        keep_alive: bool,
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
            "Connection: keep-alive" if keep_alive else "Connection: close",
            "Cache-Control: no-store",
            *(f"{k}: {v}" for k, v in response.headers),
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head_only:
            data += response.body
        with anyio.fail_after(self.limits.write_timeout):
            await stream.send(data)

    async def _linger(self, stream: anyio.abc.ByteStream) -> None:
        """End our side and wait (briefly) for the client to close: closing first with
        unread input pending (a request body, pipelined bytes) makes the kernel send RST,
        and the client could lose the answer."""
        with anyio.move_on_after(_LINGER):
            try:
                if isinstance(stream, TLSStream):
                    await stream.unwrap()  # close_notify: the client's end of stream
                    return
                await stream.send_eof()
                while True:
                    await stream.receive(4096)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError, ssl.SSLError):
                pass


async def serve_http(
    address: str,
    routes: Mapping[str, HttpHandler],
    *,
    name: str = "http",
    limits: HttpLimits = DEFAULT_LIMITS,
    tls: Callable[[], ssl.SSLContext] | None = None,
    request_filter: RequestFilter | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` on ``address`` until cancelled; ``task_status.started(port)``
    once listening (the bound port: useful with port 0). Raises :class:`BindError` before
    ``started`` when the address is unusable."""
    server = await HttpServer.bind(
        address, routes, name=name, limits=limits, tls=tls, request_filter=request_filter
    )
    log.info("http.serving", server=name, address=address, port=server.port, tls=tls is not None)
    task_status.started(server.port)
    await server.serve()
