"""``TcpProxy``: a loopback TCP proxy that tests can cut or stall on demand.

Put it between a client and the API server to produce, on demand, what a real network
does: connections that drop (``cut``), a server that is unreachable for a while
(``cut`` then ``restore``), or a connection that stays open and delivers nothing
(``stall``). The API server itself keeps serving other clients meanwhile, so a test can
change the cluster while one client is disconnected.
"""

from __future__ import annotations

from types import TracebackType

import anyio
import anyio.abc
import structlog

__all__ = ["TcpProxy"]

log = structlog.get_logger(__name__)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target_host:target_port`` (use as ``async with``).

    - ``cut()``: closes every open connection and refuses new ones until ``restore()``.
    - ``stall()``: keeps connections open but stops forwarding bytes (both ways) until
      ``restore()``; new connections are accepted and stalled too.
    - ``restore()``: back to forwarding.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._mode = "forward"
        self._resume = anyio.Event()
        self._conns: set[anyio.CancelScope] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self.connections_accepted = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._mode = "cut"
        for scope in list(self._conns):
            scope.cancel()

    def stall(self) -> None:
        self._mode = "stall"

    def restore(self) -> None:
        self._mode = "forward"
        self._resume.set()
        self._resume = anyio.Event()

    async def __aenter__(self) -> TcpProxy:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self._listener = listener
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(listener.serve, self._handle)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None and self._listener is not None
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            await self._listener.aclose()

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections_accepted += 1
        async with client:
            if self._mode == "cut":
                return
            try:
                upstream = await anyio.connect_tcp(self.target_host, self.target_port)
            except OSError:
                return
            async with upstream:
                with anyio.CancelScope() as scope:
                    self._conns.add(scope)
                    try:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(self._pump, client, upstream, scope)
                            tg.start_soon(self._pump, upstream, client, scope)
                    finally:
                        self._conns.discard(scope)

    async def _pump(
        self,
        src: anyio.abc.SocketStream,
        dst: anyio.abc.SocketStream,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            while True:
                data = await src.receive(65536)
                while self._mode == "stall":
                    await self._resume.wait()
                if self._mode == "cut":
                    break
                await dst.send(data)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()
