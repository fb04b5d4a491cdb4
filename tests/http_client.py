"""A raw HTTP/1.1 client for the server tests: exact bytes out, parsed answers in.

``request`` sends one request and half-closes (the server then closes too); a
``Connection`` reads answers one by one by their ``Content-Length`` (keep-alive,
pipelining). Both speak TLS with an ``ssl_context`` (no verification unless it says so).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import anyio
import anyio.abc


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers


def get(path: str, *headers: str, connection: str | None = None) -> bytes:
    """The bytes of ``GET path`` with ``headers`` (``"Name: value"``)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect(port: int, ssl_context: ssl.SSLContext | None = None) -> anyio.abc.ByteStream:
    if ssl_context is None:
        return await anyio.connect_tcp("127.0.0.1", port)
    return await anyio.connect_tcp(
        "127.0.0.1", port, ssl_context=ssl_context, tls_standard_compatible=False
    )


async def request(port: int, raw: bytes, ssl_context: ssl.SSLContext | None = None) -> Response:
    """Send ``raw`` and read one answer. Plain TCP: end our side, read up to the
    server's close (an incomplete head is answered, not waited for). TLS (no half-close):
    read the answer by its ``Content-Length``."""
    async with await connect(port, ssl_context) as stream:
        await stream.send(raw)
        if ssl_context is not None:
            return await Connection(stream).response(head_request=raw.startswith(b"HEAD "))
        await stream.send_eof()
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    return Response(status, headers, body)


class Connection:
    """One kept-alive connection: ``send`` bytes, read each ``response`` in turn."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self._buf = b""

    async def send(self, raw: bytes) -> None:
        await self.stream.send(raw)

    async def response(self, *, head_request: bool = False) -> Response:
        while b"\r\n\r\n" not in self._buf:
            self._buf += await self.stream.receive()
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        status, headers = parse_head(head)
        length = 0 if head_request else int(headers["content-length"])
        while len(rest) < length:
            rest += await self.stream.receive()
        self._buf = rest[length:]
        return Response(status, headers, rest[:length])

    async def closed_by_server(self) -> bool:
        """Reads to the end: ``True`` when the server closed without sending more."""
        try:
            while True:
                self._buf += await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return not self._buf


async def http_get(port: int, path: str) -> tuple[int, str]:
    """``GET path`` on 127.0.0.1:``port`` (plain HTTP): the status and the body as text."""
    answer = await request(port, get(path))
    return answer.status, answer.body.decode()
