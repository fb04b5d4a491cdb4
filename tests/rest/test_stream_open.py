"""Opening a stream (a watch) against a server that accepts the request and never sends
the response headers: the wait is bounded by ``RESPONSE_HEADERS_TIMEOUT``, not by the
stream's read timeout (a watch's is its ``timeoutSeconds`` plus slack, 5 to 10 minutes).

A fake server (raw asyncio): the real API server cannot be made to hold its headers back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from informer._exceptions import ConnectionFailed
from informer._rest import transport
from informer._rest.stream import stream_request

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

HEADERS_TIMEOUT = 0.3
WATCH_READ_TIMEOUT = 60.0  # what a watch passes: far beyond the test's bound

Respond = Callable[[asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[ApiClient]:
    """An HTTP/1.1 server that reads one request's head, then runs ``respond``; an
    ApiClient pointed at it."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await respond(writer)
            await done.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ApiClient(configuration=Configuration(host=f"http://127.0.0.1:{port}")) as api:
            yield api
    finally:
        done.set()
        server.close()


@pytest.fixture(autouse=True)
def short_headers_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "RESPONSE_HEADERS_TIMEOUT", HEADERS_TIMEOUT)


async def silent(writer: asyncio.StreamWriter) -> None:
    """Accept the request, answer nothing."""


async def test_no_response_headers_fails_after_the_headers_timeout() -> None:
    async with raw_server(silent) as api:
        started = time.monotonic()
        with anyio.fail_after(10), pytest.raises(ConnectionFailed, match="response headers"):
            async with stream_request(
                api, "/api/v1/configmaps", query={"watch": True}, read_timeout=WATCH_READ_TIMEOUT
            ):
                pass
        assert time.monotonic() - started < HEADERS_TIMEOUT + 2


async def test_the_body_keeps_the_read_timeout_once_headers_arrived() -> None:
    """Headers at once, then a silence longer than the headers timeout: the stream waits
    (its bound is the read timeout) and reads what comes."""

    async def slow_body(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(HEADERS_TIMEOUT * 4)
        event = b'{"type":"BOOKMARK","object":{}}\n'
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
        await writer.drain()

    async with raw_server(slow_body) as api:
        with anyio.fail_after(10):
            async with stream_request(
                api, "/api/v1/configmaps", query={"watch": True}, read_timeout=WATCH_READ_TIMEOUT
            ) as stream:
                assert (await stream.read_chunk()).startswith(b'{"type":"BOOKMARK"')


async def test_the_body_read_timeout_still_applies() -> None:
    async def headers_only(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()

    async with raw_server(headers_only) as api:
        with anyio.fail_after(10):
            async with stream_request(api, "/api/v1/configmaps", read_timeout=0.5) as stream:
                with pytest.raises(ConnectionFailed, match="timed out"):
                    await stream.read_chunk()
