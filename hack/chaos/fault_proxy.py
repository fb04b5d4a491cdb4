"""``FaultProxy``: a TLS-terminating HTTP/1.1 proxy in front of the real API server that
can answer 429 storms and inject malformed lines into watch streams.

It sits between the ``TcpProxy`` (which cuts and stalls connections) and kube-apiserver::

    informer --TLS--> TcpProxy --> FaultProxy --TLS--> kube-apiserver

It presents the control plane's own serving certificate, so a client configured for the
API server (CA, ``https://127.0.0.1``) accepts it unchanged. Upstream it authenticates as
the admin (client certificate) unless the request carries an ``Authorization`` header,
which is then forwarded with no client certificate, so a token identity stays that
identity.

Contract:

- One request per connection: the request head is forwarded with ``Connection: close``,
  so the server closes after its answer and nothing else needs HTTP framing except watch
  streams. Bytes are forwarded unchanged otherwise: a clean end upstream is a clean end
  downstream, a broken connection upstream (apiserver killed) breaks the connection
  downstream, an unreachable upstream closes the client connection at once.
- ``storm(retry_after=...)`` until ``calm()``: every new request is answered ``429 Too
  Many Requests`` with ``Retry-After`` and a ``Status`` body; connections open when the
  storm starts are dropped (an overloaded server shedding its watches), so every client
  meets the storm.
- ``garble(variant)`` until ``clean()``: every open watch stream, and every watch opened
  meanwhile (right after its response head), receives one malformed chunk, then its
  connection ends (see :data:`GARBLE_VARIANTS`). Only whole chunks are ever written, so
  the injection never splits a real event.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import anyio
import anyio.abc
import structlog
from anyio.streams.buffered import BufferedByteStream
from anyio.streams.tls import TLSListener

__all__ = ["GARBLE_VARIANTS", "FaultProxy", "GarbleVariant"]

GarbleVariant = Literal["not-json", "truncated-end", "truncated-break", "wrong-shape"]

GARBLE_VARIANTS: Final[dict[GarbleVariant, tuple[bytes, bool]]] = {
    # A whole line that is not JSON, then the stream breaks: WatchDecodeError.
    "not-json": (b"\x00\xffthis is not json at all}\n", False),
    # Half an event and a clean end of the response: a truncated last line.
    "truncated-end": (b'{"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"na', True),
    # Half an event, then the connection breaks mid-line.
    "truncated-break": (b'{"type":"ADDED","object":{"metadata":', False),
    # Valid JSON of the wrong shape (no object, no resourceVersion): skipped, then a break.
    "wrong-shape": (b'{"type":"ADDED","object":"nope"}\n{"type":"BOGUS"}\n', False),
}
"""variant -> (bytes injected as one chunk, whether the response then ends cleanly)."""

log = structlog.get_logger(__name__)

_MAX_HEAD = 64 * 1024
_LAST_CHUNK: Final = b"0\r\n\r\n"
_BROKEN = (
    anyio.EndOfStream,
    anyio.IncompleteRead,
    anyio.DelimiterNotFound,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
    ValueError,  # a chunk size that is not hex
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _too_many_requests(retry_after: int) -> bytes:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "chaos: the server is overloaded, retry later",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": retry_after},
        "code": 429,
    }
    body = json.dumps(status).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        "Content-Type: application/json\r\n"
        f"Retry-After: {retry_after}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _rewrite_head(head: bytes) -> tuple[bytes, bool, bool]:
    """The request head (received without its final blank line) with ``Connection:
    close``, terminated; whether it is a watch; whether it carries ``Authorization``."""
    lines = head.split(b"\r\n")
    request_line = lines[0]
    kept = [request_line]
    has_auth = False
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"connection", b"keep-alive"):
            continue
        if name == b"authorization":
            has_auth = True
        kept.append(line)
    kept.append(b"Connection: close")
    target = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b""
    query = target.partition(b"?")[2]
    is_watch = any(p in (b"watch=true", b"watch=1") for p in query.split(b"&"))
    return b"\r\n".join(kept) + b"\r\n\r\n", is_watch, has_auth


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to the API server at ``upstream_port``; see the module
    docstring. Use as ``async with``; the ``storm``/``garble`` switches are safe to flip
    from any task on the same event loop."""

    def __init__(
        self,
        *,
        upstream_port: int,
        serving_cert: Path,
        serving_key: Path,
        ca_file: Path,
        client_cert: Path,
        client_key: Path,
    ) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ctx.load_cert_chain(serving_cert, serving_key)
        self._admin_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._admin_ctx.load_cert_chain(client_cert, client_key)
        self._anonymous_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._storm_retry_after: int | None = None
        self._garble: GarbleVariant | None = None
        self._watches: set[Callable[[GarbleVariant], None]] = set()
        self._conns: set[anyio.CancelScope] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self.answered_429 = 0
        self.garbled = 0
        self.requests = 0

    # -- switches -------------------------------------------------------------------------
    def storm(self, *, retry_after: int) -> None:
        """Answer 429 to every new request until :meth:`calm`; drop open connections."""
        self._storm_retry_after = retry_after
        self.drop_all()

    def calm(self) -> None:
        self._storm_retry_after = None

    def garble(self, variant: GarbleVariant) -> None:
        """Inject ``variant`` into every open and new watch stream until :meth:`clean`."""
        self._garble = variant
        for inject in list(self._watches):
            inject(variant)

    def clean(self) -> None:
        self._garble = None

    def drop_all(self) -> None:
        """Break every open connection (the clients see an incomplete response)."""
        for scope in list(self._conns):
            scope.cancel()

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> FaultProxy:
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        listener = TLSListener(tcp, self._server_ctx, standard_compatible=False)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._serve, listener)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def _serve(self, listener: TLSListener) -> None:
        async with listener:
            await listener.serve(self._handle)

    # -- one connection -------------------------------------------------------------------
    async def _handle(self, client: anyio.abc.ByteStream) -> None:
        with anyio.CancelScope() as scope:
            self._conns.add(scope)
            try:
                async with client:
                    await self._proxy(BufferedByteStream(client))
            except* _BROKEN:
                pass  # either side went away: so does the other
            finally:
                self._conns.discard(scope)

    async def _proxy(self, client: BufferedByteStream) -> None:
        head = await client.receive_until(b"\r\n\r\n", _MAX_HEAD)
        self.requests += 1
        if self._storm_retry_after is not None:
            self.answered_429 += 1
            await client.send(_too_many_requests(self._storm_retry_after))
            return
        head, is_watch, has_auth = _rewrite_head(head)
        target = head.split(b"\r\n", 1)[0].decode("latin-1")
        log.debug("fault_proxy.request", request=target)
        try:
            raw_upstream = await anyio.connect_tcp(
                "127.0.0.1",
                self.upstream_port,
                ssl_context=self._anonymous_ctx if has_auth else self._admin_ctx,
                tls_standard_compatible=False,
            )
        except OSError:
            return  # the apiserver is down: the client sees its connection closed
        async with raw_upstream:
            upstream = BufferedByteStream(raw_upstream)
            await upstream.send(head)  # a body already buffered follows through the pump
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_requests, client, upstream, tg.cancel_scope)
                if is_watch:
                    await self._forward_watch(upstream, client)
                else:
                    await self._pump(upstream, client)
                tg.cancel_scope.cancel()

    async def _pump_requests(
        self, src: BufferedByteStream, dst: BufferedByteStream, scope: anyio.CancelScope
    ) -> None:
        """Client -> server (a request body); the client going away ends the connection."""
        with contextlib.suppress(*_BROKEN):
            while True:
                await dst.send(await src.receive())
        scope.cancel()

    async def _pump(self, src: BufferedByteStream, dst: BufferedByteStream) -> None:
        """Server -> client, bytes as they come, until the server closes."""
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                await dst.send(await src.receive())

    async def _forward_watch(
        self, upstream: BufferedByteStream, client: BufferedByteStream
    ) -> None:
        """Forward a watch response chunk by chunk, so that a malformed chunk can be
        injected between two real ones."""
        head = await upstream.receive_until(b"\r\n\r\n", _MAX_HEAD)
        log.debug("fault_proxy.watch_head", status=head.split(b"\r\n", 1)[0].decode("latin-1"))
        await client.send(head + b"\r\n\r\n")
        if b"transfer-encoding: chunked" not in head.lower():
            await self._pump(upstream, client)  # an error answer (410, 403...) with a body
            return
        lock = anyio.Lock()
        async with anyio.create_task_group() as tg:
            injected: list[GarbleVariant] = []
            wake = anyio.Event()

            def inject(variant: GarbleVariant) -> None:
                if not injected:
                    injected.append(variant)
                    wake.set()

            async def injector() -> None:
                await wake.wait()
                data, clean_end = GARBLE_VARIANTS[injected[0]]
                async with lock:
                    self.garbled += 1
                    await client.send(_chunk(data) + (_LAST_CHUNK if clean_end else b""))
                tg.cancel_scope.cancel()

            self._watches.add(inject)
            try:
                tg.start_soon(injector)
                if self._garble is not None:
                    inject(self._garble)
                while True:
                    size_line = await upstream.receive_until(b"\r\n", 1024)
                    size = int(size_line.split(b";", 1)[0], 16)
                    data = await upstream.receive_exactly(size + 2)  # the data and its CRLF
                    async with lock:
                        await client.send(size_line + b"\r\n" + data)
                    if size == 0:
                        break
                tg.cancel_scope.cancel()
            finally:
                self._watches.discard(inject)
