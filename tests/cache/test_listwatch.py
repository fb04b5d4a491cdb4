"""ApiListerWatcher against a local aiohttp server (its line decoder alone, on fixed
chunks, is tested in ``test_watch_decode``, whose sample events these tests send).

The server is an ``aiohttp.test_utils.RawTestServer`` on 127.0.0.1 whose handler each test
sets; an ``ApiClient`` points at it through a kubernetes_asyncio ``Configuration``. The
server cancels a handler when its client goes away, which is how the tests see a closed
connection without sleeping.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from aiohttp import web
from fake_http import serving
from kubernetes_asyncio.client import ApiClient, Configuration
from test_watch_decode import EVENTS, STREAM, configmap, event, lines

from informer._cache.listwatch import ApiListerWatcher, ListerWatcher
from informer._cache.watch_decode import MAX_WATCH_EVENT_BYTES
from informer._exceptions import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    ResourceExpired,
    ServerError,
    TooManyRequests,
    Unauthorized,
    WatchDecodeError,
    WatchEventTooLarge,
)
from informer._meta.resource import Resource
from informer._meta.types import WatchEvent

pytestmark = pytest.mark.anyio

CONFIGMAPS = Resource("", "v1", "configmaps", kind="ConfigMap")
DEPLOYMENTS = Resource("apps", "v1", "deployments", kind="Deployment")
NAMESPACES = Resource("", "v1", "namespaces", kind="Namespace", namespaced=False)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def status(code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message or f"{reason.lower()} happened",
        "reason": reason,
        "code": code,
    }


class FakeApiServer:
    """Records requests; ``handler`` answers them; ``disconnected`` is set when a
    streaming handler sees its client go away."""

    def __init__(self) -> None:
        self.requests: list[web.BaseRequest] = []
        self.handler: Handler = self.not_configured
        self.disconnected = anyio.Event()
        self.url = ""
        self.flooded = 0

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append(request)
        return await self.handler(request)

    @staticmethod
    async def not_configured(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=599, text="no handler")

    def reply(self, body: Any, *, code: int = 200, headers: dict[str, str] | None = None) -> None:
        """Answer every request with ``body`` (JSON-encoded unless bytes)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            return web.Response(
                status=code, body=raw, headers=headers, content_type="application/json"
            )

        self.handler = handler

    def stream(self, *chunks: bytes, hold: bool = False, abort: bool = False) -> None:
        """Stream ``chunks`` (chunked encoding, drained one by one); then end the body,
        keep the connection open until the client leaves (``hold``), or drop it
        mid-body (``abort``)."""

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for chunk in chunks:
                await resp.write(chunk)
            if abort:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if hold:
                try:
                    await anyio.sleep_forever()
                finally:
                    self.disconnected.set()
            await resp.write_eof()
            return resp

        self.handler = handler

    def flood(self, head: bytes, *, status: int = 200, total: int = 64 << 20) -> None:
        """Answer ``status`` with a chunked body: ``head``, then ``x`` bytes (no newline)
        up to ``total`` bytes, then hold the connection open until the client leaves.
        ``flooded`` is how many bytes were written when it left."""
        self.flooded = 0

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            try:
                await resp.write(head)
                self.flooded = len(head)
                filler = b"x" * (1 << 20)
                while self.flooded < total:
                    await resp.write(filler)
                    self.flooded += len(filler)
                await anyio.sleep_forever()
            finally:
                self.disconnected.set()
            return resp

        self.handler = handler

    def query(self, i: int = -1) -> dict[str, str]:
        return dict(self.requests[i].query)


@pytest.fixture
async def server() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    async with serving(fake.dispatch) as fake.url:
        yield fake


@pytest.fixture
async def api_client(server: FakeApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(configuration=Configuration(host=server.url)) as client:
        yield client


@pytest.fixture
def lw(api_client: ApiClient) -> ApiListerWatcher:
    return ApiListerWatcher(api_client, CONFIGMAPS, namespace="ns")


async def collect(lw: ApiListerWatcher, **kw: Any) -> list[WatchEvent]:
    with anyio.fail_after(10):
        async with lw.watch(**kw) as events:
            return [e async for e in events]


# ------------------------------------------------------------------ watch over HTTP


async def test_satisfies_protocol(lw: ApiListerWatcher) -> None:
    assert isinstance(lw, ListerWatcher)


@pytest.mark.parametrize("size", [1, 3, 100, 1 << 20], ids=lambda n: f"write{n}")
async def test_watch_streams_events_written_in_pieces(
    server: FakeApiServer, lw: ApiListerWatcher, size: int
) -> None:
    server.stream(*(STREAM[i : i + size] for i in range(0, len(STREAM), size)))
    assert await collect(lw) == EVENTS


async def test_watch_line_over_one_mib(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    huge = event("ADDED", configmap("huge", 7, blob="y" * (3 << 20)))
    body = lines(EVENTS[0], huge, EVENTS[4])
    assert len(body) > 3 << 20
    server.stream(*(body[i : i + 100_000] for i in range(0, len(body), 100_000)))
    assert await collect(lw) == [EVENTS[0], huge, EVENTS[4]]


async def test_watch_line_longer_than_client_gos_limit_is_refused(
    server: FakeApiServer, lw: ApiListerWatcher
) -> None:
    """A line that never ends (a broken or hostile server) is not buffered past 16 MiB."""
    server.flood(lines(EVENTS[0]) + b'{"type": "ADDED", "object": {"data": "')
    got: list[WatchEvent] = []
    with anyio.fail_after(20), pytest.raises(WatchEventTooLarge) as info:
        async with lw.watch() as events:
            async for e in events:
                got.append(e)
    assert got == [EVENTS[0]]
    assert info.value.limit == MAX_WATCH_EVENT_BYTES == 16 << 20
    assert info.value.line.startswith(b'{"type": "ADDED"')
    assert isinstance(info.value, WatchDecodeError)
    with anyio.fail_after(10):
        await server.disconnected.wait()
    assert server.flooded < 32 << 20  # read stopped near the limit


@pytest.mark.parametrize("op", ["list", "watch"])
async def test_error_body_without_a_length_is_not_read_past_one_mib(
    server: FakeApiServer, lw: ApiListerWatcher, op: str
) -> None:
    server.flood(b"upstream error: ", status=500)
    with anyio.fail_after(20), pytest.raises(ServerError, match="over 1 MiB, not read") as info:
        if op == "list":
            await lw.list()
        else:
            async with lw.watch():
                raise AssertionError("the context must not be entered")
    assert info.value.status == 500
    with anyio.fail_after(10):
        await server.disconnected.wait()
    assert server.flooded < 32 << 20


async def test_watch_malformed_line(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    server.stream(lines(*EVENTS[:2]), b"{not json\n", lines(EVENTS[4]))
    got: list[WatchEvent] = []
    with anyio.fail_after(10), pytest.raises(WatchDecodeError) as info:
        async with lw.watch() as events:
            async for e in events:
                got.append(e)
    assert got == EVENTS[:2]
    assert info.value.line == b"{not json"


async def test_watch_line_without_type(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    server.stream(lines(EVENTS[0]), b'{"object": {"kind": "ConfigMap"}}\n')
    got: list[WatchEvent] = []
    with anyio.fail_after(10), pytest.raises(WatchDecodeError, match="'type'"):
        async with lw.watch() as events:
            async for e in events:
                got.append(e)
    assert got == [EVENTS[0]]


async def test_watch_error_event_is_yielded(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    error = event("ERROR", status(410, "Expired", "too old resource version: 1 (5)"))
    server.stream(lines(EVENTS[0], error))
    assert await collect(lw) == [EVENTS[0], error]


async def test_clean_end_of_watch_ends_iterator(
    server: FakeApiServer, lw: ApiListerWatcher
) -> None:
    server.stream(lines(*EVENTS[:2]))
    with anyio.fail_after(10):
        async with lw.watch(timeout_seconds=5) as events:
            assert [e async for e in events] == EVENTS[:2]
            # Exhausted for good.
            assert [e async for e in events] == []
        # A fully read body leaves a reusable connection: a second watch works.
        assert await collect(lw) == EVENTS[:2]


async def test_leaving_context_early_closes_connection(
    server: FakeApiServer, lw: ApiListerWatcher
) -> None:
    server.stream(lines(*EVENTS[:2]), hold=True)
    with anyio.fail_after(10):
        async with lw.watch() as events:
            async for e in events:
                assert e == EVENTS[0]
                break
        await server.disconnected.wait()


async def test_cancelling_a_watch_closes_connection(
    server: FakeApiServer, lw: ApiListerWatcher
) -> None:
    server.stream(lines(EVENTS[0]), hold=True)
    got = anyio.Event()

    async def watch() -> None:
        async with lw.watch() as events:
            async for _ in events:
                got.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await got.wait()
            tg.cancel_scope.cancel()
        await server.disconnected.wait()


async def test_connection_lost_mid_stream(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    server.stream(lines(*EVENTS[:2]), b'{"type": "ADD', abort=True)
    got: list[WatchEvent] = []
    with anyio.fail_after(10), pytest.raises(ConnectionFailed) as info:
        async with lw.watch() as events:
            async for e in events:
                got.append(e)
    assert got == EVENTS[:2]
    assert info.value.address == server.url


# ------------------------------------------------------------------ query and paths


async def test_list_query_and_result(server: FakeApiServer, api_client: ApiClient) -> None:
    page = {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "42", "continue": "next-token"},
        "items": [configmap("a", 41)],
    }
    server.reply(page)
    lw = ApiListerWatcher(
        api_client,
        CONFIGMAPS,
        namespace="ns",
        label_selector="app in (a, b),tier!=db",
        field_selector="metadata.name=a",
    )
    got = await lw.list(
        resource_version="0", resource_version_match="NotOlderThan", limit=2, continue_token="t=1"
    )
    assert got == page
    req = server.requests[-1]
    assert req.method == "GET"
    assert req.path == "/api/v1/namespaces/ns/configmaps"
    assert server.query() == {
        "labelSelector": "app in (a, b),tier!=db",
        "fieldSelector": "metadata.name=a",
        "limit": "2",
        "continue": "t=1",
        "resourceVersion": "0",
        "resourceVersionMatch": "NotOlderThan",
    }
    assert req.headers["Accept"] == "application/json"


async def test_list_defaults_send_nothing(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    server.reply({"metadata": {"resourceVersion": "1"}, "items": []})
    await lw.list()
    await lw.list(resource_version="", limit=None, continue_token="")
    assert server.query(0) == {} == server.query(1)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"watch": "true", "allowWatchBookmarks": "true"}),
        ({"allow_watch_bookmarks": False}, {"watch": "true"}),
        (
            {"resource_version": "17", "timeout_seconds": 300},
            {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "resourceVersion": "17",
                "timeoutSeconds": "300",
            },
        ),
        (
            {"send_initial_events": True, "resource_version_match": "NotOlderThan"},
            {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "sendInitialEvents": "true",
                "resourceVersionMatch": "NotOlderThan",
            },
        ),
    ],
    ids=["defaults", "no-bookmarks", "rv-and-timeout", "watch-list"],
)
async def test_watch_query(
    server: FakeApiServer, lw: ApiListerWatcher, kwargs: dict[str, Any], expected: dict[str, str]
) -> None:
    server.stream()
    assert await collect(lw, **kwargs) == []
    assert server.query() == expected


async def test_watch_sends_selectors(server: FakeApiServer, api_client: ApiClient) -> None:
    server.stream()
    lw = ApiListerWatcher(api_client, CONFIGMAPS, label_selector="a=b", field_selector="x=y")
    await collect(lw)
    assert server.query() == {
        "labelSelector": "a=b",
        "fieldSelector": "x=y",
        "watch": "true",
        "allowWatchBookmarks": "true",
    }


@pytest.mark.parametrize(
    ("resource", "namespace", "path"),
    [
        (CONFIGMAPS, "ns", "/api/v1/namespaces/ns/configmaps"),
        (CONFIGMAPS, None, "/api/v1/configmaps"),
        (DEPLOYMENTS, "prod", "/apis/apps/v1/namespaces/prod/deployments"),
        (DEPLOYMENTS, None, "/apis/apps/v1/deployments"),
        (NAMESPACES, "ignored", "/api/v1/namespaces"),
    ],
    ids=["core-ns", "core-all", "apps-ns", "apps-all", "cluster-scoped"],
)
async def test_paths(
    server: FakeApiServer,
    api_client: ApiClient,
    resource: Resource,
    namespace: str | None,
    path: str,
) -> None:
    lw = ApiListerWatcher(api_client, resource, namespace=namespace)
    server.reply({"items": []})
    await lw.list()
    server.stream()
    await collect(lw)
    assert [r.path for r in server.requests] == [path, path]


# ------------------------------------------------------------------------- failures

FAILURES = [
    pytest.param(
        410, status(410, "Expired", "too old resource version: 1 (99)"), None,
        ResourceExpired, id="410",
    ),
    pytest.param(401, status(401, "Unauthorized"), None, Unauthorized, id="401"),
    pytest.param(
        403,
        status(403, "Forbidden", 'configmaps is forbidden: User "bob" cannot list ...'),
        None,
        Forbidden,
        id="403",
    ),
    pytest.param(404, status(404, "NotFound"), None, NotFound, id="404"),
    pytest.param(429, status(429, "TooManyRequests"), "7", TooManyRequests, id="429"),
    pytest.param(500, status(500, "InternalError"), None, ServerError, id="500"),
    pytest.param(503, b"upstream connect error", "1", ServerError, id="503-text"),
    pytest.param(400, status(400, "BadRequest"), None, BadRequest, id="400"),
    pytest.param(422, status(422, "Invalid"), None, ApiError, id="422"),
]  # fmt: skip


def assert_mapped(
    err: ApiError, code: int, cls: type[ApiError], retry_after: str | None, verb: str
) -> None:
    assert type(err) is cls
    assert err.status == code
    assert (err.verb, err.resource, err.namespace) == (verb, "configmaps", "ns")
    if cls is Forbidden:
        assert f"forbidden: cannot {verb} configmaps in namespace 'ns'" in str(err)
    if cls is TooManyRequests:
        assert isinstance(err, TooManyRequests)
        assert err.retry_after == float(retry_after or 0)
    if err.body is None:  # not a Status: the message names the request and the text
        assert "/api/v1/namespaces/ns/configmaps" in str(err)
        assert "upstream connect error" in str(err)
    else:
        assert err.body["code"] == code


@pytest.mark.parametrize(("code", "body", "retry_after", "cls"), FAILURES)
async def test_list_failure(
    server: FakeApiServer,
    lw: ApiListerWatcher,
    code: int,
    body: Any,
    retry_after: str | None,
    cls: type[ApiError],
) -> None:
    server.reply(body, code=code, headers={"Retry-After": retry_after} if retry_after else None)
    with pytest.raises(ApiError) as info:
        await lw.list(limit=500)
    assert_mapped(info.value, code, cls, retry_after, "list")


@pytest.mark.parametrize(("code", "body", "retry_after", "cls"), FAILURES)
async def test_watch_failure(
    server: FakeApiServer,
    lw: ApiListerWatcher,
    code: int,
    body: Any,
    retry_after: str | None,
    cls: type[ApiError],
) -> None:
    server.reply(body, code=code, headers={"Retry-After": retry_after} if retry_after else None)
    with pytest.raises(ApiError) as info:
        async with lw.watch(resource_version="1"):
            raise AssertionError("the context must not be entered")
    assert_mapped(info.value, code, cls, retry_after, "watch")


async def test_forbidden_across_namespaces_says_cluster_scope(
    server: FakeApiServer, api_client: ApiClient
) -> None:
    server.reply(status(403, "Forbidden"), code=403)
    with pytest.raises(Forbidden, match=r"cannot list deployments\.apps at cluster scope"):
        await ApiListerWatcher(api_client, DEPLOYMENTS).list()


async def test_list_answer_not_json(server: FakeApiServer, lw: ApiListerWatcher) -> None:
    server.reply(b"<html>hello</html>")
    with pytest.raises(ApiError, match="not JSON"):
        await lw.list()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("op", ["list", "watch"])
async def test_connection_refused(op: str) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    async with ApiClient(configuration=Configuration(host=address)) as client:
        lw = ApiListerWatcher(client, CONFIGMAPS, namespace="ns")
        with anyio.fail_after(10), pytest.raises(ConnectionFailed) as info:
            if op == "list":
                await lw.list()
            else:
                async with lw.watch():
                    pass
    assert info.value.address == address
    assert address in str(info.value)
    assert info.value.__cause__ is not None
