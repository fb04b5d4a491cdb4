"""The package's HTTP server (``informer._runtime.http``), over raw sockets.

Every test is bounded by ``anyio.fail_after`` and waits for conditions, not for time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from informer import BindError
from informer._runtime import http as _http
from informer._runtime.http import (
    MAX_HEAD_BYTES,
    HttpHandler,
    HttpResponse,
    parse_bind_address,
    serve_http,
)

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


async def http_request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` to 127.0.0.1:``port``, half-close; return status, headers and body."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(raw)
        await stream.send_eof()  # "that is all": an incomplete head is not waited for
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    status, _, body = await http_request(
        port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    return status, body


@asynccontextmanager
async def serving(routes: Mapping[str, HttpHandler]) -> AsyncIterator[int]:
    """Serve ``routes`` on a free loopback port; yields the port."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_http, "127.0.0.1:0", routes)
        yield port
        tg.cancel_scope.cancel()


def test_parse_bind_address() -> None:
    assert parse_bind_address(":8080") == (None, 8080)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:9090") == ("::1", 9090)
    assert parse_bind_address("localhost:1") == ("localhost", 1)
    for bad in ("0", "8080", "host:", ":99999", "::1:80", "[::1:80", "h:x"):
        with pytest.raises(ValueError):
            parse_bind_address(bad)


async def test_http_status_codes() -> None:
    def ok(request: Any) -> HttpResponse:
        return HttpResponse.text(200, f"{request.path} {dict(request.query)}")

    def broken(request: Any) -> HttpResponse:
        raise RuntimeError("bug")

    routes = {"/ok": ok, "/broken": broken, "/tree/": ok}
    with anyio.fail_after(TIMEOUT):
        async with serving(routes) as port:
            assert await http_get(port, "/ok?verbose&x=1") == (
                200,
                b"/ok {'verbose': [''], 'x': ['1']}",
            )
            assert (await http_get(port, "/tree/leaf"))[0] == 200
            assert (await http_get(port, "/missing"))[0] == 404
            assert (await http_get(port, "/broken"))[0] == 500
            status, headers, body = await http_request(
                port, b"POST /ok HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
            )
            assert (status, headers["allow"]) == (405, "GET, HEAD")
            status, headers, body = await http_request(port, b"HEAD /ok HTTP/1.1\r\n\r\n")
            assert status == 200 and body == b"" and int(headers["content-length"]) > 0
            assert headers["connection"] == "close"
            # Bare LF line ends are tolerated; HTTP/1.0 too.
            assert (await http_request(port, b"GET /ok HTTP/1.0\n\n"))[0] == 200
            for garbage in (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS hello
                b"hello\r\n\r\n",
                b"GET /ok\r\n\r\n",
                b"GET ok HTTP/1.1\r\n\r\n",
                b"GET /ok HTTP/1.1\r\nno colon here\r\n\r\n",
                b"GET /ok HTTP/1.1 extra\r\n\r\n",
                b"GET /ok HTTX/1.1\r\n\r\n",
                b"GET /ok HTTP/1.1\r\n",  # closed before the head ended
            ):
                assert (await http_request(port, garbage))[0] == 400, garbage
            assert (await http_request(port, b"GET /ok HTTP/2.0\r\n\r\n"))[0] == 505
            big = b"GET /ok HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n"
            assert (await http_request(port, big))[0] == 431
            assert (await http_get(port, "/ok"))[0] == 200  # still serving


async def test_http_slow_client_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http, "READ_TIMEOUT", 0.2)
    with anyio.fail_after(TIMEOUT):
        async with serving({"/": lambda r: HttpResponse.text(200, "ok")}) as port:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"GET / HTTP/1.1\r\n")  # never finishes the head
                answer = await stream.receive()
            assert answer.startswith(b"HTTP/1.1 408 ")


async def test_bind_errors_are_reported_before_serving() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving({}) as port, anyio.create_task_group() as tg:
            with pytest.raises(BindError, match=f"127.0.0.1:{port}"):
                await tg.start(serve_http, f"127.0.0.1:{port}", {})
            with pytest.raises(BindError, match="HOST:PORT"):
                await tg.start(serve_http, "nonsense", {})
