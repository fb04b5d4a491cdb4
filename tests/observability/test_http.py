"""The package's HTTP server (``informer._http.server``), over raw sockets.

Status codes and request parsing, keep-alive, POST bodies (framing, limits, what follows
them), the header and idle timeouts (a slowloris client is closed), and a connection
flood, during which ``/healthz`` must still be answered.
Every test is bounded by ``anyio.fail_after``; the only sleeps pace deliberately slow
clients, and the few timing bounds are loose (shared CI machines).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from http_client import Connection, Response, connect, get, request

from informer._http.server import (
    MAX_HEAD_BYTES,
    HttpHandler,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    HttpServer,
    PostHandler,
    RequestFilter,
    parse_bind_address,
    serve_http,
)
from informer._observability.health import HealthChecks, health_routes
from informer.observability import BindError

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, f"{request.path} {dict(request.query)}")


@asynccontextmanager
async def serving(
    routes: Mapping[str, HttpHandler],
    *,
    limits: HttpLimits | None = None,
    request_filter: RequestFilter | None = None,
    post_routes: Mapping[str, PostHandler] | None = None,
) -> AsyncIterator[HttpServer]:
    """Serve ``routes`` on a free loopback port; yields the server (``.port``)."""
    server = await HttpServer.bind(
        "127.0.0.1:0",
        routes,
        limits=limits or HttpLimits(),
        request_filter=request_filter,
        post_routes=post_routes,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        yield server
        tg.cancel_scope.cancel()


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    answer = await request(port, get(path))
    return answer.status, answer.body


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":8080", (None, 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9090", ("::1", 9090)),
        ("localhost:1", ("localhost", 1)),
        ("my-host.example:65535", ("my-host.example", 65535)),
    ],
    ids=["any-interface", "ipv4", "ipv6", "name", "max-port"],
)
def test_parse_bind_address(address: str, expected: tuple[str | None, int]) -> None:
    assert parse_bind_address(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0", "expected HOST:PORT or :PORT"),
        ("8080", "expected HOST:PORT or :PORT"),
        ("host:", "bad port"),
        (":99999", "bad port"),
        ("h:x", "bad port"),
        ("::1:80", "must be in brackets"),
        ("[::1:80", "bad IPv6 address"),
        ("[nope]:80", "bad IPv6 address"),
        ("bad_host:80", "bad host"),
    ],
    ids=["zero", "port-only", "no-port", "port-range", "port-text", "bare-ipv6", "bracket",
         "ipv6-text", "host-chars"],
)  # fmt: skip
def test_parse_bind_address_errors_say_what_is_wrong(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bind_address(address)


async def test_bind_errors_are_reported_before_serving() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving({}) as server, anyio.create_task_group() as tg:
            with pytest.raises(BindError, match=f"127.0.0.1:{server.port}"):
                await tg.start(serve_http, f"127.0.0.1:{server.port}", {})
            with pytest.raises(BindError, match="HOST:PORT"):
                await tg.start(serve_http, "nonsense", {})


# ------------------------------------------------------------------------------ answers


async def test_status_codes_and_bad_requests() -> None:
    def broken(request: Any) -> HttpResponse:
        raise RuntimeError("bug")

    routes = {"/ok": ok, "/broken": broken, "/tree/": ok}
    with anyio.fail_after(TIMEOUT):
        async with serving(routes) as server:
            port = server.port
            assert await http_get(port, "/ok?verbose&x=1") == (
                200,
                b"/ok {'verbose': [''], 'x': ['1']}",
            )
            assert (await http_get(port, "/tree/leaf"))[0] == 200
            assert (await http_get(port, "/missing"))[0] == 404
            assert (await http_get(port, "/broken"))[0] == 500
            answer = await request(port, b"POST /ok HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")
            answer = await request(port, b"HEAD /ok HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert answer.status == 200 and answer.body == b""
            assert int(answer.headers["content-length"]) > 0
            assert answer.headers["connection"] == "close"
            # Bare LF line ends are tolerated; HTTP/1.0 too (and it is not kept alive).
            answer = await request(port, b"GET /ok HTTP/1.0\n\n")
            assert (answer.status, answer.headers["connection"]) == (200, "close")
            for garbage in (
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS hello
                b"hello\r\n\r\n",
                b"GET /ok\r\n\r\n",
                b"GET ok HTTP/1.1\r\n\r\n",
                b"GET /ok HTTP/1.1\r\nno colon here\r\n\r\n",
                b"GET /ok HTTP/1.1 extra\r\n\r\n",
                b"GET /ok HTTX/1.1\r\n\r\n",
                b"GET /ok HTTP/1.1\r\n",  # closed before the head ended
                b"GET /\xff HTTP/1.1\r\n\r\n",
            ):
                answer = await request(port, garbage)
                assert (answer.status, answer.headers["connection"]) == (400, "close"), garbage
            assert (await request(port, b"GET /ok HTTP/2.0\r\n\r\n")).status == 505
            big = b"GET /ok HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n"
            assert (await request(port, big)).status == 431
            assert (await http_get(port, "/ok"))[0] == 200  # still serving


async def test_keep_alive_serves_requests_in_turn_and_pipelined() -> None:
    with anyio.fail_after(TIMEOUT):
        async with serving({"/ok": ok}) as server:
            async with await connect(server.port) as stream:
                conn = Connection(stream)
                for n in range(3):
                    await conn.send(get(f"/ok?n={n}"))
                    answer = await conn.response()
                    assert answer.status == 200 and answer.body == f"/ok {{'n': ['{n}']}}".encode()
                    assert answer.headers["connection"] == "keep-alive"
                # Two requests in one segment, then a HEAD: answered in order.
                await conn.send(get("/ok?a") + get("/ok?b") + b"HEAD /ok HTTP/1.1\r\n\r\n")
                assert (await conn.response()).body == b"/ok {'a': ['']}"
                assert (await conn.response()).body == b"/ok {'b': ['']}"
                head = await conn.response(head_request=True)
                assert head.status == 200 and head.headers["connection"] == "keep-alive"
                # Connection: close is honoured: the answer, then the server closes.
                await conn.send(get("/ok", connection="close"))
                assert (await conn.response()).headers["connection"] == "close"
                assert await conn.closed_by_server()
            async with await connect(server.port) as stream:
                conn = Connection(stream)
                # A request with a body (never read) ends the connection after its answer.
                await conn.send(b"GET /ok HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
                assert (await conn.response()).headers["connection"] == "close"
                assert await conn.closed_by_server()


async def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, f"{len(request.body)}:{request.body.decode()}")


async def test_a_post_body_is_read_and_what_follows_it_is_the_next_request() -> None:
    """The body is read by its Content-Length and no further: a request pipelined right
    after it is answered on the same connection; a refused body closes the connection."""
    limits = HttpLimits(max_body_bytes=16)
    with anyio.fail_after(TIMEOUT):
        async with (
            serving({"/ok": ok}, limits=limits, post_routes={"/echo": echo}) as server,
            await connect(server.port) as stream,
        ):
            conn = Connection(stream)
            post = b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            await conn.send(post + get("/ok?after") + post)
            first = await conn.response()
            assert (first.status, first.body) == (200, b"5:hello")
            assert first.headers["connection"] == "keep-alive"
            assert (await conn.response()).body == b"/ok {'after': ['']}"
            assert (await conn.response()).body == b"5:hello"
            await conn.send(b"POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n" + b"x" * 17)
            refused = await conn.response()
            assert (refused.status, refused.body) == (413, b"request body over 16 bytes\n")
            assert refused.headers["connection"] == "close"
            assert await conn.closed_by_server()


async def test_an_idle_kept_alive_connection_is_closed() -> None:
    limits = HttpLimits(idle_timeout=0.3)
    with anyio.fail_after(TIMEOUT):
        async with serving({"/ok": ok}, limits=limits) as server:
            async with await connect(server.port) as stream:
                conn = Connection(stream)
                await conn.send(get("/ok"))
                assert (await conn.response()).status == 200
                started = anyio.current_time()
                assert await conn.closed_by_server()
                assert 0.25 <= anyio.current_time() - started < 3.0
            assert server.open_connections == 0


# ------------------------------------------------------------------------------ timeouts


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    limits = HttpLimits(header_timeout=0.5)
    with anyio.fail_after(TIMEOUT):
        async with (
            serving({"/ok": ok}, limits=limits) as server,
            await connect(server.port) as stream,
        ):
            started = anyio.current_time()
            assert await Connection(stream).closed_by_server()  # silently: no answer
            assert 0.45 <= anyio.current_time() - started < 3.0


async def test_slowloris_is_answered_408_and_closed_after_the_header_timeout() -> None:
    """A client sending its head one byte per second is cut off after the header timeout
    (Go's ReadHeaderTimeout), however steadily it sends."""
    limits = HttpLimits(header_timeout=2.0)
    head = get("/ok")
    sent = 0

    async def drip(stream: anyio.abc.ByteStream) -> None:
        nonlocal sent
        try:
            for byte in head:
                await stream.send(bytes([byte]))
                sent += 1
                await anyio.sleep(1.0)
        except (anyio.BrokenResourceError, OSError):
            pass

    with anyio.fail_after(TIMEOUT):
        async with (
            serving({"/ok": ok}, limits=limits) as server,
            await connect(server.port) as stream,
            anyio.create_task_group() as tg,
        ):
            started = anyio.current_time()
            tg.start_soon(drip, stream)
            answer = await Connection(stream).response()
            elapsed = anyio.current_time() - started
            tg.cancel_scope.cancel()
    assert answer.status == 408 and answer.headers["connection"] == "close"
    assert 1.9 <= elapsed < 5.0
    assert 2 <= sent < len(head)


# ------------------------------------------------------------------------ connection flood


@pytest.mark.parametrize("partial", [False, True], ids=["idle", "partial-heads"])
async def test_probes_are_answered_during_a_connection_flood(partial: bool) -> None:
    """200 connections that send nothing (or half a head) do not starve a probe: the
    server closes the oldest of them instead of refusing the newcomer (it used to answer
    503 past 64 connections, which failed the kubelet's probes)."""
    checks = HealthChecks()
    checks.add_liveness("ok", lambda: None)
    with anyio.fail_after(30):
        async with serving(health_routes(checks)) as server:
            max_connections = server.limits.max_connections
            streams: list[anyio.abc.SocketStream] = []
            try:
                for _ in range(200):
                    stream = await anyio.connect_tcp("127.0.0.1", server.port)
                    streams.append(stream)
                    if partial:
                        await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                for _ in range(5):
                    with anyio.fail_after(2.0):
                        assert await http_get(server.port, "/healthz") == (200, b"ok")
                assert server.evictions >= 200 - max_connections
                # The oldest were closed (without an answer: they never asked anything).
                for stream in streams[: 200 - max_connections]:
                    with anyio.fail_after(2.0):
                        assert await Connection(stream).closed_by_server()
            finally:
                for stream in streams:
                    await stream.aclose()


async def test_only_when_every_connection_is_busy_a_newcomer_gets_503() -> None:
    """Connections answering a request are never closed early; a newcomer finding all of
    them busy is told so, and they are answered once their filter returns."""
    release = anyio.Event()
    busy = 0
    both_busy = anyio.Event()

    async def slow_filter(request: HttpRequest) -> HttpResponse | None:
        nonlocal busy
        busy += 1
        if busy == 2:
            both_busy.set()
        await release.wait()
        return None

    results: list[Response] = []

    async def fetch(port: int) -> None:
        results.append(await request(port, get("/ok")))

    limits = HttpLimits(max_connections=2)
    with anyio.fail_after(TIMEOUT):
        async with (
            serving({"/ok": ok}, limits=limits, request_filter=slow_filter) as server,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(fetch, server.port)
            tg.start_soon(fetch, server.port)
            await both_busy.wait()
            refused = await request(server.port, get("/ok"))
            assert (refused.status, refused.body) == (503, b"too many connections\n")
            assert (server.refusals, server.evictions) == (1, 0)
            release.set()
    assert [r.status for r in results] == [200, 200]


async def test_a_request_filter_answers_before_routing() -> None:
    async def needs_header(request: HttpRequest) -> HttpResponse | None:
        if request.headers.get("x-pass") != "yes":
            return HttpResponse.text(401, "who are you?\n")
        return None

    with anyio.fail_after(TIMEOUT):
        async with serving({"/ok": ok}, request_filter=needs_header) as server:
            assert await http_get(server.port, "/ok") == (401, b"who are you?\n")
            assert await http_get(server.port, "/missing") == (401, b"who are you?\n")
            assert (await request(server.port, get("/ok", "X-Pass: yes"))).status == 200
            assert (await request(server.port, get("/missing", "X-Pass: yes"))).status == 404
            # Other methods are refused before the filter is asked.
            assert (await request(server.port, b"DELETE /ok HTTP/1.1\r\n\r\n")).status == 405


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        HttpLimits(header_timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        HttpLimits(max_connections=0)
